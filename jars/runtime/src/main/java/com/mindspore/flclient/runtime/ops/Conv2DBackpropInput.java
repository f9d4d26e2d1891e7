package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.kernels.Gemm;
import com.mindspore.flclient.runtime.kernels.VectorConv;
import com.mindspore.flclient.runtime.kernels.VectorSupport;

/**
 * Conv2DBackpropInput (dy, w) → dx, the gradient of Conv2D with respect to its input:
 * {@code dcol = Wᵀ · dy} per group (the transpose is free: {@link Gemm} reads W with strides),
 * then col2im adds the columns back into {@code dx}. With the Vector API, each tap's share is
 * added straight onto padded input planes ({@link VectorConv#inputGrad}). {@code input_shape}
 * gives dx's shape.
 */
final class Conv2DBackpropInput implements Kernel {
    private final ConvParams p;
    private final float[] dy;
    private final float[] w;
    private final float[] dx;
    private final float[][] dyRows;
    private final float[][] dcol;
    private final int block;
    private final boolean vector;
    private final int lr;
    private final int[] taps;
    private final float[] dyWide;
    private final float[] dplanes;
    private final boolean wide;
    private final int colsPerImage;

    Conv2DBackpropInput(NodeSpec s) {
        ConvParams.requireInputs(s, "dy", "filter");
        int[] inputShape = ConvParams.shapeAttr(s, "input_shape");
        p = new ConvParams(s, inputShape, s.input(1).shape);
        s.requireShape(s.input(0), p.yShape, "dy");
        dy = s.floatIn(0);
        w = s.floatIn(1);
        dx = s.floatOut(0, inputShape);
        var g = p.geo;
        vector = VectorSupport.enabled() && g.isStrideOne();
        block = p.imagesPerBlock();
        if (vector) {
            lr = p.vectorColumns();
            taps = g.taps(p.cg);
            dyWide = new float[p.og * lr];
            dplanes = p.vectorPlanes(lr);
            dyRows = null;
            dcol = null;
        } else {
            lr = 0;
            wide = g.isStrideOne();
            colsPerImage = wide ? g.wideLength() : g.outPixels();
            taps = wide ? g.taps(p.cg) : null;
            dyWide = null;
            dplanes = p.widePlanes();
            int cols = block * colsPerImage;
            dyRows = new float[p.og][cols];
            dcol = new float[p.kg][cols];
            return;
        }
        wide = false;
        colsPerImage = 0;
    }

    @Override
    public void run() {
        java.util.Arrays.fill(dx, 0f);
        if (vector) {
            runVector();
            return;
        }
        var g = p.geo;
        int pix = g.outPixels();
        int imageSize = g.c * g.h * g.w;
        if (wide) {
            runWide();
            return;
        }
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

    /** Stride 1: dy in wide rows, one product, each tap's row added back in one contiguous run. */
    private void runWide() {
        var g = p.geo;
        int pix = g.outPixels();
        int per = colsPerImage;
        int imageSize = g.c * g.h * g.w;
        for (int n0 = 0; n0 < g.n; n0 += block) {
            int nb = Math.min(block, g.n - n0);
            int cols = nb * per;
            for (int grp = 0; grp < p.group; grp++) {
                for (int b = 0; b < nb; b++) {
                    g.toWideRows(dy, ((n0 + b) * p.o + grp * p.og) * pix, p.og, dyRows, b * per);
                }
                Gemm.zero(dcol, 0, p.kg, cols);
                Gemm.mulAdd(p.kg, cols, p.og, w, grp * p.og * p.kg, 1, p.kg, dyRows, 0, dcol, 0);
                for (int b = 0; b < nb; b++) {
                    int img = (n0 + b) * imageSize;
                    if (dplanes == null) {
                        g.col2imWideAdd(dcol, b * per, taps, dx, img + grp * p.cg * g.h * g.w);
                    } else {
                        java.util.Arrays.fill(dplanes, 0f);
                        g.col2imWideAdd(dcol, b * per, taps, dplanes, 0);
                        g.fromPlanesAdd(dplanes, dx, img, grp * p.cg, p.cg);
                    }
                }
            }
        }
    }

    private void runVector() {
        var g = p.geo;
        int pix = g.outPixels();
        int imageSize = g.c * g.h * g.w;
        for (int n = 0; n < g.n; n++) {
            for (int grp = 0; grp < p.group; grp++) {
                g.toWide(dy, (n * p.o + grp * p.og) * pix, p.og, dyWide, 0, lr);
                java.util.Arrays.fill(dplanes, 0f);
                VectorConv.inputGrad(dyWide, w, grp * p.og * p.kg, p.og, p.kg, lr, taps, dplanes);
                g.fromPlanesAdd(dplanes, dx, n * imageSize, grp * p.cg, p.cg);
            }
        }
    }
}
