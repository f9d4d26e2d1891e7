package com.mindspore.flclient.runtime.kernels;

/**
 * Row-major matrix products on the JDK Vector API for MatMul (only loaded when
 * {@link VectorSupport#enabled()}). Unlike {@link Gemm} they read and write flat arrays at any
 * offset, so no operand is copied into rows. Two shapes of kernel cover the dense layer:
 * {@link #mulBroadcast} (C = A·B with A read through strides, so also Aᵀ·B: the input and
 * weight gradients) and {@link #mulDot} (C = A·Bᵀ as dot products: the forward pass).
 */
public final class VectorGemm {
    private static final int L = VectorBlocks.LANES;

    private VectorGemm() {
    }

    /**
     * {@code c[i·n + j] = Σ_k a[i·ars + k·acs] · b[k·n + j]} for i &lt; m, j &lt; n, k &lt; kDim.
     * Blocks of 4 (then 2, 1) rows × 16 columns in registers ({@link VectorBlocks#broadcastRows});
     * leftover columns in scalar code. {@code bRows} and {@code cRows} are
     * {@link Gemm#rowStarts}{@code (kDim, n)} and {@code (m, n)}, made once by the caller.
     */
    public static void mulBroadcast(int m, int n, int kDim, float[] a, int ars, int acs, float[] b, float[] c,
            int[] bRows, int[] cRows) {
        int nv = n - n % (2 * L);
        VectorBlocks.broadcastRows(m, nv, kDim, a, 0, ars, acs, b, bRows, c, cRows);
        if (nv < n) {
            for (int r = 0; r < m; r++) {
                for (int j = nv; j < n; j++) {
                    float s = 0f;
                    for (int k = 0; k < kDim; k++) {
                        s += a[r * ars + k * acs] * b[k * n + j];
                    }
                    c[r * n + j] = s;
                }
            }
        }
    }

    /**
     * {@code c[i·n + j] = Σ_k a[i·kDim + k] · b[j·kDim + k]}: dot products of A's and B's rows,
     * 2 × 4 of them in registers at a time ({@link VectorBlocks#dots2}); the last
     * {@code kDim mod 8} terms in scalar code. {@code bRows} is {@link Gemm#rowStarts}{@code (n, kDim)}.
     */
    public static void mulDot(int m, int n, int kDim, float[] a, float[] b, float[] c, int[] bRows) {
        int kv = kDim - kDim % L;
        int i = 0;
        for (; i + 1 < m; i += 2) {
            int a0 = i * kDim;
            int a1 = a0 + kDim;
            int r0 = i * n;
            int r1 = r0 + n;
            int done = VectorBlocks.dots2(a, a0, a1, b, bRows, n, kv, c, r0, r1, true);
            for (int j = 0; j < done; j++) {
                c[r0 + j] += tail(a, a0, b, bRows[j], kv, kDim);
                c[r1 + j] += tail(a, a1, b, bRows[j], kv, kDim);
            }
            for (int j = done; j < n; j++) {
                c[i * n + j] = dot(a, a0, b, j * kDim, kv, kDim);
                c[(i + 1) * n + j] = dot(a, a1, b, j * kDim, kv, kDim);
            }
        }
        for (; i < m; i++) {
            for (int j = 0; j < n; j++) {
                c[i * n + j] = dot(a, i * kDim, b, j * kDim, kv, kDim);
            }
        }
    }

    private static float dot(float[] a, int aOff, float[] b, int bOff, int kv, int kDim) {
        return VectorBlocks.dotSum(a, aOff, b, bOff, kv) + tail(a, aOff, b, bOff, kv, kDim);
    }

    private static float tail(float[] a, int aOff, float[] b, int bOff, int from, int to) {
        float s = 0f;
        for (int k = from; k < to; k++) {
            s += a[aOff + k] * b[bOff + k];
        }
        return s;
    }
}
