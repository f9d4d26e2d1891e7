package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.ModelFormatException;
import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.Value;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import com.mindspore.flclient.runtime.kernels.VectorSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.stream.Stream;

import static com.mindspore.flclient.runtime.ops.OpHarness.assertClose;
import static com.mindspore.flclient.runtime.ops.OpHarness.kernel;
import static com.mindspore.flclient.runtime.ops.OpHarness.numel;
import static com.mindspore.flclient.runtime.ops.OpHarness.v;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Conv2D against a direct double-precision convolution, and its two backprop ops against finite
 * differences of Conv2D itself, over strides, paddings, dilations and groups (and a batch large
 * enough that the kernel processes images in several blocks), on both kernel paths.
 */
class ConvOpsTest {
    /** n, c, h, w, o, kh, kw, stride, dilation, pad(t,b,l,r), group. */
    record Case(int n, int c, int h, int w, int o, int kh, int kw, int[] stride, int[] dil, int[] pad, int group) {
        int ho() {
            return (h + pad[0] + pad[1] - dil[0] * (kh - 1) - 1) / stride[0] + 1;
        }

        int wo() {
            return (w + pad[2] + pad[3] - dil[1] * (kw - 1) - 1) / stride[1] + 1;
        }

        int[] x() {
            return new int[] {n, c, h, w};
        }

        int[] wShape() {
            return new int[] {o, c / group, kh, kw};
        }

        int[] y() {
            return new int[] {n, o, ho(), wo()};
        }

        OpHarness.AttrsBuilder attrs() {
            return OpHarness.attrs().conv(stride, dil, pad, group);
        }

        @Override
        public String toString() {
            return "n" + n + " c" + c + " " + h + "x" + w + " o" + o + " k" + kh + "x" + kw + " s" + stride[0] + stride[1]
                    + " d" + dil[0] + dil[1] + " p" + java.util.Arrays.toString(pad) + " g" + group;
        }
    }

    /** Every case on both kernel paths: plain Java, and the Vector API when the JVM has the module. */
    static Stream<Arguments> cases() {
        return shapes().flatMap(c -> Stream.of(Arguments.of(c, false), Arguments.of(c, true)));
    }

    static Stream<Case> shapes() {
        return Stream.of(
                new Case(2, 3, 7, 7, 4, 3, 3, new int[] {1, 1}, new int[] {1, 1}, new int[] {0, 0, 0, 0}, 1),
                new Case(2, 2, 8, 7, 3, 3, 2, new int[] {2, 1}, new int[] {1, 1}, new int[] {1, 0, 1, 2}, 1),
                new Case(1, 2, 9, 9, 2, 3, 3, new int[] {1, 2}, new int[] {2, 1}, new int[] {1, 1, 1, 1}, 1),
                new Case(2, 4, 6, 6, 4, 3, 3, new int[] {1, 1}, new int[] {1, 1}, new int[] {1, 1, 1, 1}, 2),
                new Case(2, 3, 8, 9, 5, 3, 2, new int[] {1, 1}, new int[] {2, 1}, new int[] {2, 1, 0, 1}, 1),
                new Case(9, 1, 5, 5, 2, 2, 2, new int[] {1, 1}, new int[] {1, 1}, new int[] {0, 0, 0, 0}, 1),
                new Case(3, 2, 6, 6, 10, 3, 3, new int[] {1, 1}, new int[] {1, 1}, new int[] {1, 1, 1, 1}, 1));
    }

    @AfterEach
    void restoreKernelChoice() {
        System.clearProperty("flclient.runtime.vector");
    }

    private static void usePath(boolean vector) {
        if (vector) {
            assumeTrue(VectorSupport.moduleAvailable(), "JVM started without --add-modules jdk.incubator.vector");
        }
        System.setProperty("flclient.runtime.vector", String.valueOf(vector));
    }

    static double[] reference(Case k, float[] x, float[] w) {
        int ho = k.ho();
        int wo = k.wo();
        int cg = k.c / k.group;
        int og = k.o / k.group;
        double[] y = new double[numel(k.y())];
        for (int n = 0; n < k.n; n++) {
            for (int o = 0; o < k.o; o++) {
                int g = o / og;
                for (int oh = 0; oh < ho; oh++) {
                    for (int ow = 0; ow < wo; ow++) {
                        double s = 0;
                        for (int ci = 0; ci < cg; ci++) {
                            int c = g * cg + ci;
                            for (int i = 0; i < k.kh; i++) {
                                for (int j = 0; j < k.kw; j++) {
                                    int ih = oh * k.stride[0] - k.pad[0] + i * k.dil[0];
                                    int iw = ow * k.stride[1] - k.pad[2] + j * k.dil[1];
                                    if (ih >= 0 && ih < k.h && iw >= 0 && iw < k.w) {
                                        s += (double) x[((n * k.c + c) * k.h + ih) * k.w + iw]
                                                * w[((o * cg + ci) * k.kh + i) * k.kw + j];
                                    }
                                }
                            }
                        }
                        y[((n * k.o + o) * ho + oh) * wo + ow] = s;
                    }
                }
            }
        }
        return y;
    }

    @ParameterizedTest(name = "{0} vector={1}")
    @MethodSource("cases")
    void conv2dMatchesDirectConvolution(Case k, boolean vector) {
        usePath(vector);
        OpHarness h = new OpHarness(1);
        float[] x = h.rand(numel(k.x()));
        float[] w = h.rand(numel(k.wShape()));
        Value y = h.out(k.y());
        kernel("Conv2D", k.attrs(), v(h.in(x, k.x()), h.in(w, k.wShape())), y).run();
        assertClose(reference(k, x, w), y.floatData(), 1e-5, "Conv2D " + k);
    }

    @ParameterizedTest(name = "{0} vector={1}")
    @MethodSource("cases")
    void conv2dBackpropInputIsTheGradientOfConv2dInItsInput(Case k, boolean vector) {
        usePath(vector);
        OpHarness h = new OpHarness(2);
        Value x = h.in(h.rand(numel(k.x())), k.x());
        Value w = h.in(h.rand(numel(k.wShape())), k.wShape());
        Value y = h.out(k.y());
        Kernel fwd = kernel("Conv2D", k.attrs(), v(x, w), y);
        Value dy = h.in(h.rand(numel(k.y())), k.y());
        Value dx = h.out(k.x());
        long[] inShape = {k.n, k.c, k.h, k.w};
        kernel("Conv2DBackpropInput", k.attrs().ints("input_shape", inShape), v(dy, w), dx).run();
        double[] num = OpHarness.numericGradient(fwd::run, x.floatData(), y.floatData(), dy.floatData(), 1e-2f);
        assertClose(num, dx.floatData(), 2e-3, "Conv2DBackpropInput " + k);
    }

    @ParameterizedTest(name = "{0} vector={1}")
    @MethodSource("cases")
    void conv2dBackpropFilterIsTheGradientOfConv2dInItsFilter(Case k, boolean vector) {
        usePath(vector);
        OpHarness h = new OpHarness(3);
        Value x = h.in(h.rand(numel(k.x())), k.x());
        Value w = h.in(h.rand(numel(k.wShape())), k.wShape());
        Value y = h.out(k.y());
        Kernel fwd = kernel("Conv2D", k.attrs(), v(x, w), y);
        Value dy = h.in(h.rand(numel(k.y())), k.y());
        Value dw = h.out(k.wShape());
        int[] ws = k.wShape();
        kernel("Conv2DBackpropFilter", k.attrs().ints("filter_shape", ws[0], ws[1], ws[2], ws[3]), v(dy, x), dw).run();
        double[] num = OpHarness.numericGradient(fwd::run, w.floatData(), y.floatData(), dy.floatData(), 1e-2f);
        assertClose(num, dw.floatData(), 2e-3, "Conv2DBackpropFilter " + k);
    }

    @Test
    void conv2dRefusesAnOutputShapeThatDoesNotMatchItsAttributes() {
        OpHarness h = new OpHarness(4);
        Case k = shapes().findFirst().orElseThrow();
        Value wrong = h.out(k.n, k.o, k.ho() + 1, k.wo());
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> kernel("Conv2D", k.attrs(),
                v(h.in(h.rand(numel(k.x())), k.x()), h.in(h.rand(numel(k.wShape())), k.wShape())), wrong));
        assertTrue(e.getMessage().contains("should have shape"), e.getMessage());
    }

    @Test
    void conv2dRefusesAMissingStrideAttribute() {
        OpHarness h = new OpHarness(5);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> kernel("Conv2D",
                OpHarness.attrs().ints("dilation", 1, 1).ints("pad", 0, 0, 0, 0).i("group", 1),
                v(h.in(h.rand(2 * 3 * 5 * 5), 2, 3, 5, 5), h.in(h.rand(4 * 3 * 9), 4, 3, 3, 3)), h.out(2, 4, 3, 3)));
        assertTrue(e.getMessage().contains("lacks attribute 'stride'"), e.getMessage());
    }
}
