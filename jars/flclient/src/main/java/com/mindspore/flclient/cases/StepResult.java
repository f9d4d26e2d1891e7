package com.mindspore.flclient.cases;

import com.mindspore.flclient.model.RunType;

/**
 * One batch as a {@link Callback} sees it. Arrays are reused between steps: copy what you keep.
 * Only the first {@code validCount} entries of {@code predictions} and {@code labels} are real
 * samples; the rest pad the last batch.
 */
public final class StepResult {
    public final RunType runType;
    /** Epoch, counted from 1. */
    public final int epoch;
    public final int batchIndex;
    public final int validCount;
    /** Mean loss of the batch (train steps), NaN otherwise. */
    public final float loss;
    /** Predicted classes (eval and infer steps), null for train steps. */
    public final int[] predictions;
    /** Labels of the batch (zeros when the set has none). */
    public final int[] labels;

    public StepResult(RunType runType, int epoch, int batchIndex, int validCount, float loss, int[] predictions,
                      int[] labels) {
        this.runType = runType;
        this.epoch = epoch;
        this.batchIndex = batchIndex;
        this.validCount = validCount;
        this.loss = loss;
        this.predictions = predictions;
        this.labels = labels;
    }
}
