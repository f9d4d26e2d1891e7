package com.mindspore.flclient;

import com.mindspore.flclient.cases.JobContext;

import java.util.ArrayList;
import java.util.function.Function;
import java.util.logging.Logger;

import mindspore.schema.ResponseCode;

/**
 * startFLJob: asks to join the current iteration with the number of training samples; once
 * admitted, takes the plan (iterations, epochs, learning rate) and the weights, and checks that
 * the plan can be followed (its encrypt_type and cipher parameters). Model and data are not loaded here: an
 * admitted client loads them when it gets its training permit ({@link TrainStep}).
 */
final class StartFLJobStep {
    private final FLParameter p;
    private final Logger log;
    private final ServerExchange server;
    private final JobContext context;
    private final JobProgress progress;

    StartFLJobStep(FLParameter p, Logger log, ServerExchange server, JobContext context, JobProgress progress) {
        this.p = p;
        this.log = log;
        this.server = server;
        this.context = context;
        this.progress = progress;
    }

    /**
     * Then SUCCESS when admitted; RESTART when to come back at next_req_time; NOT_SELECTED when the
     * server's job ended while this client waited; FAILED otherwise.
     */
    Next run(Function<FLClientStatus, Next> then) {
        byte[] body = FLMessages.requestFLJob(p.getFlName(), p.getClientID(), progress.iteration, progress.dataSize);
        log.info("[startFLJob] request startFLJob with data_size " + progress.dataSize);
        return server.exchange("startFLJob", body, FLMessages::parseStartFLJob, ServerExchange.NotReady.WAIT,
                true, r -> then.apply(decide(r)));
    }

    private FLClientStatus decide(FLMessages.Response r) {
        if (r == null) {
            return FLClientStatus.FAILED;
        }
        if (r.kind == FLMessages.Kind.FINISHED) {
            // the job ended without this client: not a failure of the device (retrying cannot admit it)
            log.info("[startFLJob] the server's job is finished: " + progress.notSelectedAnyMore());
            return FLClientStatus.NOT_SELECTED;
        }
        if (r.retcode == ResponseCode.OutOfTime || r.retcode == ResponseCode.NotSelected
                || (r.retcode == ResponseCode.SUCCEED && !r.isSelected)) {
            progress.nextReqTime = r.nextReqTime;
            log.info("[startFLJob] not admitted now (" + r + "): come back at next_req_time " + r.nextReqTime);
            return FLClientStatus.RESTART;
        }
        log.info("[startFLJob] get response from server ok!");
        if (r.retcode != ResponseCode.SUCCEED) {
            log.severe("[startFLJob] refused: " + r + "; the request is invalid for this server, the job ends");
            return FLClientStatus.FAILED;
        }
        if (r.plan == null) {
            log.severe("[startFLJob] the reply has no fl_plan_config; the server is not a FL server of this protocol");
            return FLClientStatus.FAILED;
        }
        if (r.featureMap.isEmpty()) {
            log.severe("[startFLJob] the reply carries no weights (feature_map is empty)");
            return FLClientStatus.FAILED;
        }
        progress.iteration = r.iteration;
        progress.iterations = r.plan.iterations;
        context.setIteration(r.iteration);
        log.info("[startFLJob] startFLJob succeed, curIteration: " + r.iteration);
        log.info("[startFLJob] plan: iterations " + r.plan.iterations + ", epochs " + r.plan.epochs + ", mini_batch "
                + r.plan.miniBatch + ", lr " + r.plan.lr + ", encrypt_type '" + r.plan.encryptType + "'");
        String encrypt = r.plan.encryptType;
        if (!encrypt.isEmpty() && !"NOT_ENCRYPT".equals(encrypt) && !"PW_ENCRYPT".equals(encrypt)
                && !"DP_ENCRYPT".equals(encrypt)) {
            log.severe("[startFLJob] the server asks for encrypt_type " + encrypt
                    + ", which this client does not implement (NOT_ENCRYPT, PW_ENCRYPT, DP_ENCRYPT)");
            return FLClientStatus.FAILED;
        }
        if ("PW_ENCRYPT".equals(encrypt) && r.plan.t < 1) {
            log.severe("[startFLJob] PW_ENCRYPT without a reconstruct_secrets_threshold (t) in the plan");
            return FLClientStatus.FAILED;
        }
        if ("DP_ENCRYPT".equals(encrypt) && !(r.plan.dpNormClip > 0 && r.plan.dpEps > 0 && r.plan.dpDelta > 0
                && r.plan.dpDelta < 1)) {
            log.severe("[startFLJob] DP_ENCRYPT with unusable parameters: dp_eps " + r.plan.dpEps + ", dp_delta "
                    + r.plan.dpDelta + ", dp_norm_clip " + r.plan.dpNormClip);
            return FLClientStatus.FAILED;
        }
        try {
            progress.uploadCodec = UploadCodec.decode(r.plan.uploadCompressType, r.plan.uploadSparseRate);
        } catch (IllegalArgumentException e) {
            log.severe("[startFLJob] " + e.getMessage() + "; this client cannot follow it, the job ends");
            return FLClientStatus.FAILED;
        }
        progress.encryptType = encrypt;
        progress.cipherPlan = r.plan;
        progress.planBatch = r.plan.miniBatch;
        progress.planLr = r.plan.lr;
        progress.admittedWeights = r.featureMap;
        progress.serverWeightNames = new ArrayList<>(r.featureMap.keySet());
        progress.epochs = r.plan.epochs;
        TrainListener.tell(p, log, r.iteration, "admitted", progress.dataSize);
        return FLClientStatus.SUCCESS;
    }

    /** Sets what admission brought into the freshly loaded model (on the trainer, before training). */
    void apply(LocalModel model) {
        if (progress.planBatch > 0) {
            // mini_batch 0: the server did not say
            model.requireBatch("the server's client_batch_size", progress.planBatch,
                    "start the server with client_batch_size");
        }
        model.setServerWeights(progress.admittedWeights, "startFLJob");
        progress.admittedWeights = null;
        if (progress.planLr > 0) {
            model.setLearningRate(progress.planLr);
        }
    }
}
