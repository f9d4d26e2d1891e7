package com.mindspore.flclient;

import com.mindspore.flclient.compress.Codec;
import com.mindspore.flclient.runtime.schema.CompressionParameters;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;

/**
 * The plan's upload codec (ResponseFLJob's upload_compress_type and upload_sparse_rate, rows of
 * schema/compression.json), checked once, and the device's side of it (docs/compression.md):
 * the difference d = D·w¹ − D·w⁰ from the received model, masked and quantised by {@link Codec};
 * with error feedback the residual e (what was not sent, per weight, not × D) is kept in a file
 * beside the model, added to the next update (p = d + D·e) and replaced by (p − C(p)) / D once
 * the server accepted the upload.
 */
final class UploadCodec {
    /** The tag of the residual file ({@link WeightsFile}): "EFR1". */
    private static final int MAGIC = 0x45465231;

    /** No compression: r1.6's upload. */
    static final UploadCodec NONE = new UploadCodec(CompressionParameters.UPLOAD_NO_COMPRESS, 0f);

    final byte type;
    final float rate;
    final boolean errorFeedback;

    private UploadCodec(byte type, float rate) {
        this.type = type;
        this.rate = rate;
        this.errorFeedback = CompressionParameters.errorFeedback(type);
    }

    boolean compresses() {
        return type != CompressionParameters.UPLOAD_NO_COMPRESS;
    }

    /** The plan's codec; IllegalArgumentException (one line) for a type or rate this client cannot follow. */
    static UploadCodec decode(byte type, float rate) {
        if (type == CompressionParameters.UPLOAD_NO_COMPRESS) {
            return NONE;
        }
        if (type != CompressionParameters.UPLOAD_DIFF_SPARSE_QUANT
                && type != CompressionParameters.UPLOAD_DIFF_SPARSE_QUANT_EF) {
            throw new IllegalArgumentException("the server's plan asks for upload_compress_type = " + type
                    + ": this client implements " + CompressionParameters.UPLOAD_NO_COMPRESS + ", "
                    + CompressionParameters.UPLOAD_DIFF_SPARSE_QUANT + ", "
                    + CompressionParameters.UPLOAD_DIFF_SPARSE_QUANT_EF);
        }
        double r = rate;
        boolean low = r < CompressionParameters.UPLOAD_SPARSE_RATE_MIN
                || (CompressionParameters.UPLOAD_SPARSE_RATE_MIN_OPEN && r == CompressionParameters.UPLOAD_SPARSE_RATE_MIN);
        boolean high = r > CompressionParameters.UPLOAD_SPARSE_RATE_MAX
                || (CompressionParameters.UPLOAD_SPARSE_RATE_MAX_OPEN && r == CompressionParameters.UPLOAD_SPARSE_RATE_MAX);
        if (!Float.isFinite(rate) || low || high) {
            throw new IllegalArgumentException("the server's plan asks for upload_sparse_rate = " + rate + ": "
                    + CompressionParameters.UPLOAD_SPARSE_RATE_RULE);
        }
        return new UploadCodec(type, rate);
    }

    /** An encoded upload and, with error feedback, the residual to keep once the server accepts it. */
    static final class Encoded {
        final UploadCodec codec;
        final List<Codec.Tensor> tensors;
        final List<String> names;
        final Map<String, float[]> residual;

        Encoded(UploadCodec codec, List<Codec.Tensor> tensors, List<String> names, Map<String, float[]> residual) {
            this.codec = codec;
            this.tensors = tensors;
            this.names = names;
            this.residual = residual;
        }

        /** Keeps this upload's residual (error feedback only): the server accepted it. */
        void commit(Path residualFile) {
            codec.commit(this, residualFile);
        }
    }

    /** The residual file of a model file. */
    static Path residualFile(String modelPath) {
        return Path.of(modelPath + ".ef_residual");
    }

    /**
     * Encodes the upload of iteration {@code iteration}: {@code upload} = w¹ × D in {@code names} order,
     * {@code received} = w⁰ (as the device holds it), {@code residualFile} read with error feedback.
     */
    Encoded encode(int iteration, List<String> names, Map<String, float[]> upload, Map<String, float[]> received,
                   int dataSize, Path residualFile, Logger log) {
        float d = dataSize;
        Map<String, float[]> residual = errorFeedback ? readResidual(residualFile, upload, log) : Map.of();
        Map<String, float[]> p = new LinkedHashMap<>();
        for (String n : names) {
            float[] w1 = upload.get(n);
            float[] w0 = received.get(n);
            if (w0 == null || w0.length != w1.length) {
                throw new IllegalStateException("the received model has no weight " + n + " of " + w1.length
                        + " values to take the difference from");
            }
            float[] e = residual.get(n);
            float[] out = new float[w1.length];
            for (int i = 0; i < out.length; i++) {
                out[i] = w1[i] - w0[i] * d;
                if (e != null) {
                    out[i] += d * e[i];
                }
            }
            p.put(n, out);
        }
        Codec.Upload enc = Codec.encodeUpload(p, names, iteration, rate);
        Map<String, float[]> next = new LinkedHashMap<>();
        if (errorFeedback) {
            for (String n : names) {
                float[] pn = p.get(n);
                float[] sent = enc.decoded.get(n);
                float[] e = new float[pn.length];
                for (int i = 0; i < e.length; i++) {
                    e[i] = (pn[i] - sent[i]) / d;
                }
                next.put(n, e);
            }
        }
        return new Encoded(this, enc.tensors, names, next);
    }

    /** Keeps the residual of an accepted upload (error feedback only), replacing the file atomically. */
    void commit(Encoded e, Path residualFile) {
        if (!errorFeedback || e == null) {
            return;
        }
        WeightsFile.write(residualFile, MAGIC, e.residual, false);
    }

    /** The residual beside the model (empty when absent or not of this model's weights). */
    static Map<String, float[]> readResidual(Path file, Map<String, float[]> like, Logger log) {
        if (!Files.exists(file)) {
            return Map.of();
        }
        Map<String, float[]> out;
        try {
            out = WeightsFile.read(file, MAGIC);
        } catch (IOException | RuntimeException ex) {
            log.warning("[updateModel] the error-feedback residual " + file + " cannot be read (" + ex
                    + "); starting from none");
            return Map.of();
        }
        for (Map.Entry<String, float[]> e : out.entrySet()) {
            float[] w = like.get(e.getKey());
            if (w == null || w.length != e.getValue().length) {
                log.warning("[updateModel] the error-feedback residual " + file + " is not of this model's weights ("
                        + e.getKey() + "); starting from none");
                return Map.of();
            }
        }
        return out;
    }
}
