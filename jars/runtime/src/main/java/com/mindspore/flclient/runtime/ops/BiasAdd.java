package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;

/** BiasAdd (x, b) → y: {@code y = x + b} with the bias on axis 1 (channels of NCHW, features of [N, F]). */
final class BiasAdd implements Kernel {
    private final float[] x;
    private final float[] b;
    private final float[] y;
    private final int outer;
    private final int channels;
    private final int inner;

    BiasAdd(NodeSpec s) {
        s.requireInputs(2);
        Value xv = s.input(0);
        if (xv.shape.length < 2) {
            throw s.fail("input " + xv.describe() + " needs rank ≥ 2 (bias on axis 1)");
        }
        channels = xv.shape[1];
        s.requireShape(s.input(1), new int[] {channels}, "bias");
        outer = xv.shape[0];
        inner = xv.numel / Math.max(1, outer * channels);
        x = s.floatIn(0);
        b = s.floatIn(1);
        y = s.floatOut(0, xv.shape);
    }

    @Override
    public void run() {
        for (int n = 0; n < outer; n++) {
            for (int c = 0; c < channels; c++) {
                int off = (n * channels + c) * inner;
                float bc = b[c];
                for (int i = 0; i < inner; i++) {
                    y[off + i] = x[off + i] + bc;
                }
            }
        }
    }
}
