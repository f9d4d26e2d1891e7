package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/** Neg (x) → −x. */
final class Neg extends Unary {
    Neg(NodeSpec s) {
        super(s);
    }

    @Override
    public void run() {
        for (int i = 0; i < x.length; i++) {
            y[i] = -x[i];
        }
    }
}
