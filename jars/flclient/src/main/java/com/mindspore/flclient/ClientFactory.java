package com.mindspore.flclient;

import com.mindspore.flclient.model.Client;

import java.lang.reflect.InvocationTargetException;

/**
 * Finds a case by its class name ({@code flName}) and makes a fresh instance: one per round, so
 * no state is shared between rounds or between clients of one JVM.
 */
final class ClientFactory {
    private ClientFactory() {
    }

    /** Checks that the class exists and is a Client (IllegalArgumentException naming flName otherwise). */
    static Class<? extends Client> find(String flName) {
        Class<?> c;
        try {
            ClassLoader cl = Thread.currentThread().getContextClassLoader();
            c = Class.forName(flName, true, cl != null ? cl : ClientFactory.class.getClassLoader());
        } catch (ClassNotFoundException e) {
            try {
                c = Class.forName(flName, true, ClientFactory.class.getClassLoader());
            } catch (ClassNotFoundException e2) {
                throw new IllegalArgumentException("FLParameter.flName = " + flName + ": no such class on the class path;"
                        + " put the case jar (e.g. quick_start_flclient.jar) next to the client jar in -cp", e2);
            }
        }
        if (!Client.class.isAssignableFrom(c)) {
            throw new IllegalArgumentException("FLParameter.flName = " + flName + ": the class is not a subclass of "
                    + Client.class.getName());
        }
        return c.asSubclass(Client.class);
    }

    static Client create(String flName) {
        Class<? extends Client> c = find(flName);
        try {
            return c.getDeclaredConstructor().newInstance();
        } catch (NoSuchMethodException e) {
            throw new IllegalArgumentException("FLParameter.flName = " + flName + ": the class needs a public "
                    + "no-argument constructor", e);
        } catch (InvocationTargetException e) {
            throw new IllegalStateException("FLParameter.flName = " + flName + ": its constructor failed: "
                    + e.getCause(), e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalArgumentException("FLParameter.flName = " + flName + ": cannot instantiate it: " + e, e);
        }
    }
}
