package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.kernels.ConvGeometry;
import com.mindspore.flclient.runtime.kernels.VectorPool;
import com.mindspore.flclient.runtime.kernels.VectorSupport;

/**
 * The pooling windows and their gradients: MaxPool / MaxPoolGrad, AvgPool / AvgPoolGrad, with the
 * window they share ({@link PoolParams}). Each gradient takes (x, y, dy) as MindSpore's does.
 */
final class Pooling {
    private Pooling() {
    }

    /** The window of MaxPool / AvgPool and their grads: {@code kernel}, {@code stride}, {@code pad} over NCHW input. */
    static final class PoolParams {
        final ConvGeometry geo;
        final int[] xShape;
        final int[] yShape;

        PoolParams(NodeSpec s, int[] xShape) {
            if (xShape.length != 4) {
                throw s.fail("input shape " + java.util.Arrays.toString(xShape) + " must be NCHW");
            }
            int[] kernel = s.attrs.getInts("kernel", 2, 1);
            int[] stride = s.attrs.getInts("stride", 2, 1);
            int[] pad = s.attrs.getInts("pad", 4, 0);
            geo = new ConvGeometry(xShape[0], xShape[1], xShape[2], xShape[3], kernel[0], kernel[1], stride, new int[] {1, 1}, pad);
            if (geo.ho < 1 || geo.wo < 1) {
                throw s.fail("the window " + java.util.Arrays.toString(kernel) + " does not fit the input "
                        + java.util.Arrays.toString(xShape));
            }
            this.xShape = xShape.clone();
            this.yShape = new int[] {xShape[0], xShape[1], geo.ho, geo.wo};
        }

        /** A 2×2 window with stride 2 and no padding (LeNet's): pooling ops have a fast path for it. */
        boolean isTwoByTwo() {
            return geo.kh == 2 && geo.kw == 2 && geo.strideH == 2 && geo.strideW == 2 && geo.padTop == 0
                    && geo.padBottom == 0 && geo.padLeft == 0 && geo.padRight == 0;
        }

        /** Index in the channel plane of the window's first in-bounds row and column bounds, packed by callers. */
        int rowLo(int oh) {
            return Math.max(0, oh * geo.strideH - geo.padTop);
        }

        int rowHi(int oh) {
            return Math.min(geo.h, oh * geo.strideH - geo.padTop + geo.kh);
        }

        int colLo(int ow) {
            return Math.max(0, ow * geo.strideW - geo.padLeft);
        }

        int colHi(int ow) {
            return Math.min(geo.w, ow * geo.strideW - geo.padLeft + geo.kw);
        }
    }

    /**
     * MaxPool (x) → the maximum of each window (padding never wins); its backward is
     * {@link MaxPoolGrad}. The 2×2 stride-2 unpadded window of LeNet and most small CNNs has its own
     * straight-line loop: the generic one spends more on loop bounds than on the four compares.
     */
    static final class MaxPool implements Kernel {
        private final PoolParams p;
        private final float[] x;
        private final float[] y;
        private final boolean twoByTwo;
        /** The 2×2 window on the Vector API ({@link VectorPool#maxRowPair}, on every row where it fits). */
        private final boolean vector;

        MaxPool(NodeSpec s) {
            s.requireInputs(1);
            p = new PoolParams(s, s.input(0).shape);
            x = s.floatIn(0);
            y = s.floatOut(0, p.yShape);
            twoByTwo = p.isTwoByTwo();
            vector = twoByTwo && VectorSupport.enabled();
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
                    if (vector && VectorPool.maxRowPairFits(x.length, y.length, r, w, yi, g.wo)) {
                        VectorPool.maxRowPair(x, y, r, w, yi, g.wo);
                        yi += g.wo;
                        continue;
                    }
                    for (int ow = 0; ow < g.wo; ow++) {
                        int i = r + 2 * ow;
                        y[yi++] = Math.max(Math.max(x[i], x[i + 1]), Math.max(x[i + w], x[i + w + 1]));
                    }
                }
            }
        }
    }

    /**
     * MaxPoolGrad (x, y, dy) → dx: each window's gradient goes to the first (row-major) position of
     * its maximum, found again from {@code x} (the backward of {@link MaxPool}).
     *
     * <p>The 2×2 stride-2 unpadded window has its own loop that writes every element of dx once
     * (dy at the window's winner, +0 elsewhere) instead of a zero fill and a scatter: with the
     * Vector API ({@link VectorPool}) 8 pixels at a time, otherwise window by window with
     * integer selects (which way a comparison goes is a coin flip: a branch per element cost 1 ms
     * in mispredictions for LeNet). The winner: top = b if b &gt; a else a, bottom = d if d &gt; c
     * else c, the bottom one if max(c, d) &gt; max(a, b) (Math.max), the top one otherwise.
     *
     * <p>{@link #absorb} makes the 2×2 loop also do the {@link Activations.ReluGrad} that reads
     * this op's output (a train graph's MaxPoolGrad → ReluGrad pair): the mask of ReluGrad is
     * applied to the bits as they are written, into ReluGrad's output, and ReluGrad does nothing.
     * The bits are those of the two ops one after the other.
     */
    static final class MaxPoolGrad implements Kernel {
        private final PoolParams p;
        private final float[] x;
        private final float[] dy;
        private float[] dx;
        /** The ReluGrad's y whose mask this op applies ({@link #absorb}), or null. */
        private float[] reluY;
        private final boolean twoByTwo;
        private final boolean vector;

        MaxPoolGrad(NodeSpec s) {
            s.requireInputs(3);
            p = new PoolParams(s, s.input(0).shape);
            s.requireShape(s.input(1), p.yShape, "y");
            s.requireShape(s.input(2), p.yShape, "dy");
            x = s.floatIn(0);
            dy = s.floatIn(2);
            dx = s.floatOut(0, p.xShape);
            twoByTwo = p.isTwoByTwo();
            vector = twoByTwo && VectorSupport.enabled() && 2 * p.geo.wo >= VectorPool.minColumns();
        }

        /**
         * Takes over {@code next}, a ReluGrad whose dy is this op's output and nothing else reads it
         * (the caller checked the graph): from now on this op writes {@code next}'s output and
         * {@code next} does nothing. Only the 2×2 window on the Vector API fuses; false (nothing changed) otherwise.
         */
        boolean absorb(Activations.ReluGrad next) {
            if (!vector || next.dy != dx || next.y == next.dy || next.y.length != dx.length || next.dx == x || next.dx == dy
                    || next.dx == next.y) {
                return false;
            }
            reluY = next.y;
            dx = next.dx;
            next.absorbed = true;
            return true;
        }

        @Override
        public void run() {
            if (vector) {
                runTwoByTwo();
                return;
            }
            java.util.Arrays.fill(dx, 0f);
            if (twoByTwo) {
                scatterTwoByTwo();
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
            int plane = g.h * w;
            for (int pl = 0; pl < planes; pl++) {
                int base = pl * plane;
                int d = pl * g.ho * g.wo;
                for (int oh = 0; oh < g.ho; oh++, d += g.wo) {
                    int r = base + 2 * oh * w;
                    if (vector && d + g.wo + VectorPool.minColumns() / 2 <= dy.length) {
                        VectorPool.rowPair(x, dy, dx, r, w, d, g.wo);
                        if (reluY != null) {
                            VectorPool.reluMask(reluY, dx, r, r + 2 * w);
                        }
                    } else {
                        windows(r, w, d, g.wo);
                    }
                    if (w > 2 * g.wo) { // odd width: the last column is in no window
                        dx[r + w - 1] = 0f;
                        dx[r + 2 * w - 1] = 0f;
                    }
                }
                // odd height: the last row is in no window
                java.util.Arrays.fill(dx, base + 2 * g.ho * w, base + plane, 0f);
            }
        }

        /**
         * The plain-Java 2×2 loop (after the zero fill): the winner of each window gets dy, with
         * integer selects. Faster without the Vector API than writing all four elements with
         * selects (0.085 against 0.19 ms for LeNet's first layer, with the ReluGrad then 0.14
         * against 0.19 ms), so the plain path neither writes every element nor fuses.
         */
        private void scatterTwoByTwo() {
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

        /** One window row of the Vector API path's last rows, window by window: the winner's element gets dy's bits (ReluGrad-masked), the others +0. */
        private void windows(int r, int w, int d, int wo) {
            float[] ry = reluY;
            for (int ow = 0; ow < wo; ow++) {
                int i = r + 2 * ow;
                float a = x[i];
                float b = x[i + 1];
                float c = x[i + w];
                float e = x[i + w + 1];
                boolean right = b > a;
                boolean rightBottom = e > c;
                boolean bottom = Math.max(c, e) > Math.max(a, b);
                int gv = Float.floatToRawIntBits(dy[d + ow]);
                int s0 = !bottom && !right ? gv : 0;
                int s1 = !bottom && right ? gv : 0;
                int s2 = bottom && !rightBottom ? gv : 0;
                int s3 = bottom && rightBottom ? gv : 0;
                if (ry != null) {
                    s0 &= Activations.positiveMask(ry[i]);
                    s1 &= Activations.positiveMask(ry[i + 1]);
                    s2 &= Activations.positiveMask(ry[i + w]);
                    s3 &= Activations.positiveMask(ry[i + w + 1]);
                }
                dx[i] = Float.intBitsToFloat(s0);
                dx[i + 1] = Float.intBitsToFloat(s1);
                dx[i + w] = Float.intBitsToFloat(s2);
                dx[i + w + 1] = Float.intBitsToFloat(s3);
            }
        }
    }

    /** AvgPool (x) → the mean of each window's in-bounds elements (count_include_pad=false); backward {@link AvgPoolGrad}. */
    static final class AvgPool implements Kernel {
        private final PoolParams p;
        private final float[] x;
        private final float[] y;

        AvgPool(NodeSpec s) {
            s.requireInputs(1);
            p = new PoolParams(s, s.input(0).shape);
            x = s.floatIn(0);
            y = s.floatOut(0, p.yShape);
        }

        @Override
        public void run() {
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
                        float sum = 0f;
                        for (int r = r0; r < r1; r++) {
                            int row = base + r * g.w;
                            for (int c = c0; c < c1; c++) {
                                sum += x[row + c];
                            }
                        }
                        int count = (r1 - r0) * (c1 - c0);
                        y[yi++] = count > 0 ? sum / count : 0f;
                    }
                }
            }
        }
    }

    /** AvgPoolGrad (x, y, dy) → dx: each window's gradient shared equally by its in-bounds elements. */
    static final class AvgPoolGrad implements Kernel {
        private final PoolParams p;
        private final float[] dy;
        private final float[] dx;

        AvgPoolGrad(NodeSpec s) {
            s.requireInputs(3);
            p = new PoolParams(s, s.input(0).shape);
            s.requireShape(s.input(1), p.yShape, "y");
            s.requireShape(s.input(2), p.yShape, "dy");
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
                        int count = (r1 - r0) * (c1 - c0);
                        float share = count > 0 ? dy[yi] / count : 0f;
                        for (int r = r0; r < r1; r++) {
                            int row = base + r * g.w;
                            for (int c = c0; c < c1; c++) {
                                dx[row + c] += share;
                            }
                        }
                        yi++;
                    }
                }
            }
        }
    }
}
