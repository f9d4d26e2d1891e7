package com.mindspore.flclient;

import java.util.function.Function;
import java.util.logging.Logger;

import mindspore.schema.ResponseCode;

/**
 * The device's asynchronous loop (the server's {@code server_mode} ASYNC_FEDERATED_LEARNING, told in
 * FLPlan.server_mode; docs/async.md): startFLJob (a seat among the server's async_concurrency, the
 * newest model) → train → asyncUpdateModel (the weights × data_size, the version trained on, data_size)
 * → asyncGetModel (the newest model, evaluated and saved as getModel's) → startFLJob again, until the
 * server's job has its plan's versions. {@link RoundLoop} runs it with the same steps, permits and
 * engine as the synchronous rounds; only the upload and the fetch are this class's.
 *
 * <p>A refused upload is not a failure: a stale one (above the server's max_staleness) is dropped and
 * the device asks for the newest model at once; a duplicate (the server already holds this device's
 * upload of that version, e.g. sent again after an outage) counts as accepted.
 */
final class AsyncRounds {
    /** The asynchronous server mode (pyflclient/server/asynchrony.py's ASYNC_SERVER_MODE, held equal by a test). */
    static final String SERVER_MODE = "ASYNC_FEDERATED_LEARNING";
    static final String UPLOAD_ROUND = "asyncUpdateModel";
    static final String FETCH_ROUND = "asyncGetModel";

    private final FLParameter p;
    private final Logger log;
    private final ServerExchange server;
    private final JobProgress progress;

    AsyncRounds(FLParameter p, Logger log, ServerExchange server, JobProgress progress) {
        this.p = p;
        this.log = log;
        this.server = server;
        this.progress = progress;
    }

    /** The asyncUpdateModel body of a trained {@code upload} (its weights already × data_size). */
    static byte[] body(FLParameter p, JobProgress progress, Upload upload) {
        return FLMessages.requestAsyncUpdateModel(p.getFlName(), p.getClientID(), progress.iteration,
                progress.dataSize, upload.weights);
    }

    /**
     * asyncUpdateModel; then SUCCESS when the server took it (or holds it already), RESTART when it is
     * too stale (ask startFLJob for the newest model now), NOT_SELECTED when the job finished, FAILED otherwise.
     */
    Next upload(byte[] body, Function<FLClientStatus, Next> then) {
        return server.exchange(UPLOAD_ROUND, body, FLMessages::parseAsyncUpdateModel, ServerExchange.NotReady.WAIT,
                true, r -> {
            if (r == null) {
                return then.apply(FLClientStatus.FAILED);
            }
            if (r.kind == FLMessages.Kind.FINISHED) {
                log.info("[" + UPLOAD_ROUND + "] the server's job finished before this upload of version "
                        + progress.iteration + ": " + progress.notSelectedAnyMore());
                return then.apply(FLClientStatus.NOT_SELECTED);
            }
            if (r.retcode == ResponseCode.OutOfTime) {
                progress.nextReqTime = Long.toString(System.currentTimeMillis());
                log.info("[" + UPLOAD_ROUND + "] refused (" + r + "): asking for the newest model");
                return then.apply(FLClientStatus.RESTART);
            }
            if (r.retcode == ResponseCode.RequestError && r.reason.contains(FLMessages.ALREADY_UPLOADED)) {
                log.info("[" + UPLOAD_ROUND + "] the server already holds this upload (" + r + ")");
            } else if (r.retcode != ResponseCode.SUCCEED) {
                log.severe("[" + UPLOAD_ROUND + "] refused: " + r);
                return then.apply(FLClientStatus.FAILED);
            }
            log.info("[" + UPLOAD_ROUND + "] accepted: trained on version " + progress.iteration + ", the server is at "
                    + r.iteration);
            TrainListener.tell(p, log, progress.iteration, "uploaded", progress.dataSize);
            return then.apply(FLClientStatus.SUCCESS);
        });
    }

    /** asyncGetModel: {@code received} with the newest model (its version becomes this round's), else {@code ended}. */
    Next fetch(Function<FLMessages.Response, Next> received, Function<FLClientStatus, Next> ended) {
        byte[] body = FLMessages.requestAsyncGetModel(p.getFlName(), progress.iteration);
        return server.exchange(FETCH_ROUND, body, FLMessages::parseAsyncGetModel, ServerExchange.NotReady.WAIT, true,
                r -> {
            if (r == null) {
                return ended.apply(FLClientStatus.FAILED);
            }
            if (r.kind == FLMessages.Kind.FINISHED) {
                return ended.apply(FLClientStatus.NOT_SELECTED);
            }
            if (r.retcode != ResponseCode.SUCCEED || r.featureMap.isEmpty()) {
                log.severe("[" + FETCH_ROUND + "] refused: " + r + (r.featureMap.isEmpty() ? " (no weights)" : ""));
                return ended.apply(FLClientStatus.FAILED);
            }
            progress.iteration = r.iteration;
            progress.lastModelIteration = r.iteration;
            log.info("[" + FETCH_ROUND + "] model of version " + r.iteration + ": " + r.featureMap.size() + " weights");
            return received.apply(r);
        });
    }
}
