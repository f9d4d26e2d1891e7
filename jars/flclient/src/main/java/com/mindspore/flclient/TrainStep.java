package com.mindspore.flclient;

import com.mindspore.flclient.cases.JobContext;
import com.mindspore.flclient.model.RunType;
import com.mindspore.flclient.model.Status;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * Local training, run while the client holds a training permit (a {@link Next#COMPUTE} step):
 * loads model and training data, sets what startFLJob brought, trains the plan's epochs, and
 * turns the trained weights × data_size into the updateModel body. The trained model (weights
 * and optimizer state) goes to {@link LocalModel#trainedPath} for getModel; model and data are
 * dropped before the upload is sent, so nothing but that body outlives the permit.
 */
final class TrainStep {
    private final FLParameter p;
    private final Logger log;
    private final StopSignal stop;
    private final JobContext context;
    private final JobProgress progress;
    /** The training plug-in of each device kind of the aggregation types. */
    private final Map<String, LocalTraining> training;

    TrainStep(FLParameter p, Logger log, StopSignal stop, JobContext context, JobProgress progress) {
        this.p = p;
        this.log = log;
        this.stop = stop;
        this.context = context;
        this.progress = progress;
        this.training = LocalTraining.forClient(p);
    }

    /**
     * The updateModel body of this round under {@code plan}, protected by {@code protection}, or
     * null when training failed or was stopped (the log says why).
     */
    byte[] run(Plan plan, UploadProtection protection) {
        try (LocalModel model = LocalModel.open(p, context, p.getTrainModelPath())) {
            model.client().initDataSets(Map.of(RunType.TRAINMODE, p.getDataMap().get(RunType.TRAINMODE)));
            Map<String, float[]> received = progress.admittedWeights; // DP_ENCRYPT's reference
            apply(plan, model);
            float loss = 0f;
            if (plan.reportsLoss()) {
                loss = model.client().trainingLoss();
                log.info("[train] upload_loss " + loss + ": the mean training loss at the received model");
            }
            LocalTraining.Round local = training.get(plan.aggregation.device).begin(plan, model);
            Status st = model.client().trainModel(plan.epochs);
            if (st == Status.STOPPED || stop.isStopped()) {
                return null;
            }
            if (st != Status.SUCCESS) {
                log.severe("[train] local training failed: " + st);
                return null;
            }
            Map<String, float[]> controlVariate = local.end(model, progress.serverWeightNames);
            log.info("[train] train succeed");
            TrainListener.tell(p, log, progress.iteration, "trained", (long) progress.dataSize * plan.epochs);
            Map<String, float[]> upload = new LinkedHashMap<>();
            for (String name : progress.serverWeightNames) {
                upload.put(name, model.weight(name));
            }
            protection.protectTrained(plan, upload, received);
            scale(upload, progress.dataSize);
            model.saveTrained();
            log.info("[updateModel] " + upload.size() + " weights x data_size " + progress.dataSize + " to upload"
                    + (controlVariate.isEmpty() ? "" : ", with the control variate of " + controlVariate.size()));
            progress.pendingUpload = null;
            UploadCodec codec = plan.uploadCodec;
            if (codec.compresses()) { // (never with masked uploads: Plan.decode refuses the combination)
                progress.pendingUpload = codec.encode(progress.iteration, progress.serverWeightNames, upload, received,
                        progress.dataSize, UploadCodec.residualFile(p.getTrainModelPath()), log);
                log.info("[updateModel] upload_compress_type " + codec.type + ": the difference from the received "
                        + "model at upload_sparse_rate " + codec.rate + ", 8 bits"
                        + (codec.errorFeedback ? ", with error feedback" : ""));
            }
            Upload done = new Upload(upload, plan.reportsLoss(), loss, controlVariate, progress.pendingUpload);
            return plan.async ? AsyncRounds.body(p, progress, done) : protection.body(plan, progress.iteration, done);
        }
    }

    /** Sets what admission brought into the freshly loaded model: the batch check, the server's weights, the plan's learning rate. */
    private void apply(Plan plan, LocalModel model) {
        if (plan.miniBatch > 0) {
            // mini_batch 0: the server did not say
            model.requireBatch("the server's client_batch_size", plan.miniBatch,
                    "start the server with client_batch_size");
        }
        model.setServerWeights(progress.admittedWeights, "startFLJob");
        progress.admittedWeights = null;
        if (plan.lr > 0) {
            model.setLearningRate(plan.lr);
        }
    }

    /**
     * Multiplies every weight by {@code factor} (r1.6 uploads weights x data_size). Its own method:
     * a loop over 60,000 floats inside {@link #run} made the JIT compile all of run (and what it
     * inlines) on-stack, then again normally: ~0.7 s of C2 time each in a simulation's first iterations.
     */
    static void scale(Map<String, float[]> weights, float factor) {
        for (float[] w : weights.values()) {
            for (int i = 0; i < w.length; i++) {
                w[i] *= factor;
            }
        }
    }

    /** Reads the number of training and evaluation samples once (model loaded for the batch check, then dropped). */
    boolean probe() {
        Map<RunType, List<String>> files = new java.util.EnumMap<>(RunType.class);
        files.put(RunType.TRAINMODE, p.getDataMap().get(RunType.TRAINMODE));
        if (p.getDataMap().containsKey(RunType.EVALMODE)) {
            files.put(RunType.EVALMODE, p.getDataMap().get(RunType.EVALMODE));
        }
        try (LocalModel model = LocalModel.open(p, context, p.getTrainModelPath())) {
            progress.runtimeModel = model.onRuntime();
            Map<RunType, Integer> sizes = model.client().initDataSets(files);
            progress.dataSize = sizes.getOrDefault(RunType.TRAINMODE, 0);
            progress.evalSamples = sizes.getOrDefault(RunType.EVALMODE, 0);
            if (progress.dataSize <= 0) {
                log.severe("[startFLJob] no training sample: the case read 0 samples from " + files.get(RunType.TRAINMODE));
                return false;
            }
            int batch = model.batchSize();
            int pad = (batch - progress.dataSize % batch) % batch;
            if (pad > 0) {
                log.info("train data: " + progress.dataSize + " samples in batches of " + batch
                        + "; the last batch is completed with " + pad + " repeated samples (loss and accuracy count "
                        + "each real sample once; the repeats weigh twice in that one step's gradient)");
            }
            return true;
        }
    }

    /**
     * Waits for a training permit (the blocking driver; the engine's trainer threads are its
     * permits); false when stopped first.
     */
    static boolean acquire(Semaphore permits, StopSignal stop) {
        try {
            while (!stop.isStopped()) {
                if (permits.tryAcquire(100, TimeUnit.MILLISECONDS)) {
                    if (stop.isStopped()) {
                        permits.release();
                        return false;
                    }
                    return true;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return false;
    }
}
