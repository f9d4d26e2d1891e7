package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;
import com.mindspore.flclient.runtime.kernels.ConvGeometry;
import com.mindspore.flclient.runtime.kernels.Gemm;
import com.mindspore.flclient.runtime.kernels.VectorConv;
import com.mindspore.flclient.runtime.kernels.VectorSupport;

/**
 * Conv2D and its two gradients, Conv2DBackpropInput (dx) and Conv2DBackpropFilter (dw), which
 * MindSpore's train graph contains as separate nodes, with the attributes and shapes they share
 * ({@link ConvParams}). The index arithmetic and products are in
 * {@link com.mindspore.flclient.runtime.kernels}.
 */
final class Convolution {
    private Convolution() {
    }

    /**
     * What Conv2D and its two backprops share: the attributes of docs/ms-format.md and the shapes
     * they imply, checked once at load. {@code x} is {@code [N,C,H,W]}, the filter
     * {@code [O, C/group, kh, kw]}, {@code dy/y} is {@code [N,O,Ho,Wo]}.
     */
    static final class ConvParams {
        final int group;
        final int o;
        final int cg;
        final int og;
        final int kg;
        final ConvGeometry geo;
        final int[] xShape;
        final int[] wShape;
        final int[] yShape;

        ConvParams(NodeSpec s, int[] xShape, int[] wShape) {
            if (xShape.length != 4 || wShape.length != 4) {
                throw s.fail("input shape " + java.util.Arrays.toString(xShape) + " and filter shape "
                        + java.util.Arrays.toString(wShape) + " must both have rank 4 (NCHW, OIHW)");
            }
            this.group = (int) s.attrs.getInt("group");
            int[] stride = s.attrs.getInts("stride", 2, 1);
            int[] dilation = s.attrs.getInts("dilation", 2, 1);
            int[] pad = s.attrs.getInts("pad", 4, 0);
            this.o = wShape[0];
            this.cg = wShape[1];
            if (group < 1 || xShape[1] != cg * group || o % group != 0) {
                throw s.fail("channels do not fit: input " + java.util.Arrays.toString(xShape) + ", filter "
                        + java.util.Arrays.toString(wShape) + ", group " + group);
            }
            this.og = o / group;
            this.kg = cg * wShape[2] * wShape[3];
            this.geo = new ConvGeometry(xShape[0], xShape[1], xShape[2], xShape[3], wShape[2], wShape[3], stride, dilation, pad);
            if (geo.ho < 1 || geo.wo < 1) {
                throw s.fail("the filter " + java.util.Arrays.toString(wShape) + " does not fit the padded input "
                        + java.util.Arrays.toString(xShape));
            }
            this.xShape = xShape.clone();
            this.wShape = wShape.clone();
            this.yShape = new int[] {xShape[0], o, geo.ho, geo.wo};
        }

        /** Reads a shape given as an Ints(4) attribute (input_shape, filter_shape). */
        static int[] shapeAttr(NodeSpec s, String name) {
            return s.attrs.getInts(name, 4, 1);
        }

        /** How many images one product handles: enough columns (~512) to keep the vector loops long. */
        int imagesPerBlock() {
            int p = geo.outPixels();
            return Math.max(1, Math.min(geo.n, 512 / p));
        }

        static void requireRank4(NodeSpec s, Value v, String what) {
            s.requireRank(v, 4, what);
        }

        /** The two inputs of a convolution op, both of rank 4 ({@code first}, {@code second} name them in errors). */
        static void requireInputs(NodeSpec s, String first, String second) {
            s.requireInputs(2);
            requireRank4(s, s.input(0), first);
            requireRank4(s, s.input(1), second);
        }

        /** Columns per row of the Vector API kernels ({@link VectorConv}): the wide length in whole vectors. Vector path only. */
        int vectorColumns() {
            return VectorConv.roundUp(geo.wideLength());
        }

        /** One group's zero-padded input planes for the Vector API kernels, with slack for the last row of {@code lr} columns. */
        float[] vectorPlanes(int lr) {
            return new float[cg * geo.planeSize() + lr - geo.wideLength()];
        }

        /** One group's zero-padded input planes for the plain wide (stride-1) path; null when it needs none (unpadded or strided). */
        float[] widePlanes() {
            return geo.isStrideOne() && geo.isPadded() ? new float[cg * geo.planeSize()] : null;
        }
    }

    /**
     * Conv2D (x, w) → y: im2col of a block of images, then {@code y = W · col} per group with
     * {@link Gemm}. Stride-1 convolutions use the wide column layout of
     * {@link com.mindspore.flclient.runtime.kernels.ConvGeometry#wideLength}, whose rows are single
     * copies of the input plane; with the Vector API ({@link VectorSupport}) they read the padded
     * planes directly ({@link VectorConv#forward}). The backward is the separate nodes
     * {@link Conv2DBackpropInput} and {@link Conv2DBackpropFilter} that MindSpore's graph contains.
     */
    static final class Conv2D implements Kernel {
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

    /**
     * Conv2DBackpropInput (dy, w) → dx, the gradient of Conv2D with respect to its input:
     * {@code dcol = Wᵀ · dy} per group (the transpose is free: {@link Gemm} reads W with strides),
     * then col2im adds the columns back into {@code dx}. With the Vector API, each tap's share is
     * added straight onto padded input planes ({@link VectorConv#inputGrad}). {@code input_shape}
     * gives dx's shape.
     */
    static final class Conv2DBackpropInput implements Kernel {
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

    /**
     * Conv2DBackpropFilter (dy, x) → dw, the gradient of Conv2D with respect to its filter:
     * {@code dW[o][k] = Σ_n Σ_p dy[n,o,p] · col_n[k][p]}. With the Vector API these are dot
     * products of dy's rows with the input planes at each tap's offset, ({@link VectorConv#filterGrad}). In plain Java a dot product does not vectorise (C2
     * keeps float sums in order), so each image's columns are transposed to pixel-major rows and the
     * sum becomes a {@link Gemm} whose inner loop runs over the filter taps. {@code filter_shape}
     * gives dw's shape.
     */
    static final class Conv2DBackpropFilter implements Kernel {
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
}
