package com.example.r16;

import com.mindspore.flclient.model.Status;
import com.mindspore.lite.LiteSession;

import java.util.List;

/**
 * Accuracy over the batches of an epoch (r1.6 ClassifierAccuracyCallback style): the predictions
 * of {@link LabelCallback} compared with the targets. It leaves out stepBegin/epochBegin, which
 * r1.6 declared abstract; LabelCallback overrides them as r1.6 code does.
 */
public class TopOneCallback extends LabelCallback {
    private final int batchSize;
    private final List<Integer> targetLabels;
    private float accuracy;
    private int batches;

    public TopOneCallback(LiteSession session, int batchSize, int numOfClass, List<Integer> targetLabels) {
        super(session, batchSize, numOfClass);
        this.batchSize = batchSize;
        this.targetLabels = targetLabels;
    }

    public float getAccuracy() {
        return accuracy;
    }

    @Override
    public Status stepEnd() {
        Status status = super.stepEnd();
        if (status != Status.SUCCESS) {
            return status;
        }
        List<Integer> predicted = getPredictResults();
        int first = predicted.size() - batchSize;
        int hits = 0;
        for (int b = 0; b < batchSize; b++) {
            if (predicted.get(first + b).equals(targetLabels.get(first + b))) {
                hits++;
            }
        }
        accuracy += (float) hits / batchSize;
        batches++;
        return Status.SUCCESS;
    }

    @Override
    public Status epochEnd() {
        accuracy = accuracy / batches;
        batches = 0;
        return Status.SUCCESS;
    }
}
