package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.ModelFormatException;
import com.mindspore.flclient.runtime.graph.Value;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.function.DoubleBinaryOperator;

import static com.mindspore.flclient.runtime.ops.OpHarness.assertClose;
import static com.mindspore.flclient.runtime.ops.OpHarness.kernel;
import static com.mindspore.flclient.runtime.ops.OpHarness.v;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Elementwise arithmetic with trailing broadcast, unary math, and the data-sharing reshapes. */
class ElementwiseOpsTest {
    static DoubleBinaryOperator definition(String op) {
        switch (op) {
            case "Add":
                return (a, b) -> a + b;
            case "Sub":
                return (a, b) -> a - b;
            case "Mul":
                return (a, b) -> a * b;
            default:
                return (a, b) -> a / b;
        }
    }

    @ParameterizedTest(name = "{0} b={1}")
    @CsvSource({"Add,full", "Sub,row", "Mul,scalar", "RealDiv,row", "Sub,scalarFirst"})
    void binaryOpBroadcastsAlongTrailingAxes(String op, String form) {
        OpHarness h = new OpHarness(51);
        float[] a = h.randAwayFromZero(12, 0.5f);
        float[] b = form.equals("full") ? h.randAwayFromZero(12, 0.5f) : form.equals("row") ? h.randAwayFromZero(4, 0.5f)
                : h.randAwayFromZero(1, 0.5f);
        Value av = h.in(a, 3, 4);
        Value bv = form.equals("full") ? h.in(b, 3, 4) : form.equals("row") ? h.in(b, 4) : h.in(b);
        Value y = h.out(3, 4);
        boolean swapped = form.equals("scalarFirst");
        kernel(op, swapped ? v(bv, av) : v(av, bv), y).run();
        double[] ref = new double[12];
        for (int i = 0; i < 12; i++) {
            double u = a[i];
            double w = b[i % b.length];
            ref[i] = swapped ? definition(op).applyAsDouble(w, u) : definition(op).applyAsDouble(u, w);
        }
        assertClose(ref, y.floatData(), 1e-6, op);
    }

    @Test
    void binaryOpRefusesShapesThatDoNotBroadcast() {
        OpHarness h = new OpHarness(52);
        assertThrows(ModelFormatException.class, () -> kernel("Add", v(h.in(h.rand(12), 3, 4), h.in(h.rand(3), 3)), h.out(3, 4)));
    }

    @Test
    void unaryMathMatchesItsDefinition() {
        OpHarness h = new OpHarness(53);
        float[] x = {0.25f, 4f, 9f};
        Value xv = h.in(x, 3);
        Value sqrt = h.out(3);
        Value square = h.out(3);
        Value neg = h.out(3);
        kernel("Sqrt", v(xv), sqrt).run();
        kernel("Square", v(xv), square).run();
        kernel("Neg", v(xv), neg).run();
        assertArrayEquals(new float[] {0.5f, 2f, 3f}, sqrt.floatData());
        assertArrayEquals(new float[] {0.0625f, 16f, 81f}, square.floatData());
        assertArrayEquals(new float[] {-0.25f, -4f, -9f}, neg.floatData());
    }

    @Test
    void flattenAndReshapeShareTheirInputsData() {
        OpHarness h = new OpHarness(54);
        Value x = h.in(h.rand(2 * 3 * 4), 2, 3, 4);
        Value flat = h.out(2, 12);
        Value back = h.out(2, 3, 4);
        kernel("Flatten", v(x), flat).run();
        kernel("Reshape", OpHarness.attrs().ints("shape", 2, -1, 4), v(flat), back).run();
        assertSame(x.floatData(), flat.floatData());
        assertSame(x.floatData(), back.floatData());
    }

    @Test
    void reshapeRefusesAShapeAttributeThatDisagreesWithItsOutput() {
        OpHarness h = new OpHarness(55);
        assertThrows(ModelFormatException.class, () -> kernel("Reshape", OpHarness.attrs().ints("shape", 4, 6),
                v(h.in(h.rand(24), 2, 12)), h.out(2, 12)));
    }
}
