package com.mindspore.flclient.runtime;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The public session API: training small models, weights by name, learning rate, save and reload. */
class TrainSessionTest {
    /** Three separable classes of 8-feature points. */
    static float[] points(int n, int[] labels, long seed) {
        Random r = new Random(seed);
        float[] x = new float[n * 8];
        for (int i = 0; i < n; i++) {
            labels[i] = i % 3;
            for (int f = 0; f < 8; f++) {
                x[i * 8 + f] = (float) (r.nextGaussian() * 0.3 + (f % 3 == labels[i] ? 1.5 : -0.5));
            }
        }
        return x;
    }

    @Test
    void mlpWithSigmoidTanhAndBiaslessDenseLearnsSeparableClasses() {
        TrainSession s = TrainSession.load(TinyModels.mlp(12).build(), "mlp.ms");
        int[] y = new int[12];
        float[] first = points(12, y, 1);
        float start = s.trainStep(first, y);
        float end = start;
        for (int step = 0; step < 150; step++) {
            int[] yb = new int[12];
            end = s.trainStep(points(12, yb, 100 + step), yb);
        }
        assertTrue(end < start * 0.3f, "loss " + start + " -> " + end);
        int[] yt = new int[12];
        float[] test = points(12, yt, 999);
        assertArrayEquals(yt, s.predict(test));
        assertEquals(1f, s.accuracy(test, yt));
        int[] wrong = yt.clone();
        wrong[0] = (wrong[0] + 1) % 3;
        wrong[1] = (wrong[1] + 1) % 3;
        wrong[2] = (wrong[2] + 1) % 3;
        assertEquals(0.75f, s.accuracy(test, wrong));
    }

    @Test
    void cnnWithAveragePoolingLearnsWhereTheBrightQuadrantIs() {
        int n = 8;
        TrainSession s = TrainSession.load(TinyModels.cnn(n).build(), "cnn.ms");
        Random r = new Random(3);
        float start = Float.NaN;
        float end = 0;
        for (int step = 0; step < 120; step++) {
            float[] x = new float[n * 64];
            int[] y = new int[n];
            for (int i = 0; i < n; i++) {
                y[i] = r.nextInt(2);
                for (int p = 0; p < 64; p++) {
                    boolean left = (p % 8) < 4;
                    x[i * 64 + p] = (float) (r.nextGaussian() * 0.2 + (left == (y[i] == 0) ? 1 : 0));
                }
            }
            end = s.trainStep(x, y);
            if (step == 0) {
                start = end;
            }
        }
        assertTrue(end < start * 0.3f, "loss " + start + " -> " + end);
    }

    @Test
    void weightsAreExchangedByNameAsCopies() {
        TrainSession s = TrainSession.load(TinyModels.mlp(4).build(), "mlp.ms");
        assertEquals(java.util.List.of("fc1.weight", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"), s.weightNames());
        assertArrayEquals(new int[] {16, 8}, s.weightShape("fc1.weight"));
        float[] w = s.getWeight("fc3.bias");
        w[0] = 42f;
        assertEquals(false, s.getWeight("fc3.bias")[0] == 42f, "getWeight must return a copy");
        s.setWeight("fc3.bias", new float[] {1f, 2f, 3f});
        assertArrayEquals(new float[] {1f, 2f, 3f}, s.getWeight("fc3.bias"));
    }

    @Test
    void setWeightWithTheWrongSizeNamesTheWeight() {
        TrainSession s = TrainSession.load(TinyModels.mlp(4).build(), "mlp.ms");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> s.setWeight("fc3.bias", new float[2]));
        assertTrue(e.getMessage().contains("fc3.bias") && e.getMessage().contains("3"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> s.getWeight("nope"));
    }

    @Test
    void learningRateZeroLeavesWeightsUnchangedAndIsReadBack() {
        TrainSession s = TrainSession.load(TinyModels.mlp(4).build(), "mlp.ms");
        s.setLearningRate(0f);
        assertEquals(0f, s.getLearningRate());
        float[] before = s.getWeight("fc1.weight");
        int[] y = new int[4];
        s.trainStep(points(4, y, 2), y);
        assertArrayEquals(before, s.getWeight("fc1.weight"));
        s.setLearningRate(0.5f);
        s.trainStep(points(4, y, 2), y);
        assertEquals(false, java.util.Arrays.equals(before, s.getWeight("fc1.weight")));
    }

    @Test
    void trainStepRefusesWrongSizesAndLabelsOutsideTheClasses() {
        TrainSession s = TrainSession.load(TinyModels.mlp(4).build(), "mlp.ms");
        assertThrows(IllegalArgumentException.class, () -> s.trainStep(new float[31], new int[4]));
        assertThrows(IllegalArgumentException.class, () -> s.trainStep(new float[32], new int[3]));
        assertThrows(IllegalArgumentException.class, () -> s.trainStep(new float[32], new int[] {0, 1, 2, 3}));
    }

    @Test
    void savedModelReloadsWithTheSameWeightsStateAndPredictions(@TempDir Path dir) throws Exception {
        TrainSession s = TrainSession.load(TinyModels.mlp(6).build(), "mlp.ms");
        int[] y = new int[6];
        float[] x = points(6, y, 4);
        for (int i = 0; i < 5; i++) {
            s.trainStep(x, y);
        }
        Path out = dir.resolve("sub/trained.ms");
        s.save(out);
        TrainSession back = TrainSession.load(out);
        assertArrayEquals(Files.readAllBytes(out), back.toBytes(), "a reloaded model re-serialises to the same bytes");
        for (String w : s.weightNames()) {
            assertArrayEquals(s.getWeight(w), back.getWeight(w), w);
            assertArrayEquals(s.getWeight("moments." + w), back.getWeight("moments." + w), "moments." + w);
        }
        assertArrayEquals(s.logits(x), back.logits(x));
        assertEquals(s.trainStep(x, y), back.trainStep(x, y));
        try (var files = Files.list(out.getParent())) {
            assertEquals(1, files.count(), "no temporary file is left behind");
        }
    }

    @Test
    void aClosedSessionRefusesWork() {
        TrainSession s = TrainSession.load(TinyModels.mlp(4).build(), "mlp.ms");
        s.close();
        assertThrows(IllegalStateException.class, () -> s.logits(new float[32]));
    }

    @Test
    void anInferenceOnlyModelPredictsButRefusesToTrain() {
        MsModelBuilder b = new MsModelBuilder(5);
        int x = b.input("x", 2, 3);
        int w = b.weight("fc.weight", 3, 4, 3);
        int logits = b.fwd("MatMul", new int[] {x, w}, new int[] {2, 4}, MsModelBuilder.A.b("transpose_b", true));
        b.mark(logits, -1, -1);
        TrainSession s = TrainSession.load(b.build(), "infer.ms");
        assertEquals(4, s.numClasses());
        assertEquals(2, s.predict(new float[] {1, 0, 0, 0, 1, 0}).length);
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> s.trainStep(new float[6], new int[2]));
        assertTrue(e.getMessage().contains("inference only"), e.getMessage());
    }

    @Test
    void aMissingFileIsAnIoErrorNamingIt(@TempDir Path dir) {
        Path missing = dir.resolve("nope.ms");
        java.io.UncheckedIOException e = assertThrows(java.io.UncheckedIOException.class, () -> TrainSession.load(missing));
        assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());
    }

    @Test
    void aFailedSaveLeavesTheExistingModelAndNoTemporaryFile(@TempDir Path dir) throws Exception {
        TrainSession s = TrainSession.load(TinyModels.mlp(4).build(), "mlp.ms");
        Path target = dir.resolve("model.ms");
        s.save(target);
        byte[] before = Files.readAllBytes(target);
        Path blocked = dir.resolve("file-not-dir");
        Files.write(blocked, new byte[] {1});
        assertThrows(java.io.UncheckedIOException.class, () -> s.save(blocked.resolve("x.ms")));
        assertArrayEquals(before, Files.readAllBytes(target));
        try (var files = Files.list(dir)) {
            assertEquals(2, files.count(), "only model.ms and file-not-dir");
        }
    }
}
