package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/**
 * MaxPoolGrad (x, y, dy) → dx: each window's gradient goes to the first (row-major) position of
 * its maximum, found again from {@code x} (the backward of {@link MaxPool}).
 */
final class MaxPoolGrad implements Kernel {
    private final PoolParams p;
    private final float[] x;
    private final float[] dy;
    private final float[] dx;

    MaxPoolGrad(NodeSpec s) {
        s.requireInputs(3);
        p = new PoolParams(s, s.input(0).shape);
        s.requireShape(s.input(1), p.yShape, "y");
        s.requireShape(s.input(2), p.yShape, "dy");
        x = s.floatIn(0);
        dy = s.floatIn(2);
        dx = s.floatOut(0, p.xShape);
    }

    @Override
    public void run() {
        var g = p.geo;
        java.util.Arrays.fill(dx, 0f);
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
}
