package com.mindspore.flclient.runtime;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The command line: info, train (losses, saved model), predict (labels, logits), bench, and its exit codes. */
class RuntimeToolTest {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();

    private int run(Object... args) {
        String[] a = new String[args.length];
        for (int i = 0; i < args.length; i++) {
            a[i] = args[i].toString();
        }
        return RuntimeTool.run(a, new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    private static Path floats(Path p, float[] v) throws Exception {
        ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : v) {
            b.putFloat(f);
        }
        return Files.write(p, b.array());
    }

    private static Path ints(Path p, int[] v) throws Exception {
        ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int i : v) {
            b.putInt(i);
        }
        return Files.write(p, b.array());
    }

    @Test
    void infoListsWeightsShapesAndOps(@TempDir Path dir) throws Exception {
        Path model = Files.write(dir.resolve("mlp.ms"), TinyModels.mlp(4).build());
        assertEquals(0, run("info", "--model", model));
        String text = out.toString(StandardCharsets.UTF_8);
        assertTrue(text.contains("input [4, 8] classes 3 batch 4"), text);
        assertTrue(text.contains("weight fc1.weight [16, 8]"), text);
        assertTrue(text.contains("ops MatMul Tanh"), text);
    }

    @Test
    void trainRunsEveryBatchWritesLossesAndTheTrainedModel(@TempDir Path dir) throws Exception {
        Path model = Files.write(dir.resolve("mlp.ms"), TinyModels.mlp(4).build());
        int[] y = new int[8];
        float[] x = TrainSessionTest.points(8, y, 3);
        Path out = dir.resolve("trained.ms");
        Path losses = dir.resolve("losses.txt");
        assertEquals(0, run("train", "--model", model, "--data", floats(dir.resolve("x.bin"), x), "--label",
                ints(dir.resolve("y.bin"), y), "--lr", "0.05", "--out", out, "--losses", losses));
        List<String> lines = Files.readAllLines(losses);
        assertEquals(2, lines.size());
        TrainSession expected = TrainSession.load(model);
        expected.setLearningRate(0.05f);
        float first = expected.trainStep(java.util.Arrays.copyOfRange(x, 0, 32), java.util.Arrays.copyOfRange(y, 0, 4));
        expected.trainStep(java.util.Arrays.copyOfRange(x, 32, 64), java.util.Arrays.copyOfRange(y, 4, 8));
        assertEquals(first, Float.parseFloat(lines.get(0)));
        assertArrayEquals(expected.getWeight("fc1.weight"), TrainSession.load(out).getWeight("fc1.weight"));
    }

    @Test
    void predictWritesLabelsAndLogitsOfEveryBatch(@TempDir Path dir) throws Exception {
        Path model = Files.write(dir.resolve("mlp.ms"), TinyModels.mlp(4).build());
        int[] y = new int[8];
        float[] x = TrainSessionTest.points(8, y, 3);
        Path pred = dir.resolve("pred.bin");
        Path logits = dir.resolve("logits.bin");
        assertEquals(0, run("predict", "--model", model, "--data", floats(dir.resolve("x.bin"), x), "--out", pred,
                "--logits", logits));
        TrainSession s = TrainSession.load(model);
        int[] expected = new int[8];
        System.arraycopy(s.predict(java.util.Arrays.copyOfRange(x, 0, 32)), 0, expected, 0, 4);
        System.arraycopy(s.predict(java.util.Arrays.copyOfRange(x, 32, 64)), 0, expected, 4, 4);
        assertArrayEquals(expected, RuntimeTool.readInts(pred));
        assertEquals(8 * 3, RuntimeTool.readFloats(logits).length);
    }

    @Test
    void benchPrintsOneJsonLine(@TempDir Path dir) throws Exception {
        Path model = Files.write(dir.resolve("mlp.ms"), TinyModels.mlp(4).build());
        assertEquals(0, run("bench", "--model", model, "--steps", "3", "--warmup", "1", "--sessions", "2"));
        String text = out.toString(StandardCharsets.UTF_8).trim();
        assertTrue(text.startsWith("{\"batch\": 4, \"sessions\": 2, \"steps\": 3") && text.contains("samples_per_s"), text);
    }

    @Test
    void aCorruptModelIsAFailureWithTheReasonOnStderr(@TempDir Path dir) throws Exception {
        Path model = Files.write(dir.resolve("bad.ms"), new byte[] {1, 2, 3});
        assertEquals(1, run("info", "--model", model));
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("bad.ms: Model: a buffer of 3 bytes is too short"), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void dataThatIsNotWholeBatchesIsAFailure(@TempDir Path dir) throws Exception {
        Path model = Files.write(dir.resolve("mlp.ms"), TinyModels.mlp(4).build());
        assertEquals(1, run("train", "--model", model, "--data", floats(dir.resolve("x.bin"), new float[8 * 6]),
                "--label", ints(dir.resolve("y.bin"), new int[6]), "--out", dir.resolve("o.ms")));
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("multiple of the batch 4"), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void missingOptionsAndUnknownCommandsAreUsageErrors() {
        assertEquals(2, run("train", "--model", "m.ms"));
        assertEquals(2, run("fly"));
        assertEquals(2, run());
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("usage: RuntimeTool"));
    }
}
