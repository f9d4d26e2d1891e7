package com.mindspore.lite;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * MindSpore Lite's tensor, for code written against r1.6: a name, a shape, a data type and the
 * bytes (native order, as r1.6's {@code ByteBuffer.allocateDirect(...).order(nativeOrder())}).
 * Here it is a plain Java object over a heap buffer; {@link #free()} only drops the bytes.
 */
public class MSTensor {
    private final String name;
    private final int[] shape;
    private final int dataType;
    private ByteBuffer data;

    /** r1.6's constructor of a weight tensor: the name and its float32 values. */
    public MSTensor(String tensorName, ByteBuffer buffer) {
        this(tensorName, new int[] {buffer.remaining() / Float.BYTES}, DataType.kNumberTypeFloat32, copy(buffer));
    }

    /** A float32 tensor over a copy of {@code values}. */
    public MSTensor(String tensorName, int[] shape, float[] values) {
        this(tensorName, shape, DataType.kNumberTypeFloat32, floats(values));
    }

    MSTensor(String name, int[] shape, int dataType, ByteBuffer data) {
        this.name = name;
        this.shape = shape.clone();
        this.dataType = dataType;
        this.data = data;
    }

    private static ByteBuffer copy(ByteBuffer src) {
        ByteBuffer out = ByteBuffer.allocate(src.remaining()).order(ByteOrder.nativeOrder());
        out.put(src.duplicate());
        return out.flip();
    }

    static ByteBuffer floats(float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * Float.BYTES).order(ByteOrder.nativeOrder());
        b.asFloatBuffer().put(values);
        return b;
    }

    public String tensorName() {
        return name;
    }

    public int[] getShape() {
        return shape.clone();
    }

    public int getDataType() {
        return dataType;
    }

    public int elementsNum() {
        int n = 1;
        for (int d : shape) {
            n *= d;
        }
        return n;
    }

    /** Size in bytes. */
    public long size() {
        return (long) elementsNum() * 4;
    }

    /**
     * Copies the bytes of {@code buffer} from its position 0 to its limit, as r1.6 does with the
     * buffer a case filled; a buffer of another size than the tensor is refused, naming both.
     */
    public boolean setData(ByteBuffer buffer) {
        ByteBuffer src = buffer.duplicate();
        src.position(0);
        if (src.remaining() != size()) {
            throw new IllegalArgumentException("MSTensor " + name + " " + Arrays.toString(shape) + " takes " + size()
                    + " bytes, the buffer holds " + src.remaining());
        }
        requireData().clear();
        data.put(src.order(ByteOrder.nativeOrder())).flip();
        return true;
    }

    public boolean setData(float[] values) {
        if (values.length != elementsNum()) {
            throw new IllegalArgumentException("MSTensor " + name + " " + Arrays.toString(shape) + " takes "
                    + elementsNum() + " values, got " + values.length);
        }
        requireData().clear();
        data.asFloatBuffer().put(values);
        return true;
    }

    public float[] getFloatData() {
        float[] out = new float[elementsNum()];
        requireData().duplicate().order(ByteOrder.nativeOrder()).position(0).asFloatBuffer().get(out);
        return out;
    }

    public int[] getIntData() {
        int[] out = new int[elementsNum()];
        requireData().duplicate().order(ByteOrder.nativeOrder()).position(0).asIntBuffer().get(out);
        return out;
    }

    public byte[] getByteData() {
        byte[] out = new byte[(int) size()];
        requireData().duplicate().position(0).get(out);
        return out;
    }

    private ByteBuffer requireData() {
        if (data == null) {
            throw new IllegalStateException("MSTensor " + name + " was freed");
        }
        return data;
    }

    public void free() {
        data = null;
    }
}
