package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/** AvgPool (x) → the mean of each window's in-bounds elements (count_include_pad=false); backward {@link AvgPoolGrad}. */
final class AvgPool implements Kernel {
    private final PoolParams p;
    private final float[] x;
    private final float[] y;

    AvgPool(NodeSpec s) {
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
                    float sum = 0f;
                    for (int r = r0; r < r1; r++) {
                        int row = base + r * g.w;
                        for (int c = c0; c < c1; c++) {
                            sum += x[row + c];
                        }
                    }
                    int count = (r1 - r0) * (c1 - c0);
                    y[yi++] = count > 0 ? sum / count : 0f;
                }
            }
        }
    }
}
