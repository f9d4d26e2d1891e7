package com.mindspore.flclient;

import com.mindspore.flclient.model.RunType;

import com.mindspore.flclient.cases.JobContext;

import java.util.Map;
import java.util.logging.Logger;

/**
 * After getModel, holding a training permit (a {@link Next#COMPUTE} step): the global model into
 * the model file(s), on top of the trained optimizer state, and its accuracy on the EVALMODE set,
 * logged and told to the TrainListener. Model and data are dropped at the end.
 */
final class EvaluateStep {
    private final FLParameter p;
    private final Logger log;
    private final StopSignal stop;
    private final JobContext context;
    private final JobProgress progress;
    private final EvaluationPlan plan;
    private final boolean durable;
    /** The accuracy of the last {@link #run}, NaN when it did not evaluate (for {@link PushMetricsStep}). */
    float lastAccuracy = Float.NaN;

    EvaluateStep(FLParameter p, Logger log, StopSignal stop, JobContext context, JobProgress progress,
                 EvaluationPlan plan, boolean durable) {
        this.durable = durable;
        this.p = p;
        this.log = log;
        this.stop = stop;
        this.context = context;
        this.progress = progress;
        this.plan = plan;
    }

    /** SUCCESS, also without evaluation data; FAILED when stopped. */
    FLClientStatus run(FLMessages.Response model) {
        lastAccuracy = Float.NaN;
        boolean evaluates = progress.evalSamples > 0
                && plan.evaluates(p.getClientID(), progress.iteration, progress.iterations);
        if (!evaluates) {
            if (progress.runtimeModel) { // nothing to run: the weights go into the file without loading the model
                log.info("[getModel] the model of iteration " + model.iteration + " is saved to " + String.join(
                        " and ", LocalModel.saveServerWeights(p, model.featureMap, "getModel", durable)));
            } else {
                try (LocalModel m = LocalModel.openTrained(p, context)) {
                    GetModelStep.receive(log, m, model, durable);
                }
            }
            if (progress.evalSamples <= 0) {
                log.info("[evaluate] no EVALMODE data in the data map: the new model is not evaluated");
            } else {
                log.info("[evaluate] not evaluated after iteration " + progress.iteration + " (" + plan + ")");
                TrainListener.tell(p, log, progress.iteration, "evaluated", 0);
            }
            return FLClientStatus.SUCCESS;
        }
        try (LocalModel m = LocalModel.openTrained(p, context)) {
            GetModelStep.receive(log, m, model, durable);
            m.client().initDataSets(Map.of(RunType.EVALMODE, p.getDataMap().get(RunType.EVALMODE)));
            float acc = m.client().evalModel();
            if (stop.isStopped()) {
                return FLClientStatus.FAILED;
            }
            log.info("[evaluate] evaluate acc: " + acc);
            lastAccuracy = acc;
            log.info("[evaluate] evaluate succeed");
            TrainListener.tell(p, log, progress.iteration, "evaluated", progress.evalSamples);
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
}
