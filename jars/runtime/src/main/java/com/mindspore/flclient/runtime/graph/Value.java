package com.mindspore.flclient.runtime.graph;

import com.mindspore.flclient.runtime.ModelFormatException;
import com.mindspore.flclient.runtime.schema.DataType;
import com.mindspore.flclient.runtime.schema.TensorRole;

import java.util.Arrays;

/**
 * The storage of one tensor of the model for the lifetime of a session.
 *
 * <p>Storage is a plain {@code float[]} (Float32) or {@code int[]} (Int32, Int64, Bool: the
 * runtime's integer tensors are labels, steps and small constants) allocated once at load; op
 * kernels capture these arrays when they are built, so weights are always updated in place and
 * never replaced. Reshape-like ops alias their input's array instead of copying.
 */
public final class Value {
    public final int index;
    public final String name;
    public final int[] shape;
    public final byte dtype;
    public final byte role;
    public final boolean trainable;
    public final int numel;
    private float[] f;
    private int[] i;
    private boolean written;

    public Value(int index, String name, int[] shape, byte dtype, byte role, boolean trainable) {
        this.index = index;
        this.name = name;
        this.shape = shape.clone();
        this.dtype = dtype;
        this.role = role;
        this.trainable = trainable;
        long n = 1;
        for (int d : shape) {
            n *= d;
        }
        this.numel = (int) n;
    }

    public boolean isFloat() {
        return dtype == DataType.Float32;
    }

    public boolean hasStorage() {
        return f != null || i != null;
    }

    /** Storage for a tensor whose data comes from the file or the caller (Parameter, Constant, Input). */
    public void allocate() {
        if (isFloat()) {
            f = new float[numel];
        } else {
            i = new int[numel];
        }
        written = role != TensorRole.Activation;
    }

    /** Storage of an activation produced by a node (allocated at load, reused every step). */
    public void allocateOutput(String byNode) {
        if (role != TensorRole.Activation) {
            throw new ModelFormatException("node '" + byNode + "' writes tensor '" + name + "' which is a "
                    + TensorRole.name(role) + ", not an activation");
        }
        if (written) {
            throw new ModelFormatException("tensor '" + name + "' is written by more than one node (second: '" + byNode + "')");
        }
        allocate();
        written = true;
    }

    /** Makes this activation share {@code other}'s storage (Reshape, Flatten, in-place optimizer outputs). */
    public void aliasOf(Value other, String byNode) {
        if (role != TensorRole.Activation) {
            throw new ModelFormatException("node '" + byNode + "' writes tensor '" + name + "' which is a "
                    + TensorRole.name(role) + ", not an activation");
        }
        if (written) {
            throw new ModelFormatException("tensor '" + name + "' is written by more than one node (second: '" + byNode + "')");
        }
        if (other.dtype != dtype || other.numel != numel) {
            throw new ModelFormatException("node '" + byNode + "': tensor '" + name + "' " + Arrays.toString(shape)
                    + " cannot share the data of '" + other.name + "' " + Arrays.toString(other.shape));
        }
        f = other.f;
        i = other.i;
        written = true;
    }

    /** The float storage; fails with the node's name when this tensor is not float or not yet produced. */
    public float[] floats(String forNode) {
        requireReadable(forNode);
        if (f == null) {
            throw new ModelFormatException("node '" + forNode + "' needs float32 tensor '" + name + "' but it is "
                    + DataType.name(dtype));
        }
        return f;
    }

    public int[] ints(String forNode) {
        requireReadable(forNode);
        if (i == null) {
            throw new ModelFormatException("node '" + forNode + "' needs an integer tensor '" + name + "' but it is "
                    + DataType.name(dtype));
        }
        return i;
    }

    private void requireReadable(String forNode) {
        if (!written) {
            throw new ModelFormatException("node '" + forNode + "' reads tensor '" + name
                    + "' before any node writes it (nodes are not in execution order)");
        }
    }

    /** Raw access for the session (after load every tensor that is used has storage). */
    public float[] floatData() {
        return f;
    }

    public int[] intData() {
        return i;
    }

    public String describe() {
        return "'" + name + "' " + Arrays.toString(shape) + " " + DataType.name(dtype);
    }
}
