package com.mindspore.flclient.cases;

import com.mindspore.flclient.model.RunType;

/**
 * Samples of one {@link com.mindspore.flclient.model.RunType}, handed to the model a batch at a time.
 * The model's batch is fixed, so the last batch is completed by repeating samples from the
 * start of the set; {@link #fillBatch} says how many samples of a batch are real so that loss
 * and accuracy count each real sample once.
 */
public abstract class DataSet {
    /** Number of real samples. */
    public abstract int sampleCount();

    /** Floats per sample in the model's input layout. */
    public abstract int sampleSize();

    /** True when the set has labels (train and eval sets; an inference set may not). */
    public abstract boolean hasLabels();

    /**
     * Copies batch {@code batchIdx} into {@code data} (batchSize × sampleSize) and {@code labels}.
     *
     * @return the number of real samples at the start of the batch; the rest are repeats
     */
    public abstract int fillBatch(int batchIdx, int batchSize, float[] data, int[] labels);

    /** Batches per epoch: every sample is seen once; the last batch is padded. */
    public int batchNum(int batchSize) {
        return (sampleCount() + batchSize - 1) / batchSize;
    }

    /** Repeated samples added to complete the last batch. */
    public int paddedCount(int batchSize) {
        return batchNum(batchSize) * batchSize - sampleCount();
    }
}
