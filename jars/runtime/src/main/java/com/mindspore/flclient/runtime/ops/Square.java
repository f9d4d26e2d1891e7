package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/** Square (x) → x². */
final class Square extends Unary {
    Square(NodeSpec s) {
        super(s);
    }

    @Override
    public void run() {
        for (int i = 0; i < x.length; i++) {
            y[i] = x[i] * x[i];
        }
    }
}
