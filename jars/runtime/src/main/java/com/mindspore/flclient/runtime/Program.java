package com.mindspore.flclient.runtime;

import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.ModelReader;
import com.mindspore.flclient.runtime.graph.ModelWriter;
import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.graph.Value;
import com.mindspore.flclient.runtime.ops.OpRegistry;
import com.mindspore.flclient.runtime.schema.DataType;
import com.mindspore.flclient.runtime.schema.Model;
import com.mindspore.flclient.runtime.schema.Node;
import com.mindspore.flclient.runtime.schema.OpTable;
import com.mindspore.flclient.runtime.schema.Phase;
import com.mindspore.flclient.runtime.schema.Tensor;
import com.mindspore.flclient.runtime.schema.TensorRole;

import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * A loaded, verified {@code .ms} model bound to storage: every tensor as a {@link Value}, every
 * node as a {@link Kernel} in file (execution) order, and the subset of kernels that computes the
 * logits for inference. Training is the interpreter loop over all kernels; nothing is allocated
 * after load. This is the one class that joins the two layers below it: the graph's data
 * ({@link ModelReader}, {@link NodeSpec}) and the op set ({@link OpRegistry}).
 *
 * <p>Loading checks, in order: the FlatBuffers structure and the tensors (names, shapes, types,
 * data sizes) in {@link ModelReader}, the nodes (known op names, tensor indices, attributes), the
 * graph's marked tensors, and finally each op's own shape rules as its kernel is built. Every
 * failure is a {@link ModelFormatException} that names the file.
 */
final class Program {
    /** The file's name in messages; another file's after {@link #reload}. */
    String fileName;
    final String modelName;
    final String producer;
    final int formatVersion;
    final Value[] values;
    final String[] nodeNames;
    final String[] opTypes;
    private final Kernel[] trainKernels;
    private final Kernel[] inferKernels;
    /** The forward nodes that the loss depends on (a loss without training), empty for an inference model. */
    private final Kernel[] lossKernels;
    /**
     * Per train kernel: the weight and the gradient its optimizer op reads ("var" and "grad" of
     * schema/ops.json), null for the other kernels; where {@link #gradientHook} runs.
     */
    private final Value[] hookWeight;
    private final Value[] hookGradient;
    /** Called before each optimizer op with its weight and gradient (null: none, the plain loop). */
    private GradientHook gradientHook;
    final Value data;
    final Value labels;
    final Value logits;
    final Value loss;
    final Value learningRate;
    /** The original node tables, re-emitted unchanged by {@link ModelWriter}; the reloaded file's after {@link #reload}. */
    private Model source;
    /**
     * The byte ranges [start, end) of every Parameter's float_data / int_data in {@link #source}, in
     * file order, set on the first {@link #sameGraph}: what two files of one graph may differ in.
     */
    private int[] dataRanges;

    private Program(String fileName, Model m, Value[] values, String[] nodeNames, String[] opTypes,
                    Kernel[] trainKernels, Kernel[] inferKernels, Kernel[] lossKernels, Value[] hookWeight,
                    Value[] hookGradient) {
        this.fileName = fileName;
        this.source = m;
        this.modelName = m.name();
        this.producer = m.producer();
        this.formatVersion = m.formatVersion();
        this.values = values;
        this.nodeNames = nodeNames;
        this.opTypes = opTypes;
        this.trainKernels = trainKernels;
        this.inferKernels = inferKernels;
        this.lossKernels = lossKernels;
        this.hookWeight = hookWeight;
        this.hookGradient = hookGradient;
        this.data = values[m.dataInput()];
        this.labels = m.labelInput() >= 0 ? values[m.labelInput()] : null;
        this.logits = values[m.logits()];
        this.loss = m.loss() >= 0 ? values[m.loss()] : null;
        this.learningRate = m.learningRate() >= 0 ? values[m.learningRate()] : null;
    }

    /** Verifies and binds a model; {@code fileName} prefixes every error message. */
    static Program load(byte[] bytes, String fileName) {
        return load(verified(bytes, fileName), fileName);
    }

    /** The root table of {@code bytes} after {@link ModelReader#verified}; errors start with {@code fileName}. */
    static Model verified(byte[] bytes, String fileName) {
        try {
            return ModelReader.verified(bytes);
        } catch (ModelFormatException e) {
            throw new ModelFormatException(fileName + ": " + e.getMessage(), e);
        }
    }

    /** Binds a model that {@link #verified} returned. */
    static Program load(Model verified, String fileName) {
        try {
            return build(verified, fileName);
        } catch (ModelFormatException e) {
            throw new ModelFormatException(fileName + ": " + e.getMessage(), e);
        }
    }

    /**
     * Whether {@code other} (verified) is this program's model up to Parameter data: the same length
     * and the same bytes outside every Parameter's float_data and int_data (tables, names, shapes,
     * nodes, attributes, Constants and the vectors' offsets and lengths). Files a session saved patch only
     * those data ranges, so every client's copy of a job's model and its trained versions agree.
     */
    boolean sameGraph(Model other) {
        byte[] a = source.getByteBuffer().array();
        byte[] b = other.getByteBuffer().array();
        if (a.length != b.length || source.getByteBuffer().arrayOffset() != 0 || other.getByteBuffer().arrayOffset() != 0) {
            return false;
        }
        if (dataRanges == null) {
            dataRanges = dataRanges(source);
        }
        int from = 0;
        for (int r = 0; r < dataRanges.length; r += 2) {
            if (!Arrays.equals(a, from, dataRanges[r], b, from, dataRanges[r])) {
                return false;
            }
            from = dataRanges[r + 1];
        }
        return Arrays.equals(a, from, a.length, b, from, b.length);
    }

    private static int[] dataRanges(Model m) {
        List<int[]> ranges = new ArrayList<>();
        Tensor t = new Tensor();
        for (int k = 0; k < m.tensorsLength(); k++) {
            m.tensors(t, k);
            if (t.role() != TensorRole.Parameter) {
                continue; // Constants must be equal: kernels may read them when they are built
            }
            for (ByteBuffer raw : new ByteBuffer[] {t.floatDataAsByteBuffer(), t.intDataAsByteBuffer()}) {
                if (raw != null && raw.remaining() > 0) {
                    ranges.add(new int[] {raw.position(), raw.position() + raw.remaining()});
                }
            }
        }
        ranges.sort((x, y) -> Integer.compare(x[0], y[0]));
        int[] out = new int[ranges.size() * 2];
        for (int r = 0; r < ranges.size(); r++) {
            out[2 * r] = ranges.get(r)[0];
            out[2 * r + 1] = ranges.get(r)[1];
        }
        return out;
    }

    /**
     * Makes this program the model of {@code other} (verified, {@link #sameGraph}): every Parameter
     * takes the file's data (weights, optimizer state, step counters, learning rate),
     * the gradient hook is removed, and saving writes {@code other}'s bytes with the current data.
     * Nothing is built or allocated: the kernels keep their buffers, which a step writes before it
     * reads them, so a reloaded program computes what a fresh load of the file computes.
     */
    void reload(Model other, String otherName) {
        ModelReader.refill(values, other);
        source = other;
        fileName = otherName;
        gradientHook = null;
    }

    private static ModelFormatException bad(String msg) {
        return new ModelFormatException(msg);
    }

    private static Program build(Model m, String fileName) {
        if (m.formatVersion() != 1) {
            throw bad("format_version " + m.formatVersion() + " is not supported (this runtime reads version 1)");
        }
        Value[] values = ModelReader.tensors(m);
        int nNodes = m.nodesLength();
        if (nNodes == 0) {
            throw bad("the model has no nodes");
        }
        Set<String> unsupported = new LinkedHashSet<>();
        for (int k = 0; k < nNodes; k++) {
            String op = m.nodes(k).opType();
            if (op == null || op.isEmpty()) {
                throw bad("node " + k + " has no op_type");
            }
            if (!OpRegistry.supports(op)) {
                unsupported.add(op);
            }
        }
        if (!unsupported.isEmpty()) {
            throw bad("unsupported op" + (unsupported.size() > 1 ? "s " : " ") + String.join(", ", unsupported)
                    + " (this runtime implements: " + String.join(", ", OpRegistry.supportedOps()) + ")");
        }
        Value data = marked(m.dataInput(), "data_input", values, TensorRole.Input, DataType.Float32);
        if (data.shape.length < 1) {
            throw bad("data_input " + data.describe() + " has no batch axis");
        }
        // label_input and loss are absent (−1) in a model converted for inference only (--trainModel=false)
        if (m.labelInput() >= 0) {
            Value labels = marked(m.labelInput(), "label_input", values, TensorRole.Input, DataType.Int32);
            if (labels.shape.length != 1 || labels.shape[0] != data.shape[0]) {
                throw bad("label_input " + labels.describe() + " should be [N] for data_input " + data.describe());
            }
        }
        String[] names = new String[nNodes];
        String[] ops = new String[nNodes];
        Kernel[] kernels = new Kernel[nNodes];
        Value[] hookWeight = new Value[nNodes];
        Value[] hookGradient = new Value[nNodes];
        int[] producer = new int[values.length];
        Arrays.fill(producer, -1);
        List<int[]> nodeInputs = new ArrayList<>();
        int[][] nodeOutputs = new int[nNodes][];
        for (int k = 0; k < nNodes; k++) {
            Node node = m.nodes(k);
            names[k] = node.name() != null && !node.name().isEmpty() ? node.name() : "#" + k;
            ops[k] = node.opType();
            if (node.phase() < Phase.Forward || node.phase() > Phase.Optimizer) {
                throw bad("node '" + names[k] + "' has an unknown phase " + node.phase());
            }
            Value[] in = new Value[node.inputsLength()];
            int[] inIdx = new int[in.length];
            for (int j = 0; j < in.length; j++) {
                int t = node.inputs(j);
                if (t < -1 || t >= values.length) {
                    throw bad("node '" + names[k] + "' input " + j + " refers to tensor " + t + " of " + values.length);
                }
                in[j] = t >= 0 ? values[t] : null;
                inIdx[j] = t;
            }
            Value[] out = new Value[node.outputsLength()];
            nodeOutputs[k] = new int[out.length];
            for (int j = 0; j < out.length; j++) {
                int t = node.outputs(j);
                nodeOutputs[k][j] = t;
                if (t < 0 || t >= values.length) {
                    throw bad("node '" + names[k] + "' output " + j + " refers to tensor " + t + " of " + values.length);
                }
                out[j] = values[t];
                if (producer[t] < 0) {
                    producer[t] = k;
                }
            }
            nodeInputs.add(inIdx);
            if (node.phase() == Phase.Optimizer) {
                List<String> named = OpTable.INPUTS.get(ops[k]);
                int var = named.indexOf("var");
                int grad = named.indexOf("grad");
                if (var >= 0 && grad >= 0 && var < in.length && grad < in.length && in[var] != null
                        && in[grad] != null && in[var].isFloat() && in[grad].isFloat()) {
                    hookWeight[k] = in[var];
                    hookGradient[k] = in[grad];
                }
            }
            NodeSpec spec = new NodeSpec(names[k], ops[k], node.phase(), in, out, ModelReader.attrs(node, names[k]));
            try {
                kernels[k] = OpRegistry.build(spec);
            } catch (ModelFormatException e) {
                throw e;
            } catch (RuntimeException e) {
                throw spec.fail("cannot be built: " + e);
            }
        }
        Value logits = produced(m.logits(), "logits", values, producer);
        Value loss = m.loss() >= 0 || m.labelInput() >= 0 ? produced(m.loss(), "loss", values, producer) : null;
        if (logits.shape.length != 2 || logits.shape[0] != data.shape[0] || !logits.isFloat()) {
            throw bad("logits " + logits.describe() + " should be float32 [N, classes] with N = " + data.shape[0]);
        }
        if (loss != null && (loss.numel != 1 || !loss.isFloat())) {
            throw bad("loss " + loss.describe() + " should be one float32 value");
        }
        if (m.learningRate() >= 0) {
            Value lr = marked(m.learningRate(), "learning_rate", values, TensorRole.Parameter, DataType.Float32);
            if (lr.numel != 1) {
                throw bad("learning_rate " + lr.describe() + " should be one value");
            }
        }
        fuse(m, kernels, nodeInputs, nodeOutputs);
        boolean[] needed = new boolean[nNodes];
        markAncestors(m.logits(), producer, nodeInputs, needed);
        List<Kernel> infer = new ArrayList<>();
        for (int k = 0; k < nNodes; k++) {
            if (needed[k]) {
                infer.add(kernels[k]);
            }
        }
        List<Kernel> lossOnly = new ArrayList<>();
        if (loss != null) {
            boolean[] forLoss = new boolean[nNodes];
            markAncestors(m.loss(), producer, nodeInputs, forLoss);
            for (int k = 0; k < nNodes; k++) {
                if (forLoss[k]) {
                    lossOnly.add(kernels[k]);
                }
            }
        }
        return new Program(fileName, m, values, names, ops, kernels, infer.toArray(new Kernel[0]),
                lossOnly.toArray(new Kernel[0]), hookWeight, hookGradient);
    }

    /**
     * Offers each pair of consecutive nodes where the second is the only reader of the first's one
     * output (an activation, not a marked tensor, written by no other node) to
     * {@link OpRegistry#fuse}: the first then does both ops' work (LeNet: MaxPoolGrad → ReluGrad).
     * The pair stays two kernels in the node order; the profile shows the time under the first.
     */
    private static void fuse(Model m, Kernel[] kernels, List<int[]> nodeInputs, int[][] nodeOutputs) {
        int n = kernels.length;
        int tensors = m.tensorsLength();
        int[] readers = new int[tensors];
        int[] writers = new int[tensors];
        for (int k = 0; k < n; k++) {
            for (int t : nodeInputs.get(k)) {
                if (t >= 0) {
                    readers[t]++;
                }
            }
            for (int t : nodeOutputs[k]) {
                writers[t]++;
            }
        }
        Set<Integer> marked = new java.util.HashSet<>(List.of(m.dataInput(), m.labelInput(), m.logits(), m.loss(), m.learningRate()));
        for (int k = 0; k + 1 < n; k++) {
            if (nodeOutputs[k].length != 1) {
                continue;
            }
            int t = nodeOutputs[k][0];
            if (readers[t] != 1 || writers[t] != 1 || marked.contains(t) || m.tensors(t).role() != TensorRole.Activation) {
                continue;
            }
            boolean read = false;
            for (int in : nodeInputs.get(k + 1)) {
                read |= in == t;
            }
            if (read && OpRegistry.fuse(kernels[k], kernels[k + 1])) {
                k++; // the second of a fused pair starts no pair
            }
        }
    }

    private static void markAncestors(int tensor, int[] producer, List<int[]> nodeInputs, boolean[] needed) {
        ArrayList<Integer> stack = new ArrayList<>();
        stack.add(tensor);
        while (!stack.isEmpty()) {
            int t = stack.remove(stack.size() - 1);
            int k = producer[t];
            if (k < 0 || needed[k]) {
                continue;
            }
            needed[k] = true;
            for (int in : nodeInputs.get(k)) {
                if (in >= 0) {
                    stack.add(in);
                }
            }
        }
    }

    private static Value marked(int index, String field, Value[] values, byte role, byte dtype) {
        if (index < 0 || index >= values.length) {
            throw bad(field + " is " + index + ", not a tensor index (0.." + (values.length - 1) + ")");
        }
        Value v = values[index];
        if (v.role != role || v.dtype != dtype) {
            throw bad(field + " tensor " + v.describe() + " should be a " + DataType.name(dtype) + " "
                    + TensorRole.name(role) + ", it is a " + TensorRole.name(v.role));
        }
        return v;
    }

    private static Value produced(int index, String field, Value[] values, int[] producer) {
        if (index < 0 || index >= values.length) {
            throw bad(field + " is " + index + ", not a tensor index (0.." + (values.length - 1) + ")");
        }
        if (producer[index] < 0) {
            throw bad(field + " tensor " + values[index].describe() + " is not produced by any node");
        }
        return values[index];
    }

    /** The model as {@code .ms} bytes: the graph as loaded, Parameters and Constants with their current values. */
    byte[] toBytes() {
        return ModelWriter.toBytes(source, values);
    }

    /** Writes {@link #toBytes()} atomically (temp file, fsync, rename). */
    void save(Path out) {
        ModelWriter.save(source, values, out, true);
    }

    /** {@link #save} without the fsync when not {@code durable} (see {@link ModelWriter#save(Model, Value[], Path, boolean)}). */
    void save(Path out, boolean durable) {
        ModelWriter.save(source, values, out, durable);
    }

    /** Whether the model can train: it has labels and a loss (not an inference-only conversion). */
    boolean trainable() {
        return labels != null && loss != null;
    }

    /** One training step over the data and labels already in {@link #data} / {@link #labels}. */
    float runTrain() {
        if (gradientHook != null) {
            return runTrainHooked(gradientHook);
        }
        for (Kernel k : trainKernels) {
            k.run();
        }
        return loss.floatData()[0];
    }

    /**
     * {@link #runTrain} with the hook called before each optimizer op on its weight and gradient.
     * A loop of its own: the plain loop (FedAvg) stays exactly as it was.
     */
    private float runTrainHooked(GradientHook hook) {
        for (int k = 0; k < trainKernels.length; k++) {
            Value w = hookWeight[k];
            if (w != null) {
                hook.onGradient(w.name, w.floatData(), hookGradient[k].floatData());
            }
            trainKernels[k].run();
        }
        return loss.floatData()[0];
    }

    void setGradientHook(GradientHook hook) {
        this.gradientHook = hook;
    }

    /** The names of the weights an optimizer op updates (those the gradient hook sees), in execution order. */
    List<String> optimizedWeights() {
        List<String> names = new ArrayList<>();
        for (Value w : hookWeight) {
            if (w != null) {
                names.add(w.name);
            }
        }
        return names;
    }

    /** The loss of the data and labels already in {@link #data} / {@link #labels}: forward only, nothing updated. */
    float runLoss() {
        for (Kernel k : lossKernels) {
            k.run();
        }
        return loss.floatData()[0];
    }

    /** The forward nodes that the logits depend on (no label needed). */
    void runInference() {
        for (Kernel k : inferKernels) {
            k.run();
        }
    }

    /** Per-node wall time of {@code steps} training steps, in nanoseconds (for benchmarks and tuning). */
    long[] profileTrain(int steps) {
        long[] ns = new long[trainKernels.length];
        for (int s = 0; s < steps; s++) {
            for (int k = 0; k < trainKernels.length; k++) {
                long t0 = System.nanoTime();
                trainKernels[k].run();
                ns[k] += System.nanoTime() - t0;
            }
        }
        return ns;
    }

    int nodeCount() {
        return trainKernels.length;
    }

    int inferenceNodeCount() {
        return inferKernels.length;
    }
}
