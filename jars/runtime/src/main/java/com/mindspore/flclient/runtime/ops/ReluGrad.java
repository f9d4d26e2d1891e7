package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/** ReluGrad (dy, y) → dy·(y &gt; 0), the backward of {@link ReLU}. */
final class ReluGrad extends ActivationGrad {
    ReluGrad(NodeSpec s) {
        super(s, 1, 0);
    }

    @Override
    public void run() {
        for (int i = 0; i < dx.length; i++) {
            dx[i] = y[i] > 0f ? dy[i] : 0f;
        }
    }
}
