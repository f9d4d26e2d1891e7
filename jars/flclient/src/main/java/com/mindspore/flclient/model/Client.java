package com.mindspore.flclient.model;

import com.mindspore.flclient.cases.JobContext;
import com.mindspore.lite.LiteSession;
import com.mindspore.lite.MSTensor;
import com.mindspore.lite.TrainSession;
import com.mindspore.lite.config.MSConfig;
import mindspore.schema.FeatureMap;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;

/**
 * The base class of a federated-learning case written against MindSpore r1.6
 * ({@code com.mindspore.flclient.model.Client}, same abstract methods and signatures): the case
 * reads its files into {@link DataSet}s and chooses the {@link Callback}s; this class runs the
 * loops on a {@link LiteSession} (a facade over this project's pure-Java runtime). Name it as
 * {@code flName}; the framework runs it through {@link R16Case}.
 *
 * <p>This project's own, richer case API is {@link com.mindspore.flclient.cases.Client}.
 */
public abstract class Client {
    /** The session of the loaded model (r1.6's name). */
    public LiteSession trainSession;

    /** Data sets by run type, filled by {@link #initDataSets}. */
    public Map<RunType, DataSet> dataSets = new HashMap<>();

    private final List<ByteBuffer> inputsBuffer = new ArrayList<>();
    private JobContext context = JobContext.standalone();

    public abstract List<Callback> initCallbacks(RunType runType, DataSet dataSet);

    public abstract Map<RunType, Integer> initDataSets(Map<RunType, List<String>> files);

    public abstract float getEvalAccuracy(List<Callback> evalCallbacks);

    public abstract List<Integer> getInferResult(List<Callback> inferCallbacks);

    /** The job's log, listener and stop flag (set by the framework before anything else). */
    void bind(JobContext ctx) {
        this.context = ctx;
    }

    private Logger logger() {
        return context.logger();
    }

    /** Loads the model file into {@link #trainSession} and allocates one buffer per model input. */
    public Status initSessionAndInputs(String modelPath, MSConfig config) {
        if (modelPath == null) {
            logger().severe("session init failed: no model path (set trainModelPath / inferModelPath)");
            return Status.NULLPTR;
        }
        free();
        trainSession = TrainSession.createTrainSession(modelPath, config, false);
        inputsBuffer.clear();
        for (MSTensor input : trainSession.getInputs()) {
            inputsBuffer.add(ByteBuffer.allocateDirect((int) input.size()).order(ByteOrder.nativeOrder()));
        }
        return Status.SUCCESS;
    }

    public Status trainModel(int epochs) {
        if (epochs <= 0) {
            logger().severe("epochs cannot be smaller than 1, got " + epochs);
            return Status.INVALID;
        }
        trainSession.train();
        return runModel(RunType.TRAINMODE, epochs);
    }

    /**
     * pyflclient addition: the mean loss over the TRAINMODE batches at the current weights, forward
     * passes only (upload_loss); each batch of the padded set weighs the same.
     */
    float trainingLoss() {
        DataSet ds = dataSets.get(RunType.TRAINMODE);
        if (ds == null) {
            throw new IllegalStateException("no " + RunType.TRAINMODE + " data set: give its files in FLParameter.dataMap");
        }
        ds.padding();
        List<MSTensor> inputs = trainSession.getInputs();
        double sum = 0;
        for (int j = 0; j < ds.batchNum; j++) {
            ds.fillInputBuffer(inputsBuffer, j);
            for (int i = 0; i < inputs.size(); i++) {
                inputs.get(i).setData(inputsBuffer.get(i));
            }
            sum += trainSession.loss();
        }
        return (float) (sum / ds.batchNum);
    }

    /** Accuracy on the EVALMODE set (NaN on failure). */
    public float evalModel() {
        trainSession.eval();
        List<Callback> callbacks = new ArrayList<>();
        Status st = runModel(RunType.EVALMODE, 1, callbacks);
        return st == Status.SUCCESS ? getEvalAccuracy(callbacks) : Float.NaN;
    }

    /** Predictions for the INFERMODE set (null on failure). */
    public List<Integer> inferModel() {
        trainSession.eval();
        List<Callback> callbacks = new ArrayList<>();
        Status st = runModel(RunType.INFERMODE, 1, callbacks);
        return st == Status.SUCCESS ? getInferResult(callbacks) : null;
    }

    private Status runModel(RunType type, int epochs) {
        return runModel(type, epochs, new ArrayList<>());
    }

    private Status runModel(RunType type, int epochs, List<Callback> callbacks) {
        DataSet ds = dataSets.get(type);
        if (ds == null) {
            logger().severe("no " + type + " data set: give its files in FLParameter.dataMap");
            return Status.NULLPTR;
        }
        ds.padding();
        callbacks.addAll(initCallbacks(type, ds));
        for (Callback cb : callbacks) {
            cb.bindLogger(logger());
            if (cb instanceof LossCallback) {
                ((LossCallback) cb).bindListener(context.listener(), context.iteration());
            }
        }
        long start = System.currentTimeMillis();
        List<MSTensor> inputs = trainSession.getInputs();
        for (int epoch = 0; epoch < epochs; epoch++) {
            for (Callback cb : callbacks) {
                cb.epochBegin();
            }
            for (int j = 0; j < ds.batchNum; j++) {
                if (context.isStopRequested()) {
                    logger().info("the stopJobFlag is set to true, the job will be stop");
                    return Status.STOPPED;
                }
                ds.fillInputBuffer(inputsBuffer, j);
                for (int i = 0; i < inputs.size(); i++) {
                    inputs.get(i).setData(inputsBuffer.get(i));
                }
                for (Callback cb : callbacks) {
                    cb.stepBegin();
                }
                if (!trainSession.runGraph()) {
                    logger().severe("run graph failed");
                    return Status.FAILED;
                }
                for (Callback cb : callbacks) {
                    Status st = cb.stepEnd();
                    if (st != Status.SUCCESS) {
                        logger().severe(cb.getClass().getSimpleName() + ".stepEnd: " + st);
                        return st;
                    }
                }
            }
            for (Callback cb : callbacks) {
                cb.epochEnd();
            }
        }
        logger().info("total " + (type == RunType.TRAINMODE ? "train" : type == RunType.EVALMODE ? "eval" : "infer")
                + " time:" + (System.currentTimeMillis() - start) + "ms");
        return Status.SUCCESS;
    }

    /** Writes the model (weights and optimizer state) as a .ms file. */
    public Status saveModel(String modelPath) {
        if (modelPath == null) {
            logger().severe("model path cannot be empty");
            return Status.NULLPTR;
        }
        return trainSession.export(modelPath, 0, 1) ? Status.SUCCESS : Status.FAILED;
    }

    /** The trainable weights, in the model's order. */
    public List<MSTensor> getFeatures() {
        return trainSession == null ? new ArrayList<>() : trainSession.getFeaturesMap();
    }

    /** Sets the weights of a getModel/startFLJob reply and saves the model to {@code modelName}. */
    public Status updateFeatures(String modelName, List<FeatureMap> featureMaps) {
        if (trainSession == null || featureMaps == null || modelName == null || modelName.isEmpty()) {
            logger().severe("trainSession, featureMaps and modelName cannot be null");
            return Status.NULLPTR;
        }
        List<MSTensor> tensors = new ArrayList<>(featureMaps.size());
        for (FeatureMap f : featureMaps) {
            float[] values = new float[f.dataLength()];
            for (int i = 0; i < values.length; i++) {
                values[i] = f.data(i);
            }
            tensors.add(new MSTensor(f.weightFullname(), new int[] {values.length}, values));
        }
        if (!trainSession.updateFeatures(tensors)) {
            return Status.FAILED;
        }
        return trainSession.export(modelName, 0, 0) ? Status.SUCCESS : Status.FAILED;
    }

    public void free() {
        if (trainSession != null) {
            trainSession.free();
            trainSession = null;
        }
    }

    public Status setLearningRate(float lr) {
        return trainSession.setLearningRate(lr) ? Status.SUCCESS : Status.FAILED;
    }

    /** Sets the batch of every data set (the framework sets the model's batch). */
    public void setBatchSize(int batchSize) {
        for (DataSet dataSet : dataSets.values()) {
            dataSet.batchSize = batchSize;
        }
    }
}
