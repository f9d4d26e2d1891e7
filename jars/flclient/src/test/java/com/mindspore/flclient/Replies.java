package com.mindspore.flclient;

import com.google.flatbuffers.FlatBufferBuilder;

import java.nio.ByteBuffer;
import java.util.LinkedHashMap;
import java.util.Map;

import mindspore.schema.CipherPublicParams;
import mindspore.schema.FLPlan;
import mindspore.schema.FeatureMap;
import mindspore.schema.RequestFLJob;
import mindspore.schema.RequestGetModel;
import mindspore.schema.RequestUpdateModel;
import mindspore.schema.ResponseCode;
import mindspore.schema.ResponseFLJob;
import mindspore.schema.ResponseGetModel;
import mindspore.schema.ResponseUpdateModel;

/** Server replies built with the generated classes, and the client's requests read back. */
final class Replies {
    private Replies() {
    }

    static byte[] startFLJob(int retcode, int iteration, boolean selected, String nextReqTime, int iterations, int epochs,
                             float lr, Map<String, float[]> weights) {
        return startFLJob(retcode, iteration, selected, nextReqTime, iterations, epochs, lr, weights, Fixture.BATCH);
    }

    /** @param miniBatch the plan's mini_batch (the server's client_batch_size) */
    static byte[] startFLJob(int retcode, int iteration, boolean selected, String nextReqTime, int iterations, int epochs,
                             float lr, Map<String, float[]> weights, int miniBatch) {
        FlatBufferBuilder b = new FlatBufferBuilder(1024);
        int fm = weights == null ? 0 : FLMessages.featureMapVector(b, weights);
        int reason = b.createString("scripted");
        int next = b.createString(nextReqTime);
        int enc = b.createString("NOT_ENCRYPT");
        int cipher = CipherPublicParams.createCipherPublicParams(b, 0, 0, 0, 0, 0f, 0f, 0f, enc);
        int mode = b.createString("FEDERATED_LEARNING");
        int name = b.createString("test");
        FLPlan.startFLPlan(b);
        FLPlan.addServerMode(b, mode);
        FLPlan.addFlName(b, name);
        FLPlan.addIterations(b, iterations);
        FLPlan.addEpochs(b, epochs);
        FLPlan.addMiniBatch(b, miniBatch);
        FLPlan.addLr(b, lr);
        FLPlan.addCipher(b, cipher);
        int plan = FLPlan.endFLPlan(b);
        int ts = b.createString("0");
        ResponseFLJob.startResponseFLJob(b);
        ResponseFLJob.addRetcode(b, retcode);
        ResponseFLJob.addReason(b, reason);
        ResponseFLJob.addIteration(b, iteration);
        ResponseFLJob.addIsSelected(b, selected);
        ResponseFLJob.addNextReqTime(b, next);
        if (retcode == ResponseCode.SUCCEED) {
            ResponseFLJob.addFlPlanConfig(b, plan);
        }
        if (weights != null) {
            ResponseFLJob.addFeatureMap(b, fm);
        }
        ResponseFLJob.addTimestamp(b, ts);
        b.finish(ResponseFLJob.endResponseFLJob(b));
        return b.sizedByteArray();
    }

    static byte[] startOk(int iteration, int iterations, int epochs, float lr, Map<String, float[]> weights) {
        return startFLJob(ResponseCode.SUCCEED, iteration, true, "", iterations, epochs, lr, weights);
    }

    static byte[] startCode(int retcode, String nextReqTime) {
        return startFLJob(retcode, 0, false, nextReqTime, 0, 0, 0f, null);
    }

    static byte[] update(int retcode, String nextReqTime) {
        return update(retcode, nextReqTime, "scripted");
    }

    static byte[] update(int retcode, String nextReqTime, String reasonText) {
        FlatBufferBuilder b = new FlatBufferBuilder(128);
        int reason = b.createString(reasonText);
        int next = b.createString(nextReqTime);
        int ts = b.createString("0");
        b.finish(ResponseUpdateModel.createResponseUpdateModel(b, retcode, reason, 0, next, ts));
        return b.sizedByteArray();
    }

    static byte[] getModel(int retcode, int iteration, Map<String, float[]> weights) {
        FlatBufferBuilder b = new FlatBufferBuilder(1024);
        int fm = weights == null ? 0 : FLMessages.featureMapVector(b, weights);
        int reason = b.createString("scripted");
        int ts = b.createString("0");
        b.finish(ResponseGetModel.createResponseGetModel(b, retcode, reason, iteration, fm, ts, (byte) 0, 0));
        return b.sizedByteArray();
    }

    static RequestFLJob readStart(byte[] body) {
        return RequestFLJob.getRootAsRequestFLJob(ByteBuffer.wrap(body));
    }

    static RequestUpdateModel readUpdate(byte[] body) {
        return RequestUpdateModel.getRootAsRequestUpdateModel(ByteBuffer.wrap(body));
    }

    static RequestGetModel readGetModel(byte[] body) {
        return RequestGetModel.getRootAsRequestGetModel(ByteBuffer.wrap(body));
    }

    static Map<String, float[]> weights(RequestUpdateModel m) {
        Map<String, float[]> out = new LinkedHashMap<>();
        for (int i = 0; i < m.featureMapLength(); i++) {
            FeatureMap f = m.featureMap(i);
            float[] v = new float[f.dataLength()];
            for (int j = 0; j < v.length; j++) {
                v[j] = f.data(j);
            }
            out.put(f.weightFullname(), v);
        }
        return out;
    }
}
