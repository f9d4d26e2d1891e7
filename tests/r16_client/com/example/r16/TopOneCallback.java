package com.example.r16;

import com.mindspore.flclient.model.Callback;
import com.mindspore.flclient.model.Status;
import com.mindspore.lite.LiteSession;
import com.mindspore.lite.MSTensor;

import java.util.List;
import java.util.Optional;

/** Accuracy over the batches of an epoch (r1.6 ClassifierAccuracyCallback style). */
public class TopOneCallback extends Callback {
    private final int batchSize;
    private final int numOfClass;
    private final List<Integer> targetLabels;
    private float accuracy;

    public TopOneCallback(LiteSession session, int batchSize, int numOfClass, List<Integer> targetLabels) {
        super(session);
        this.batchSize = batchSize;
        this.numOfClass = numOfClass;
        this.targetLabels = targetLabels;
    }

    public float getAccuracy() {
        return accuracy;
    }

    @Override
    public Status stepBegin() {
        return Status.SUCCESS;
    }

    @Override
    public Status stepEnd() {
        Optional<MSTensor> scores = searchOutputsForSize(batchSize * numOfClass);
        if (!scores.isPresent()) {
            return Status.NULLPTR;
        }
        float[] logits = scores.get().getFloatData();
        int hits = 0;
        for (int b = 0; b < batchSize; b++) {
            int best = 0;
            for (int k = 1; k < numOfClass; k++) {
                if (logits[b * numOfClass + k] > logits[b * numOfClass + best]) {
                    best = k;
                }
            }
            if (targetLabels.get(steps * batchSize + b) == best) {
                hits++;
            }
        }
        accuracy += (float) hits / batchSize;
        steps++;
        return Status.SUCCESS;
    }

    @Override
    public Status epochBegin() {
        return Status.SUCCESS;
    }

    @Override
    public Status epochEnd() {
        accuracy = accuracy / steps;
        steps = 0;
        return Status.SUCCESS;
    }
}
