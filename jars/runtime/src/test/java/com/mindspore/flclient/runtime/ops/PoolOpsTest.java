package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.Value;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static com.mindspore.flclient.runtime.ops.OpHarness.assertClose;
import static com.mindspore.flclient.runtime.ops.OpHarness.kernel;
import static com.mindspore.flclient.runtime.ops.OpHarness.v;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** MaxPool / AvgPool against direct window loops, their grads against finite differences. */
class PoolOpsTest {
    static OpHarness.AttrsBuilder window(int k, int s, int pad) {
        return OpHarness.attrs().ints("kernel", k, k).ints("stride", s, s).ints("pad", pad, pad, pad, pad);
    }

    static int out(int size, int k, int s, int pad) {
        return (size + 2 * pad - k) / s + 1;
    }

    static double[] reference(float[] x, int n, int c, int hw, int k, int s, int pad, boolean max) {
        int o = out(hw, k, s, pad);
        double[] y = new double[n * c * o * o];
        for (int p = 0; p < n * c; p++) {
            for (int oh = 0; oh < o; oh++) {
                for (int ow = 0; ow < o; ow++) {
                    double acc = max ? Double.NEGATIVE_INFINITY : 0;
                    int count = 0;
                    for (int i = 0; i < k; i++) {
                        for (int j = 0; j < k; j++) {
                            int ih = oh * s - pad + i;
                            int iw = ow * s - pad + j;
                            if (ih >= 0 && ih < hw && iw >= 0 && iw < hw) {
                                double v = x[(p * hw + ih) * hw + iw];
                                acc = max ? Math.max(acc, v) : acc + v;
                                count++;
                            }
                        }
                    }
                    y[(p * o + oh) * o + ow] = max ? acc : acc / count;
                }
            }
        }
        return y;
    }

    @ParameterizedTest(name = "{0} k{1} s{2} pad{3}")
    @CsvSource({"MaxPool,2,2,0", "MaxPool,3,2,1", "MaxPool,3,1,0", "AvgPool,2,2,0", "AvgPool,3,2,1", "AvgPool,3,1,1"})
    void poolingMatchesDirectWindowLoops(String op, int k, int s, int pad) {
        OpHarness h = new OpHarness(31);
        int o = out(7, k, s, pad);
        Value x = h.in(h.rand(2 * 3 * 49), 2, 3, 7, 7);
        Value y = h.out(2, 3, o, o);
        kernel(op, window(k, s, pad), v(x), y).run();
        assertClose(reference(x.floatData(), 2, 3, 7, k, s, pad, op.equals("MaxPool")), y.floatData(), 1e-6, op);
    }

    @ParameterizedTest(name = "{0} k{1} s{2} pad{3}")
    @CsvSource({"MaxPool,2,2,0", "MaxPool,3,2,1", "MaxPool,3,1,0", "AvgPool,2,2,0", "AvgPool,3,2,1", "AvgPool,3,1,1"})
    void poolingGradIsTheGradientOfPooling(String op, int k, int s, int pad) {
        OpHarness h = new OpHarness(32);
        int o = out(7, k, s, pad);
        Value x = h.in(h.rand(2 * 2 * 49), 2, 2, 7, 7);
        Value y = h.out(2, 2, o, o);
        Kernel fwd = kernel(op, window(k, s, pad), v(x), y);
        fwd.run();
        Value dy = h.in(h.rand(2 * 2 * o * o), 2, 2, o, o);
        Value dx = h.out(2, 2, 7, 7);
        kernel(op + "Grad", window(k, s, pad), v(x, y, dy), dx).run();
        // random floats have no ties, and eps is far below the gap between a window's two largest values
        assertClose(OpHarness.numericGradient(fwd::run, x.floatData(), y.floatData(), dy.floatData(), 1e-4f),
                dx.floatData(), 2e-2, op + "Grad");
    }

    @Test
    void maxPoolGradSendsATiedWindowsGradientToItsFirstMaximum() {
        OpHarness h = new OpHarness(33);
        Value x = h.in(new float[] {1, 1, 1, 1}, 1, 1, 2, 2);
        Value y = h.out(1, 1, 1, 1);
        kernel("MaxPool", window(2, 2, 0), v(x), y).run();
        Value dx = h.out(1, 1, 2, 2);
        kernel("MaxPoolGrad", window(2, 2, 0), v(x, y, h.in(new float[] {5}, 1, 1, 1, 1)), dx).run();
        assertArrayEquals(new float[] {5, 0, 0, 0}, dx.floatData());
    }
}
