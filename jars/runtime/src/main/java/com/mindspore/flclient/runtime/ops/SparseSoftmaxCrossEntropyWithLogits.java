package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;

/**
 * SparseSoftmaxCrossEntropyWithLogits (logits [N,K], labels [N] int32). With {@code is_grad}
 * false it writes the mean cross-entropy (a scalar); with {@code is_grad} true its gradient with
 * respect to the logits, {@code (softmax − onehot) / N} — MindSpore emits both nodes in a train
 * graph. Log-sum-exp is taken after subtracting the row maximum, accumulated in double.
 */
final class SparseSoftmaxCrossEntropyWithLogits implements Kernel {
    private final boolean isGrad;
    private final int n;
    private final int k;
    private final float[] logits;
    private final int[] labels;
    private final float[] out;

    SparseSoftmaxCrossEntropyWithLogits(NodeSpec s) {
        s.requireInputs(2);
        isGrad = s.attrs.getBool("is_grad");
        Value lv = s.input(0);
        s.requireRank(lv, 2, "logits");
        n = lv.shape[0];
        k = lv.shape[1];
        s.requireShape(s.input(1), new int[] {n}, "labels");
        logits = s.floatIn(0);
        labels = s.intIn(1);
        if (isGrad) {
            out = s.floatOut(0, lv.shape);
        } else {
            Value o = s.output(0);
            if (o.numel != 1) {
                throw s.fail("loss output " + o.describe() + " must hold one value");
            }
            out = s.floatOut(0, o.shape);
        }
    }

    @Override
    public void run() {
        double total = 0;
        for (int r = 0; r < n; r++) {
            int off = r * k;
            int label = labels[r];
            if (label < 0 || label >= k) {
                throw new IllegalArgumentException("label " + label + " of sample " + r + " is outside [0, " + k + ")");
            }
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < k; j++) {
                max = Math.max(max, logits[off + j]);
            }
            double sum = 0;
            for (int j = 0; j < k; j++) {
                sum += Math.exp(logits[off + j] - max);
            }
            if (isGrad) {
                double scale = 1.0 / (sum * n);
                for (int j = 0; j < k; j++) {
                    out[off + j] = (float) (Math.exp(logits[off + j] - max) * scale);
                }
                out[off + label] -= 1f / n;
            } else {
                total += Math.log(sum) + max - logits[off + label];
            }
        }
        if (!isGrad) {
            out[0] = (float) (total / n);
        }
    }
}
