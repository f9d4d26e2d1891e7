package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.NodeSpec;

/**
 * The activations and their gradients, each forward beside its backward as MindSpore's train graph
 * pairs them: ReLU / ReluGrad, Sigmoid / SigmoidGrad, Tanh / TanhGrad. A gradient takes the
 * forward output {@code y} (not {@code x}) and the incoming {@code dy}.
 */
final class Activations {
    private Activations() {
    }

    /**
     * Shared shape check of the activation gradients, which take the forward output {@code y} and
     * the incoming gradient {@code dy} (in the input order MindSpore uses for each op).
     */
    abstract static class ActivationGrad implements Kernel {
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

    /** ReLU (x) → max(x, 0); its backward is {@link ReluGrad}. */
    static final class ReLU extends Elementwise.Unary {
        ReLU(NodeSpec s) {
            super(s);
        }

        @Override
        public void run() {
            for (int i = 0; i < x.length; i++) {
                y[i] = Math.max(x[i], 0f);
            }
        }
    }

    /**
     * ReluGrad (dy, y) → dy·(y &gt; 0), the backward of {@link ReLU}. Branch-free on the float bits:
     * about half the activations are zero in no predictable pattern, and a branch per element cost
     * 5 ns (0.8 ms for LeNet's first layer) in mispredictions.
     */
    static final class ReluGrad extends ActivationGrad {
        /** Done by the MaxPoolGrad before it ({@link Pooling.MaxPoolGrad#absorb}): run() does nothing. */
        boolean absorbed;

        ReluGrad(NodeSpec s) {
            super(s, 1, 0);
        }

        @Override
        public void run() {
            if (absorbed) {
                return;
            }
            for (int i = 0; i < dx.length; i++) {
                dx[i] = Float.intBitsToFloat(Float.floatToRawIntBits(dy[i]) & positiveMask(y[i]));
            }
        }
    }

    /**
     * All ones iff {@code y}'s bits as a signed int are &gt; 0 (y &gt; 0, or a NaN with the sign bit
     * clear), else 0 (+0, −0, negative): ReluGrad's mask on dy's bits.
     */
    static int positiveMask(float y) {
        int b = Float.floatToRawIntBits(y);
        return (-b >> 31) & ~(b >> 31);
    }

    /** Sigmoid (x) → 1 / (1 + e^−x); its backward is {@link SigmoidGrad}. */
    static final class Sigmoid extends Elementwise.Unary {
        Sigmoid(NodeSpec s) {
            super(s);
        }

        @Override
        public void run() {
            for (int i = 0; i < x.length; i++) {
                y[i] = (float) (1.0 / (1.0 + Math.exp(-x[i])));
            }
        }
    }

    /** SigmoidGrad (y, dy) → dy·y·(1 − y), the backward of {@link Sigmoid}. */
    static final class SigmoidGrad extends ActivationGrad {
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

    /** Tanh (x) → tanh(x); its backward is {@link TanhGrad}. */
    static final class Tanh extends Elementwise.Unary {
        Tanh(NodeSpec s) {
            super(s);
        }

        @Override
        public void run() {
            for (int i = 0; i < x.length; i++) {
                y[i] = (float) Math.tanh(x[i]);
            }
        }
    }

    /** TanhGrad (y, dy) → dy·(1 − y²), the backward of {@link Tanh}. */
    static final class TanhGrad extends ActivationGrad {
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
}
