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
 *   <li>every local step {@code y ← y − lr (g(y) + c − c_i)}: the gradient hook adds {@code c − c_i};</li>
 *   <li>after the K local steps {@code c_i⁺ = c_i − c + (x − y) / (K lr)};</li>
 *   <li>the upload carries {@code Δc_i = c_i⁺ − c_i} in RequestUpdateModel.control_variate (not × data_size).</li>
 * </ul>
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
            return end(plan, m, x, ci, hook.steps, uploaded);
        };
    }

    /** c_i⁺ = c_i − c + (x − y)/(K lr), kept pending until the upload is accepted; returns Δc_i of the uploaded weights. */
    private Map<String, float[]> end(Plan plan, LocalModel model, Map<String, float[]> x, Map<String, float[]> ci,
                                     long steps, Collection<String> uploaded) {
        double lr = model.learningRate();
        if (steps < 1 || !(lr > 0)) {
            throw new IllegalStateException("Scaffold: " + steps + " local step(s) at learning rate " + lr
                    + " give no control variate");
        }
        Map<String, float[]> next = new LinkedHashMap<>();
        Map<String, float[]> delta = new LinkedHashMap<>();
        for (Map.Entry<String, float[]> e : x.entrySet()) {
            String name = e.getKey();
            float[] xs = e.getValue();
            float[] y = model.weight(name);
            float[] own = ci.get(name);
            float[] c = plan.controlVariate.get(name);
            float[] plus = new float[xs.length];
            float[] d = new float[xs.length];
            for (int i = 0; i < xs.length; i++) {
                double v = (double) own[i] - (c == null ? 0.0 : c[i]) + ((double) xs[i] - y[i]) / (steps * lr);
                plus[i] = (float) v;
                d[i] = (float) (v - own[i]);
            }
            next.put(name, plus);
            if (uploaded.contains(name)) {
                delta.put(name, d);
            }
        }
        WeightsFile.write(pendingPath(p), MAGIC, next, false);
        return delta;
    }

    /** The gradient correction {@code c − c_i} of every optimized weight; counts the local steps K. Allocates nothing. */
    static final class Correction implements GradientHook {
        private final Map<String, float[]> correction;
        private final String first;
        long steps;

        Correction(Map<String, float[]> correction, String first) {
            this.correction = correction;
            this.first = first;
        }

        @Override
        public void onGradient(String weight, float[] values, float[] gradient) {
            if (weight.equals(first)) {
                steps++;
            }
            float[] d = correction.get(weight);
            for (int i = 0; i < gradient.length; i++) {
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
