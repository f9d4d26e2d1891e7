package com.mindspore.flclient;

import com.mindspore.flclient.runtime.schema.RoundPlugins;

import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The startFLJob plan decoded and checked once, by the rules of schema/round_plugins.json. */
class PlanTest {
    private static RoundPlugins.Aggregation row(String device, boolean reportsLoss, boolean single) {
        for (RoundPlugins.Aggregation a : RoundPlugins.AGGREGATION_TYPES) {
            if (a.device.equals(device) && a.reportsLoss == reportsLoss && a.needsSingleUploads == single
                    && a.refused == null) {
                return a;
            }
        }
        throw new AssertionError("no row " + device);
    }

    static final RoundPlugins.Aggregation FEDPROX = row(FedProxTraining.DEVICE, false, false);
    static final RoundPlugins.Aggregation LOSS_REPORTING = row(PlainTraining.DEVICE, true, true);

    static FLMessages.WirePlan wire() {
        FLMessages.WirePlan w = new FLMessages.WirePlan();
        w.iterations = 3;
        w.epochs = 1;
        w.lr = 0.1f;
        return w;
    }

    private static Plan decode(FLMessages.WirePlan w) {
        return Plan.decode(w, Map.of());
    }

    private static String refusal(FLMessages.WirePlan w) {
        return assertThrows(IllegalArgumentException.class, () -> decode(w)).getMessage();
    }

    @Test
    void anR16PlanWithoutAggregationOrEncryptTypeIsFedAvgInTheClear() {
        Plan plan = decode(wire());
        assertEquals(RoundPlugins.aggregation(0), plan.aggregation);
        assertEquals(PlainTraining.DEVICE, plan.aggregation.device);
        assertEquals(PlainUpload.NAME, plan.encrypt.name);
        assertFalse(plan.reportsLoss());
        assertEquals(null, plan.earlyStop);
    }

    @Test
    void theAsynchronousServerModeChoosesTheAsyncLoopAndOnlyInTheClear() {
        FLMessages.WirePlan w = wire();
        assertFalse(decode(w).async);
        w.serverMode = AsyncRounds.SERVER_MODE;
        assertTrue(decode(w).async);
        for (RoundPlugins.Encrypt e : RoundPlugins.ENCRYPT_TYPES) {
            if (!e.name.equals(PlainUpload.NAME)) {
                FLMessages.WirePlan masked = wire();
                masked.serverMode = AsyncRounds.SERVER_MODE;
                masked.encryptType = e.name;
                masked.t = 2;
                masked.dpEps = 50f;
                masked.dpDelta = 0.01f;
                masked.dpNormClip = 1f;
                assertTrue(refusal(masked).contains("asynchronous uploads travel in the clear"), e.name);
            }
        }
    }

    @Test
    void theAggregationTypeIsFoundByItsWireValueWithItsDeviceParameters() {
        FLMessages.WirePlan w = wire();
        w.hasAggregation = true;
        w.aggregationType = FEDPROX.wire;
        w.aggregationWeights = new float[] {0.25f};
        Plan plan = decode(w);
        assertEquals(FEDPROX, plan.aggregation);
        assertEquals(0.25, plan.deviceParam(FedProxTraining.MU));
    }

    @Test
    void anUnknownAggregationValueIsRefusedListingTheKnownOnes() {
        FLMessages.WirePlan w = wire();
        w.hasAggregation = true;
        w.aggregationType = 99;
        String m = refusal(w);
        assertTrue(m.contains("aggregation.type = 99") && m.contains(RoundPlugins.aggregation(0).name + "=0"), m);
    }

    @Test
    void aRefusedAggregationTypeEndsWithItsReason() {
        for (RoundPlugins.Aggregation a : RoundPlugins.AGGREGATION_TYPES) {
            if (a.refused != null) {
                FLMessages.WirePlan w = wire();
                w.hasAggregation = true;
                w.aggregationType = a.wire;
                String m = refusal(w);
                assertTrue(m.contains(a.name) && m.contains(a.refused), m);
            }
        }
    }

    @Test
    void deviceParametersFollowTheirRuleAndTheirCount() {
        FLMessages.WirePlan w = wire();
        w.hasAggregation = true;
        w.aggregationType = FEDPROX.wire;
        w.aggregationWeights = new float[0];
        assertTrue(refusal(w).contains("aggregation.weights has 0 value(s)"));
        w.aggregationWeights = new float[] {-1f};
        assertTrue(refusal(w).contains(RoundPlugins.parameter(FedProxTraining.MU).rule));
        w.aggregationWeights = new float[] {Float.NaN};
        assertTrue(refusal(w).contains(RoundPlugins.parameter(FedProxTraining.MU).rule));
    }

    @Test
    void dpParametersFollowTheServersRules() {
        FLMessages.WirePlan w = wire();
        w.encryptType = DpUpload.NAME;
        w.dpEps = Float.POSITIVE_INFINITY;
        w.dpDelta = 0.01f;
        w.dpNormClip = 1f;
        assertEquals(Double.POSITIVE_INFINITY, decode(w).dpEps, "eps = inf: clip only");
        w.dpNormClip = Float.POSITIVE_INFINITY;
        assertTrue(refusal(w).contains("dp_norm_clip = Infinity: must be a finite number > 0"), refusal(w));
        w.dpNormClip = 1f;
        w.dpDelta = 1f;
        assertTrue(refusal(w).contains("dp_delta = 1.0: must be in (0, 1)"), refusal(w));
        w.dpDelta = 0.01f;
        w.dpEps = 0f;
        assertTrue(refusal(w).contains("dp_eps = 0.0"), refusal(w));
    }

    @Test
    void theLearningRateIsCheckedOnceByTheTablesRule() {
        FLMessages.WirePlan w = wire();
        w.lr = 0f;
        assertEquals(0f, decode(w).lr, "0: an r1.6 server that does not send it, the model's own is kept");
        for (float bad : new float[] {-0.1f, Float.NaN, Float.POSITIVE_INFINITY}) {
            w.lr = bad;
            assertTrue(refusal(w).contains("lr = " + bad + ": " + RoundPlugins.parameter("client_learning_rate").rule),
                    refusal(w));
        }
    }

    @Test
    void anUnknownEncryptTypeIsRefusedListingTheTablesTypes() {
        FLMessages.WirePlan w = wire();
        w.encryptType = "ROT13";
        String m = refusal(w);
        assertTrue(m.contains("ROT13") && m.contains(RoundPlugins.names(RoundPlugins.ENCRYPT_TYPES)), m);
    }

    @Test
    void anAggregationThatReadsEachUploadIsRefusedUnderMasking() {
        FLMessages.WirePlan w = wire();
        w.hasAggregation = true;
        w.aggregationType = LOSS_REPORTING.wire;
        w.encryptType = PairwiseMaskingSteps.NAME;
        w.t = 2;
        String m = refusal(w);
        assertTrue(m.contains(LOSS_REPORTING.name) && m.contains(PairwiseMaskingSteps.NAME), m);
    }

    @Test
    void theLossIsReportedWhenTheAggregationOrTheEarlyStopAsks() {
        FLMessages.WirePlan w = wire();
        w.hasAggregation = true;
        w.aggregationType = LOSS_REPORTING.wire;
        assertTrue(decode(w).reportsLoss());
        for (RoundPlugins.EarlyStop e : RoundPlugins.EARLY_STOP_TYPES) {
            FLMessages.WirePlan s = wire();
            s.hasEarlyStop = true;
            s.earlyStopType = e.wire;
            s.earlyStopWeight = 0.01f;
            s.earlyStopRounds = 2;
            Plan plan = decode(s);
            assertEquals(e, plan.earlyStop);
            assertEquals(e.reportsLoss, plan.reportsLoss(), e.name);
        }
    }

    @Test
    void earlyStopValuesFollowTheirRules() {
        FLMessages.WirePlan w = wire();
        w.hasEarlyStop = true;
        w.earlyStopType = 7;
        assertTrue(refusal(w).contains("early_stop.early_stop_type = 7"));
        w.earlyStopType = 0;
        w.earlyStopRounds = 0;
        assertTrue(refusal(w).contains("early_stop.rounds = 0: must be an integer >= 1"), refusal(w));
    }

    @Test
    void epochsAndIterationsMustBePositive() {
        FLMessages.WirePlan w = wire();
        w.epochs = 0;
        assertTrue(refusal(w).contains("epochs = 0"));
        w.epochs = 1;
        w.iterations = 0;
        assertTrue(refusal(w).contains("iterations = 0"));
    }

    @Test
    void theServersControlVariateIsKeptReadOnlyAndMustBeFinite() {
        Map<String, float[]> c = new LinkedHashMap<>();
        c.put("fc.bias", new float[] {1f, 2f});
        Plan plan = Plan.decode(wire(), c);
        assertThrows(UnsupportedOperationException.class, () -> plan.controlVariate.put("x", new float[0]));
        c.put("fc.weight", new float[] {Float.NaN});
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Plan.decode(wire(), c)).getMessage()
                .contains("control_variate fc.weight"));
    }

    @Test
    void everyEncryptTypeAndDeviceKindOfTheTableHasItsPlugIn() {
        FLParameter p = new FLParameter();
        p.setTrainModelPath("unused.ms");
        assertEquals(RoundPlugins.ENCRYPT_TYPES.size(), UploadProtection.forClient(p, null, null, null).size());
        java.util.Set<String> kinds = new java.util.HashSet<>();
        RoundPlugins.AGGREGATION_TYPES.forEach(a -> kinds.add(a.device));
        assertEquals(kinds, LocalTraining.forClient(p).keySet());
    }
}
