package com.mindspore.flclient.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.mindspore.flclient.runtime.graph.ModelReader;
import com.mindspore.flclient.runtime.graph.ModelWriter;
import com.mindspore.flclient.runtime.graph.Value;
import com.mindspore.flclient.runtime.schema.Model;
import com.mindspore.flclient.runtime.schema.TensorRole;
import org.junit.jupiter.api.Test;

/** Saving a model: the loaded file with new numbers, the same model as a rebuilt FlatBuffer. */
class ModelWriterTest {
    private static Value[] changed(Value[] values) {
        for (Value v : values) {
            if (v.role == TensorRole.Parameter && v.isFloat()) {
                float[] f = v.floatData();
                for (int j = 0; j < f.length; j++) {
                    f[j] = f[j] * 0.5f + j * 1e-3f - 0.25f;
                }
            }
        }
        return values;
    }

    @Test
    void aSavedModelIsTheLoadedFileWithEveryStoredTensorsNewValues() {
        byte[] file = TinyModels.cnn(4).build();
        Model m = ModelReader.verified(file);
        Value[] values = changed(ModelReader.tensors(m));
        byte[] patched = ModelWriter.patched(m, values);
        assertNotNull(patched, "a model whose tensors kept their sizes is patched, not rebuilt");
        assertEquals(file.length, patched.length, "the same layout");
        Value[] fromPatched = ModelReader.tensors(ModelReader.verified(patched));
        Value[] fromRebuilt = ModelReader.tensors(ModelReader.verified(ModelWriter.rebuilt(m, values)));
        for (int k = 0; k < values.length; k++) {
            if (values[k].role == TensorRole.Activation) {
                continue;
            }
            String name = values[k].name;
            if (values[k].isFloat()) {
                assertArrayEquals(values[k].floatData(), fromPatched[k].floatData(), name);
                assertArrayEquals(fromRebuilt[k].floatData(), fromPatched[k].floatData(), name);
            } else {
                assertArrayEquals(values[k].intData(), fromPatched[k].intData(), name);
            }
        }
        // and a trained session saved this way trains on as the one in memory
        TrainSession s = TrainSession.load(file, "cnn.ms");
        int[] y = new int[s.batchSize()];
        for (int j = 0; j < y.length; j++) {
            y[j] = j % s.numClasses();
        }
        int perSample = 1;
        for (int d = 1; d < s.inputShape().length; d++) {
            perSample *= s.inputShape()[d];
        }
        float[] x = new float[s.batchSize() * perSample];
        for (int j = 0; j < x.length; j++) {
            x[j] = (j % 7) / 7f;
        }
        s.trainStep(x, y);
        assertEquals(file.length, s.toBytes().length, "a trained model (its step counter too) is patched in place");
        TrainSession back = TrainSession.load(s.toBytes(), "back.ms");
        assertEquals(s.trainStep(x, y), back.trainStep(x, y));
    }

    @Test
    void aTensorWhoseDataNoLongerFitsItsPlaceIsRebuiltInstead() {
        byte[] file = TinyModels.mlp(6).build();
        Model m = ModelReader.verified(file);
        Value[] values = ModelReader.tensors(m);
        assertNull(ModelWriter.patched(m, java.util.Arrays.copyOf(values, values.length - 1)),
                "another tensor count: not a patch of this file");
    }
}
