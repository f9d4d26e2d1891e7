package com.mindspore.flclient.runtime.graph;

import com.mindspore.flclient.runtime.ModelFormatException;
import com.mindspore.flclient.runtime.ops.Kernel;
import com.mindspore.flclient.runtime.ops.OpRegistry;
import com.mindspore.flclient.runtime.schema.Attr;
import com.mindspore.flclient.runtime.schema.AttrKind;
import com.mindspore.flclient.runtime.schema.DataType;
import com.mindspore.flclient.runtime.schema.Model;
import com.mindspore.flclient.runtime.schema.Node;
import com.mindspore.flclient.runtime.schema.Phase;
import com.mindspore.flclient.runtime.schema.Tensor;
import com.mindspore.flclient.runtime.schema.TensorRole;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A loaded, verified {@code .ms} model bound to storage: every tensor as a {@link Value}, every
 * node as a {@link Kernel} in file (execution) order, and the subset of kernels that computes the
 * logits for inference. Training is the interpreter loop over all kernels; nothing is allocated
 * after load.
 *
 * <p>Loading checks, in order: the FlatBuffers structure ({@link StructureVerifier}), the tensors
 * (names, shapes, types, data sizes), the nodes (known op names, tensor indices, attributes), the
 * graph's marked tensors, and finally each op's own shape rules as its kernel is built. Every
 * failure is a {@link ModelFormatException} that names the file.
 */
public final class Program {
    /** Cap on elements allocated for one model, so a corrupt shape cannot exhaust the heap. */
    private static final long MAX_ELEMENTS = 1L << 28;

    public final String fileName;
    public final String modelName;
    public final String producer;
    public final int formatVersion;
    public final Value[] values;
    public final String[] nodeNames;
    public final String[] opTypes;
    private final Kernel[] trainKernels;
    private final Kernel[] inferKernels;
    public final Value data;
    public final Value labels;
    public final Value logits;
    public final Value loss;
    public final Value learningRate;
    /** The original node tables, re-emitted unchanged by {@link ModelWriter}. */
    final Model source;

    private Program(String fileName, Model m, Value[] values, String[] nodeNames, String[] opTypes,
                    Kernel[] trainKernels, Kernel[] inferKernels) {
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
        this.data = values[m.dataInput()];
        this.labels = m.labelInput() >= 0 ? values[m.labelInput()] : null;
        this.logits = values[m.logits()];
        this.loss = m.loss() >= 0 ? values[m.loss()] : null;
        this.learningRate = m.learningRate() >= 0 ? values[m.learningRate()] : null;
    }

    /** Verifies and binds a model; {@code fileName} prefixes every error message. */
    public static Program load(byte[] bytes, String fileName) {
        try {
            ByteBuffer bb = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
            new StructureVerifier(bb).verify();
            return build(Model.getRootAsModel(bb), fileName);
        } catch (ModelFormatException e) {
            throw new ModelFormatException(fileName + ": " + e.getMessage(), e);
        }
    }

    private static ModelFormatException bad(String msg) {
        return new ModelFormatException(msg);
    }

    private static Program build(Model m, String fileName) {
        if (m.formatVersion() != 1) {
            throw bad("format_version " + m.formatVersion() + " is not supported (this runtime reads version 1)");
        }
        Value[] values = readTensors(m);
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
        int[] producer = new int[values.length];
        Arrays.fill(producer, -1);
        List<int[]> nodeInputs = new ArrayList<>();
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
            for (int j = 0; j < out.length; j++) {
                int t = node.outputs(j);
                if (t < 0 || t >= values.length) {
                    throw bad("node '" + names[k] + "' output " + j + " refers to tensor " + t + " of " + values.length);
                }
                out[j] = values[t];
                if (producer[t] < 0) {
                    producer[t] = k;
                }
            }
            nodeInputs.add(inIdx);
            NodeSpec spec = new NodeSpec(names[k], ops[k], node.phase(), in, out, readAttrs(node, names[k]));
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
        boolean[] needed = new boolean[nNodes];
        markAncestors(m.logits(), producer, nodeInputs, needed);
        List<Kernel> infer = new ArrayList<>();
        for (int k = 0; k < nNodes; k++) {
            if (needed[k]) {
                infer.add(kernels[k]);
            }
        }
        return new Program(fileName, m, values, names, ops, kernels, infer.toArray(new Kernel[0]));
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

    private static Value[] readTensors(Model m) {
        int n = m.tensorsLength();
        if (n == 0) {
            throw bad("the model has no tensors");
        }
        Value[] values = new Value[n];
        Map<String, Integer> seen = new HashMap<>();
        long total = 0;
        Tensor t = new Tensor();
        for (int k = 0; k < n; k++) {
            m.tensors(t, k);
            String name = t.name();
            if (name == null || name.isEmpty()) {
                throw bad("tensor " + k + " has no name");
            }
            Integer prev = seen.put(name, k);
            if (prev != null) {
                throw bad("tensor name '" + name + "' is used by tensors " + prev + " and " + k);
            }
            int[] shape = new int[t.shapeLength()];
            long numel = 1;
            for (int j = 0; j < shape.length; j++) {
                long d = t.shape(j);
                if (d < 0 || d > Integer.MAX_VALUE) {
                    throw bad("tensor '" + name + "' has invalid dimension " + d + " (static shapes only)");
                }
                shape[j] = (int) d;
                numel *= d;
                if (numel > MAX_ELEMENTS) {
                    throw bad("tensor '" + name + "' is too large (" + numel + "+ elements)");
                }
            }
            total += numel;
            if (total > MAX_ELEMENTS) {
                throw bad("the tensors of the model exceed " + MAX_ELEMENTS + " elements");
            }
            byte dtype = t.dtype();
            byte role = t.role();
            if (dtype < DataType.Float32 || dtype > DataType.Bool) {
                throw bad("tensor '" + name + "' has unknown dtype " + dtype);
            }
            if (role < TensorRole.Activation || role > TensorRole.Input) {
                throw bad("tensor '" + name + "' has unknown role " + role);
            }
            if (t.trainable() && (role != TensorRole.Parameter || dtype != DataType.Float32)) {
                throw bad("tensor '" + name + "' is trainable but not a float32 Parameter");
            }
            Value v = new Value(k, name, shape, dtype, role, t.trainable());
            int floats = t.floatDataLength();
            int ints = t.intDataLength();
            boolean stored = role == TensorRole.Parameter || role == TensorRole.Constant;
            if (dtype == DataType.Float32) {
                if (ints != 0) {
                    throw bad("float32 tensor '" + name + "' carries int_data");
                }
                if ((stored || floats != 0) && floats != numel) {
                    throw bad("tensor '" + name + "' " + Arrays.toString(shape) + " needs " + numel
                            + " float values, the file has " + floats);
                }
            } else {
                if (floats != 0) {
                    throw bad(DataType.name(dtype) + " tensor '" + name + "' carries float_data");
                }
                if ((stored || ints != 0) && ints != numel) {
                    throw bad("tensor '" + name + "' " + Arrays.toString(shape) + " needs " + numel
                            + " integer values, the file has " + ints);
                }
            }
            if (role != TensorRole.Activation) {
                v.allocate();
                if (stored) {
                    fill(v, t);
                }
            }
            values[k] = v;
        }
        return values;
    }

    private static void fill(Value v, Tensor t) {
        if (v.isFloat()) {
            float[] f = v.floatData();
            ByteBuffer raw = t.floatDataAsByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
            raw.asFloatBuffer().get(f);
        } else {
            int[] ints = v.intData();
            for (int j = 0; j < ints.length; j++) {
                long x = t.intData(j);
                if (x < Integer.MIN_VALUE || x > Integer.MAX_VALUE) {
                    throw bad("tensor '" + v.name + "' value " + x + " does not fit 32 bits");
                }
                ints[j] = (int) x;
            }
        }
    }

    private static Attrs readAttrs(Node node, String nodeName) {
        Attrs attrs = new Attrs(nodeName);
        Attr a = new Attr();
        for (int j = 0; j < node.attrsLength(); j++) {
            node.attrs(a, j);
            String name = a.name();
            if (name == null || name.isEmpty()) {
                throw bad("node '" + nodeName + "' attribute " + j + " has no name");
            }
            byte kind = a.kind();
            if (kind < AttrKind.Int || kind > AttrKind.Bool) {
                throw bad("node '" + nodeName + "' attribute '" + name + "' has unknown kind " + kind);
            }
            long[] ints = new long[a.intsLength()];
            for (int q = 0; q < ints.length; q++) {
                ints[q] = a.ints(q);
            }
            float[] floats = new float[a.floatsLength()];
            for (int q = 0; q < floats.length; q++) {
                floats[q] = a.floats(q);
            }
            attrs.put(name, new Attrs.Attr(kind, a.i(), a.f(), a.s(), ints, floats, a.b()));
        }
        return attrs;
    }

    /** Whether the model can train: it has labels and a loss (not an inference-only conversion). */
    public boolean trainable() {
        return labels != null && loss != null;
    }

    /** One training step over the data and labels already in {@link #data} / {@link #labels}. */
    public float runTrain() {
        for (Kernel k : trainKernels) {
            k.run();
        }
        return loss.floatData()[0];
    }

    /** The forward nodes that the logits depend on (no label needed). */
    public void runInference() {
        for (Kernel k : inferKernels) {
            k.run();
        }
    }

    /** Per-node wall time of {@code steps} training steps, in nanoseconds (for benchmarks and tuning). */
    public long[] profileTrain(int steps) {
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

    public int nodeCount() {
        return trainKernels.length;
    }

    public int inferenceNodeCount() {
        return inferKernels.length;
    }
}
