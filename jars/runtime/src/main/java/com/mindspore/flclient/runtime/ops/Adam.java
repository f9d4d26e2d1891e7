package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;

/**
 * MindSpore's Adam primitive (var, m, v, beta1_power, beta2_power, lr, beta1, beta2, epsilon,
 * grad), in place: {@code lr_t = lr·√(1 − β2^t)/(1 − β1^t)}, {@code m += (g − m)(1 − β1)},
 * {@code v += (g² − v)(1 − β2)}, {@code var −= lr_t·m/(√v + ε)} (nesterov:
 * {@code lr_t·(β1·m + (1 − β1)·g)/(√v + ε)}). The powers are updated by other nodes of the graph.
 */
final class Adam implements Kernel {
    private final float[] var;
    private final float[] m;
    private final float[] v;
    private final float[] beta1Power;
    private final float[] beta2Power;
    private final float[] lr;
    private final float[] beta1;
    private final float[] beta2;
    private final float[] epsilon;
    private final float[] grad;
    private final boolean nesterov;

    Adam(NodeSpec s) {
        s.requireInputs(10);
        Value w = InPlace.parameter(s, 0, "var");
        InPlace.stateLike(s, w, 1, "m");
        InPlace.stateLike(s, w, 2, "v");
        InPlace.sameShape(s, w, 9, "grad");
        var = s.floatIn(0);
        m = s.floatIn(1);
        v = s.floatIn(2);
        beta1Power = InPlace.scalar(s, 3, "beta1_power");
        beta2Power = InPlace.scalar(s, 4, "beta2_power");
        lr = InPlace.scalar(s, 5, "lr");
        beta1 = InPlace.scalar(s, 6, "beta1");
        beta2 = InPlace.scalar(s, 7, "beta2");
        epsilon = InPlace.scalar(s, 8, "epsilon");
        grad = s.floatIn(9);
        nesterov = s.attrs.getBool("use_nesterov");
        s.aliasOptionalOut(0, w);
    }

    @Override
    public void run() {
        float b1 = beta1[0];
        float b2 = beta2[0];
        float eps = epsilon[0];
        float lrT = (float) (lr[0] * Math.sqrt(1.0 - beta2Power[0]) / (1.0 - beta1Power[0]));
        for (int i = 0; i < var.length; i++) {
            float g = grad[i];
            m[i] += (g - m[i]) * (1f - b1);
            v[i] += (g * g - v[i]) * (1f - b2);
            float denom = (float) Math.sqrt(v[i]) + eps;
            if (nesterov) {
                var[i] -= lrT * (m[i] * b1 + (1f - b1) * g) / denom;
            } else {
                var[i] -= lrT * m[i] / denom;
            }
        }
    }
}
