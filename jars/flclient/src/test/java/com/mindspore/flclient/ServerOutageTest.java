package com.mindspore.flclient;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.mindspore.flclient.cases.TrainedModels;

import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.Test;

import mindspore.schema.ResponseCode;

/**
 * A server that goes away and comes back (docs/java-client.md, "The round loop"): the client's
 * patience is time, not a count of polls, and after a restart it rejoins the server's iteration.
 */
class ServerOutageTest extends ScriptedServerTest {
    private static FakeServer.Answer ok(byte[] fb) {
        return FakeServer.Answer.buffer(fb);
    }

    @Test
    void theRetryTimeoutEndsTheJobFailedSayingSo() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        FLParameter p = fx.parameter("http://127.0.0.1:" + port);
        p.setRetryTimeout(1);
        long t0 = System.nanoTime();
        assertEquals(FLClientStatus.FAILED, new SyncFLJob(p).flJobRun());
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        String log = fx.logText();
        assertTrue(ms >= 1000 && ms < 3000, "gave up after " + ms + " ms for retryTimeout 1 s");
        assertTrue(log.contains("unreachable") && log.contains("(retryTimeout = 1 s)"), log);
    }

    @Test
    void aServerDownForManyPollIntervalsIsWaitedFor() {
        Fixture.serveHappily(server, 1, 1);
        long back = System.currentTimeMillis() + 1500; // 30 polls of 50 ms: r1.6's 10 retries gave up after 11
        server.on("startFLJob", r -> r.atMillis < back ? FakeServer.Answer.drop()
                : ok(Replies.startOk(1, 1, 1, 0.5f, Fixture.globalModel(0))));
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        assertTrue(server.requests("startFLJob").size() >= 2);
    }

    @Test
    void aRestartedServerThatLostTheUploadIsJoinedAgainInItsCurrentIteration() throws Exception {
        Fixture.serveHappily(server, 1, 1);
        AtomicInteger uploads = new AtomicInteger();
        String endOfIteration = Long.toString(System.currentTimeMillis() + 60_000);
        server.on("updateModel", r -> ok(Replies.update(uploads.incrementAndGet() == 2
                ? ResponseCode.OutOfTime : ResponseCode.SUCCEED, endOfIteration)));
        AtomicInteger polls = new AtomicInteger();
        server.on("getModel", r -> {
            int n = polls.incrementAndGet();
            if (n == 1) {
                return FakeServer.Answer.drop(); // killed while holding the poll
            }
            return n == 2 ? ok(Replies.getModel(ResponseCode.SucNotReady, 1, null))
                    : ok(Replies.getModel(ResponseCode.SUCCEED, 1, Fixture.globalModel(1)));
        });
        long t0 = System.nanoTime();
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(30), "startFLJob at once, not at next_req_time");
        assertEquals(2, server.requests("startFLJob").size(), "back to startFLJob after the lost upload");
        assertEquals(3, server.requests("updateModel").size(), "upload, the probe, the upload of the new round");
        assertEquals(3, server.requests("getModel").size());
        assertTrue(fx.logText().contains("no longer holds this device's upload"), fx.logText());
    }

    @Test
    void anUploadLostInARestartIsSentAgainFromTheKeptStateWhenAdmittedToTheSameIteration() throws Exception {
        lostUploadSentAgain();
    }

    @Test
    void theKeptUploadPastTheMemoryBudgetIsReadBackFromItsScratchFile() throws Exception {
        long budget = TrainedModels.budget();
        TrainedModels.setBudget(0); // the upload (and the trained model) go to their scratch files
        try {
            lostUploadSentAgain();
        } finally {
            TrainedModels.setBudget(budget);
        }
    }

    @Test
    void theKeptUploadsScratchFileIsGoneAfterTheRound() throws Exception {
        long budget = TrainedModels.budget();
        TrainedModels.setBudget(0);
        Path kept = Path.of(fx.model + ".upload");
        AtomicBoolean seen = new AtomicBoolean();
        try {
            Fixture.serveHappily(server, 1, 1);
            server.on("getModel", r -> {
                seen.compareAndSet(false, Files.isRegularFile(kept)); // kept while the device waits
                return ok(Replies.getModel(ResponseCode.SUCCEED, 1, Fixture.globalModel(1)));
            });
            assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        } finally {
            TrainedModels.setBudget(budget);
        }
        assertTrue(seen.get(), "the accepted upload was in " + kept + " while the device waited for the model");
        assertFalse(Files.exists(kept), kept + " is left after the round");
        assertEquals(0, TrainedModels.used());
    }

    private void lostUploadSentAgain() throws Exception {
        Fixture.serveHappily(server, 1, 1);
        // the restarted server resumes at iteration 1 with the same model: both admissions are to it
        server.on("startFLJob", r -> ok(Replies.startOk(1, 1, 1, 0.5f, Fixture.globalModel(0))));
        AtomicInteger uploads = new AtomicInteger();
        String endOfIteration = Long.toString(System.currentTimeMillis() + 60_000);
        server.on("updateModel", r -> ok(Replies.update(uploads.incrementAndGet() == 2
                ? ResponseCode.OutOfTime : ResponseCode.SUCCEED, endOfIteration)));
        AtomicInteger polls = new AtomicInteger();
        server.on("getModel", r -> {
            int n = polls.incrementAndGet();
            if (n == 1) {
                return FakeServer.Answer.drop(); // killed while holding the poll
            }
            return n == 2 ? ok(Replies.getModel(ResponseCode.SucNotReady, 1, null))
                    : ok(Replies.getModel(ResponseCode.SUCCEED, 1, Fixture.globalModel(1)));
        });
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        String log = fx.logText();
        assertEquals(2, server.requests("startFLJob").size());
        assertEquals(3, server.requests("updateModel").size(), "upload, the probe, the kept upload again");
        assertTrue(java.util.Arrays.equals(server.requests("updateModel").get(0).body,
                server.requests("updateModel").get(2).body), "the same upload, not a new training's");
        assertTrue(log.contains("re-sending its kept upload, not training again"), log);
        assertEquals(1, log.split("\\[train\\] train succeed", -1).length - 1, log);
    }

    @Test
    void anUploadRefusedAfterAnOutageAsksStartFLJobAtOnce() {
        Fixture.serveHappily(server, 1, 1);
        String endOfIteration = Long.toString(System.currentTimeMillis() + 60_000);
        AtomicInteger uploads = new AtomicInteger();
        server.on("updateModel", r -> switch (uploads.incrementAndGet()) {
            case 1 -> FakeServer.Answer.drop();
            case 2 -> ok(Replies.update(ResponseCode.OutOfTime, endOfIteration)); // restarted: not admitted
            default -> ok(Replies.update(ResponseCode.SUCCEED, ""));
        });
        long t0 = System.nanoTime();
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(30), "startFLJob at once, not at next_req_time");
        assertEquals(2, server.requests("startFLJob").size());
        assertEquals(3, server.requests("updateModel").size());
    }

    @Test
    void aServerThatKeptTheUploadThroughTheOutageIsWaitedFor() throws Exception {
        Fixture.serveHappily(server, 1, 1);
        AtomicInteger uploads = new AtomicInteger();
        server.on("updateModel", r -> ok(Replies.update(uploads.incrementAndGet() == 2
                ? ResponseCode.RequestError : ResponseCode.SUCCEED, "")));  // the probe is a duplicate
        AtomicInteger polls = new AtomicInteger();
        server.on("getModel", r -> {
            int n = polls.incrementAndGet();
            if (n == 1) {
                return FakeServer.Answer.drop();
            }
            return n == 2 ? ok(Replies.getModel(ResponseCode.SucNotReady, 1, null))
                    : ok(Replies.getModel(ResponseCode.SUCCEED, 1, Fixture.globalModel(1)));
        });
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        assertEquals(1, server.requests("startFLJob").size());
        assertEquals(2, server.requests("updateModel").size());
        assertEquals(3, server.requests("getModel").size());
        assertTrue(fx.logText().contains("still holds this device's upload"), fx.logText());
    }

    @Test
    void sucNotReadyWithoutAnOutageIsWaitedOutWithoutProbing() {
        Fixture.serveHappily(server, 1, 1);
        AtomicInteger polls = new AtomicInteger();
        server.on("getModel", r -> polls.incrementAndGet() <= 3
                ? ok(Replies.getModel(ResponseCode.SucNotReady, 1, null))
                : ok(Replies.getModel(ResponseCode.SUCCEED, 1, Fixture.globalModel(1))));
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(fx.parameter(server.url())).flJobRun());
        assertEquals(1, server.requests("updateModel").size());
    }
}
