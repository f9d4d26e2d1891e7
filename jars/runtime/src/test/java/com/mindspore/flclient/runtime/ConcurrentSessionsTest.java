package com.mindspore.flclient.runtime;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** Sessions share no mutable state: four sessions training at once end exactly where one alone does. */
class ConcurrentSessionsTest {
    private static float[] train(byte[] model, long seed) {
        TrainSession s = TrainSession.load(model, "cnn.ms");
        int[] y = new int[4];
        for (int step = 0; step < 30; step++) {
            float[] x = new float[4 * 64];
            java.util.Random r = new java.util.Random(seed * 1000 + step);
            for (int i = 0; i < x.length; i++) {
                x[i] = r.nextFloat();
            }
            for (int i = 0; i < 4; i++) {
                y[i] = r.nextInt(2);
            }
            s.trainStep(x, y);
        }
        return s.getWeight("conv.weight");
    }

    @Test
    void sessionsTrainingOnSeveralThreadsDoNotInterfere() throws Exception {
        byte[] model = TinyModels.cnn(4).build();
        List<float[]> alone = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            alone.add(train(model, t));
        }
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<float[]>> together = new ArrayList<>();
            for (int t = 0; t < 4; t++) {
                final long seed = t;
                together.add(pool.submit(() -> train(model, seed)));
            }
            for (int t = 0; t < 4; t++) {
                assertArrayEquals(alone.get(t), together.get(t).get(), "session " + t);
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
