package com.mindspore.flclient.runtime;

import com.mindspore.flclient.runtime.graph.Value;
import com.mindspore.flclient.runtime.schema.Model;
import com.mindspore.flclient.runtime.schema.TensorRole;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@code .ms} device model ready to train, evaluate and predict in pure Java.
 *
 * <p>{@link #load} verifies the whole file and binds every node to a kernel with its buffers, so
 * {@link #trainStep} and {@link #logits} allocate nothing beyond their returned arrays. Weights are
 * exchanged by name as {@code float[]} (what the FL client sends and receives), and {@link #save}
 * writes the model, weights and optimizer state, atomically. One session per thread; sessions
 * share no mutable state, so many can train at once in one JVM.
 */
public final class TrainSession implements AutoCloseable {
    private final Program program;
    private final Map<String, Value> parameters = new LinkedHashMap<>();
    private final List<String> weightNames;
    private final int batch;
    private final int classes;
    private boolean closed;

    private TrainSession(Program program) {
        this.program = program;
        List<String> trainable = new ArrayList<>();
        for (Value v : program.values) {
            if (v.role == TensorRole.Parameter && v.isFloat()) {
                parameters.put(v.name, v);
                if (v.trainable) {
                    trainable.add(v.name);
                }
            }
        }
        this.weightNames = Collections.unmodifiableList(trainable);
        this.batch = program.data.shape[0];
        this.classes = program.logits.shape[1];
    }

    /** Loads and verifies a .ms file; {@link ModelFormatException} names the file and the problem. */
    public static TrainSession load(Path msFile) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(msFile);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read model " + msFile + ": " + e.getMessage(), e);
        }
        return load(bytes, msFile.toString());
    }

    public static TrainSession load(byte[] msBytes, String nameForErrors) {
        return new TrainSession(Program.load(msBytes, nameForErrors));
    }

    /**
     * {@link #load(Path)} into {@code spare}'s program when the file is the same graph with other
     * Parameter data ({@code spare} a closed session, e.g. the previous client's model on this
     * thread): the file is read and verified as by {@link #load(Path)}, its weights, optimizer state
     * and step counters are copied into the built program, and nothing is built or allocated
     * (a LeNet program's kernels, buffers and the C2 code of building them). Otherwise, or when
     * {@code spare} is null or still open, a fresh load. The result trains, evaluates and saves
     * bit for bit as a fresh load of the file; {@code spare} stays closed.
     */
    public static TrainSession load(Path msFile, TrainSession spare) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(msFile);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read model " + msFile + ": " + e.getMessage(), e);
        }
        return load(bytes, msFile.toString(), spare);
    }

    /** {@link #load(Path, TrainSession)} of bytes. */
    public static TrainSession load(byte[] msBytes, String nameForErrors, TrainSession spare) {
        Model m = Program.verified(msBytes, nameForErrors);
        if (spare != null && spare.closed && spare.program.sameGraph(m)) {
            try {
                spare.program.reload(m, nameForErrors);
            } catch (ModelFormatException e) {
                throw new ModelFormatException(nameForErrors + ": " + e.getMessage(), e);
            }
            return new TrainSession(spare.program);
        }
        return new TrainSession(Program.load(m, nameForErrors));
    }

    /** Whether this session's program came from another session by {@link #load(Path, TrainSession)} (for tests). */
    public boolean sharesProgramWith(TrainSession other) {
        return other != null && other.program == program;
    }

    /** Trainable weights (the ones the FL server aggregates) in file order. */
    public List<String> weightNames() {
        return weightNames;
    }

    private Value parameter(String name) {
        Value v = parameters.get(name);
        if (v == null) {
            throw new IllegalArgumentException("model " + program.fileName + " has no weight '" + name
                    + "'; weights: " + weightNames);
        }
        return v;
    }

    /** A copy of a weight (any float Parameter, including optimizer state such as {@code moments.fc1.bias}). */
    public float[] getWeight(String name) {
        open();
        return parameter(name).floatData().clone();
    }

    public void setWeight(String name, float[] values) {
        open();
        Value v = parameter(name);
        if (values == null || values.length != v.numel) {
            throw new IllegalArgumentException("weight '" + name + "' " + java.util.Arrays.toString(v.shape) + " needs "
                    + v.numel + " values, got " + (values == null ? "null" : values.length));
        }
        System.arraycopy(values, 0, v.floatData(), 0, v.numel);
    }

    public int[] weightShape(String name) {
        return parameter(name).shape.clone();
    }

    /** Shape of the data input, batch first (NCHW for images). */
    public int[] inputShape() {
        return program.data.shape.clone();
    }

    public int batchSize() {
        return batch;
    }

    public int numClasses() {
        return classes;
    }

    public void setLearningRate(float lr) {
        open();
        if (!Float.isFinite(lr) || lr < 0) {
            throw new IllegalArgumentException("learning rate must be a finite number ≥ 0, got " + lr);
        }
        learningRate()[0] = lr;
    }

    public float getLearningRate() {
        return learningRate()[0];
    }

    private float[] learningRate() {
        if (program.learningRate == null) {
            throw new IllegalStateException("model " + program.fileName + " marks no learning_rate tensor");
        }
        return program.learningRate.floatData();
    }

    /** One training step on one batch (batchSize() samples, layout of inputShape()); returns the loss. */
    public float trainStep(float[] data, int[] labels) {
        feedLabelled(data, labels, "trainStep");
        return program.runTrain();
    }

    /**
     * The mean loss of one batch at the current weights, forward passes only: no weight, optimizer
     * state or step counter changes (qffl's and early stop's upload_loss at the received model).
     */
    public float loss(float[] data, int[] labels) {
        feedLabelled(data, labels, "loss");
        return program.runLoss();
    }

    /**
     * Installs {@code hook} into every later {@link #trainStep}: it sees each optimized weight and
     * its gradient between backward and the optimizer op (see {@link GradientHook}); null removes
     * it. Without a hook the step is the plain interpreter loop, unchanged.
     */
    public void setGradientHook(GradientHook hook) {
        open();
        if (hook != null && !program.trainable()) {
            throw new IllegalStateException("model " + program.fileName + " cannot train: no gradient to hook");
        }
        program.setGradientHook(hook);
    }

    /** The weights that an optimizer op updates in a step (the ones a {@link GradientHook} sees). */
    public List<String> optimizedWeights() {
        return program.optimizedWeights();
    }

    private void feedLabelled(float[] data, int[] labels, String what) {
        open();
        if (!program.trainable()) {
            throw new IllegalStateException("model " + program.fileName + " has no labels and loss: it was converted "
                    + "for inference only (--trainModel=false); convert the train MindIR with --trainModel=true to train");
        }
        feed(data);
        if (labels == null || labels.length != batch) {
            throw new IllegalArgumentException(what + " needs " + batch + " labels, got "
                    + (labels == null ? "null" : labels.length));
        }
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] < 0 || labels[i] >= classes) {
                throw new IllegalArgumentException("label " + labels[i] + " of sample " + i + " is outside [0, " + classes + ")");
            }
        }
        System.arraycopy(labels, 0, program.labels.intData(), 0, batch);
    }

    private void feed(float[] data) {
        float[] in = program.data.floatData();
        if (data == null || data.length != in.length) {
            throw new IllegalArgumentException("a batch is " + in.length + " floats " + java.util.Arrays.toString(program.data.shape)
                    + ", got " + (data == null ? "null" : data.length));
        }
        System.arraycopy(data, 0, in, 0, in.length);
    }

    /** Forward pass of one batch: batchSize()·numClasses() logits, sample-major. */
    public float[] logits(float[] data) {
        open();
        feed(data);
        program.runInference();
        return program.logits.floatData().clone();
    }

    /** Arg-max of the logits per sample of one batch. */
    public int[] predict(float[] data) {
        float[] z = logits(data);
        int[] out = new int[batch];
        for (int n = 0; n < batch; n++) {
            int best = 0;
            for (int k = 1; k < classes; k++) {
                if (z[n * classes + k] > z[n * classes + best]) {
                    best = k;
                }
            }
            out[n] = best;
        }
        return out;
    }

    /** Fraction of one batch whose arg-max prediction equals its label (evaluation without training). */
    public float accuracy(float[] data, int[] labels) {
        if (labels == null || labels.length != batch) {
            throw new IllegalArgumentException("accuracy needs " + batch + " labels, got "
                    + (labels == null ? "null" : labels.length));
        }
        int[] predicted = predict(data);
        int correct = 0;
        for (int i = 0; i < batch; i++) {
            if (predicted[i] == labels[i]) {
                correct++;
            }
        }
        return (float) correct / batch;
    }

    /** The whole model (graph, weights, optimizer state) as .ms, written atomically (temp + rename). */
    public void save(Path out) {
        save(out, true);
    }

    /** {@link #save}; without {@code durable} the file is not forced to disk (atomic, but a power loss may lose it). */
    public void save(Path out, boolean durable) {
        open();
        program.save(out, durable);
    }

    /** The model as .ms bytes (what {@link #save} writes). */
    public byte[] toBytes() {
        open();
        return program.toBytes();
    }

    /** Op types in execution order (for {@code RuntimeTool info}). */
    public List<String> opTypes() {
        return List.of(program.opTypes);
    }

    /** Wall time per node over {@code steps} training steps on the current input (tuning aid). */
    public Map<String, Long> profile(int steps) {
        open();
        long[] ns = program.profileTrain(steps);
        Map<String, Long> out = new LinkedHashMap<>();
        for (int k = 0; k < ns.length; k++) {
            out.put(program.nodeNames[k] + " (" + program.opTypes[k] + ")", ns[k]);
        }
        return out;
    }

    private void open() {
        if (closed) {
            throw new IllegalStateException("session of " + program.fileName + " is closed");
        }
    }

    @Override
    public void close() {
        closed = true;
    }
}
