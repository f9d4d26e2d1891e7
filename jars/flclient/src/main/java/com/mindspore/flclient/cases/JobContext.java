package com.mindspore.flclient.cases;

import com.mindspore.flclient.TrainListener;

import java.util.function.BooleanSupplier;
import java.util.logging.Logger;

/**
 * What a {@link Client} and its callbacks learn from the job that runs them: the job's own
 * logger (one log file per client), the listener, the current iteration and whether the job
 * was asked to stop. Created by the framework; one per job, never shared between jobs.
 */
public final class JobContext {
    private final Logger logger;
    private final TrainListener listener;
    private final BooleanSupplier stopRequested;
    private volatile int iteration;

    public JobContext(Logger logger, TrainListener listener, BooleanSupplier stopRequested) {
        this.logger = logger;
        this.listener = listener;
        this.stopRequested = stopRequested;
    }

    /** A context for a client used on its own (tests, tools): logs to this class's logger, never stopped. */
    public static JobContext standalone() {
        return new JobContext(Logger.getLogger(Client.class.getName()), null, () -> false);
    }

    public Logger logger() {
        return logger;
    }

    /** The listener of the job, or null. */
    public TrainListener listener() {
        return listener;
    }

    public boolean isStopRequested() {
        return stopRequested.getAsBoolean();
    }

    public int iteration() {
        return iteration;
    }

    public void setIteration(int iteration) {
        this.iteration = iteration;
    }
}
