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
}
