package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.kernels.Gemm;
import com.mindspore.flclient.runtime.kernels.VectorConv;
import com.mindspore.flclient.runtime.kernels.VectorSupport;

/**
 * Conv2D (x, w) → y: im2col of a block of images, then {@code y = W · col} per group with
 * {@link Gemm}. Stride-1 convolutions use the wide column layout of
 * {@link com.mindspore.flclient.runtime.kernels.ConvGeometry#wideLength}, whose rows are single
 * copies of the input plane; with the Vector API ({@link VectorSupport}) they read the padded
 * planes directly ({@link VectorConv#forward}). The backward is the separate nodes
 * {@link Conv2DBackpropInput} and {@link Conv2DBackpropFilter} that MindSpore's graph contains.
 */
final class Conv2D implements Kernel {
    private final ConvParams p;
    private final float[] x;
    private final float[] w;
    private final float[] y;
    private final float[][] col;
    private final float[][] out;
    private final int block;
    private final boolean wide;
    private final int colsPerImage;
    private final float[] planes;
    private final boolean vector;
    private final int[] taps;
    private final int lr;
    private final float[] wideOut;
    private final int[] outRows;

    Conv2D(NodeSpec s) {
        ConvParams.requireInputs(s, "input", "filter");
        p = new ConvParams(s, s.input(0).shape, s.input(1).shape);
        x = s.floatIn(0);
        w = s.floatIn(1);
        y = s.floatOut(0, p.yShape);
        vector = VectorSupport.enabled() && p.geo.isStrideOne();
        lr = vector ? p.vectorColumns() : 0;
        taps = vector ? p.geo.taps(p.cg) : null;
        wideOut = vector ? new float[p.og * lr] : null;
        outRows = vector ? Gemm.rowStarts(p.og, lr) : null;
        wide = p.geo.isStrideOne();
        colsPerImage = wide ? p.geo.wideLength() : p.geo.outPixels();
        planes = vector ? p.vectorPlanes(lr) : p.widePlanes();
        block = Math.max(1, Math.min(p.geo.n, 512 / colsPerImage));
        int cols = block * colsPerImage;
        col = vector ? null : new float[p.kg][cols];
        out = vector ? null : new float[p.og][cols];
    }

    @Override
    public void run() {
        if (vector) {
            runVector();
            return;
        }
        var g = p.geo;
        int pix = g.outPixels();
        int per = colsPerImage;
        int imageSize = g.c * g.h * g.w;
        for (int n0 = 0; n0 < g.n; n0 += block) {
            int nb = Math.min(block, g.n - n0);
            int cols = nb * per;
            for (int grp = 0; grp < p.group; grp++) {
                for (int b = 0; b < nb; b++) {
                    if (wide) {
                        g.im2colWide(x, (n0 + b) * imageSize, grp * p.cg, p.cg, col, b * per, planes);
                    } else {
                        g.im2col(x, (n0 + b) * imageSize, grp * p.cg, p.cg, col, b * per);
                    }
                }
                Gemm.zero(out, 0, p.og, cols);
                Gemm.mulAdd(p.og, cols, p.kg, w, grp * p.og * p.kg, p.kg, 1, col, 0, out, 0);
                for (int o = 0; o < p.og; o++) {
                    for (int b = 0; b < nb; b++) {
                        int yOff = ((n0 + b) * p.o + grp * p.og + o) * pix;
                        if (wide) {
                            g.scatterWide(out[o], b * per, y, yOff);
                        } else {
                            System.arraycopy(out[o], b * per, y, yOff, pix);
                        }
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
                g.toPlanes(x, n * imageSize, grp * p.cg, p.cg, planes, 0);
                VectorConv.forward(planes, taps, w, grp * p.og * p.kg, p.og, p.kg, wideOut, outRows, lr);
                for (int o = 0; o < p.og; o++) {
                    g.scatterWide(wideOut, o * lr, y, (n * p.o + grp * p.og + o) * pix);
                }
            }
        }
    }
}
