package com.mindspore.flclient;

import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * The stop flag of one job, made so that every wait of the round loop ends the moment
 * {@link SyncFLJob#stopFLJob()} is called: sleeps wait on a latch that the stop opens, and
 * pending HTTP exchanges are cancelled by it. Nothing polls, and nothing accumulates per
 * request (a job may poll a server for hours).
 */
final class StopSignal {
    /** Thrown out of {@link #await} when the job was stopped. */
    static final class StoppedException extends Exception {
        private static final long serialVersionUID = 1L;

        StoppedException() {
            super("the job was stopped");
        }
    }

    private final CountDownLatch latch = new CountDownLatch(1);
    private final Set<CompletableFuture<?>> inFlight = ConcurrentHashMap.newKeySet();

    private volatile Runnable onStop;

    void stop() {
        latch.countDown();
        for (CompletableFuture<?> f : inFlight) {
            f.cancel(true);
        }
        Runnable hook = onStop;
        if (hook != null) {
            hook.run();
        }
    }

    /** Run {@code hook} when the job is stopped (the engine wakes a parked client with it). */
    void onStop(Runnable hook) {
        this.onStop = hook;
    }

    /** Cancels {@code f} when the job is stopped (at once if it already is); forgets it when it completes. */
    <T> CompletableFuture<T> track(CompletableFuture<T> f) {
        inFlight.add(f);
        f.whenComplete((r, e) -> inFlight.remove(f));
        if (isStopped()) {
            f.cancel(true);
        }
        return f;
    }

    /** Waits until {@code f} has completed in any way (a stop cancels tracked futures); true when stopped. */
    boolean awaitCompletion(CompletableFuture<?> f) {
        try {
            f.get();
        } catch (CancellationException | ExecutionException e) {
            // the step that reads f sees the outcome
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            f.cancel(true);
            return true;
        }
        return isStopped();
    }

    boolean isStopped() {
        return latch.getCount() == 0;
    }

    /**
     * Sleeps up to {@code millis} ms.
     *
     * @return true when the sleep ended because of a stop
     */
    boolean sleep(long millis) {
        if (millis <= 0) {
            return isStopped();
        }
        try {
            return latch.await(millis, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return true;
        }
    }

    /** The result of {@code f}, or StoppedException as soon as the job is stopped (f is then cancelled). */
    <T> T await(CompletableFuture<T> f) throws ExecutionException, StoppedException {
        inFlight.add(f);
        try {
            if (isStopped()) { // a stop that came before the registration
                f.cancel(true);
            }
            return f.get();
        } catch (CancellationException e) {
            throw new StoppedException();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            f.cancel(true);
            throw new StoppedException();
        } finally {
            inFlight.remove(f);
        }
    }
}
