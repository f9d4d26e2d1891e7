package com.mindspore.flclient.runtime.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The gradient of a 2×2, stride-2, unpadded MaxPool on the JDK Vector API (only loaded when
 * {@link VectorSupport#enabled()}), optionally with the ReluGrad that follows it in a train graph.
 *
 * <p>It works in the pixel domain, one pair of input rows at a time: lane p holds x at column
 * j + p of the top row (a or b of its window) and of the bottom row (c or d), and the lanes of a
 * window's pair are swapped with one shuffle. Each lane then decides whether it is its window's
 * winner with exactly the scalar rule of {@code Pooling.MaxPoolGrad} (top = b if b &gt; a else a,
 * bottom likewise, bottom if max(c, d) &gt; max(a, b)), and takes dy of its window (dy expanded
 * ×2 by a shuffle) or +0: every pixel is written once, no zero fill, no scatter. {@link #reluMask}
 * then applies the ReluGrad that follows in a train graph to the plane while it is in L1 (the float
 * bits of relu's y as a signed int &gt; 0, as ReluGrad does).
 *
 * <p>The convolutions' 8 lanes ({@link VectorBlocks#S}): a 16-lane (AVX-512) copy of the loop
 * was as fast alone, but with 512- and 256-bit vectors in one JVM, C2 stopped inlining the
 * Vector API calls of the convolution kernels (NodeCountInliningCutoff) and boxed their vectors:
 * Conv2D 6→16 0.32 → 1.4 ms. C2 only keeps vectors in registers when every Vector API call
 * inlines, which is also why the ReluGrad mask is a pass of its own (inside the window loop, or
 * through an integer compare and a blend, or a mask cast, it boxed: 0.5 MB per call).
 */
public final class VectorPool {
    private static final VectorSpecies<Float> S = VectorBlocks.S;
    private static final int L = S.length();
    private static final VectorShuffle<Float> SWAP = VectorShuffle.fromOp(S, i -> i ^ 1);
    private static final VectorShuffle<Float> EXPAND = VectorShuffle.fromOp(S, i -> i >> 1);
    /** The even lanes twice: 0, 2, 4, 6, 0, 2, 4, 6 (with {@link #HIGH}: the two-vector rearrange boxed a shuffle). */
    private static final VectorShuffle<Float> EVENS = VectorShuffle.fromOp(S, i -> (2 * i) % L);
    private static final VectorMask<Float> HIGH = VectorMask.fromLong(S, (-1L << (L / 2)) & ((1L << L) - 1));
    private static final VectorMask<Float> EVEN = VectorMask.fromLong(S, 0x5555_5555_5555_5555L);
    private static final VectorMask<Float> ODD = EVEN.not();

    private VectorPool() {
    }

    /** The narrowest window row (2·wo columns) that {@link #rowPair} takes: one vector. */
    public static int minColumns() {
        return L;
    }

    /**
     * The window row at input rows {@code r0} and {@code r0 + w} (offsets into x and out) and dy
     * offset {@code d}: columns [0, 2·wo) of both rows. Requires {@code 2·wo ≥ minColumns()} and
     * {@code d + wo + minColumns() / 2 ≤ dy.length}. Chunks of one vector; the last one overlaps
     * the one before (at an even column) and writes the same values.
     */
    public static void rowPair(float[] x, float[] dy, float[] out, int r0, int w, int d, int wo) {
        int n = 2 * wo;
        int j = 0;
        for (; j + L <= n; j += L) {
            chunk(x, dy, out, r0 + j, w, d + (j >> 1));
        }
        if (j < n) {
            j = n - L;
            chunk(x, dy, out, r0 + j, w, d + (j >> 1));
        }
    }

    private static void chunk(float[] x, float[] dy, float[] out, int i, int w, int d) {
        FloatVector a = FloatVector.fromArray(S, x, i);
        FloatVector c = FloatVector.fromArray(S, x, i + w);
        FloatVector ap = a.rearrange(SWAP);
        FloatVector cp = c.rearrange(SWAP);
        // even lane (a): wins its pair unless b > a; odd lane (b): wins if b > a
        VectorMask<Float> topWin = ODD.and(a.compare(VectorOperators.GT, ap)).or(EVEN.andNot(ap.compare(VectorOperators.GT, a)));
        VectorMask<Float> botWin = ODD.and(c.compare(VectorOperators.GT, cp)).or(EVEN.andNot(cp.compare(VectorOperators.GT, c)));
        VectorMask<Float> bottom = c.max(cp).compare(VectorOperators.GT, a.max(ap));
        FloatVector g = FloatVector.fromArray(S, dy, d).rearrange(EXPAND);
        FloatVector zero = FloatVector.zero(S);
        zero.blend(g, topWin.andNot(bottom)).intoArray(out, i);
        zero.blend(g, botWin.and(bottom)).intoArray(out, i + w);
    }

    /** Whether {@link #maxRowPair} may run on this window row: its loads and stores lie inside the arrays. */
    public static boolean maxRowPairFits(int xLength, int yLength, int r0, int w, int yo, int wo) {
        return r0 + w + Math.max(2 * wo, 2 * L) <= xLength && yo + Math.max(wo, L) <= yLength;
    }

    /**
     * The forward: {@code y[yo + ow] = max(x[r0 + 2ow], x[r0 + 2ow + 1], x[r0 + w + 2ow], x[r0 + w + 2ow + 1])}
     * for ow &lt; wo, max as Math.max (maxima do not depend on the order; a NaN gives a NaN).
     * Chunks of two vectors → one vector of y, the last one overlapping the one before
     * ({@link #maxRowPairFits}). A row of fewer than 2·LANES columns (LeNet's second pooling: 10)
     * is one chunk whose extra lanes write garbage <em>ahead</em>, into the outputs of the rows the
     * caller computes next, in order.
     */
    public static void maxRowPair(float[] x, float[] y, int r0, int w, int yo, int wo) {
        int n = 2 * wo;
        if (n < 2 * L) {
            max(x, y, r0, w, yo);
            return;
        }
        int j = 0;
        for (; j + 2 * L <= n; j += 2 * L) {
            max(x, y, r0 + j, w, yo + (j >> 1));
        }
        if (j < n) {
            j = n - 2 * L;
            max(x, y, r0 + j, w, yo + (j >> 1));
        }
    }

    private static void max(float[] x, float[] y, int i, int w, int yo) {
        FloatVector v0 = FloatVector.fromArray(S, x, i).max(FloatVector.fromArray(S, x, i + w));
        FloatVector v1 = FloatVector.fromArray(S, x, i + L).max(FloatVector.fromArray(S, x, i + w + L));
        v0 = v0.max(v0.rearrange(SWAP));
        v1 = v1.max(v1.rearrange(SWAP));
        v0.rearrange(EVENS).blend(v1.rearrange(EVENS), HIGH).intoArray(y, yo);
    }

    /**
     * ReluGrad's mask applied in place: {@code out[i]}'s bits AND all ones iff {@code y[i]}'s bits as
     * a signed int are &gt; 0, for from ≤ i &lt; to; requires {@code to − from ≥ minColumns()}.
     */
    public static void reluMask(float[] y, float[] out, int from, int to) {
        int i = from;
        for (; i + L <= to; i += L) {
            mask(y, out, i);
        }
        if (i < to) {
            mask(y, out, to - L); // overlaps: masking twice is masking once
        }
    }

    private static void mask(float[] y, float[] out, int i) {
        IntVector b = FloatVector.fromArray(S, y, i).reinterpretAsInts();
        // (−b & ~b) >> 31: all ones iff b > 0 as a signed int
        IntVector m = b.neg().lanewise(VectorOperators.AND_NOT, b).lanewise(VectorOperators.ASHR, 31);
        FloatVector.fromArray(S, out, i).reinterpretAsInts().and(m).reinterpretAsFloats().intoArray(out, i);
    }
}
