package com.mindspore.flclient;

import com.mindspore.flclient.cipher.PairwiseMasker;

import java.security.SecureRandom;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.logging.Logger;

import mindspore.schema.ResponseCode;

/**
 * PW_ENCRYPT's rounds on the device (docs/secure-aggregation.md): after startFLJob, exchangeKeys →
 * getKeys → shareSecrets → getSecrets (before training, so the server's key phases do not wait for
 * anybody's training); the trained upload is masked ({@link #maskedBody}); after updateModel,
 * getClientList → reconstructSecrets. The get rounds are polled every sleepTime while the server
 * answers SucNotReady. The round's {@link PairwiseMasker} (keys, seed, held shares) is the only
 * state, dropped at the round's end; a mask is generated into the upload and never held.
 */
final class PairwiseMaskingSteps implements UploadProtection {
    /** The encrypt type of this class (schema/round_plugins.json). */
    static final String NAME = "PW_ENCRYPT";
    private static final SecureRandom RANDOM = new SecureRandom();

    private final FLParameter p;
    private final Logger log;
    private final ServerExchange server;
    private final JobProgress progress;
    private PairwiseMasker masker;

    PairwiseMaskingSteps(FLParameter p, Logger log, ServerExchange server, JobProgress progress) {
        this.p = p;
        this.log = log;
        this.server = server;
        this.progress = progress;
    }

    @Override
    public String name() {
        return NAME;
    }

    /** exchangeKeys → getKeys → shareSecrets → getSecrets; then SUCCESS, RESTART (come back later) or FAILED. */
    @Override
    public Next beforeTraining(Plan plan, Function<FLClientStatus, Next> then) {
        if (plan.secretsThreshold < 1) {
            log.severe("[startFLJob] " + NAME + " without a reconstruct_secrets_threshold (t) in the plan");
            return then.apply(FLClientStatus.FAILED);
        }
        masker = new PairwiseMasker(p.getClientID(), progress.iteration, RANDOM);
        byte[] body = CipherMessages.exchangeKeys(p.getClientID(), progress.iteration, masker.cPublicKey(),
                masker.sPublicKey());
        return server.exchange("exchangeKeys", body, CipherMessages::parseExchangeKeys, ServerExchange.NotReady.WAIT,
                r -> step("exchangeKeys", r, then, () -> getKeys(plan.secretsThreshold, then)));
    }

    private Next getKeys(int t, Function<FLClientStatus, Next> then) {
        return server.exchange("getKeys", CipherMessages.getKeys(p.getClientID(), progress.iteration),
                CipherMessages::parseGetKeys, ServerExchange.NotReady.WAIT, r -> step("getKeys", r, then, () -> {
                    @SuppressWarnings("unchecked")
                    Map<String, byte[][]> keys = (Map<String, byte[][]>) r.cipher;
                    masker.setPeers(keys);
                    log.info("[getKeys] the public keys of " + keys.size() + " devices");
                    // n key agreements, two Shamir splits of degree t - 1 at n points, n seals: a compute step
                    return Next.compute(() -> guarded("shareSecrets", r, then, () -> {
                        byte[] body = CipherMessages.shareSecrets(p.getClientID(), progress.iteration,
                                masker.shares(t));
                        return server.exchange("shareSecrets", body, CipherMessages::parseShareSecrets,
                                ServerExchange.NotReady.WAIT, r2 -> step("shareSecrets", r2, then, () -> getSecrets(then)));
                    }));
                }));
    }

    private Next getSecrets(Function<FLClientStatus, Next> then) {
        return server.exchange("getSecrets", CipherMessages.getSecrets(p.getClientID(), progress.iteration),
                CipherMessages::parseGetSecrets, ServerExchange.NotReady.WAIT, r -> step("getSecrets", r, then,
                        () -> Next.compute(() -> guarded("getSecrets", r, then, () -> {
                            @SuppressWarnings("unchecked")
                            List<PairwiseMasker.Share> shares = (List<PairwiseMasker.Share>) r.cipher;
                            masker.receive(shares); // n key agreements and n opened seals: a compute step
                            log.info("[getSecrets] holding the shares of " + shares.size() + " devices");
                            return then.apply(FLClientStatus.SUCCESS);
                        }))));
    }

    /**
     * The updateModel body of a trained upload (weights × data_size): quantised, masked, as ring
     * elements. Scaffold's control-variate entries are masked in the same vector, named
     * {@link FLMessages#MASKED_CONTROL_VARIATE}{@code <weight>}, so the server learns only their sum too.
     */
    @Override
    public byte[] body(Plan plan, int iteration, Upload upload) {
        Map<String, float[]> entries = new LinkedHashMap<>(upload.weights);
        for (Map.Entry<String, float[]> e : upload.controlVariate.entrySet()) {
            entries.put(FLMessages.MASKED_CONTROL_VARIATE + e.getKey(), e.getValue());
        }
        Map<String, Integer> sizes = new LinkedHashMap<>();
        for (Map.Entry<String, float[]> e : entries.entrySet()) {
            sizes.put(e.getKey(), e.getValue().length);
        }
        long[] y = masker.mask(entries);
        log.info("[updateModel] " + y.length + " values masked for " + NAME);
        return FLMessages.requestUpdateModelMasked(p.getFlName(), p.getClientID(), iteration, sizes, y, upload);
    }

    /** getClientList → reconstructSecrets; then SUCCESS (wait for the model), RESTART or FAILED. */
    @Override
    public Next afterUpload(Plan plan, Function<FLClientStatus, Next> then) {
        return server.exchange("getClientList", CipherMessages.getClientList(p.getClientID(), progress.iteration),
                CipherMessages::parseClientList, ServerExchange.NotReady.WAIT, r -> step("getClientList", r, then, () -> {
                    @SuppressWarnings("unchecked")
                    List<String> uploaders = (List<String>) r.cipher;
                    byte[] body = CipherMessages.reconstructSecrets(p.getClientID(), progress.iteration,
                            masker.reconstructShares(uploaders));
                    log.info("[getClientList] " + uploaders.size() + " devices uploaded");
                    return server.exchange("reconstructSecrets", body, CipherMessages::parseReconstructSecrets,
                            ServerExchange.NotReady.WAIT, r2 -> step("reconstructSecrets", r2, then, () -> {
                                forget();
                                return then.apply(FLClientStatus.SUCCESS);
                            }));
                }));
    }

    /** A reply's verdict: SUCCEED goes on; the round is lost (RESTART at next_req_time) otherwise. */
    private Next step(String round, FLMessages.Response r, Function<FLClientStatus, Next> then, Next.Step onSuccess) {
        if (r == null) {
            return then.apply(FLClientStatus.FAILED);
        }
        if (r.kind == FLMessages.Kind.FINISHED) {
            return then.apply(FLClientStatus.NOT_SELECTED);
        }
        if (r.retcode == ResponseCode.SUCCEED) {
            return guarded(round, r, then, onSuccess);
        }
        // OutOfTime (the phase ended without this device) or RequestError (the server refused it): the
        // iteration goes on without this device, which asks startFLJob again at next_req_time
        log.warning("[" + round + "] " + r + ": this device leaves iteration " + progress.iteration
                + " and comes back at next_req_time " + r.nextReqTime);
        progress.nextReqTime = r.nextReqTime;
        return then.apply(FLClientStatus.RESTART);
    }

    /** Runs {@code work}; a reply this device cannot use (IllegalArgumentException) loses the round, not the job. */
    private Next guarded(String round, FLMessages.Response r, Function<FLClientStatus, Next> then, Next.Step work) {
        try {
            return work.run();
        } catch (IllegalArgumentException e) {
            log.severe("[" + round + "] " + e.getMessage() + "; this device leaves the iteration");
            progress.nextReqTime = r.nextReqTime;
            return then.apply(FLClientStatus.RESTART);
        }
    }

    /** Drops the round's keys and shares. */
    @Override
    public void forget() {
        masker = null;
    }
}
