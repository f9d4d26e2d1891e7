package com.mindspore.flclient;

import com.mindspore.flclient.cases.TrainedModels;

import java.nio.file.Path;
import java.util.function.Function;
import java.util.logging.Logger;

import mindspore.schema.ResponseCode;

/**
 * updateModel: uploads every weight the server sent in startFLJob, trained and multiplied by
 * data_size (the server divides the sum by the total data_size: FedAvg; the body is made by
 * {@link TrainStep}). The accepted body is kept until getModel ends the round, to confirm it
 * after an outage: in memory within {@link TrainedModels}' budget, else in the scratch file
 * {@code <trainModelPath>.upload} (3,500 simulated devices waiting for the iteration's end held
 * 930 MB of LeNet uploads).
 */
final class UpdateModelStep {
    private final FLParameter p;
    private final Logger log;
    private final ServerExchange server;
    private final JobProgress progress;
    /** Whether the server accepted the upload kept at {@link #keptAt()}, for {@link #confirmUpload()}. */
    private boolean accepted;
    /** Whether an upload is kept at {@link #keptAt()} (in memory or in its file). */
    private boolean keeping;
    /** An upload the server lost (OutOfTime after an outage), for {@link RoundLoop} to keep: {@link #takeLost()}. */
    private byte[] lost;

    UpdateModelStep(FLParameter p, Logger log, ServerExchange server, JobProgress progress) {
        this.p = p;
        this.log = log;
        this.server = server;
        this.progress = progress;
    }

    /**
     * Then SUCCESS when accepted; RESTART when out of time (come back at next_req_time); NOT_SELECTED
     * when the server's job finished before the upload; FAILED otherwise.
     */
    Next run(byte[] body, Function<FLClientStatus, Next> then) {
        forget();
        // the restart check's copy, made here (on the trainer) rather than in the reply's callback
        TrainedModels.keepOrWrite(keptAt(), body);
        keeping = true;
        return server.exchange("updateModel", body, FLMessages::parseUpdateModel, ServerExchange.NotReady.WAIT,
                true, r -> {
            if (r == null) {
                return then.apply(FLClientStatus.FAILED);
            }
            if (r.kind == FLMessages.Kind.FINISHED) {
                // the job's last iteration closed (its window ended) while this device trained: as a late upload
                // of an earlier iteration (OutOfTime, then startFLJob answered "finished"), the job ended
                // without it, which retrying cannot change
                log.info("[updateModel] the server's job finished before this upload of iteration " + progress.iteration
                        + " arrived: " + progress.notSelectedAnyMore());
                return then.apply(FLClientStatus.NOT_SELECTED);
            }
            if (r.retcode == ResponseCode.OutOfTime && server.reconnected()) {
                lost = body;
                return then.apply(rejoin("the server was unreachable during this upload and refuses it now (" + r
                        + "; restarted?)"));
            }
            if (r.retcode == ResponseCode.OutOfTime) {
                progress.nextReqTime = r.nextReqTime;
                log.info("[updateModel] out of time (" + r + "): come back at next_req_time " + r.nextReqTime);
                return then.apply(FLClientStatus.RESTART);
            }
            if (r.retcode == ResponseCode.RequestError && r.reason.contains(FLMessages.ALREADY_UPLOADED)) {
                // this device uploaded to this iteration before (a client restarted after its upload, whose
                // training from the same model and data made the same update): the server holds it
                log.info("[updateModel] the server already holds this device's upload of iteration "
                        + progress.iteration + " (" + r + "): waiting for the model");
            } else if (r.retcode != ResponseCode.SUCCEED) {
                log.severe("[updateModel] refused: " + r);
                return then.apply(FLClientStatus.FAILED);
            }
            accepted = true;
            ScaffoldTraining.commit(p); // the server holds this upload's delta c_i: c_i+ becomes this device's c_i
            if (progress.pendingUpload != null) {
                // the server holds this upload: what its compression left out is the error feedback's residual now
                progress.pendingUpload.commit(UploadCodec.residualFile(p.getTrainModelPath()));
                progress.pendingUpload = null;
            }
            log.info("[updateModel] get response from server ok!");
            log.info("[updateModel] updateModel succeed: " + progress.serverWeightNames.size() + " weights x data_size "
                    + progress.dataSize);
            TrainListener.tell(p, log, progress.iteration, "uploaded", progress.dataSize);
            return then.apply(FLClientStatus.SUCCESS);
        });
    }

    /**
     * A server that lost this device's admission in an outage (a restart resumes at its newest
     * checkpoint with nobody admitted): ask startFLJob at once instead of at next_req_time, which
     * is the end of an iteration the device may still join; startFLJob says when if it cannot.
     */
    private FLClientStatus rejoin(String why) {
        progress.nextReqTime = Long.toString(System.currentTimeMillis());
        log.info("[updateModel] " + why + ": asking startFLJob for the server's current iteration now");
        return FLClientStatus.RESTART;
    }

    /**
     * After the server was unreachable while this device waited for the model of the iteration it
     * uploaded to: sends the same upload again to learn whether the server still holds it. A
     * restarted server has lost it (or has moved to another iteration) and answers OutOfTime: the
     * device asks startFLJob for the server's current iteration at once (RESTART). A server that kept it refuses the
     * duplicate (RequestError) and one that takes it answers SUCCEED: either way the device goes
     * on waiting for the model (SUCCESS).
     */
    Next confirmUpload(Function<FLClientStatus, Next> then) {
        if (!accepted) {
            return then.apply(FLClientStatus.SUCCESS);
        }
        byte[] lastUpload = TrainedModels.read(keptAt());
        log.info("[updateModel] the server was unreachable while this device waited for the model of iteration "
                + progress.iteration + ": sending its upload again to learn whether the server still holds it");
        return server.exchange("updateModel", lastUpload, FLMessages::parseUpdateModel, ServerExchange.NotReady.WAIT, r -> {
            if (r == null) {
                return then.apply(FLClientStatus.FAILED);
            }
            if (r.retcode == ResponseCode.OutOfTime) {
                lost = lastUpload;
                forget();
                return then.apply(rejoin("the server no longer holds this device's upload of iteration "
                        + progress.iteration + " (" + r + "; restarted?)"));
            }
            log.info("[updateModel] the server still holds this device's upload of iteration " + progress.iteration
                    + " (" + r + "): waiting for the model");
            return then.apply(FLClientStatus.SUCCESS);
        });
    }

    /** Forgets the upload (the round is over). */
    void forget() {
        accepted = false;
        if (keeping) {
            keeping = false;
            TrainedModels.drop(keptAt());
        }
    }

    /** The kept upload's place in {@link TrainedModels}: {@code <trainModelPath>.upload}. */
    private Path keptAt() {
        return Path.of(p.getTrainModelPath() + ".upload");
    }

    /** The upload the server lost in this round (null if none), once. */
    byte[] takeLost() {
        byte[] taken = lost;
        lost = null;
        return taken;
    }
}
