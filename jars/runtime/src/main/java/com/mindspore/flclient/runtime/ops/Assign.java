package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;

/** Assign (ref, value), in place: {@code ref ← value} (e.g. Adam's beta powers after their Mul). */
final class Assign implements Kernel {
    private final InPlace.RefAndValue rv;

    Assign(NodeSpec s) {
        s.requireInputs(2);
        Value ref = InPlace.parameter(s, 0, "ref");
        Value val = s.input(1);
        s.requireShape(val, ref.shape, "value");
        rv = new InPlace.RefAndValue(s, ref, val);
        s.aliasOptionalOut(0, ref);
    }

    @Override
    public void run() {
        if (rv.rf != null) {
            System.arraycopy(rv.vf, 0, rv.rf, 0, rv.rf.length);
        } else {
            System.arraycopy(rv.vi, 0, rv.ri, 0, rv.ri.length);
        }
    }
}
