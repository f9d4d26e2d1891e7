package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/** MaxPool (x) → the maximum of each window (padding never wins); its backward is {@link MaxPoolGrad}. */
final class MaxPool implements Kernel {
    private final PoolParams p;
    private final float[] x;
    private final float[] y;

    MaxPool(NodeSpec s) {
        s.requireInputs(1);
        p = new PoolParams(s, s.input(0).shape);
        x = s.floatIn(0);
        y = s.floatOut(0, p.yShape);
    }

    @Override
    public void run() {
        var g = p.geo;
        int planes = g.n * g.c;
        int plane = g.h * g.w;
        int yi = 0;
        for (int pl = 0; pl < planes; pl++) {
            int base = pl * plane;
            for (int oh = 0; oh < g.ho; oh++) {
                int r0 = p.rowLo(oh);
                int r1 = p.rowHi(oh);
                for (int ow = 0; ow < g.wo; ow++) {
                    int c0 = p.colLo(ow);
                    int c1 = p.colHi(ow);
                    float m = Float.NEGATIVE_INFINITY;
                    for (int r = r0; r < r1; r++) {
                        int row = base + r * g.w;
                        for (int c = c0; c < c1; c++) {
                            m = Math.max(m, x[row + c]);
                        }
                    }
                    y[yi++] = m;
                }
            }
        }
    }
}
