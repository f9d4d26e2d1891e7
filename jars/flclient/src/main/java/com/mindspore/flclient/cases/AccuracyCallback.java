package com.mindspore.flclient.cases;

/** Classification accuracy over the real samples of an eval loop. */
public class AccuracyCallback extends Callback {
    private long correct;
    private long total;

    @Override
    public void stepEnd(StepResult step) {
        for (int i = 0; i < step.validCount; i++) {
            if (step.predictions[i] == step.labels[i]) {
                correct++;
            }
        }
        total += step.validCount;
    }

    /** Correct / total over every step seen so far (NaN before the first). */
    public float getAccuracy() {
        return total == 0 ? Float.NaN : (float) ((double) correct / total);
    }
}
