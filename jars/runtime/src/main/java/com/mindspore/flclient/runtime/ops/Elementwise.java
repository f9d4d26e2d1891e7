package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;

/**
 * The elementwise arithmetic that appears in any phase (forward, gradients, optimizer updates
 * written as graph nodes): the binaries Add, Sub, Mul, RealDiv with trailing broadcast
 * ({@link Binary}) and the unaries Neg, Sqrt, Square ({@link Unary}, also the base of the
 * activations).
 */
final class Elementwise {
    private Elementwise() {
    }

    /**
     * The two-input elementwise ops (Add, Sub, Mul, RealDiv). The smaller operand may be a scalar or
     * broadcast along the larger's trailing axes (its shape, without leading 1s, is a suffix of the
     * larger's); the output has the larger shape.
     */
    abstract static class Binary implements Kernel {
        private final float[] a;
        private final float[] b;
        private final float[] y;
        private final int aLen;
        private final int bLen;
        private final int yLen;

        Binary(NodeSpec s) {
            s.requireInputs(2);
            Value av = s.input(0);
            Value bv = s.input(1);
            Value big = av.numel >= bv.numel ? av : bv;
            Value small = big == av ? bv : av;
            if (!isTrailingSuffix(small.shape, big.shape)) {
                throw s.fail("cannot broadcast " + small.describe() + " against " + big.describe()
                        + " (only scalars and trailing-axis broadcasts are supported)");
            }
            a = s.floatIn(0);
            b = s.floatIn(1);
            y = s.floatOut(0, big.shape);
            aLen = av.numel;
            bLen = bv.numel;
            yLen = big.numel;
        }

        private static boolean isTrailingSuffix(int[] small, int[] big) {
            int start = 0;
            while (start < small.length && small[start] == 1) {
                start++;
            }
            int len = small.length - start;
            if (len > big.length) {
                return false;
            }
            for (int k = 0; k < len; k++) {
                if (small[start + k] != big[big.length - len + k]) {
                    return false;
                }
            }
            return true;
        }

        abstract float apply(float u, float v);

        @Override
        public void run() {
            if (aLen == yLen && bLen == yLen) {
                for (int i = 0; i < yLen; i++) {
                    y[i] = apply(a[i], b[i]);
                }
            } else if (aLen == yLen) {
                for (int i = 0; i < yLen; i++) {
                    y[i] = apply(a[i], b[i % bLen]);
                }
            } else {
                for (int i = 0; i < yLen; i++) {
                    y[i] = apply(a[i % aLen], b[i]);
                }
            }
        }
    }

    /** Add (a, b) → a + b, elementwise with trailing broadcast (see {@link Binary}). */
    static final class Add extends Binary {
        Add(NodeSpec s) {
            super(s);
        }

        @Override
        float apply(float u, float v) {
            return u + v;
        }
    }

    /** Sub (a, b) → a − b, elementwise with trailing broadcast (see {@link Binary}). */
    static final class Sub extends Binary {
        Sub(NodeSpec s) {
            super(s);
        }

        @Override
        float apply(float u, float v) {
            return u - v;
        }
    }

    /** Mul (a, b) → a · b, elementwise with trailing broadcast (see {@link Binary}). */
    static final class Mul extends Binary {
        Mul(NodeSpec s) {
            super(s);
        }

        @Override
        float apply(float u, float v) {
            return u * v;
        }
    }

    /** RealDiv (a, b) → a / b, elementwise with trailing broadcast (see {@link Binary}). */
    static final class RealDiv extends Binary {
        RealDiv(NodeSpec s) {
            super(s);
        }

        @Override
        float apply(float u, float v) {
            return u / v;
        }
    }

    /** Shared shape check of the one-input elementwise ops: y has x's shape. */
    abstract static class Unary implements Kernel {
        protected final float[] x;
        protected final float[] y;

        Unary(NodeSpec s) {
            s.requireInputs(1);
            x = s.floatIn(0);
            y = s.floatOut(0, s.input(0).shape);
        }
    }

    /** Neg (x) → −x. */
    static final class Neg extends Unary {
        Neg(NodeSpec s) {
            super(s);
        }

        @Override
        public void run() {
            for (int i = 0; i < x.length; i++) {
                y[i] = -x[i];
            }
        }
    }

    /** Sqrt (x) → √x (optimizer arithmetic in converted graphs). */
    static final class Sqrt extends Unary {
        Sqrt(NodeSpec s) {
            super(s);
        }

        @Override
        public void run() {
            for (int i = 0; i < x.length; i++) {
                y[i] = (float) Math.sqrt(x[i]);
            }
        }
    }

    /** Square (x) → x². */
    static final class Square extends Unary {
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
}
