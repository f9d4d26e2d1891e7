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
    /**
     * Up to this many output channels per group, the plain path multiplies elementwise instead
     * of transposing: the transpose costs about as much per (pixel, tap) as 5–13 channels of
     * multiply-adds, so for LeNet's first layer (6 channels) it was more than half the op.
     */
    private static final int ELEMENTWISE_MAX_CHANNELS = 8;
    /** Memory cap of the elementwise partial sums (one wide row per weight): 16 MB. */
    private static final long ELEMENTWISE_MAX_FLOATS = 4L << 20;

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
    private final boolean elementwise;
    private final float[][] partial;
    private final float[][] colB;
    private final float[][] dyA;
    private final float[][] dyB;

    Conv2DBackpropFilter(NodeSpec s) {
        ConvParams.requireInputs(s, "dy", "input");
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
            lr = p.vectorColumns();
            taps = g.taps(p.cg);
            planes = p.vectorPlanes(lr);
            dyWide = new float[p.og * lr];
            lanes = new float[p.o * p.kg * VectorConv.LANES];
            elementwise = false;
            partial = null;
            colB = null;
            dyA = null;
            dyB = null;
            col = null;
            colT = null;
            acc = null;
        } else {
            lr = 0;
            taps = null;
            dyWide = null;
            lanes = null;
            planes = p.widePlanes();
            int len = wide ? g.wideLength() : pix;
            col = new float[p.kg][len];
            elementwise = wide && p.og <= ELEMENTWISE_MAX_CHANNELS && (long) p.o * p.kg * len <= ELEMENTWISE_MAX_FLOATS;
            partial = elementwise ? new float[p.o * p.kg][len] : null;
            colB = elementwise ? new float[p.kg][len] : null;
            dyA = elementwise ? new float[p.og][len] : null;
            dyB = elementwise ? new float[p.og][len] : null;
            colT = elementwise ? null : new float[pix][p.kg];
            acc = elementwise ? null : new float[p.o][p.kg];
        }
    }

    @Override
    public void run() {
        if (vector) {
            runVector();
            return;
        }
        if (elementwise) {
            runElementwise();
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

    /**
     * Stride 1, few output channels: {@code partial[o·kg + k][q] += Σ_images dy[o][q] · col[k][q]}
     * over wide rows — every array indexed by q alone, so C2 vectorises it — two images per pass,
     * then one sum along q per weight.
     */
    private void runElementwise() {
        var g = p.geo;
        int pix = g.outPixels();
        int len = g.wideLength();
        int imageSize = g.c * g.h * g.w;
        Gemm.zero(partial, 0, partial.length, len);
        for (int grp = 0; grp < p.group; grp++) {
            for (int n = 0; n < g.n; n += 2) {
                boolean pair = n + 1 < g.n;
                g.im2colWide(x, n * imageSize, grp * p.cg, p.cg, col, 0, planes);
                g.toWideRows(dy, (n * p.o + grp * p.og) * pix, p.og, dyA, 0);
                if (pair) {
                    g.im2colWide(x, (n + 1) * imageSize, grp * p.cg, p.cg, colB, 0, planes);
                    g.toWideRows(dy, ((n + 1) * p.o + grp * p.og) * pix, p.og, dyB, 0);
                }
                for (int o = 0; o < p.og; o++) {
                    int row = (grp * p.og + o) * p.kg;
                    for (int k = 0; k < p.kg; k++) {
                        if (pair) {
                            multiplyAdd2(len, partial[row + k], dyA[o], col[k], dyB[o], colB[k]);
                        } else {
                            multiplyAdd1(len, partial[row + k], dyA[o], col[k]);
                        }
                    }
                }
            }
        }
        for (int r = 0; r < partial.length; r++) {
            dw[r] = sum(partial[r], len);
        }
    }

    /** Four interleaved sums: one dependent chain of float adds would wait on each add's latency. */
    private static float sum(float[] row, int n) {
        float s0 = 0f;
        float s1 = 0f;
        float s2 = 0f;
        float s3 = 0f;
        int q = 0;
        for (; q + 3 < n; q += 4) {
            s0 += row[q];
            s1 += row[q + 1];
            s2 += row[q + 2];
            s3 += row[q + 3];
        }
        for (; q < n; q++) {
            s0 += row[q];
        }
        return (s0 + s1) + (s2 + s3);
    }

    private static void multiplyAdd2(int n, float[] acc, float[] d0, float[] c0, float[] d1, float[] c1) {
        for (int j = 0; j < n; j++) {
            acc[j] += d0[j] * c0[j] + d1[j] * c1[j];
        }
    }

    private static void multiplyAdd1(int n, float[] acc, float[] d0, float[] c0) {
        for (int j = 0; j < n; j++) {
            acc[j] += d0[j] * c0[j];
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
