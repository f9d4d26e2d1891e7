package com.example.r16;

import com.mindspore.flclient.model.Callback;
import com.mindspore.flclient.model.CommonUtils;
import com.mindspore.flclient.model.Status;
import com.mindspore.lite.LiteSession;
import com.mindspore.lite.MSTensor;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** The arg-max class of every sample (r1.6 PredictCallback style). */
public class LabelCallback extends Callback {
    private final int batchSize;
    private final int numOfClass;
    private final List<Integer> predictResults = new ArrayList<>();

    public LabelCallback(LiteSession session, int batchSize, int numOfClass) {
        super(session);
        this.batchSize = batchSize;
        this.numOfClass = numOfClass;
    }

    public List<Integer> getPredictResults() {
        return predictResults;
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
        for (int b = 0; b < batchSize; b++) {
            predictResults.add(CommonUtils.getMaxScoreIndex(logits, b * numOfClass, (b + 1) * numOfClass));
        }
        steps++;
        return Status.SUCCESS;
    }

    @Override
    public Status epochBegin() {
        return Status.SUCCESS;
    }

    @Override
    public Status epochEnd() {
        return Status.SUCCESS;
    }
}
