package com.mindspore.flclient.cases;

/**
 * Observes a train / eval / infer loop of a {@link Client}: once per batch and once per epoch.
 * The client binds its {@link JobContext} before the loop runs.
 */
public abstract class Callback {
    private JobContext context = JobContext.standalone();

    void bind(JobContext ctx) {
        this.context = ctx;
    }

    /** The job this callback runs in (logger, listener, iteration). */
    protected JobContext context() {
        return context;
    }

    public abstract void stepEnd(StepResult step);

    /** @param epoch counted from 1 */
    public void epochEnd(int epoch) {
    }
}
