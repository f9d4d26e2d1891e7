package com.mindspore.flclient.compress;

import com.mindspore.flclient.runtime.schema.CompressionParameters;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Update compression on the device: MindSpore Federated's DIFF_SPARSE_QUANT upload and QUANT download,
 * bit for bit as the server's {@code pyflclient.wire.compression} (whose docstring states the maths; the
 * constants are schema/compression.json's, generated into {@link CompressionParameters}).
 *
 * <p>The mask of n entries, rate r, seed s: k = max(1, floor(n · r)) kept; x_0 = (s mod (M − 1)) + 1,
 * x_{t+1} = a · x_t mod M in 64-bit integers, u_t = x_{t+1} / M; Fisher–Yates over p = (0..n−1) swaps
 * p[i], p[i + floor(u_i · (n − i))]; entry t is kept iff p[t] &lt; k.
 *
 * <p>The quantisation of a float tensor (float arithmetic, each step rounded): σ = (hi − lo) / L + ε,
 * q = clamp(floor((double) ((x − lo) / σ) + 0.5), 0, L) − o; dequantised (q + o) · σ + lo.
 */
public final class Codec {
    private static final long A = CompressionParameters.MASK_MULTIPLIER;
    private static final long M = CompressionParameters.MASK_MODULUS;
    private static final float LEVELS = CompressionParameters.QUANT_LEVELS;
    private static final int OFFSET = CompressionParameters.QUANT_OFFSET;
    private static final float EPS = CompressionParameters.QUANT_SCALE_EPSILON;

    private Codec() {
    }

    /** One CompressFeatureMap: a tensor's quantised values and its range. */
    public static final class Tensor {
        public final String name;
        public final byte[] data;
        public final float min;
        public final float max;

        public Tensor(String name, byte[] data, float min, float max) {
            this.name = name;
            this.data = data;
            this.min = min;
            this.max = max;
        }
    }

    /** An encoded upload and, per tensor, what the server will decode (error feedback subtracts it). */
    public static final class Upload {
        public final List<Tensor> tensors;
        public final Map<String, float[]> decoded;

        Upload(List<Tensor> tensors, Map<String, float[]> decoded) {
            this.tensors = tensors;
            this.decoded = decoded;
        }
    }

    /** k = max(1, floor(n · rate)) with rate the wire's float (0 for n = 0). */
    public static long retainedCount(long n, float rate) {
        if (n <= 0) {
            return 0;
        }
        return Math.max(1L, (long) Math.floor((double) n * (double) rate));
    }

    /** The mask of {@code n} entries; the same on every device of an iteration and on the server. */
    public static boolean[] mask(long seed, float rate, int n) {
        if (seed < 0) {
            throw new IllegalArgumentException("the mask's seed (the iteration) must be >= 0, got " + seed);
        }
        long k = retainedCount(n, rate);
        int[] perm = new int[n];
        for (int i = 0; i < n; i++) {
            perm[i] = i;
        }
        long x = (seed % (M - 1)) + 1;
        for (int i = 0; i < n; i++) {
            x = (x * A) % M;
            int j = i + (int) (((double) x / (double) M) * (double) (n - i));
            int t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        boolean[] out = new boolean[n];
        for (int i = 0; i < n; i++) {
            out[i] = perm[i] < k;
        }
        return out;
    }

    private static float scale(float lo, float hi) {
        return (hi - lo) / LEVELS + EPS;
    }

    /** Quantises {@code x[0..len)} to a tensor named {@code name}; an empty one has range [0, 0]. */
    public static Tensor quantise(String name, float[] x, int len) {
        if (len == 0) {
            return new Tensor(name, new byte[0], 0f, 0f);
        }
        float lo = Float.POSITIVE_INFINITY;
        float hi = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < len; i++) {
            float v = x[i];
            if (!Float.isFinite(v)) {
                throw new IllegalArgumentException("cannot quantise " + name + ": it holds a non-finite value");
            }
            lo = Math.min(lo, v);
            hi = Math.max(hi, v);
        }
        float s = scale(lo, hi);
        byte[] q = new byte[len];
        for (int i = 0; i < len; i++) {
            float v = (x[i] - lo) / s;
            double r = Math.floor((double) v + 0.5);
            r = Math.max(0.0, Math.min((double) LEVELS, r));
            q[i] = (byte) ((int) r - OFFSET);
        }
        return new Tensor(name, q, lo, hi);
    }

    /** (q + o) · σ + lo, in float. */
    public static float[] dequantise(byte[] q, float lo, float hi) {
        float s = scale(lo, hi);
        float[] out = new float[q.length];
        for (int i = 0; i < q.length; i++) {
            out[i] = (float) (q[i] + OFFSET) * s + lo;
        }
        return out;
    }

    /**
     * DIFF_SPARSE_QUANT of {@code update} (the difference d, or p = d + D · e with error feedback), its
     * tensors flattened in {@code names} order under the mask of {@code seed} (the iteration) and {@code rate}.
     */
    public static Upload encodeUpload(Map<String, float[]> update, List<String> names, long seed, float rate) {
        long total = 0;
        for (String n : names) {
            total += update.get(n).length;
        }
        if (total > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("the model has more than 2^31 - 1 weights");
        }
        boolean[] m = mask(seed, rate, (int) total);
        List<Tensor> tensors = new ArrayList<>(names.size());
        Map<String, float[]> decoded = new LinkedHashMap<>();
        int at = 0;
        for (String n : names) {
            float[] f = update.get(n);
            float[] kept = new float[f.length];
            int len = 0;
            for (int i = 0; i < f.length; i++) {
                if (m[at + i]) {
                    kept[len++] = f[i];
                }
            }
            Tensor t = quantise(n, kept, len);
            float[] back = dequantise(t.data, t.min, t.max);
            float[] rebuilt = new float[f.length];
            int b = 0;
            for (int i = 0; i < f.length; i++) {
                if (m[at + i]) {
                    rebuilt[i] = back[b++];
                }
            }
            at += f.length;
            tensors.add(t);
            decoded.put(n, rebuilt);
        }
        return new Upload(tensors, decoded);
    }

    /** QUANT: each tensor of the model quantised between its min and max, in the map's order. */
    public static List<Tensor> encodeModel(Map<String, float[]> model) {
        List<Tensor> out = new ArrayList<>(model.size());
        for (Map.Entry<String, float[]> e : model.entrySet()) {
            out.add(quantise(e.getKey(), e.getValue(), e.getValue().length));
        }
        return out;
    }

    /**
     * The float model of a QUANT download; refuses (IllegalArgumentException, one line) a tensor the model
     * does not have, of the wrong size, or with a non-finite or inverted range.
     */
    public static Map<String, float[]> decodeModel(List<Tensor> tensors, Map<String, Integer> sizes) {
        Map<String, float[]> out = new LinkedHashMap<>();
        for (Tensor t : tensors) {
            Integer size = sizes.get(t.name);
            if (size == null) {
                throw new IllegalArgumentException("compress_feature_map names " + t.name
                        + ", which the model does not have");
            }
            if (t.data.length != size) {
                throw new IllegalArgumentException("compress_feature_map " + t.name + " holds " + t.data.length
                        + " values for " + size + " weights");
            }
            if (!Float.isFinite(t.min) || !Float.isFinite(t.max) || t.min > t.max) {
                throw new IllegalArgumentException("compress_feature_map " + t.name + ": min_val/max_val "
                        + t.min + "/" + t.max + " must be finite with min <= max");
            }
            out.put(t.name, dequantise(t.data, t.min, t.max));
        }
        return out;
    }
}
