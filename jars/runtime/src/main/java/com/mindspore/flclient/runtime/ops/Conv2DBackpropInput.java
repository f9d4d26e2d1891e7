package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.kernels.Gemm;

/**
 * Conv2DBackpropInput (dy, w) → dx, the gradient of Conv2D with respect to its input:
 * {@code dcol = Wᵀ · dy} per group (the transpose is free: {@link Gemm} reads W with strides),
 * then col2im adds the columns back into {@code dx}. {@code input_shape} gives dx's shape.
 */
final class Conv2DBackpropInput implements Kernel {
    private final ConvParams p;
    private final float[] dy;
    private final float[] w;
    private final float[] dx;
    private final float[][] dyRows;
    private final float[][] dcol;
    private final int block;

    Conv2DBackpropInput(NodeSpec s) {
        s.requireInputs(2);
        ConvParams.requireRank4(s, s.input(0), "dy");
        ConvParams.requireRank4(s, s.input(1), "filter");
        int[] inputShape = ConvParams.shapeAttr(s, "input_shape");
        p = new ConvParams(s, inputShape, s.input(1).shape);
        s.requireShape(s.input(0), p.yShape, "dy");
        dy = s.floatIn(0);
        w = s.floatIn(1);
        dx = s.floatOut(0, inputShape);
        block = p.imagesPerBlock();
        int cols = block * p.geo.outPixels();
        dyRows = new float[p.og][cols];
        dcol = new float[p.kg][cols];
    }

    @Override
    public void run() {
        var g = p.geo;
        int pix = g.outPixels();
        int imageSize = g.c * g.h * g.w;
        java.util.Arrays.fill(dx, 0f);
        for (int n0 = 0; n0 < g.n; n0 += block) {
            int nb = Math.min(block, g.n - n0);
            int cols = nb * pix;
            for (int grp = 0; grp < p.group; grp++) {
                for (int o = 0; o < p.og; o++) {
                    for (int b = 0; b < nb; b++) {
                        System.arraycopy(dy, ((n0 + b) * p.o + grp * p.og + o) * pix, dyRows[o], b * pix, pix);
                    }
                }
                Gemm.zero(dcol, 0, p.kg, cols);
                Gemm.mulAdd(p.kg, cols, p.og, w, grp * p.og * p.kg, 1, p.kg, dyRows, 0, dcol, 0);
                for (int b = 0; b < nb; b++) {
                    g.col2imAdd(dcol, b * pix, dx, (n0 + b) * imageSize, grp * p.cg, p.cg);
                }
            }
        }
    }
}
