package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.ModelFormatException;
import com.mindspore.flclient.runtime.graph.Value;
import com.mindspore.flclient.runtime.schema.OpTable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import static com.mindspore.flclient.runtime.ops.OpHarness.kernel;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * schema/ops.json (through the generated {@link OpTable}) is the op set the runtime implements:
 * the same names as {@link OpRegistry}, the number of inputs each kernel needs, and exactly the
 * inputs each in-place op updates.
 */
class OpTableTest {
    static List<String> ops() {
        return OpTable.NAMES;
    }

    static Set<String> inPlaceOps() {
        return OpTable.IN_PLACE.keySet();
    }

    @Test
    void registryImplementsExactlyTheOpsOfTheTable() {
        assertEquals(new TreeSet<>(OpTable.NAMES), OpRegistry.supportedOps());
    }

    @Test
    void aDifferenceFromTheTableIsRefusedNamingTheOpsOnEachSide() {
        Set<String> table = new TreeSet<>(OpTable.NAMES);
        table.remove("Conv2D");
        table.add("LayerNorm");
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> OpRegistry.requireSameOps(OpRegistry.supportedOps(), table));
        assertTrue(e.getMessage().contains("not registered [LayerNorm]"), e.getMessage());
        assertTrue(e.getMessage().contains("not in ops.json [Conv2D]"), e.getMessage());
    }

    @ParameterizedTest
    @MethodSource("ops")
    void everyOpNeedsTheInputsTheTableLists(String op) {
        int n = OpTable.INPUTS.get(op).size();
        OpHarness h = new OpHarness(7);
        Value[] tooFew = new Value[n - 1];
        for (int k = 0; k < tooFew.length; k++) {
            tooFew[k] = h.param(new float[] {0.5f}, 1);
        }
        ModelFormatException e = assertThrows(ModelFormatException.class,
                () -> kernel(op, tooFew, h.out(1)));
        assertTrue(e.getMessage().contains("has " + (n - 1) + " inputs, needs " + n), e.getMessage());
    }

    @ParameterizedTest
    @MethodSource("inPlaceOps")
    void anInPlaceOpRefusesAConstantExactlyWhereTheTableSaysItUpdates(String op) {
        List<Integer> updated = OpTable.IN_PLACE.get(op);
        int n = OpTable.INPUTS.get(op).size();
        for (int constant = 0; constant < n; constant++) {
            OpHarness h = new OpHarness(8);
            Value[] in = new Value[n];
            for (int k = 0; k < n; k++) {
                in[k] = k == constant ? h.in(new float[] {0.5f}, 1) : h.param(new float[] {0.5f}, 1);
            }
            String input = op + " input " + constant + " (" + OpTable.INPUTS.get(op).get(constant) + ")";
            if (updated.contains(constant)) {
                ModelFormatException e = assertThrows(ModelFormatException.class, () -> kernel(op, in), input);
                assertTrue(e.getMessage().contains("must be a Parameter"), input + ": " + e.getMessage());
            } else {
                assertDoesNotThrow(() -> kernel(op, in), input);
            }
        }
    }
}
