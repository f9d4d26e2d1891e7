package com.mindspore.flclient;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The stop flag of one job, made so that every wait of the round loop (sleeps, HTTP exchanges)
 * ends the moment {@link SyncFLJob#stopFLJob()} is called: waits block on a future that the
 * stop completes, instead of polling.
 */
final class StopSignal {
    private final CompletableFuture<Void> stopped = new CompletableFuture<>();

    void stop() {
        stopped.complete(null);
    }

    boolean isStopped() {
        return stopped.isDone();
    }

    /** Completes when stop is requested. */
    CompletableFuture<Void> future() {
        return stopped;
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
            stopped.get(millis, TimeUnit.MILLISECONDS);
            return true;
        } catch (TimeoutException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return true;
        } catch (ExecutionException e) {
            return true;
        }
    }
}
