package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.Value;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.function.DoubleUnaryOperator;

import static com.mindspore.flclient.runtime.ops.OpHarness.assertClose;
import static com.mindspore.flclient.runtime.ops.OpHarness.kernel;
import static com.mindspore.flclient.runtime.ops.OpHarness.v;

/** ReLU, Sigmoid, Tanh against their definitions; their Grad ops against finite differences. */
class ActivationOpsTest {
    static DoubleUnaryOperator definition(String op) {
        switch (op) {
            case "ReLU":
                return x -> Math.max(x, 0);
            case "Sigmoid":
                return x -> 1 / (1 + Math.exp(-x));
            default:
                return Math::tanh;
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"ReLU", "Sigmoid", "Tanh"})
    void activationMatchesItsDefinition(String op) {
        OpHarness h = new OpHarness(21);
        Value x = h.in(h.rand(30).clone(), 5, 6);
        Value y = h.out(5, 6);
        kernel(op, v(x), y).run();
        double[] ref = new double[30];
        for (int i = 0; i < 30; i++) {
            ref[i] = definition(op).applyAsDouble(x.floatData()[i]);
        }
        assertClose(ref, y.floatData(), 1e-6, op);
    }

    /** MindSpore's input order: ReluGrad (dy, y); SigmoidGrad and TanhGrad (y, dy). */
    @ParameterizedTest(name = "{1}")
    @CsvSource({"ReLU,ReluGrad,true", "Sigmoid,SigmoidGrad,false", "Tanh,TanhGrad,false"})
    void gradientOpIsTheGradientOfTheActivation(String op, String grad, boolean dyFirst) {
        OpHarness h = new OpHarness(22);
        Value x = h.in(h.randAwayFromZero(40, 0.05f), 4, 10);
        Value y = h.out(4, 10);
        Kernel fwd = kernel(op, v(x), y);
        fwd.run();
        Value dy = h.in(h.rand(40), 4, 10);
        Value dx = h.out(4, 10);
        kernel(grad, dyFirst ? v(dy, y) : v(y, dy), dx).run();
        assertClose(OpHarness.numericGradient(fwd::run, x.floatData(), y.floatData(), dy.floatData(), 1e-2f),
                dx.floatData(), 2e-3, grad);
    }
}
