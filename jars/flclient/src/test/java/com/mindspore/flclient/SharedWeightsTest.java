package com.mindspore.flclient;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** {@link SharedWeights}: equal bytes under one name give one array; other bytes, another array. */
class SharedWeightsTest {
    @AfterEach
    void clear() {
        SharedWeights.clear();
    }

    /** {@code floats} as little-endian bytes inside a larger buffer (position 3, as in a FlatBuffer). */
    private static ByteBuffer wire(float... floats) {
        ByteBuffer b = ByteBuffer.allocate(3 + 4 * floats.length + 5).order(ByteOrder.LITTLE_ENDIAN);
        b.position(3);
        for (float f : floats) {
            b.putFloat(f);
        }
        b.position(3).limit(3 + 4 * floats.length);
        return b.order(ByteOrder.BIG_ENDIAN); // the order of the view must not matter
    }

    @Test
    void theSameBytesGiveTheSameArrayAndTheirFloats() {
        ByteBuffer a = wire(1.5f, -2f, Float.MIN_VALUE);
        float[] first = SharedWeights.of("w", a);
        assertArrayEquals(new float[]{1.5f, -2f, Float.MIN_VALUE}, first);
        assertEquals(3, a.position(), "the caller's buffer is left where it was");
        assertSame(first, SharedWeights.of("w", wire(1.5f, -2f, Float.MIN_VALUE)));
    }

    @Test
    void otherBytesOrAnotherNameGiveAnotherArray() {
        float[] first = SharedWeights.of("w", wire(1f, 2f));
        float[] changed = SharedWeights.of("w", wire(1f, 2.0000002f));
        assertNotSame(first, changed);
        assertArrayEquals(new float[]{1f, 2.0000002f}, changed);
        assertArrayEquals(new float[]{1f, 2f}, first, "an array handed out is never changed");
        assertNotSame(changed, SharedWeights.of("b", wire(1f, 2.0000002f)));
        float[] longer = SharedWeights.of("w", wire(1f, 2.0000002f, 0f));
        assertEquals(3, longer.length);
        // -0.0 and 0.0 are equal floats but other bits: the wire's bits decide
        float[] zero = SharedWeights.of("z", wire(0f));
        assertNotSame(zero, SharedWeights.of("z", wire(-0f)));
    }

    @Test
    void everyClientOfAReplyGetsTheSameWeights() {
        java.util.Map<String, float[]> model = Fixture.globalModel(1);
        byte[] reply = Replies.getModel(mindspore.schema.ResponseCode.SUCCEED, 1, model);
        FLMessages.Response r1 = FLMessages.parseGetModel(new FLCommunication.Reply(200, reply));
        FLMessages.Response r2 = FLMessages.parseGetModel(new FLCommunication.Reply(200, reply.clone()));
        assertEquals(model.keySet(), r1.featureMap.keySet());
        for (String name : model.keySet()) {
            assertArrayEquals(model.get(name), r1.featureMap.get(name), name);
            assertSame(r1.featureMap.get(name), r2.featureMap.get(name), name);
        }
    }
}
