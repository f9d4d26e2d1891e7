package com.mindspore.flclient.model;

import com.mindspore.flclient.TrainListener;
import com.mindspore.lite.LiteSession;
import com.mindspore.lite.MSTensor;

import java.util.Optional;

/**
 * r1.6's training-loss callback: logs {@code batch:N,loss:X} after every step and
 * {@code ----------epoch:E,average loss:X ----------} after every epoch (E from 0, the average over
 * the epoch's batches, padded ones included, as r1.6 does), and tells the job's TrainListener.
 */
public class LossCallback extends Callback {
    private float lossSum = 0.0f;
    private float uploadLoss = 0.0f;
    private TrainListener listener;
    private int iteration;

    public LossCallback(LiteSession session) {
        super(session);
    }

    void bindListener(TrainListener l, int iteration) {
        this.listener = l;
        this.iteration = iteration;
    }

    @Override
    public Status stepEnd() {
        Optional<MSTensor> tensor = searchOutputsForSize(1);
        if (!tensor.isPresent()) {
            logger().severe("cannot find loss tensor");
            return Status.NULLPTR;
        }
        float loss = tensor.get().getFloatData()[0];
        if (Float.isNaN(loss)) {
            logger().severe("loss is nan");
            return Status.FAILED;
        }
        logger().info("batch:" + steps + ",loss:" + loss);
        lossSum += loss;
        steps++;
        return Status.SUCCESS;
    }

    @Override
    public Status epochEnd() {
        float avg = steps == 0 ? Float.NaN : lossSum / steps;
        logger().info("----------epoch:" + epochs + ",average loss:" + avg + " ----------");
        uploadLoss = avg;
        if (listener != null) {
            try {
                listener.onEpochLoss(iteration, epochs + 1, avg);
            } catch (RuntimeException e) {
                logger().warning("the TrainListener failed in onEpochLoss (ignored): " + e);
            }
        }
        steps = 0;
        epochs++;
        lossSum = 0.0f;
        return Status.SUCCESS;
    }

    public float getUploadLoss() {
        return uploadLoss;
    }

    public void setUploadLoss(float uploadLoss) {
        this.uploadLoss = uploadLoss;
    }
}
