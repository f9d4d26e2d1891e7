package com.mindspore.flclient;

import com.mindspore.flclient.cases.JobContext;
import com.mindspore.flclient.cipher.DpNoise;
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
    private final StartFLJobStep startFLJob;
    private final PairwiseMaskingSteps masking;
    private final java.util.Random noise = new java.security.SecureRandom();

    TrainStep(FLParameter p, Logger log, StopSignal stop, JobContext context, JobProgress progress,
              StartFLJobStep startFLJob, PairwiseMaskingSteps masking) {
        this.p = p;
        this.log = log;
        this.stop = stop;
        this.context = context;
        this.progress = progress;
        this.startFLJob = startFLJob;
        this.masking = masking;
    }

    /** The updateModel body, or null when training failed or was stopped (the log says why). */
    byte[] run() {
        if (progress.epochs <= 0) {
            log.severe("[train] the plan asks for " + progress.epochs + " epochs");
            return null;
        }
        try (LocalModel model = LocalModel.open(p, context, p.getTrainModelPath())) {
            model.client().initDataSets(Map.of(RunType.TRAINMODE, p.getDataMap().get(RunType.TRAINMODE)));
            Map<String, float[]> received = progress.admittedWeights; // DP_ENCRYPT's reference; apply() lets go of it
            startFLJob.apply(model);
            Status st = model.client().trainModel(progress.epochs);
            if (st == Status.STOPPED || stop.isStopped()) {
                return null;
            }
            if (st != Status.SUCCESS) {
                log.severe("[train] local training failed: " + st);
                return null;
            }
            log.info("[train] train succeed");
            TrainListener.tell(p, log, progress.iteration, "trained", (long) progress.dataSize * progress.epochs);
            Map<String, float[]> upload = new LinkedHashMap<>();
            for (String name : progress.serverWeightNames) {
                upload.put(name, model.weight(name));
            }
            if ("DP_ENCRYPT".equals(progress.encryptType)) {
                FLMessages.Plan plan = progress.cipherPlan;
                double norm = DpNoise.apply(upload, received, plan.dpNormClip, plan.dpEps, plan.dpDelta, noise);
                log.info("[updateModel] DP_ENCRYPT: update norm " + (float) norm + " clipped to " + plan.dpNormClip
                        + ", Gaussian noise sigma " + (float) DpNoise.sigma(plan.dpNormClip, plan.dpEps, plan.dpDelta));
            }
            scale(upload, progress.dataSize);
            model.saveTrained();
            log.info("[updateModel] " + upload.size() + " weights x data_size " + progress.dataSize + " to upload");
            if (PairwiseMaskingSteps.enabled(progress)) {
                return masking.maskedBody(upload);
            }
            progress.pendingUpload = null;
            if (progress.uploadCodec.compresses()) {
                UploadCodec codec = progress.uploadCodec;
                UploadCodec.Encoded enc = codec.encode(progress.iteration, progress.serverWeightNames, upload, received,
                        progress.dataSize, UploadCodec.residualFile(p.getTrainModelPath()), log);
                progress.pendingUpload = enc;
                log.info("[updateModel] upload_compress_type " + codec.type + ": the difference from the received "
                        + "model at upload_sparse_rate " + codec.rate + ", 8 bits"
                        + (codec.errorFeedback ? ", with error feedback" : ""));
                return CompressMessages.requestUpdateModel(p.getFlName(), p.getClientID(), progress.iteration, codec,
                        enc);
            }
            return FLMessages.requestUpdateModel(p.getFlName(), p.getClientID(), progress.iteration, upload);
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
