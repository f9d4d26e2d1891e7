package com.mindspore.flclient.runtime.graph;

import com.mindspore.flclient.runtime.ModelFormatException;
import com.mindspore.flclient.runtime.schema.DataType;

import java.util.Arrays;

/**
 * One node of the model as an op class sees it when it is built: its tensors (with storage) and
 * attributes, plus the checks every op needs (arity, dtype, shapes). All checks throw
 * {@link ModelFormatException} naming the node, so a bad graph fails at load, not mid-step.
 */
public final class NodeSpec {
    public final String name;
    public final String opType;
    public final byte phase;
    private final Value[] inputs;
    private final Value[] outputs;
    public final Attrs attrs;

    public NodeSpec(String name, String opType, byte phase, Value[] inputs, Value[] outputs, Attrs attrs) {
        this.name = name;
        this.opType = opType;
        this.phase = phase;
        this.inputs = inputs;
        this.outputs = outputs;
        this.attrs = attrs;
    }

    public ModelFormatException fail(String message) {
        return new ModelFormatException("node '" + name + "' (" + opType + "): " + message);
    }

    public int inputCount() {
        return inputs.length;
    }

    public int outputCount() {
        return outputs.length;
    }

    public Value[] inputs() {
        return inputs.clone();
    }

    public Value[] outputs() {
        return outputs.clone();
    }

    /** Requires at least {@code min} inputs; ops list their inputs in MindSpore's order. */
    public void requireInputs(int min) {
        if (inputs.length < min) {
            throw fail("has " + inputs.length + " inputs, needs " + min);
        }
    }

    public Value input(int k) {
        if (k >= inputs.length || inputs[k] == null) {
            throw fail("input " + k + " is missing");
        }
        return inputs[k];
    }

    public Value output(int k) {
        if (k >= outputs.length || outputs[k] == null) {
            throw fail("output " + k + " is missing");
        }
        return outputs[k];
    }

    public float[] floatIn(int k) {
        return input(k).floats(name);
    }

    public int[] intIn(int k) {
        return input(k).ints(name);
    }

    /** Allocates float output {@code k} after checking that the file declares the shape the op computes. */
    public float[] floatOut(int k, int[] expectedShape) {
        Value v = output(k);
        requireShape(v, expectedShape, "output " + k);
        if (v.dtype != DataType.Float32) {
            throw fail("output " + k + " " + v.describe() + " must be float32");
        }
        v.allocateOutput(name);
        return v.floatData();
    }

    /** Output {@code k} shares input {@code in}'s storage (same element count), e.g. Reshape. */
    public void aliasOut(int k, Value in) {
        output(k).aliasOf(in, name);
    }

    /** In-place ops may declare outputs; they alias the updated tensor when present. */
    public void aliasOptionalOut(int k, Value in) {
        if (k < outputs.length && outputs[k] != null) {
            outputs[k].aliasOf(in, name);
        }
    }

    public void requireShape(Value v, int[] expected, String what) {
        if (!Arrays.equals(v.shape, expected)) {
            throw fail(what + " " + v.describe() + " should have shape " + Arrays.toString(expected));
        }
    }

    public void requireRank(Value v, int rank, String what) {
        if (v.shape.length != rank) {
            throw fail(what + " " + v.describe() + " should have rank " + rank);
        }
    }

    public void requireSameNumel(Value a, Value b) {
        if (a.numel != b.numel) {
            throw fail("tensors " + a.describe() + " and " + b.describe() + " should have the same size");
        }
    }
}
