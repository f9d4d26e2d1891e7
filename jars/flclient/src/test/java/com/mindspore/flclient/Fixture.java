package com.mindspore.flclient;

import com.mindspore.flclient.model.RunType;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

import mindspore.schema.ResponseCode;

/**
 * Files and parameters of one test client: a {@link LinearModel} file (4 features, 3 classes,
 * batch 4), 10 training samples (so the last batch is padded) and 6 evaluation samples of a
 * learnable task (the class is the largest of the first three features).
 */
final class Fixture {
    static final int FEATURES = 4;
    static final int CLASSES = 3;
    static final int BATCH = 4;
    static final int TRAIN_SAMPLES = 10;

    final Path dir;
    final Path model;
    final Path trainData;
    final Path trainLabel;
    final Path evalData;
    final Path evalLabel;
    final Path log;

    Fixture(Path dir, String name) throws IOException {
        this.dir = dir;
        Files.createDirectories(dir);
        this.model = dir.resolve(name + ".model");
        new LinearModel(FEATURES, CLASSES, BATCH, 0.5f).save(model);
        this.trainData = dir.resolve(name + "_train_data.bin");
        this.trainLabel = dir.resolve(name + "_train_label.bin");
        this.evalData = dir.resolve(name + "_test_data.bin");
        this.evalLabel = dir.resolve(name + "_test_label.bin");
        writeTask(trainData, trainLabel, TRAIN_SAMPLES, 1);
        writeTask(evalData, evalLabel, 6, 2);
        this.log = dir.resolve(name).resolve("client.log");
    }

    static void writeTask(Path data, Path label, int n, int seed) throws IOException {
        ByteBuffer x = ByteBuffer.allocate(n * FEATURES * 4).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer y = ByteBuffer.allocate(n * 4).order(ByteOrder.LITTLE_ENDIAN);
        java.util.Random r = new java.util.Random(seed);
        for (int i = 0; i < n; i++) {
            int cls = i % CLASSES;
            for (int f = 0; f < FEATURES; f++) {
                x.putFloat(f == cls ? 1f + r.nextFloat() : r.nextFloat() * 0.5f);
            }
            y.putInt(cls);
        }
        Files.write(data, x.array());
        Files.write(label, y.array());
    }

    FLParameter parameter(String url) {
        FLParameter p = new FLParameter();
        p.setDomainName(url);
        p.setFlName(LinearClient.class.getName());
        p.setTrainModelPath(model.toString());
        Map<RunType, List<String>> files = new EnumMap<>(RunType.class);
        files.put(RunType.TRAINMODE, List.of(trainData.toString(), trainLabel.toString()));
        files.put(RunType.EVALMODE, List.of(evalData.toString(), evalLabel.toString()));
        files.put(RunType.INFERMODE, List.of(evalData.toString()));
        p.setDataMap(files);
        p.setBatchSize(BATCH);
        p.setClientID("client-" + dir.getFileName());
        p.setSleepTime(50);
        p.setRetryTimeout(5);
        p.setTimeOut(5);
        p.setLogPath(log.toString());
        return p;
    }

    /** The global model the scripted server sends in iteration {@code it}. */
    static Map<String, float[]> globalModel(int it) {
        Map<String, float[]> w = new LinkedHashMap<>();
        float[] weight = new float[CLASSES * FEATURES];
        for (int i = 0; i < weight.length; i++) {
            weight[i] = 0.01f * (i + it);
        }
        w.put("fc.weight", weight);
        w.put("fc.bias", new float[] {0.1f * it, 0f, -0.1f * it});
        return w;
    }

    /** A well-behaved server for {@code iterations} iterations: every round succeeds at once. */
    static void serveHappily(FakeServer server, int iterations, int epochs) {
        AtomicInteger it = new AtomicInteger();
        server.on("startFLJob", r -> FakeServer.Answer.buffer(
                Replies.startOk(it.incrementAndGet(), iterations, epochs, 0.5f, globalModel(it.get() - 1))));
        server.on("updateModel", r -> FakeServer.Answer.buffer(Replies.update(ResponseCode.SUCCEED, "")));
        server.on("getModel", r -> FakeServer.Answer.buffer(Replies.getModel(ResponseCode.SUCCEED,
                Replies.readGetModel(r.body).iteration(), globalModel(Replies.readGetModel(r.body).iteration()))));
    }

    String logText() throws IOException {
        return Files.exists(log) ? Files.readString(log) : "";
    }
}
