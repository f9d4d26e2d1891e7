package com.mindspore.flclient.runtime.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Stride-1 convolution kernels on the JDK Vector API (only loaded when {@link VectorSupport#enabled()}).
 *
 * <p>All three work on the "wide" layout of {@link ConvGeometry#wideLength}: an input channel is
 * a zero-padded plane of width Wp, output pixel (oh, ow) is column {@code q = oh·Wp + ow}, and
 * kernel tap (c, i, j) reads the plane at {@code tap = c·plane + i·dh·Wp + j·dw} plus q. So the
 * convolution is a product whose "B matrix" rows are just offsets into the planes: no im2col, no
 * transposes. Column counts are rounded up to whole vectors ({@code lr}); planes carry slack so the
 * extra lanes read harmless data, and the extra columns are dropped or multiplied by zero.
 * Register blocks: 4 (then 2, 1) output channels × 16 columns (forward), 2 channels × 4 taps
 * of dot products (filter gradient), 4 taps × 16 columns (input
 * gradient).
 */
public final class VectorConv {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_256;
    public static final int LANES = S.length();

    private VectorConv() {
    }

    /** Columns rounded up to a multiple of 16 (two vectors). */
    public static int roundUp(int columns) {
        return (columns + 2 * LANES - 1) / (2 * LANES) * (2 * LANES);
    }

    /**
     * {@code out[o·lr + q] = Σ_k w[wOff + o·kg + k] · planes[taps[k] + q]} for o &lt; og, q &lt; lr.
     */
    public static void forward(float[] planes, int[] taps, float[] w, int wOff, int og, int kg, float[] out, int lr) {
        int o = 0;
        for (; o + 3 < og; o += 4) {
            int w0 = wOff + o * kg;
            int w1 = w0 + kg;
            int w2 = w1 + kg;
            int w3 = w2 + kg;
            for (int q = 0; q < lr; q += 2 * LANES) {
                FloatVector c00 = FloatVector.zero(S);
                FloatVector c01 = FloatVector.zero(S);
                FloatVector c10 = FloatVector.zero(S);
                FloatVector c11 = FloatVector.zero(S);
                FloatVector c20 = FloatVector.zero(S);
                FloatVector c21 = FloatVector.zero(S);
                FloatVector c30 = FloatVector.zero(S);
                FloatVector c31 = FloatVector.zero(S);
                for (int k = 0; k < kg; k++) {
                    int t = taps[k] + q;
                    FloatVector b0 = FloatVector.fromArray(S, planes, t);
                    FloatVector b1 = FloatVector.fromArray(S, planes, t + LANES);
                    FloatVector a = FloatVector.broadcast(S, w[w0 + k]);
                    c00 = a.fma(b0, c00);
                    c01 = a.fma(b1, c01);
                    a = FloatVector.broadcast(S, w[w1 + k]);
                    c10 = a.fma(b0, c10);
                    c11 = a.fma(b1, c11);
                    a = FloatVector.broadcast(S, w[w2 + k]);
                    c20 = a.fma(b0, c20);
                    c21 = a.fma(b1, c21);
                    a = FloatVector.broadcast(S, w[w3 + k]);
                    c30 = a.fma(b0, c30);
                    c31 = a.fma(b1, c31);
                }
                int r = o * lr + q;
                c00.intoArray(out, r);
                c01.intoArray(out, r + LANES);
                c10.intoArray(out, r + lr);
                c11.intoArray(out, r + lr + LANES);
                c20.intoArray(out, r + 2 * lr);
                c21.intoArray(out, r + 2 * lr + LANES);
                c30.intoArray(out, r + 3 * lr);
                c31.intoArray(out, r + 3 * lr + LANES);
            }
        }
        for (; o + 1 < og; o += 2) {
            int w0 = wOff + o * kg;
            int w1 = w0 + kg;
            for (int q = 0; q < lr; q += 2 * LANES) {
                FloatVector c00 = FloatVector.zero(S);
                FloatVector c01 = FloatVector.zero(S);
                FloatVector c10 = FloatVector.zero(S);
                FloatVector c11 = FloatVector.zero(S);
                for (int k = 0; k < kg; k++) {
                    int t = taps[k] + q;
                    FloatVector b0 = FloatVector.fromArray(S, planes, t);
                    FloatVector b1 = FloatVector.fromArray(S, planes, t + LANES);
                    FloatVector a = FloatVector.broadcast(S, w[w0 + k]);
                    c00 = a.fma(b0, c00);
                    c01 = a.fma(b1, c01);
                    a = FloatVector.broadcast(S, w[w1 + k]);
                    c10 = a.fma(b0, c10);
                    c11 = a.fma(b1, c11);
                }
                int r = o * lr + q;
                c00.intoArray(out, r);
                c01.intoArray(out, r + LANES);
                c10.intoArray(out, r + lr);
                c11.intoArray(out, r + lr + LANES);
            }
        }
        for (; o < og; o++) {
            int w0 = wOff + o * kg;
            for (int q = 0; q < lr; q += 2 * LANES) {
                FloatVector c0 = FloatVector.zero(S);
                FloatVector c1 = FloatVector.zero(S);
                for (int k = 0; k < kg; k++) {
                    int t = taps[k] + q;
                    FloatVector a = FloatVector.broadcast(S, w[w0 + k]);
                    c0 = a.fma(FloatVector.fromArray(S, planes, t), c0);
                    c1 = a.fma(FloatVector.fromArray(S, planes, t + LANES), c1);
                }
                c0.intoArray(out, o * lr + q);
                c1.intoArray(out, o * lr + q + LANES);
            }
        }
    }

    /**
     * One image's share of the filter gradient, as dot products of dy's rows with the planes at
     * each tap: {@code lanes[((oAcc + o)·kg + k)·LANES + l] += Σ_q dy[o·lr + q] · planes[taps[k] + q]}
     * restricted to lane l ({@code dy} is zero on dropped columns). Partial sums stay per lane
     * (one vector add per weight per image) and are reduced once per step by {@link #reduceLanes};
     * keeping vectors live across the image loop instead made C2 box them (10× slower).
     */
    public static void filterGrad(float[] dy, float[] planes, int[] taps, int og, int kg, int lr, float[] lanes, int oAcc) {
        int o = 0;
        for (; o + 1 < og; o += 2) {
            int d0 = o * lr;
            int d1 = d0 + lr;
            int k = 0;
            for (; k + 3 < kg; k += 4) {
                int t0 = taps[k];
                int t1 = taps[k + 1];
                int t2 = taps[k + 2];
                int t3 = taps[k + 3];
                FloatVector s00 = FloatVector.zero(S);
                FloatVector s01 = FloatVector.zero(S);
                FloatVector s02 = FloatVector.zero(S);
                FloatVector s03 = FloatVector.zero(S);
                FloatVector s10 = FloatVector.zero(S);
                FloatVector s11 = FloatVector.zero(S);
                FloatVector s12 = FloatVector.zero(S);
                FloatVector s13 = FloatVector.zero(S);
                for (int q = 0; q < lr; q += LANES) {
                    FloatVector g0 = FloatVector.fromArray(S, dy, d0 + q);
                    FloatVector g1 = FloatVector.fromArray(S, dy, d1 + q);
                    FloatVector x = FloatVector.fromArray(S, planes, t0 + q);
                    s00 = g0.fma(x, s00);
                    s10 = g1.fma(x, s10);
                    x = FloatVector.fromArray(S, planes, t1 + q);
                    s01 = g0.fma(x, s01);
                    s11 = g1.fma(x, s11);
                    x = FloatVector.fromArray(S, planes, t2 + q);
                    s02 = g0.fma(x, s02);
                    s12 = g1.fma(x, s12);
                    x = FloatVector.fromArray(S, planes, t3 + q);
                    s03 = g0.fma(x, s03);
                    s13 = g1.fma(x, s13);
                }
                int a0 = ((oAcc + o) * kg + k) * LANES;
                int a1 = a0 + kg * LANES;
                accumulate(lanes, a0, s00);
                accumulate(lanes, a0 + LANES, s01);
                accumulate(lanes, a0 + 2 * LANES, s02);
                accumulate(lanes, a0 + 3 * LANES, s03);
                accumulate(lanes, a1, s10);
                accumulate(lanes, a1 + LANES, s11);
                accumulate(lanes, a1 + 2 * LANES, s12);
                accumulate(lanes, a1 + 3 * LANES, s13);
            }
            for (; k < kg; k++) {
                accumulate(lanes, ((oAcc + o) * kg + k) * LANES, dot(dy, d0, planes, taps[k], lr));
                accumulate(lanes, ((oAcc + o + 1) * kg + k) * LANES, dot(dy, d1, planes, taps[k], lr));
            }
        }
        for (; o < og; o++) {
            for (int k = 0; k < kg; k++) {
                accumulate(lanes, ((oAcc + o) * kg + k) * LANES, dot(dy, o * lr, planes, taps[k], lr));
            }
        }
    }

    private static void accumulate(float[] lanes, int off, FloatVector v) {
        FloatVector.fromArray(S, lanes, off).add(v).intoArray(lanes, off);
    }

    private static FloatVector dot(float[] a, int aOff, float[] b, int bOff, int n) {
        FloatVector s = FloatVector.zero(S);
        for (int q = 0; q < n; q += LANES) {
            s = FloatVector.fromArray(S, a, aOff + q).fma(FloatVector.fromArray(S, b, bOff + q), s);
        }
        return s;
    }

    /** {@code out[i] = Σ_l lanes[i·LANES + l]} for i &lt; count. */
    public static void reduceLanes(float[] lanes, float[] out, int count) {
        for (int i = 0; i < count; i++) {
            out[i] = FloatVector.fromArray(S, lanes, i * LANES).reduceLanes(VectorOperators.ADD);
        }
    }

    /**
     * {@code dplanes[taps[k] + q] += Σ_o w[wOff + o·kg + k] · dy[o·lr + q]} for k &lt; kg, q &lt; lr:
     * the input gradient of one image scattered back onto its (padded) planes.
     */
    public static void inputGrad(float[] dy, float[] w, int wOff, int og, int kg, int lr, int[] taps, float[] dplanes) {
        int k = 0;
        for (; k + 3 < kg; k += 4) {
            int t0 = taps[k];
            int t1 = taps[k + 1];
            int t2 = taps[k + 2];
            int t3 = taps[k + 3];
            for (int q = 0; q < lr; q += 2 * LANES) {
                FloatVector s00 = FloatVector.zero(S);
                FloatVector s01 = FloatVector.zero(S);
                FloatVector s10 = FloatVector.zero(S);
                FloatVector s11 = FloatVector.zero(S);
                FloatVector s20 = FloatVector.zero(S);
                FloatVector s21 = FloatVector.zero(S);
                FloatVector s30 = FloatVector.zero(S);
                FloatVector s31 = FloatVector.zero(S);
                for (int o = 0; o < og; o++) {
                    FloatVector g0 = FloatVector.fromArray(S, dy, o * lr + q);
                    FloatVector g1 = FloatVector.fromArray(S, dy, o * lr + q + LANES);
                    int wk = wOff + o * kg + k;
                    FloatVector a = FloatVector.broadcast(S, w[wk]);
                    s00 = a.fma(g0, s00);
                    s01 = a.fma(g1, s01);
                    a = FloatVector.broadcast(S, w[wk + 1]);
                    s10 = a.fma(g0, s10);
                    s11 = a.fma(g1, s11);
                    a = FloatVector.broadcast(S, w[wk + 2]);
                    s20 = a.fma(g0, s20);
                    s21 = a.fma(g1, s21);
                    a = FloatVector.broadcast(S, w[wk + 3]);
                    s30 = a.fma(g0, s30);
                    s31 = a.fma(g1, s31);
                }
                addInto(dplanes, t0 + q, s00, s01);
                addInto(dplanes, t1 + q, s10, s11);
                addInto(dplanes, t2 + q, s20, s21);
                addInto(dplanes, t3 + q, s30, s31);
            }
        }
        for (; k < kg; k++) {
            int t = taps[k];
            for (int q = 0; q < lr; q += 2 * LANES) {
                FloatVector s0 = FloatVector.zero(S);
                FloatVector s1 = FloatVector.zero(S);
                for (int o = 0; o < og; o++) {
                    FloatVector a = FloatVector.broadcast(S, w[wOff + o * kg + k]);
                    s0 = a.fma(FloatVector.fromArray(S, dy, o * lr + q), s0);
                    s1 = a.fma(FloatVector.fromArray(S, dy, o * lr + q + LANES), s1);
                }
                addInto(dplanes, t + q, s0, s1);
            }
        }
    }

    private static void addInto(float[] a, int off, FloatVector v0, FloatVector v1) {
        FloatVector.fromArray(S, a, off).add(v0).intoArray(a, off);
        FloatVector.fromArray(S, a, off + LANES).add(v1).intoArray(a, off + LANES);
    }
}
