package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/** Tanh (x) → tanh(x); its backward is {@link TanhGrad}. */
final class Tanh extends Unary {
    Tanh(NodeSpec s) {
        super(s);
    }

    @Override
    public void run() {
        for (int i = 0; i < x.length; i++) {
            y[i] = (float) Math.tanh(x[i]);
        }
    }
}
