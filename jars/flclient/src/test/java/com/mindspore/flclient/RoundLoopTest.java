package com.mindspore.flclient;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.mindspore.flclient.cases.ArrayDataSet;
import com.mindspore.flclient.cases.BinFiles;

import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;

import mindspore.schema.RequestFLJob;
import mindspore.schema.RequestUpdateModel;
import mindspore.schema.ResponseCode;

/** The round loop of docs/protocol.md against a scripted server in this JVM: one behaviour per test. */
class RoundLoopTest extends ScriptedServerTest {
    private static CompletableFuture<FLClientStatus> runAsync(SyncFLJob job) {
        return CompletableFuture.supplyAsync(job::flJobRun);
    }

    @Test
    void jobRunsEveryPlannedIterationThenSucceeds() {
        Fixture.serveHappily(server, 3, 1);
        FLClientStatus s = new SyncFLJob(fx.parameter(server.url())).flJobRun();
        assertEquals(FLClientStatus.SUCCESS, s);
        assertEquals(3, server.requests("startFLJob").size());
        assertEquals(3, server.requests("updateModel").size());
        assertEquals(3, server.requests("getModel").size());
    }

    @Test
    void startFLJobSendsFlNameFlIdAndTrainingSampleCount() {
        Fixture.serveHappily(server, 1, 1);
        FLParameter p = fx.parameter(server.url());
        new SyncFLJob(p).flJobRun();
        RequestFLJob req = Replies.readStart(server.requests("startFLJob").get(0).body);
        assertEquals(LinearClient.class.getName(), req.flName());
        assertEquals(p.getClientID(), req.flId());
        assertEquals(Fixture.TRAIN_SAMPLES, req.dataSize());
        assertTrue(Long.parseLong(req.timestamp()) > 0);
    }

    @Test
    void uploadIsTheLocallyTrainedWeightsTimesDataSize() throws Exception {
        int epochs = 2;
        Fixture.serveHappily(server, 1, epochs);
        LinearModel replica = LinearModel.load(fx.model);
        new SyncFLJob(fx.parameter(server.url())).flJobRun();

        // The same training replayed outside the client: server weights, plan lr, same padded batches.
        Fixture.globalModel(0).forEach(replica::setWeight);
        replica.setLearningRate(0.5f);
        float[] x = BinFiles.readFloats(fx.trainData, Fixture.FEATURES, "data");
        ArrayDataSet ds = new ArrayDataSet(x, BinFiles.readInts(fx.trainLabel, "label"), Fixture.FEATURES);
        float[] batch = new float[Fixture.BATCH * Fixture.FEATURES];
        int[] labels = new int[Fixture.BATCH];
        for (int e = 0; e < epochs; e++) {
            for (int b = 0; b < ds.batchNum(Fixture.BATCH); b++) {
                ds.fillBatch(b, Fixture.BATCH, batch, labels);
                replica.trainStep(batch, labels);
            }
        }
        RequestUpdateModel req = Replies.readUpdate(server.requests("updateModel").get(0).body);
        Map<String, float[]> upload = Replies.weights(req);
        assertEquals(List.of("fc.weight", "fc.bias"), new ArrayList<>(upload.keySet()));
        for (String name : upload.keySet()) {
            float[] expected = replica.getWeight(name);
            float[] got = upload.get(name);
            assertEquals(expected.length, got.length);
            for (int i = 0; i < expected.length; i++) {
                assertEquals(expected[i] * Fixture.TRAIN_SAMPLES, got[i], 1e-5f, name + "[" + i + "]");
            }
        }
        assertEquals(1, req.iteration());
    }

    @Test
    void modelFileHoldsTheDownloadedGlobalModelAfterTheRound() {
        Fixture.serveHappily(server, 2, 1);
        new SyncFLJob(fx.parameter(server.url())).flJobRun();
        LinearModel saved = LinearModel.load(fx.model);
        assertArrayEquals(Fixture.globalModel(2).get("fc.weight"), saved.getWeight("fc.weight"));
        assertArrayEquals(Fixture.globalModel(2).get("fc.bias"), saved.getWeight("fc.bias"));
    }

    @Test
    void sucNotReadyOnGetModelIsAskedAgainAfterSleepTime() {
        Fixture.serveHappily(server, 1, 1);
        AtomicInteger calls = new AtomicInteger();
        server.on("getModel", r -> calls.incrementAndGet() <= 2
                ? FakeServer.Answer.buffer(Replies.getModel(ResponseCode.SucNotReady, 1, null))
                : FakeServer.Answer.buffer(Replies.getModel(ResponseCode.SUCCEED, 1, Fixture.globalModel(1))));
        FLParameter p = fx.parameter(server.url());
        p.setSleepTime(120);
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(p).flJobRun());
        List<FakeServer.Request> gets = server.requests("getModel");
        assertEquals(3, gets.size());
        for (int i = 1; i < gets.size(); i++) {
            long gap = gets.get(i).atMillis - gets.get(i - 1).atMillis;
            assertTrue(gap >= 110, "getModel asked again after " + gap + " ms, sleepTime is 120 ms");
        }
    }

    @Test
    void outOfTimeOnStartFLJobWaitsUntilNextReqTimeThenAsksAgain() {
        Fixture.serveHappily(server, 1, 1);
        AtomicInteger calls = new AtomicInteger();
        long[] nextReq = new long[1];
        server.on("startFLJob", r -> {
            if (calls.incrementAndGet() == 1) {
                nextReq[0] = System.currentTimeMillis() + 400;
                return FakeServer.Answer.buffer(Replies.startCode(ResponseCode.OutOfTime, Long.toString(nextReq[0])));
            }
            return FakeServer.Answer.buffer(Replies.startOk(1, 1, 1, 0.5f, Fixture.globalModel(0)));
        });
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        List<FakeServer.Request> starts = server.requests("startFLJob");
        assertEquals(2, starts.size());
        assertTrue(starts.get(1).atMillis >= nextReq[0], "asked again before next_req_time");
    }

    @Test
    void outOfTimeOnUpdateModelGoesBackToStartFLJob() {
        Fixture.serveHappily(server, 1, 1);
        AtomicInteger calls = new AtomicInteger();
        server.on("updateModel", r -> calls.incrementAndGet() == 1
                ? FakeServer.Answer.buffer(Replies.update(ResponseCode.OutOfTime, Long.toString(System.currentTimeMillis())))
                : FakeServer.Answer.buffer(Replies.update(ResponseCode.SUCCEED, "")));
        AtomicInteger it = new AtomicInteger();
        server.on("startFLJob", r -> FakeServer.Answer.buffer(
                Replies.startOk(1, 1, 1, 0.5f, Fixture.globalModel(it.incrementAndGet()))));
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        assertEquals(2, server.requests("startFLJob").size());
        assertEquals(2, server.requests("updateModel").size());
        assertEquals(1, server.requests("getModel").size());
    }

    @Test
    void requestErrorOnStartFLJobFailsWithoutRetrying() throws Exception {
        server.on("startFLJob", r -> FakeServer.Answer.buffer(Replies.startCode(ResponseCode.RequestError, "")));
        assertEquals(FLClientStatus.FAILED, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        assertEquals(1, server.requests("startFLJob").size());
        assertTrue(fx.logText().contains("[startFLJob] refused"), fx.logText());
    }

    @Test
    void requestErrorOnUpdateModelFailsTheJob() {
        Fixture.serveHappily(server, 2, 1);
        server.on("updateModel", r -> FakeServer.Answer.buffer(Replies.update(ResponseCode.RequestError, "")));
        assertEquals(FLClientStatus.FAILED, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        assertEquals(1, server.requests("updateModel").size());
        assertEquals(0, server.requests("getModel").size());
    }

    @Test
    void anUploadTheServerAlreadyHoldsCountsAsAcceptedAndTheRoundGoesOn() throws Exception {
        // a client restarted after its upload (a Ray actor that died) trains again and uploads again
        Fixture.serveHappily(server, 2, 1);
        server.on("updateModel", r -> FakeServer.Answer.buffer(Replies.update(ResponseCode.RequestError, "",
                "'c0': fl_id " + FLMessages.ALREADY_UPLOADED + " 1")));
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        assertEquals(2, server.requests("getModel").size());
        assertTrue(fx.logText().contains("already holds this device's upload"), fx.logText());
    }

    @Test
    void systemErrorIsRetriedAndTheRoundGoesOn() {
        Fixture.serveHappily(server, 1, 1);
        AtomicInteger calls = new AtomicInteger();
        server.on("updateModel", r -> FakeServer.Answer.buffer(Replies.update(
                calls.incrementAndGet() <= 2 ? ResponseCode.SystemError : ResponseCode.SUCCEED, "")));
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        assertEquals(3, server.requests("updateModel").size());
    }

    @Test
    void systemErrorBeyondMaxRetriesFailsTheJob() {
        server.on("startFLJob", r -> FakeServer.Answer.buffer(Replies.startCode(ResponseCode.SystemError, "")));
        FLParameter p = fx.parameter(server.url());
        p.setMaxRetries(3);
        assertEquals(FLClientStatus.FAILED, new SyncFLJob(p).flJobRun());
        assertEquals(4, server.requests("startFLJob").size());
    }

    @Test
    void aFinishedServerEndsTheJobNotSelectedAtOnce() throws Exception {
        server.on("startFLJob", r -> FakeServer.Answer.text("The server's training job is disabled or finished."));
        FLParameter p = fx.parameter(server.url());
        p.setMaxRetries(2);
        assertEquals(FLClientStatus.NOT_SELECTED, new SyncFLJob(p).flJobRun());
        assertEquals(1, server.requests("startFLJob").size());
        assertTrue(fx.logText().contains("the server's job is finished: this client is not selected any more (it took "
                + "part in 0 iteration(s))"), fx.logText());
    }

    @Test
    void aClientNotAdmittedUntilTheJobEndsIsNotSelectedNotFailed() throws Exception {
        AtomicInteger calls = new AtomicInteger();
        server.on("startFLJob", r -> calls.incrementAndGet() == 1
                ? FakeServer.Answer.buffer(Replies.startCode(ResponseCode.OutOfTime,
                        Long.toString(System.currentTimeMillis() + 100)))
                : FakeServer.Answer.text("The server's training job is disabled or finished."));
        assertEquals(FLClientStatus.NOT_SELECTED, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        assertEquals(2, server.requests("startFLJob").size());
    }

    @Test
    void aJobThatFinishedBeforeTheUploadEndsTheClientNotSelectedAtOnce() throws Exception {
        // the last iteration's window closed while this device trained: it used to retry for retry_timeout (300 s)
        Fixture.serveHappily(server, 2, 1);
        AtomicInteger uploads = new AtomicInteger();
        server.on("updateModel", r -> uploads.incrementAndGet() == 1
                ? FakeServer.Answer.buffer(Replies.update(ResponseCode.SUCCEED, ""))
                : FakeServer.Answer.text("The server's training job is disabled or finished."));
        FLParameter p = fx.parameter(server.url());
        p.setMaxRetries(2);
        assertEquals(FLClientStatus.NOT_SELECTED, new SyncFLJob(p).flJobRun());
        assertEquals(2, server.requests("updateModel").size());
        assertEquals(1, server.requests("getModel").size());
        assertTrue(fx.logText().contains("the server's job finished before this upload of iteration 2 arrived: this "
                + "client is not selected any more (it took part in 1 iteration(s))"), fx.logText());
        assertFalse(fx.logText().contains("failed attempts"), fx.logText());
    }

    @Test
    void safemodeIsWaitedOutWithoutCountingAsFailure() {
        Fixture.serveHappily(server, 1, 1);
        AtomicInteger calls = new AtomicInteger();
        server.on("startFLJob", r -> calls.incrementAndGet() <= 4
                ? FakeServer.Answer.text("The cluster is in safemode.")
                : FakeServer.Answer.buffer(Replies.startOk(1, 1, 1, 0.5f, Fixture.globalModel(0))));
        FLParameter p = fx.parameter(server.url());
        p.setMaxRetries(1);
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(p).flJobRun());
        assertEquals(5, server.requests("startFLJob").size());
    }

    @Test
    void safemodeOnGetModelIsWaitedOut() {
        Fixture.serveHappily(server, 1, 1);
        AtomicInteger calls = new AtomicInteger();
        server.on("getModel", r -> calls.incrementAndGet() == 1
                ? FakeServer.Answer.text("The cluster is in safemode.")
                : FakeServer.Answer.buffer(Replies.getModel(ResponseCode.SUCCEED, 1, Fixture.globalModel(1))));
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        assertEquals(2, server.requests("getModel").size());
    }

    @Test
    void unreadableReplyCountsAsAFailedAttempt() {
        server.on("startFLJob", r -> FakeServer.Answer.buffer(new byte[] {0x10, 0, 0, 0, 1, 2, 3}));
        FLParameter p = fx.parameter(server.url());
        p.setMaxRetries(1);
        assertEquals(FLClientStatus.FAILED, new SyncFLJob(p).flJobRun());
        assertEquals(2, server.requests("startFLJob").size());
    }

    @Test
    void httpErrorStatusCountsAsAFailedAttempt() {
        server.on("startFLJob", r -> FakeServer.Answer.status(503));
        FLParameter p = fx.parameter(server.url());
        p.setMaxRetries(1);
        assertEquals(FLClientStatus.FAILED, new SyncFLJob(p).flJobRun());
        assertEquals(2, server.requests("startFLJob").size());
    }

    @Test
    void unreachableServerFailsAfterMaxRetries() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        FLParameter p = fx.parameter("http://127.0.0.1:" + port);
        p.setMaxRetries(2);
        long t0 = System.nanoTime();
        assertEquals(FLClientStatus.FAILED, new SyncFLJob(p).flJobRun());
        assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(5));
        String log = fx.logText();
        assertTrue(log.contains("unreachable"), log);
        assertTrue(log.contains("giving up after 3 failed attempts in a row"), log);
    }

    @Test
    void stopDuringTheNextReqTimeWaitReturnsWithinOneSecond() throws Exception {
        String inAMinute = Long.toString(System.currentTimeMillis() + 60_000);
        server.on("startFLJob", r -> FakeServer.Answer.buffer(Replies.startCode(ResponseCode.OutOfTime, inAMinute)));
        SyncFLJob job = new SyncFLJob(fx.parameter(server.url()));
        CompletableFuture<FLClientStatus> run = runAsync(job);
        server.awaitRequest("startFLJob");
        long t0 = System.nanoTime();
        job.stopFLJob();
        assertEquals(FLClientStatus.FAILED, run.get(1, TimeUnit.SECONDS));
        assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(1));
    }

    @Test
    void stopDuringAnUnansweredRequestReturnsWithinOneSecond() throws Exception {
        server.on("startFLJob", r -> FakeServer.Answer.hang());
        FLParameter p = fx.parameter(server.url());
        p.setTimeOut(60);
        SyncFLJob job = new SyncFLJob(p);
        CompletableFuture<FLClientStatus> run = runAsync(job);
        server.awaitRequest("startFLJob");
        job.stopFLJob();
        assertEquals(FLClientStatus.FAILED, run.get(1, TimeUnit.SECONDS));
    }

    @Test
    void stopDuringGetModelPollingReturnsWithinOneSecond() throws Exception {
        Fixture.serveHappily(server, 1, 1);
        server.on("getModel", r -> FakeServer.Answer.buffer(Replies.getModel(ResponseCode.SucNotReady, 1, null)));
        FLParameter p = fx.parameter(server.url());
        p.setSleepTime(30_000);
        SyncFLJob job = new SyncFLJob(p);
        CompletableFuture<FLClientStatus> run = runAsync(job);
        server.awaitRequest("getModel");
        job.stopFLJob();
        assertEquals(FLClientStatus.FAILED, run.get(1, TimeUnit.SECONDS));
    }

    @Test
    void stopDuringTrainingEndsTheRoundWithoutUploading() throws Exception {
        Fixture.serveHappily(server, 1, 1_000_000);
        FLParameter p = fx.parameter(server.url());
        SyncFLJob job = new SyncFLJob(p);
        p.setTrainListener(new TrainListener() {
            @Override
            public void onEpochLoss(int iteration, int epoch, float loss) {
                if (epoch == 3) {
                    job.stopFLJob();
                }
            }

            @Override
            public void onIterationAccuracy(int iteration, float accuracy) {
            }
        });
        assertEquals(FLClientStatus.FAILED, runAsync(job).get(5, TimeUnit.SECONDS));
        assertEquals(0, server.requests("updateModel").size());
    }

    @Test
    void aStoppedJobCanRunAgain() throws Exception {
        Fixture.serveHappily(server, 1, 1);
        SyncFLJob job = new SyncFLJob(fx.parameter(server.url()));
        job.stopFLJob();
        assertEquals(FLClientStatus.FAILED, job.flJobRun());
        assertEquals(FLClientStatus.SUCCESS, job.flJobRun());
    }

    @Test
    void logCarriesTheSeedsLines() throws Exception {
        Fixture.serveHappily(server, 2, 2);
        new SyncFLJob(fx.parameter(server.url())).flJobRun();
        String log = fx.logText();
        assertTrue(log.contains("[startFLJob] startFLJob succeed, curIteration: 1"), log);
        assertTrue(log.contains("[startFLJob] startFLJob succeed, curIteration: 2"), log);
        // r1.6's shape: "INFO: <FLClient> " + r1.6's text, epochs of a round counted from 0
        assertTrue(log.matches("(?s).*INFO: <FLClient> ----------epoch:0,average loss:[-+0-9.Ee]+ ----------.*"), log);
        assertTrue(log.matches("(?s).*INFO: <FLClient> ----------epoch:1,average loss:[-+0-9.Ee]+ ----------.*"), log);
        assertFalse(log.contains("----------epoch:2,"), log);
        assertTrue(log.matches("(?s).*INFO: <FLClient> batch:0,loss:[-+0-9.Ee]+\n.*"), log);
        assertTrue(log.contains("INFO: <FLClient> [startFLJob] get response from server ok!"), log);
        assertTrue(log.contains("INFO: <FLClient> [updateModel] get response from server ok!"), log);
        assertTrue(log.contains("INFO: <FLClient> [getModel] get response from server ok!"), log);
        assertTrue(log.matches("(?s).*INFO: <FLClient> \\[evaluate\\] evaluate acc: [0-9.]+.*"), log);
        assertTrue(log.contains("INFO: <FLClient> [evaluate] evaluate succeed"), log);
        assertTrue(log.contains("the last batch is completed with 2 repeated samples"), log);
    }

    @Test
    void listenerAndResultCallbackHearEveryEpochAndIterationInOrder() {
        Fixture.serveHappily(server, 2, 3);
        FLParameter p = fx.parameter(server.url());
        List<String> events = Collections.synchronizedList(new ArrayList<>());
        p.setTrainListener(new TrainListener() {
            @Override
            public void onEpochLoss(int iteration, int epoch, float loss) {
                assertTrue(loss > 0 && Float.isFinite(loss));
                events.add("loss " + iteration + "/" + epoch);
            }

            @Override
            public void onIterationAccuracy(int iteration, float accuracy) {
                assertTrue(accuracy >= 0 && accuracy <= 1);
                events.add("acc " + iteration);
            }
        });
        p.setIflJobResultCallback(new IFLJobResultCallback() {
            @Override
            public void onFlJobIterationFinished(String modelName, int iterationSeq, int resultCode) {
                events.add("iteration " + iterationSeq + " " + resultCode);
            }

            @Override
            public void onFlJobFinished(String modelName, int iterationCount, int resultCode) {
                events.add("finished " + iterationCount + " " + resultCode);
            }
        });
        new SyncFLJob(p).flJobRun();
        assertEquals(List.of("loss 1/1", "loss 1/2", "loss 1/3", "acc 1", "iteration 1 200",
                "loss 2/1", "loss 2/2", "loss 2/3", "acc 2", "iteration 2 200", "finished 2 200"), events);
    }

    @Test
    void aFailingListenerDoesNotStopTheClient() {
        Fixture.serveHappily(server, 1, 1);
        FLParameter p = fx.parameter(server.url());
        p.setTrainListener(new TrainListener() {
            @Override
            public void onEpochLoss(int iteration, int epoch, float loss) {
                throw new IllegalStateException("listener bug");
            }

            @Override
            public void onIterationAccuracy(int iteration, float accuracy) {
                throw new IllegalStateException("listener bug");
            }
        });
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(p).flJobRun());
    }

    @Test
    void trainingPermitIsHeldOnlyWhileTraining() {
        Semaphore permits = new Semaphore(1);
        Fixture.serveHappily(server, 1, 1);
        List<Integer> seenByServer = Collections.synchronizedList(new ArrayList<>());
        server.on("updateModel", r -> {
            // The request leaves inside the training step, so it may arrive a moment before the permit is
            // released; what matters is that the client does not hold it while it waits for this reply: the
            // reply is held back until the permit is free (2 s at most; a held permit is recorded as 0).
            long deadline = System.currentTimeMillis() + 2000;
            while (permits.availablePermits() == 0 && System.currentTimeMillis() < deadline) {
                try {
                    Thread.sleep(5);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            seenByServer.add(permits.availablePermits());
            return FakeServer.Answer.buffer(Replies.update(ResponseCode.SUCCEED, ""));
        });
        FLParameter p = fx.parameter(server.url());
        p.setTrainingPermits(permits);
        List<Integer> duringTraining = Collections.synchronizedList(new ArrayList<>());
        p.setTrainListener(new TrainListener() {
            @Override
            public void onEpochLoss(int iteration, int epoch, float loss) {
                duringTraining.add(permits.availablePermits());
            }

            @Override
            public void onIterationAccuracy(int iteration, float accuracy) {
            }
        });
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(p).flJobRun());
        assertEquals(List.of(0), duringTraining);
        assertEquals(List.of(1), seenByServer);
        assertEquals(1, permits.availablePermits());
    }

    @Test
    void aClientWaitingForItsNextRoundHoldsNoModel() {
        Fixture.serveHappily(server, 1, 1);
        AtomicInteger calls = new AtomicInteger();
        server.on("startFLJob", r -> calls.incrementAndGet() == 1
                ? FakeServer.Answer.buffer(Replies.startCode(ResponseCode.OutOfTime,
                        Long.toString(System.currentTimeMillis() + 200)))
                : FakeServer.Answer.buffer(Replies.startOk(1, 1, 1, 0.5f, Fixture.globalModel(0))));
        FLParameter p = fx.parameter(server.url());
        List<String> seen = Collections.synchronizedList(new ArrayList<>());
        p.setIflJobResultCallback(new IFLJobResultCallback() {
            @Override
            public void onFlJobIterationFinished(String modelName, int iterationSeq, int resultCode) {
                seen.add(resultCode + ": " + LinearModel.OPEN.get() + " open");
            }

            @Override
            public void onFlJobFinished(String modelName, int iterationCount, int resultCode) {
                seen.add("end: " + LinearModel.OPEN.get() + " open");
            }
        });
        p.setTrainListener(new TrainListener() {
            @Override
            public void onEpochLoss(int iteration, int epoch, float loss) {
                seen.add("training: " + LinearModel.OPEN.get() + " open");
            }

            @Override
            public void onIterationAccuracy(int iteration, float accuracy) {
            }
        });
        int before = LinearModel.OPEN.get();
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(p).flJobRun());
        assertEquals(List.of("300: " + before + " open", "training: " + (before + 1) + " open",
                "200: " + before + " open", "end: " + before + " open"), seen);
    }

    @Test
    void unknownWeightNameFromTheServerFailsTheJobNamingIt() throws Exception {
        Map<String, float[]> wrong = Fixture.globalModel(0);
        wrong.put("conv9.weight", new float[] {1f});
        server.on("startFLJob", r -> FakeServer.Answer.buffer(Replies.startOk(1, 1, 1, 0.5f, wrong)));
        assertEquals(FLClientStatus.FAILED, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        assertTrue(fx.logText().contains("[conv9.weight] are not in it"), fx.logText());
    }

    @Test
    void batchSizeDifferentFromTheModelsFailsWithAdvice() throws Exception {
        Fixture.serveHappily(server, 1, 1);
        FLParameter p = fx.parameter(server.url());
        p.setBatchSize(32);
        assertEquals(FLClientStatus.FAILED, new SyncFLJob(p).flJobRun());
        assertTrue(fx.logText().contains("FLParameter.batchSize = 32: the model c0.model was exported with batch 4; "
                + "leave batchSize unset or set it to 4 (re-export the model for another batch)"), fx.logText());
        assertEquals(0, server.requests("startFLJob").size());
    }

    @Test
    void unsetBatchSizeTrainsWithTheModelsBatch() throws Exception {
        Fixture.serveHappily(server, 1, 1);
        FLParameter p = fx.parameter(server.url());
        FLParameter unset = new FLParameter();
        unset.setDomainName(p.getDomainName());
        unset.setFlName(p.getFlName());
        unset.setTrainModelPath(p.getTrainModelPath());
        unset.setDataMap(p.getDataMap());
        unset.setLogPath(p.getLogPath());
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(unset).flJobRun());
    }

    @Test
    void planBatchDifferentFromTheModelsFailsTheJobNamingBoth() throws Exception {
        Fixture.serveHappily(server, 1, 1);
        server.on("startFLJob", r -> FakeServer.Answer.buffer(Replies.startFLJob(ResponseCode.SUCCEED, 1, true, "", 1, 1,
                0.5f, Fixture.globalModel(0), 16)));
        assertEquals(FLClientStatus.FAILED, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        assertTrue(fx.logText().contains("the server's client_batch_size = 16: the model c0.model was exported with "
                + "batch 4; start the server with client_batch_size 4"), fx.logText());
        assertEquals(0, server.requests("updateModel").size());
    }

    @Test
    void inferenceWithAnotherBatchSizeIsRefused() {
        FLParameter p = fx.parameter(server.url());
        p.setBatchSize(8);
        String message = assertThrows(IllegalArgumentException.class, () -> new SyncFLJob(p).modelInference()).getMessage();
        assertTrue(message.startsWith("FLParameter.batchSize = 8: the model c0.model was exported with batch 4"), message);
    }

    @Test
    void twoClientsAsThreadsOfOneJvmKeepTheirOwnLogs() throws Exception {
        Fixture other = new Fixture(tmp.resolve("c1"), "c1");
        Fixture.serveHappily(server, 2, 1);
        CompletableFuture<FLClientStatus> a = runAsync(new SyncFLJob(fx.parameter(server.url())));
        CompletableFuture<FLClientStatus> b = runAsync(new SyncFLJob(other.parameter(server.url())));
        assertEquals(FLClientStatus.SUCCESS, a.get(20, TimeUnit.SECONDS));
        assertEquals(FLClientStatus.SUCCESS, b.get(20, TimeUnit.SECONDS));
        assertTrue(fx.logText().contains("[client-c0]"));
        assertFalse(fx.logText().contains("[client-c1]"));
        assertTrue(other.logText().contains("[client-c1]"));
        assertFalse(other.logText().contains("[client-c0]"));
    }

    @Test
    void manyClientsAsThreadsTrainAtMostAsManyAtOnceAsThereArePermits() throws Exception {
        server.on("startFLJob", r -> FakeServer.Answer.buffer(Replies.startOk(1, 1, 300, 0.5f, Fixture.globalModel(0))));
        server.on("updateModel", r -> FakeServer.Answer.buffer(Replies.update(ResponseCode.SUCCEED, "")));
        server.on("getModel", r -> FakeServer.Answer.buffer(Replies.getModel(ResponseCode.SUCCEED, 1, Fixture.globalModel(1))));
        Semaphore permits = new Semaphore(2);
        LinearModel.MAX_TRAINING.set(0);
        List<SyncFLJob> jobs = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            FLParameter p = new Fixture(tmp.resolve("many" + i), "many" + i).parameter(server.url());
            p.setTrainingPermits(permits);
            SyncFLJob job = new SyncFLJob(p);
            Thread t = new Thread(job, "client-" + i); // SyncFLJob is a Runnable: flJobRun, result in getStatus
            t.setDaemon(true);
            t.start();
            jobs.add(job);
            threads.add(t);
        }
        for (Thread t : threads) {
            t.join(60_000);
        }
        for (SyncFLJob job : jobs) {
            assertEquals(FLClientStatus.SUCCESS, job.getStatus());
        }
        assertTrue(LinearModel.MAX_TRAINING.get() <= 2, "at most 2 trainers, saw " + LinearModel.MAX_TRAINING.get());
        assertEquals(2, permits.availablePermits());
        assertEquals(12, server.requests("updateModel").size());
    }

    @Test
    void getModelWritesTheLatestGlobalModelIntoTheModelFile() {
        server.on("getModel", r -> FakeServer.Answer.buffer(Replies.getModel(ResponseCode.SUCCEED, 7, Fixture.globalModel(7))));
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(fx.parameter(server.url())).getModel());
        assertArrayEquals(Fixture.globalModel(7).get("fc.weight"), LinearModel.load(fx.model).getWeight("fc.weight"));
    }

    @Test
    void modelInferenceReturnsAndLogsOneLabelPerSample() throws Exception {
        SyncFLJob job = new SyncFLJob(fx.parameter(server.url()));
        int[] labels = job.modelInference();
        assertEquals(6, labels.length);
        LinearModel m = LinearModel.load(fx.model);
        float[] x = BinFiles.readFloats(fx.evalData, Fixture.FEATURES, "data");
        ArrayDataSet ds = new ArrayDataSet(x, null, Fixture.FEATURES);
        float[] batch = new float[Fixture.BATCH * Fixture.FEATURES];
        ds.fillBatch(0, Fixture.BATCH, batch, null);
        int[] first = m.predict(batch);
        for (int i = 0; i < Fixture.BATCH; i++) {
            assertEquals(first[i], labels[i]);
        }
        assertTrue(fx.logText().contains("[model inference] the predicted labels: " + java.util.Arrays.toString(labels)));
    }

    @Test
    void inferenceOnInMemorySamplesMatchesInferenceOnTheFile() {
        SyncFLJob job = new SyncFLJob(fx.parameter(server.url()));
        float[] x = BinFiles.readFloats(fx.evalData, Fixture.FEATURES, "data");
        assertArrayEquals(job.modelInference(), job.modelInference(x, x.length / Fixture.FEATURES));
    }

    @Test
    void getModelOnAServerThatStaysNotReadyGivesUpAfterMaxRetries() {
        server.on("getModel", r -> FakeServer.Answer.buffer(Replies.getModel(ResponseCode.SucNotReady, 1, null)));
        FLParameter p = fx.parameter(server.url());
        p.setMaxRetries(2);
        assertEquals(FLClientStatus.FAILED, new SyncFLJob(p).getModel());
        assertEquals(3, server.requests("getModel").size());
        assertEquals(0, Replies.readGetModel(server.requests("getModel").get(0).body).iteration(),
                "a fresh client asks for iteration 0: the newest model");
    }

    @Test
    void getModelWeightsReadsTheModelFile() {
        Map<String, float[]> w = new SyncFLJob(fx.parameter(server.url())).getModelWeights();
        assertEquals(List.of("fc.weight", "fc.bias"), new ArrayList<>(w.keySet()));
        assertArrayEquals(LinearModel.load(fx.model).getWeight("fc.bias"), w.get("fc.bias"));
    }
}
