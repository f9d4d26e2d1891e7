package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/** Mul (a, b) → a · b, elementwise with trailing broadcast (see {@link Binary}). */
final class Mul extends Binary {
    Mul(NodeSpec s) {
        super(s);
    }

    @Override
    float apply(float u, float v) {
        return u * v;
    }
}
