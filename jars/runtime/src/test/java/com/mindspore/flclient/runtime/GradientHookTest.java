package com.mindspore.flclient.runtime;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

/** TrainSession's gradient hook (between backward and the optimizer ops) and its forward-only loss. */
class GradientHookTest {
    private static final byte[] MLP = TinyModels.mlp(12).build();

    private static Map<String, float[]> weights(TrainSession s) {
        Map<String, float[]> out = new HashMap<>();
        for (String n : s.weightNames()) {
            out.put(n, s.getWeight(n));
        }
        return out;
    }

    @Test
    void theHookSeesEveryOptimizedWeightOncePerStepBeforeItsUpdate() {
        TrainSession s = TrainSession.load(MLP, "mlp.ms");
        Map<String, float[]> before = weights(s);
        List<String> seen = new ArrayList<>();
        s.setGradientHook((name, w, g) -> {
            seen.add(name);
            assertArrayEquals(before.get(name), w, name + " is seen before its update");
            assertEquals(w.length, g.length);
        });
        int[] y = new int[12];
        s.trainStep(TrainSessionTest.points(12, y, 1), y);
        assertEquals(s.optimizedWeights(), seen);
        assertEquals(new java.util.TreeSet<>(s.weightNames()), new java.util.TreeSet<>(seen));
    }

    /** FedProx's term by hand: with w_global = 0, grad + mu·w; ApplyMomentum's first step (accum 0) moves w by lr·grad. */
    @Test
    void aProximalTermInTheHookMovesTheFirstStepByLrTimesMuTimesW() {
        float mu = 0.5f;
        float lr = 0.1f;
        TrainSession plain = TrainSession.load(MLP, "mlp.ms");
        TrainSession prox = TrainSession.load(MLP, "mlp.ms");
        plain.setLearningRate(lr);
        prox.setLearningRate(lr);
        Map<String, float[]> w0 = weights(prox);
        prox.setGradientHook((name, w, g) -> {
            for (int i = 0; i < g.length; i++) {
                g[i] += mu * w[i];
            }
        });
        int[] y = new int[12];
        float[] x = TrainSessionTest.points(12, y, 1);
        assertEquals(plain.trainStep(x, y), prox.trainStep(x, y), "same forward pass");
        for (String n : plain.weightNames()) {
            float[] a = plain.getWeight(n);
            float[] b = prox.getWeight(n);
            for (int i = 0; i < a.length; i++) {
                assertEquals(a[i] - lr * mu * w0.get(n)[i], b[i], 1e-6, n + "[" + i + "]");
            }
        }
    }

    @Test
    void removingTheHookGivesTheBitIdenticalPlainStep() {
        TrainSession never = TrainSession.load(MLP, "mlp.ms");
        TrainSession removed = TrainSession.load(MLP, "mlp.ms");
        removed.setGradientHook((name, w, g) -> g[0] += 1f);
        removed.setGradientHook(null);
        int[] y = new int[12];
        float[] x = TrainSessionTest.points(12, y, 2);
        for (int step = 0; step < 3; step++) {
            assertEquals(never.trainStep(x, y), removed.trainStep(x, y));
        }
        for (String n : never.weightNames()) {
            assertArrayEquals(never.getWeight(n), removed.getWeight(n), n);
        }
    }

    @Test
    void lossIsTheTrainingStepsLossAndChangesNothing() {
        TrainSession a = TrainSession.load(MLP, "mlp.ms");
        TrainSession b = TrainSession.load(MLP, "mlp.ms");
        int[] y = new int[12];
        float[] x = TrainSessionTest.points(12, y, 3);
        byte[] saved = a.toBytes();
        float loss = a.loss(x, y);
        assertArrayEquals(saved, a.toBytes(), "no weight, optimizer state or step counter moved");
        assertEquals(b.trainStep(x, y), loss);
        float after = b.loss(x, y);
        assertNotEquals(loss, after, "the loss is computed at the current weights");
    }
}
