package com.mindspore.flclient;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import mindspore.schema.ResponseCode;

/**
 * The engine: many clients' round loops on a few threads, against the scripted server. The
 * blocking flJobRun is the reference: same outcomes, same uploads.
 */
class ClientEngineTest {
    @TempDir
    Path tmp;

    private FakeServer server;

    @BeforeEach
    void setUp() throws Exception {
        server = new FakeServer();
    }

    @AfterEach
    void tearDown() {
        server.close();
    }

    private List<SyncFLJob> jobs(int n) throws Exception {
        List<SyncFLJob> jobs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            FLParameter p = new Fixture(tmp.resolve("c" + i), "c" + i).parameter(server.url());
            p.setClientID("c" + i);
            jobs.add(new SyncFLJob(p));
        }
        return jobs;
    }

    /** One iteration with {@code seats} seats: the others are told to come back shortly, then the job is finished. */
    private void serveOneIteration(int seats) {
        Set<String> admitted = ConcurrentHashMap.newKeySet();
        Set<String> uploaded = ConcurrentHashMap.newKeySet();
        server.on("startFLJob", r -> {
            String id = Replies.readStart(r.body).flId();
            if (uploaded.size() >= seats) {
                return FakeServer.Answer.text("The server's training job is disabled or finished.");
            }
            synchronized (admitted) {
                if (admitted.size() < seats || admitted.contains(id)) {
                    admitted.add(id);
                    return FakeServer.Answer.buffer(Replies.startOk(1, 1, 1, 0.5f, Fixture.globalModel(0)));
                }
            }
            String soon = Long.toString(System.currentTimeMillis() + 300);
            return FakeServer.Answer.buffer(Replies.startCode(ResponseCode.OutOfTime, soon));
        });
        server.on("updateModel", r -> {
            uploaded.add(Replies.readUpdate(r.body).flId());
            return FakeServer.Answer.buffer(Replies.update(ResponseCode.SUCCEED, ""));
        });
        server.on("getModel", r -> uploaded.size() < seats
                ? FakeServer.Answer.buffer(Replies.getModel(ResponseCode.SucNotReady, 1, Map.of()))
                : FakeServer.Answer.buffer(Replies.getModel(ResponseCode.SUCCEED, 1, Fixture.globalModel(1))));
    }

    private static long engineThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> !t.getName().startsWith("fake-fl-server")).count();
    }

    @Test
    void manyClientsRunOnAFewThreadsAndTheNotSelectedEndNotSelected() throws Exception {
        int n = 200;
        int seats = 10;
        serveOneIteration(seats);
        List<SyncFLJob> jobs = jobs(n);
        long before = engineThreads();
        long most = 0;
        try (ClientEngine engine = new ClientEngine(2)) {
            Thread waiter = engine.submitAll(jobs);
            while (waiter.isAlive()) {
                most = Math.max(most, engineThreads() - before);
                waiter.join(20);
            }
        }
        // the engine's 2 control + 2 trainer threads and a waiter, the shared HTTP client's few, and whatever the JDK
        // starts meanwhile (a selector, timers): a few dozen at most, never one per client
        assertTrue(most <= 30, Thread.getAllStackTraces().keySet() + "\n" + most + " more threads for " + n + " clients: a thread per client?");
        long success = jobs.stream().filter(j -> j.getStatus() == FLClientStatus.SUCCESS).count();
        long notSelected = jobs.stream().filter(j -> j.getStatus() == FLClientStatus.NOT_SELECTED).count();
        assertEquals(seats, success);
        assertEquals(n - seats, notSelected);
        assertEquals(seats, jobs.stream().mapToInt(SyncFLJob::getParticipatedIterations).sum());
    }

    @Test
    void stopAllEndsEveryWaitingClientWithinOneSecond() throws Exception {
        String inAMinute = Long.toString(System.currentTimeMillis() + 60_000);
        server.on("startFLJob", r -> Replies.readStart(r.body).flId().equals("c0")
                ? FakeServer.Answer.hang()
                : FakeServer.Answer.buffer(Replies.startCode(ResponseCode.OutOfTime, inAMinute)));
        List<SyncFLJob> jobs = jobs(50);
        try (ClientEngine engine = new ClientEngine(2)) {
            engine.setSeededTurns(false); // all 50 ask at once (r1.6's way), so that all 50 wait when stopped
            Thread waiter = engine.submitAll(jobs);
            while (server.requests("startFLJob").size() < 50) {
                server.awaitRequest("startFLJob");
            }
            long t0 = System.nanoTime();
            engine.stopAll();
            waiter.join(1000);
            assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(1), "stopped after more than 1 s");
            assertEquals(0, engine.running());
        }
        assertTrue(jobs.stream().allMatch(j -> j.getStatus() == FLClientStatus.FAILED));
    }

    @Test
    void theEngineUploadsWhatTheBlockingLoopUploads() throws Exception {
        Fixture.serveHappily(server, 3, 2);
        FLParameter blocking = new Fixture(tmp.resolve("blocking"), "c").parameter(server.url());
        assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(blocking).flJobRun());
        List<byte[]> reference = new ArrayList<>();
        server.requests("updateModel").forEach(r -> reference.add(r.body));

        try (FakeServer second = new FakeServer(); ClientEngine engine = new ClientEngine(1)) {
            Fixture.serveHappily(second, 3, 2);
            FLParameter p = new Fixture(tmp.resolve("engine"), "c").parameter(second.url());
            p.setClientID(blocking.getClientID());
            SyncFLJob job = new SyncFLJob(p);
            ClientEngine.Run run = engine.submit(job);
            assertEquals(FLClientStatus.SUCCESS, run.result().get(30, TimeUnit.SECONDS));
            List<FakeServer.Request> uploads = second.requests("updateModel");
            assertEquals(reference.size(), uploads.size());
            for (int i = 0; i < uploads.size(); i++) {
                Map<String, float[]> want = Replies.weights(Replies.readUpdate(reference.get(i)));
                Map<String, float[]> got = Replies.weights(Replies.readUpdate(uploads.get(i).body));
                assertEquals(want.keySet(), got.keySet());
                for (String name : want.keySet()) {
                    assertTrue(Arrays.equals(want.get(name), got.get(name)), "upload " + i + ", " + name + " differs");
                }
            }
        }
    }

    @Test
    void theTrainerQueueTakesEvaluationsFirstThenTheBiggestTrainingFirstThenArrivalOrder() throws Exception {
        List<String> ran = new ArrayList<>();
        java.util.concurrent.PriorityBlockingQueue<ClientEngine.Queued> q = new java.util.concurrent.PriorityBlockingQueue<>();
        long train = RoundLoop.RANK_TRAIN + Integer.MAX_VALUE;
        q.add(new ClientEngine.Queued(train - 10, () -> ran.add("train 10 samples")));
        q.add(new ClientEngine.Queued(train - 300, () -> ran.add("train 300 samples")));
        q.add(new ClientEngine.Queued(RoundLoop.RANK_PROBE, () -> ran.add("probe")));
        q.add(new ClientEngine.Queued(train - 300, () -> ran.add("train 300 samples, later")));
        q.add(new ClientEngine.Queued(RoundLoop.RANK_EVALUATE, () -> ran.add("evaluate")));
        while (!q.isEmpty()) {
            q.poll().run();
        }
        assertEquals(List.of("evaluate", "probe", "train 300 samples", "train 300 samples, later", "train 10 samples"), ran);
    }
}
