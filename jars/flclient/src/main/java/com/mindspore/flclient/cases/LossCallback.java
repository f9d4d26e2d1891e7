package com.mindspore.flclient.cases;

import com.mindspore.flclient.TrainListener;

/**
 * Average training loss per epoch, each real sample counted once (a padded last batch
 * contributes its loss weighted by its real samples). Logs
 * {@code batch:N,loss:X} per step and {@code ----------epoch:N,average loss:X ----------} per epoch
 * (r1.6's lines; N from 0) and tells the job's {@link TrainListener}.
 */
public class LossCallback extends Callback {
    private double lossSum;
    private long samples;
    private float lastEpochLoss = Float.NaN;

    @Override
    public void stepEnd(StepResult step) {
        context().logger().info("batch:" + step.batchIndex + ",loss:" + step.loss);
        lossSum += (double) step.loss * step.validCount;
        samples += step.validCount;
    }

    @Override
    public void epochEnd(int epoch) {
        float avg = samples == 0 ? Float.NaN : (float) (lossSum / samples);
        lastEpochLoss = avg;
        lossSum = 0;
        samples = 0;
        // r1.6 counts the epochs of a round from 0 in this line; the listener gets them from 1
        context().logger().info("----------epoch:" + (epoch - 1) + ",average loss:" + avg + " ----------");
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
