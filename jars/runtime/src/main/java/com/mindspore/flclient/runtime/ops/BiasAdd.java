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
        var l = new Layout(s, xv, "input", " (bias on axis 1)");
        outer = l.outer;
        channels = l.channels;
        inner = l.inner;
        s.requireShape(s.input(1), new int[] {channels}, "bias");
        x = s.floatIn(0);
        b = s.floatIn(1);
        y = s.floatOut(0, xv.shape);
    }

    /** A tensor of rank ≥ 2 as {@code [outer, channels, inner]}, channels being axis 1 (BiasAdd and its grad). */
    static final class Layout {
        final int outer;
        final int channels;
        final int inner;

        Layout(NodeSpec s, Value v, String what, String why) {
            if (v.shape.length < 2) {
                throw s.fail(what + " " + v.describe() + " needs rank ≥ 2" + why);
            }
            outer = v.shape[0];
            channels = v.shape[1];
            inner = v.numel / Math.max(1, outer * channels);
        }
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
