package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.Value;
import org.junit.jupiter.api.Test;

import static com.mindspore.flclient.runtime.ops.OpHarness.assertClose;
import static com.mindspore.flclient.runtime.ops.OpHarness.kernel;
import static com.mindspore.flclient.runtime.ops.OpHarness.v;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** SparseSoftmaxCrossEntropyWithLogits: the mean loss and, with is_grad, its gradient. */
class LossOpTest {
    @Test
    void lossIsTheMeanCrossEntropyOfTheSoftmax() {
        OpHarness h = new OpHarness(41);
        float[] z = h.rand(4 * 5);
        for (int i = 0; i < z.length; i++) {
            z[i] *= 30; // large logits: the max-shift must keep exp finite
        }
        int[] labels = {0, 4, 2, 2};
        Value loss = h.out();
        kernel("SparseSoftmaxCrossEntropyWithLogits", OpHarness.attrs().b("is_grad", false),
                v(h.in(z, 4, 5), h.ints(labels, 4)), loss).run();
        double ref = 0;
        for (int n = 0; n < 4; n++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int k = 0; k < 5; k++) {
                max = Math.max(max, z[n * 5 + k]);
            }
            double sum = 0;
            for (int k = 0; k < 5; k++) {
                sum += Math.exp(z[n * 5 + k] - max);
            }
            ref += -(z[n * 5 + labels[n]] - max - Math.log(sum));
        }
        assertEquals(ref / 4, loss.floatData()[0], 1e-4);
    }

    @Test
    void gradFormIsTheGradientOfTheLoss() {
        OpHarness h = new OpHarness(42);
        Value z = h.in(h.rand(3 * 6), 3, 6);
        Value labels = h.ints(new int[] {5, 0, 3}, 3);
        Value loss = h.out();
        Kernel fwd = kernel("SparseSoftmaxCrossEntropyWithLogits", OpHarness.attrs().b("is_grad", false), v(z, labels), loss);
        fwd.run();
        Value grad = h.out(3, 6);
        kernel("SparseSoftmaxCrossEntropyWithLogits", OpHarness.attrs().b("is_grad", true), v(z, labels), grad).run();
        float[] one = {1f};
        assertClose(OpHarness.numericGradient(fwd::run, z.floatData(), loss.floatData(), one, 1e-2f),
                grad.floatData(), 2e-3, "loss gradient");
    }

    @Test
    void aLabelOutsideTheClassesIsRefused() {
        OpHarness h = new OpHarness(43);
        Kernel k = kernel("SparseSoftmaxCrossEntropyWithLogits", OpHarness.attrs().b("is_grad", false),
                v(h.in(h.rand(4), 2, 2), h.ints(new int[] {0, 2}, 2)), h.out());
        assertThrows(IllegalArgumentException.class, k::run);
    }
}
