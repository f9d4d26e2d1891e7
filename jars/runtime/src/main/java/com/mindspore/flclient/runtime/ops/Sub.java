package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/** Sub (a, b) → a − b, elementwise with trailing broadcast (see {@link Binary}). */
final class Sub extends Binary {
    Sub(NodeSpec s) {
        super(s);
    }

    @Override
    float apply(float u, float v) {
        return u - v;
    }
}
