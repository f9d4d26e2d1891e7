package com.mindspore.flclient;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** {@link KeptUpload#digest}: the SHA-256 of the weights, also when it comes from the memo of shared weights. */
class KeptUploadDigestTest {
    @AfterEach
    void clear() {
        SharedWeights.clear();
    }

    /** The digest as its javadoc defines it, written out independently. */
    private static byte[] expected(Map<String, float[]> weights) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        for (Map.Entry<String, float[]> e : new TreeMap<>(weights).entrySet()) {
            md.update(e.getKey().getBytes(StandardCharsets.UTF_8));
            for (float f : e.getValue()) {
                md.update(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(f).array());
            }
        }
        return md.digest();
    }

    private static ByteBuffer wire(float... floats) {
        ByteBuffer b = ByteBuffer.allocate(4 * floats.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float f : floats) {
            b.putFloat(f);
        }
        return b.flip();
    }

    /** Two weights as a client parses them from a global model: shared arrays. */
    private static Map<String, float[]> shared(float a, float b) {
        Map<String, float[]> w = new LinkedHashMap<>();
        w.put("fc.weight", SharedWeights.of("fc.weight", wire(a, 2f, 3f)));
        w.put("fc.bias", SharedWeights.of("fc.bias", wire(b)));
        return w;
    }

    @Test
    void sharedWeightsGiveTheirDigestEveryTimeAndAfterTheModelMovedOn() throws Exception {
        Map<String, float[]> first = shared(1f, 0.5f);
        assertArrayEquals(expected(first), KeptUpload.digest(first));
        assertArrayEquals(expected(first), KeptUpload.digest(shared(1f, 0.5f)), "another device, the same model");
        byte[] returned = KeptUpload.digest(first);
        returned[0] ^= 1; // a caller's copy: the memo keeps its own
        assertArrayEquals(expected(first), KeptUpload.digest(first));

        Map<String, float[]> next = shared(7f, -1f); // the next iteration's model replaces the shared arrays
        assertArrayEquals(expected(next), KeptUpload.digest(next));
        assertArrayEquals(expected(first), KeptUpload.digest(first), "the old arrays still hold the old model");
        Map<String, float[]> fewer = new LinkedHashMap<>(next);
        fewer.remove("fc.bias");
        assertArrayEquals(expected(fewer), KeptUpload.digest(fewer), "a subset of the shared weights is another model");
    }

    @Test
    void arraysThatAreNotSharedAreHashedEachTime() throws Exception {
        Map<String, float[]> model = shared(1f, 0.5f);
        KeptUpload.digest(model);
        Map<String, float[]> own = new LinkedHashMap<>();
        own.put("fc.weight", model.get("fc.weight").clone());
        own.put("fc.bias", model.get("fc.bias").clone());
        assertArrayEquals(expected(model), KeptUpload.digest(own), "equal floats, equal digest");
        KeptUpload.digest(own);
        own.get("fc.weight")[1] = 9f; // a writable array may change between two digests
        assertArrayEquals(expected(own), KeptUpload.digest(own));
        assertNull(KeptUpload.digest(null));
    }
}
