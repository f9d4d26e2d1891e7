package com.mindspore.flclient;

import com.google.flatbuffers.FlatBufferBuilder;
import com.mindspore.flclient.runtime.fb.FlatBufferVerifier;
import com.mindspore.flclient.runtime.fb.TableLayout;
import com.mindspore.flclient.runtime.fb.VerificationException;
import com.mindspore.flclient.runtime.schema.SchemaLayouts;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

import mindspore.schema.Aggregation;
import mindspore.schema.CipherPublicParams;
import mindspore.schema.EarlyStop;
import mindspore.schema.FLPlan;
import mindspore.schema.FeatureMap;
import mindspore.schema.RequestAsyncGetModel;
import mindspore.schema.RequestAsyncUpdateModel;
import mindspore.schema.RequestFLJob;
import mindspore.schema.RequestGetModel;
import mindspore.schema.RequestUpdateModel;
import mindspore.schema.ResponseAsyncGetModel;
import mindspore.schema.ResponseAsyncUpdateModel;
import mindspore.schema.ResponseFLJob;
import mindspore.schema.ResponseGetModel;
import mindspore.schema.ResponseUpdateModel;

/**
 * The device rounds' messages (docs/protocol.md), built and read with the classes generated from
 * schema/fl_job.fbs. Buffers are finished without a file identifier. Reading never trusts the
 * server: every reply is checked by {@link FlatBufferVerifier} against its root table (the
 * layouts generated from the same schema) before any accessor reads it, so one that is not a
 * well-formed buffer of that table becomes {@link Kind#UNPARSEABLE} with the verifier's reason
 * instead of an exception deep in the round loop. Not exact mode: a newer server may append
 * fields, which the schema's "only append" rule allows.
 */
final class FLMessages {
    private static final FlatBufferVerifier FL_JOB_REPLY = FlatBufferVerifier.of(SchemaLayouts.RESPONSE_FL_JOB);
    private static final FlatBufferVerifier UPDATE_MODEL_REPLY = FlatBufferVerifier.of(SchemaLayouts.RESPONSE_UPDATE_MODEL);
    private static final FlatBufferVerifier GET_MODEL_REPLY = FlatBufferVerifier.of(SchemaLayouts.RESPONSE_GET_MODEL);
    private static final FlatBufferVerifier ASYNC_UPDATE_MODEL_REPLY =
            FlatBufferVerifier.of(SchemaLayouts.RESPONSE_ASYNC_UPDATE_MODEL);
    private static final FlatBufferVerifier ASYNC_GET_MODEL_REPLY =
            FlatBufferVerifier.of(SchemaLayouts.RESPONSE_ASYNC_GET_MODEL);

    private FLMessages() {
    }

    /** What came back from a round. */
    enum Kind {
        /** A FlatBuffer reply: see retcode. */
        REPLY,
        /** Plain text "The cluster is in safemode." */
        SAFEMODE,
        /** Plain text "The server's training job is disabled or finished." */
        FINISHED,
        /** HTTP status other than 200, or a body that is no reply of the expected table. */
        UNPARSEABLE
    }

    /**
     * The plan of startFLJob as the wire has it (fields the client uses), before {@link Plan#decode}
     * checks it once; nothing but that method reads it.
     */
    static final class WirePlan {
        int iterations;
        int epochs;
        int miniBatch;
        float lr;
        String encryptType = "";
        String serverMode = "";
        /** PW_ENCRYPT: reconstruct_secrets_threshold (t). DP_ENCRYPT: epsilon, delta, clip. */
        int t;
        float dpEps;
        float dpDelta;
        float dpNormClip;
        /** FLPlan.aggregation: present, its AggregationType and weights (the type's device parameters). */
        boolean hasAggregation;
        int aggregationType;
        float[] aggregationWeights = new float[0];
        /** FLPlan.early_stop: present, its EarlyStopType, weight and rounds. */
        boolean hasEarlyStop;
        int earlyStopType;
        float earlyStopWeight;
        int earlyStopRounds;
        /** MindSpore Federated's upload_compress_type and upload_sparse_rate (docs/compression.md). */
        byte uploadCompressType;
        float uploadSparseRate;
    }

    /**
     * The name under which Scaffold's control-variate entry of a weight is masked together with the
     * weights under PW_ENCRYPT (docs/protocol.md); it travels in control_variate under the plain name.
     */
    static final String MASKED_CONTROL_VARIATE = "control_variate/";

    /**
     * pyflclient's server refuses a second upload of one fl_id in one iteration with RequestError
     * and a reason holding these words (pyflclient/server/store.py's {@code Upload.DUPLICATE};
     * tests/test_wire_java_python.py holds the two together): the server has this device's upload.
     */
    static final String ALREADY_UPLOADED = "already uploaded in this iteration";

    /** A reply of any device round, flattened. */
    static final class Response {
        Kind kind = Kind.UNPARSEABLE;
        String detail = "";
        int retcode;
        String reason = "";
        int iteration;
        boolean isSelected;
        String nextReqTime = "";
        WirePlan plan;
        Map<String, float[]> featureMap = new LinkedHashMap<>();
        /** startFLJob: Scaffold's server control variate c (empty otherwise). */
        Map<String, float[]> controlVariate = new LinkedHashMap<>();
        /** A cipher round's payload (public keys, shares or the client list: {@link CipherMessages}). */
        Object cipher;

        @Override
        public String toString() {
            if (kind != Kind.REPLY) {
                return kind + (detail.isEmpty() ? "" : " (" + detail + ")");
            }
            return "retcode " + retcode + (reason.isEmpty() ? "" : ", reason: " + reason);
        }
    }

    static String now() {
        return Long.toString(System.currentTimeMillis());
    }

    static byte[] requestFLJob(String flName, String flId, int iteration, int dataSize) {
        FlatBufferBuilder b = new FlatBufferBuilder(256);
        int name = b.createString(flName);
        int id = b.createString(flId);
        int ts = b.createString(now());
        DeviceSigner signer = DeviceSigner.of(flId);
        int[] pki = new int[5];
        if (signer != null) { // r1.6's PKI fields; the signature is written by DeviceSigner.resign before sending
            pki[0] = RequestFLJob.createSignDataVector(b, new byte[signer.signatureBytes]);
            pki[1] = b.createString(signer.keyAttestation);
            pki[2] = b.createString(signer.equipCert);
            pki[3] = b.createString(signer.equipCaCert);
            pki[4] = b.createString(signer.rootCert);
        }
        int types = CompressMessages.downloadTypes(b);
        RequestFLJob.startRequestFLJob(b);
        RequestFLJob.addFlName(b, name);
        RequestFLJob.addFlId(b, id);
        RequestFLJob.addIteration(b, iteration);
        RequestFLJob.addDataSize(b, dataSize);
        RequestFLJob.addTimestamp(b, ts);
        if (signer != null) {
            RequestFLJob.addSignData(b, pki[0]);
            RequestFLJob.addKeyAttestation(b, pki[1]);
            RequestFLJob.addEquipCert(b, pki[2]);
            RequestFLJob.addEquipCaCert(b, pki[3]);
            RequestFLJob.addRootCert(b, pki[4]);
        }
        RequestFLJob.addDownloadCompressTypes(b, types);
        b.finish(RequestFLJob.endRequestFLJob(b));
        return b.sizedByteArray();
    }

    /**
     * The plain updateModel body: the weights (already × data_size), upload_loss when {@code upload}
     * has one (written even when 0: its presence says it was sent) and Scaffold's control_variate; with
     * a compressed upload ({@link Upload#compressed}) no feature_map but its compression fields
     * ({@link CompressMessages}).
     */
    static byte[] requestUpdateModel(String flName, String flId, int iteration, Upload upload) {
        long floats = 0;
        for (float[] w : upload.compressed == null ? upload.weights.values() : java.util.List.<float[]>of()) {
            floats += w.length;
        }
        if (upload.compressed != null) {
            floats += CompressMessages.bytes(upload.compressed) / 4;
        }
        for (float[] w : upload.controlVariate.values()) {
            floats += w.length;
        }
        FlatBufferBuilder b = new FlatBufferBuilder((int) Math.min(Integer.MAX_VALUE / 2, floats * 4 + 1024));
        int cv = upload.controlVariate.isEmpty() ? 0 : featureMapVector(b, upload.controlVariate);
        if (upload.compressed != null) {
            int[] written = CompressMessages.writeUpload(b, upload.compressed.tensors, upload.compressed.names);
            return finishUpdateModel(b, flName, flId, iteration, 0, upload, cv, written);
        }
        return finishUpdateModel(b, flName, flId, iteration, featureMapVector(b, upload.weights), upload, cv, null);
    }

    /**
     * The RequestUpdateModel around FeatureMap vectors already in the builder ({@code fm}, {@code cv} 0:
     * none; {@code compressed}: the compression fields {@link CompressMessages#writeUpload} wrote, or null).
     */
    private static byte[] finishUpdateModel(FlatBufferBuilder b, String flName, String flId, int iteration, int fm,
                                            Upload upload, int cv, int[] compressed) {
        int name = b.createString(flName);
        int id = b.createString(flId);
        int ts = b.createString(now());
        DeviceSigner signer = DeviceSigner.of(flId);
        int signature = signer == null ? 0 : RequestUpdateModel.createSignatureVector(b, new byte[signer.signatureBytes]);
        RequestUpdateModel.startRequestUpdateModel(b);
        RequestUpdateModel.addFlName(b, name);
        RequestUpdateModel.addFlId(b, id);
        RequestUpdateModel.addIteration(b, iteration);
        if (fm != 0) {
            RequestUpdateModel.addFeatureMap(b, fm);
        }
        RequestUpdateModel.addTimestamp(b, ts);
        if (compressed != null) {
            CompressMessages.addUpload(b, compressed, upload.compressed.codec.type, upload.compressed.codec.rate);
        }
        if (upload.hasLoss) {
            b.forceDefaults(true); // a loss of exactly 0 is still a loss the device sent
            RequestUpdateModel.addUploadLoss(b, upload.loss);
            b.forceDefaults(false);
        }
        if (cv != 0) {
            RequestUpdateModel.addControlVariate(b, cv);
        }
        if (signer != null) { // written by DeviceSigner.resign before each attempt
            RequestUpdateModel.addSignature(b, signature);
        }
        b.finish(RequestUpdateModel.endRequestUpdateModel(b));
        return b.sizedByteArray();
    }

    /**
     * PW_ENCRYPT's upload: the ring elements {@code y} (entries in sorted name order, {@code sizes[name]}
     * each) as FeatureMaps of two float32 slots per element carrying the element's little-endian
     * bytes. Written as ints, never as floats: the bits are not a float and must arrive unchanged.
     * Entries named {@link #MASKED_CONTROL_VARIATE}{@code <weight>} go to control_variate under the
     * weight's name, the others to feature_map.
     */
    static byte[] requestUpdateModelMasked(String flName, String flId, int iteration, Map<String, Integer> sizes,
                                           long[] y, Upload upload) {
        FlatBufferBuilder b = new FlatBufferBuilder((int) Math.min(Integer.MAX_VALUE / 2, y.length * 8L + 1024));
        java.util.TreeMap<String, Integer> sorted = new java.util.TreeMap<>(sizes);
        java.util.List<Integer> weights = new java.util.ArrayList<>();
        java.util.List<Integer> variates = new java.util.ArrayList<>();
        int at = 0;
        for (Map.Entry<String, Integer> e : sorted.entrySet()) {
            int n = e.getValue();
            b.startVector(4, 2 * n, 4);
            for (int i = at + n - 1; i >= at; i--) {
                b.addInt((int) (y[i] >>> 32));
                b.addInt((int) y[i]);
            }
            int data = b.endVector();
            boolean variate = e.getKey().startsWith(MASKED_CONTROL_VARIATE);
            int name = b.createString(variate ? e.getKey().substring(MASKED_CONTROL_VARIATE.length()) : e.getKey());
            (variate ? variates : weights).add(FeatureMap.createFeatureMap(b, name, data));
            at += n;
        }
        int fm = RequestUpdateModel.createFeatureMapVector(b, weights.stream().mapToInt(Integer::intValue).toArray());
        int cv = variates.isEmpty() ? 0
                : RequestUpdateModel.createControlVariateVector(b, variates.stream().mapToInt(Integer::intValue).toArray());
        return finishUpdateModel(b, flName, flId, iteration, fm, upload, cv, null);
    }

    /**
     * The asynchronous upload (r1.6's RequestAsyncUpdateModel): the weights × data_size, as updateModel's,
     * the version trained on as {@code iteration} and {@code dataSize} (docs/async.md).
     */
    static byte[] requestAsyncUpdateModel(String flName, String flId, int iteration, int dataSize,
                                          Map<String, float[]> weights) {
        long floats = 0;
        for (float[] w : weights.values()) {
            floats += w.length;
        }
        FlatBufferBuilder b = new FlatBufferBuilder((int) Math.min(Integer.MAX_VALUE / 2, floats * 4 + 1024));
        int fm = featureMapVector(b, weights);
        int name = b.createString(flName);
        int id = b.createString(flId);
        RequestAsyncUpdateModel.startRequestAsyncUpdateModel(b);
        RequestAsyncUpdateModel.addFlName(b, name);
        RequestAsyncUpdateModel.addFlId(b, id);
        RequestAsyncUpdateModel.addIteration(b, iteration);
        RequestAsyncUpdateModel.addDataSize(b, dataSize);
        RequestAsyncUpdateModel.addFeatureMap(b, fm);
        b.finish(RequestAsyncUpdateModel.endRequestAsyncUpdateModel(b));
        return b.sizedByteArray();
    }

    /** RequestAsyncGetModel: the newest model ({@code iteration}: the version this device holds). */
    static byte[] requestAsyncGetModel(String flName, int iteration) {
        FlatBufferBuilder b = new FlatBufferBuilder(128);
        int name = b.createString(flName);
        RequestAsyncGetModel.startRequestAsyncGetModel(b);
        RequestAsyncGetModel.addFlName(b, name);
        RequestAsyncGetModel.addIteration(b, iteration);
        b.finish(RequestAsyncGetModel.endRequestAsyncGetModel(b));
        return b.sizedByteArray();
    }

    static Response parseAsyncUpdateModel(FLCommunication.Reply reply) {
        Response r = preParse(reply, ASYNC_UPDATE_MODEL_REPLY);
        if (r.kind != Kind.REPLY) {
            return r;
        }
        ResponseAsyncUpdateModel m = ResponseAsyncUpdateModel.getRootAsResponseAsyncUpdateModel(buffer(reply.body));
        r.retcode = m.retcode();
        r.reason = orEmpty(m.reason());
        r.iteration = m.iteration();
        return r;
    }

    static Response parseAsyncGetModel(FLCommunication.Reply reply) {
        Response r = preParse(reply, ASYNC_GET_MODEL_REPLY);
        if (r.kind != Kind.REPLY) {
            return r;
        }
        ResponseAsyncGetModel m = ResponseAsyncGetModel.getRootAsResponseAsyncGetModel(buffer(reply.body));
        r.retcode = m.retcode();
        r.reason = orEmpty(m.reason());
        r.iteration = m.iteration();
        for (int i = 0; i < m.featureMapLength(); i++) {
            if (!readFeature(m.featureMap(i), r.featureMap, true)) {
                return unnamedFeature(SchemaLayouts.RESPONSE_ASYNC_GET_MODEL, i);
            }
        }
        return r;
    }

    static byte[] requestGetModel(String flName, int iteration) {
        FlatBufferBuilder b = new FlatBufferBuilder(128);
        int name = b.createString(flName);
        int ts = b.createString(now());
        int types = CompressMessages.downloadTypes(b);
        RequestGetModel.startRequestGetModel(b);
        RequestGetModel.addFlName(b, name);
        RequestGetModel.addIteration(b, iteration);
        RequestGetModel.addTimestamp(b, ts);
        RequestGetModel.addDownloadCompressTypes(b, types);
        b.finish(RequestGetModel.endRequestGetModel(b));
        return b.sizedByteArray();
    }

    /**
     * A float vector with the bytes of the generated {@code FeatureMap.createDataVector}, copied in
     * bulk: the generated loop adds one float at a time (a space check and a put per element), ~2 % of
     * a trainer thread's time at 1,000 clients.
     */
    static int floatVector(FlatBufferBuilder b, float[] data) {
        b.createUnintializedVector(Float.BYTES, data.length, Float.BYTES).asFloatBuffer().put(data);
        return b.endVector();
    }

    /** A vector of FeatureMap tables (name, data) in map order. */
    static int featureMapVector(FlatBufferBuilder b, Map<String, float[]> weights) {
        int[] offsets = new int[weights.size()];
        int i = 0;
        for (Map.Entry<String, float[]> e : weights.entrySet()) {
            int data = floatVector(b, e.getValue());
            int name = b.createString(e.getKey());
            offsets[i++] = FeatureMap.createFeatureMap(b, name, data);
        }
        return RequestUpdateModel.createFeatureMapVector(b, offsets);
    }

    static Response parseStartFLJob(FLCommunication.Reply reply) {
        Response r = preParse(reply, FL_JOB_REPLY);
        if (r.kind != Kind.REPLY) {
            return r;
        }
        ResponseFLJob m = ResponseFLJob.getRootAsResponseFLJob(buffer(reply.body));
        r.retcode = m.retcode();
        r.reason = orEmpty(m.reason());
        r.iteration = m.iteration();
        r.isSelected = m.isSelected();
        r.nextReqTime = orEmpty(m.nextReqTime());
        FLPlan p = m.flPlanConfig();
        if (p != null) {
            WirePlan plan = new WirePlan();
            plan.iterations = p.iterations();
            plan.epochs = p.epochs();
            plan.miniBatch = p.miniBatch();
            plan.lr = p.lr();
            plan.serverMode = orEmpty(p.serverMode());
            CipherPublicParams c = p.cipher();
            plan.encryptType = c == null ? "" : orEmpty(c.encryptType());
            if (c != null) {
                plan.t = c.t();
                plan.dpEps = c.dpEps();
                plan.dpDelta = c.dpDelta();
                plan.dpNormClip = c.dpNormClip();
            }
            Aggregation a = p.aggregation();
            if (a != null) {
                plan.hasAggregation = true;
                plan.aggregationType = a.type();
                plan.aggregationWeights = new float[a.weightsLength()];
                for (int i = 0; i < plan.aggregationWeights.length; i++) {
                    plan.aggregationWeights[i] = a.weights(i);
                }
            }
            EarlyStop e = p.earlyStop();
            if (e != null) {
                plan.hasEarlyStop = true;
                plan.earlyStopType = e.earlyStopType();
                plan.earlyStopWeight = e.weight();
                plan.earlyStopRounds = e.rounds();
            }
            plan.uploadCompressType = m.uploadCompressType();
            plan.uploadSparseRate = m.uploadSparseRate();
            r.plan = plan;
        }
        for (int i = 0; i < m.featureMapLength(); i++) {
            if (!readFeature(m.featureMap(i), r.featureMap, true)) {
                return unnamedFeature(SchemaLayouts.RESPONSE_FL_JOB, i);
            }
        }
        for (int i = 0; i < m.controlVariateLength(); i++) {
            if (!readFeature(m.controlVariate(i), r.controlVariate, false)) {
                return unparseable(SchemaLayouts.RESPONSE_FL_JOB.name + ".control_variate[" + i
                        + "].weight_fullname: missing (a control variate needs its weight's name)");
            }
        }
        String compressed = CompressMessages.readModel(SchemaLayouts.RESPONSE_FL_JOB.name, m.downloadCompressType(),
                m.compressFeatureMapLength(), m::compressFeatureMap, r.featureMap);
        return compressed == null ? r : unparseable(compressed);
    }

    static Response parseUpdateModel(FLCommunication.Reply reply) {
        Response r = preParse(reply, UPDATE_MODEL_REPLY);
        if (r.kind != Kind.REPLY) {
            return r;
        }
        ResponseUpdateModel m = ResponseUpdateModel.getRootAsResponseUpdateModel(buffer(reply.body));
        r.retcode = m.retcode();
        r.reason = orEmpty(m.reason());
        r.nextReqTime = orEmpty(m.nextReqTime());
        return r;
    }

    static Response parseGetModel(FLCommunication.Reply reply) {
        Response r = preParse(reply, GET_MODEL_REPLY);
        if (r.kind != Kind.REPLY) {
            return r;
        }
        ResponseGetModel m = ResponseGetModel.getRootAsResponseGetModel(buffer(reply.body));
        r.retcode = m.retcode();
        r.reason = orEmpty(m.reason());
        r.iteration = m.iteration();
        for (int i = 0; i < m.featureMapLength(); i++) {
            if (!readFeature(m.featureMap(i), r.featureMap, true)) {
                return unnamedFeature(SchemaLayouts.RESPONSE_GET_MODEL, i);
            }
        }
        String compressed = CompressMessages.readModel(SchemaLayouts.RESPONSE_GET_MODEL.name, m.downloadCompressType(),
                m.compressFeatureMapLength(), m::compressFeatureMap, r.featureMap);
        return compressed == null ? r : unparseable(compressed);
    }

    /** A weight without a name cannot be matched to the model: the schema allows it, the protocol does not. */
    private static Response unnamedFeature(TableLayout table, int index) {
        return unparseable(table.name + ".feature_map[" + index + "].weight_fullname: missing (a weight needs its name)");
    }

    /**
     * Adds one (name, data) pair; false when the name is missing. The buffer is verified: reads stay inside it.
     * A global model's weights ({@code shared}) are {@link SharedWeights}: the same array for every client of
     * this JVM that received the same bytes, read-only.
     */
    private static boolean readFeature(FeatureMap fm, Map<String, float[]> out, boolean shared) {
        String name = fm.weightFullname();
        if (name == null) {
            return false;
        }
        ByteBuffer data = fm.dataAsByteBuffer();
        float[] values;
        if (data == null) {
            values = new float[0];
        } else if (shared) {
            values = SharedWeights.of(name, data);
        } else {
            values = new float[data.remaining() / Float.BYTES];
            data.order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
        }
        out.put(name, values);
        return true;
    }

    /** HTTP status and plain-text replies; REPLY when the body is a verified buffer of the verifier's table. */
    static Response preParse(FLCommunication.Reply reply, FlatBufferVerifier verifier) {
        String text = plainText(reply.body);
        if (text != null && text.contains("safemode")) {
            Response r = new Response();
            r.kind = Kind.SAFEMODE;
            r.detail = text;
            return r;
        }
        if (text != null && text.contains("disabled or finished")) {
            Response r = new Response();
            r.kind = Kind.FINISHED;
            r.detail = text;
            return r;
        }
        if (reply.httpStatus != 200) {
            return unparseable("HTTP " + reply.httpStatus + (text == null ? "" : ": " + abbreviate(text)));
        }
        try {
            verifier.verify(reply.body);
        } catch (VerificationException e) {
            return unparseable("not a " + verifier.root().name + " buffer: " + e.getMessage()
                    + (text == null ? "" : " (body: " + abbreviate(text) + ")"));
        }
        Response r = new Response();
        r.kind = Kind.REPLY;
        return r;
    }

    /** The body as text when it is printable ASCII (FlatBuffers always hold zero bytes), else null. */
    static String plainText(byte[] body) {
        if (body.length == 0 || body.length > 4096) {
            return null;
        }
        for (byte c : body) {
            if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f) {
                return null;
            }
        }
        return new String(body, StandardCharsets.UTF_8).strip();
    }

    private static String abbreviate(String s) {
        return s.length() > 200 ? s.substring(0, 200) + "..." : s;
    }

    private static Response unparseable(String detail) {
        Response r = new Response();
        r.kind = Kind.UNPARSEABLE;
        r.detail = detail;
        return r;
    }

    private static ByteBuffer buffer(byte[] body) {
        return ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static String orEmpty(String s) {
        return s == null ? "" : s;
    }
}
