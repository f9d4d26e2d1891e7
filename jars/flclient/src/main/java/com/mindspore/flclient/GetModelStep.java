package com.mindspore.flclient;

import java.util.function.Function;
import java.util.logging.Logger;

import mindspore.schema.ResponseCode;

/**
 * getModel: the global model of an iteration. In a round it waits while the server is not ready
 * and hands the reply on to {@link EvaluateStep}, which loads the trained model, sets the global
 * weights and saves them, so that weights and optimizer state carry over to the next round; the
 * standalone task ({@link SyncFLJob#getModel()}) does not wait.
 */
final class GetModelStep {
    private final FLParameter p;
    private final Logger log;
    private final ServerExchange server;
    private final JobProgress progress;
    private final UpdateModelStep updateModel;

    GetModelStep(FLParameter p, Logger log, ServerExchange server, JobProgress progress, UpdateModelStep updateModel) {
        this.p = p;
        this.log = log;
        this.server = server;
        this.progress = progress;
        this.updateModel = updateModel;
    }

    /**
     * In a round: {@code received} with the SUCCEED reply; else {@code ended} with RESTART when out
     * of time, or when the server came back without this device's upload (a restart:
     * {@link UpdateModelStep#confirmUpload}), FAILED otherwise.
     */
    Next run(Function<FLMessages.Response, Next> received, Function<FLClientStatus, Next> ended) {
        return request(progress.iteration, ServerExchange.NotReady.RETURN_AFTER_OUTAGE, r -> {
            if (r == null) {
                return ended.apply(FLClientStatus.FAILED);
            }
            if (r.retcode == ResponseCode.SucNotReady) { // the first answer after an outage
                return updateModel.confirmUpload(s -> s == FLClientStatus.SUCCESS ? run(received, ended) : ended.apply(s));
            }
            if (r.retcode == ResponseCode.OutOfTime) {
                progress.nextReqTime = r.nextReqTime;
                return ended.apply(FLClientStatus.RESTART);
            }
            if (r.retcode != ResponseCode.SUCCEED) {
                log.severe("[getModel] refused: " + r);
                return ended.apply(FLClientStatus.FAILED);
            }
            return received.apply(r);
        });
    }

    /** The standalone task: the model of {@code iteration} (0: the newest), SucNotReady counted as a failure. */
    Next standalone(int iteration, Function<FLMessages.Response, Next> then) {
        return request(iteration, ServerExchange.NotReady.FAIL, r -> {
            if (r != null && r.retcode != ResponseCode.SUCCEED) {
                log.severe("[getModel] refused: " + r);
                return then.apply(null);
            }
            return then.apply(r);
        });
    }

    /**
     * Sets the global weights of a SUCCEED reply into {@code model} and saves it to the model
     * file(s), forced to disk when {@code durable}.
     */
    static void receive(Logger log, LocalModel model, FLMessages.Response r, boolean durable) {
        model.setServerWeights(r.featureMap, "getModel");
        log.info("[getModel] the model of iteration " + r.iteration + " is saved to "
                + String.join(" and ", model.save(durable)));
    }

    private Next request(int iteration, ServerExchange.NotReady notReady, Function<FLMessages.Response, Next> then) {
        byte[] body = FLMessages.requestGetModel(p.getFlName(), iteration);
        return server.exchange("getModel", body, FLMessages::parseGetModel, notReady, r -> {
            if (r != null && r.retcode == ResponseCode.SUCCEED) {
                if (r.featureMap.isEmpty()) {
                    log.severe("[getModel] the reply carries no weights (feature_map is empty)");
                    return then.apply(null);
                }
                progress.lastModelIteration = r.iteration;
                log.info("[getModel] get response from server ok!");
                log.info("[getModel] model of iteration " + r.iteration + ": " + r.featureMap.size() + " weights");
            }
            return then.apply(r);
        });
    }
}
