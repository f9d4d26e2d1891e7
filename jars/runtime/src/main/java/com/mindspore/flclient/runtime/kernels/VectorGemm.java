package com.mindspore.flclient.runtime.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Row-major matrix products on the JDK Vector API for MatMul (only loaded when
 * {@link VectorSupport#enabled()}). Unlike {@link Gemm} they read and write flat arrays at any
 * offset, so no operand is copied into rows. Two shapes of kernel cover the dense layer:
 * {@link #mulBroadcast} (C = A·B with A read through strides, so also Aᵀ·B: the input and
 * weight gradients) and {@link #mulDot} (C = A·Bᵀ as dot products: the forward pass).
 */
public final class VectorGemm {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_256;
    private static final int L = S.length();

    private VectorGemm() {
    }

    /**
     * {@code c[i·n + j] = Σ_k a[i·ars + k·acs] · b[k·n + j]} for i &lt; m, j &lt; n, k &lt; kDim.
     * Blocks of 4 rows × 16 columns in registers; leftover columns in scalar code.
     */
    public static void mulBroadcast(int m, int n, int kDim, float[] a, int ars, int acs, float[] b, float[] c) {
        int nv = n - n % (2 * L);
        int i = 0;
        for (; i + 3 < m; i += 4) {
            int a0 = i * ars;
            int a1 = a0 + ars;
            int a2 = a1 + ars;
            int a3 = a2 + ars;
            for (int j = 0; j < nv; j += 2 * L) {
                FloatVector c00 = FloatVector.zero(S);
                FloatVector c01 = FloatVector.zero(S);
                FloatVector c10 = FloatVector.zero(S);
                FloatVector c11 = FloatVector.zero(S);
                FloatVector c20 = FloatVector.zero(S);
                FloatVector c21 = FloatVector.zero(S);
                FloatVector c30 = FloatVector.zero(S);
                FloatVector c31 = FloatVector.zero(S);
                for (int k = 0; k < kDim; k++) {
                    int bk = k * n + j;
                    FloatVector b0 = FloatVector.fromArray(S, b, bk);
                    FloatVector b1 = FloatVector.fromArray(S, b, bk + L);
                    int ak = k * acs;
                    FloatVector x = FloatVector.broadcast(S, a[a0 + ak]);
                    c00 = x.fma(b0, c00);
                    c01 = x.fma(b1, c01);
                    x = FloatVector.broadcast(S, a[a1 + ak]);
                    c10 = x.fma(b0, c10);
                    c11 = x.fma(b1, c11);
                    x = FloatVector.broadcast(S, a[a2 + ak]);
                    c20 = x.fma(b0, c20);
                    c21 = x.fma(b1, c21);
                    x = FloatVector.broadcast(S, a[a3 + ak]);
                    c30 = x.fma(b0, c30);
                    c31 = x.fma(b1, c31);
                }
                int r = i * n + j;
                c00.intoArray(c, r);
                c01.intoArray(c, r + L);
                c10.intoArray(c, r + n);
                c11.intoArray(c, r + n + L);
                c20.intoArray(c, r + 2 * n);
                c21.intoArray(c, r + 2 * n + L);
                c30.intoArray(c, r + 3 * n);
                c31.intoArray(c, r + 3 * n + L);
            }
        }
        for (; i < m; i++) {
            int a0 = i * ars;
            for (int j = 0; j < nv; j += 2 * L) {
                FloatVector c0 = FloatVector.zero(S);
                FloatVector c1 = FloatVector.zero(S);
                for (int k = 0; k < kDim; k++) {
                    FloatVector x = FloatVector.broadcast(S, a[a0 + k * acs]);
                    c0 = x.fma(FloatVector.fromArray(S, b, k * n + j), c0);
                    c1 = x.fma(FloatVector.fromArray(S, b, k * n + j + L), c1);
                }
                c0.intoArray(c, i * n + j);
                c1.intoArray(c, i * n + j + L);
            }
        }
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
     * 2 × 4 of them in registers at a time; the last {@code kDim mod 8} terms in scalar code.
     */
    public static void mulDot(int m, int n, int kDim, float[] a, float[] b, float[] c) {
        int kv = kDim - kDim % L;
        int i = 0;
        for (; i + 1 < m; i += 2) {
            int a0 = i * kDim;
            int a1 = a0 + kDim;
            int j = 0;
            for (; j + 3 < n; j += 4) {
                int b0 = j * kDim;
                int b1 = b0 + kDim;
                int b2 = b1 + kDim;
                int b3 = b2 + kDim;
                FloatVector s00 = FloatVector.zero(S);
                FloatVector s01 = FloatVector.zero(S);
                FloatVector s02 = FloatVector.zero(S);
                FloatVector s03 = FloatVector.zero(S);
                FloatVector s10 = FloatVector.zero(S);
                FloatVector s11 = FloatVector.zero(S);
                FloatVector s12 = FloatVector.zero(S);
                FloatVector s13 = FloatVector.zero(S);
                for (int k = 0; k < kv; k += L) {
                    FloatVector x0 = FloatVector.fromArray(S, a, a0 + k);
                    FloatVector x1 = FloatVector.fromArray(S, a, a1 + k);
                    FloatVector y = FloatVector.fromArray(S, b, b0 + k);
                    s00 = x0.fma(y, s00);
                    s10 = x1.fma(y, s10);
                    y = FloatVector.fromArray(S, b, b1 + k);
                    s01 = x0.fma(y, s01);
                    s11 = x1.fma(y, s11);
                    y = FloatVector.fromArray(S, b, b2 + k);
                    s02 = x0.fma(y, s02);
                    s12 = x1.fma(y, s12);
                    y = FloatVector.fromArray(S, b, b3 + k);
                    s03 = x0.fma(y, s03);
                    s13 = x1.fma(y, s13);
                }
                int r0 = i * n + j;
                int r1 = r0 + n;
                c[r0] = s00.reduceLanes(VectorOperators.ADD) + tail(a, a0, b, b0, kv, kDim);
                c[r0 + 1] = s01.reduceLanes(VectorOperators.ADD) + tail(a, a0, b, b1, kv, kDim);
                c[r0 + 2] = s02.reduceLanes(VectorOperators.ADD) + tail(a, a0, b, b2, kv, kDim);
                c[r0 + 3] = s03.reduceLanes(VectorOperators.ADD) + tail(a, a0, b, b3, kv, kDim);
                c[r1] = s10.reduceLanes(VectorOperators.ADD) + tail(a, a1, b, b0, kv, kDim);
                c[r1 + 1] = s11.reduceLanes(VectorOperators.ADD) + tail(a, a1, b, b1, kv, kDim);
                c[r1 + 2] = s12.reduceLanes(VectorOperators.ADD) + tail(a, a1, b, b2, kv, kDim);
                c[r1 + 3] = s13.reduceLanes(VectorOperators.ADD) + tail(a, a1, b, b3, kv, kDim);
            }
            for (; j < n; j++) {
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
        FloatVector s = FloatVector.zero(S);
        for (int k = 0; k < kv; k += L) {
            s = FloatVector.fromArray(S, a, aOff + k).fma(FloatVector.fromArray(S, b, bOff + k), s);
        }
        return s.reduceLanes(VectorOperators.ADD) + tail(a, aOff, b, bOff, kv, kDim);
    }

    private static float tail(float[] a, int aOff, float[] b, int bOff, int from, int to) {
        float s = 0f;
        for (int k = from; k < to; k++) {
            s += a[aOff + k] * b[bOff + k];
        }
        return s;
    }
}
