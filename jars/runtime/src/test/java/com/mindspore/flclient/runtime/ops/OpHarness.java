package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.Attrs;
import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;
import com.mindspore.flclient.runtime.schema.AttrKind;
import com.mindspore.flclient.runtime.schema.DataType;
import com.mindspore.flclient.runtime.schema.Phase;
import com.mindspore.flclient.runtime.schema.TensorRole;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Builds single op kernels on hand-made tensors and checks gradients by central finite
 * differences: for a forward kernel {@code y = f(x)} and a random {@code dy}, the gradient op must
 * return {@code ∂(Σ dy·f(x))/∂x}, estimated by perturbing each element of {@code x} in place
 * (kernels read their input arrays at every run) and summing in double.
 */
final class OpHarness {
    private int next;
    final Random random;

    OpHarness(long seed) {
        random = new Random(seed);
    }

    float[] rand(int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = random.nextFloat() * 2 - 1;
        }
        return v;
    }

    /** Random values kept away from 0 by at least {@code gap} (so kinks like ReLU's are not straddled). */
    float[] randAwayFromZero(int n, float gap) {
        float[] v = rand(n);
        for (int i = 0; i < n; i++) {
            v[i] = Math.copySign(gap + Math.abs(v[i]), v[i]);
        }
        return v;
    }

    static int numel(int... shape) {
        int n = 1;
        for (int d : shape) {
            n *= d;
        }
        return n;
    }

    Value in(float[] data, int... shape) {
        Value v = new Value(next++, "in" + next, shape, DataType.Float32, TensorRole.Constant, false);
        v.allocate();
        System.arraycopy(data, 0, v.floatData(), 0, data.length);
        assertEquals(v.numel, data.length, "test data size");
        return v;
    }

    Value ints(int[] data, int... shape) {
        Value v = new Value(next++, "int" + next, shape, DataType.Int32, TensorRole.Constant, false);
        v.allocate();
        System.arraycopy(data, 0, v.intData(), 0, data.length);
        return v;
    }

    Value param(float[] data, int... shape) {
        Value v = new Value(next++, "param" + next, shape, DataType.Float32, TensorRole.Parameter, false);
        v.allocate();
        System.arraycopy(data, 0, v.floatData(), 0, data.length);
        return v;
    }

    Value intParam(int[] data, int... shape) {
        Value v = new Value(next++, "iparam" + next, shape, DataType.Int32, TensorRole.Parameter, false);
        v.allocate();
        System.arraycopy(data, 0, v.intData(), 0, data.length);
        return v;
    }

    Value out(int... shape) {
        return new Value(next++, "out" + next, shape, DataType.Float32, TensorRole.Activation, false);
    }

    static AttrsBuilder attrs() {
        return new AttrsBuilder();
    }

    /** Fluent attributes for a test node. */
    static final class AttrsBuilder {
        final Attrs attrs = new Attrs("test");

        AttrsBuilder ints(String name, long... v) {
            attrs.put(name, new Attrs.Attr(AttrKind.Ints, 0, 0f, null, v, new float[0], false));
            return this;
        }

        AttrsBuilder i(String name, long v) {
            attrs.put(name, new Attrs.Attr(AttrKind.Int, v, 0f, null, new long[0], new float[0], false));
            return this;
        }

        AttrsBuilder f(String name, float v) {
            attrs.put(name, new Attrs.Attr(AttrKind.Float, 0, v, null, new long[0], new float[0], false));
            return this;
        }

        AttrsBuilder b(String name, boolean v) {
            attrs.put(name, new Attrs.Attr(AttrKind.Bool, 0, 0f, null, new long[0], new float[0], v));
            return this;
        }

        AttrsBuilder conv(int[] stride, int[] dilation, int[] pad, int group) {
            return ints("stride", stride[0], stride[1]).ints("dilation", dilation[0], dilation[1])
                    .ints("pad", pad[0], pad[1], pad[2], pad[3]).i("group", group);
        }
    }

    static Kernel kernel(String op, AttrsBuilder a, Value[] ins, Value... outs) {
        return OpRegistry.build(new NodeSpec("test-" + op, op, Phase.Forward, ins, outs, a.attrs));
    }

    static Kernel kernel(String op, Value[] ins, Value... outs) {
        return kernel(op, attrs(), ins, outs);
    }

    static Value[] v(Value... vs) {
        return vs;
    }

    /** ∂(Σ dy·y)/∂x by central differences, where {@code forward} recomputes y from x's array. */
    static double[] numericGradient(Runnable forward, float[] x, float[] y, float[] dy, float eps) {
        double[] g = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            float keep = x[i];
            x[i] = keep + eps;
            forward.run();
            double plus = dot(y, dy);
            x[i] = keep - eps;
            forward.run();
            double minus = dot(y, dy);
            x[i] = keep;
            g[i] = (plus - minus) / (2.0 * eps);
        }
        forward.run();
        return g;
    }

    static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (double) a[i] * b[i];
        }
        return s;
    }

    /** Every element within {@code tol·max(1, |expected|max)} of the reference. */
    static void assertClose(double[] expected, float[] actual, double tol, String what) {
        assertEquals(expected.length, actual.length, what + " length");
        double scale = 1;
        for (double e : expected) {
            scale = Math.max(scale, Math.abs(e));
        }
        double worst = 0;
        int at = -1;
        for (int i = 0; i < expected.length; i++) {
            double d = Math.abs(expected[i] - actual[i]);
            if (d > worst) {
                worst = d;
                at = i;
            }
        }
        final int where = at;
        final double w = worst;
        assertTrue(worst <= tol * scale, () -> what + ": max difference " + w + " at " + where + " (expected "
                + expected[where] + ", got " + actual[where] + ", allowed " + tol + " × " + "scale)");
    }

    static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }
}
