package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/** TanhGrad (y, dy) → dy·(1 − y²), the backward of {@link Tanh}. */
final class TanhGrad extends ActivationGrad {
    TanhGrad(NodeSpec s) {
        super(s, 0, 1);
    }

    @Override
    public void run() {
        for (int i = 0; i < dx.length; i++) {
            dx[i] = dy[i] * (1f - y[i] * y[i]);
        }
    }
}
