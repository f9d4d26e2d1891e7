package com.mindspore.flclient.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** getModel without loading: the server's weights written into a model file's bytes. */
class ModelFileTest {
    @Test
    void theNamedWeightsChangeAndEverythingElseStays() {
        TrainSession s = TrainSession.load(TinyModels.cnn(4).build(), "cnn.ms");
        String w = s.weightNames().get(0);
        float[] global = s.getWeight(w).clone();
        for (int j = 0; j < global.length; j++) {
            global[j] = j * 0.01f - 1f;
        }
        byte[] before = s.toBytes();
        TrainSession back = TrainSession.load(ModelFile.withWeights(before, Map.of(w, global), "cnn.ms"), "back.ms");
        assertArrayEquals(global, back.getWeight(w));
        for (String other : s.weightNames()) {
            if (!other.equals(w)) {
                assertArrayEquals(s.getWeight(other), back.getWeight(other), other);
            }
            assertArrayEquals(s.getWeight("moments." + other), back.getWeight("moments." + other), "moments." + other);
        }
        // the same as loading, setting and saving
        s.setWeight(w, global);
        assertArrayEquals(s.toBytes(), ModelFile.withWeights(before, Map.of(w, global), "cnn.ms"));
    }

    @Test
    void aWeightTheFileDoesNotHaveOrOfAnotherSizeIsOneClearError() {
        byte[] file = TinyModels.cnn(4).build();
        TrainSession s = TrainSession.load(file, "cnn.ms");
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class,
                () -> ModelFile.withWeights(file, Map.of("no.such.weight", new float[3]), "cnn.ms"));
        assertTrue(unknown.getMessage().contains("no.such.weight") && unknown.getMessage().contains("cnn.ms"),
                unknown.getMessage());
        String w = s.weightNames().get(0);
        IllegalArgumentException size = assertThrows(IllegalArgumentException.class,
                () -> ModelFile.withWeights(file, Map.of(w, new float[1]), "cnn.ms"));
        assertTrue(size.getMessage().contains(w), size.getMessage());
        assertThrows(ModelFormatException.class, () -> ModelFile.withWeights(new byte[64], Map.of(), "junk.ms"));
    }
}
