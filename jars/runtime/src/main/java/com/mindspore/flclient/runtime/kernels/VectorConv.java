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
 * Register blocks: 6 (then 4, 2, 1) output channels × 16 columns (forward) and 2 channels × 4 taps
 * of dot products (filter gradient), both the loops of {@link VectorBlocks} that {@link VectorGemm}
 * uses too; 4 taps × 16 columns (input gradient, its own loop: see {@link #inputGrad}).
 */
public final class VectorConv {
    private static final VectorSpecies<Float> S = VectorBlocks.S;
    public static final int LANES = VectorBlocks.LANES;

    private VectorConv() {
    }

    /** Columns rounded up to a multiple of 16 (two vectors). */
    public static int roundUp(int columns) {
        return (columns + 2 * LANES - 1) / (2 * LANES) * (2 * LANES);
    }

    /**
     * {@code out[outRows[o] + q] = Σ_k w[wOff + o·kg + k] · planes[taps[k] + q]} for o &lt; og,
     * q &lt; lr ({@code outRows[o]} is normally {@code o·lr}, see {@link Gemm#rowStarts}).
     */
    public static void forward(float[] planes, int[] taps, float[] w, int wOff, int og, int kg, float[] out, int[] outRows, int lr) {
        VectorBlocks.broadcastRows(og, lr, kg, w, wOff, kg, 1, planes, taps, out, outRows);
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
            int o0 = (oAcc + o) * kg * LANES;
            int k = VectorBlocks.dots2(dy, d0, d1, planes, taps, kg, lr, lanes, o0, o0 + kg * LANES, false);
            if (k < kg) {
                VectorBlocks.dots2Tail(dy, d0, d1, planes, taps, k, kg - k, lr, lanes, o0, o0 + kg * LANES);
            }
        }
        for (; o < og; o++) {
            for (int k = 0; k < kg; k++) {
                VectorBlocks.dotAccumulate(lanes, ((oAcc + o) * kg + k) * LANES, dy, o * lr, planes, taps[k], lr);
            }
        }
    }

    /** {@code out[i] = Σ_l lanes[i·LANES + l]} for i &lt; count. */
    public static void reduceLanes(float[] lanes, float[] out, int count) {
        for (int i = 0; i < count; i++) {
            out[i] = FloatVector.fromArray(S, lanes, i * LANES).reduceLanes(VectorOperators.ADD);
        }
    }

    /**
     * {@code dplanes[taps[k] + q] += Σ_o w[wOff + o·kg + k] · dy[o·lr + q]} for k &lt; kg, q &lt; lr:
     * the input gradient of one image scattered back onto its (padded) planes. The same register
     * block as {@link VectorBlocks#broadcastRows} with A transposed, but it adds into scattered rows
     * and its k loop is the few output channels: run through the shared loop (an add mode, row
     * arrays for dy) it measured 10–15 % slower in LeNet's graph and slowed the forward with it,
     * so it keeps its own loop.
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
