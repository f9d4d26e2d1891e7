package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;

/**
 * MindSpore's SGD primitive (var, grad, lr, accum, momentum, stat), in place, as its CPU kernel
 * computes it: {@code g = grad + weight_decay·var}; with momentum &gt; 0, {@code accum = g} on the
 * first step ({@code stat &gt; 0}, then stat ← 0) else {@code accum = momentum·accum + (1 − dampening)·g},
 * and {@code g = nesterov ? g + momentum·accum : accum}; finally {@code var ← var − lr·g}.
 */
final class SGD implements Kernel {
    private final float[] var;
    private final float[] grad;
    private final float[] lr;
    private final float[] accum;
    private final float[] momentum;
    private final float[] stat;
    private final float dampening;
    private final float weightDecay;
    private final boolean nesterov;

    SGD(NodeSpec s) {
        s.requireInputs(6);
        Value v = InPlace.parameter(s, 0, "var");
        InPlace.sameShape(s, v, 1, "grad");
        InPlace.stateLike(s, v, 3, "accum");
        InPlace.stateLike(s, v, 5, "stat");
        var = s.floatIn(0);
        grad = s.floatIn(1);
        lr = InPlace.scalar(s, 2, "lr");
        accum = s.floatIn(3);
        momentum = InPlace.scalar(s, 4, "momentum");
        stat = s.floatIn(5);
        dampening = s.attrs.getFloat("dampening", 0f);
        weightDecay = s.attrs.getFloat("weight_decay", 0f);
        nesterov = s.attrs.getBool("nesterov");
        s.aliasOptionalOut(0, v);
    }

    @Override
    public void run() {
        float l = lr[0];
        float m = momentum[0];
        for (int i = 0; i < var.length; i++) {
            float g = grad[i];
            if (weightDecay > 0f) {
                g += var[i] * weightDecay;
            }
            if (m > 0f) {
                if (stat[i] > 0f) {
                    accum[i] = g;
                    stat[i] = 0f;
                } else {
                    accum[i] = accum[i] * m + (1f - dampening) * g;
                }
                g = nesterov ? g + accum[i] * m : accum[i];
            }
            var[i] -= l * g;
        }
    }
}
