package com.mindspore.flclient.runtime.graph;

import com.google.flatbuffers.FlatBufferBuilder;
import com.mindspore.flclient.runtime.schema.Attr;
import com.mindspore.flclient.runtime.schema.Model;
import com.mindspore.flclient.runtime.schema.Node;
import com.mindspore.flclient.runtime.schema.Tensor;
import com.mindspore.flclient.runtime.schema.TensorRole;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.LongBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;

/**
 * Serialises a loaded model back to a {@code .ms} file: the graph exactly as loaded (the
 * {@code source} tables that {@link ModelReader} read), every Parameter (weights and optimizer
 * state) and Constant with its current values. The file is
 * written to a temporary sibling, forced to disk and renamed over the target, so a reader never
 * sees a half-written model.
 */
public final class ModelWriter {
    private ModelWriter() {
    }

    public static byte[] toBytes(Model m, Value[] values) {
        byte[] patched = patched(m, values);
        return patched != null ? patched : rebuilt(m, values);
    }

    /**
     * The loaded file with every stored tensor's current values written over its data: what a
     * model saved after training or getModel is (the same graph, the same tensors, new numbers),
     * for the price of a copy instead of a new FlatBuffer (no builder of the file's size per
     * save). Null when that cannot be: the source is not an array-backed buffer of these tensors,
     * or a tensor's data no longer has the length it has in the file.
     */
    public static byte[] patched(Model m, Value[] values) {
        ByteBuffer src = m.getByteBuffer();
        if (src == null || !src.hasArray() || src.position() != 0 || m.tensorsLength() != values.length) {
            return null;
        }
        byte[] out = Arrays.copyOfRange(src.array(), src.arrayOffset(), src.arrayOffset() + src.limit());
        ByteBuffer dst = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
        Tensor t = new Tensor();
        for (int k = 0; k < values.length; k++) {
            Value v = values[k];
            if (v.role != TensorRole.Parameter && v.role != TensorRole.Constant) {
                continue; // not stored: whatever the file had stays (the writer below leaves it out)
            }
            m.tensors(t, k);
            if (v.isFloat()) {
                ByteBuffer raw = t.floatDataAsByteBuffer();
                if (raw == null || raw.remaining() != v.numel * Float.BYTES) {
                    return null;
                }
                dst.position(raw.position());
                dst.asFloatBuffer().put(v.floatData());
            } else { // int_data is [long] (global_step is an integer Parameter that training counts up)
                int[] ints = v.intData();
                ByteBuffer raw = t.intDataAsByteBuffer();
                if (raw == null || raw.remaining() != ints.length * Long.BYTES) {
                    return null;
                }
                dst.position(raw.position());
                LongBuffer longs = dst.asLongBuffer();
                for (int x : ints) {
                    longs.put(x);
                }
            }
        }
        return out;
    }

    /** A new FlatBuffer of the graph and the tensors' current values. */
    public static byte[] rebuilt(Model m, Value[] values) {
        FlatBufferBuilder b = new FlatBufferBuilder(capacity(values));
        int[] tensorOffsets = new int[values.length];
        for (int k = 0; k < values.length; k++) {
            tensorOffsets[k] = writeTensor(b, values[k]);
        }
        int[] nodeOffsets = new int[m.nodesLength()];
        Node node = new Node();
        for (int k = 0; k < nodeOffsets.length; k++) {
            nodeOffsets[k] = writeNode(b, m.nodes(node, k));
        }
        int tensors = Model.createTensorsVector(b, tensorOffsets);
        int nodes = Model.createNodesVector(b, nodeOffsets);
        int name = m.name() != null ? b.createString(m.name()) : 0;
        int producer = m.producer() != null ? b.createString(m.producer()) : 0;
        Model.startModel(b);
        if (name != 0) {
            Model.addName(b, name);
        }
        Model.addFormatVersion(b, m.formatVersion());
        if (producer != 0) {
            Model.addProducer(b, producer);
        }
        Model.addTensors(b, tensors);
        Model.addNodes(b, nodes);
        Model.addDataInput(b, m.dataInput());
        Model.addLabelInput(b, m.labelInput());
        Model.addLogits(b, m.logits());
        Model.addLoss(b, m.loss());
        Model.addLearningRate(b, m.learningRate());
        Model.finishModelBuffer(b, Model.endModel(b));
        return b.sizedByteArray();
    }

    /**
     * The builder's first capacity: the stored tensor data plus room for the graph, so that the
     * buffer is not grown (copied) four or five times for every save of a model of a few
     * hundred KB. The bytes written do not depend on it.
     */
    private static int capacity(Value[] values) {
        long bytes = 1 << 16;
        for (Value v : values) {
            if (v.role == TensorRole.Parameter || v.role == TensorRole.Constant) {
                bytes += (long) v.numel * (v.isFloat() ? Float.BYTES : Long.BYTES) + 128;
            }
        }
        return (int) Math.min(bytes, Integer.MAX_VALUE - 64);
    }

    private static int writeTensor(FlatBufferBuilder b, Value v) {
        int name = b.createString(v.name);
        long[] shape = new long[v.shape.length];
        for (int j = 0; j < shape.length; j++) {
            shape[j] = v.shape[j];
        }
        int shapeOff = Tensor.createShapeVector(b, shape);
        boolean stored = v.role == TensorRole.Parameter || v.role == TensorRole.Constant;
        int dataOff = 0;
        if (stored && v.isFloat()) {
            dataOff = Tensor.createFloatDataVector(b, v.floatData());
        } else if (stored) {
            int[] ints = v.intData();
            long[] longs = new long[ints.length];
            for (int j = 0; j < ints.length; j++) {
                longs[j] = ints[j];
            }
            dataOff = Tensor.createIntDataVector(b, longs);
        }
        Tensor.startTensor(b);
        Tensor.addName(b, name);
        Tensor.addShape(b, shapeOff);
        Tensor.addDtype(b, v.dtype);
        Tensor.addRole(b, v.role);
        Tensor.addTrainable(b, v.trainable);
        if (dataOff != 0) {
            if (v.isFloat()) {
                Tensor.addFloatData(b, dataOff);
            } else {
                Tensor.addIntData(b, dataOff);
            }
        }
        return Tensor.endTensor(b);
    }

    private static int writeNode(FlatBufferBuilder b, Node n) {
        int name = n.name() != null ? b.createString(n.name()) : 0;
        int op = b.createString(n.opType());
        int[] in = new int[n.inputsLength()];
        for (int j = 0; j < in.length; j++) {
            in[j] = n.inputs(j);
        }
        int[] out = new int[n.outputsLength()];
        for (int j = 0; j < out.length; j++) {
            out[j] = n.outputs(j);
        }
        int inOff = Node.createInputsVector(b, in);
        int outOff = Node.createOutputsVector(b, out);
        int[] attrs = new int[n.attrsLength()];
        Attr a = new Attr();
        for (int j = 0; j < attrs.length; j++) {
            attrs[j] = writeAttr(b, n.attrs(a, j));
        }
        int attrsOff = Node.createAttrsVector(b, attrs);
        Node.startNode(b);
        if (name != 0) {
            Node.addName(b, name);
        }
        Node.addOpType(b, op);
        Node.addInputs(b, inOff);
        Node.addOutputs(b, outOff);
        Node.addAttrs(b, attrsOff);
        Node.addPhase(b, n.phase());
        return Node.endNode(b);
    }

    private static int writeAttr(FlatBufferBuilder b, Attr a) {
        int name = b.createString(a.name());
        int s = a.s() != null ? b.createString(a.s()) : 0;
        int ints = 0;
        if (a.intsLength() > 0) {
            long[] v = new long[a.intsLength()];
            for (int q = 0; q < v.length; q++) {
                v[q] = a.ints(q);
            }
            ints = Attr.createIntsVector(b, v);
        }
        int floats = 0;
        if (a.floatsLength() > 0) {
            float[] v = new float[a.floatsLength()];
            for (int q = 0; q < v.length; q++) {
                v[q] = a.floats(q);
            }
            floats = Attr.createFloatsVector(b, v);
        }
        Attr.startAttr(b);
        Attr.addName(b, name);
        Attr.addKind(b, a.kind());
        Attr.addI(b, a.i());
        Attr.addF(b, a.f());
        if (s != 0) {
            Attr.addS(b, s);
        }
        if (ints != 0) {
            Attr.addInts(b, ints);
        }
        if (floats != 0) {
            Attr.addFloats(b, floats);
        }
        Attr.addB(b, a.b());
        return Attr.endAttr(b);
    }

    /** Writes the model atomically: temp file in the target's folder, fsync, rename. */
    public static void save(Model m, Value[] values, Path out) {
        save(m, values, out, true);
    }

    /**
     * Writes the model atomically (temp file, rename); with {@code durable} the temp file is also
     * forced to disk before the rename (some 6 ms a save), so a power loss cannot leave an empty
     * model. Without, a crash of the process still leaves the old or the new file, never a torn one.
     */
    public static void save(Model m, Value[] values, Path out, boolean durable) {
        write(toBytes(m, values), out, durable);
    }

    /** Writes model bytes to {@code out} atomically (temp file, rename), forced to disk first when {@code durable}. */
    public static void write(byte[] bytes, Path out, boolean durable) {
        Path target = out.toAbsolutePath();
        Path dir = target.getParent();
        Path tmp = null;
        try {
            Files.createDirectories(dir);
            tmp = Files.createTempFile(dir, "." + target.getFileName(), ".tmp");
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
                ByteBuffer buf = ByteBuffer.wrap(bytes);
                while (buf.hasRemaining()) {
                    ch.write(buf);
                }
                if (durable) {
                    ch.force(true);
                }
            }
            try {
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, target, StandardCopyOption.REPLACE_EXISTING);
            }
            tmp = null;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write model " + target + ": " + e.getMessage(), e);
        } finally {
            if (tmp != null) {
                try {
                    Files.deleteIfExists(tmp);
                } catch (IOException ignored) {
                    // the temp file is hidden and harmless; the original error matters more
                }
            }
        }
    }
}
