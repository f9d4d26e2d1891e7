package com.mindspore.flclient;

import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Replies are verified against their root table before they are read; a bad one is UNPARSEABLE with the verifier's reason. */
class FLMessagesTest {
    private static Map<String, float[]> weights() {
        Map<String, float[]> w = new LinkedHashMap<>();
        w.put("fc.weight", new float[] {1, 2, 3, 4});
        w.put("fc.bias", new float[] {0.5f});
        return w;
    }

    private static FLCommunication.Reply ok(byte[] body) {
        return new FLCommunication.Reply(200, body);
    }

    @Test
    void aWellFormedGetModelReplyIsRead() {
        FLMessages.Response r = FLMessages.parseGetModel(ok(Replies.getModel(200, 3, weights())));
        assertEquals(FLMessages.Kind.REPLY, r.kind, r.detail);
        assertEquals(3, r.iteration);
        assertArrayEquals(new float[] {1, 2, 3, 4}, r.featureMap.get("fc.weight"));
    }

    @Test
    void aTruncatedReplyIsUnparseableWithTheVerifiersReason() {
        byte[] good = Replies.startOk(1, 5, 1, 0.1f, weights());
        FLMessages.Response r = FLMessages.parseStartFLJob(ok(Arrays.copyOf(good, good.length - 12)));
        assertEquals(FLMessages.Kind.UNPARSEABLE, r.kind);
        assertTrue(r.detail.startsWith("not a ResponseFLJob buffer: ResponseFLJob"), r.detail);
    }

    @Test
    void aReplyOfTheWrongTableOrGarbageNeverThrows() {
        byte[] good = Replies.startOk(1, 5, 1, 0.1f, weights());
        Random r = new Random(5);
        int unparseable = 0;
        for (int trial = 0; trial < 2000; trial++) {
            byte[] bad = good.clone();
            for (int k = 1 + r.nextInt(3); k > 0; k--) {
                bad[r.nextInt(bad.length)] = (byte) r.nextInt(256);
            }
            FLMessages.Response start = FLMessages.parseStartFLJob(ok(bad));
            FLMessages.parseUpdateModel(ok(bad));
            FLMessages.parseGetModel(ok(bad));
            if (start.kind == FLMessages.Kind.UNPARSEABLE) {
                assertTrue(start.detail.contains("ResponseFLJob"), start.detail);
                unparseable++;
            }
        }
        assertTrue(unparseable > 100, "only " + unparseable + " of 2000 corrupt replies were refused");
    }

    /** The bulk float vector writes the bytes of the generated one-float-at-a-time loop, at every length and offset. */
    @Test
    void theBulkFloatVectorHasTheGeneratedCodesBytes() {
        Random rnd = new Random(7);
        for (int n : new int[] {0, 1, 2, 3, 5, 62, 1024, 48_000}) {
            float[] data = new float[n];
            for (int i = 0; i < n; i++) {
                data[i] = rnd.nextBoolean() ? rnd.nextFloat() - 0.5f : Float.intBitsToFloat(rnd.nextInt());
            }
            for (String before : new String[] {"", "x", "abc", "odd-length"}) { // the builder's offset before the vector
                com.google.flatbuffers.FlatBufferBuilder generated = new com.google.flatbuffers.FlatBufferBuilder(16);
                com.google.flatbuffers.FlatBufferBuilder bulk = new com.google.flatbuffers.FlatBufferBuilder(16);
                generated.createString(before);
                bulk.createString(before);
                generated.finish(mindspore.schema.FeatureMap.createDataVector(generated, data));
                bulk.finish(FLMessages.floatVector(bulk, data));
                assertArrayEquals(generated.sizedByteArray(), bulk.sizedByteArray(), n + " floats after \"" + before + "\"");
            }
        }
    }
}
