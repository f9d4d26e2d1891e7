package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/** Sqrt (x) → √x (optimizer arithmetic in converted graphs). */
final class Sqrt extends Unary {
    Sqrt(NodeSpec s) {
        super(s);
    }

    @Override
    public void run() {
        for (int i = 0; i < x.length; i++) {
            y[i] = (float) Math.sqrt(x[i]);
        }
    }
}
