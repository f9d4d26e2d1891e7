package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;

/** AssignAdd (ref, value), in place: {@code ref ← ref + value} for float or integer tensors (e.g. global_step). */
final class AssignAdd implements Kernel {
    private final InPlace.RefAndValue rv;
    private final int len;
    private final boolean scalarValue;

    AssignAdd(NodeSpec s) {
        s.requireInputs(2);
        Value ref = InPlace.parameter(s, 0, "ref");
        Value val = s.input(1);
        if (val.numel != ref.numel && val.numel != 1) {
            throw s.fail("value " + val.describe() + " does not fit ref " + ref.describe());
        }
        rv = new InPlace.RefAndValue(s, ref, val);
        len = ref.numel;
        scalarValue = val.numel == 1;
        s.aliasOptionalOut(0, ref);
    }

    @Override
    public void run() {
        float[] rf = rv.rf;
        float[] vf = rv.vf;
        int[] ri = rv.ri;
        int[] vi = rv.vi;
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
