package com.mindspore.flclient;

import com.mindspore.flclient.model.Client;
import com.mindspore.flclient.model.Status;

import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * Local training: the plan's epochs over the training set, holding a training permit (when
 * FLParameter.trainingPermits is given) only while it runs.
 */
final class TrainStep {
    private final FLParameter p;
    private final Logger log;
    private final StopSignal stop;

    TrainStep(FLParameter p, Logger log, StopSignal stop) {
        this.p = p;
        this.log = log;
        this.stop = stop;
    }

    /** SUCCESS when trained; FAILED when stopped or training failed. */
    FLClientStatus run(Client client, int epochs) {
        if (epochs <= 0) {
            log.severe("[train] the plan asks for " + epochs + " epochs");
            return FLClientStatus.FAILED;
        }
        Semaphore permits = p.getTrainingPermits();
        if (permits != null && !acquire(permits)) {
            return FLClientStatus.FAILED;
        }
        Status st;
        try {
            st = client.trainModel(epochs);
        } finally {
            if (permits != null) {
                permits.release();
            }
        }
        if (st == Status.STOPPED) {
            return FLClientStatus.FAILED;
        }
        if (st != Status.SUCCESS) {
            log.severe("[train] local training failed: " + st);
            return FLClientStatus.FAILED;
        }
        log.info("[train] train succeed");
        return FLClientStatus.SUCCESS;
    }

    /** Waits for a training permit; false when stopped first. */
    private boolean acquire(Semaphore permits) {
        try {
            while (!stop.isStopped()) {
                if (permits.tryAcquire(100, TimeUnit.MILLISECONDS)) {
                    if (stop.isStopped()) {
                        permits.release();
                        return false;
                    }
                    return true;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return false;
    }
}
