package com.mindspore.flclient;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.ConcurrentHashMap;

/**
 * pyflclient addition: one array per global weight for all the clients of this JVM.
 *
 * <p>Every device admitted to an iteration receives the same global model in startFLJob, and
 * every device receives the next one in getModel. A simulated device keeps what it received
 * until a trainer runs its step (admission runs ahead of training: at 3,500 clients on 2
 * trainers some 2,500 admitted devices waited with their own 246 KB copy of LeNet, and at an
 * iteration's end 3,500 parsed getModel replies waited for their evaluation: 1.3 GB of a 2 GB
 * heap held the same numbers). A weight whose bytes on the wire equal the last ones parsed
 * under its name is that weight's array; other bytes (another iteration, another job) replace
 * it. Comparing the bytes costs less than converting them.
 *
 * <p>The arrays are therefore read-only for everyone who gets them from a reply: the model
 * copies them in ({@code TrainSession.setWeight}), DP_ENCRYPT's noise, the upload codec and
 * the model file writer read them.
 */
final class SharedWeights {
    /** A weight as it came (little-endian float32 bytes) and as floats. */
    private static final class Entry {
        final byte[] bytes;
        final float[] values;

        Entry(byte[] bytes, float[] values) {
            this.bytes = bytes;
            this.values = values;
        }
    }

    private static final ConcurrentHashMap<String, Entry> LAST = new ConcurrentHashMap<>();

    private SharedWeights() {
    }

    /**
     * The floats of {@code data} (little-endian float32, from its position to its limit; its
     * position is left unchanged), shared with every earlier caller that passed the same bytes
     * under {@code name} since other bytes were last passed under it. Do not write to the result.
     */
    static float[] of(String name, ByteBuffer data) {
        int n = data.remaining();
        Entry e = LAST.get(name);
        if (e != null && e.bytes.length == n && data.equals(ByteBuffer.wrap(e.bytes))) {
            return e.values;
        }
        byte[] bytes = new byte[n];
        data.duplicate().get(bytes);
        float[] values = new float[n / Float.BYTES];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
        LAST.put(name, new Entry(bytes, values));
        return values;
    }

    /** Whether {@code values} is the array {@link #of} gives under {@code name} now: read-only, as all it gave. */
    static boolean isShared(String name, float[] values) {
        Entry e = LAST.get(name);
        return e != null && e.values == values;
    }

    /** Forgets every weight (tests; a JVM that ends its jobs holds a model's size at most). */
    static void clear() {
        LAST.clear();
    }
}
