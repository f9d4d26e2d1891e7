package com.mindspore.flclient;

import com.mindspore.flclient.compress.Codec;
import com.mindspore.flclient.runtime.schema.CompressionParameters;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.logging.Logger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The device's upload codec (docs/compression.md) against a transcription of its equations written here:
 * d = D·w¹ − D·w⁰; with error feedback p = d + D·e, the upload C(p) and the kept residual e' = (p − C(p)) / D
 * (Karimireddy et al. 2019, EF-SGD); the plan's codec checked once.
 */
class UploadCodecTest {
    private static final Logger LOG = Logger.getLogger("test");
    private static final List<String> NAMES = List.of("a", "b");

    private static Map<String, float[]> random(Random rng, float scale) {
        Map<String, float[]> m = new LinkedHashMap<>();
        m.put("a", new float[40]);
        m.put("b", new float[13]);
        for (float[] v : m.values()) {
            for (int i = 0; i < v.length; i++) {
                v[i] = (float) rng.nextGaussian() * scale;
            }
        }
        return m;
    }

    /** What the server decodes (Codec's round trip of p, tested against Python bit for bit elsewhere). */
    private static Map<String, float[]> sent(Map<String, float[]> p, int iteration, float rate) {
        return Codec.encodeUpload(p, NAMES, iteration, rate).decoded;
    }

    @Test
    void errorFeedbackAddsTheResidualAndKeepsWhatWasNotSent(@TempDir Path dir) {
        UploadCodec codec = UploadCodec.decode(CompressionParameters.UPLOAD_DIFF_SPARSE_QUANT_EF, 0.3f);
        assertTrue(codec.errorFeedback);
        Path file = dir.resolve("model.ms.ef_residual");
        Random rng = new Random(1);
        int data = 7;
        float d = data;
        Map<String, float[]> e = Map.of("a", new float[40], "b", new float[13]);
        for (int iteration = 1; iteration <= 3; iteration++) {
            Map<String, float[]> w0 = random(rng, 1f);
            Map<String, float[]> w1 = random(rng, 1f);
            Map<String, float[]> upload = new LinkedHashMap<>();
            Map<String, float[]> p = new LinkedHashMap<>();
            for (String n : NAMES) {
                float[] u = new float[w1.get(n).length];
                float[] pn = new float[u.length];
                for (int i = 0; i < u.length; i++) {
                    u[i] = w1.get(n)[i] * d;
                    pn[i] = (u[i] - w0.get(n)[i] * d) + d * e.get(n)[i];
                }
                upload.put(n, u);
                p.put(n, pn);
            }
            UploadCodec.Encoded enc = codec.encode(iteration, NAMES, upload, w0, data, file, LOG);
            Codec.Upload expected = Codec.encodeUpload(p, NAMES, iteration, 0.3f);
            Map<String, float[]> next = new LinkedHashMap<>();
            for (int t = 0; t < NAMES.size(); t++) {
                assertArrayEquals(expected.tensors.get(t).data, enc.tensors.get(t).data, "iteration " + iteration);
                String n = NAMES.get(t);
                float[] c = sent(p, iteration, 0.3f).get(n);
                float[] en = new float[c.length];
                for (int i = 0; i < en.length; i++) {
                    en[i] = (p.get(n)[i] - c[i]) / d;
                }
                assertArrayEquals(en, enc.residual.get(n));
                next.put(n, en);
            }
            enc.commit(file); // accepted: the residual is the device's now
            e = next;
            assertEquals(e.keySet(), UploadCodec.readResidual(file, upload, LOG).keySet());
        }
    }

    @Test
    void withoutErrorFeedbackNothingIsKept(@TempDir Path dir) {
        UploadCodec codec = UploadCodec.decode(CompressionParameters.UPLOAD_DIFF_SPARSE_QUANT, 0.5f);
        Path file = dir.resolve("m.ef_residual");
        Random rng = new Random(2);
        Map<String, float[]> w0 = random(rng, 1f);
        UploadCodec.Encoded enc = codec.encode(1, NAMES, random(rng, 1f), w0, 3, file, LOG);
        enc.commit(file);
        assertFalse(Files.exists(file));
    }

    @Test
    void aResidualOfAnotherModelIsIgnored(@TempDir Path dir) throws Exception {
        UploadCodec codec = UploadCodec.decode(CompressionParameters.UPLOAD_DIFF_SPARSE_QUANT_EF, 0.5f);
        Path file = dir.resolve("m.ef_residual");
        Random rng = new Random(3);
        Map<String, float[]> w0 = random(rng, 1f);
        codec.encode(1, NAMES, random(rng, 1f), w0, 3, file, LOG).commit(file);
        Map<String, float[]> other = Map.of("a", new float[41], "b", new float[13]);
        assertTrue(UploadCodec.readResidual(file, other, LOG).isEmpty());
        Files.write(file, new byte[] {1, 2, 3});
        assertTrue(UploadCodec.readResidual(file, w0, LOG).isEmpty());
    }

    @Test
    void thePlansCodecIsCheckedOnce() {
        assertFalse(UploadCodec.decode(CompressionParameters.UPLOAD_NO_COMPRESS, 0f).compresses());
        String type = assertThrows(IllegalArgumentException.class, () -> UploadCodec.decode((byte) 7, 0.4f)).getMessage();
        assertTrue(type.contains("upload_compress_type = 7"), type);
        for (float bad : new float[] {0f, -0.1f, 1.5f, Float.NaN}) {
            String rate = assertThrows(IllegalArgumentException.class,
                    () -> UploadCodec.decode(CompressionParameters.UPLOAD_DIFF_SPARSE_QUANT, bad)).getMessage();
            assertTrue(rate.contains(CompressionParameters.UPLOAD_SPARSE_RATE_RULE), rate);
        }
        FLMessages.WirePlan w = PlanTest.wire();
        w.uploadCompressType = CompressionParameters.UPLOAD_DIFF_SPARSE_QUANT;
        w.uploadSparseRate = 0.4f;
        assertEquals(0.4f, Plan.decode(w, Map.of()).uploadCodec.rate);
        w.encryptType = PairwiseMaskingSteps.NAME;
        w.t = 2;
        String masked = assertThrows(IllegalArgumentException.class, () -> Plan.decode(w, Map.of())).getMessage();
        assertTrue(masked.contains("masked"), masked);
    }
}
