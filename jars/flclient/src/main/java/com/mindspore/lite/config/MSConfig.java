package com.mindspore.lite.config;

/**
 * MindSpore Lite's session configuration, for code written against r1.6. The pure-Java runtime
 * runs on the CPU with one thread per session; {@link #init} accepts r1.6's arguments and keeps
 * them so a case can read them back, and refuses a device other than the CPU.
 */
public class MSConfig {
    private int deviceType = DeviceType.DT_CPU;
    private int threadNum = 1;
    private int cpuBindMode = CpuBindMode.NO_BIND;
    private boolean enableFloat16;

    /** r1.6: {@code init(deviceType, threadNum, cpuBindMode, enableFloat16)}. */
    public boolean init(int deviceType, int threadNum, int cpuBindMode, boolean enableFloat16) {
        if (deviceType != DeviceType.DT_CPU) {
            throw new IllegalArgumentException("MSConfig.deviceType = " + deviceType
                    + ": not supported, this runtime runs on the CPU only (DeviceType.DT_CPU)");
        }
        if (threadNum < 1) {
            throw new IllegalArgumentException("MSConfig.threadNum = " + threadNum + ": must be at least 1");
        }
        if (cpuBindMode < CpuBindMode.NO_BIND || cpuBindMode > CpuBindMode.MID_CPU) {
            throw new IllegalArgumentException("MSConfig.cpuBindMode = " + cpuBindMode
                    + ": must be CpuBindMode.NO_BIND (0), HIGHER_CPU (1) or MID_CPU (2)");
        }
        this.deviceType = deviceType;
        this.threadNum = threadNum;
        this.cpuBindMode = cpuBindMode;
        this.enableFloat16 = enableFloat16;
        return true;
    }

    public boolean init(int deviceType, int threadNum, int cpuBindMode) {
        return init(deviceType, threadNum, cpuBindMode, false);
    }

    public boolean init(int deviceType, int threadNum) {
        return init(deviceType, threadNum, CpuBindMode.MID_CPU, false);
    }

    public boolean init(int deviceType) {
        return init(deviceType, 2, CpuBindMode.MID_CPU, false);
    }

    public boolean init() {
        return init(DeviceType.DT_CPU, 2, CpuBindMode.MID_CPU, false);
    }

    public int getDeviceType() {
        return deviceType;
    }

    public int getThreadNum() {
        return threadNum;
    }

    public int getCpuBindMode() {
        return cpuBindMode;
    }

    public boolean isEnableFloat16() {
        return enableFloat16;
    }

    /** Nothing native to release; kept for r1.6 code. */
    public void free() {
        // no native configuration object
    }
}
