package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/**
 * Shared shape check of the activation gradients, which take the forward output {@code y} and
 * the incoming gradient {@code dy} (in the input order MindSpore uses for each op).
 */
abstract class ActivationGrad implements Kernel {
    protected final float[] y;
    protected final float[] dy;
    protected final float[] dx;

    ActivationGrad(NodeSpec s, int yIndex, int dyIndex) {
        s.requireInputs(2);
        s.requireShape(s.input(dyIndex), s.input(yIndex).shape, "dy");
        y = s.floatIn(yIndex);
        dy = s.floatIn(dyIndex);
        dx = s.floatOut(0, s.input(yIndex).shape);
    }
}
