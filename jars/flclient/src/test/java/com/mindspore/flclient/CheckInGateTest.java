package com.mindspore.flclient;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;

import org.junit.jupiter.api.Test;

class CheckInGateTest {
    private static final java.util.concurrent.ScheduledExecutorService TIMERS =
            java.util.concurrent.Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "gate-test-timers");
                t.setDaemon(true);
                return t;
            });

    private static List<String> ids(int n) {
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            ids.add("f" + i + "_writer_" + i);
        }
        return ids;
    }

    @Test
    void theSampleDependsOnSeedAndIterationNotOnTheOrderOfTheIds() {
        List<String> ids = ids(500);
        List<String> shuffled = new ArrayList<>(ids);
        Collections.shuffle(shuffled, new java.util.Random(7));
        List<String> a = ClientEngine.checkInSample(ids, 50, 3, 1);
        assertEquals(50, a.size());
        assertEquals(a, ClientEngine.checkInSample(shuffled, 50, 3, 1));
        assertNotEquals(a, ClientEngine.checkInSample(ids, 50, 3, 2));
        assertNotEquals(a, ClientEngine.checkInSample(ids, 50, 4, 1));
    }

    @Test
    void participationIsUniformOverIterations() {
        List<String> ids = ids(500);
        Map<String, Integer> count = new HashMap<>();
        for (int it = 1; it <= 100; it++) {
            for (String id : ClientEngine.checkInSample(ids, 50, 0, it)) {
                count.merge(id, 1, Integer::sum);
            }
        }
        // 100 draws of 50 of 500: each device 10 times on average (binomial sd 3)
        assertEquals(500, count.size(), "every device takes part at least once");
        int max = Collections.max(count.values());
        assertTrue(max <= 25, "no favourite: max " + max);
    }

    @Test
    void aDeviceOutsideTheSampleWaitsForTheNextModelAndEveryoneAsksOnceThePlanIsDone() {
        List<String> ids = ids(10);
        CheckInGate gate = new CheckInGate(3, 1, () -> ids, TIMERS);
        List<String> first = ClientEngine.checkInSample(ids, 3, 1, 1);
        String out = ids.stream().filter(id -> !first.contains(id)).findFirst().orElseThrow();
        assertNull(gate.checkIn(first.get(0)));
        CompletableFuture<?> waiting = gate.checkIn(out);
        assertNotNull(waiting);
        assertFalse(waiting.isDone());
        gate.modelSeen(1, 2);
        assertTrue(waiting.isDone(), "the model of iteration 1 wakes the waiting devices");
        List<String> second = ClientEngine.checkInSample(ids, 3, 1, 2);
        for (String id : ids) {
            assertEquals(second.contains(id), gate.checkIn(id) == null, id);
        }
        assertFalse(gate.planDone());
        gate.modelSeen(2, 2);
        assertTrue(gate.planDone(), "the plan's last model is out: the waiting devices end without asking");
        for (String id : ids) {
            assertNull(gate.checkIn(id), "nobody waits for a model that will not come");
        }
    }

    @Test
    void withoutAvailabilityEveryoneAsksAndRefusedDevicesWakeOnTheNextModel() {
        CheckInGate gate = new CheckInGate(0, 0, List::of, TIMERS);
        assertNull(gate.checkIn("anyone"));
        CompletableFuture<?> restart = gate.newModelOr(60_000);
        assertFalse(restart.isDone());
        gate.modelSeen(1, 5);
        assertTrue(restart.isDone());
        gate.modelSeen(1, 5); // the same model again wakes nobody new
        assertFalse(gate.newModelOr(60_000).isDone());
        assertTrue(gate.newModelOr(0).join() == null, "the timeout also ends the wait");
    }

    @Test
    void enginesSharingAPopulationLetAskExactlyTheSampleOfTheWholePopulation() {
        List<String> ids = ids(12);
        List<String> evens = new ArrayList<>();
        List<String> odds = new ArrayList<>();
        for (int i = 0; i < ids.size(); i++) {
            (i % 2 == 0 ? evens : odds).add(ids.get(i));
        }
        CheckInGate a = new CheckInGate(4, 9, () -> ids, TIMERS);
        CheckInGate b = new CheckInGate(4, 9, () -> ids, TIMERS);
        for (int it = 1; it <= 3; it++) {
            List<String> asking = new ArrayList<>();
            for (String id : evens) {
                if (a.checkIn(id) == null) {
                    asking.add(id);
                }
            }
            for (String id : odds) {
                if (b.checkIn(id) == null) {
                    asking.add(id);
                }
            }
            Collections.sort(asking);
            assertEquals(ClientEngine.checkInSample(ids, 4, 9, it), asking, "iteration " + it);
            a.modelSeen(it, 3);
            b.modelSeen(it, 3); // the relay: the other engine's device saw it
        }
    }

    @Test
    void aModelRelayedToAnEngineWakesItsWaitingDevicesAndIsReported() {
        try (ClientEngine engine = new ClientEngine(1)) {
            assertEquals(0, engine.newestModelSeen());
            assertEquals(0, engine.planIterations(), "no plan told yet");
            engine.setCheckIn(2, 1, ids(6));
            engine.modelSeen(2, 5);
            assertEquals(2, engine.newestModelSeen());
            assertEquals(5, engine.planIterations());
            engine.modelSeen(1, 0); // an older model, from a slower engine: nothing goes back
            assertEquals(2, engine.newestModelSeen());
            assertEquals(5, engine.planIterations());
        }
    }

    @Test
    void heldDevicesAskOnlyOnceTheAwaitedModelIsOut() {
        CheckInGate gate = new CheckInGate(0, 0, List::of, TIMERS);
        gate.modelSeen(1, 5);
        gate.holdUntilModel(2);
        CompletableFuture<?> waiting = gate.checkIn("restarted");
        assertNotNull(waiting, "the model of iteration 2 is not out: the device waits");
        assertFalse(waiting.isDone());
        gate.modelSeen(2, 5);
        assertTrue(waiting.isDone());
        assertNull(gate.checkIn("restarted"), "after it, every device asks again");
    }

    @Test
    void devicesToldNotReadyTakeTurnsAndTheFirstToGetTheModelWakesTheRest() throws Exception {
        CheckInGate gate = new CheckInGate(0, 0, List::of, TIMERS);
        long t0 = System.nanoTime();
        CompletableFuture<?> alone = gate.notReadyWait(100);
        alone.get(5, java.util.concurrent.TimeUnit.SECONDS);
        long aloneMs = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(aloneMs >= 90 && aloneMs < 2_000, "one waiting device asks again after sleepTime: " + aloneMs + " ms");

        List<CompletableFuture<?>> waits = new ArrayList<>();
        for (int i = 0; i < 4 * CheckInGate.POLLERS; i++) { // the last of them: 4 x sleepTime
            waits.add(gate.notReadyWait(60_000));
        }
        Thread.sleep(50);
        assertTrue(waits.stream().noneMatch(CompletableFuture::isDone), "nobody's turn within 50 ms of a minute's sleepTime");
        gate.modelSeen(1, 3);
        CompletableFuture.allOf(waits.toArray(new CompletableFuture<?>[0])).get(2, java.util.concurrent.TimeUnit.SECONDS);

        // the turn grows with the waiting devices, up to MAX_TURN_MS
        for (int i = 0; i < 100 * CheckInGate.POLLERS; i++) {
            gate.notReadyWait(1_000);
        }
        CompletableFuture<?> last = gate.notReadyWait(1_000);
        Thread.sleep(1_200);
        assertFalse(last.isDone(), "with 800 devices waiting, a 1 s sleepTime becomes a later turn");
        gate.modelSeen(2, 3);
        last.get(2, java.util.concurrent.TimeUnit.SECONDS);
        assertEquals(30_000L, CheckInGate.MAX_TURN_MS);
    }

    /** The device whose turn it is among those that ask: exactly one of them gets null. */
    private static String onlyOneMayAsk(CheckInGate g, List<String> askers, Map<String, CompletableFuture<?>> parked) {
        String go = null;
        for (String id : askers) {
            CompletableFuture<?> f = g.checkIn(id);
            if (f == null) {
                assertNull(go, "two devices asked at once: " + go + ", " + id);
                go = id;
            } else {
                parked.put(id, f);
            }
        }
        return go;
    }

    @Test
    void withoutASampleDevicesAskInSeededTurnsOneAfterTheOther() {
        List<String> ids = ids(6);
        List<String> order = new ArrayList<>();
        for (long seed : new long[] {5, 5}) {
            CheckInGate g = new CheckInGate(0, seed, () -> ids, TIMERS);
            Map<String, CompletableFuture<?>> parked = new HashMap<>();
            List<String> got = new ArrayList<>();
            String go = onlyOneMayAsk(g, ids, parked);
            while (go != null) {
                got.add(go);
                g.answered(go, false); // admitted: the next one's turn
                String next = null;
                for (Map.Entry<String, CompletableFuture<?>> e : parked.entrySet()) {
                    if (e.getValue().isDone()) {
                        assertNull(next, "two turns at once");
                        next = e.getKey();
                    }
                }
                if (next != null) {
                    parked.remove(next);
                    assertNull(g.checkIn(next), "woken for its turn, it asks");
                }
                go = next;
            }
            assertEquals(6, got.size());
            if (order.isEmpty()) {
                order.addAll(got);
            } else {
                assertEquals(order, got, "the same seed, the same order");
            }
        }
        assertNotEquals(ids, order, "a shuffle, not the sorted ids");
    }

    @Test
    void aRefusalClosesTheLineAndALeaverIsSkipped() {
        List<String> ids = ids(4);
        CheckInGate g = new CheckInGate(0, 1, () -> ids, TIMERS);
        Map<String, CompletableFuture<?>> parked = new HashMap<>();
        String first = onlyOneMayAsk(g, ids, parked);
        g.left(first); // its job ended while asking: the next one's turn
        String second = null;
        for (Map.Entry<String, CompletableFuture<?>> e : parked.entrySet()) {
            if (e.getValue().isDone()) {
                second = e.getKey();
            }
        }
        assertNotNull(second);
        parked.remove(second);
        assertNull(g.checkIn(second));
        g.answered(second, true); // refused: the seats are taken
        assertTrue(parked.values().stream().noneMatch(CompletableFuture::isDone), "nobody else asks now");
        assertNotNull(g.checkIn(second), "a refused device waits for the next model");
        g.modelSeen(1, 3);
        assertTrue(parked.values().stream().allMatch(CompletableFuture::isDone), "the next model opens a new line");
        Map<String, CompletableFuture<?>> again = new HashMap<>();
        List<String> staying = new ArrayList<>(ids);
        staying.remove(first); // it left: not in any line
        assertNotNull(onlyOneMayAsk(g, staying, again));
        assertEquals(2, again.size());
    }

    @Test
    void turnsOffLetsEveryDeviceAsk() {
        List<String> ids = ids(3);
        CheckInGate g = new CheckInGate(0, 1, () -> ids, TIMERS);
        g.setTurns(false);
        for (String id : ids) {
            assertNull(g.checkIn(id));
        }
    }

    @Test
    void withTurnsOffTheAskHookDecidesWhoAsksAndWhenAWaitingDeviceLooksAgain() {
        CheckInGate gate = new CheckInGate(0, 1, () -> ids(3), TIMERS);
        gate.setTurns(false);
        CompletableFuture<Void> later = new CompletableFuture<>();
        List<String> asked = new ArrayList<>();
        gate.setAskHook((id, iteration) -> {
            asked.add(id + "@" + iteration);
            return id.equals("f1_writer_1") ? later : null;
        });
        assertNull(gate.checkIn("f0_writer_0"), "online: asks now");
        CompletableFuture<?> wait = gate.checkIn("f1_writer_1");
        assertNotNull(wait, "offline: does not ask");
        assertFalse(wait.isDone());
        later.complete(null); // a later iteration opened on the simulated clock
        assertTrue(wait.isDone());
        gate.modelSeen(1, 5);
        assertNull(gate.checkIn("f0_writer_0"));
        assertEquals(List.of("f0_writer_0@1", "f1_writer_1@1", "f0_writer_0@2"), asked);
        gate.setAskHook((id, iteration) -> {
            throw new IllegalStateException("server gone");
        });
        assertNull(gate.checkIn("f1_writer_1"), "a failing hook: the device asks, as without one");
    }
}
