package com.mindspore.flclient.runtime;

import com.mindspore.flclient.runtime.MsModelBuilder.A;
import com.mindspore.flclient.runtime.schema.Phase;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Corrupt, truncated, foreign or inconsistent files fail at load with the file's name and the reason. */
class ModelLoadingTest {
    private static ModelFormatException refused(byte[] bytes) {
        return assertThrows(ModelFormatException.class, () -> TrainSession.load(bytes, "broken.ms"));
    }

    private static void assertMentions(ModelFormatException e, String... parts) {
        String m = e.getMessage();
        assertTrue(m.startsWith("broken.ms: "), m);
        for (String p : parts) {
            assertTrue(m.contains(p), "'" + p + "' missing in: " + m);
        }
    }

    @Test
    void everyTruncationOfAValidModelIsRefusedWithTheFileName() {
        byte[] good = TinyModels.mlp(4).build();
        for (int len = 0; len < good.length; len += Math.max(1, len / 16)) {
            byte[] cut = Arrays.copyOf(good, len);
            ModelFormatException e = refused(cut);
            assertTrue(e.getMessage().startsWith("broken.ms: "), e.getMessage());
        }
    }

    @Test
    void randomByteCorruptionNeverEscapesAsAnUncheckedCrash() {
        byte[] good = TinyModels.cnn(2).build();
        Random r = new Random(11);
        for (int trial = 0; trial < 300; trial++) {
            byte[] bad = good.clone();
            for (int k = 0; k < 3; k++) {
                bad[r.nextInt(bad.length)] = (byte) r.nextInt(256);
            }
            try {
                TrainSession.load(bad, "broken.ms").close();
            } catch (ModelFormatException e) {
                assertTrue(e.getMessage().startsWith("broken.ms: "), e.getMessage());
            }
        }
    }

    @Test
    void aFileWithAnotherIdentifierIsNotAModel(@TempDir Path dir) throws Exception {
        byte[] bytes = TinyModels.mlp(4).build();
        bytes[4] = 'X';
        Path p = dir.resolve("other.ms");
        Files.write(p, bytes);
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> TrainSession.load(p));
        assertTrue(e.getMessage().startsWith(p.toString()) && e.getMessage().contains("identifier"), e.getMessage());
    }

    @Test
    void unknownOpsAreListedByName() {
        MsModelBuilder b = TinyModels.mlp(4);
        int z = b.act("z", 4, 3);
        b.node("LayerNormFancy", Phase.Forward, new int[] {0}, new int[] {z});
        assertMentions(refused(b.build()), "unsupported op", "LayerNormFancy");
    }

    @Test
    void parameterDataThatDoesNotFillItsShapeIsRefused() {
        MsModelBuilder b = TinyModels.mlp(4);
        b.state("short", new float[5], 2, 3);
        assertMentions(refused(b.build()), "short", "needs 6 float values", "has 5");
    }

    @Test
    void aNodeInputOutsideTheTensorsIsRefused() {
        MsModelBuilder b = TinyModels.mlp(4);
        int z = b.act("z", 4, 8);
        b.node("ReLU", Phase.Forward, new int[] {999}, new int[] {z});
        assertMentions(refused(b.build()), "refers to tensor 999");
    }

    @Test
    void aMissingAttributeIsNamed() {
        MsModelBuilder b = TinyModels.cnn(2);
        int z = b.act("z", 2, 1, 4, 4);
        b.node("MaxPool", Phase.Forward, new int[] {0}, new int[] {z}, A.ints("kernel", 2, 2), A.ints("pad", 0, 0, 0, 0));
        assertMentions(refused(b.build()), "lacks attribute 'stride'");
    }

    @Test
    void aTensorReadBeforeItIsWrittenIsRefused() {
        MsModelBuilder b = TinyModels.mlp(4);
        int later = b.act("later", 4, 3);
        int z = b.act("z", 4, 3);
        b.node("ReLU", Phase.Forward, new int[] {later}, new int[] {z});
        assertMentions(refused(b.build()), "reads tensor 'later' before any node writes it");
    }

    @Test
    void aModelWithoutMarkedLogitsIsRefused() {
        MsModelBuilder b = TinyModels.mlp(4);
        b.mark(-1, 1, -1);
        assertMentions(refused(b.build()), "logits");
    }
}
