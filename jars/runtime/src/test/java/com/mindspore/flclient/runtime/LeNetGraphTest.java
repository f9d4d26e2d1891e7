package com.mindspore.flclient.runtime;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The LeNet train graph in MindSpore's op order: its gradients (read from the momentum
 * accumulators after one step, which start at zero) match finite differences of the loss, and it
 * memorises a batch.
 */
class LeNetGraphTest {
    static final int N = 8;

    /** N uniform images in [-1, 1) of the LeNet graph's input (NCHW, 3 × 32 × 32), from {@code seed}. */
    static float[] images(long seed) {
        Random r = new Random(seed);
        float[] x = new float[N * 3 * 32 * 32];
        for (int i = 0; i < x.length; i++) {
            x[i] = r.nextFloat() * 2 - 1;
        }
        return x;
    }

    @Test
    void everyWeightsGradientMatchesFiniteDifferencesOfTheLoss() {
        byte[] model = LeNetGraph.build(N, 10, 3);
        float[] x = images(5);
        int[] y = {0, 1, 2, 3, 4, 5, 6, 7};
        TrainSession s = TrainSession.load(model, "lenet8.ms");
        s.setLearningRate(0f);
        s.trainStep(x, y);
        java.util.Map<String, float[]> grads = new java.util.HashMap<>();
        for (String w : s.weightNames()) {
            grads.put(w, s.getWeight("moments." + w)); // read all first: every later step accumulates
        }
        Random pick = new Random(9);
        for (String w : s.weightNames()) {
            float[] grad = grads.get(w);
            float[] weights = s.getWeight(w);
            double scale = 0;
            for (float g : grad) {
                scale = Math.max(scale, Math.abs(g));
            }
            for (int probe = 0; probe < 3; probe++) {
                int i = pick.nextInt(weights.length);
                float eps = 2e-3f;
                float keep = weights[i];
                weights[i] = keep + eps;
                s.setWeight(w, weights);
                double plus = s.trainStep(x, y);
                weights[i] = keep - eps;
                s.setWeight(w, weights);
                double minus = s.trainStep(x, y);
                weights[i] = keep;
                s.setWeight(w, weights);
                double numeric = (plus - minus) / (2 * eps);
                assertEquals(numeric, grad[i], 0.02 * scale + 1e-4, w + "[" + i + "]");
            }
        }
    }

    @Test
    void lenetTrainGraphMemorisesABatch() {
        TrainSession s = TrainSession.load(LeNetGraph.build(N, 10, 3), "lenet8.ms");
        assertEquals(N, s.batchSize());
        assertArrayEquals(new int[] {N, 3, 32, 32}, s.inputShape());
        assertEquals(List.of("conv1.weight", "conv2.weight", "fc1.weight", "fc1.bias", "fc2.weight",
                "fc2.bias", "fc3.weight", "fc3.bias"), s.weightNames());
        float[] x = images(6);
        int[] y = {0, 1, 2, 3, 4, 5, 6, 7};
        s.setLearningRate(0.02f);
        float first = s.trainStep(x, y);
        float last = first;
        for (int i = 0; i < 80; i++) {
            last = s.trainStep(x, y);
        }
        assertTrue(last < first * 0.2f, "loss should drop on a memorised batch: " + first + " -> " + last);
        assertArrayEquals(y, s.predict(x));
    }
}
