package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Function;

/**
 * Op name (a MindSpore primitive, as {@code Node.op_type} stores it) → the class that runs it.
 * The list is exactly the op table of docs/ms-format.md; the loader refuses any other name.
 */
public final class OpRegistry {
    private static final Map<String, Function<NodeSpec, Kernel>> OPS = new TreeMap<>();

    static {
        OPS.put("Conv2D", Conv2D::new);
        OPS.put("Conv2DBackpropInput", Conv2DBackpropInput::new);
        OPS.put("Conv2DBackpropFilter", Conv2DBackpropFilter::new);
        OPS.put("BiasAdd", BiasAdd::new);
        OPS.put("BiasAddGrad", BiasAddGrad::new);
        OPS.put("MatMul", MatMul::new);
        OPS.put("ReLU", ReLU::new);
        OPS.put("ReluGrad", ReluGrad::new);
        OPS.put("Sigmoid", Sigmoid::new);
        OPS.put("SigmoidGrad", SigmoidGrad::new);
        OPS.put("Tanh", Tanh::new);
        OPS.put("TanhGrad", TanhGrad::new);
        OPS.put("MaxPool", MaxPool::new);
        OPS.put("MaxPoolGrad", MaxPoolGrad::new);
        OPS.put("AvgPool", AvgPool::new);
        OPS.put("AvgPoolGrad", AvgPoolGrad::new);
        OPS.put("Flatten", Flatten::new);
        OPS.put("Reshape", Reshape::new);
        OPS.put("Add", Add::new);
        OPS.put("Sub", Sub::new);
        OPS.put("Mul", Mul::new);
        OPS.put("RealDiv", RealDiv::new);
        OPS.put("Sqrt", Sqrt::new);
        OPS.put("Square", Square::new);
        OPS.put("Neg", Neg::new);
        OPS.put("SparseSoftmaxCrossEntropyWithLogits", SparseSoftmaxCrossEntropyWithLogits::new);
        OPS.put("ApplyMomentum", ApplyMomentum::new);
        OPS.put("SGD", SGD::new);
        OPS.put("Adam", Adam::new);
        OPS.put("AssignAdd", AssignAdd::new);
        OPS.put("Assign", Assign::new);
    }

    private OpRegistry() {
    }

    public static boolean supports(String opType) {
        return OPS.containsKey(opType);
    }

    public static Set<String> supportedOps() {
        return java.util.Collections.unmodifiableSet(OPS.keySet());
    }

    /** Builds the kernel of one node; the caller has checked {@link #supports}. */
    public static Kernel build(NodeSpec spec) {
        Function<NodeSpec, Kernel> f = OPS.get(spec.opType);
        if (f == null) {
            throw spec.fail("unsupported op '" + spec.opType + "'; supported: " + OPS.keySet());
        }
        return f.apply(spec);
    }
}
