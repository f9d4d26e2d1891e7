package com.mindspore.flclient;

import com.mindspore.flclient.runtime.GradientHook;
import com.mindspore.flclient.runtime.ModelFile;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The device kind "scaffold" (Karimireddy et al., "SCAFFOLD: Stochastic Controlled Averaging for
 * Federated Learning", ICML 2020, Algorithm 1 with option II). With x the received global model,
 * c the server's control variate (ResponseFLJob.control_variate) and c_i this device's:
 * <ul>
 *   <li>every local step uses {@code g(y) + c − c_i} as its gradient: the gradient hook adds {@code c − c_i}
 *       and the model's own optimizer takes the step;</li>
 *   <li>after the K local steps {@code c_i⁺ = (1/K) Σ_k g(y_k)}, the mean of the raw (uncorrected) gradients
 *       of the local steps;</li>
 *   <li>the upload carries {@code Δc_i = c_i⁺ − c_i} in RequestUpdateModel.control_variate (not × data_size).</li>
 * </ul>
 * Under plain SGD ({@code y_{k+1} = y_k − lr (g(y_k) + c − c_i)}) this is exactly option II's
 * {@code c_i − c + (x − y_K)/(K lr)}. The LeNet model trains with Momentum 0.9, where option II's formula
 * divides a step (1 − m)⁻¹ ≈ 10× longer than K lr gradients by K lr and mistakes momentum for drift: c_i
 * grows every round and the job diverges. The mean raw gradient is what option II estimates, for any
 * optimizer, at the cost of one float64 sum per weight while training.
 * c_i lives in a file beside the model ({@link #statePath}): written when the server accepted the
 * upload ({@link #commit}), read at the next round, so a restarted device keeps it; no file is
 * c_i = 0. A weight the server sends no c for has c = 0.
 */
final class ScaffoldTraining implements LocalTraining {
    static final String DEVICE = "scaffold";
    private static final int MAGIC = 0x53434631; // "SCF1"

    private final FLParameter p;

    ScaffoldTraining(FLParameter p) {
        this.p = p;
    }

    @Override
    public String device() {
        return DEVICE;
    }

    /** This device's control variate c_i: {@code trainModelPath + ".scaffold"}. */
    static Path statePath(FLParameter p) {
        return Path.of(p.getTrainModelPath() + ".scaffold");
    }

    /** c_i⁺ of a round whose upload is not accepted yet. */
    static Path pendingPath(FLParameter p) {
        return Path.of(p.getTrainModelPath() + ".scaffold.trained");
    }

    /** The server accepted the upload: c_i⁺ becomes c_i (atomically; nothing when the round was not Scaffold's). */
    static void commit(FLParameter p) {
        if (p.getTrainModelPath() == null || !Files.exists(pendingPath(p))) {
            return;
        }
        try {
            ModelFile.write(Files.readAllBytes(pendingPath(p)), statePath(p), true);
            Files.deleteIfExists(pendingPath(p));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot keep Scaffold's control variate in " + statePath(p) + ": "
                    + e.getMessage(), e);
        }
    }

    /** Forgets the c_i⁺ of a round that ended without an accepted upload. */
    static void drop(FLParameter p) {
        if (p.getTrainModelPath() == null) {
            return;
        }
        try {
            Files.deleteIfExists(pendingPath(p));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete " + pendingPath(p) + ": " + e.getMessage(), e);
        }
    }

    @Override
    public Round begin(Plan plan, LocalModel model) {
        Map<String, float[]> x = new LinkedHashMap<>();
        Map<String, float[]> ci = read(statePath(p));
        Map<String, float[]> correction = new HashMap<>();
        for (String name : model.optimizedWeights()) {
            float[] w = model.weight(name);
            x.put(name, w);
            float[] own = ci.computeIfAbsent(name, k -> new float[w.length]);
            float[] c = plan.controlVariate.get(name);
            if (own.length != w.length || (c != null && c.length != w.length)) {
                throw new IllegalArgumentException("Scaffold: the control variate of " + name + " has "
                        + (own.length != w.length ? own.length + " values in " + statePath(p)
                        : c.length + " values from the server") + ", the weight " + w.length);
            }
            float[] d = new float[w.length];
            for (int i = 0; i < d.length; i++) {
                d[i] = (c == null ? 0f : c[i]) - own[i];
            }
            correction.put(name, d);
        }
        Correction hook = new Correction(correction, model.optimizedWeights().get(0));
        model.setGradientHook(hook);
        return (m, uploaded) -> {
            m.setGradientHook(null);
            return end(x, ci, hook, uploaded);
        };
    }

    /** c_i⁺ = (1/K) Σ_k g(y_k), kept pending until the upload is accepted; returns Δc_i of the uploaded weights. */
    private Map<String, float[]> end(Map<String, float[]> x, Map<String, float[]> ci, Correction hook,
                                     Collection<String> uploaded) {
        long steps = hook.steps;
        if (steps < 1) {
            throw new IllegalStateException("Scaffold: no local step was taken, so there is no control variate");
        }
        Map<String, float[]> next = new LinkedHashMap<>();
        Map<String, float[]> delta = new LinkedHashMap<>();
        for (String name : x.keySet()) {
            double[] sum = hook.rawSum.get(name);
            float[] own = ci.get(name);
            float[] plus = new float[own.length];
            float[] d = new float[own.length];
            for (int i = 0; i < own.length; i++) {
                plus[i] = (float) (sum[i] / steps);
                d[i] = (float) ((double) plus[i] - own[i]);
            }
            next.put(name, plus);
            if (uploaded.contains(name)) {
                delta.put(name, d);
            }
        }
        WeightsFile.write(pendingPath(p), MAGIC, next, false);
        return delta;
    }

    /**
     * The gradient correction {@code c − c_i} of every optimized weight; sums the raw gradients (float64) and
     * counts the local steps K. Allocates nothing while training.
     */
    static final class Correction implements GradientHook {
        private final Map<String, float[]> correction;
        private final Map<String, double[]> rawSum = new HashMap<>();
        private final String first;
        long steps;

        Correction(Map<String, float[]> correction, String first) {
            this.correction = correction;
            this.first = first;
            correction.forEach((name, d) -> rawSum.put(name, new double[d.length]));
        }

        @Override
        public void onGradient(String weight, float[] values, float[] gradient) {
            if (weight.equals(first)) {
                steps++;
            }
            float[] d = correction.get(weight);
            double[] sum = rawSum.get(weight);
            for (int i = 0; i < gradient.length; i++) {
                sum[i] += gradient[i];
                gradient[i] += d[i];
            }
        }
    }

    /** The file's weights by name (empty when there is no file: c_i = 0). */
    static Map<String, float[]> read(Path file) {
        try {
            return WeightsFile.read(file, MAGIC);
        } catch (IOException e) {
            throw new UncheckedIOException("Scaffold: " + file + " is not a control-variate file of this client ("
                    + e.getMessage() + "); remove it to start this device's c_i from zero", e);
        }
    }
}
