package com.mindspore.flclient.cases;

import java.util.Arrays;

/** Collects the predicted class of every real sample of an infer loop, in data order. */
public class PredictCallback extends Callback {
    private int[] labels = new int[64];
    private int size;

    @Override
    public void stepEnd(StepResult step) {
        if (size + step.validCount > labels.length) {
            labels = Arrays.copyOf(labels, Math.max(labels.length * 2, size + step.validCount));
        }
        System.arraycopy(step.predictions, 0, labels, size, step.validCount);
        size += step.validCount;
    }

    /** The predictions so far. */
    public int[] getPredictions() {
        return Arrays.copyOf(labels, size);
    }
}
