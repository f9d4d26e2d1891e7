package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/** Sigmoid (x) → 1 / (1 + e^−x); its backward is {@link SigmoidGrad}. */
final class Sigmoid extends Unary {
    Sigmoid(NodeSpec s) {
        super(s);
    }

    @Override
    public void run() {
        for (int i = 0; i < x.length; i++) {
            y[i] = (float) (1.0 / (1.0 + Math.exp(-x[i])));
        }
    }
}
