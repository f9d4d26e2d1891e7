package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.Kernel;
import com.mindspore.flclient.runtime.graph.NodeSpec;
import com.mindspore.flclient.runtime.schema.OpTable;

import java.util.Collection;
import java.util.Collections;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Function;

/**
 * Op name (a MindSpore primitive, as {@code Node.op_type} stores it) → the class that runs it.
 * The names must be exactly those of schema/ops.json ({@link OpTable}, generated from it at
 * build time): a difference fails the class's initialisation, naming the ops missing on each
 * side, so no runtime can ship that loads a different op set than the converter writes. The
 * loader refuses any other name.
 */
public final class OpRegistry {
    private static final Map<String, Function<NodeSpec, Kernel>> OPS = new TreeMap<>();

    static {
        OPS.put("Conv2D", Convolution.Conv2D::new);
        OPS.put("Conv2DBackpropInput", Convolution.Conv2DBackpropInput::new);
        OPS.put("Conv2DBackpropFilter", Convolution.Conv2DBackpropFilter::new);
        OPS.put("BiasAdd", Dense.BiasAdd::new);
        OPS.put("BiasAddGrad", Dense.BiasAddGrad::new);
        OPS.put("MatMul", Dense.MatMul::new);
        OPS.put("ReLU", Activations.ReLU::new);
        OPS.put("ReluGrad", Activations.ReluGrad::new);
        OPS.put("Sigmoid", Activations.Sigmoid::new);
        OPS.put("SigmoidGrad", Activations.SigmoidGrad::new);
        OPS.put("Tanh", Activations.Tanh::new);
        OPS.put("TanhGrad", Activations.TanhGrad::new);
        OPS.put("MaxPool", Pooling.MaxPool::new);
        OPS.put("MaxPoolGrad", Pooling.MaxPoolGrad::new);
        OPS.put("AvgPool", Pooling.AvgPool::new);
        OPS.put("AvgPoolGrad", Pooling.AvgPoolGrad::new);
        OPS.put("Flatten", Views.Flatten::new);
        OPS.put("Reshape", Views.Reshape::new);
        OPS.put("Add", Elementwise.Add::new);
        OPS.put("Sub", Elementwise.Sub::new);
        OPS.put("Mul", Elementwise.Mul::new);
        OPS.put("RealDiv", Elementwise.RealDiv::new);
        OPS.put("Sqrt", Elementwise.Sqrt::new);
        OPS.put("Square", Elementwise.Square::new);
        OPS.put("Neg", Elementwise.Neg::new);
        OPS.put("SparseSoftmaxCrossEntropyWithLogits", SparseSoftmaxCrossEntropyWithLogits::new);
        OPS.put("ApplyMomentum", Optimizers.ApplyMomentum::new);
        OPS.put("SGD", Optimizers.SGD::new);
        OPS.put("Adam", Optimizers.Adam::new);
        OPS.put("AssignAdd", Optimizers.AssignAdd::new);
        OPS.put("Assign", Optimizers.Assign::new);
        requireSameOps(OPS.keySet(), OpTable.NAMES);
    }

    private OpRegistry() {
    }

    /**
     * Throws {@link IllegalStateException} naming the ops that only one side has, unless the
     * registered names are exactly the table's.
     */
    static void requireSameOps(Set<String> registered, Collection<String> table) {
        Set<String> missing = new TreeSet<>(table);
        missing.removeAll(registered);
        Set<String> extra = new TreeSet<>(registered);
        extra.removeAll(table);
        if (!missing.isEmpty() || !extra.isEmpty()) {
            throw new IllegalStateException("OpRegistry and schema/ops.json list different ops: in ops.json but not "
                    + "registered " + missing + ", registered but not in ops.json " + extra
                    + " (add the kernel to OpRegistry or the op to schema/ops.json, then rebuild)");
        }
    }

    public static boolean supports(String opType) {
        return OPS.containsKey(opType);
    }

    public static Set<String> supportedOps() {
        return Collections.unmodifiableSet(OPS.keySet());
    }

    /** Builds the kernel of one node; the caller has checked {@link #supports}. */
    public static Kernel build(NodeSpec spec) {
        Function<NodeSpec, Kernel> f = OPS.get(spec.opType);
        if (f == null) {
            throw spec.fail("unsupported op '" + spec.opType + "'; supported: " + OPS.keySet());
        }
        return f.apply(spec);
    }

    /**
     * Lets {@code first} do the work of {@code second} too, when the pair is one the ops fuse
     * (MaxPoolGrad → ReluGrad with the 2×2 window): true if they did. The caller guarantees that
     * {@code second} runs right after {@code first} and that only {@code second} reads
     * {@code first}'s output, which is then no longer written. The results are the same bits.
     */
    public static boolean fuse(Kernel first, Kernel second) {
        if (first instanceof Pooling.MaxPoolGrad && second instanceof Activations.ReluGrad) {
            return ((Pooling.MaxPoolGrad) first).absorb((Activations.ReluGrad) second);
        }
        return false;
    }
}
