package com.mindspore.flclient;

import java.util.concurrent.CompletableFuture;

/**
 * One transition of a client's round loop: what to do next. A step of the loop never blocks
 * on the server or on time; it returns one of these and the driver waits for it — the calling
 * thread for the blocking {@link SyncFLJob#flJobRun()}, scheduled wake-ups and future
 * completions for the {@link ClientEngine}, where a waiting client holds no thread.
 */
final class Next {
    /** A piece of the loop that runs without waiting and says what comes after it. */
    @FunctionalInterface
    interface Step {
        Next run();
    }

    enum Kind {
        /** Run {@link #step} now. */
        GO,
        /** Run {@link #step} after {@link #delayMs}. */
        AFTER,
        /** Run {@link #step} once {@link #future} has completed (normally, exceptionally or cancelled). */
        AWAIT,
        /** Run {@link #step} holding a training permit: it loads model and data, trains or evaluates. */
        COMPUTE,
        /** The job has ended with {@link #status}. */
        DONE
    }

    final Kind kind;
    final Step step;
    final long delayMs;
    final CompletableFuture<?> future;
    final FLClientStatus status;

    private Next(Kind kind, Step step, long delayMs, CompletableFuture<?> future, FLClientStatus status) {
        this.kind = kind;
        this.step = step;
        this.delayMs = delayMs;
        this.future = future;
        this.status = status;
    }

    static Next go(Step step) {
        return new Next(Kind.GO, step, 0, null, null);
    }

    static Next after(long delayMs, Step step) {
        return new Next(Kind.AFTER, step, Math.max(0, delayMs), null, null);
    }

    static Next await(CompletableFuture<?> future, Step step) {
        return new Next(Kind.AWAIT, step, 0, future, null);
    }

    static Next compute(Step step) {
        return new Next(Kind.COMPUTE, step, 0, null, null);
    }

    static Next done(FLClientStatus status) {
        return new Next(Kind.DONE, null, 0, null, status);
    }
}
