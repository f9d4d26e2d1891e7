package com.mindspore.flclient.runtime.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The two register-blocked loops that {@link VectorConv} and {@link VectorGemm} share (only loaded
 * when {@link VectorSupport#enabled()}).
 *
 * <p>Rows of B (and of C) are given as start offsets ({@code int[]}, see {@link Gemm#rowStarts}),
 * so one loop serves a matrix in a flat array ({@code k·n}) and the taps of zero-padded planes.
 * Every vector lives inside one call: the helpers that take or return vectors are small enough
 * for C2 to inline (a call that passes a vector and is not inlined boxes it). Each sum runs from
 * zero over its index in order, whichever block computes it, so the blocking never changes a
 * result.
 */
final class VectorBlocks {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_256;
    static final int LANES = S.length();

    private VectorBlocks() {
    }

    /**
     * {@code c[cRows[i] + j] = Σ_k a[aOff + i·ars + k·acs] · b[bRows[k] + j]} for i &lt; m,
     * j &lt; cols, k &lt; kDim; {@code cols} a multiple of 16. Blocks of 6 (then 4, 2, 1) rows × 16
     * columns in registers, one broadcast of A per row and k.
     */
    static void broadcastRows(int m, int cols, int kDim, float[] a, int aOff, int ars, int acs,
            float[] b, int[] bRows, float[] c, int[] cRows) {
        int i = 0;
        for (; i + 5 < m; i += 6) {
            rows6(i, cols, kDim, a, aOff, ars, acs, b, bRows, c, cRows);
        }
        for (; i + 3 < m; i += 4) {
            int a0 = aOff + i * ars;
            int a1 = a0 + ars;
            int a2 = a1 + ars;
            int a3 = a2 + ars;
            int r0 = cRows[i];
            int r1 = cRows[i + 1];
            int r2 = cRows[i + 2];
            int r3 = cRows[i + 3];
            for (int j = 0; j < cols; j += 2 * LANES) {
                FloatVector c00 = FloatVector.zero(S);
                FloatVector c01 = FloatVector.zero(S);
                FloatVector c10 = FloatVector.zero(S);
                FloatVector c11 = FloatVector.zero(S);
                FloatVector c20 = FloatVector.zero(S);
                FloatVector c21 = FloatVector.zero(S);
                FloatVector c30 = FloatVector.zero(S);
                FloatVector c31 = FloatVector.zero(S);
                for (int k = 0, ak = 0; k < kDim; k++, ak += acs) {
                    int t = bRows[k] + j;
                    FloatVector b0 = FloatVector.fromArray(S, b, t);
                    FloatVector b1 = FloatVector.fromArray(S, b, t + LANES);
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
                c00.intoArray(c, r0 + j);
                c01.intoArray(c, r0 + j + LANES);
                c10.intoArray(c, r1 + j);
                c11.intoArray(c, r1 + j + LANES);
                c20.intoArray(c, r2 + j);
                c21.intoArray(c, r2 + j + LANES);
                c30.intoArray(c, r3 + j);
                c31.intoArray(c, r3 + j + LANES);
            }
        }
        for (; i + 1 < m; i += 2) {
            int a0 = aOff + i * ars;
            int a1 = a0 + ars;
            int r0 = cRows[i];
            int r1 = cRows[i + 1];
            for (int j = 0; j < cols; j += 2 * LANES) {
                FloatVector c00 = FloatVector.zero(S);
                FloatVector c01 = FloatVector.zero(S);
                FloatVector c10 = FloatVector.zero(S);
                FloatVector c11 = FloatVector.zero(S);
                for (int k = 0, ak = 0; k < kDim; k++, ak += acs) {
                    int t = bRows[k] + j;
                    FloatVector b0 = FloatVector.fromArray(S, b, t);
                    FloatVector b1 = FloatVector.fromArray(S, b, t + LANES);
                    FloatVector x = FloatVector.broadcast(S, a[a0 + ak]);
                    c00 = x.fma(b0, c00);
                    c01 = x.fma(b1, c01);
                    x = FloatVector.broadcast(S, a[a1 + ak]);
                    c10 = x.fma(b0, c10);
                    c11 = x.fma(b1, c11);
                }
                c00.intoArray(c, r0 + j);
                c01.intoArray(c, r0 + j + LANES);
                c10.intoArray(c, r1 + j);
                c11.intoArray(c, r1 + j + LANES);
            }
        }
        for (; i < m; i++) {
            int a0 = aOff + i * ars;
            int r0 = cRows[i];
            for (int j = 0; j < cols; j += 2 * LANES) {
                FloatVector c0 = FloatVector.zero(S);
                FloatVector c1 = FloatVector.zero(S);
                for (int k = 0, ak = 0; k < kDim; k++, ak += acs) {
                    int t = bRows[k] + j;
                    FloatVector x = FloatVector.broadcast(S, a[a0 + ak]);
                    c0 = x.fma(FloatVector.fromArray(S, b, t), c0);
                    c1 = x.fma(FloatVector.fromArray(S, b, t + LANES), c1);
                }
                c0.intoArray(c, r0 + j);
                c1.intoArray(c, r0 + j + LANES);
            }
        }
    }

    /**
     * Rows i … i+5 of {@link #broadcastRows}: 6 rows × 16 columns, twelve accumulators (AVX2 has
     * sixteen registers: twelve, two rows of B and one broadcast). Twelve independent FMA chains
     * cover the FMA latency that eight left partly exposed, and each row of B is loaded once per 6
     * rows of C instead of once per 4; every sum is still Σ_k from zero in k order.
     */
    private static void rows6(int i, int cols, int kDim, float[] a, int aOff, int ars, int acs,
            float[] b, int[] bRows, float[] c, int[] cRows) {
        int a0 = aOff + i * ars;
        int a1 = a0 + ars;
        int a2 = a1 + ars;
        int a3 = a2 + ars;
        int a4 = a3 + ars;
        int a5 = a4 + ars;
        for (int j = 0; j < cols; j += 2 * LANES) {
            FloatVector c00 = FloatVector.zero(S);
            FloatVector c01 = FloatVector.zero(S);
            FloatVector c10 = FloatVector.zero(S);
            FloatVector c11 = FloatVector.zero(S);
            FloatVector c20 = FloatVector.zero(S);
            FloatVector c21 = FloatVector.zero(S);
            FloatVector c30 = FloatVector.zero(S);
            FloatVector c31 = FloatVector.zero(S);
            FloatVector c40 = FloatVector.zero(S);
            FloatVector c41 = FloatVector.zero(S);
            FloatVector c50 = FloatVector.zero(S);
            FloatVector c51 = FloatVector.zero(S);
            for (int k = 0, ak = 0; k < kDim; k++, ak += acs) {
                int t = bRows[k] + j;
                FloatVector b0 = FloatVector.fromArray(S, b, t);
                FloatVector b1 = FloatVector.fromArray(S, b, t + LANES);
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
                x = FloatVector.broadcast(S, a[a4 + ak]);
                c40 = x.fma(b0, c40);
                c41 = x.fma(b1, c41);
                x = FloatVector.broadcast(S, a[a5 + ak]);
                c50 = x.fma(b0, c50);
                c51 = x.fma(b1, c51);
            }
            int r = cRows[i];
            c00.intoArray(c, r + j);
            c01.intoArray(c, r + j + LANES);
            r = cRows[i + 1];
            c10.intoArray(c, r + j);
            c11.intoArray(c, r + j + LANES);
            r = cRows[i + 2];
            c20.intoArray(c, r + j);
            c21.intoArray(c, r + j + LANES);
            r = cRows[i + 3];
            c30.intoArray(c, r + j);
            c31.intoArray(c, r + j + LANES);
            r = cRows[i + 4];
            c40.intoArray(c, r + j);
            c41.intoArray(c, r + j + LANES);
            r = cRows[i + 5];
            c50.intoArray(c, r + j);
            c51.intoArray(c, r + j + LANES);
        }
    }

    /**
     * Dot products of two rows of A with rows of B, eight in registers at a time (2 × 4):
     * {@code s_rj = Σ_q a[a_r + q] · b[bRows[j] + q]} kept per lane, q &lt; n (a multiple of 8),
     * for j &lt; {@code count − count mod 4}, which it returns (the caller does the rest). With
     * {@code reduce}, {@code out[o_r + j] = Σ_lanes s_rj}; without, the lanes are added onto
     * {@code out[o_r + j·LANES …]}.
     */
    static int dots2(float[] a, int a0, int a1, float[] b, int[] bRows, int count, int n,
            float[] out, int o0, int o1, boolean reduce) {
        int j = 0;
        for (; j + 3 < count; j += 4) {
            int b0 = bRows[j];
            int b1 = bRows[j + 1];
            int b2 = bRows[j + 2];
            int b3 = bRows[j + 3];
            FloatVector s00 = FloatVector.zero(S);
            FloatVector s01 = FloatVector.zero(S);
            FloatVector s02 = FloatVector.zero(S);
            FloatVector s03 = FloatVector.zero(S);
            FloatVector s10 = FloatVector.zero(S);
            FloatVector s11 = FloatVector.zero(S);
            FloatVector s12 = FloatVector.zero(S);
            FloatVector s13 = FloatVector.zero(S);
            for (int q = 0; q < n; q += LANES) {
                FloatVector x0 = FloatVector.fromArray(S, a, a0 + q);
                FloatVector x1 = FloatVector.fromArray(S, a, a1 + q);
                FloatVector y = FloatVector.fromArray(S, b, b0 + q);
                s00 = x0.fma(y, s00);
                s10 = x1.fma(y, s10);
                y = FloatVector.fromArray(S, b, b1 + q);
                s01 = x0.fma(y, s01);
                s11 = x1.fma(y, s11);
                y = FloatVector.fromArray(S, b, b2 + q);
                s02 = x0.fma(y, s02);
                s12 = x1.fma(y, s12);
                y = FloatVector.fromArray(S, b, b3 + q);
                s03 = x0.fma(y, s03);
                s13 = x1.fma(y, s13);
            }
            if (reduce) {
                out[o0 + j] = s00.reduceLanes(VectorOperators.ADD);
                out[o0 + j + 1] = s01.reduceLanes(VectorOperators.ADD);
                out[o0 + j + 2] = s02.reduceLanes(VectorOperators.ADD);
                out[o0 + j + 3] = s03.reduceLanes(VectorOperators.ADD);
                out[o1 + j] = s10.reduceLanes(VectorOperators.ADD);
                out[o1 + j + 1] = s11.reduceLanes(VectorOperators.ADD);
                out[o1 + j + 2] = s12.reduceLanes(VectorOperators.ADD);
                out[o1 + j + 3] = s13.reduceLanes(VectorOperators.ADD);
            } else {
                int l0 = o0 + j * LANES;
                int l1 = o1 + j * LANES;
                accumulate(out, l0, s00);
                accumulate(out, l0 + LANES, s01);
                accumulate(out, l0 + 2 * LANES, s02);
                accumulate(out, l0 + 3 * LANES, s03);
                accumulate(out, l1, s10);
                accumulate(out, l1 + LANES, s11);
                accumulate(out, l1 + 2 * LANES, s12);
                accumulate(out, l1 + 3 * LANES, s13);
            }
        }
        return j;
    }

    /**
     * The last {@code r} (1 to 3) dot products of each of two rows of A that {@link #dots2} leaves
     * ({@code j0 = count − r}), accumulated per lane like {@link #dots2} without {@code reduce}:
     * {@code out[o_r + j·LANES + l] += Σ_q a[a_r + q] · b[bRows[j] + q]} for j0 ≤ j &lt; j0 + r.
     * Six chains at once instead of one dot product at a time, whose single chain waited on the
     * FMA latency at every step (LeNet's first layer: 3 taps × 6 channels of 112 steps per
     * image). Each lane's sum still runs over q in order from zero: the same bits. With r &lt; 3 the
     * missing rows repeat row j0 and are not stored.
     */
    static void dots2Tail(float[] a, int a0, int a1, float[] b, int[] bRows, int j0, int r, int n,
            float[] out, int o0, int o1) {
        int b0 = bRows[j0];
        int b1 = bRows[j0 + Math.min(1, r - 1)];
        int b2 = bRows[j0 + Math.min(2, r - 1)];
        FloatVector s00 = FloatVector.zero(S);
        FloatVector s01 = FloatVector.zero(S);
        FloatVector s02 = FloatVector.zero(S);
        FloatVector s10 = FloatVector.zero(S);
        FloatVector s11 = FloatVector.zero(S);
        FloatVector s12 = FloatVector.zero(S);
        for (int q = 0; q < n; q += LANES) {
            FloatVector x0 = FloatVector.fromArray(S, a, a0 + q);
            FloatVector x1 = FloatVector.fromArray(S, a, a1 + q);
            FloatVector y = FloatVector.fromArray(S, b, b0 + q);
            s00 = x0.fma(y, s00);
            s10 = x1.fma(y, s10);
            y = FloatVector.fromArray(S, b, b1 + q);
            s01 = x0.fma(y, s01);
            s11 = x1.fma(y, s11);
            y = FloatVector.fromArray(S, b, b2 + q);
            s02 = x0.fma(y, s02);
            s12 = x1.fma(y, s12);
        }
        int l0 = o0 + j0 * LANES;
        int l1 = o1 + j0 * LANES;
        accumulate(out, l0, s00);
        accumulate(out, l1, s10);
        if (r > 1) {
            accumulate(out, l0 + LANES, s01);
            accumulate(out, l1 + LANES, s11);
        }
        if (r > 2) {
            accumulate(out, l0 + 2 * LANES, s02);
            accumulate(out, l1 + 2 * LANES, s12);
        }
    }

    /**
     * {@code Σ_q a[aOff + q] · b[bOff + q]} kept per lane, q &lt; n (a multiple of 8), then the
     * lanes added ({@code reduceLanes}). The vector never leaves the method: the former
     * {@code dot} returned it, and when C2 did not inline that call the loop ran on boxed
     * vectors (about 1 KB a dot product; LeNet's MatMul 84→62 in most fresh JVMs).
     */
    static float dotSum(float[] a, int aOff, float[] b, int bOff, int n) {
        FloatVector s = FloatVector.zero(S);
        for (int q = 0; q < n; q += LANES) {
            s = FloatVector.fromArray(S, a, aOff + q).fma(FloatVector.fromArray(S, b, bOff + q), s);
        }
        return s.reduceLanes(VectorOperators.ADD);
    }

    /** {@code lanes[off + l] += Σ_{q ≡ l mod 8} a[aOff + q] · b[bOff + q]}, q &lt; n: {@link #dotSum} without the reduction. */
    static void dotAccumulate(float[] lanes, int off, float[] a, int aOff, float[] b, int bOff, int n) {
        FloatVector s = FloatVector.zero(S);
        for (int q = 0; q < n; q += LANES) {
            s = FloatVector.fromArray(S, a, aOff + q).fma(FloatVector.fromArray(S, b, bOff + q), s);
        }
        FloatVector.fromArray(S, lanes, off).add(s).intoArray(lanes, off);
    }

    /** {@code lanes[off …] += v}. */
    static void accumulate(float[] lanes, int off, FloatVector v) {
        FloatVector.fromArray(S, lanes, off).add(v).intoArray(lanes, off);
    }
}
