package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/**
 * MaxPool (x) → the maximum of each window (padding never wins); its backward is
 * {@link MaxPoolGrad}. The 2×2 stride-2 unpadded window of LeNet and most small CNNs has its own
 * straight-line loop: the generic one spends more on loop bounds than on the four compares.
 */
final class MaxPool implements Kernel {
    private final PoolParams p;
    private final float[] x;
    private final float[] y;
    private final boolean twoByTwo;

    MaxPool(NodeSpec s) {
        s.requireInputs(1);
        p = new PoolParams(s, s.input(0).shape);
        x = s.floatIn(0);
        y = s.floatOut(0, p.yShape);
        twoByTwo = p.isTwoByTwo();
    }

    @Override
    public void run() {
        if (twoByTwo) {
            runTwoByTwo();
            return;
        }
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

    private void runTwoByTwo() {
        var g = p.geo;
        int planes = g.n * g.c;
        int w = g.w;
        int yi = 0;
        for (int pl = 0; pl < planes; pl++) {
            int base = pl * g.h * w;
            for (int oh = 0; oh < g.ho; oh++) {
                int r = base + 2 * oh * w;
                for (int ow = 0; ow < g.wo; ow++) {
                    int i = r + 2 * ow;
                    y[yi++] = Math.max(Math.max(x[i], x[i + 1]), Math.max(x[i + w], x[i + w + 1]));
                }
            }
        }
    }
}
