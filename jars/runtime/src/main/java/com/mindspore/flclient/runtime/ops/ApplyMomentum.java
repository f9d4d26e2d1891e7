package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;

/**
 * ApplyMomentum (var, accum, lr, grad, momentum), in place: {@code accum ← momentum·accum + grad};
 * {@code var ← var − lr·accum}, or with {@code use_nesterov} {@code var ← var − lr·(grad + momentum·accum)}.
 */
final class ApplyMomentum implements Kernel {
    private final float[] var;
    private final float[] accum;
    private final float[] lr;
    private final float[] grad;
    private final float[] momentum;
    private final boolean nesterov;

    ApplyMomentum(NodeSpec s) {
        s.requireInputs(5);
        Value v = InPlace.parameter(s, 0, "var");
        InPlace.stateLike(s, v, 1, "accum");
        InPlace.sameShape(s, v, 3, "grad");
        var = s.floatIn(0);
        accum = s.floatIn(1);
        lr = InPlace.scalar(s, 2, "lr");
        grad = s.floatIn(3);
        momentum = InPlace.scalar(s, 4, "momentum");
        nesterov = s.attrs.getBool("use_nesterov");
        s.aliasOptionalOut(0, v);
    }

    @Override
    public void run() {
        float l = lr[0];
        float m = momentum[0];
        if (nesterov) {
            for (int i = 0; i < var.length; i++) {
                accum[i] = m * accum[i] + grad[i];
                var[i] -= l * (grad[i] + m * accum[i]);
            }
        } else {
            for (int i = 0; i < var.length; i++) {
                accum[i] = m * accum[i] + grad[i];
                var[i] -= l * accum[i];
            }
        }
    }
}
