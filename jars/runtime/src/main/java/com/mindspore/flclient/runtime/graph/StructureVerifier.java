package com.mindspore.flclient.runtime.graph;

import com.mindspore.flclient.runtime.ModelFormatException;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Checks that a byte buffer is a well-formed {@code .ms} FlatBuffer before any generated
 * accessor touches it. The Java FlatBuffers runtime has no verifier: on a truncated or corrupted
 * file its accessors read garbage or throw an IndexOutOfBoundsException from deep inside. This
 * walks every table, string and vector of schema/ms_model.fbs (Model → Tensor, Node → Attr) and
 * checks that each offset, length and field lies inside the buffer, so that afterwards the
 * accessors only read bytes that exist. Keep it in step with the schema: one method per table.
 */
final class StructureVerifier {
    static final String IDENTIFIER = "PFMS";
    private static final int MAX_DEPTH_TABLES = 1 << 24;

    private final ByteBuffer bb;
    private final int size;
    private int tablesSeen;

    StructureVerifier(ByteBuffer buffer) {
        this.bb = buffer.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        this.size = buffer.limit();
    }

    private static ModelFormatException bad(String what) {
        return new ModelFormatException(what);
    }

    private void need(boolean ok, String what) {
        if (!ok) {
            throw bad(what);
        }
    }

    void verify() {
        if (size < 8) {
            throw bad("file is " + size + " bytes, too short to be a .ms model (truncated or empty)");
        }
        byte[] id = new byte[4];
        for (int k = 0; k < 4; k++) {
            id[k] = bb.get(4 + k);
        }
        String found = new String(id, StandardCharsets.ISO_8859_1);
        if (!IDENTIFIER.equals(found)) {
            throw bad("file identifier is '" + printable(found) + "', expected '" + IDENTIFIER
                    + "' (not a pyflclient .ms model: convert it with `pyflclient convert`)");
        }
        int root = target(0, "root table offset");
        verifyModel(root);
    }

    private static String printable(String s) {
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) {
            b.append(c >= 32 && c < 127 ? String.valueOf(c) : String.format("\\x%02x", (int) c));
        }
        return b.toString();
    }

    /** The position an unsigned 32-bit offset stored at {@code pos} points to, checked to be in the buffer. */
    private int target(int pos, String what) {
        need(pos >= 0 && (long) pos + 4 <= size, what + " at byte " + pos + " lies past the end of the file (truncated?)");
        long t = pos + (bb.getInt(pos) & 0xffffffffL);
        need(t + 4 <= size, what + " at byte " + pos + " points past the end of the file (truncated or corrupt)");
        return (int) t;
    }

    /** A table at {@code pos}: its vtable and object lie inside the buffer. Returns {vtable, vtableLen, objectLen}. */
    private int[] table(int pos, String what) {
        need(++tablesSeen < MAX_DEPTH_TABLES, "too many tables");
        need(pos >= 0 && (long) pos + 4 <= size, what + ": table at byte " + pos + " lies past the end of the file");
        long vt = (long) pos - bb.getInt(pos);
        need(vt >= 0 && vt + 4 <= size, what + ": table at byte " + pos + " has its vtable outside the file (corrupt)");
        int vtLen = bb.getShort((int) vt) & 0xffff;
        int objLen = bb.getShort((int) vt + 2) & 0xffff;
        need(vtLen >= 4 && vtLen % 2 == 0 && vt + vtLen <= size, what + ": vtable at byte " + vt + " is malformed");
        need(objLen >= 4 && (long) pos + objLen <= size, what + ": table at byte " + pos + " runs past the end of the file (truncated?)");
        return new int[] {(int) vt, vtLen, objLen, pos};
    }

    /** Offset of field {@code slot} inside the table, 0 when absent; checks a field of {@code bytes} fits the object. */
    private int field(int[] t, int slot, int bytes, String what) {
        int entry = 4 + 2 * slot;
        if (entry + 2 > t[1]) {
            return 0;
        }
        int fo = bb.getShort(t[0] + entry) & 0xffff;
        need(fo == 0 || fo + bytes <= t[2], what + ": field runs past its table (corrupt)");
        return fo;
    }

    private void scalar(int[] t, int slot, int bytes, String what) {
        field(t, slot, bytes, what);
    }

    /** Target of an offset field, or −1 when absent. */
    private int ref(int[] t, int slot, String what) {
        int fo = field(t, slot, 4, what);
        return fo == 0 ? -1 : target(t[3] + fo, what);
    }

    private void string(int[] t, int slot, String what) {
        int s = ref(t, slot, what);
        if (s < 0) {
            return;
        }
        long len = bb.getInt(s) & 0xffffffffL;
        need(s + 4 + len + 1 <= size, what + ": string of " + len + " bytes runs past the end of the file (truncated?)");
        need(bb.get((int) (s + 4 + len)) == 0, what + ": string is not terminated (corrupt)");
        ByteBuffer bytes = bb.duplicate();
        bytes.position(s + 4).limit((int) (s + 4 + len));
        try {
            StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(bytes);
        } catch (CharacterCodingException e) {
            throw bad(what + ": string is not valid UTF-8 (corrupt)");
        }
    }

    /** A vector field of scalars of {@code elem} bytes; returns its start (length word) or −1. */
    private int vector(int[] t, int slot, int elem, String what) {
        int v = ref(t, slot, what);
        if (v < 0) {
            return -1;
        }
        long len = bb.getInt(v) & 0xffffffffL;
        need(v + 4 + len * elem <= size, what + ": vector of " + len + " elements runs past the end of the file (truncated?)");
        return v;
    }

    private void verifyModel(int pos) {
        int[] t = table(pos, "model");
        string(t, 0, "model name");
        scalar(t, 1, 4, "format_version");
        string(t, 2, "producer");
        int tensors = vector(t, 3, 4, "tensors");
        if (tensors >= 0) {
            int n = bb.getInt(tensors);
            for (int j = 0; j < n; j++) {
                verifyTensor(target(tensors + 4 + 4 * j, "tensor " + j), j);
            }
        }
        int nodes = vector(t, 4, 4, "nodes");
        if (nodes >= 0) {
            int n = bb.getInt(nodes);
            for (int j = 0; j < n; j++) {
                verifyNode(target(nodes + 4 + 4 * j, "node " + j), j);
            }
        }
        for (int slot = 5; slot <= 9; slot++) {
            scalar(t, slot, 4, "model index field " + slot);
        }
    }

    private void verifyTensor(int pos, int index) {
        String w = "tensor " + index;
        int[] t = table(pos, w);
        string(t, 0, w + " name");
        vector(t, 1, 8, w + " shape");
        scalar(t, 2, 1, w + " dtype");
        scalar(t, 3, 1, w + " role");
        scalar(t, 4, 1, w + " trainable");
        vector(t, 5, 4, w + " float_data");
        vector(t, 6, 8, w + " int_data");
    }

    private void verifyNode(int pos, int index) {
        String w = "node " + index;
        int[] t = table(pos, w);
        string(t, 0, w + " name");
        string(t, 1, w + " op_type");
        vector(t, 2, 4, w + " inputs");
        vector(t, 3, 4, w + " outputs");
        int attrs = vector(t, 4, 4, w + " attrs");
        if (attrs >= 0) {
            int n = bb.getInt(attrs);
            for (int j = 0; j < n; j++) {
                verifyAttr(target(attrs + 4 + 4 * j, w + " attr " + j), w + " attr " + j);
            }
        }
        scalar(t, 5, 1, w + " phase");
    }

    private void verifyAttr(int pos, String w) {
        int[] t = table(pos, w);
        string(t, 0, w + " name");
        scalar(t, 1, 1, w + " kind");
        scalar(t, 2, 8, w + " i");
        scalar(t, 3, 4, w + " f");
        string(t, 4, w + " s");
        vector(t, 5, 8, w + " ints");
        vector(t, 6, 4, w + " floats");
        scalar(t, 7, 1, w + " b");
    }
}
