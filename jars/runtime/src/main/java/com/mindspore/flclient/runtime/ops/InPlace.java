package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;
import com.mindspore.flclient.runtime.schema.TensorRole;

/** Checks shared by the ops that update Parameter tensors in place (optimizers, Assign, AssignAdd). */
final class InPlace {
    private InPlace() {
    }

    /** The tensor at {@code k} must be a Parameter: only those are state that survives a step and is saved. */
    static Value parameter(NodeSpec s, int k, String what) {
        Value v = s.input(k);
        if (v.role != TensorRole.Parameter) {
            throw s.fail(what + " " + v.describe() + " is updated in place and must be a Parameter, not "
                    + TensorRole.name(v.role));
        }
        return v;
    }

    /** A scalar operand (lr, momentum, beta…): one float. */
    static float[] scalar(NodeSpec s, int k, String what) {
        Value v = s.input(k);
        if (v.numel != 1) {
            throw s.fail(what + " " + v.describe() + " must be a single value");
        }
        return v.floats(s.name);
    }

    static void sameShape(NodeSpec s, Value ref, int k, String what) {
        s.requireShape(s.input(k), ref.shape, what);
    }

    /** Optimizer state beside {@code ref} (accum, m, v, stat): a Parameter of ref's shape. */
    static void stateLike(NodeSpec s, Value ref, int k, String what) {
        parameter(s, k, what);
        sameShape(s, ref, k, what);
    }

    /**
     * The arrays of an in-place update {@code ref ← f(ref, value)} (inputs 0 and 1) that works on
     * float or int32 tensors: both of one type, the other pair null.
     */
    static final class RefAndValue {
        final float[] rf;
        final float[] vf;
        final int[] ri;
        final int[] vi;

        RefAndValue(NodeSpec s, Value ref, Value val) {
            if (val.isFloat() != ref.isFloat()) {
                throw s.fail("value " + val.describe() + " and ref " + ref.describe() + " differ in type");
            }
            rf = ref.isFloat() ? s.floatIn(0) : null;
            vf = ref.isFloat() ? s.floatIn(1) : null;
            ri = ref.isFloat() ? null : s.intIn(0);
            vi = ref.isFloat() ? null : s.intIn(1);
        }
    }
}
