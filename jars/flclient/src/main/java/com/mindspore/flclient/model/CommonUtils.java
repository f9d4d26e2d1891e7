package com.mindspore.flclient.model;

import com.mindspore.lite.MSTensor;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** r1.6's helpers for cases: the arg-max of a row of scores, tensors as name → values. */
public final class CommonUtils {
    private CommonUtils() {
    }

    /**
     * The index, counted from {@code start}, of the largest of {@code scores[start..end)} (the first
     * one on a tie). A range outside the array throws, naming it (r1.6 logged and returned -1).
     */
    public static int getMaxScoreIndex(float[] scores, int start, int end) {
        if (scores == null || start < 0 || end > scores.length || start >= end) {
            throw new IllegalArgumentException("getMaxScoreIndex: the range [" + start + ", " + end + ") is not in "
                    + (scores == null ? "null scores" : "scores of length " + scores.length));
        }
        int best = start;
        for (int i = start + 1; i < end; i++) {
            if (scores[i] > scores[best]) {
                best = i;
            }
        }
        return best - start;
    }

    /** The float values of each tensor by its name, in the list's order. */
    public static Map<String, float[]> convertTensorToFeatures(List<MSTensor> tensors) {
        Map<String, float[]> features = new LinkedHashMap<>();
        for (MSTensor t : tensors) {
            features.put(t.tensorName(), t.getFloatData());
        }
        return features;
    }
}
