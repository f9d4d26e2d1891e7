package com.mindspore.flclient;

import java.util.concurrent.CompletableFuture;

/**
 * pyflclient addition: whether a simulated device asks to take part now, decided on the device side from
 * its availability on the simulated clock (pyflclient/client/availability.py implements it). An offline
 * device does not ask, exactly as on a real deployment: it waits until it is online in an iteration.
 */
public interface AskHook {
    /**
     * Null: {@code clientId} asks now. Else a future completed when it should look again (a later iteration
     * has opened). {@code iteration}: the iteration after the newest global model its engine has seen.
     */
    CompletableFuture<?> mayAsk(String clientId, int iteration);
}
