package com.mindspore.flclient;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.flatbuffers.FlatBufferBuilder;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;

import mindspore.schema.RequestPushMetrics;
import mindspore.schema.ResponseCode;
import mindspore.schema.ResponsePushMetrics;

/** The push of r1.6's RequestPushMetrics after each evaluation, against a scripted server in this JVM. */
class PushMetricsStepTest extends ScriptedServerTest {
    /** What the job told its listener: the last epoch loss and the accuracy of each iteration. */
    private static final class Told implements TrainListener {
        final List<Float> lastLoss = new ArrayList<>();
        final List<Float> accuracy = new ArrayList<>();
        private float loss;

        @Override
        public void onEpochLoss(int iteration, int epoch, float l) {
            loss = l;
        }

        @Override
        public void onIterationAccuracy(int iteration, float acc) {
            lastLoss.add(loss);
            accuracy.add(acc);
        }
    }

    private static byte[] pushOk() {
        FlatBufferBuilder b = new FlatBufferBuilder(32);
        b.finish(ResponsePushMetrics.createResponsePushMetrics(b, ResponseCode.SUCCEED));
        return b.sizedByteArray();
    }

    @Test
    void eachEvaluatedIterationPushesItsAccuracyAndLastEpochLoss() {
        Fixture.serveHappily(server, 3, 2);
        server.on(PushMetricsStep.ROUND, r -> FakeServer.Answer.buffer(pushOk()));
        FLParameter p = fx.parameter(server.url());
        Told told = new Told();
        p.setTrainListener(told);
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(p).flJobRun());
        List<FakeServer.Request> pushes = server.requests(PushMetricsStep.ROUND);
        assertEquals(3, pushes.size());
        for (int i = 0; i < 3; i++) {
            RequestPushMetrics m = RequestPushMetrics.getRootAsRequestPushMetrics(ByteBuffer.wrap(pushes.get(i).body));
            assertEquals(told.accuracy.get(i), m.accuracy(), 0.0f);
            assertEquals(told.lastLoss.get(i), m.loss(), 0.0f);
        }
        // each push follows that iteration's getModel and comes before the next startFLJob
        long getModel1 = server.requests("getModel").get(0).atMillis;
        long start2 = server.requests("startFLJob").get(1).atMillis;
        assertTrue(getModel1 <= pushes.get(0).atMillis && pushes.get(0).atMillis <= start2);
    }

    @Test
    void aServerWithoutTheEndpointChangesNothingAndIsToldOnce() throws Exception {
        Fixture.serveHappily(server, 3, 1); // no pushMetrics handler: HTTP 404, as a server without it
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        assertEquals(3, server.requests(PushMetricsStep.ROUND).size());
        assertEquals(3, server.requests("getModel").size());
        String log = fx.logText();
        assertEquals(1, log.split("\\[pushMetrics\\] not taken by the server \\(HTTP 404\\)", -1).length - 1, log);
    }
}
