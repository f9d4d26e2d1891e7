package com.mindspore.flclient.runtime.kernels;

/**
 * Whether the convolution kernels may use the JDK Vector API ({@code jdk.incubator.vector}).
 *
 * <p>The API is an incubator module in JDK 17: it is only there when the JVM was started with
 * {@code --add-modules jdk.incubator.vector} (JPype: pass it in the JVM options). With it, the
 * convolutions read the input planes at any offset with explicit 8-lane registers and need no
 * im2col or transposes (LeNet's step is about twice as fast); without it, they use the plain-Java
 * {@link Gemm} path, which C2 auto-vectorises. {@code -Dflclient.runtime.vector=false} forces the
 * plain path (for comparisons and tests). Decided per kernel when a model is loaded.
 */
public final class VectorSupport {
    private VectorSupport() {
    }

    /** The module is in the boot layer (resolved at JVM start). */
    public static boolean moduleAvailable() {
        return ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent();
    }

    /** Use the Vector API kernels for models loaded from now on. */
    public static boolean enabled() {
        return moduleAvailable() && !"false".equalsIgnoreCase(System.getProperty("flclient.runtime.vector"));
    }
}
