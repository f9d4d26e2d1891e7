package com.mindspore.flclient;

import java.util.logging.Logger;

import mindspore.schema.ResponseCode;

/**
 * getModel: the global model of an iteration into the local model and its file(s), so that
 * weights and optimizer state carry over to the next round. In a round it waits while the
 * server is not ready; the standalone task ({@link SyncFLJob#getModel()}) does not.
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
     * In a round: SUCCESS when saved; RESTART when out of time, or when the server came back
     * without this device's upload (a restart: {@link UpdateModelStep#confirmUpload()}); FAILED otherwise.
     */
    FLClientStatus run(LocalModel model) {
        while (true) {
            FLMessages.Response r = request(progress.iteration, ServerExchange.NotReady.RETURN_AFTER_OUTAGE);
            if (r == null) {
                return FLClientStatus.FAILED;
            }
            if (r.retcode == ResponseCode.SucNotReady) { // the first answer after an outage
                FLClientStatus upload = updateModel.confirmUpload();
                if (upload != FLClientStatus.SUCCESS) {
                    return upload;
                }
                continue;
            }
            if (r.retcode == ResponseCode.OutOfTime) {
                progress.nextReqTime = r.nextReqTime;
                return FLClientStatus.RESTART;
            }
            return receive(model, r);
        }
    }

    /** The standalone task: the model of {@code iteration} (0: the newest), SucNotReady counted as a failure. */
    FLClientStatus standalone(LocalModel model, int iteration) {
        FLMessages.Response r = request(iteration, ServerExchange.NotReady.FAIL);
        if (r == null) {
            return FLClientStatus.FAILED;
        }
        return receive(model, r);
    }

    private FLClientStatus receive(LocalModel model, FLMessages.Response r) {
        if (r.retcode != ResponseCode.SUCCEED) {
            log.severe("[getModel] refused: " + r);
            return FLClientStatus.FAILED;
        }
        model.setServerWeights(r.featureMap, "getModel");
        log.info("[getModel] the model of iteration " + r.iteration + " is saved to "
                + String.join(" and ", model.save()));
        return FLClientStatus.SUCCESS;
    }

    private FLMessages.Response request(int iteration, ServerExchange.NotReady notReady) {
        byte[] body = FLMessages.requestGetModel(p.getFlName(), iteration);
        FLMessages.Response r = server.exchange("getModel", body, FLMessages::parseGetModel, notReady);
        if (r != null && r.retcode == ResponseCode.SUCCEED) {
            if (r.featureMap.isEmpty()) {
                log.severe("[getModel] the reply carries no weights (feature_map is empty)");
                return null;
            }
            progress.lastModelIteration = r.iteration;
            log.info("[getModel] get response from server ok!");
            log.info("[getModel] model of iteration " + r.iteration + ": " + r.featureMap.size() + " weights");
        }
        return r;
    }
}
