package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.Value;
import com.mindspore.flclient.runtime.kernels.VectorSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import static com.mindspore.flclient.runtime.ops.OpHarness.assertClose;
import static com.mindspore.flclient.runtime.ops.OpHarness.kernel;
import static com.mindspore.flclient.runtime.ops.OpHarness.v;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** MatMul in its four transpose forms, and the dense layer's backward as MindSpore writes it. */
class DenseOpsTest {
    @AfterEach
    void restoreKernelChoice() {
        System.clearProperty("flclient.runtime.vector");
    }

    /** Sizes with vector tails everywhere (n, k not multiples of 8 or 16; odd m), on both kernel paths. */
    @ParameterizedTest(name = "transpose_a={0} transpose_b={1} vector={2}")
    @CsvSource({"false,false,false", "false,true,false", "true,false,false", "true,true,false",
            "false,false,true", "false,true,true", "true,false,true", "true,true,true"})
    void matMulMatchesTheDefinitionForEveryTransposeFlag(boolean ta, boolean tb, boolean vector) {
        if (vector) {
            assumeTrue(VectorSupport.moduleAvailable(), "JVM started without --add-modules jdk.incubator.vector");
        }
        System.setProperty("flclient.runtime.vector", String.valueOf(vector));
        OpHarness h = new OpHarness(11);
        int m = 7;
        int k = 21;
        int n = 37;
        float[] a = h.rand(m * k);
        float[] b = h.rand(k * n);
        Value av = ta ? h.in(a, k, m) : h.in(a, m, k);
        Value bv = tb ? h.in(b, n, k) : h.in(b, k, n);
        Value y = h.out(m, n);
        kernel("MatMul", OpHarness.attrs().b("transpose_a", ta).b("transpose_b", tb), v(av, bv), y).run();
        double[] ref = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int q = 0; q < k; q++) {
                    double x = ta ? a[q * m + i] : a[i * k + q];
                    double z = tb ? b[j * k + q] : b[q * n + j];
                    s += x * z;
                }
                ref[i * n + j] = s;
            }
        }
        assertClose(ref, y.floatData(), 1e-5, "MatMul");
    }

    @Test
    void denseBackwardMatMulsAreTheGradientsOfTheForwardMatMul() {
        OpHarness h = new OpHarness(12);
        Value x = h.in(h.rand(6 * 10), 6, 10);
        Value w = h.in(h.rand(4 * 10), 4, 10);
        Value y = h.out(6, 4);
        Kernel fwd = kernel("MatMul", OpHarness.attrs().b("transpose_b", true), v(x, w), y);
        fwd.run();
        Value dy = h.in(h.rand(6 * 4), 6, 4);
        Value dx = h.out(6, 10);
        Value dw = h.out(4, 10);
        kernel("MatMul", v(dy, w), dx).run();
        kernel("MatMul", OpHarness.attrs().b("transpose_a", true), v(dy, x), dw).run();
        assertClose(OpHarness.numericGradient(fwd::run, x.floatData(), y.floatData(), dy.floatData(), 1e-2f),
                dx.floatData(), 1e-3, "dx");
        assertClose(OpHarness.numericGradient(fwd::run, w.floatData(), y.floatData(), dy.floatData(), 1e-2f),
                dw.floatData(), 1e-3, "dW");
    }

    @Test
    void biasAddAddsTheBiasOnAxisOneAndBiasAddGradIsItsGradient() {
        OpHarness h = new OpHarness(13);
        Value x = h.in(h.rand(2 * 3 * 4), 2, 3, 4);
        Value b = h.in(h.rand(3), 3);
        Value y = h.out(2, 3, 4);
        Kernel fwd = kernel("BiasAdd", v(x, b), y);
        fwd.run();
        double[] ref = new double[24];
        for (int i = 0; i < 24; i++) {
            ref[i] = x.floatData()[i] + b.floatData()[(i / 4) % 3];
        }
        assertClose(ref, y.floatData(), 1e-6, "BiasAdd");
        Value dy = h.in(h.rand(24), 2, 3, 4);
        Value db = h.out(3);
        kernel("BiasAddGrad", v(dy), db).run();
        assertClose(OpHarness.numericGradient(fwd::run, b.floatData(), y.floatData(), dy.floatData(), 1e-2f),
                db.floatData(), 1e-3, "BiasAddGrad");
    }
}
