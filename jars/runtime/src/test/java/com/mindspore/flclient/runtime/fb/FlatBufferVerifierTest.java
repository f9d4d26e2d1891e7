package com.mindspore.flclient.runtime.fb;

import com.google.flatbuffers.FlatBufferBuilder;
import com.mindspore.flclient.runtime.schema.SchemaLayouts;
import mindspore.schema.FeatureMap;
import mindspore.schema.RequestUpdateModel;
import mindspore.schema.ResponseFLJob;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The schema-driven verifier: what it accepts can be read by the generated accessors, the rest is refused with where and why. */
class FlatBufferVerifierTest {
    private static final TableLayout REPLY = SchemaLayouts.RESPONSE_FL_JOB;

    private static VerificationException refused(FlatBufferVerifier v, byte[] bytes) {
        return assertThrows(VerificationException.class, () -> v.verify(bytes));
    }

    private static void assertMentions(VerificationException e, String where, String why) {
        assertEquals(where, e.where(), e.getMessage());
        assertTrue(e.why().contains(why), "'" + why + "' missing in: " + e.getMessage());
        assertEquals(e.where() + ": " + e.why(), e.getMessage());
    }

    private static int u32(byte[] b, int pos) {
        return ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).getInt(pos);
    }

    private static void putU32(byte[] b, int pos, int value) {
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(pos, value);
    }

    @Test
    void theGeneratedLayoutsHoldEveryTableOfEverySchema() {
        assertEquals(20 + 14 + 4, SchemaLayouts.ALL.size(), "tables of fl_job, cipher and ms_model: " + SchemaLayouts.ALL);
        assertSame(SchemaLayouts.MODEL, SchemaLayouts.byName("Model"));
        assertSame(SchemaLayouts.FL_PLAN, SchemaLayouts.RESPONSE_FL_JOB.fields.get(5).ref());
        assertEquals("feature_map: [FeatureMap] @6", REPLY.fields.get(6).toString());
        assertEquals("is_selected: 1-byte scalar @3", REPLY.fields.get(3).toString());
    }

    @Test
    void aWellFormedBufferOfEveryTablePassesAndReadsWithoutError() throws Exception {
        for (TableLayout table : SchemaLayouts.ALL) {
            for (long seed = 0; seed < 5; seed++) {
                byte[] bytes = SchemaBuffers.build(table, seed, null);
                FlatBufferVerifier.of(table).verify(bytes);
                FlatBufferVerifier.of(table).withExact(true).verify(bytes);
                assertDoesNotThrow(() -> SchemaBuffers.readAll(SchemaBuffers.root(table, bytes)), table.name);
            }
        }
    }

    @Test
    void aBufferAtANonZeroPositionIsVerifiedFromThere() throws Exception {
        byte[] bytes = SchemaBuffers.build(REPLY, 1, null);
        byte[] shifted = new byte[bytes.length + 8];
        System.arraycopy(bytes, 0, shifted, 8, bytes.length);
        ByteBuffer bb = ByteBuffer.wrap(shifted);
        bb.position(8);
        FlatBufferVerifier.of(REPLY).withExact(true).verify(bb);
        assertEquals(8, bb.position());
    }

    @Test
    void everyTruncationIntoDataIsRefused() {
        byte[] good = SchemaBuffers.build(REPLY, 3, null);
        for (int len = 0; len < good.length; len++) {
            byte[] cut = Arrays.copyOf(good, len);
            try {
                FlatBufferVerifier.of(REPLY).verify(cut);
            } catch (VerificationException e) {
                assertTrue(e.where().startsWith("ResponseFLJob"), e.getMessage());
                continue;
            }
            // only the alignment padding after the first-written object may go
            byte[] dropped = Arrays.copyOfRange(good, len, good.length);
            assertTrue(dropped.length < 8 && Arrays.equals(dropped, new byte[dropped.length]),
                    "accepted after dropping " + Arrays.toString(dropped));
        }
        assertMentions(refused(FlatBufferVerifier.of(REPLY), new byte[5]), "ResponseFLJob", "5 bytes is too short");
    }

    @Test
    void aRootOffsetOutsideTheBufferIsRefused() {
        byte[] bad = SchemaBuffers.build(REPLY, 2, null);
        putU32(bad, 0, bad.length + 40);
        assertMentions(refused(FlatBufferVerifier.of(REPLY), bad), "ResponseFLJob", "points outside the");
    }

    @Test
    void aVtableOffsetOutsideTheBufferIsRefused() {
        byte[] bad = SchemaBuffers.build(REPLY, 2, null);
        putU32(bad, u32(bad, 0), -1_000_000);
        assertMentions(refused(FlatBufferVerifier.of(REPLY), bad), "ResponseFLJob", "vtable of ResponseFLJob");
    }

    @Test
    void aStringThatRunsPastTheEndIsNamedByItsPath() {
        FlatBufferBuilder b = new FlatBufferBuilder(64);
        int reason = b.createString("busy");
        ResponseFLJob.startResponseFLJob(b);
        ResponseFLJob.addReason(b, reason);
        b.finish(ResponseFLJob.endResponseFLJob(b));
        byte[] bad = b.sizedByteArray();
        int at = indexOf(bad, new byte[] {4, 0, 0, 0, 'b', 'u', 's', 'y', 0});
        putU32(bad, at, 4000);
        assertMentions(refused(FlatBufferVerifier.of(REPLY), bad), "ResponseFLJob.reason", "runs past the end");
        putU32(bad, at, 4);
        bad[at + 8] = 'x';
        assertMentions(refused(FlatBufferVerifier.of(REPLY), bad), "ResponseFLJob.reason", "not NUL-terminated");
        bad[at + 8] = 0;
        bad[at + 7] = (byte) 0xC3;
        assertMentions(refused(FlatBufferVerifier.of(REPLY), bad), "ResponseFLJob.reason", "not valid UTF-8");
    }

    @Test
    void aVectorLongerThanTheBufferIsNamedWithItsIndexPath() {
        FlatBufferBuilder b = new FlatBufferBuilder(64);
        int name = b.createString("w");
        int fm = FeatureMap.createFeatureMap(b, name, FeatureMap.createDataVector(b, new float[] {1, 2}));
        int maps = ResponseFLJob.createFeatureMapVector(b, new int[] {fm});
        ResponseFLJob.startResponseFLJob(b);
        ResponseFLJob.addFeatureMap(b, maps);
        b.finish(ResponseFLJob.endResponseFLJob(b));
        byte[] bad = b.sizedByteArray();
        byte[] pattern = {2, 0, 0, 0, 0, 0, (byte) 0x80, 0x3f}; // data: length 2, then 1.0f
        int at = indexOf(bad, pattern);
        putU32(bad, at, 1 << 20);
        assertMentions(refused(FlatBufferVerifier.of(REPLY), bad), "ResponseFLJob.feature_map[0].data", "runs past the end");
    }

    private static int indexOf(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int k = 0; k < needle.length; k++) {
                if (haystack[i + k] != needle[k]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new AssertionError("pattern not in buffer");
    }

    @Test
    void aMissingRequiredFieldIsRefused() {
        TableLayout named = new TableLayout("Named", FieldLayout.scalar(0, "n", 4), FieldLayout.string(1, "name").required());
        FlatBufferBuilder b = new FlatBufferBuilder(32);
        b.startTable(2);
        b.addInt(0, 7, 0);
        b.finish(b.endTable());
        assertMentions(refused(FlatBufferVerifier.of(named), b.sizedByteArray()), "Named.name", "required field is missing");
    }

    @Test
    void theFileIdentifierIsCheckedWhenConfigured() throws Exception {
        byte[] model = SchemaBuffers.build(SchemaLayouts.MODEL, 1, "PFMS");
        FlatBufferVerifier v = FlatBufferVerifier.of(SchemaLayouts.MODEL).withFileIdentifier("PFMS");
        v.verify(model);
        model[4] = 'X';
        assertMentions(refused(v, model), "Model", "file identifier is 'XFMS', expected 'PFMS'");
        FlatBufferVerifier.of(SchemaLayouts.MODEL).verify(model);
    }

    @Test
    void exactModeRefusesABufferOfAnotherTable() throws Exception {
        FlatBufferBuilder b = new FlatBufferBuilder(64);
        int data = FeatureMap.createDataVector(b, new float[] {1, 2, 3, 4});
        int fm = FeatureMap.createFeatureMap(b, b.createString("fc.weight"), data);
        int maps = RequestUpdateModel.createFeatureMapVector(b, new int[] {fm});
        int name = b.createString("job");
        RequestUpdateModel.startRequestUpdateModel(b);
        RequestUpdateModel.addFlName(b, name);
        RequestUpdateModel.addFeatureMap(b, maps);
        b.finish(RequestUpdateModel.endRequestUpdateModel(b));
        byte[] update = b.sizedByteArray();
        // feature_map sits in slot 3, data_size's: structurally a RequestFLJob whose data_size is an offset
        FlatBufferVerifier.of(SchemaLayouts.REQUEST_FL_JOB).verify(update);
        assertMentions(refused(FlatBufferVerifier.of(SchemaLayouts.REQUEST_FL_JOB).withExact(true), update),
                "buffer", "belong to no field of the root table");
    }

    @Test
    void theTableAndDepthBudgetsBoundTheWork() {
        byte[] reply = SchemaBuffers.build(REPLY, 0, null);
        assertMentions(refused(FlatBufferVerifier.of(REPLY).withMaxDepth(0), reply), "ResponseFLJob.fl_plan_config",
                "nested deeper than 0");
        VerificationException e = refused(FlatBufferVerifier.of(REPLY).withMaxTables(1), reply);
        assertTrue(e.why().contains("too many tables") || e.why().contains("more than this verifier accepts"), e.getMessage());
    }

    @Test
    void theCallersExceptionCarriesTheMessageAndTheCause() {
        byte[] bad = new byte[3];
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> FlatBufferVerifier.of(REPLY).verify(ByteBuffer.wrap(bad), IllegalStateException::new));
        assertEquals("ResponseFLJob: a buffer of 3 bytes is too short to be a FlatBuffer", e.getMessage());
        assertTrue(e.getCause() instanceof VerificationException);
    }

    /**
     * Random corruption of real buffers (fixed seed): the verifier accepts or throws its own
     * exception, never anything else, and what it accepts every generated accessor can read.
     */
    @Test
    void randomMutationsAreRefusedOrReadSafely() {
        String[] roots = {"ResponseFLJob", "ResponseGetModel", "ReturnExchangeKeys", "Model"};
        Random r = new Random(20240611L);
        int accepted = 0;
        int refused = 0;
        for (String rootName : roots) {
            TableLayout table = SchemaLayouts.byName(rootName);
            FlatBufferVerifier verifier = FlatBufferVerifier.of(table);
            for (int trial = 0; trial < 1500; trial++) {
                byte[] good = SchemaBuffers.build(table, trial % 7, null);
                byte[] bad = mutate(good, r);
                try {
                    verifier.verify(bad);
                } catch (VerificationException e) {
                    assertTrue(e.where().startsWith(rootName) && !e.why().isEmpty(), e.getMessage());
                    refused++;
                    continue;
                }
                accepted++;
                assertDoesNotThrow(() -> SchemaBuffers.readAll(SchemaBuffers.root(table, bad)),
                        () -> rootName + " accepted but unreadable: " + Arrays.toString(bad));
            }
        }
        // the loop must exercise both outcomes, or it tests nothing
        assertTrue(accepted > 100 && refused > 100, "accepted " + accepted + ", refused " + refused);
    }

    private static byte[] mutate(byte[] good, Random r) {
        byte[] bad = good.clone();
        switch (r.nextInt(4)) {
            case 0: // flip a few bits
                for (int k = 1 + r.nextInt(3); k > 0; k--) {
                    int i = r.nextInt(bad.length);
                    bad[i] ^= (byte) (1 << r.nextInt(8));
                }
                return bad;
            case 1: // random bytes
                for (int k = 1 + r.nextInt(3); k > 0; k--) {
                    bad[r.nextInt(bad.length)] = (byte) r.nextInt(256);
                }
                return bad;
            case 2: // an aligned word replaced by a small or huge offset
                int at = 4 * r.nextInt(bad.length / 4);
                putU32(bad, at, r.nextBoolean() ? r.nextInt(bad.length * 2) - bad.length / 2 : r.nextInt());
                return bad;
            default: // truncated, or extended with garbage
                if (r.nextBoolean()) {
                    return Arrays.copyOf(bad, r.nextInt(bad.length));
                }
                byte[] longer = Arrays.copyOf(bad, bad.length + 1 + r.nextInt(16));
                for (int i = bad.length; i < longer.length; i++) {
                    longer[i] = (byte) r.nextInt(256);
                }
                return longer;
        }
    }

    @Test
    void aValidStringIsDecodedByTheAccessorAsTheVerifierSawIt() throws Exception {
        FlatBufferBuilder b = new FlatBufferBuilder(64);
        int reason = b.createString("ünïcode ✓");
        ResponseFLJob.startResponseFLJob(b);
        ResponseFLJob.addReason(b, reason);
        b.finish(ResponseFLJob.endResponseFLJob(b));
        byte[] bytes = b.sizedByteArray();
        FlatBufferVerifier.of(REPLY).withExact(true).verify(bytes);
        assertEquals("ünïcode ✓", ResponseFLJob.getRootAsResponseFLJob(ByteBuffer.wrap(bytes)).reason());
    }
}
