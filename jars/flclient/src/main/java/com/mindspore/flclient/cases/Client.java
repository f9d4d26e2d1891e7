package com.mindspore.flclient.cases;

import com.mindspore.flclient.model.Status;

import com.mindspore.flclient.model.RunType;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;

/**
 * Base class of a federated-learning case (r1.6's {@code com.mindspore.flclient.cases.Client}):
 * the case says how its files become {@link DataSet}s and which callbacks watch the loops;
 * this class runs training, evaluation and inference on the .ms model and moves weights in
 * and out. The framework finds the case by class name ({@code flName}) and makes one instance
 * per round: the model and data live only while a round runs ({@link #free()} drops them), so
 * an idle client costs its parameters only.
 *
 * <p>A subclass needs a public no-argument constructor.
 */
public abstract class Client {
    /** The loaded model (r1.6 called it trainSession); null until {@link #initSessionAndInputs}. */
    protected TrainableModel model;

    /** Data sets by run type, filled by {@link #initDataSets}. */
    protected final Map<RunType, DataSet> dataSets = new EnumMap<>(RunType.class);

    private JobContext context = JobContext.standalone();

    /**
     * Reads the case's files into {@link #dataSets}.
     *
     * @param files for each run type the files the user gave (for LeNet [data.bin, label.bin])
     * @return the number of real samples per run type
     */
    public abstract Map<RunType, Integer> initDataSets(Map<RunType, List<String>> files);

    /** The callbacks that watch a loop over {@code dataSet}. */
    public abstract List<Callback> initCallbacks(RunType runType, DataSet dataSet);

    /** The accuracy measured by the eval callbacks after {@link #evalModel()}. */
    public abstract float getEvalAccuracy(List<Callback> evalCallbacks);

    /** The inference result of the infer callbacks after {@link #inferModel()} (for classifiers: Integer labels). */
    public abstract List<Object> getInferResult(List<Callback> inferCallbacks);

    /**
     * pyflclient addition: an INFERMODE data set from in-memory images in the case's file layout
     * (for LeNet: float32 NHWC (count, 32, 32, 3)). Cases that support it override this.
     *
     * @return the number of samples per run type
     */
    public Map<RunType, Integer> initInferData(float[] samples, int count) {
        throw new UnsupportedOperationException(getClass().getName() + " does not take in-memory inference data");
    }

    /** Called by the framework before anything else: the job's logger, listener and stop flag. */
    public void setContext(JobContext ctx) {
        this.context = ctx;
    }

    public JobContext getContext() {
        return context;
    }

    protected Logger logger() {
        return context.logger();
    }

    /** The data set of a run type after {@link #initDataSets}, or null. */
    public DataSet getDataSet(RunType type) {
        return dataSets.get(type);
    }

    /** Loads the model file. */
    public Status initSessionAndInputs(String modelPath) {
        if (modelPath == null) {
            logger().severe("no model path given: set trainModelPath / inferModelPath");
            return Status.NULLPTR;
        }
        if (model != null) {
            model.close();
            model = null;
        }
        model = openModel(Path.of(modelPath));
        return Status.SUCCESS;
    }

    /** Opens a model file; the default is the .ms runtime. Override to run another kind of model. */
    protected TrainableModel openModel(Path modelPath) {
        return RuntimeModel.load(modelPath);
    }

    /** The loaded model, or null. */
    public TrainableModel getModel() {
        return model;
    }

    /** Sets the learning rate (the framework sets the plan's, checked once when the plan arrived). */
    public Status setLearningRate(float lr) {
        if (model == null) {
            return Status.NULLPTR;
        }
        model.setLearningRate(lr);
        return Status.SUCCESS;
    }

    /**
     * The mean loss over the TRAINMODE set at the current weights, forward passes only, each real
     * sample counted once (a padded last batch weighs by its real samples, as {@link LossCallback}
     * counts): upload_loss, the loss at the received model before training.
     */
    public float trainingLoss() {
        if (model == null) {
            throw new IllegalStateException("no model loaded: call initSessionAndInputs first");
        }
        DataSet ds = dataSets.get(RunType.TRAINMODE);
        if (ds == null) {
            throw new IllegalStateException("no " + RunType.TRAINMODE + " data set: give it in FLParameter.dataMap");
        }
        int batch = model.batchSize();
        float[] data = new float[batch * model.sampleSize()];
        int[] labels = new int[batch];
        double sum = 0;
        long samples = 0;
        for (int b = 0; b < ds.batchNum(batch); b++) {
            int valid = ds.fillBatch(b, batch, data, labels);
            sum += (double) model.loss(data, labels) * valid;
            samples += valid;
        }
        return (float) (sum / samples);
    }

    /** Trains {@code epochs} epochs over the TRAINMODE set. */
    public Status trainModel(int epochs) {
        if (epochs <= 0) {
            logger().severe("epochs must be positive, got " + epochs);
            return Status.INVALID;
        }
        return runLoop(RunType.TRAINMODE, epochs).status;
    }

    /** Accuracy of the model on the EVALMODE set (NaN on failure). */
    public float evalModel() {
        LoopResult r = runLoop(RunType.EVALMODE, 1);
        return r.status == Status.SUCCESS ? getEvalAccuracy(r.callbacks) : Float.NaN;
    }

    /** Predictions for the INFERMODE set (null on failure). */
    public List<Object> inferModel() {
        LoopResult r = runLoop(RunType.INFERMODE, 1);
        return r.status == Status.SUCCESS ? getInferResult(r.callbacks) : null;
    }

    private static final class LoopResult {
        final Status status;
        final List<Callback> callbacks;

        LoopResult(Status status, List<Callback> callbacks) {
            this.status = status;
            this.callbacks = callbacks;
        }
    }

    private LoopResult runLoop(RunType type, int epochs) {
        if (model == null) {
            logger().severe("no model loaded: call initSessionAndInputs first");
            return new LoopResult(Status.NULLPTR, List.of());
        }
        DataSet ds = dataSets.get(type);
        if (ds == null) {
            logger().severe("no " + type + " data set: give it in FLParameter.dataMap");
            return new LoopResult(Status.NULLPTR, List.of());
        }
        int batch = model.batchSize();
        int sampleSize = model.sampleSize();
        if (ds.sampleSize() != sampleSize) {
            throw new IllegalArgumentException(type + " samples have " + ds.sampleSize()
                    + " floats but the model's input takes " + sampleSize + " per sample");
        }
        List<Callback> callbacks = new ArrayList<>(initCallbacks(type, ds));
        for (Callback cb : callbacks) {
            cb.bind(context);
        }
        float[] data = new float[batch * sampleSize];
        int[] labels = new int[batch];
        int batches = ds.batchNum(batch);
        long start = System.nanoTime();
        for (int epoch = 1; epoch <= epochs; epoch++) {
            for (int b = 0; b < batches; b++) {
                if (context.isStopRequested()) {
                    logger().info("stop requested: leaving the " + type + " loop");
                    return new LoopResult(Status.STOPPED, callbacks);
                }
                int valid = ds.fillBatch(b, batch, data, labels);
                StepResult step;
                if (type == RunType.TRAINMODE) {
                    float loss = model.trainStep(data, labels);
                    step = new StepResult(type, epoch, b, valid, loss, null, labels);
                } else {
                    step = new StepResult(type, epoch, b, valid, Float.NaN, model.predict(data), labels);
                }
                for (Callback cb : callbacks) {
                    cb.stepEnd(step);
                }
            }
            for (Callback cb : callbacks) {
                cb.epochEnd(epoch);
            }
        }
        logger().info(type + ": " + epochs + " epoch(s) x " + batches + " batch(es) of " + batch + " in "
                + (System.nanoTime() - start) / 1_000_000 + " ms");
        return new LoopResult(Status.SUCCESS, callbacks);
    }

    /** Copies of every trainable weight, by name, in the model's order. */
    public Map<String, float[]> getFeatures() {
        Map<String, float[]> out = new LinkedHashMap<>();
        if (model == null) {
            return out;
        }
        for (String name : model.weightNames()) {
            out.put(name, model.getWeight(name));
        }
        return out;
    }

    /** Sets the given weights (names must exist in the model, sizes must match). */
    public Status updateFeatures(Map<String, float[]> weights) {
        if (model == null) {
            logger().severe("no model loaded: cannot update weights");
            return Status.NULLPTR;
        }
        for (Map.Entry<String, float[]> e : weights.entrySet()) {
            model.setWeight(e.getKey(), e.getValue());
        }
        return Status.SUCCESS;
    }

    /** Writes the model (weights and optimizer state) to {@code modelPath}. */
    public Status saveModel(String modelPath) {
        if (model == null || modelPath == null) {
            logger().severe("cannot save: " + (model == null ? "no model loaded" : "no path given"));
            return Status.NULLPTR;
        }
        model.save(Path.of(modelPath));
        return Status.SUCCESS;
    }

    /** Releases the model and the data sets (an idle client keeps nothing). */
    public void free() {
        if (model != null) {
            model.close();
            model = null;
        }
        dataSets.clear();
    }
}
