package com.mindspore.flclient.model;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * r1.6's registry of cases: an r1.6 case registers an instance in a static block
 * ({@code static { ClientManager.registerClient(new LenetClient()); }}). Kept so such a case
 * compiles and its registration works; the framework itself makes a fresh instance of
 * {@code flName} for every round (many clients of one JVM must not share one case object), so
 * it does not read the registered instance.
 */
public final class ClientManager {
    private static final Map<String, Client> CLIENTS = new ConcurrentHashMap<>();

    private ClientManager() {
    }

    /** Registers {@code client} under its class name; null is refused. */
    public static void registerClient(Client client) {
        if (client == null) {
            throw new IllegalArgumentException("ClientManager.registerClient: the client cannot be null");
        }
        CLIENTS.put(client.getClass().getName(), client);
    }

    /** The instance registered under a class name, or null. */
    public static Client getClient(String name) {
        return CLIENTS.get(name);
    }
}
