package com.mindspore.flclient;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * pyflclient addition: when the simulated devices of one {@link ClientEngine} ask to take part.
 *
 * <p>Real devices come back at the {@code next_req_time} the server gave them; simulated ones
 * sharing an engine also learn of each new global model from each other, so a device that was
 * not admitted asks again as soon as any device of the engine has received the model of the
 * iteration it waited out (not later, at a stale next_req_time, when the next iteration may be
 * full already). The server's rule decides among the askers as before.
 *
 * <p>With {@code perIteration > 0} (simulated availability) only a sample of that many devices
 * asks in each iteration: the first {@code perIteration} of a permutation of all the engine's
 * fl_ids, sorted, drawn from a generator seeded with (seed, iteration). The others wait for the
 * next model. With {@code perIteration} equal to the server's start_fl_job_threshold, the
 * server's first-come rule admits exactly the sample: who trains in which iteration depends on
 * the seed only, never on thread timing, and participation is uniform over the population.
 * Once the plan's last model is seen everyone asks, and the server tells them the job is over.
 *
 * <p>The same news ends the wait for an iteration's model ({@link #notReadyWait}): a device that
 * the server told SucNotReady asks again when any device of the engine has received a newer model,
 * or after {@code sleepTime} × (devices waiting / {@value #POLLERS}) at the latest (30 s at most: an
 * iteration that ends without a model wakes nobody). So the engine as
 * a whole asks about {@value #POLLERS} times per sleepTime however many devices wait (r1.6's
 * devices each ask every sleepTime: 3,500 waiting devices at 250 ms were 14,000 requests a second),
 * and the first to get the model wakes the others at once.
 *
 * <p>With {@code perIteration <= 0} (every device asks) and <b>seeded turns</b> (the default, {@link
 * #setTurns}), the devices of the engine ask in each iteration one after the other, each once the previous
 * one's reply came, in the order of a permutation of the engine's fl_ids, sorted, drawn from a generator
 * seeded with (seed, iteration): the server's first-come rule then admits the first devices of a uniform
 * shuffle — fair participation, and the same devices for the same seed whatever the threads do (r1.6's
 * devices ask all at once and the host's scheduling chose who won). A device that has left the engine
 * (its job ended) leaves the line. A server that holds startFLJob requests until many devices asked (the
 * simulated clock, {@code admission_policy=sample}) orders the askers itself: turns off, then.
 * On the simulated clock an {@link AskHook} then decides whether a device asks at all: an offline device
 * does not, and looks again when the hook's future completes (a later iteration opened on the simulated clock).
 *
 * <p>A simulation spread over several engines (processes, machines) gives each gate the whole
 * population, so the engines draw the same sample and each lets its own part of it ask, and
 * relays each new model between the engines ({@link ClientEngine#modelSeen}).
 */
final class CheckInGate {
    private final int perIteration;
    private final long seed;
    private final Supplier<List<String>> population;
    /** Devices of the engine that ask about the model they wait for, together, per sleepTime. */
    static final int POLLERS = 8;
    /** The longest a device waits for its turn to ask about the model again (unless sleepTime is longer). */
    static final long MAX_TURN_MS = 30_000L;

    private final ScheduledExecutorService timers;
    private final AtomicInteger waitingForModel = new AtomicInteger();
    private int known;
    private int planIterations = Integer.MAX_VALUE;
    private CompletableFuture<Void> nextModel = new CompletableFuture<>();
    private int sampleOf = -1;
    private Set<String> sample = Set.of();
    private int askFrom;
    /** Seeded turns (see the class comment); set before the jobs are submitted. */
    private boolean turns = true;
    /** With turns off: whether a device asks now (its simulated availability); null: always. */
    private AskHook askHook;
    private Supplier<List<String>> lineIds;
    private int lineOf = -1;
    private List<String> line = List.of();
    private int turn;
    private String asking;
    private final Set<String> gone = new HashSet<>();
    /** The devices of the current line the server admitted: one that comes back in the same iteration (its upload
     * was refused or lost, e.g. by a server restart) asks again at once; it has a seat, or had one. */
    private final Set<String> seated = new HashSet<>();
    private final java.util.Map<String, CompletableFuture<Void>> waitingTurn = new java.util.HashMap<>();

    /** {@code timers}: the engine's scheduler, which ends the waits that no model ends. */
    CheckInGate(int perIteration, long seed, Supplier<List<String>> population, ScheduledExecutorService timers) {
        this.perIteration = perIteration;
        this.seed = seed;
        this.population = population;
        this.timers = timers;
    }

    /** Seeded turns on (the default) or off (every device asks at once, as r1.6's). */
    synchronized void setTurns(boolean on) {
        turns = on;
    }

    /** With turns off, each device asks only when {@code hook} lets it (null: always). */
    synchronized void setAskHook(AskHook hook) {
        askHook = hook;
    }

    /** The devices that take turns: this engine's own (another engine's devices take theirs there). */
    synchronized void setLine(Supplier<List<String>> ids) {
        lineIds = ids;
    }

    /** A device received the global model of {@code iteration} of a plan of {@code planIterations}. */
    void modelSeen(int iteration, int planIterations) {
        CompletableFuture<Void> wake = null;
        synchronized (this) {
            if (planIterations > 0) {
                this.planIterations = planIterations;
            }
            if (iteration > known) {
                known = iteration;
                wake = nextModel;
                nextModel = new CompletableFuture<>();
            }
        }
        if (wake != null) {
            wake.complete(null); // resumes every waiting device (outside the lock)
        }
    }

    /**
     * A device was told the server's job is over (an early stop ends it before the plan's last iteration,
     * and no model will wake the others): every device of the engine ends at its next check-in, those
     * waiting for a model or their turn at once, without asking.
     */
    void jobOver() {
        List<CompletableFuture<Void>> wake = new ArrayList<>();
        synchronized (this) {
            planIterations = Math.min(planIterations, known);
            wake.add(nextModel);
            nextModel = new CompletableFuture<>();
            wake.addAll(waitingTurn.values());
            waitingTurn.clear();
        }
        for (CompletableFuture<Void> f : wake) {
            f.complete(null);
        }
    }

    /** No device asks before the model of {@code iteration} has been seen (see {@link ClientEngine#rejoinAfterModel}). */
    synchronized void holdUntilModel(int iteration) {
        askFrom = Math.max(askFrom, iteration);
    }

    /** The newest iteration whose model a device has seen (0: none yet). */
    synchronized int newestModel() {
        return known;
    }

    /** The plan's iterations once a device has told them (0: not yet). */
    synchronized int planIterations() {
        return planIterations == Integer.MAX_VALUE ? 0 : planIterations;
    }

    /**
     * The plan's last model has been seen by a device of this engine: the job is over, and a device
     * that would ask now could only be told so (thousands of such requests at the end of a job).
     */
    synchronized boolean planDone() {
        return known >= planIterations;
    }

    /** Null when the device may ask now; else a future that completes when it should look again. */
    CompletableFuture<?> checkIn(String clientId) {
        CompletableFuture<Void> wait = null;
        AskHook hook;
        int iteration;
        check:
        synchronized (this) {
            if (known >= planIterations) {
                return null;
            }
            hook = askHook;
            iteration = known + 1;
            if (known >= askFrom) {
                if (perIteration <= 0) {
                    if (!turns) {
                        if (hook == null) {
                            return null;
                        }
                        break check; // the hook is asked outside the lock
                    }
                    CompletableFuture<Void> myTurn = takeTurn(clientId);
                    if (myTurn == null) {
                        return null;
                    }
                    wait = nextModel;
                    CompletableFuture<Void> either = new CompletableFuture<>();
                    myTurn.whenComplete((v, e) -> either.complete(null));
                    wait.whenComplete((v, e) -> either.complete(null));
                    return orAfter(either, RoundLoop.MAX_NEXT_REQ_WAIT_MS); // a lost line must not park it for ever
                }
                if (sampleOf != iteration) {
                    sample = draw(iteration);
                    sampleOf = iteration;
                }
                if (sample.contains(clientId)) {
                    return null;
                }
            }
            wait = nextModel;
        }
        if (wait == null) { // broke out of the lock to ask the hook
            return askedOutside(hook, clientId, iteration);
        }
        // a lost engine (every sampled device stopped) must not park the others for ever
        return orAfter(wait, RoundLoop.MAX_NEXT_REQ_WAIT_MS);
    }

    /** The hook's answer for {@code clientId} (outside the lock: it may ask the server for the simulated time). */
    private CompletableFuture<?> askedOutside(AskHook hook, String clientId, int iteration) {
        CompletableFuture<?> later;
        try {
            later = hook.mayAsk(clientId, iteration);
        } catch (RuntimeException e) { // the hook failed (its server unreachable): ask, as without it
            return null;
        }
        // a lost server must not park the device for ever
        return later == null ? null : orAfter(later.thenApply(v -> (Void) null), RoundLoop.MAX_NEXT_REQ_WAIT_MS);
    }

    /**
     * Under seeded turns: null when it is {@code clientId}'s turn to ask in the next iteration (or it had its
     * turn already: a second ask after a refusal), else a future completed at its turn. Holds the lock.
     */
    private CompletableFuture<Void> takeTurn(String clientId) {
        int iteration = known + 1;
        if (lineOf != iteration) {
            List<String> ids = new ArrayList<>(new HashSet<>((lineIds != null ? lineIds : population).get()));
            ids.removeAll(gone);
            waitingTurn.clear(); // their devices were woken by the model that opened this line
            Collections.sort(ids);
            SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + iteration);
            for (int i = ids.size() - 1; i > 0; i--) { // Fisher-Yates over the whole line
                Collections.swap(ids, i, rng.nextInt(i + 1));
            }
            line = ids;
            lineOf = iteration;
            turn = 0;
            asking = null;
            seated.clear();
        }
        int at = line.indexOf(clientId);
        if (at < 0 || (at == turn && clientId.equals(asking))) {
            return null; // not in this line (joined late), or its turn: ask
        }
        if (at < turn && seated.contains(clientId)) {
            return null; // admitted in this iteration and back (its upload refused or lost): it asks again now
        }
        if (at < turn) {
            // had its turn in this iteration (refused, or the line was closed by a refusal): the seats are
            // taken; it asks again in the next iteration's line, never now, when the server may have moved on
            CompletableFuture<Void> f = new CompletableFuture<>();
            nextModel.whenComplete((v, e) -> f.complete(null));
            return f;
        }
        if (at == turn && asking == null) {
            asking = clientId;
            return null;
        }
        return waitingTurn.computeIfAbsent(clientId, k -> new CompletableFuture<>());
    }

    /**
     * {@code clientId}'s startFLJob was answered (or failed): the next device of the line may ask; unless
     * the server refused it ({@code seatsTaken}: OutOfTime, the job is over), then the line is closed —
     * the others would be refused too, and would race the next iteration's line — and they wait for the
     * next model.
     */
    void answered(String clientId, boolean seatsTaken) {
        CompletableFuture<Void> wake = null;
        synchronized (this) {
            if (asking == null || !asking.equals(clientId)) {
                return;
            }
            asking = null;
            if (seatsTaken) {
                turn = line.size();
            } else {
                seated.add(clientId);
                turn++;
                wake = nextInLine();
            }
        }
        if (wake != null) {
            wake.complete(null);
        }
    }

    /** {@code clientId}'s job ended: it leaves every line (it would hold the others' turns for ever). */
    void left(String clientId) {
        CompletableFuture<Void> wake = null;
        synchronized (this) {
            gone.add(clientId);
            if (clientId.equals(asking)) {
                asking = null;
                turn++;
                wake = nextInLine();
            } else if (turn < line.size() && line.get(turn).equals(clientId) && asking == null) {
                turn++;
                wake = nextInLine();
            }
        }
        if (wake != null) {
            wake.complete(null);
        }
    }

    /** Skips the devices that left; the future of the device whose turn it now is, if it waits. Holds the lock. */
    private CompletableFuture<Void> nextInLine() {
        while (turn < line.size() && gone.contains(line.get(turn))) {
            turn++;
        }
        if (turn >= line.size()) {
            return null;
        }
        String next = line.get(turn);
        CompletableFuture<Void> f = waitingTurn.remove(next);
        if (f != null) {
            asking = next;
        }
        return f;
    }

    /** Completes once the model of {@code iteration} has been seen (at once if it has), a newer one, or after {@code ms}. */
    CompletableFuture<?> modelOfOr(int iteration, long ms) {
        synchronized (this) {
            if (known >= iteration) {
                return CompletableFuture.completedFuture(null);
            }
        }
        return newModelOr(ms);
    }

    /** Completes when a newer model than the newest seen now arrives, or after {@code ms}. */
    CompletableFuture<?> newModelOr(long ms) {
        CompletableFuture<Void> wait;
        synchronized (this) {
            wait = nextModel;
        }
        return orAfter(wait, ms);
    }

    /**
     * The wait after a SucNotReady for the model of an iteration: until a device of the engine
     * receives a newer model than the newest seen now, or the device's turn to ask comes (sleepTime
     * stretched by the number of devices waiting, so that {@value #POLLERS} ask per sleepTime).
     */
    CompletableFuture<?> notReadyWait(long sleepTimeMs) {
        int waiting = waitingForModel.incrementAndGet();
        // at most MAX_TURN_MS: an iteration that ends without a model (its window ran out) wakes nobody
        long turn = Math.min(sleepTimeMs * Math.max(1, (waiting + POLLERS - 1) / POLLERS),
                Math.max(sleepTimeMs, MAX_TURN_MS));
        CompletableFuture<?> f = newModelOr(turn);
        f.whenComplete((v, e) -> waitingForModel.decrementAndGet());
        return f;
    }

    private CompletableFuture<?> orAfter(CompletableFuture<Void> wait, long ms) {
        CompletableFuture<Void> f = new CompletableFuture<>();
        ScheduledFuture<?> timer = timers.schedule(() -> f.complete(null), Math.max(0, ms), TimeUnit.MILLISECONDS);
        wait.whenComplete((v, e) -> f.complete(null));
        f.whenComplete((v, e) -> timer.cancel(false)); // woken early (model, stop): the timer goes at once
        return f;
    }

    /** The devices that ask in {@code iteration}: a seeded sample of the sorted fl_ids. */
    private Set<String> draw(int iteration) {
        List<String> ids = new ArrayList<>(new HashSet<>(population.get()));
        Collections.sort(ids);
        SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + iteration);
        int m = Math.min(perIteration, ids.size());
        for (int i = 0; i < m; i++) { // the first m of a Fisher-Yates shuffle
            Collections.swap(ids, i, i + rng.nextInt(ids.size() - i));
        }
        return new HashSet<>(ids.subList(0, m));
    }

    /** The drawing rule alone, for tests and for the Python side to show who asks. */
    static List<String> sampleOf(List<String> clientIds, int perIteration, long seed, int iteration) {
        CheckInGate g = new CheckInGate(perIteration, seed, () -> clientIds, null);
        List<String> out = new ArrayList<>(g.draw(iteration));
        Collections.sort(out);
        return out;
    }
}
