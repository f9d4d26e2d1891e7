package com.mindspore.lite;

/** MindSpore Lite's tensor data type codes (r1.6 values) for the types the runtime uses. */
public final class DataType {
    public static final int kNumberTypeInt32 = 34;
    public static final int kNumberTypeFloat32 = 43;

    private DataType() {
    }
}
