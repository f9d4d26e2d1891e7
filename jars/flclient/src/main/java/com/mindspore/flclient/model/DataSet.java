package com.mindspore.flclient.model;

import java.nio.ByteBuffer;
import java.util.List;

/**
 * A data set of an r1.6-style {@link Client} (MindSpore r1.6's API): the case reads its files in
 * {@link #dataPreprocess}, completes the last batch in {@link #padding} (setting {@link #batchNum}),
 * and copies batch {@code batchIdx} into the model's input buffers in {@link #fillInputBuffer}.
 * {@link #batchSize} is set by the framework to the model's batch before training.
 */
public abstract class DataSet {
    /** Samples per batch (the model's batch). */
    public int batchSize;

    /** Batches per epoch, set by {@link #padding}. */
    public int batchNum;

    /** Real samples read by {@link #dataPreprocess}. */
    public int sampleSize;

    /** Copies batch {@code batchIdx} into the input buffers (in the order of the session's inputs). */
    public abstract void fillInputBuffer(List<ByteBuffer> inputsBuffer, int batchIdx);

    public abstract void shuffle();

    /** Completes the last batch and sets {@link #batchNum}. */
    public abstract void padding();

    /** Reads the files; sets {@link #sampleSize}. */
    public abstract Status dataPreprocess(List<String> files);

    /** Reads the files, then shuffles. */
    public Status init(List<String> files) {
        Status status = dataPreprocess(files);
        if (status != Status.SUCCESS) {
            return status;
        }
        shuffle();
        return Status.SUCCESS;
    }
}
