package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;

/** Assign (ref, value), in place: {@code ref ← value} (e.g. Adam's beta powers after their Mul). */
final class Assign implements Kernel {
    private final float[] rf;
    private final float[] vf;
    private final int[] ri;
    private final int[] vi;

    Assign(NodeSpec s) {
        s.requireInputs(2);
        Value ref = InPlace.parameter(s, 0, "ref");
        Value val = s.input(1);
        s.requireShape(val, ref.shape, "value");
        if (val.isFloat() != ref.isFloat()) {
            throw s.fail("value " + val.describe() + " and ref " + ref.describe() + " differ in type");
        }
        rf = ref.isFloat() ? s.floatIn(0) : null;
        vf = ref.isFloat() ? s.floatIn(1) : null;
        ri = ref.isFloat() ? null : s.intIn(0);
        vi = ref.isFloat() ? null : s.intIn(1);
        s.aliasOptionalOut(0, ref);
    }

    @Override
    public void run() {
        if (rf != null) {
            System.arraycopy(vf, 0, rf, 0, rf.length);
        } else {
            System.arraycopy(vi, 0, ri, 0, ri.length);
        }
    }
}
