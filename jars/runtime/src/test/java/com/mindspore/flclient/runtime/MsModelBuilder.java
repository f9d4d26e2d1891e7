package com.mindspore.flclient.runtime;

import com.google.flatbuffers.FlatBufferBuilder;
import com.mindspore.flclient.runtime.schema.Attr;
import com.mindspore.flclient.runtime.schema.AttrKind;
import com.mindspore.flclient.runtime.schema.DataType;
import com.mindspore.flclient.runtime.schema.Model;
import com.mindspore.flclient.runtime.schema.Node;
import com.mindspore.flclient.runtime.schema.Phase;
import com.mindspore.flclient.runtime.schema.Tensor;
import com.mindspore.flclient.runtime.schema.TensorRole;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.Consumer;

/**
 * Builds small {@code .ms} files in tests with the generated FlatBuffers builder, the way the
 * converter lays them out: tensors first (by index), nodes in execution order, marked inputs,
 * logits, loss and learning rate. Tests can also corrupt a model on purpose through the hooks.
 */
public final class MsModelBuilder {
    /** One attribute to write. */
    public record A(String name, byte kind, long i, float f, long[] ints, boolean b) {
        public static A ints(String name, long... v) {
            return new A(name, AttrKind.Ints, 0, 0f, v, false);
        }

        public static A i(String name, long v) {
            return new A(name, AttrKind.Int, v, 0f, null, false);
        }

        public static A f(String name, float v) {
            return new A(name, AttrKind.Float, 0, v, null, false);
        }

        public static A b(String name, boolean v) {
            return new A(name, AttrKind.Bool, 0, 0f, null, v);
        }
    }

    private record T(String name, int[] shape, byte dtype, byte role, boolean trainable, float[] f, long[] i) {
    }

    private record N(String name, String op, byte phase, int[] in, int[] out, A[] attrs) {
    }

    private final List<T> tensors = new ArrayList<>();
    private final List<N> nodes = new ArrayList<>();
    private int data = -1;
    private int label = -1;
    private int logits = -1;
    private int loss = -1;
    private int lr = -1;
    private final Random random;

    public MsModelBuilder(long seed) {
        this.random = new Random(seed);
    }

    private int add(T t) {
        tensors.add(t);
        return tensors.size() - 1;
    }

    static int numel(int[] shape) {
        int n = 1;
        for (int d : shape) {
            n *= d;
        }
        return n;
    }

    public int input(String name, int... shape) {
        data = add(new T(name, shape, DataType.Float32, TensorRole.Input, false, null, null));
        return data;
    }

    public int labels(String name, int n) {
        label = add(new T(name, new int[] {n}, DataType.Int32, TensorRole.Input, false, null, null));
        return label;
    }

    public int weight(String name, float[] values, int... shape) {
        return add(new T(name, shape, DataType.Float32, TensorRole.Parameter, true, values, null));
    }

    /** A trainable weight with uniform(−bound, bound) values, bound = 1/√fanIn. */
    public int weight(String name, int fanIn, int... shape) {
        float[] v = new float[numel(shape)];
        float bound = (float) (1 / Math.sqrt(fanIn));
        for (int k = 0; k < v.length; k++) {
            v[k] = (random.nextFloat() * 2 - 1) * bound;
        }
        return weight(name, v, shape);
    }

    /** A non-trainable float Parameter (optimizer state, learning rate). */
    public int state(String name, float[] values, int... shape) {
        return add(new T(name, shape, DataType.Float32, TensorRole.Parameter, false, values, null));
    }

    public int intState(String name, long[] values, int... shape) {
        return add(new T(name, shape, DataType.Int32, TensorRole.Parameter, false, null, values));
    }

    public int constant(String name, float[] values, int... shape) {
        return add(new T(name, shape, DataType.Float32, TensorRole.Constant, false, values, null));
    }

    public int intConstant(String name, long[] values, int... shape) {
        return add(new T(name, shape, DataType.Int32, TensorRole.Constant, false, null, values));
    }

    public int act(String name, int... shape) {
        return add(new T(name, shape, DataType.Float32, TensorRole.Activation, false, null, null));
    }

    public void node(String op, byte phase, int[] in, int[] out, A... attrs) {
        nodes.add(new N(op + "_" + nodes.size(), op, phase, in, out, attrs));
    }

    public int fwd(String op, int[] in, int[] outShape, A... attrs) {
        int y = act(op.toLowerCase() + "_" + nodes.size(), outShape);
        node(op, Phase.Forward, in, new int[] {y}, attrs);
        return y;
    }

    public int bwd(String op, int[] in, int[] outShape, A... attrs) {
        int y = act(op.toLowerCase() + "_" + nodes.size(), outShape);
        node(op, Phase.Backward, in, new int[] {y}, attrs);
        return y;
    }

    public int[] shape(int tensor) {
        return tensors.get(tensor).shape.clone();
    }

    public void mark(int logits, int loss, int learningRate) {
        this.logits = logits;
        this.loss = loss;
        this.lr = learningRate;
    }

    /** ApplyMomentum for each trainable weight with its gradient, plus the moments it needs. */
    public void momentum(int[] weights, int[] grads, int learningRate, float momentum) {
        int m = state("momentum", new float[] {momentum});
        for (int k = 0; k < weights.length; k++) {
            T w = tensors.get(weights[k]);
            int acc = state("moments." + w.name, new float[numel(w.shape)], w.shape);
            node("ApplyMomentum", Phase.Optimizer, new int[] {weights[k], acc, learningRate, grads[k], m}, new int[0]);
        }
    }

    public byte[] build() {
        return build(t -> { });
    }

    /** Builds the file; {@code tweak} may add fields to the Model table before it is closed. */
    public byte[] build(Consumer<FlatBufferBuilder> tweak) {
        FlatBufferBuilder b = new FlatBufferBuilder(1024);
        int[] to = new int[tensors.size()];
        for (int k = 0; k < to.length; k++) {
            T t = tensors.get(k);
            int name = b.createString(t.name);
            long[] shape = new long[t.shape.length];
            for (int j = 0; j < shape.length; j++) {
                shape[j] = t.shape[j];
            }
            int so = Tensor.createShapeVector(b, shape);
            int fo = t.f != null ? Tensor.createFloatDataVector(b, t.f) : 0;
            int io = t.i != null ? Tensor.createIntDataVector(b, t.i) : 0;
            Tensor.startTensor(b);
            Tensor.addName(b, name);
            Tensor.addShape(b, so);
            Tensor.addDtype(b, t.dtype);
            Tensor.addRole(b, t.role);
            Tensor.addTrainable(b, t.trainable);
            if (fo != 0) {
                Tensor.addFloatData(b, fo);
            }
            if (io != 0) {
                Tensor.addIntData(b, io);
            }
            to[k] = Tensor.endTensor(b);
        }
        int[] no = new int[nodes.size()];
        for (int k = 0; k < no.length; k++) {
            N n = nodes.get(k);
            int name = b.createString(n.name);
            int op = b.createString(n.op);
            int in = Node.createInputsVector(b, n.in);
            int out = Node.createOutputsVector(b, n.out);
            int[] ao = new int[n.attrs.length];
            for (int j = 0; j < ao.length; j++) {
                A a = n.attrs[j];
                int an = b.createString(a.name);
                int ints = a.ints != null ? Attr.createIntsVector(b, a.ints) : 0;
                Attr.startAttr(b);
                Attr.addName(b, an);
                Attr.addKind(b, a.kind);
                Attr.addI(b, a.i);
                Attr.addF(b, a.f);
                if (ints != 0) {
                    Attr.addInts(b, ints);
                }
                Attr.addB(b, a.b);
                ao[j] = Attr.endAttr(b);
            }
            int attrs = Node.createAttrsVector(b, ao);
            Node.startNode(b);
            Node.addName(b, name);
            Node.addOpType(b, op);
            Node.addInputs(b, in);
            Node.addOutputs(b, out);
            Node.addAttrs(b, attrs);
            Node.addPhase(b, n.phase);
            no[k] = Node.endNode(b);
        }
        int tv = Model.createTensorsVector(b, to);
        int nv = Model.createNodesVector(b, no);
        int name = b.createString("test");
        int producer = b.createString("MsModelBuilder");
        Model.startModel(b);
        Model.addName(b, name);
        Model.addProducer(b, producer);
        Model.addTensors(b, tv);
        Model.addNodes(b, nv);
        Model.addDataInput(b, data);
        Model.addLabelInput(b, label);
        Model.addLogits(b, logits);
        Model.addLoss(b, loss);
        Model.addLearningRate(b, lr);
        tweak.accept(b);
        Model.finishModelBuffer(b, Model.endModel(b));
        return b.sizedByteArray();
    }

    /** Conv2D attributes: square stride, no dilation, padding all round, group 1. */
    public static A[] conv(int stride, int pad) {
        return new A[] {A.ints("stride", stride, stride), A.ints("dilation", 1, 1), A.ints("pad", pad, pad, pad, pad), A.i("group", 1)};
    }

    public static A[] concat(A[] a, A... more) {
        A[] out = java.util.Arrays.copyOf(a, a.length + more.length);
        System.arraycopy(more, 0, out, a.length, more.length);
        return out;
    }
}
