package com.mindspore.flclient;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.logging.Logger;

import mindspore.schema.ResponseCode;

/**
 * updateModel: uploads every weight the server sent in startFLJob, trained and multiplied by
 * data_size (the server divides the sum by the total data_size: FedAvg).
 */
final class UpdateModelStep {
    private final FLParameter p;
    private final Logger log;
    private final ServerExchange server;
    private final JobProgress progress;

    UpdateModelStep(FLParameter p, Logger log, ServerExchange server, JobProgress progress) {
        this.p = p;
        this.log = log;
        this.server = server;
        this.progress = progress;
    }

    /** SUCCESS when accepted; RESTART when out of time (come back at next_req_time); FAILED otherwise. */
    FLClientStatus run(LocalModel model, int dataSize) {
        Map<String, float[]> upload = new LinkedHashMap<>();
        for (String name : progress.serverWeightNames) {
            float[] w = model.weight(name);
            for (int i = 0; i < w.length; i++) {
                w[i] *= dataSize;
            }
            upload.put(name, w);
        }
        byte[] body = FLMessages.requestUpdateModel(p.getFlName(), p.getClientID(), progress.iteration, upload);
        FLMessages.Response r = server.exchange("updateModel", body, FLMessages::parseUpdateModel, false);
        if (r == null) {
            return FLClientStatus.FAILED;
        }
        if (r.retcode == ResponseCode.OutOfTime) {
            progress.nextReqTime = r.nextReqTime;
            log.info("[updateModel] out of time (" + r + "): come back at next_req_time " + r.nextReqTime);
            return FLClientStatus.RESTART;
        }
        if (r.retcode != ResponseCode.SUCCEED) {
            log.severe("[updateModel] refused: " + r);
            return FLClientStatus.FAILED;
        }
        log.info("[updateModel] updateModel succeed: " + upload.size() + " weights x data_size " + dataSize);
        return FLClientStatus.SUCCESS;
    }
}
