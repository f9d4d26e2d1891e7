package com.mindspore.flclient.runtime;

import com.mindspore.flclient.runtime.graph.ModelReader;
import com.mindspore.flclient.runtime.graph.ModelWriter;
import com.mindspore.flclient.runtime.schema.DataType;
import com.mindspore.flclient.runtime.schema.Model;
import com.mindspore.flclient.runtime.schema.Tensor;
import com.mindspore.flclient.runtime.schema.TensorRole;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@code .ms} file's weights changed without loading the model: the file verified, the
 * named trainable weights' data overwritten in a copy of its bytes, nothing else touched. What
 * a client that does not evaluate needs after getModel (the global weights into its model
 * file, its optimizer state kept), for the price of a read and a write instead of building the
 * whole program with its activations.
 */
public final class ModelFile {
    private ModelFile() {
    }

    /**
     * {@code msBytes} with {@code weights} (name → values) written over the data of those
     * trainable float Parameters. ModelFormatException for a file that is not a valid model;
     * IllegalArgumentException naming the weights that are not trainable weights of the file, or
     * whose length differs from the file's.
     */
    public static byte[] withWeights(byte[] msBytes, Map<String, float[]> weights, String nameForErrors) {
        Model m;
        try {
            m = ModelReader.verified(msBytes);
        } catch (ModelFormatException e) {
            throw new ModelFormatException(nameForErrors + ": " + e.getMessage(), e);
        }
        Map<String, Integer> trainable = new HashMap<>();
        List<String> names = new ArrayList<>();
        Tensor t = new Tensor();
        for (int k = 0; k < m.tensorsLength(); k++) {
            m.tensors(t, k);
            if (t.trainable() && t.role() == TensorRole.Parameter && t.dtype() == DataType.Float32) {
                trainable.put(t.name(), k);
                names.add(t.name());
            }
        }
        List<String> unknown = new ArrayList<>();
        for (String name : weights.keySet()) {
            if (!trainable.containsKey(name)) {
                unknown.add(name);
            }
        }
        if (!unknown.isEmpty()) {
            throw new IllegalArgumentException("weights " + unknown + " are not in " + nameForErrors + " (it has "
                    + names + ")");
        }
        byte[] out = Arrays.copyOf(msBytes, msBytes.length);
        ByteBuffer dst = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
        for (Map.Entry<String, float[]> e : weights.entrySet()) {
            m.tensors(t, trainable.get(e.getKey()));
            ByteBuffer raw = t.floatDataAsByteBuffer();
            int have = raw == null ? 0 : raw.remaining() / Float.BYTES;
            if (have != e.getValue().length) {
                throw new IllegalArgumentException("weight '" + e.getKey() + "' has " + have + " values in "
                        + nameForErrors + ", got " + e.getValue().length);
            }
            dst.position(raw.position());
            dst.asFloatBuffer().put(e.getValue());
        }
        return out;
    }

    /** Writes {@code bytes} to {@code out} atomically (see {@link ModelWriter#write}). */
    public static void write(byte[] bytes, Path out, boolean durable) {
        ModelWriter.write(bytes, out, durable);
    }
}
