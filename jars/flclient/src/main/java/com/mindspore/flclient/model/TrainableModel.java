package com.mindspore.flclient.model;

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

    default int batchSize() {
        return inputShape()[0];
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

    /** Arg-max class per sample of one full batch. */
    int[] predict(float[] data);

    /** Writes the whole model (weights and optimizer state) atomically. */
    void save(Path out);

    @Override
    void close();
}
