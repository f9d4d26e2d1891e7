package com.mindspore.flclient.runtime.fb;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.function.Function;

/**
 * Checks, before any generated accessor reads a buffer, everything those accessors would touch:
 * the root offset, each table's vtable, every present field's offset and size, strings (length,
 * NUL terminator, UTF-8), vectors (length against the buffer end) and nested tables, recursively,
 * with a depth and a table budget. The checks are those of {@code pyflclient/wire/verify.py} and
 * the error paths read the same ({@code ResponseFLJob.feature_map[3].data: ...}); after
 * {@link #verify} returns, no accessor of the root table reads outside the buffer or throws.
 *
 * <p>Two checks exist only here: the Java runtime reads vtable sizes and field offsets as
 * <em>signed</em> 16-bit values, so values above 32767 (which no builder writes) are refused
 * instead of sending an accessor to a negative offset. An optional file identifier is checked
 * when one is configured.
 *
 * <p>Instances are immutable and thread-safe; configure with the {@code with...} methods:
 * <pre>{@code
 * FlatBufferVerifier.of(SchemaLayouts.MODEL).withFileIdentifier("PFMS").verify(bb);
 * }</pre>
 */
public final class FlatBufferVerifier {
    private static final int UOFFSET = 4;
    private static final int MAX_PADDING = 7; // builders align objects to at most 8 bytes

    private final TableLayout root;
    private final String fileIdentifier;
    private final int maxDepth;
    private final int maxTables;
    private final boolean exact;

    private FlatBufferVerifier(TableLayout root, String fileIdentifier, int maxDepth, int maxTables, boolean exact) {
        this.root = root;
        this.fileIdentifier = fileIdentifier;
        this.maxDepth = maxDepth;
        this.maxTables = maxTables;
        this.exact = exact;
    }

    /** A verifier of buffers whose root is {@code root}: depth 64, 100 000 tables, no identifier, not exact. */
    public static FlatBufferVerifier of(TableLayout root) {
        if (root == null) {
            throw new IllegalArgumentException("root table layout is null");
        }
        return new FlatBufferVerifier(root, null, 64, 100_000, false);
    }

    /** Also require the 4-byte file identifier after the root offset (the schema's {@code file_identifier}). */
    public FlatBufferVerifier withFileIdentifier(String identifier) {
        if (identifier.length() != 4) {
            throw new IllegalArgumentException("a file identifier has 4 characters, got '" + identifier + "'");
        }
        return new FlatBufferVerifier(root, identifier, maxDepth, maxTables, exact);
    }

    /** Refuse tables nested deeper than {@code depth} below the root. */
    public FlatBufferVerifier withMaxDepth(int depth) {
        return new FlatBufferVerifier(root, fileIdentifier, depth, maxTables, exact);
    }

    /** Refuse buffers that reach more than {@code tables} tables (offsets may share a table, so this bounds the work). */
    public FlatBufferVerifier withMaxTables(int tables) {
        return new FlatBufferVerifier(root, fileIdentifier, maxDepth, tables, exact);
    }

    /**
     * Exact mode, as in the Python verifier: also refuse vtable slots the schema does not have and
     * any run of more than 7 bytes that no field of the root reaches. FlatBuffers carry no type
     * tag, so a valid buffer of another table often reads as the expected one; a builder never
     * writes either of these, a wrong table or spliced garbage does. It also refuses fields
     * appended by a newer schema, so use it only where both ends share this schema.
     */
    public FlatBufferVerifier withExact(boolean on) {
        return new FlatBufferVerifier(root, fileIdentifier, maxDepth, maxTables, on);
    }

    public TableLayout root() {
        return root;
    }

    /** Verifies the whole array. */
    public void verify(byte[] bytes) throws VerificationException {
        verify(ByteBuffer.wrap(bytes));
    }

    /**
     * Verifies the bytes from {@code buffer.position()} to its limit, as the generated
     * {@code getRootAs...(buffer)} reads them; the buffer's position, limit and order are left alone.
     */
    public void verify(ByteBuffer buffer) throws VerificationException {
        new Walk(buffer).run();
    }

    /**
     * Verifies, turning a failure into the caller's own exception made from the message
     * ({@code where: why}), e.g. {@code verify(bb, ModelFormatException::new)}.
     */
    public <X extends Exception> void verify(ByteBuffer buffer, Function<String, X> onFailure) throws X {
        try {
            verify(buffer);
        } catch (VerificationException e) {
            X mapped = onFailure.apply(e.getMessage());
            if (mapped.getCause() == null) {
                try {
                    mapped.initCause(e);
                } catch (IllegalStateException alreadySetToNull) {
                    // the caller's exception chose its cause (null): keep it
                }
            }
            throw mapped;
        }
    }

    /** The state of one verification. */
    private final class Walk {
        private final ByteBuffer bb;
        private final int base;
        private final int n;
        private final List<long[]> covered = new ArrayList<>();
        private final CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        private int tablesLeft = maxTables;

        Walk(ByteBuffer buffer) {
            this.bb = buffer.duplicate().order(ByteOrder.LITTLE_ENDIAN);
            this.base = buffer.position();
            this.n = buffer.remaining();
        }

        void run() throws VerificationException {
            if (n < 8) {
                throw new VerificationException(root.name, "a buffer of " + n + " bytes is too short to be a FlatBuffer");
            }
            if (fileIdentifier != null) {
                StringBuilder found = new StringBuilder();
                for (int k = 0; k < 4; k++) {
                    int c = bb.get(base + 4 + k) & 0xff;
                    found.append(c >= 32 && c < 127 ? String.valueOf((char) c) : String.format("\\x%02x", c));
                }
                if (!fileIdentifier.contentEquals(found)) {
                    throw new VerificationException(root.name, "file identifier is '" + found + "', expected '"
                            + fileIdentifier + "' (a buffer of another schema)");
                }
            }
            cover(0, 4);
            int rootPos = offsetTarget(0, root.name);
            table(rootPos, root, root.name, 0);
            if (exact) {
                checkCoverage();
            }
        }

        private VerificationException fail(String where, String why) {
            return new VerificationException(where, why);
        }

        private long u32(long pos, String where) throws VerificationException {
            if (pos < 0 || pos + 4 > n) {
                throw fail(where, "4 bytes at " + pos + " are past the end of the " + n + "-byte buffer");
            }
            return bb.getInt(base + (int) pos) & 0xffffffffL;
        }

        private int u16(long pos) {
            return bb.getShort(base + (int) pos) & 0xffff;
        }

        /** Follows the uoffset stored at pos; the target must lie inside the buffer. */
        private int offsetTarget(long pos, String where) throws VerificationException {
            if (pos % UOFFSET != 0) {
                throw fail(where, "offset at " + pos + " is not 4-byte aligned");
            }
            long off = u32(pos, where);
            if (off == 0 || pos + off + 4 > n) {
                throw fail(where, "offset " + off + " at " + pos + " points outside the " + n + "-byte buffer");
            }
            return (int) (pos + off);
        }

        private void table(int pos, TableLayout table, String where, int depth) throws VerificationException {
            if (depth > maxDepth) {
                throw fail(where, "tables nested deeper than " + maxDepth);
            }
            if (--tablesLeft < 0) {
                throw fail(where, "too many tables in one buffer");
            }
            if (pos % 4 != 0) {
                throw fail(where, "table " + table.name + " at " + pos + " is not 4-byte aligned");
            }
            if ((long) pos + 4 > n) {
                throw fail(where, "table " + table.name + " at " + pos + " is past the end of the buffer");
            }
            long vtable = (long) pos - bb.getInt(base + pos);
            if (vtable < 0 || vtable % 2 != 0 || vtable + 4 > n) {
                throw fail(where, "vtable of " + table.name + " at " + vtable + " is outside the buffer or misaligned");
            }
            int vsize = u16(vtable);
            int tsize = u16(vtable + 2);
            // the Java runtime reads the vtable size as a signed short
            if (vsize < 4 || vsize % 2 != 0 || vsize > Short.MAX_VALUE || vtable + vsize > n) {
                throw fail(where, "vtable of " + table.name + " has a bad size " + vsize);
            }
            if (tsize < 4 || (long) pos + tsize > n) {
                throw fail(where, "table " + table.name + " claims " + tsize + " bytes, past the end of the buffer");
            }
            if (exact) {
                cover(vtable, vtable + vsize);
                cover(pos, (long) pos + tsize);
                for (int slot = table.fields.size(); slot < (vsize - 4) / 2; slot++) {
                    if (u16(vtable + 4 + 2L * slot) != 0) {
                        throw fail(where, "field slot " + slot + " is not in table " + table.name + " of the schema");
                    }
                }
            }
            for (FieldLayout field : table.fields) {
                int entry = 4 + 2 * field.slot;
                int voff = entry < vsize ? u16(vtable + entry) : 0;
                String fwhere = where + "." + field.name;
                if (voff == 0) {
                    if (field.required) {
                        throw fail(fwhere, "required field is missing");
                    }
                    continue;
                }
                int width = field.kind == FieldLayout.Kind.SCALAR ? field.size : UOFFSET;
                if (voff < 4 || voff + width > tsize) {
                    throw fail(fwhere, "field offset " + voff + " (+" + width + " bytes) is outside its " + tsize + "-byte table");
                }
                if (voff > Short.MAX_VALUE) {
                    throw fail(fwhere, "field offset " + voff + " is above 32767, which the Java runtime reads as negative");
                }
                long fpos = (long) pos + voff;
                switch (field.kind) {
                    case SCALAR:
                        if (fpos % width != 0) {
                            throw fail(fwhere, width + "-byte scalar at " + fpos + " is misaligned");
                        }
                        break;
                    case STRING:
                        string(offsetTarget(fpos, fwhere), fwhere);
                        break;
                    case TABLE:
                        table(offsetTarget(fpos, fwhere), field.ref(), fwhere, depth + 1);
                        break;
                    default:
                        vector(offsetTarget(fpos, fwhere), field, fwhere, depth);
                }
            }
        }

        private void string(int pos, String where) throws VerificationException {
            if (pos % 4 != 0) {
                throw fail(where, "string at " + pos + " is not 4-byte aligned");
            }
            long length = u32(pos, where);
            long end = pos + 4 + length;
            if (end + 1 > n) {
                throw fail(where, "string of " + length + " bytes runs past the end of the buffer");
            }
            if (bb.get(base + (int) end) != 0) {
                throw fail(where, "string is not NUL-terminated");
            }
            cover(pos, end + 1);
            ByteBuffer bytes = bb.duplicate();
            bytes.limit(base + (int) end).position(base + pos + 4);
            try {
                utf8.reset().decode(bytes);
            } catch (CharacterCodingException e) {
                throw fail(where, "string is not valid UTF-8 (" + e.getMessage() + ")");
            }
        }

        private void vector(int pos, FieldLayout field, String where, int depth) throws VerificationException {
            if (pos % 4 != 0) {
                throw fail(where, "vector at " + pos + " is not 4-byte aligned");
            }
            long count = u32(pos, where);
            int width = field.element == FieldLayout.Kind.SCALAR ? field.elementSize : UOFFSET;
            long start = pos + 4L;
            if (start + count * width > n) {
                throw fail(where, "vector of " + count + " × " + width + " bytes runs past the end of the buffer");
            }
            cover(pos, start + count * width);
            if (field.element == FieldLayout.Kind.SCALAR) {
                return;
            }
            if (count > tablesLeft && field.element == FieldLayout.Kind.TABLE) {
                throw fail(where, "vector of " + count + " tables is more than this verifier accepts");
            }
            for (int i = 0; i < count; i++) {
                String iwhere = where + "[" + i + "]";
                int target = offsetTarget(start + 4L * i, iwhere);
                if (field.element == FieldLayout.Kind.STRING) {
                    string(target, iwhere);
                } else {
                    table(target, field.ref(), iwhere, depth + 1);
                }
            }
        }

        /** Records a byte range reached from the root, for exact mode. */
        private void cover(long from, long to) {
            if (exact) {
                covered.add(new long[] {from, to});
            }
        }

        /** Every byte must belong to an object reached from the root, but alignment padding. */
        private void checkCoverage() throws VerificationException {
            covered.sort(Comparator.comparingLong(r -> r[0]));
            long end = 0;
            for (long[] r : covered) {
                if (r[0] - end > MAX_PADDING) {
                    throw fail("buffer", (r[0] - end) + " bytes at " + end + " belong to no field of the root table");
                }
                end = Math.max(end, r[1]);
            }
            if (n - end > MAX_PADDING) {
                throw fail("buffer", (n - end) + " trailing bytes at " + end + " belong to no field of the root table");
            }
        }
    }
}
