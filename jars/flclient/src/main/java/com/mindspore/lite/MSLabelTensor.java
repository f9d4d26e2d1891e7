package com.mindspore.lite;

import com.mindspore.flclient.model.CommonUtils;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The label input of a classifier session: int32 class ids {@code [batch]}. r1.6 cases written for a
 * non-sparse loss fill it with one-hot float32 rows ({@code batch * classes} values); such a
 * buffer is accepted and read back as the index of each row's largest value.
 */
final class MSLabelTensor extends MSTensor {
    private final int batch;
    private final int classes;
    private float[] oneHot;

    MSLabelTensor(int batch, int classes) {
        super("labels", new int[] {batch}, DataType.kNumberTypeInt32,
                ByteBuffer.allocate(batch * Integer.BYTES).order(ByteOrder.nativeOrder()));
        this.batch = batch;
        this.classes = classes;
    }

    @Override
    public boolean setData(ByteBuffer buffer) {
        ByteBuffer src = buffer.duplicate().order(ByteOrder.nativeOrder());
        src.position(0);
        if (src.remaining() == (long) batch * classes * Float.BYTES && classes != 1) {
            oneHot = new float[batch * classes];
            src.asFloatBuffer().get(oneHot);
            return true;
        }
        oneHot = null;
        if (src.remaining() != (long) batch * Integer.BYTES) {
            throw new IllegalArgumentException("the labels input takes " + batch + " int32 class ids (" + batch * 4
                    + " bytes) or " + batch + " one-hot float32 rows of " + classes + " (" + batch * classes * 4
                    + " bytes); the buffer holds " + src.remaining() + " bytes");
        }
        return super.setData(buffer);
    }

    /** The class id of each sample of the batch. */
    int[] classIds() {
        if (oneHot == null) {
            return getIntData();
        }
        int[] ids = new int[batch];
        for (int b = 0; b < batch; b++) {
            ids[b] = CommonUtils.getMaxScoreIndex(oneHot, b * classes, (b + 1) * classes);
        }
        return ids;
    }
}
