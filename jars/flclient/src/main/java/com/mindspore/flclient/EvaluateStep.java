package com.mindspore.flclient;

import com.mindspore.flclient.model.Client;

import java.util.logging.Logger;

/** Evaluate: the accuracy of the new global model on the EVALMODE set, logged and told to the TrainListener. */
final class EvaluateStep {
    private final FLParameter p;
    private final Logger log;
    private final StopSignal stop;
    private final JobProgress progress;

    EvaluateStep(FLParameter p, Logger log, StopSignal stop, JobProgress progress) {
        this.p = p;
        this.log = log;
        this.stop = stop;
        this.progress = progress;
    }

    /** SUCCESS, also without evaluation data; FAILED when stopped. */
    FLClientStatus run(Client client, int evalSamples) {
        if (evalSamples <= 0) {
            log.info("[evaluate] no EVALMODE data in the data map: the new model is not evaluated");
            return FLClientStatus.SUCCESS;
        }
        float acc = client.evalModel();
        if (stop.isStopped()) {
            return FLClientStatus.FAILED;
        }
        log.info("[evaluate] evaluate acc: " + acc);
        TrainListener l = p.getTrainListener();
        if (l != null) {
            try {
                l.onIterationAccuracy(progress.iteration, acc);
            } catch (RuntimeException e) {
                log.warning("the TrainListener failed in onIterationAccuracy (ignored): " + e);
            }
        }
        return FLClientStatus.SUCCESS;
    }
}
