package com.mindspore.flclient;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.PriorityBlockingQueue;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Runs the round loops of many {@link SyncFLJob}s on a few threads: a small scheduled pool for
 * the protocol (requests, replies, waits) and {@code trainers} threads for the steps that load a
 * model and train or evaluate — the trainer threads are the training permits. A client waiting
 * for admission, for {@code next_req_time}, for a reply or for the iteration's end is a parked
 * continuation (a timer or a future's callback), not a thread: thousands of registered clients
 * cost their parameters and a few objects each.
 *
 * <p>The same state machine runs on the calling thread in {@link SyncFLJob#flJobRun()}; the
 * steps, log lines, callbacks and results are the same. {@link SyncFLJob#stopFLJob()} wakes a
 * parked client at once; callbacks and listeners run on the engine's threads.
 */
public final class ClientEngine implements AutoCloseable {
    /** Threads for the protocol side: parsing replies and building requests is all they do. */
    static final int CONTROL_THREADS = 2;

    private final ScheduledThreadPoolExecutor control;
    private final ExecutorService trainers;
    private final Set<Run> running = ConcurrentHashMap.newKeySet();
    private final List<Run> submitted = new ArrayList<>();
    private volatile EvaluationPlan evaluation = EvaluationPlan.EVERY_CLIENT_EVERY_ITERATION;
    private volatile CheckInGate gate;
    private volatile boolean durableModelFiles = true;
    private volatile boolean seededTurns = true;
    private volatile AskHook askHook;

    /** An engine whose {@code trainers} threads train (or evaluate) at most that many clients at once. */
    public ClientEngine(int trainers) {
        if (trainers < 1) {
            throw new IllegalArgumentException("ClientEngine trainers = " + trainers + ": need at least 1");
        }
        this.control = new ScheduledThreadPoolExecutor(CONTROL_THREADS, daemons("fl-engine-control-"));
        this.control.setRemoveOnCancelPolicy(true);
        this.gate = new CheckInGate(0, 0, List::of, control);
        this.gate.setLine(this::clientIds);
        // by RoundLoop.computeRank (evaluations first, then training the most data first), FIFO among equals
        this.trainers = new ThreadPoolExecutor(trainers, trainers, 0, TimeUnit.MILLISECONDS,
                new PriorityBlockingQueue<>(), daemons("fl-engine-trainer-"));
    }

    private static ThreadFactory daemons(String prefix) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, prefix + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }

    /** Which clients evaluate after which iteration, for the jobs submitted from now on (default: r1.6's all). */
    public void setEvaluation(EvaluationPlan plan) {
        this.evaluation = plan == null ? EvaluationPlan.EVERY_CLIENT_EVERY_ITERATION : plan;
    }

    /**
     * Simulated availability (see {@link CheckInGate}): in each iteration only {@code perIteration}
     * devices, a sample seeded by {@code seed}, ask to take part; 0: every device asks. Set it before
     * submitting the jobs.
     */
    public void setCheckIn(int perIteration, long seed) {
        setCheckIn(perIteration, seed, null);
    }

    /**
     * {@link #setCheckIn(int, long)} for one engine of several that share a population (a
     * simulation spread over processes): the sample is drawn from {@code population}, every
     * fl_id of the simulation, instead of this engine's own, so each engine lets ask exactly
     * its devices of the one sample the whole population would draw. Null: this engine's fl_ids.
     */
    public void setCheckIn(int perIteration, long seed, List<String> population) {
        if (perIteration < 0) {
            throw new IllegalArgumentException("devices per iteration = " + perIteration + ": need >= 0 (0: all)");
        }
        List<String> ids = population == null ? null : List.copyOf(population);
        CheckInGate g = new CheckInGate(perIteration, seed, ids == null ? this::clientIds : () -> ids, control);
        g.setLine(this::clientIds);
        g.setTurns(seededTurns);
        g.setAskHook(askHook);
        this.gate = g;
    }

    /**
     * Whether the devices of this engine, when every device asks (no {@link #setCheckIn} sample), ask one
     * after the other in a seeded order (default: yes; see {@link CheckInGate}). Off for a server that
     * orders the askers itself (the simulated clock). Set it before submitting the jobs.
     */
    public void setSeededTurns(boolean on) {
        this.seededTurns = on;
        gate.setTurns(on);
    }

    /**
     * pyflclient addition: with seeded turns off (the simulated clock), each device asks only when {@code hook}
     * lets it (its availability; null: always). Set it before submitting the jobs.
     */
    public void setAskHook(AskHook hook) {
        this.askHook = hook;
        gate.setAskHook(hook);
    }

    /**
     * A device of another engine of the same simulation received the global model of {@code
     * iteration} (of a plan of {@code planIterations}, 0 if unknown): this engine's waiting devices
     * look again, as if one of its own had received it. Without it, an engine none of whose devices
     * took part in an iteration would leave them waiting for a model they never see.
     */
    public void modelSeen(int iteration, int planIterations) {
        gate.modelSeen(iteration, planIterations);
    }

    /**
     * This engine's devices ask to take part only once the global model of {@code iteration} is out
     * (seen here or relayed by {@link #modelSeen}): an engine re-created after its process died
     * rejoins at the next iteration. In the running one its devices may have uploaded already, and
     * the server refuses a second upload of one fl_id; it closes that iteration at its windows.
     */
    public void rejoinAfterModel(int iteration) {
        gate.holdUntilModel(iteration);
    }

    /** The newest global model a device of this engine received (or was told of), 0 before any. */
    public int newestModelSeen() {
        return gate.newestModel();
    }

    /** The plan's number of iterations as the devices of this engine learnt it, 0 before any plan. */
    public int planIterations() {
        return gate.planIterations();
    }

    /**
     * Whether each getModel's save of a client's model file is forced to disk (default: yes, as
     * on a device). A simulation of thousands of devices may turn it off: each fsync costs some
     * 6 ms on the trainer thread, twice the training of a small client; the atomic rename still
     * leaves a whole file after a crash of the process.
     */
    public void setDurableModelFiles(boolean durable) {
        this.durableModelFiles = durable;
    }

    /** The devices that ask in {@code iteration} with {@link #setCheckIn}'s rule, sorted. */
    public static List<String> checkInSample(List<String> clientIds, int perIteration, long seed, int iteration) {
        return CheckInGate.sampleOf(clientIds, perIteration, seed, iteration);
    }

    private List<String> clientIds() {
        List<String> ids = new ArrayList<>();
        synchronized (submitted) {
            for (Run r : submitted) {
                ids.add(r.job.getParameter().getClientID());
            }
        }
        return ids;
    }

    /**
     * Starts {@code job}'s round loop (flJobRun) on the engine and returns at once.
     *
     * @throws IllegalArgumentException when a parameter is missing or wrong (as flJobRun)
     */
    public Run submit(SyncFLJob job) {
        Run run = register(job);
        run.start();
        return run;
    }

    private Run register(SyncFLJob job) {
        RoundLoop loop = job.begin(new RunSettings(evaluation, gate, durableModelFiles));
        Run run = new Run(job, loop);
        running.add(run);
        synchronized (submitted) {
            submitted.add(run);
        }
        loop.stopSignal().onStop(run::wakeForStop);
        return run;
    }

    /**
     * Submits every job (one call from Python for thousands of clients) and returns a started
     * daemon thread that ends when all of them have ended, to be joined in slices.
     */
    public Thread submitAll(List<SyncFLJob> jobs) {
        List<CompletableFuture<FLClientStatus>> all = new ArrayList<>(jobs.size());
        List<Run> runs = new ArrayList<>(jobs.size());
        for (SyncFLJob job : jobs) {
            Run run = register(job); // every device is known before any asks: the check-in draw sees them all
            runs.add(run);
            all.add(run.result);
        }
        for (Run run : runs) {
            run.start();
        }
        CompletableFuture<Void> done = CompletableFuture.allOf(all.toArray(new CompletableFuture<?>[0]));
        Thread waiter = new Thread(() -> {
            try {
                done.join();
            } catch (RuntimeException e) {
                // each Run keeps its own outcome
            }
        }, "fl-engine-waiter");
        waiter.setDaemon(true);
        waiter.start();
        return waiter;
    }

    /** Every run submitted to this engine, in submission order. */
    public List<Run> runs() {
        synchronized (submitted) {
            return new ArrayList<>(submitted);
        }
    }

    /** Clients whose round loop has not ended yet. */
    public int running() {
        return running.size();
    }

    /** Stops every running client (each ends FAILED within a second, as stopFLJob). */
    public void stopAll() {
        for (Run r : running) {
            r.job.stopFLJob();
        }
    }

    /** Stops every client and the engine's threads. */
    @Override
    public void close() {
        stopAll();
        control.shutdown();
        trainers.shutdown();
    }

    /** One job's run on the engine: where its machine is parked, and its outcome. */
    public final class Run {
        private final SyncFLJob job;
        private final RoundLoop loop;
        private final CompletableFuture<FLClientStatus> result = new CompletableFuture<>();
        /** The continuation of a parked client; whoever takes it (timer, reply, stop) runs it. */
        private final AtomicReference<Parked> parked = new AtomicReference<>();
        private volatile Throwable error;

        private Run(SyncFLJob job, RoundLoop loop) {
            this.job = job;
            this.loop = loop;
        }

        public SyncFLJob job() {
            return job;
        }

        private void start() {
            control.execute(() -> advance(Next.go(loop.firstStep())));
        }

        /** Completes with the job's status when it ends. */
        public CompletableFuture<FLClientStatus> result() {
            return result;
        }

        public boolean isDone() {
            return result.isDone();
        }

        /** The job's status once it has ended (null before). */
        public FLClientStatus getStatus() {
            return result.getNow(null);
        }

        /** The exception that ended the job, if a step threw one (the job then ended FAILED). */
        public Throwable getError() {
            return error;
        }

        /** Runs steps on this thread until the machine parks or ends. */
        private void advance(Next n) {
            try {
                while (n.kind != Next.Kind.DONE) {
                    if (loop.stopSignal().isStopped()) {
                        n = loop.stopped();
                        continue;
                    }
                    switch (n.kind) {
                        case GO:
                            n = n.step.run();
                            break;
                        case COMPUTE:
                            Next.Step compute = n.step;
                            trainers.execute(new Queued(loop.computeRank(), () -> advance(Next.go(compute))));
                            return;
                        case AFTER:
                            park(n.step, n.delayMs, null);
                            return;
                        case AWAIT:
                            park(n.step, 0, n.future);
                            return;
                        default:
                            throw new IllegalStateException("unknown transition " + n.kind);
                    }
                }
                end(n.status);
            } catch (RuntimeException | Error e) {
                error = e;
                loop.log().severe("the round loop failed: " + e + " (the job ends)");
                end(FLClientStatus.FAILED);
            }
        }

        private void park(Next.Step step, long delayMs, CompletableFuture<?> future) {
            Parked p = new Parked(step);
            parked.set(p);
            if (future != null) {
                future.whenComplete((r, e) -> resume(p));
            } else {
                p.timer = control.schedule(() -> resume(p), delayMs, TimeUnit.MILLISECONDS);
            }
            if (loop.stopSignal().isStopped()) { // a stop that came while parking
                wakeForStop();
            }
        }

        private void resume(Parked p) {
            if (parked.compareAndSet(p, null)) {
                control.execute(() -> advance(Next.go(p.step)));
            }
        }

        private void wakeForStop() {
            Parked p = parked.getAndSet(null);
            if (p != null) {
                if (p.timer != null) {
                    p.timer.cancel(false);
                }
                control.execute(() -> advance(Next.go(p.step)));
            }
        }

        private void end(FLClientStatus status) {
            try {
                loop.leftGate();
                job.end(loop, status);
            } finally {
                running.remove(this);
                result.complete(status);
            }
        }
    }

    /** A compute step in the trainer queue: by rank, then in arrival order. */
    static final class Queued implements Runnable, Comparable<Queued> {
        private static final AtomicLong ARRIVALS = new AtomicLong();
        private final long rank;
        private final long arrival = ARRIVALS.getAndIncrement();
        private final Runnable work;

        Queued(long rank, Runnable work) {
            this.rank = rank;
            this.work = work;
        }

        @Override
        public void run() {
            work.run();
        }

        @Override
        public int compareTo(Queued o) {
            int c = Long.compare(rank, o.rank);
            return c != 0 ? c : Long.compare(arrival, o.arrival);
        }
    }

    private static final class Parked {
        final Next.Step step;
        volatile java.util.concurrent.ScheduledFuture<?> timer;

        Parked(Next.Step step) {
            this.step = step;
        }
    }
}
