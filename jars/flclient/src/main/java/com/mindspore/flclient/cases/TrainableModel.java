package com.mindspore.flclient.cases;

import com.mindspore.flclient.runtime.GradientHook;

import java.nio.file.Path;
import java.util.List;

/**
 * What a {@link Client} needs from a device model: weights by name, one training step, one
 * forward pass, save. The .ms runtime implements it ({@link RuntimeModel}); the seam exists
 * so that the round loop can be tested without a converted model file.
 */
public interface TrainableModel extends AutoCloseable {
    /** Trainable weights in file order. */
    List<String> weightNames();

    /** A copy of the weight; IllegalArgumentException for an unknown name. */
    float[] getWeight(String name);

    /** Replaces the weight; IllegalArgumentException naming it on an unknown name or size mismatch. */
    void setWeight(String name, float[] values);

    /** Data input shape, batch first (e.g. {32, 3, 32, 32}). */
    int[] inputShape();

    /** The batch the model was exported with: the one batch size of a job. */
    default int batchSize() {
        return inputShape()[0];
    }

    /**
     * Refuses a setting that names another batch than the model's. The batch baked into the
     * model is the truth: FLParameter.batchSize, the server plan's client_batch_size and any
     * other place naming a batch must agree with it, or the job stops here, before anything
     * trains, with both numbers and the fix.
     *
     * @param modelFile the model's file, named in the message
     * @param setting   what names the other batch, e.g. {@code FLParameter.batchSize}
     * @param value     the batch it names
     * @param remedy    how to make it agree, completed by the model's batch, e.g. {@code "set it to"}
     * @throws IllegalArgumentException e.g. {@code FLParameter.batchSize = 16: the model
     *         lenet_train0.ms was exported with batch 32; leave batchSize unset or set it to 32
     *         (re-export the model for another batch)}
     */
    default void requireBatch(String modelFile, String setting, int value, String remedy) {
        int batch = batchSize();
        if (value != batch) {
            Path name = modelFile == null ? null : Path.of(modelFile).getFileName();
            throw new IllegalArgumentException(setting + " = " + value + ": the model " + name + " was exported with batch "
                    + batch + "; " + remedy + " " + batch + " (re-export the model for another batch)");
        }
    }

    /** Floats of one sample of the data input (product of inputShape() without the batch). */
    default int sampleSize() {
        int[] s = inputShape();
        int n = 1;
        for (int i = 1; i < s.length; i++) {
            n *= s[i];
        }
        return n;
    }

    int numClasses();

    void setLearningRate(float lr);

    /** One training step on one full batch; returns the batch's mean loss. */
    float trainStep(float[] data, int[] labels);

    /**
     * The mean loss of one full batch at the current weights, nothing updated (upload_loss). A model
     * that cannot compute it throws UnsupportedOperationException: plans that ask for the loss need the .ms runtime.
     */
    default float loss(float[] data, int[] labels) {
        throw new UnsupportedOperationException(getClass().getName() + " computes no loss without training; "
                + "a plan that asks for upload_loss needs the .ms runtime");
    }

    /**
     * Installs a hook between backward and the optimizer in every later {@link #trainStep} (null:
     * none); see {@link GradientHook}. The .ms runtime has it; other models refuse.
     */
    default void setGradientHook(GradientHook hook) {
        if (hook != null) {
            throw new UnsupportedOperationException(getClass().getName() + " has no gradient hook; an aggregation "
                    + "type that changes local training needs the .ms runtime");
        }
    }

    /** The weights a training step updates (those a {@link GradientHook} sees). */
    default List<String> optimizedWeights() {
        return weightNames();
    }

    /** The learning rate the next step uses. */
    default float learningRate() {
        throw new UnsupportedOperationException(getClass().getName() + " does not tell its learning rate");
    }

    /** Arg-max class per sample of one full batch. */
    int[] predict(float[] data);

    /** Writes the whole model (weights and optimizer state) atomically. */
    void save(Path out);

    /**
     * Writes the model to {@code out} atomically; without {@code durable} it is not forced to disk
     * (a scratch file, or a simulated device's copy: a crash of the process still leaves a whole file).
     */
    default void save(Path out, boolean durable) {
        save(out);
    }

    @Override
    void close();
}
