package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.kernels.Gemm;
import com.mindspore.flclient.runtime.kernels.VectorGemm;
import com.mindspore.flclient.runtime.kernels.VectorSupport;

/**
 * MatMul (a, b) → a'·b' with MindSpore's {@code transpose_a} / {@code transpose_b}. A transposed
 * {@code a} costs nothing ({@link Gemm} reads it through strides); {@code b} is copied into row
 * arrays, transposed when {@code transpose_b}, which is O(K·N) next to the O(M·K·N) product. The
 * dense layer's forward is (x, W, false, true), its backward (dy, W, false, false) for dx and
 * (dy, x, true, false) for dW. With the Vector API ({@link VectorGemm}) nothing is copied:
 * {@code a·bᵀ} becomes dot products, {@code a·b} and {@code aᵀ·b} broadcast products.
 */
final class MatMul implements Kernel {
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
