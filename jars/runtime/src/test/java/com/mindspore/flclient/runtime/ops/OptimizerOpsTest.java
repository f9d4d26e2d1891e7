package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.ModelFormatException;
import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.Value;
import org.junit.jupiter.api.Test;

import static com.mindspore.flclient.runtime.ops.OpHarness.kernel;
import static com.mindspore.flclient.runtime.ops.OpHarness.v;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The in-place optimizer ops against MindSpore's update formulas, step by step. */
class OptimizerOpsTest {
    @Test
    void applyMomentumAccumulatesThenSteps() {
        OpHarness h = new OpHarness(61);
        Value var = h.param(new float[] {1f, -2f}, 2);
        Value acc = h.param(new float[] {0.5f, 0f}, 2);
        Value grad = h.in(new float[] {0.1f, 0.2f}, 2);
        kernel("ApplyMomentum", v(var, acc, h.in(new float[] {0.1f}), grad, h.in(new float[] {0.9f})), new Value[0]).run();
        assertArrayEquals(new float[] {0.55f, 0.2f}, acc.floatData(), 1e-6f);
        assertArrayEquals(new float[] {1f - 0.055f, -2f - 0.02f}, var.floatData(), 1e-6f);
    }

    @Test
    void applyMomentumWithNesterovLooksAhead() {
        OpHarness h = new OpHarness(62);
        Value var = h.param(new float[] {1f}, 1);
        Value acc = h.param(new float[] {0.5f}, 1);
        kernel("ApplyMomentum", OpHarness.attrs().b("use_nesterov", true),
                v(var, acc, h.in(new float[] {0.1f}), h.in(new float[] {0.1f}, 1), h.in(new float[] {0.9f})), new Value[0]).run();
        assertEquals(0.55f, acc.floatData()[0], 1e-6f);
        assertEquals(1f - 0.1f * (0.1f + 0.9f * 0.55f), var.floatData()[0], 1e-6f);
    }

    @Test
    void applyMomentumRefusesToUpdateAConstant() {
        OpHarness h = new OpHarness(63);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> kernel("ApplyMomentum",
                v(h.in(new float[] {1f}, 1), h.param(new float[] {0f}, 1), h.in(new float[] {0.1f}), h.in(new float[] {1f}, 1),
                        h.in(new float[] {0.9f})), new Value[0]));
        assertEquals(true, e.getMessage().contains("must be a Parameter"), e.getMessage());
    }

    @Test
    void sgdUsesTheGradientOnItsFirstStepThenMomentumWithDampening() {
        OpHarness h = new OpHarness(64);
        Value var = h.param(new float[] {1f}, 1);
        Value acc = h.param(new float[] {0f}, 1);
        Value stat = h.param(new float[] {1f}, 1);
        Value grad = h.in(new float[] {0.5f}, 1);
        Kernel k = kernel("SGD", OpHarness.attrs().f("dampening", 0.1f).f("weight_decay", 0.2f),
                v(var, grad, h.in(new float[] {0.1f}), acc, h.in(new float[] {0.9f}), stat), new Value[0]);
        k.run();
        float g1 = 0.5f + 0.2f * 1f;
        assertEquals(g1, acc.floatData()[0], 1e-6f);
        assertEquals(0f, stat.floatData()[0]);
        float v1 = 1f - 0.1f * g1;
        assertEquals(v1, var.floatData()[0], 1e-6f);
        k.run();
        float g2 = 0.5f + 0.2f * v1;
        float a2 = 0.9f * g1 + 0.9f * g2;
        assertEquals(a2, acc.floatData()[0], 1e-6f);
        assertEquals(v1 - 0.1f * a2, var.floatData()[0], 1e-6f);
    }

    @Test
    void adamFollowsMindSporesUpdate() {
        OpHarness h = new OpHarness(65);
        Value var = h.param(new float[] {1f, 2f}, 2);
        Value m = h.param(new float[] {0f, 0.1f}, 2);
        Value vv = h.param(new float[] {0f, 0.01f}, 2);
        float[] g = {0.3f, -0.2f};
        float b1 = 0.9f;
        float b2 = 0.999f;
        float b1p = 0.9f;
        float b2p = 0.999f;
        kernel("Adam", v(var, m, vv, h.in(new float[] {b1p}), h.in(new float[] {b2p}), h.in(new float[] {0.01f}),
                h.in(new float[] {b1}), h.in(new float[] {b2}), h.in(new float[] {1e-8f}), h.in(g, 2)), new Value[0]).run();
        double lrT = 0.01 * Math.sqrt(1 - b2p) / (1 - b1p);
        double[] m0 = {0, 0.1};
        double[] v0 = {0, 0.01};
        double[] w0 = {1, 2};
        for (int i = 0; i < 2; i++) {
            double mi = m0[i] + (g[i] - m0[i]) * (1 - b1);
            double vi = v0[i] + (g[i] * g[i] - v0[i]) * (1 - b2);
            assertEquals(mi, m.floatData()[i], 1e-6);
            assertEquals(vi, vv.floatData()[i], 1e-6);
            assertEquals(w0[i] - lrT * mi / (Math.sqrt(vi) + 1e-8), var.floatData()[i], 1e-5);
        }
    }

    @Test
    void assignAddIncrementsAnIntegerStepCounter() {
        OpHarness h = new OpHarness(66);
        Value step = h.intParam(new int[] {41}, 1);
        Kernel k = kernel("AssignAdd", v(step, h.ints(new int[] {1}, 1)), new Value[0]);
        k.run();
        assertEquals(42, step.intData()[0]);
    }

    @Test
    void assignCopiesTheValueIntoTheParameter() {
        OpHarness h = new OpHarness(67);
        Value ref = h.param(new float[] {0f, 0f}, 2);
        kernel("Assign", v(ref, h.in(new float[] {3f, 4f}, 2)), new Value[0]).run();
        assertArrayEquals(new float[] {3f, 4f}, ref.floatData());
    }
}
