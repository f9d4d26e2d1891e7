package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;
import com.mindspore.flclient.runtime.kernels.Gemm;
import com.mindspore.flclient.runtime.kernels.VectorGemm;
import com.mindspore.flclient.runtime.kernels.VectorSupport;

/**
 * The dense layer's ops: MatMul (which is also its own backward, with other transpose flags) and
 * BiasAdd / BiasAddGrad (the bias of a dense layer or, on the channel axis, of a convolution).
 */
final class Dense {
    private Dense() {
    }

    /**
     * MatMul (a, b) → a'·b' with MindSpore's {@code transpose_a} / {@code transpose_b}. A transposed
     * {@code a} costs nothing ({@link Gemm} reads it through strides); {@code b} is copied into row
     * arrays, transposed when {@code transpose_b}, which is O(K·N) next to the O(M·K·N) product. The
     * dense layer's forward is (x, W, false, true), its backward (dy, W, false, false) for dx and
     * (dy, x, true, false) for dW. With the Vector API ({@link VectorGemm}) nothing is copied:
     * {@code a·bᵀ} becomes dot products, {@code a·b} and {@code aᵀ·b} broadcast products.
     */
    static final class MatMul implements Kernel {
        private final boolean ta;
        private final boolean tb;
        private final int m;
        private final int k;
        private final int n;
        private final float[] a;
        private final float[] b;
        private final float[] y;
        private final float[][] bRows;
        private final float[][] cRows;
        private final boolean vector;
        private final int[] bStarts;
        private final int[] cStarts;

        MatMul(NodeSpec s) {
            s.requireInputs(2);
            ta = s.attrs.getBool("transpose_a");
            tb = s.attrs.getBool("transpose_b");
            s.requireRank(s.input(0), 2, "a");
            s.requireRank(s.input(1), 2, "b");
            int[] as = s.input(0).shape;
            int[] bs = s.input(1).shape;
            m = ta ? as[1] : as[0];
            k = ta ? as[0] : as[1];
            int kb = tb ? bs[1] : bs[0];
            n = tb ? bs[0] : bs[1];
            if (k != kb) {
                throw s.fail("inner dimensions differ: a " + s.input(0).describe() + (ta ? "ᵀ" : "") + " · b "
                        + s.input(1).describe() + (tb ? "ᵀ" : ""));
            }
            a = s.floatIn(0);
            b = s.floatIn(1);
            y = s.floatOut(0, new int[] {m, n});
            vector = VectorSupport.enabled() && !(ta && tb);
            bRows = vector ? null : new float[k][n];
            cRows = vector ? null : new float[m][n];
            bStarts = !vector ? null : tb ? Gemm.rowStarts(n, k) : Gemm.rowStarts(k, n);
            cStarts = vector && !tb ? Gemm.rowStarts(m, n) : null;
        }

        @Override
        public void run() {
            if (vector) {
                if (tb) {
                    VectorGemm.mulDot(m, n, k, a, b, y, bStarts);
                } else if (ta) {
                    VectorGemm.mulBroadcast(m, n, k, a, 1, m, b, y, bStarts, cStarts);
                } else {
                    VectorGemm.mulBroadcast(m, n, k, a, k, 1, b, y, bStarts, cStarts);
                }
                return;
            }
            if (tb) {
                Gemm.transposeToRows(b, 0, n, k, bRows);
            } else {
                Gemm.toRows(b, 0, k, n, bRows);
            }
            Gemm.zero(cRows, 0, m, n);
            if (ta) {
                Gemm.mulAdd(m, n, k, a, 0, 1, m, bRows, 0, cRows, 0);
            } else {
                Gemm.mulAdd(m, n, k, a, 0, k, 1, bRows, 0, cRows, 0);
            }
            for (int i = 0; i < m; i++) {
                System.arraycopy(cRows[i], 0, y, i * n, n);
            }
        }
    }

    /** BiasAdd (x, b) → y: {@code y = x + b} with the bias on axis 1 (channels of NCHW, features of [N, F]). */
    static final class BiasAdd implements Kernel {
        private final float[] x;
        private final float[] b;
        private final float[] y;
        private final int outer;
        private final int channels;
        private final int inner;

        BiasAdd(NodeSpec s) {
            s.requireInputs(2);
            Value xv = s.input(0);
            var l = new Layout(s, xv, "input", " (bias on axis 1)");
            outer = l.outer;
            channels = l.channels;
            inner = l.inner;
            s.requireShape(s.input(1), new int[] {channels}, "bias");
            x = s.floatIn(0);
            b = s.floatIn(1);
            y = s.floatOut(0, xv.shape);
        }

        /** A tensor of rank ≥ 2 as {@code [outer, channels, inner]}, channels being axis 1 (BiasAdd and its grad). */
        static final class Layout {
            final int outer;
            final int channels;
            final int inner;

            Layout(NodeSpec s, Value v, String what, String why) {
                if (v.shape.length < 2) {
                    throw s.fail(what + " " + v.describe() + " needs rank ≥ 2" + why);
                }
                outer = v.shape[0];
                channels = v.shape[1];
                inner = v.numel / Math.max(1, outer * channels);
            }
        }

        @Override
        public void run() {
            for (int n = 0; n < outer; n++) {
                for (int c = 0; c < channels; c++) {
                    int off = (n * channels + c) * inner;
                    float bc = b[c];
                    for (int i = 0; i < inner; i++) {
                        y[off + i] = x[off + i] + bc;
                    }
                }
            }
        }
    }

    /** BiasAddGrad (dy) → db: the sum of dy over every axis but 1, the gradient of {@link BiasAdd}'s bias. */
    static final class BiasAddGrad implements Kernel {
        private final float[] dy;
        private final float[] db;
        private final int outer;
        private final int channels;
        private final int inner;

        BiasAddGrad(NodeSpec s) {
            s.requireInputs(1);
            var l = new BiasAdd.Layout(s, s.input(0), "dy", "");
            outer = l.outer;
            channels = l.channels;
            inner = l.inner;
            dy = s.floatIn(0);
            db = s.floatOut(0, new int[] {channels});
        }

        @Override
        public void run() {
            java.util.Arrays.fill(db, 0f);
            for (int n = 0; n < outer; n++) {
                for (int c = 0; c < channels; c++) {
                    int off = (n * channels + c) * inner;
                    float sum = 0f;
                    for (int i = 0; i < inner; i++) {
                        sum += dy[off + i];
                    }
                    db[c] += sum;
                }
            }
        }
    }
}
