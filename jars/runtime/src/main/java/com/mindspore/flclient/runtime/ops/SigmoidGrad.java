package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/** SigmoidGrad (y, dy) → dy·y·(1 − y), the backward of {@link Sigmoid}. */
final class SigmoidGrad extends ActivationGrad {
    SigmoidGrad(NodeSpec s) {
        super(s, 0, 1);
    }

    @Override
    public void run() {
        for (int i = 0; i < dx.length; i++) {
            dx[i] = dy[i] * y[i] * (1f - y[i]);
        }
    }
}
