package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/** RealDiv (a, b) → a / b, elementwise with trailing broadcast (see {@link Binary}). */
final class RealDiv extends Binary {
    RealDiv(NodeSpec s) {
        super(s);
    }

    @Override
    float apply(float u, float v) {
        return u / v;
    }
}
