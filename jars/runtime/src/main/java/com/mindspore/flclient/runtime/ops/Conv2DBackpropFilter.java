package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.kernels.Gemm;
import com.mindspore.flclient.runtime.kernels.VectorConv;
import com.mindspore.flclient.runtime.kernels.VectorSupport;

/**
 * Conv2DBackpropFilter (dy, x) → dw, the gradient of Conv2D with respect to its filter:
 * {@code dW[o][k] = Σ_n Σ_p dy[n,o,p] · col_n[k][p]}. With the Vector API these are dot
 * products of dy's rows with the input planes at each tap's offset, ({@link VectorConv#filterGrad}). In plain Java a dot product does not vectorise (C2
 * keeps float sums in order), so each image's columns are transposed to pixel-major rows and the
 * sum becomes a {@link Gemm} whose inner loop runs over the filter taps. {@code filter_shape}
 * gives dw's shape.
 */
final class Conv2DBackpropFilter implements Kernel {
    private final ConvParams p;
    private final float[] dy;
    private final float[] x;
    private final float[] dw;
    private final boolean vector;
    private final boolean wide;
    private final float[][] col;
    private final float[][] colT;
    private final float[][] acc;
    private final float[] planes;
    private final int[] taps;
    private final int lr;
    private final float[] dyWide;
    private final float[] lanes;

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
        var g = p.geo;
        int pix = g.outPixels();
        vector = VectorSupport.enabled() && g.isStrideOne();
        wide = g.isStrideOne();
        if (vector) {
            lr = VectorConv.roundUp(g.wideLength());
            taps = g.taps(p.cg);
            planes = new float[p.cg * g.planeSize() + lr - g.wideLength()];
            dyWide = new float[p.og * lr];
            lanes = new float[p.o * p.kg * VectorConv.LANES];
            col = null;
            colT = null;
            acc = null;
        } else {
            lr = 0;
            taps = null;
            dyWide = null;
            lanes = null;
            planes = wide && g.isPadded() ? new float[p.cg * g.planeSize()] : null;
            col = new float[p.kg][wide ? g.wideLength() : pix];
            colT = new float[pix][p.kg];
            acc = new float[p.o][p.kg];
        }
    }

    @Override
    public void run() {
        if (vector) {
            runVector();
            return;
        }
        var g = p.geo;
        int pix = g.outPixels();
        int imageSize = g.c * g.h * g.w;
        Gemm.zero(acc, 0, p.o, p.kg);
        for (int n = 0; n < g.n; n++) {
            for (int grp = 0; grp < p.group; grp++) {
                if (wide) {
                    g.im2colWide(x, n * imageSize, grp * p.cg, p.cg, col, 0, planes);
                    int wp = g.paddedW();
                    for (int oh = 0; oh < g.ho; oh++) {
                        Gemm.transposeRows(col, oh * wp, p.kg, g.wo, colT, oh * g.wo, 0);
                    }
                } else {
                    g.im2col(x, n * imageSize, grp * p.cg, p.cg, col, 0);
                    Gemm.transposeRows(col, 0, p.kg, pix, colT, 0);
                }
                Gemm.mulAdd(p.og, p.kg, pix, dy, (n * p.o + grp * p.og) * pix, pix, 1, colT, 0, acc, grp * p.og);
            }
        }
        for (int o = 0; o < p.o; o++) {
            System.arraycopy(acc[o], 0, dw, o * p.kg, p.kg);
        }
    }

    private void runVector() {
        var g = p.geo;
        int pix = g.outPixels();
        int imageSize = g.c * g.h * g.w;
        java.util.Arrays.fill(lanes, 0f);
        for (int n = 0; n < g.n; n++) {
            for (int grp = 0; grp < p.group; grp++) {
                g.toPlanes(x, n * imageSize, grp * p.cg, p.cg, planes, 0);
                g.toWide(dy, (n * p.o + grp * p.og) * pix, p.og, dyWide, 0, lr);
                VectorConv.filterGrad(dyWide, planes, taps, p.og, p.kg, lr, lanes, grp * p.og);
            }
        }
        VectorConv.reduceLanes(lanes, dw, p.o * p.kg);
    }
}
