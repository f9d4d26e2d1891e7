package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/** ReLU (x) → max(x, 0); its backward is {@link ReluGrad}. */
final class ReLU extends Unary {
    ReLU(NodeSpec s) {
        super(s);
    }

    @Override
    public void run() {
        for (int i = 0; i < x.length; i++) {
            y[i] = Math.max(x[i], 0f);
        }
    }
}
