package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.Value;
import com.mindspore.flclient.runtime.kernels.VectorSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;

import static com.mindspore.flclient.runtime.ops.OpHarness.kernel;
import static com.mindspore.flclient.runtime.ops.OpHarness.v;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The 2×2 MaxPool loop against Math.max(Math.max(a, b), Math.max(c, d)), and the 2×2 MaxPoolGrad loops (Vector API and plain, alone and with the ReluGrad they absorb) against
 * the loop they replaced, bit for bit: zero-fill dx, then dx[winner] = dy with the winner
 * top = b &gt; a ? b : a, bottom = d &gt; c ? d : c, bottom iff max(c, d) &gt; max(a, b) (Math.max),
 * followed by ReluGrad's dx bits AND (y's bits &gt; 0). Inputs are drawn from a few values so
 * windows tie, with ±0, NaNs of both signs and a denormal; shapes odd, narrow and LeNet's.
 * A NaN may come out with another payload: before C2 compiles it, the Vector API's Java fallback
 * of {@code rearrange} (which expands dy) canonicalises NaNs (0xffc00000 → 0x7fc00000).
 */
class TwoByTwoPoolTest {
    private static final float[] VALUES = {-1f, -0f, 0f, 0.5f, 1f, 1f, 2f, Float.MIN_VALUE,
        Float.intBitsToFloat(0x7fc00000), Float.intBitsToFloat(0xffc00000), 3f, 0.25f};

    private static float[] draw(OpHarness h, int n, boolean special) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = special ? VALUES[h.random.nextInt(VALUES.length)] : h.random.nextFloat() * 2 - 1;
        }
        return a;
    }

    private static int positive(float y) {
        int b = Float.floatToRawIntBits(y);
        return (-b >> 31) & ~(b >> 31);
    }

    /** The replaced loop: zero fill, the winner gets dy; then ReluGrad when relu != null. */
    static float[] reference(float[] x, float[] dy, float[] relu, int planes, int h, int w) {
        int ho = h / 2;
        int wo = w / 2;
        float[] dx = new float[x.length];
        int yi = 0;
        for (int pl = 0; pl < planes; pl++) {
            for (int oh = 0; oh < ho; oh++) {
                for (int ow = 0; ow < wo; ow++) {
                    int i = pl * h * w + 2 * oh * w + 2 * ow;
                    float a = x[i];
                    float b = x[i + 1];
                    float c = x[i + w];
                    float d = x[i + w + 1];
                    int top = b > a ? i + 1 : i;
                    int bottom = d > c ? i + w + 1 : i + w;
                    dx[Math.max(c, d) > Math.max(a, b) ? bottom : top] = dy[yi++];
                }
            }
        }
        if (relu != null) {
            for (int i = 0; i < dx.length; i++) {
                dx[i] = Float.intBitsToFloat(Float.floatToRawIntBits(dx[i]) & positive(relu[i]));
            }
        }
        return dx;
    }

    private static void assertBits(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        for (int i = 0; i < expected.length; i++) {
            int e = Float.floatToRawIntBits(expected[i]);
            int a = Float.floatToRawIntBits(actual[i]);
            if (e != a && !(Float.isNaN(expected[i]) && Float.isNaN(actual[i]))) {
                throw new AssertionError(what + ": element " + i + " is " + actual[i] + " (0x" + Integer.toHexString(a)
                        + "), the old loop gives " + expected[i] + " (0x" + Integer.toHexString(e) + ")");
            }
        }
    }

    private static <T> T withVector(boolean vector, java.util.function.Supplier<T> build) {
        String old = System.getProperty("flclient.runtime.vector");
        System.setProperty("flclient.runtime.vector", Boolean.toString(vector));
        try {
            return build.get();
        } finally {
            if (old == null) {
                System.clearProperty("flclient.runtime.vector");
            } else {
                System.setProperty("flclient.runtime.vector", old);
            }
        }
    }

    @ParameterizedTest(name = "{0}x{1}x{2}x{3} vector={4} special={5} separateRelu={6}")
    @CsvSource({
        "2,3,28,28,true,true,false", "2,3,28,28,false,true,false", "2,3,28,28,true,false,false",
        "3,2,10,10,true,true,false", "3,2,10,10,false,false,false",
        "1,2,7,9,true,true,false", "1,2,7,9,false,true,false", "2,1,5,16,true,true,true",
        "1,1,3,2,true,true,false", "1,3,4,30,true,true,true", "1,3,4,30,false,true,true",
        "2,2,9,17,true,false,true", "1,1,2,8,true,true,false"})
    void matchesTheReplacedLoopBitForBit(int n, int c, int hgt, int wid, boolean vector, boolean special, boolean separateRelu) {
        assertTrue(!vector || VectorSupport.moduleAvailable(), "run with --add-modules jdk.incubator.vector");
        OpHarness h = new OpHarness(27L * hgt + wid);
        int planes = n * c;
        int ho = hgt / 2;
        int wo = wid / 2;
        float[] xs = draw(h, planes * hgt * wid, special);
        float[] dys = draw(h, planes * ho * wo, special);
        // ReluGrad's y: the pool's own input (LeNet) or a tensor of its own
        float[] ys = separateRelu ? draw(h, xs.length, true) : xs;
        Value x = h.in(xs, n, c, hgt, wid);
        Value y = h.out(n, c, ho, wo);
        Value dy = h.in(dys, n, c, ho, wo);
        Value relu = separateRelu ? h.in(ys, n, c, hgt, wid) : x;
        Value pooled = h.out(n, c, hgt, wid);
        Value masked = h.out(n, c, hgt, wid);
        OpHarness.AttrsBuilder window = PoolOpsTest.window(2, 2, 0);
        Kernel[] alone = withVector(vector, () -> new Kernel[] {kernel("MaxPool", window, v(x), y),
            kernel("MaxPoolGrad", window, v(x, y, dy), pooled)});
        alone[0].run();
        Arrays.fill(pooled.floatData(), 7f); // every element must be written
        alone[1].run();
        assertBits(reference(xs, dys, null, planes, hgt, wid), pooled.floatData(), "MaxPoolGrad");

        Value pooled2 = h.out(n, c, hgt, wid);
        Kernel[] pair = withVector(vector, () -> new Kernel[] {kernel("MaxPoolGrad", window, v(x, y, dy), pooled2),
            kernel("ReluGrad", v(pooled2, relu), masked)});
        // the Vector API's 2×2 MaxPoolGrad absorbs the ReluGrad that reads it; plain Java runs both
        assertEquals(vector && 2 * wo >= com.mindspore.flclient.runtime.kernels.VectorPool.minColumns(),
                OpRegistry.fuse(pair[0], pair[1]), "fused");
        Arrays.fill(masked.floatData(), 7f);
        pair[0].run();
        pair[1].run();
        assertBits(reference(xs, dys, ys, planes, hgt, wid), masked.floatData(), "MaxPoolGrad + ReluGrad");
    }

    @ParameterizedTest(name = "{0}x{1} vector={2}")
    @CsvSource({"28,28,true", "28,28,false", "10,10,true", "9,17,true", "4,30,true", "6,32,true", "3,16,true"})
    void maxPoolMatchesTheMaxOfEachWindow(int hgt, int wid, boolean vector) {
        OpHarness h = new OpHarness(7L * hgt + wid);
        int ho = hgt / 2;
        int wo = wid / 2;
        Value x = h.in(new float[6 * hgt * wid], 2, 3, hgt, wid);
        Value y = h.out(2, 3, ho, wo);
        Kernel pool = withVector(vector, () -> kernel("MaxPool", PoolOpsTest.window(2, 2, 0), v(x), y));
        for (int run = 0; run < (vector ? 5000 : 3); run++) { // thousands: the compiled loop too
            float[] xs = draw(h, x.numel, run % 2 == 0);
            System.arraycopy(xs, 0, x.floatData(), 0, xs.length);
            Arrays.fill(y.floatData(), 7f);
            pool.run();
            if (run % 1000 == 0 || run == 4999 || !vector) {
                float[] expected = new float[y.numel];
                for (int pl = 0, o = 0; pl < 6; pl++) {
                    for (int oh = 0; oh < ho; oh++) {
                        for (int ow = 0; ow < wo; ow++) {
                            int i = pl * hgt * wid + 2 * oh * wid + 2 * ow;
                            expected[o++] = Math.max(Math.max(xs[i], xs[i + 1]), Math.max(xs[i + wid], xs[i + wid + 1]));
                        }
                    }
                }
                assertBits(expected, y.floatData(), "MaxPool run " + run);
            }
        }
    }

    /** The same after C2 has compiled the loops (thousands of runs on new random data each time). */
    @ParameterizedTest(name = "{0}x{1} compiled")
    @CsvSource({"28,28", "10,10", "9,17"})
    void compiledLoopsMatchTheReplacedLoop(int hgt, int wid) {
        OpHarness h = new OpHarness(99);
        int ho = hgt / 2;
        int wo = wid / 2;
        Value x = h.in(new float[2 * hgt * wid], 1, 2, hgt, wid);
        Value y = h.out(1, 2, ho, wo);
        Value dy = h.in(new float[2 * ho * wo], 1, 2, ho, wo);
        Value pooled = h.out(1, 2, hgt, wid);
        Value masked = h.out(1, 2, hgt, wid);
        Kernel[] pair = withVector(true, () -> new Kernel[] {
            kernel("MaxPoolGrad", PoolOpsTest.window(2, 2, 0), v(x, y, dy), pooled),
            kernel("ReluGrad", v(pooled, x), masked)});
        assertTrue(OpRegistry.fuse(pair[0], pair[1]));
        for (int run = 0; run < 20000; run++) {
            float[] xs = draw(h, x.numel, true);
            float[] dys = draw(h, dy.numel, true);
            System.arraycopy(xs, 0, x.floatData(), 0, xs.length);
            System.arraycopy(dys, 0, dy.floatData(), 0, dys.length);
            pair[0].run();
            pair[1].run();
            if (run % 1000 == 999) {
                assertBits(reference(xs, dys, xs, 2, hgt, wid), masked.floatData(), "run " + run);
            }
        }
    }

    @Test
    void onlyTheTwoByTwoWindowFuses() {
        OpHarness h = new OpHarness(5);
        Value x = h.in(h.rand(2 * 49), 1, 2, 7, 7);
        Value y = h.out(1, 2, 3, 3);
        Value dy = h.in(h.rand(18), 1, 2, 3, 3);
        Value dx = h.out(1, 2, 7, 7);
        Value out = h.out(1, 2, 7, 7);
        Kernel grad = kernel("MaxPoolGrad", PoolOpsTest.window(3, 2, 0), v(x, y, dy), dx);
        Kernel relu = kernel("ReluGrad", v(dx, x), out);
        assertFalse(OpRegistry.fuse(grad, relu));
        assertFalse(OpRegistry.fuse(relu, grad));
        // a ReluGrad that does not read the MaxPoolGrad's output
        Value dx2 = h.out(1, 2, 6, 6);
        Value x2 = h.in(h.rand(72), 1, 2, 6, 6);
        Kernel grad2 = kernel("MaxPoolGrad", PoolOpsTest.window(2, 2, 0), v(x2, y, dy), dx2);
        assertFalse(OpRegistry.fuse(grad2, kernel("ReluGrad", v(h.in(h.rand(72), 1, 2, 6, 6), x2), h.out(1, 2, 6, 6))));
    }
}
