package com.mindspore.flclient;

import com.google.flatbuffers.FlatBufferBuilder;
import com.mindspore.flclient.cases.ArrayDataSet;
import com.mindspore.flclient.cases.BinFiles;
import com.mindspore.flclient.runtime.GradientHook;
import com.mindspore.flclient.runtime.schema.RoundPlugins;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import mindspore.schema.Aggregation;
import mindspore.schema.CipherPublicParams;
import mindspore.schema.FLPlan;
import mindspore.schema.FeatureMap;
import mindspore.schema.RequestUpdateModel;
import mindspore.schema.ResponseCode;
import mindspore.schema.ResponseFLJob;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The aggregation types' device side in whole jobs against a scripted server: what FedProx,
 * Scaffold and the loss-reporting types change in training and in the upload, each against the
 * test's own transcription of the paper's step.
 */
class StrategiesRoundTest extends ScriptedServerTest {
    private static final int EPOCHS = 2;
    private static final float LR = 0.5f;
    /** RequestUpdateModel's field ids (schema/fl_job.fbs). */
    private static final int UPLOAD_LOSS = 6;
    private static final int CONTROL_VARIATE = 16;

    private static RoundPlugins.Aggregation byDevice(String device) {
        for (RoundPlugins.Aggregation a : RoundPlugins.AGGREGATION_TYPES) {
            if (a.device.equals(device)) {
                return a;
            }
        }
        throw new AssertionError(device);
    }

    private static RoundPlugins.Aggregation reportingLoss() {
        for (RoundPlugins.Aggregation a : RoundPlugins.AGGREGATION_TYPES) {
            if (a.reportsLoss && a.refused == null) {
                return a;
            }
        }
        throw new AssertionError("no loss-reporting type");
    }

    /** A startFLJob reply with the plan's aggregation (type, weights) and Scaffold's c. */
    static byte[] start(int iteration, int iterations, Map<String, float[]> weights, int type, float[] deviceParams,
                        Map<String, float[]> c) {
        FlatBufferBuilder b = new FlatBufferBuilder(1024);
        int fm = FLMessages.featureMapVector(b, weights);
        int cv = c.isEmpty() ? 0 : FLMessages.featureMapVector(b, c);
        int enc = b.createString(PlainUpload.NAME);
        int cipher = CipherPublicParams.createCipherPublicParams(b, 0, 0, 0, 0, 0f, 0f, 0f, enc);
        int agg = Aggregation.createAggregation(b, (byte) type, Aggregation.createWeightsVector(b, deviceParams));
        FLPlan.startFLPlan(b);
        FLPlan.addIterations(b, iterations);
        FLPlan.addEpochs(b, EPOCHS);
        FLPlan.addMiniBatch(b, Fixture.BATCH);
        FLPlan.addLr(b, LR);
        FLPlan.addAggregation(b, agg);
        FLPlan.addCipher(b, cipher);
        int plan = FLPlan.endFLPlan(b);
        ResponseFLJob.startResponseFLJob(b);
        ResponseFLJob.addRetcode(b, ResponseCode.SUCCEED);
        ResponseFLJob.addIteration(b, iteration);
        ResponseFLJob.addIsSelected(b, true);
        ResponseFLJob.addFlPlanConfig(b, plan);
        ResponseFLJob.addFeatureMap(b, fm);
        if (cv != 0) {
            ResponseFLJob.addControlVariate(b, cv);
        }
        b.finish(ResponseFLJob.endResponseFLJob(b));
        return b.sizedByteArray();
    }

    /** Serves {@code iterations} iterations from {@code first} with the given aggregation and c of iteration it. */
    private void serve(int first, int iterations, int type, float[] deviceParams, boolean scaffold) {
        AtomicInteger it = new AtomicInteger(first - 1);
        server.on("startFLJob", r -> FakeServer.Answer.buffer(start(it.incrementAndGet(), first - 1 + iterations,
                Fixture.globalModel(it.get() - 1), type, deviceParams,
                scaffold ? serverC(it.get()) : Map.of())));
        server.on("updateModel", r -> FakeServer.Answer.buffer(Replies.update(ResponseCode.SUCCEED, "")));
        server.on("getModel", r -> FakeServer.Answer.buffer(Replies.getModel(ResponseCode.SUCCEED,
                Replies.readGetModel(r.body).iteration(), Fixture.globalModel(Replies.readGetModel(r.body).iteration()))));
    }

    /** The server's control variate c of iteration {@code it}. */
    static Map<String, float[]> serverC(int it) {
        Map<String, float[]> c = new LinkedHashMap<>();
        float[] w = new float[Fixture.CLASSES * Fixture.FEATURES];
        for (int i = 0; i < w.length; i++) {
            w[i] = 0.02f * (float) Math.cos(i + it);
        }
        c.put("fc.weight", w);
        c.put("fc.bias", new float[] {0.05f * it, -0.03f, 0.01f});
        return c;
    }

    /** K local steps of the replica on the client's training set with {@code hook}; returns K. */
    private int train(LinearModel replica, GradientHook hook) {
        replica.setLearningRate(LR);
        replica.setGradientHook(hook);
        float[] x = BinFiles.readFloats(fx.trainData, Fixture.FEATURES, "data");
        ArrayDataSet ds = new ArrayDataSet(x, BinFiles.readInts(fx.trainLabel, "label"), Fixture.FEATURES);
        float[] batch = new float[Fixture.BATCH * Fixture.FEATURES];
        int[] labels = new int[Fixture.BATCH];
        int steps = 0;
        for (int e = 0; e < EPOCHS; e++) {
            for (int b = 0; b < ds.batchNum(Fixture.BATCH); b++) {
                ds.fillBatch(b, Fixture.BATCH, batch, labels);
                replica.trainStep(batch, labels);
                steps++;
            }
        }
        return steps;
    }

    private static boolean has(byte[] body, int fieldId) {
        ByteBuffer bb = ByteBuffer.wrap(body).order(ByteOrder.LITTLE_ENDIAN);
        int table = bb.getInt(0);
        int vtable = table - bb.getInt(table);
        int offset = 4 + 2 * fieldId;
        return offset < bb.getShort(vtable) && bb.getShort(vtable + offset) != 0;
    }

    private static Map<String, float[]> controlVariate(RequestUpdateModel m) {
        Map<String, float[]> out = new LinkedHashMap<>();
        for (int i = 0; i < m.controlVariateLength(); i++) {
            FeatureMap f = m.controlVariate(i);
            float[] v = new float[f.dataLength()];
            for (int j = 0; j < v.length; j++) {
                v[j] = f.data(j);
            }
            out.put(f.weightFullname(), v);
        }
        return out;
    }

    private static void assertClose(float[] expected, float[] got, float tol, String what) {
        assertEquals(expected.length, got.length, what);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], got[i], tol, what + "[" + i + "]");
        }
    }

    private byte[] onlyUpload() {
        assertEquals(1, server.requests("updateModel").size());
        return server.requests("updateModel").get(0).body;
    }

    @Test
    void fedAvgSendsNeitherLossNorControlVariate() {
        serve(1, 1, RoundPlugins.AGGREGATION_TYPES.get(0).wire, new float[0], false);
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        byte[] body = onlyUpload();
        assertFalse(has(body, UPLOAD_LOSS));
        assertFalse(has(body, CONTROL_VARIATE));
        assertFalse(Files.exists(ScaffoldTraining.statePath(fx.parameter(server.url()))));
    }

    /** FedProx (Li et al. 2020): every local gradient gets mu (w − w_t), w_t the received model, mu the plan's. */
    @Test
    void fedProxTrainsWithTheProximalTermOfThePlansMu() {
        float mu = 0.3f;
        serve(1, 1, byDevice(FedProxTraining.DEVICE).wire, new float[] {mu}, false);
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(fx.parameter(server.url())).flJobRun());

        LinearModel replica = LinearModel.load(fx.model);
        Map<String, float[]> global = Fixture.globalModel(0);
        global.forEach(replica::setWeight);
        train(replica, (name, w, g) -> {
            float[] x = global.get(name);
            for (int i = 0; i < g.length; i++) {
                g[i] += mu * (w[i] - x[i]);
            }
        });
        LinearModel plain = LinearModel.load(fx.model);
        global.forEach(plain::setWeight);
        train(plain, null);
        Map<String, float[]> upload = Replies.weights(Replies.readUpdate(onlyUpload()));
        for (String name : upload.keySet()) {
            float[] expected = replica.getWeight(name);
            for (int i = 0; i < expected.length; i++) {
                expected[i] *= Fixture.TRAIN_SAMPLES;
            }
            assertClose(expected, upload.get(name), 1e-5f, name);
        }
        assertTrue(Math.abs(plain.getWeight("fc.weight")[0] - replica.getWeight("fc.weight")[0]) > 1e-6,
                "the proximal term changed training");
    }

    /**
     * upload_loss: the mean training loss at the received model, before training; a padded last batch
     * weighs by its real samples (the loss callback's convention: the runtime gives a batch's mean).
     */
    @Test
    void aLossReportingTypeSendsTheTrainingLossAtTheReceivedModel() {
        serve(1, 1, reportingLoss().wire, new float[0], false);
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        LinearModel replica = LinearModel.load(fx.model);
        Fixture.globalModel(0).forEach(replica::setWeight);
        float[] x = BinFiles.readFloats(fx.trainData, Fixture.FEATURES, "data");
        ArrayDataSet ds = new ArrayDataSet(x, BinFiles.readInts(fx.trainLabel, "label"), Fixture.FEATURES);
        float[] batch = new float[Fixture.BATCH * Fixture.FEATURES];
        int[] labels = new int[Fixture.BATCH];
        double sum = 0;
        for (int b = 0; b < ds.batchNum(Fixture.BATCH); b++) {
            int valid = ds.fillBatch(b, Fixture.BATCH, batch, labels);
            sum += (double) replica.loss(batch, labels) * valid;
        }
        double expected = sum / Fixture.TRAIN_SAMPLES;
        byte[] body = onlyUpload();
        assertTrue(has(body, UPLOAD_LOSS));
        assertEquals(expected, Replies.readUpdate(body).uploadLoss(), 1e-6);
        assertFalse(has(body, CONTROL_VARIATE));
    }

    /**
     * Scaffold (Karimireddy et al. 2020): local steps use g + c − c_i; after K steps c_i⁺ is the mean
     * raw gradient (1/K) Σ g(y_k) (option II's value under SGD, for any optimizer); the upload carries
     * Δc_i = c_i⁺ − c_i (not × data_size). c_i
     * stays in a file beside the model, so a restarted device starts its next round from it.
     */
    @Test
    void scaffoldUploadsDeltaCiAndARestartedDeviceKeepsCi() throws Exception {
        int wire = byDevice(ScaffoldTraining.DEVICE).wire;
        FLParameter p = fx.parameter(server.url());
        Map<String, float[]> ci = new LinkedHashMap<>();
        ci.put("fc.weight", new float[Fixture.CLASSES * Fixture.FEATURES]);
        ci.put("fc.bias", new float[Fixture.CLASSES]);
        for (int it = 1; it <= 2; it++) {
            server.close();
            server = new FakeServer();
            p = fx.parameter(server.url());
            serve(it, 1, wire, new float[0], true); // one iteration per job: a new SyncFLJob is a restarted device
            LinearModel replica = LinearModel.load(fx.model); // the model file as the device left it
            assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(p).flJobRun());

            Map<String, float[]> x = Fixture.globalModel(it - 1);
            Map<String, float[]> c = serverC(it);
            x.forEach(replica::setWeight);
            Map<String, float[]> own = ci;
            Map<String, double[]> raw = new LinkedHashMap<>();
            int k = train(replica, (name, w, g) -> {
                double[] sum = raw.computeIfAbsent(name, n -> new double[g.length]);
                for (int i = 0; i < g.length; i++) {
                    sum[i] += g[i];
                    g[i] += c.get(name)[i] - own.get(name)[i];
                }
            });
            Map<String, float[]> next = new LinkedHashMap<>();
            Map<String, float[]> delta = new LinkedHashMap<>();
            for (String name : x.keySet()) {
                double[] sum = raw.get(name);
                float[] plus = new float[sum.length];
                float[] d = new float[sum.length];
                for (int i = 0; i < sum.length; i++) {
                    plus[i] = (float) (sum[i] / k);
                    d[i] = plus[i] - own.get(name)[i];
                }
                next.put(name, plus);
                delta.put(name, d);
            }
            Map<String, float[]> sent = controlVariate(Replies.readUpdate(onlyUpload()));
            assertEquals(delta.keySet(), sent.keySet());
            for (String name : delta.keySet()) {
                assertClose(delta.get(name), sent.get(name), 1e-4f, "iteration " + it + " delta c_i " + name);
            }
            Map<String, float[]> kept = ScaffoldTraining.read(ScaffoldTraining.statePath(p));
            for (String name : next.keySet()) {
                assertClose(next.get(name), kept.get(name), 1e-4f, "iteration " + it + " c_i " + name);
            }
            assertFalse(Files.exists(ScaffoldTraining.pendingPath(p)));
            ci = kept;
        }
    }

    @Test
    void scaffoldKeepsNoNewCiWhenTheServerRefusesTheUpload() {
        serve(1, 1, byDevice(ScaffoldTraining.DEVICE).wire, new float[0], true);
        server.on("updateModel", r -> FakeServer.Answer.buffer(Replies.update(ResponseCode.RequestError, "")));
        FLParameter p = fx.parameter(server.url());
        assertEquals(FLClientStatus.FAILED, new SyncFLJob(p).flJobRun());
        assertFalse(Files.exists(ScaffoldTraining.statePath(p)));
        assertFalse(Files.exists(ScaffoldTraining.pendingPath(p)));
    }

    @Test
    void aRefusedAggregationTypeEndsTheJobWithOneLineNamingIt() throws Exception {
        RoundPlugins.Aggregation refused = null;
        for (RoundPlugins.Aggregation a : RoundPlugins.AGGREGATION_TYPES) {
            if (a.refused != null) {
                refused = a;
            }
        }
        serve(1, 1, refused.wire, new float[0], false);
        assertEquals(FLClientStatus.FAILED, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        assertEquals(0, server.requests("updateModel").size());
        String log = fx.logText();
        assertTrue(log.contains("aggregation.type = " + refused.name + ": " + refused.refused), log);
    }

    private static long[] ring(FeatureMap f) {
        ByteBuffer data = f.dataAsByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        long[] out = new long[data.remaining() / 8];
        for (int i = 0; i < out.length; i++) {
            out[i] = data.getLong();
        }
        return out;
    }

    /**
     * PW_ENCRYPT with Scaffold: the control variate is masked in the one vector under
     * "control_variate/<weight>" (sorted with the weights) and travels in control_variate under the weight's name.
     */
    @Test
    void aMaskedUploadCarriesTheMaskedControlVariateUnderThePlainWeightName() {
        Map<String, Integer> sizes = new LinkedHashMap<>();
        sizes.put("fc.weight", 3);
        sizes.put("fc.bias", 2);
        sizes.put(FLMessages.MASKED_CONTROL_VARIATE + "fc.weight", 3);
        long[] y = {-1L, 1L << 40, 7L, 10L, 11L, Long.MIN_VALUE, 21L, 22L};
        byte[] body = FLMessages.requestUpdateModelMasked("n", "f", 4, sizes, y,
                new Upload(Map.of(), true, 0f, Map.of()));
        RequestUpdateModel m = Replies.readUpdate(body);
        Map<String, long[]> weights = new LinkedHashMap<>();
        for (int i = 0; i < m.featureMapLength(); i++) {
            weights.put(m.featureMap(i).weightFullname(), ring(m.featureMap(i)));
        }
        assertEquals(2, weights.size());
        assertEquals(1, m.controlVariateLength());
        assertEquals("fc.weight", m.controlVariate(0).weightFullname());
        // sorted: control_variate/fc.weight, fc.bias, fc.weight
        org.junit.jupiter.api.Assertions.assertArrayEquals(new long[] {-1L, 1L << 40, 7L}, ring(m.controlVariate(0)));
        org.junit.jupiter.api.Assertions.assertArrayEquals(new long[] {10L, 11L}, weights.get("fc.bias"));
        org.junit.jupiter.api.Assertions.assertArrayEquals(new long[] {Long.MIN_VALUE, 21L, 22L}, weights.get("fc.weight"));
        assertTrue(has(body, UPLOAD_LOSS), "a loss of 0 is sent when the plan asks for it");
        assertEquals(0f, m.uploadLoss());
    }

    @Test
    void aCorruptControlVariateFileEndsTheRoundWithOneLineNamingIt() throws Exception {
        serve(1, 1, byDevice(ScaffoldTraining.DEVICE).wire, new float[0], true);
        FLParameter p = fx.parameter(server.url());
        Files.write(ScaffoldTraining.statePath(p), new byte[] {1, 2, 3, 4, 5});
        assertEquals(FLClientStatus.FAILED, new SyncFLJob(p).flJobRun());
        assertEquals(0, server.requests("updateModel").size());
        String log = fx.logText();
        assertTrue(log.contains(ScaffoldTraining.statePath(p) + " is not a control-variate file of this client"), log);
    }
}
