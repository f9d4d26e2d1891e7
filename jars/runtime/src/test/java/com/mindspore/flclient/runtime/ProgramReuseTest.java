package com.mindspore.flclient.runtime;

import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link TrainSession#load(byte[], String, TrainSession)}: a closed session's built program takes
 * another file of the same graph, and trains, predicts and saves bit for bit as a fresh load.
 */
class ProgramReuseTest {
    private static final int N = LeNetGraphTest.N;

    private static float[] images(long seed) {
        return LeNetGraphTest.images(seed);
    }

    private static int[] labels(long seed) {
        Random r = new Random(seed);
        int[] y = new int[N];
        for (int i = 0; i < N; i++) {
            y[i] = r.nextInt(10);
        }
        return y;
    }

    /** A client's model after a few steps of its own: other weights, optimizer state and step count. */
    private static byte[] trained(byte[] model, long seed, int steps) {
        try (TrainSession s = TrainSession.load(model, "client.ms")) {
            s.setLearningRate(0.05f);
            for (int k = 0; k < steps; k++) {
                s.trainStep(images(seed + k), labels(seed + k));
            }
            return s.toBytes();
        }
    }

    /** Losses of 3 steps, then predictions and the saved bytes, of {@code s} on fixed batches. */
    private static Object[] run(TrainSession s) {
        float[] losses = new float[3];
        for (int k = 0; k < 3; k++) {
            losses[k] = s.trainStep(images(100 + k), labels(100 + k));
        }
        return new Object[] {losses, s.predict(images(200)), s.toBytes()};
    }

    @Test
    void twoClientsWithDifferentWeightsInOneReusedProgramTrainAsFreshPrograms() {
        byte[] job = LeNetGraph.build(N, 10, 3);
        byte[] clientA = trained(job, 1, 2);
        byte[] clientB = trained(job, 50, 4);

        Object[] freshA = run(TrainSession.load(clientA, "a.ms"));
        Object[] freshB = run(TrainSession.load(clientB, "b.ms"));

        TrainSession first = TrainSession.load(clientB, "b.ms");
        first.setGradientHook((name, w, g) -> g[0] += 1f); // a plug-in's hook: must not reach the next client
        first.trainStep(images(7), labels(7));
        first.close();
        TrainSession a = TrainSession.load(clientA, "a.ms", first);
        assertTrue(a.sharesProgramWith(first), "the same graph reuses the built program");
        assertArrayEquals(clientA, a.toBytes(), "right after the load it saves the file it loaded");
        Object[] reusedA = run(a);
        a.close();
        TrainSession b = TrainSession.load(clientB, "b.ms", a);
        assertTrue(b.sharesProgramWith(first));
        Object[] reusedB = run(b);

        for (Object[][] pair : new Object[][][] {{freshA, reusedA}, {freshB, reusedB}}) {
            assertArrayEquals((float[]) pair[0][0], (float[]) pair[1][0], "losses bit for bit");
            assertArrayEquals((int[]) pair[0][1], (int[]) pair[1][1]);
            assertArrayEquals((byte[]) pair[0][2], (byte[]) pair[1][2], "weights and optimizer state bit for bit");
        }
        assertThrows(IllegalStateException.class, () -> first.getWeight("fc1.weight"), "a closed spare stays closed");
    }

    @Test
    void anotherGraphOrAnOpenSpareIsBuiltAfresh() {
        byte[] job = LeNetGraph.build(N, 10, 3);
        TrainSession open = TrainSession.load(job, "job.ms");
        TrainSession notSpare = TrainSession.load(job, "job.ms", open);
        assertFalse(notSpare.sharesProgramWith(open), "an open session is not a spare");
        open.close();
        TrainSession otherBatch = TrainSession.load(LeNetGraph.build(4, 10, 3), "b4.ms", open);
        assertFalse(otherBatch.sharesProgramWith(open));
        assertEquals(4, otherBatch.batchSize());
        TrainSession otherClasses = TrainSession.load(LeNetGraph.build(N, 5, 3), "c5.ms", open);
        assertFalse(otherClasses.sharesProgramWith(open));
        assertEquals(5, otherClasses.numClasses());
    }

    @Test
    void aCorruptFileFailsAsAFreshLoadAndLeavesTheSpareAlone() {
        byte[] job = LeNetGraph.build(N, 10, 3);
        TrainSession spare = TrainSession.load(job, "job.ms");
        spare.close();
        byte[] bad = job.clone();
        bad[4] = 'X'; // the file identifier
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> TrainSession.load(bad, "bad.ms", spare));
        assertTrue(e.getMessage().startsWith("bad.ms: "), e.getMessage());
        assertTrue(TrainSession.load(job, "job.ms", spare).sharesProgramWith(spare));
    }
}
