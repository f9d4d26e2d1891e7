package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;

/** AssignAdd (ref, value), in place: {@code ref ← ref + value} for float or integer tensors (e.g. global_step). */
final class AssignAdd implements Kernel {
    private final float[] rf;
    private final float[] vf;
    private final int[] ri;
    private final int[] vi;
    private final int len;
    private final boolean scalarValue;

    AssignAdd(NodeSpec s) {
        s.requireInputs(2);
        Value ref = InPlace.parameter(s, 0, "ref");
        Value val = s.input(1);
        if (val.numel != ref.numel && val.numel != 1) {
            throw s.fail("value " + val.describe() + " does not fit ref " + ref.describe());
        }
        if (val.isFloat() != ref.isFloat()) {
            throw s.fail("value " + val.describe() + " and ref " + ref.describe() + " differ in type");
        }
        len = ref.numel;
        scalarValue = val.numel == 1;
        rf = ref.isFloat() ? s.floatIn(0) : null;
        vf = ref.isFloat() ? s.floatIn(1) : null;
        ri = ref.isFloat() ? null : s.intIn(0);
        vi = ref.isFloat() ? null : s.intIn(1);
        s.aliasOptionalOut(0, ref);
    }

    @Override
    public void run() {
        for (int i = 0; i < len; i++) {
            int j = scalarValue ? 0 : i;
            if (rf != null) {
                rf[i] += vf[j];
            } else {
                ri[i] += vi[j];
            }
        }
    }
}
