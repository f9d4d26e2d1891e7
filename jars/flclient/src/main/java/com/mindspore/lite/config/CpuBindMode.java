package com.mindspore.lite.config;

/** MindSpore Lite's CPU binding modes (r1.6 constants). Accepted and recorded; a JVM thread cannot be pinned. */
public final class CpuBindMode {
    public static final int MID_CPU = 2;
    public static final int HIGHER_CPU = 1;
    public static final int NO_BIND = 0;

    private CpuBindMode() {
    }
}
