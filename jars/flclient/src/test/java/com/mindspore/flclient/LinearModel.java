package com.mindspore.flclient;

import com.mindspore.flclient.cases.TrainableModel;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * A softmax-regression model in plain Java for the round-loop tests: small, exact and
 * deterministic, so the tests can recompute what the client must upload. Its file holds
 * features, classes, batch, lr and the two weights {@code fc.weight} (classes × features)
 * and {@code fc.bias}.
 */
public final class LinearModel implements TrainableModel {
    /** Models loaded and not yet closed, in this JVM (tests run one at a time). */
    static final java.util.concurrent.atomic.AtomicInteger OPEN = new java.util.concurrent.atomic.AtomicInteger();
    /** Training steps running right now, and the most seen at once. */
    static final java.util.concurrent.atomic.AtomicInteger TRAINING = new java.util.concurrent.atomic.AtomicInteger();
    static final java.util.concurrent.atomic.AtomicInteger MAX_TRAINING = new java.util.concurrent.atomic.AtomicInteger();

    final int features;
    final int classes;
    final int batch;
    float lr;
    final float[] weight;
    final float[] bias;

    LinearModel(int features, int classes, int batch, float lr) {
        this.features = features;
        this.classes = classes;
        this.batch = batch;
        this.lr = lr;
        this.weight = new float[classes * features];
        this.bias = new float[classes];
        for (int i = 0; i < weight.length; i++) {
            weight[i] = (float) Math.sin(i + 1) * 0.1f;
        }
    }

    public static LinearModel load(Path p) {
        try (DataInputStream in = new DataInputStream(Files.newInputStream(p))) {
            LinearModel m = new LinearModel(in.readInt(), in.readInt(), in.readInt(), in.readFloat());
            OPEN.incrementAndGet();
            for (int i = 0; i < m.weight.length; i++) {
                m.weight[i] = in.readFloat();
            }
            for (int i = 0; i < m.bias.length; i++) {
                m.bias[i] = in.readFloat();
            }
            return m;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public void save(Path out) {
        try {
            Path tmp = out.resolveSibling(out.getFileName() + ".tmp");
            try (DataOutputStream o = new DataOutputStream(Files.newOutputStream(tmp))) {
                o.writeInt(features);
                o.writeInt(classes);
                o.writeInt(batch);
                o.writeFloat(lr);
                for (float v : weight) {
                    o.writeFloat(v);
                }
                for (float v : bias) {
                    o.writeFloat(v);
                }
            }
            Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public List<String> weightNames() {
        return List.of("fc.weight", "fc.bias");
    }

    private float[] ref(String name) {
        switch (name) {
            case "fc.weight":
                return weight;
            case "fc.bias":
                return bias;
            default:
                throw new IllegalArgumentException("unknown weight " + name);
        }
    }

    @Override
    public float[] getWeight(String name) {
        return ref(name).clone();
    }

    @Override
    public void setWeight(String name, float[] values) {
        float[] w = ref(name);
        if (w.length != values.length) {
            throw new IllegalArgumentException(name + ": " + values.length + " values for " + w.length);
        }
        System.arraycopy(values, 0, w, 0, w.length);
    }

    @Override
    public int[] inputShape() {
        return new int[] {batch, features};
    }

    @Override
    public int numClasses() {
        return classes;
    }

    @Override
    public void setLearningRate(float lr) {
        this.lr = lr;
    }

    private float[] probs(float[] data, int s) {
        float[] z = new float[classes];
        float max = Float.NEGATIVE_INFINITY;
        for (int c = 0; c < classes; c++) {
            float acc = bias[c];
            for (int f = 0; f < features; f++) {
                acc += weight[c * features + f] * data[s * features + f];
            }
            z[c] = acc;
            max = Math.max(max, acc);
        }
        float sum = 0;
        for (int c = 0; c < classes; c++) {
            z[c] = (float) Math.exp(z[c] - max);
            sum += z[c];
        }
        for (int c = 0; c < classes; c++) {
            z[c] /= sum;
        }
        return z;
    }

    @Override
    public float trainStep(float[] data, int[] labels) {
        MAX_TRAINING.accumulateAndGet(TRAINING.incrementAndGet(), Math::max);
        try {
            return step(data, labels);
        } finally {
            TRAINING.decrementAndGet();
        }
    }

    /** The gradient hook of the strategy tests (null: none). */
    private com.mindspore.flclient.runtime.GradientHook hook;

    @Override
    public void setGradientHook(com.mindspore.flclient.runtime.GradientHook hook) {
        this.hook = hook;
    }

    @Override
    public float learningRate() {
        return lr;
    }

    /** The batch's mean cross-entropy at the current weights, nothing updated. */
    @Override
    public float loss(float[] data, int[] labels) {
        double loss = 0;
        for (int s = 0; s < batch; s++) {
            loss -= Math.log(Math.max(probs(data, s)[labels[s]], 1e-12f));
        }
        return (float) (loss / batch);
    }

    private float step(float[] data, int[] labels) {
        float[] gw = new float[weight.length];
        float[] gb = new float[bias.length];
        double loss = 0;
        for (int s = 0; s < batch; s++) {
            float[] p = probs(data, s);
            loss -= Math.log(Math.max(p[labels[s]], 1e-12f));
            for (int c = 0; c < classes; c++) {
                float g = (p[c] - (c == labels[s] ? 1f : 0f)) / batch;
                gb[c] += g;
                for (int f = 0; f < features; f++) {
                    gw[c * features + f] += g * data[s * features + f];
                }
            }
        }
        if (hook != null) {
            hook.onGradient("fc.weight", weight, gw);
            hook.onGradient("fc.bias", bias, gb);
        }
        for (int i = 0; i < weight.length; i++) {
            weight[i] -= lr * gw[i];
        }
        for (int i = 0; i < bias.length; i++) {
            bias[i] -= lr * gb[i];
        }
        return (float) (loss / batch);
    }

    @Override
    public int[] predict(float[] data) {
        int[] out = new int[batch];
        for (int s = 0; s < batch; s++) {
            float[] p = probs(data, s);
            int best = 0;
            for (int c = 1; c < classes; c++) {
                if (p[c] > p[best]) {
                    best = c;
                }
            }
            out[s] = best;
        }
        return out;
    }

    @Override
    public void close() {
        OPEN.decrementAndGet();
    }
}
