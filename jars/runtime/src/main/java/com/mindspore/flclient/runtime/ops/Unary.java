package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/** Shared shape check of the one-input elementwise ops: y has x's shape. */
abstract class Unary implements Kernel {
    protected final float[] x;
    protected final float[] y;

    Unary(NodeSpec s) {
        s.requireInputs(1);
        x = s.floatIn(0);
        y = s.floatOut(0, s.input(0).shape);
    }
}
