package com.mindspore.flclient;

import com.mindspore.flclient.runtime.ModelFile;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Named float arrays a device keeps beside its model file between iterations (Scaffold's control
 * variate c_i, compression's error-feedback residual): a 4-byte kind tag, the count, then per
 * entry its name, length and values, big-endian. Written atomically through the model file's
 * writer, so a crash leaves the old file or the new one, never a torn one.
 */
final class WeightsFile {
    private WeightsFile() {
    }

    /** The entries of {@code file} (empty when there is no file); IOException when it is not a file of {@code kind}. */
    static Map<String, float[]> read(Path file, int kind) throws IOException {
        Map<String, float[]> out = new LinkedHashMap<>();
        if (!Files.exists(file)) {
            return out;
        }
        try (DataInputStream in = new DataInputStream(new java.io.BufferedInputStream(Files.newInputStream(file)))) {
            if (in.readInt() != kind) {
                throw new IOException("not a file of this kind (its tag differs)");
            }
            int n = in.readInt();
            for (int k = 0; k < n; k++) {
                String name = in.readUTF();
                float[] v = new float[in.readInt()];
                for (int i = 0; i < v.length; i++) {
                    v[i] = in.readFloat();
                }
                out.put(name, v);
            }
            return out;
        }
    }

    /** Replaces {@code file} with {@code weights}, atomically ({@code durable}: forced to disk first). */
    static void write(Path file, int kind, Map<String, float[]> weights, boolean durable) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (DataOutputStream out = new DataOutputStream(bytes)) {
            out.writeInt(kind);
            out.writeInt(weights.size());
            for (Map.Entry<String, float[]> e : weights.entrySet()) {
                out.writeUTF(e.getKey());
                out.writeInt(e.getValue().length);
                for (float v : e.getValue()) {
                    out.writeFloat(v);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        ModelFile.write(bytes.toByteArray(), file, durable);
    }
}
