package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.kernels.Gemm;

/**
 * Conv2DBackpropFilter (dy, x) → dw, the gradient of Conv2D with respect to its filter:
 * {@code dW[o][k] = Σ_n Σ_p dy[n,o,p] · col_n[k][p]}. A dot product over pixels does not
 * vectorise in C2, so each image's columns are transposed to pixel-major rows and the sum
 * becomes a {@link Gemm} whose inner loop runs over the filter taps. {@code filter_shape} gives
 * dw's shape.
 */
final class Conv2DBackpropFilter implements Kernel {
    private final ConvParams p;
    private final float[] dy;
    private final float[] x;
    private final float[] dw;
    private final float[][] col;
    private final float[][] colT;
    private final float[][] acc;

    Conv2DBackpropFilter(NodeSpec s) {
        s.requireInputs(2);
        ConvParams.requireRank4(s, s.input(0), "dy");
        ConvParams.requireRank4(s, s.input(1), "input");
        int[] filterShape = ConvParams.shapeAttr(s, "filter_shape");
        p = new ConvParams(s, s.input(1).shape, filterShape);
        s.requireShape(s.input(0), p.yShape, "dy");
        dy = s.floatIn(0);
        x = s.floatIn(1);
        dw = s.floatOut(0, filterShape);
        int pix = p.geo.outPixels();
        col = new float[p.kg][pix];
        colT = new float[pix][p.kg];
        acc = new float[p.o][p.kg];
    }

    @Override
    public void run() {
        var g = p.geo;
        int pix = g.outPixels();
        int imageSize = g.c * g.h * g.w;
        Gemm.zero(acc, 0, p.o, p.kg);
        for (int n = 0; n < g.n; n++) {
            for (int grp = 0; grp < p.group; grp++) {
                g.im2col(x, n * imageSize, grp * p.cg, p.cg, col, 0);
                Gemm.transposeRows(col, 0, p.kg, pix, colT, 0);
                Gemm.mulAdd(p.og, p.kg, pix, dy, (n * p.o + grp * p.og) * pix, pix, 1, colT, 0, acc, grp * p.og);
            }
        }
        for (int o = 0; o < p.o; o++) {
            System.arraycopy(acc[o], 0, dw, o * p.kg, p.kg);
        }
    }
}
