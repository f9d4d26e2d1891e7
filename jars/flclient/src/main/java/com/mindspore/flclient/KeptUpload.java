package com.mindspore.flclient;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

/**
 * A device's upload that the server lost (it restarted and answered the upload, or its confirmation, OutOfTime):
 * the body, the iteration and a SHA-256 of the global model it was trained from. When the server admits the
 * device again to the same iteration with the same model, {@link RoundLoop} sends this body again instead of
 * training again: the same model, data and plan would give the same update, at the cost of a training. Kept with
 * the trained model file ({@link LocalModel#trainedPath}), which getModel's evaluation starts from. Only for
 * plans whose server sees single uploads and that carry no control variate ({@link #reusable}): PW_ENCRYPT's masks
 * belong to the lost round's keys, and Scaffold's c_i was advanced with the training.
 */
final class KeptUpload {
    final int iteration;
    final byte[] modelDigest;
    final byte[] body;

    KeptUpload(int iteration, byte[] modelDigest, byte[] body) {
        this.iteration = iteration;
        this.modelDigest = modelDigest;
        this.body = body;
    }

    /** Whether a lost upload of a round under {@code plan} may be sent again instead of training again. */
    static boolean reusable(Plan plan) {
        return plan.encrypt.seesSingleUploads && plan.controlVariate.isEmpty();
    }

    /** Whether an admission to {@code iteration} with weights of {@code digest} is the one this upload was for. */
    boolean matches(int iteration, byte[] digest) {
        return this.iteration == iteration && digest != null && Arrays.equals(modelDigest, digest);
    }

    /** The weights of the last digest over {@link SharedWeights} arrays, and that digest. */
    private static final class SharedDigest {
        final Map<String, float[]> weights;
        final byte[] digest;

        SharedDigest(Map<String, float[]> weights, byte[] digest) {
            this.weights = weights;
            this.digest = digest;
        }

        /** The same names with the same arrays: shared arrays are never written, so the same floats. */
        boolean covers(Map<String, float[]> other) {
            if (other.size() != weights.size()) {
                return false;
            }
            for (Map.Entry<String, float[]> e : other.entrySet()) {
                if (weights.get(e.getKey()) != e.getValue()) {
                    return false;
                }
            }
            return true;
        }
    }

    /**
     * Every device admitted to an iteration holds the same shared global weights: their digest is
     * computed once (the SHA-256 of 246 KB was ~0.2 ms of a control thread per admission).
     */
    private static volatile SharedDigest lastShared;

    /** SHA-256 over the weights in name order: each name's UTF-8 bytes, then its floats (little-endian). */
    static byte[] digest(Map<String, float[]> weights) {
        if (weights == null) {
            return null;
        }
        SharedDigest memo = lastShared;
        if (memo != null && memo.covers(weights)) {
            return memo.digest.clone();
        }
        byte[] digest = sha256(weights);
        boolean shared = true;
        for (Map.Entry<String, float[]> e : weights.entrySet()) {
            shared &= SharedWeights.isShared(e.getKey(), e.getValue());
        }
        if (shared) {
            lastShared = new SharedDigest(new java.util.HashMap<>(weights), digest.clone());
        }
        return digest;
    }

    private static byte[] sha256(Map<String, float[]> weights) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            for (Map.Entry<String, float[]> e : new TreeMap<>(weights).entrySet()) {
                md.update(e.getKey().getBytes(StandardCharsets.UTF_8));
                ByteBuffer bb = ByteBuffer.allocate(4 * e.getValue().length).order(ByteOrder.LITTLE_ENDIAN);
                bb.asFloatBuffer().put(e.getValue());
                md.update(bb.array());
            }
            return md.digest();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
