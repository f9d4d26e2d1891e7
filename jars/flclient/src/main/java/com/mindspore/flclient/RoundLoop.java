package com.mindspore.flclient;

import com.mindspore.flclient.cases.JobContext;

import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.logging.Logger;

/**
 * The device side of docs/protocol.md for one job: startFLJob → train → updateModel → getModel →
 * evaluate, round after round until the plan's iterations are done, as a resumable state
 * machine. Each step ({@link StartFLJobStep}, {@link TrainStep}, {@link UpdateModelStep},
 * {@link GetModelStep}, {@link EvaluateStep}) returns a {@link Next}: go on, wait until a time,
 * await an HTTP reply, take a training permit, or done. {@link #runBlocking()} drives it on the
 * calling thread (r1.6's {@code flJobRun()}); {@link ClientEngine} drives thousands of them on a
 * few threads. A round ends SUCCESS (go on), RESTART (OutOfTime or not selected: wait until
 * {@code next_req_time}, then startFLJob again), NOT_SELECTED (the server's job ended while this
 * client waited) or FAILED (the job ends); the server's transient answers are handled below the
 * steps by {@link ServerExchange}. A stop ends every wait at once. startFLJob decodes the
 * {@link Plan} once; it goes to the round's steps as an argument. The plan's encrypt type chooses
 * an {@link UploadProtection} (pairwise masking runs its key and share rounds between startFLJob and
 * training and its client-list and reconstruction rounds between updateModel and getModel); its
 * aggregation type chooses the {@link LocalTraining} of the training step; its server_mode the
 * synchronous rounds or the asynchronous loop ({@link AsyncRounds}: asyncUpdateModel and
 * asyncGetModel instead of updateModel and getModel).
 *
 * <p>Model and data are loaded only inside the two steps that hold a training permit — training
 * (through building the upload) and getModel + evaluation — and dropped at their end, so a client
 * waiting for admission, for its upload's reply or for the iteration's end holds no tensors; the
 * trained model waits for getModel in a file ({@link LocalModel#trainedPath}).
 */
final class RoundLoop {
    /** Longest wait for a next_req_time, so that a server with a wrong clock cannot park a client for days. */
    static final long MAX_NEXT_REQ_WAIT_MS = 10 * 60 * 1000L;
    /** Shortest wait after OutOfTime, so that a next_req_time in the past cannot make the client spin. */
    static final long MIN_NEXT_REQ_WAIT_MS = 100L;

    private final FLParameter p;
    private final Logger log;
    private final StopSignal stop;
    private final JobContext context;
    private final IFLJobResultCallback callback;
    private final ServerExchange server;
    private final JobProgress progress = new JobProgress();

    private final StartFLJobStep startFLJob;
    private final TrainStep train;
    private final UpdateModelStep updateModel;
    /** An upload the server lost, kept to be sent again without training ({@link KeptUpload}). */
    private KeptUpload kept;
    /** SHA-256 of the weights of the last admission (what the round's training starts from). */
    private byte[] admittedDigest;
    /** Whether the plan of the last upload lets a lost upload be sent again ({@link KeptUpload#reusable}). */
    private boolean lostPlanReusable;
    private final GetModelStep getModel;
    private final EvaluateStep evaluate;
    /** The asynchronous loop's upload and fetch (a plan whose server_mode is the asynchronous one). */
    private final AsyncRounds async;
    /** The upload protection of each encrypt type, by name. */
    private final Map<String, UploadProtection> protections;
    private final PushMetricsStep pushMetrics;

    /** The engine's check-in gate (null: the blocking driver, r1.6's next_req_time waits). */
    private final CheckInGate gate;
    /** The data sizes have been read (the first time this device asks). */
    private boolean probed;
    private boolean toldWaiting;
    /** Where this client's pending compute step goes in the engine's trainer queue (lower: sooner). */
    private volatile long computeRank;

    /** Trainer queue order: evaluations first, then data-size reads, then training, the most data first. */
    static final long RANK_EVALUATE = 0;
    static final long RANK_PROBE = 1;
    static final long RANK_TRAIN = 2;

    RoundLoop(FLParameter p, Logger log, StopSignal stop, FLCommunication comm) {
        this(p, log, stop, comm, RunSettings.R16);
    }

    RoundLoop(FLParameter p, Logger log, StopSignal stop, FLCommunication comm, RunSettings settings) {
        this.gate = settings.gate;
        this.p = p;
        this.log = log;
        this.stop = stop;
        this.pushMetrics = new PushMetricsStep(p, log, comm);
        this.context = new JobContext(log, pushMetrics.recording(p.getTrainListener()), stop::isStopped);
        IFLJobResultCallback cb = p.getIflJobResultCallback();
        this.callback = cb != null ? cb : new LoggingResultCallback(log);
        this.server = new ServerExchange(p, log, stop, comm, settings.gate);
        this.startFLJob = new StartFLJobStep(p, log, server, context, progress);
        this.protections = UploadProtection.forClient(p, log, server, progress);
        this.train = new TrainStep(p, log, stop, context, progress);
        this.updateModel = new UpdateModelStep(p, log, server, progress);
        this.getModel = new GetModelStep(p, log, server, progress, updateModel);
        this.async = new AsyncRounds(p, log, server, progress);
        this.evaluate = new EvaluateStep(p, log, stop, context, progress, settings.evaluation,
                settings.durableModelFiles);
    }

    int lastModelIteration() {
        return progress.lastModelIteration;
    }

    /** Iterations this client took part in. */
    int participated() {
        return progress.participated;
    }

    StopSignal stopSignal() {
        return stop;
    }

    /**
     * The rank of the compute step this client waits to run ({@link ClientEngine}'s trainer queue
     * takes the lowest first, in arrival order among equals). getModel + evaluation goes first: it is
     * short and lets the client start its next round. Training goes longest first (the most samples),
     * so that the iteration does not end with one big client training while the other trainers idle.
     */
    long computeRank() {
        return computeRank;
    }

    private Next compute(long rank, Next.Step step) {
        computeRank = rank;
        return Next.compute(step);
    }

    private Next training(Plan plan, UploadProtection protection) {
        return compute(RANK_TRAIN + Integer.MAX_VALUE - Math.max(0, progress.dataSize),
                () -> trainAndUpload(plan, protection));
    }

    Logger log() {
        return log;
    }

    /** The job ended: it leaves the engine's line of askers. */
    void leftGate() {
        if (gate != null) {
            gate.left(p.getClientID());
        }
    }

    // -- the state machine ------------------------------------------------------------------

    /** The first step of the whole job: the first round (whose start reads the data sizes). */
    Next.Step firstStep() {
        return this::roundStart;
    }

    /**
     * A round's start: past the engine's check-in gate, read the data sizes the first time (model
     * loaded for the batch check, holding a permit: a device that is never drawn never loads
     * anything), then startFLJob.
     */
    private Next roundStart() {
        if (gate != null && gate.planDone()) {
            log.info("[startFLJob] the plan's last iteration is over (a device of this simulation received its "
                    + "model): " + progress.notSelectedAnyMore());
            return finish(FLClientStatus.NOT_SELECTED);
        }
        CompletableFuture<?> notYet = gate == null ? null : gate.checkIn(p.getClientID());
        if (notYet != null) {
            if (!toldWaiting) {
                toldWaiting = true; // once, not at every model: thousands of waiting devices would each append a line
                log.info("not among the devices that ask in this iteration (simulated availability): waiting for a "
                        + "later global model");
            }
            return Next.await(notYet, this::roundStart);
        }
        if (!probed) {
            return compute(RANK_PROBE, () -> guarded("[startFLJob]", () -> {
                if (!train.probe()) {
                    return endRound(FLClientStatus.FAILED);
                }
                probed = true;
                return askToJoin();
            }));
        }
        return askToJoin();
    }

    private Next askToJoin() {
        log.info("flName: " + p.getFlName() + ", fl_id: " + p.getClientID());
        return startFLJob.run((s, plan) -> {
            if (gate != null) {
                // the next device of the engine's line may ask, unless the server refused this one
                gate.answered(p.getClientID(), s == FLClientStatus.RESTART || s == FLClientStatus.NOT_SELECTED);
                if (s == FLClientStatus.NOT_SELECTED) {
                    gate.jobOver(); // the server's job ended (maybe early): the engine's other devices end too
                }
            }
            if (s != FLClientStatus.SUCCESS) {
                return endRound(s);
            }
            admittedDigest = KeptUpload.digest(progress.admittedWeights);
            UploadProtection protection = protections.get(plan.encrypt.name);
            if (kept != null && kept.matches(progress.iteration, admittedDigest) && KeptUpload.reusable(plan)) {
                byte[] body = kept.body;
                kept = null;
                progress.admittedWeights = null;
                log.info("[updateModel] admitted again to iteration " + progress.iteration + " with the model this "
                        + "device trained from: re-sending its kept upload, not training again");
                return upload(plan, protection, body);
            }
            if (kept != null) { // another iteration or model: the kept upload is of no use
                kept = null;
                LocalModel.dropTrained(p);
            }
            return protection.beforeTraining(plan, c -> c == FLClientStatus.SUCCESS ? training(plan, protection)
                    : endRound(c));
        });
    }

    private Next trainAndUpload(Plan plan, UploadProtection protection) {
        return guarded("round", () -> {
            byte[] body = train.run(plan, protection);
            if (body == null) {
                return endRound(FLClientStatus.FAILED);
            }
            if (plan.async) { // train on the newest model, upload, fetch the newest, repeat
                return async.upload(body, s -> s == FLClientStatus.SUCCESS
                        ? async.fetch(r -> compute(RANK_EVALUATE, () -> evaluate(r)), this::endRound) : endRound(s));
            }
            return upload(plan, protection, body);
        });
    }

    /** updateModel, then the protection's rounds after the upload (PW_ENCRYPT's) and getModel. */
    private Next upload(Plan plan, UploadProtection protection, byte[] body) {
        lostPlanReusable = KeptUpload.reusable(plan);
        return guarded("round", () -> {
            return updateModel.run(body, s -> {
                if (s != FLClientStatus.SUCCESS) {
                    return endRound(s);
                }
                return protection.afterUpload(plan, c -> c == FLClientStatus.SUCCESS ? waitForModel() : endRound(c));
            });
        });
    }

    private Next waitForModel() {
        return getModel.run(r -> compute(RANK_EVALUATE, () -> evaluate(r)), this::endRound);
    }

    private Next evaluate(FLMessages.Response model) {
        if (gate != null) {
            gate.modelSeen(model.iteration, progress.iterations);
        }
        return guarded("round", () -> {
            FLClientStatus s = evaluate.run(model);
            if (s == FLClientStatus.SUCCESS) {
                progress.participated++;
                return pushMetrics.push(evaluate.lastAccuracy, () -> endRound(s));
            }
            return endRound(s);
        });
    }

    /** A step whose RuntimeException (a corrupt model, a batch that does not match) ends the round FAILED. */
    private Next guarded(String where, Next.Step step) {
        try {
            return step.run();
        } catch (RuntimeException e) {
            log.severe(where + " failed: " + e.getMessage() + " (" + e.getClass().getSimpleName() + ")");
            return endRound(FLClientStatus.FAILED);
        }
    }

    /** The end of a round: on to the next one, a wait for next_req_time, or the job's end. */
    private Next endRound(FLClientStatus status) {
        updateModel.forget();
        forgetProtections();
        progress.admittedWeights = null;
        byte[] lost = updateModel.takeLost();
        if (status == FLClientStatus.RESTART && lost != null && admittedDigest != null && lostPlanReusable) {
            kept = new KeptUpload(progress.iteration, admittedDigest, lost); // with the trained model file
            log.info("[updateModel] keeping this device's lost upload of iteration " + progress.iteration
                    + " (and its trained model) in case the server admits it again to that iteration");
        } else if (status == FLClientStatus.RESTART && kept != null) {
            log.fine("still keeping the lost upload of iteration " + kept.iteration + " until startFLJob admits again");
        } else {
            kept = null;
            LocalModel.dropTrained(p);
        }
        ScaffoldTraining.drop(p);
        if (status == FLClientStatus.SUCCESS) {
            log.info("========== the total response of iteration " + progress.iteration + ": SUCCESS ==========");
            notifyIteration();
            return progress.iteration >= progress.iterations ? finish(status) : Next.go(this::roundStart);
        }
        if (status == FLClientStatus.RESTART) {
            notifyIteration();
            long wait = nextRequestWait();
            // the engine's devices come back once the model of the iteration that refused this one is out (it may
            // be out already: an upload refused late, after the others' model was published)
            int of = Math.max(progress.iteration, progress.refusedIn);
            return gate == null ? Next.after(wait, this::roundStart) : Next.await(gate.modelOfOr(of, wait), this::roundStart);
        }
        if (status != FLClientStatus.NOT_SELECTED) {
            log.info("========== the total response of iteration " + progress.iteration + ": " + status + " ==========");
            notifyIteration();
        }
        return finish(status);
    }

    private void forgetProtections() {
        for (UploadProtection u : protections.values()) {
            u.forget();
        }
    }

    /** Where a stop lands, whatever the client was doing. */
    Next stopped() {
        updateModel.forget();
        forgetProtections();
        LocalModel.dropTrained(p);
        ScaffoldTraining.drop(p);
        log.info("the job was stopped: leaving the round loop");
        return finish(FLClientStatus.FAILED);
    }

    private Next finish(FLClientStatus status) {
        log.info("flJobRun finished: " + status + " after iteration " + progress.iteration + " of " + progress.iterations
                + " (took part in " + progress.participated + ")");
        try {
            callback.onFlJobFinished(p.getFlName(), progress.iterations, server.lastRetcode());
        } catch (RuntimeException e) {
            log.warning("the result callback failed in onFlJobFinished (ignored): " + e);
        }
        return Next.done(status);
    }

    private void notifyIteration() {
        try {
            callback.onFlJobIterationFinished(p.getFlName(), progress.iteration, server.lastRetcode());
        } catch (RuntimeException e) {
            log.warning("the result callback failed in onFlJobIterationFinished (ignored): " + e);
        }
    }

    private long nextRequestWait() {
        String nextReqTime = progress.nextReqTime;
        long wait;
        try {
            wait = Long.parseLong(nextReqTime.strip()) - System.currentTimeMillis();
        } catch (NumberFormatException e) {
            log.warning("next_req_time '" + nextReqTime + "' is not epoch milliseconds; waiting sleepTime instead");
            wait = p.getSleepTime();
        }
        if (wait > MAX_NEXT_REQ_WAIT_MS) {
            log.warning("next_req_time is " + wait / 1000 + " s away; waiting " + MAX_NEXT_REQ_WAIT_MS / 1000 + " s at most");
            wait = MAX_NEXT_REQ_WAIT_MS;
        }
        wait = Math.max(wait, MIN_NEXT_REQ_WAIT_MS);
        log.info("out of time: waiting " + wait + " ms (until next_req_time " + nextReqTime + ") before startFLJob again");
        return wait;
    }

    // -- the blocking driver ------------------------------------------------------------------

    /** The whole job on the calling thread; SUCCESS when the plan's iterations are done. */
    FLClientStatus runBlocking() {
        return drive(firstStep());
    }

    /** Standalone getModel: the latest global model into the model file(s). */
    FLClientStatus downloadModel(int iteration) {
        String path = p.getTrainModelPath() != null ? p.getTrainModelPath() : p.getInferModelPath();
        FLClientStatus[] result = {FLClientStatus.FAILED};
        drive(() -> getModel.standalone(iteration, r -> {
            if (r == null) {
                return Next.done(FLClientStatus.FAILED);
            }
            return Next.compute(() -> {
                try (LocalModel model = LocalModel.open(p, context, path)) {
                    GetModelStep.receive(log, model, r, true);
                    result[0] = FLClientStatus.SUCCESS;
                } catch (RuntimeException e) {
                    log.severe("[getModel] failed: " + e.getMessage() + " (" + e.getClass().getSimpleName() + ")");
                }
                return Next.done(result[0]);
            });
        }), false);
        return result[0];
    }

    private FLClientStatus drive(Next.Step first) {
        return drive(first, true);
    }

    /**
     * Runs the machine on this thread: sleeps on the stop latch, waits for HTTP futures (a stop
     * cancels them) and takes the FLParameter's training permit, if any, around compute steps.
     */
    private FLClientStatus drive(Next.Step first, boolean wholeJob) {
        Next n = Next.go(first);
        Semaphore permits = p.getTrainingPermits();
        while (n.kind != Next.Kind.DONE) {
            if (stop.isStopped()) {
                if (!wholeJob) {
                    return FLClientStatus.FAILED;
                }
                n = stopped();
                continue;
            }
            switch (n.kind) {
                case AFTER:
                    stop.sleep(n.delayMs);
                    n = Next.go(n.step);
                    break;
                case AWAIT:
                    stop.awaitCompletion(n.future);
                    n = Next.go(n.step);
                    break;
                case COMPUTE:
                    if (permits != null && !TrainStep.acquire(permits, stop)) {
                        break; // stopped
                    }
                    try {
                        n = n.step.run();
                    } finally {
                        if (permits != null) {
                            permits.release();
                        }
                    }
                    break;
                default:
                    n = n.step.run();
                    break;
            }
        }
        return n.status;
    }

    /** r1.6's default result callback: logs. */
    static final class LoggingResultCallback implements IFLJobResultCallback {
        private final Logger log;

        LoggingResultCallback(Logger log) {
            this.log = log;
        }

        @Override
        public void onFlJobIterationFinished(String modelName, int iterationSeq, int resultCode) {
            log.info("[onFlJobIterationFinished] modelName: " + modelName + ", iterationSeq: " + iterationSeq
                    + ", resultCode: " + resultCode);
        }

        @Override
        public void onFlJobFinished(String modelName, int iterationCount, int resultCode) {
            log.info("[onFlJobFinished] modelName: " + modelName + ", iterationCount: " + iterationCount
                    + ", resultCode: " + resultCode);
        }
    }
}
