package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;

/** Flatten (x) → [N, rest]: the same data, so the output shares the input's array (no copy, no work). */
final class Flatten implements Kernel {
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
