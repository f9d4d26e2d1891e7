package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/**
 * MaxPoolGrad (x, y, dy) → dx: each window's gradient goes to the first (row-major) position of
 * its maximum, found again from {@code x} (the backward of {@link MaxPool}). The 2×2 stride-2
 * window picks the position with integer selects instead of a branch per element (which way the
 * comparison goes is a coin flip, and mispredictions made the branchy loop 1 ms for LeNet).
 */
final class MaxPoolGrad implements Kernel {
    private final PoolParams p;
    private final float[] x;
    private final float[] dy;
    private final float[] dx;
    private final boolean twoByTwo;

    MaxPoolGrad(NodeSpec s) {
        s.requireInputs(3);
        p = new PoolParams(s, s.input(0).shape);
        s.requireShape(s.input(1), p.yShape, "y");
        s.requireShape(s.input(2), p.yShape, "dy");
        x = s.floatIn(0);
        dy = s.floatIn(2);
        dx = s.floatOut(0, p.xShape);
        twoByTwo = p.isTwoByTwo();
    }

    @Override
    public void run() {
        java.util.Arrays.fill(dx, 0f);
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
                    int arg = -1;
                    for (int r = r0; r < r1; r++) {
                        int row = base + r * g.w;
                        for (int c = c0; c < c1; c++) {
                            if (x[row + c] > m || arg < 0) {
                                m = x[row + c];
                                arg = row + c;
                            }
                        }
                    }
                    if (arg >= 0) {
                        dx[arg] += dy[yi];
                    }
                    yi++;
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
                    float a = x[i];
                    float b = x[i + 1];
                    float c = x[i + w];
                    float d = x[i + w + 1];
                    int top = b > a ? i + 1 : i;
                    float topMax = Math.max(a, b);
                    int bottom = d > c ? i + w + 1 : i + w;
                    float bottomMax = Math.max(c, d);
                    dx[bottomMax > topMax ? bottom : top] = dy[yi++];
                }
            }
        }
    }
}
