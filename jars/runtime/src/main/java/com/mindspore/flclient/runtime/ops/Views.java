package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;

/**
 * The ops whose output is the input's data under another shape, Flatten and Reshape: the output
 * shares the input's array, so they do no work in a step and are their own gradient.
 */
final class Views {
    private Views() {
    }

    /** Flatten (x) → [N, rest]: the same data, so the output shares the input's array (no copy, no work). */
    static final class Flatten implements Kernel {
        Flatten(NodeSpec s) {
            s.requireInputs(1);
            Value x = s.input(0);
            if (x.shape.length < 1) {
                throw s.fail("input " + x.describe() + " has no batch axis");
            }
            int n = x.shape[0];
            s.requireShape(s.output(0), new int[] {n, n == 0 ? 0 : x.numel / n}, "output");
            s.aliasOut(0, x);
        }

        @Override
        public void run() {
        }
    }

    /**
     * Reshape (x) → the same data under the shape of attribute {@code shape} (one −1 allowed): the
     * output shares the input's array. The declared output shape must agree with the attribute.
     */
    static final class Reshape implements Kernel {
        Reshape(NodeSpec s) {
            s.requireInputs(1);
            Value x = s.input(0);
            Value y = s.output(0);
            long[] shape = s.attrs.has("shape") ? toLongs(s.attrs.getInts("shape", -1, -1)) : null;
            if (shape != null) {
                int unknown = -1;
                long known = 1;
                for (int k = 0; k < shape.length; k++) {
                    if (shape[k] == -1 && unknown < 0) {
                        unknown = k;
                    } else if (shape[k] < 0) {
                        throw s.fail("attribute shape " + java.util.Arrays.toString(shape) + " has an invalid dimension");
                    } else {
                        known *= shape[k];
                    }
                }
                if (unknown >= 0 && known > 0) {
                    shape[unknown] = x.numel / known;
                }
                int[] resolved = new int[shape.length];
                for (int k = 0; k < shape.length; k++) {
                    resolved[k] = (int) shape[k];
                }
                s.requireShape(y, resolved, "output");
            }
            s.requireSameNumel(x, y);
            s.aliasOut(0, x);
        }

        private static long[] toLongs(int[] v) {
            long[] out = new long[v.length];
            for (int k = 0; k < v.length; k++) {
                out[k] = v[k];
            }
            return out;
        }

        @Override
        public void run() {
        }
    }
}
