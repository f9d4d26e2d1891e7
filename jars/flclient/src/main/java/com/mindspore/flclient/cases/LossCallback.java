package com.mindspore.flclient.cases;

import com.mindspore.flclient.TrainListener;

/**
 * Average training loss per epoch, each real sample counted once (a padded last batch
 * contributes its loss weighted by its real samples). Logs the r1.6 line
 * {@code ----------epoch:N,average loss:X ----------} and tells the job's {@link TrainListener}.
 */
public class LossCallback extends Callback {
    private double lossSum;
    private long samples;
    private float lastEpochLoss = Float.NaN;

    @Override
    public void stepEnd(StepResult step) {
        lossSum += (double) step.loss * step.validCount;
        samples += step.validCount;
    }

    @Override
    public void epochEnd(int epoch) {
        float avg = samples == 0 ? Float.NaN : (float) (lossSum / samples);
        lastEpochLoss = avg;
        lossSum = 0;
        samples = 0;
        context().logger().info("----------epoch:" + epoch + ",average loss:" + avg + " ----------");
        TrainListener l = context().listener();
        if (l != null) {
            try {
                l.onEpochLoss(context().iteration(), epoch, avg);
            } catch (RuntimeException e) {
                context().logger().warning("the TrainListener failed in onEpochLoss (ignored): " + e);
            }
        }
    }

    /** Average loss of the last finished epoch (NaN before the first). */
    public float getLastEpochLoss() {
        return lastEpochLoss;
    }
}
