package com.mindspore.flclient;

import com.mindspore.flclient.cases.Client;
import com.mindspore.flclient.cases.JobContext;
import com.mindspore.flclient.model.Status;
import com.mindspore.flclient.cases.RuntimeModel;
import com.mindspore.flclient.cases.TrainableModel;
import com.mindspore.flclient.cases.TrainedModels;
import com.mindspore.flclient.runtime.GradientHook;
import com.mindspore.flclient.runtime.ModelFile;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The case instance of one compute step (training, getModel + evaluation, a getModel or
 * inference task) with its .ms file loaded: the model side of the steps. It lives only while
 * the client holds its training permit; closing it drops model and data, so a client waiting
 * for the server holds none.
 */
final class LocalModel implements AutoCloseable {
    private final FLParameter p;
    private final Client client;
    private final String path;

    private LocalModel(FLParameter p, Client client, String path) {
        this.p = p;
        this.client = client;
        this.path = path;
    }

    /**
     * A new case instance with {@code path} loaded; IllegalArgumentException when
     * FLParameter.batchSize is set and is not the model's batch.
     */
    static LocalModel open(FLParameter p, JobContext context, String path) {
        Client c = ClientFactory.create(p.getFlName());
        c.setContext(context);
        try {
            Status st = c.initSessionAndInputs(path);
            if (st != Status.SUCCESS) {
                throw new IllegalStateException("cannot load the model " + path + ": " + st);
            }
            p.checkModelBatch(c.getModel(), path);
            return new LocalModel(p, c, path);
        } catch (RuntimeException e) {
            c.free();
            throw e;
        }
    }

    /**
     * The file that holds the model trained in this round (weights and optimizer state) from the
     * upload until getModel: {@code trainModelPath + ".trained"}, kept in memory in its place
     * within {@link TrainedModels}' budget. Model and data are dropped
     * while the client waits for the iteration's end; getModel sets the global weights on it
     * ({@link #openTrained}) so the optimizer state carries over as when the model stayed loaded.
     */
    static Path trainedPath(FLParameter p) {
        return Path.of(p.getTrainModelPath() + ".trained");
    }

    /**
     * Keeps the trained model for getModel: in memory within {@link TrainedModels}' budget, else in
     * {@link #trainedPath}, a scratch file not forced to disk.
     */
    void saveTrained() {
        TrainedModels.save(client.getModel(), trainedPath(p));
    }

    /** Whether this round's trained model is kept (in memory or in its file). */
    private static boolean hasTrained(Path trained) {
        return TrainedModels.has(trained) || Files.exists(trained);
    }

    /** The trained model of this round when there is one, else the model file. */
    static LocalModel openTrained(FLParameter p, JobContext context) {
        Path trained = trainedPath(p);
        return open(p, context, hasTrained(trained) ? trained.toString() : p.getTrainModelPath());
    }

    /** Forgets the trained model of a round that ended without getModel (or after it saved). */
    static void dropTrained(FLParameter p) {
        if (p.getTrainModelPath() == null) {
            return;
        }
        TrainedModels.drop(trainedPath(p));
    }

    /** Whether the case's model is the .ms runtime's, whose files {@link #saveServerWeights} can patch. */
    boolean onRuntime() {
        return client.getModel() instanceof RuntimeModel;
    }

    /**
     * getModel without loading the model: the server's weights written over the trained model's
     * file (or the model file, when no round trained), saved as {@link #save} saves; returns the
     * files written. For clients that do not evaluate this iteration (a runtime .ms model only).
     */
    static List<String> saveServerWeights(FLParameter p, Map<String, float[]> weights, String round, boolean durable) {
        Path trained = trainedPath(p);
        Path source = hasTrained(trained) ? trained : Path.of(p.getTrainModelPath());
        byte[] bytes = TrainedModels.read(source);
        byte[] patched;
        try {
            patched = ModelFile.withWeights(bytes, weights, source.toString());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("[" + round + "] the server's model does not match this client's .ms "
                    + "file: " + e.getMessage(), e);
        }
        List<String> written = modelFiles(p);
        for (String file : written) {
            ModelFile.write(patched, Path.of(file), durable);
        }
        return written;
    }

    /** The files a model is saved to: trainModelPath, and inferModelPath when that is another file. */
    private static List<String> modelFiles(FLParameter p) {
        List<String> files = new ArrayList<>();
        String train = p.getTrainModelPath();
        String infer = p.getInferModelPath();
        if (train != null) {
            files.add(train);
        }
        if (infer != null && (train == null
                || !Path.of(infer).toAbsolutePath().equals(Path.of(train).toAbsolutePath()))) {
            files.add(infer);
        }
        return files;
    }

    /** The case: its data sets, training, evaluation and inference loops. */
    Client client() {
        return client;
    }

    int batchSize() {
        return client.getModel().batchSize();
    }

    /** See {@link TrainableModel#requireBatch}: the model's batch is the truth. */
    void requireBatch(String setting, int value, String remedy) {
        client.getModel().requireBatch(path, setting, value, remedy);
    }

    /** A copy of one weight. */
    float[] weight(String name) {
        return client.getModel().getWeight(name);
    }

    void setLearningRate(float lr) {
        client.setLearningRate(lr);
    }

    /** The learning rate the model's next step uses. */
    float learningRate() {
        return client.getModel().learningRate();
    }

    /** The weights a training step updates (those a gradient hook sees). */
    List<String> optimizedWeights() {
        return client.getModel().optimizedWeights();
    }

    /** See {@link TrainableModel#setGradientHook}; null removes it. */
    void setGradientHook(GradientHook hook) {
        client.getModel().setGradientHook(hook);
    }

    /** Sets the weights the server sent in {@code round}; every name must be a weight of this model. */
    void setServerWeights(Map<String, float[]> weights, String round) {
        List<String> known = client.getModel().weightNames();
        List<String> unknown = new ArrayList<>();
        for (String name : weights.keySet()) {
            if (!known.contains(name)) {
                unknown.add(name);
            }
        }
        if (!unknown.isEmpty()) {
            throw new IllegalArgumentException("[" + round + "] the server's model does not match this client's .ms "
                    + "file: weights " + unknown + " are not in it (it has " + known + ")");
        }
        Status st = client.updateFeatures(weights);
        if (st != Status.SUCCESS) {
            throw new IllegalStateException("[" + round + "] cannot set the weights: " + st);
        }
    }

    /**
     * Writes the model (weights and optimizer state) to trainModelPath and to inferModelPath
     * when that is another file, forced to disk when {@code durable}; returns the files written.
     */
    List<String> save(boolean durable) {
        List<String> written = modelFiles(p);
        for (String file : written) {
            client.getModel().save(Path.of(file), durable);
        }
        return written;
    }

    @Override
    public void close() {
        client.free();
    }
}
