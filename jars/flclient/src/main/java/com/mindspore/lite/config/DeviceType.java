package com.mindspore.lite.config;

/** MindSpore Lite's device types (r1.6 constants). Only the CPU exists here: the runtime is pure Java. */
public final class DeviceType {
    public static final int DT_CPU = 0;
    public static final int DT_GPU = 1;
    public static final int DT_NPU = 2;

    private DeviceType() {
    }
}
