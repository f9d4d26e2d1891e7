package com.mindspore.flclient.cipher;

import com.mindspore.flclient.runtime.schema.SecureAggregationParameters;

/**
 * The ring Z_2^64 the masked uploads live in (Java's {@code long} arithmetic wraps exactly so). An
 * upload value x (data_size × weight) becomes round(x · 2^scale_bits) as a two's-complement long;
 * the server decodes the sum of the devices' values as a signed long / 2^scale_bits, exact while
 * |Σ x| < 2^(63 − scale_bits). A value beyond max_abs_upload is refused here, on the device.
 */
public final class Ring {
    /** 2^scale_bits. */
    public static final double SCALE = Math.scalb(1.0, SecureAggregationParameters.SCALE_BITS);

    private Ring() {
    }

    /** Adds round(x · SCALE) of each value to {@code into}, from {@code at} on. */
    public static void addQuantised(float[] values, long[] into, int at) {
        for (int i = 0; i < values.length; i++) {
            double x = values[i];
            if (!(Math.abs(x) <= SecureAggregationParameters.MAX_ABS_UPLOAD)) {
                throw new IllegalArgumentException("an upload value " + x + " is NaN, Inf or beyond max_abs_upload "
                        + SecureAggregationParameters.MAX_ABS_UPLOAD);
            }
            into[at + i] += Math.round(Math.rint(x * SCALE));
        }
    }

    /** The decoded value of one ring element (the inverse of quantisation, for sums). */
    public static double decode(long element) {
        return element / SCALE;
    }
}
