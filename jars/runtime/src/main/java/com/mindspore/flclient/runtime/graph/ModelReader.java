package com.mindspore.flclient.runtime.graph;

import com.mindspore.flclient.runtime.ModelFormatException;
import com.mindspore.flclient.runtime.fb.FlatBufferVerifier;
import com.mindspore.flclient.runtime.schema.Attr;
import com.mindspore.flclient.runtime.schema.AttrKind;
import com.mindspore.flclient.runtime.schema.DataType;
import com.mindspore.flclient.runtime.schema.Model;
import com.mindspore.flclient.runtime.schema.Node;
import com.mindspore.flclient.runtime.schema.SchemaLayouts;
import com.mindspore.flclient.runtime.schema.Tensor;
import com.mindspore.flclient.runtime.schema.TensorRole;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Reads a {@code .ms} file into this layer's data, the counterpart of {@link ModelWriter}: the
 * FlatBuffers structure is checked ({@link FlatBufferVerifier}) before any generated accessor
 * touches the bytes, then tensors become {@link Value}s with storage (names unique, shapes static,
 * data size = shape, Int64 fits 32 bits, a cap on total size) and node attributes {@link Attrs}.
 * Which kernel runs a node is not decided here: this package knows no op.
 */
public final class ModelReader {
    /** Cap on elements allocated for one model, so a corrupt shape cannot exhaust the heap. */
    private static final long MAX_ELEMENTS = 1L << 28;

    private ModelReader() {
    }

    /** The model's root table, after checking that every offset the accessors will follow lies inside the file. */
    public static Model verified(byte[] bytes) {
        ByteBuffer bb = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        FlatBufferVerifier.of(SchemaLayouts.MODEL).withFileIdentifier(SchemaLayouts.MODEL_FILE_IDENTIFIER).withMaxTables(1 << 24).verify(bb, ModelFormatException::new);
        return Model.getRootAsModel(bb);
    }

    private static ModelFormatException bad(String msg) {
        return new ModelFormatException(msg);
    }

    public static Value[] tensors(Model m) {
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

    /**
     * Sets every Parameter of {@code values} (read from a model of the same graph) to the data of
     * {@code m}, with the checks of {@link #tensors} on the data.
     */
    public static void refill(Value[] values, Model m) {
        if (m.tensorsLength() != values.length) {
            throw bad("the model has " + m.tensorsLength() + " tensors, the program " + values.length);
        }
        Tensor t = new Tensor();
        for (int k = 0; k < values.length; k++) {
            Value v = values[k];
            if (v.role == TensorRole.Parameter) {
                m.tensors(t, k);
                fill(v, t);
            }
        }
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

    public static Attrs attrs(Node node, String nodeName) {
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
}
