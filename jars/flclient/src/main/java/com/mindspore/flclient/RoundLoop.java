package com.mindspore.flclient;

import com.mindspore.flclient.model.JobContext;

import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;

/**
 * The device side of docs/protocol.md for one job: startFLJob → train → updateModel → getModel →
 * evaluate, round after round until the plan's iterations are done. Each step is its own class
 * ({@link StartFLJobStep}, {@link TrainStep}, {@link UpdateModelStep}, {@link GetModelStep},
 * {@link EvaluateStep}) and answers SUCCESS (go on), RESTART (OutOfTime or not selected: wait
 * until {@code next_req_time}, then startFLJob again) or FAILED (the job ends); the server's
 * transient answers are handled below them by {@link ServerExchange}. Every wait ends at once on
 * stopFLJob.
 *
 * <p>Model and data are loaded when a round starts and dropped when it ends (or is refused),
 * so a client waiting for its next round holds no tensors ({@link LocalModel}); the model file
 * is saved after getModel so that weights and optimizer state carry over to the next round.
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
    private final GetModelStep getModel;
    private final EvaluateStep evaluate;

    RoundLoop(FLParameter p, Logger log, StopSignal stop, FLCommunication comm) {
        this.p = p;
        this.log = log;
        this.stop = stop;
        this.context = new JobContext(log, p.getTrainListener(), stop::isStopped);
        IFLJobResultCallback cb = p.getIflJobResultCallback();
        this.callback = cb != null ? cb : new LoggingResultCallback(log);
        this.server = new ServerExchange(p, log, stop, comm);
        this.startFLJob = new StartFLJobStep(p, log, server, context, progress);
        this.train = new TrainStep(p, log, stop);
        this.updateModel = new UpdateModelStep(p, log, server, progress);
        this.getModel = new GetModelStep(p, log, server, progress, updateModel);
        this.evaluate = new EvaluateStep(p, log, stop, progress);
    }

    int lastModelIteration() {
        return progress.lastModelIteration;
    }

    /** The whole job; SUCCESS when the plan's iterations are done. */
    FLClientStatus runJob() {
        FLClientStatus status = FLClientStatus.FAILED;
        while (true) {
            if (stop.isStopped()) {
                log.info("the job was stopped: leaving the round loop");
                status = FLClientStatus.FAILED;
                break;
            }
            log.info("flName: " + p.getFlName() + ", fl_id: " + p.getClientID());
            status = oneRound();
            if (status == FLClientStatus.SUCCESS) {
                log.info("========== the total response of iteration " + progress.iteration + ": SUCCESS ==========");
                notifyIteration();
                if (progress.iteration >= progress.iterations) {
                    break;
                }
                continue;
            }
            if (status == FLClientStatus.RESTART) {
                notifyIteration();
                if (waitNextRequestTime()) {
                    status = FLClientStatus.FAILED;
                    break;
                }
                continue;
            }
            log.info("========== the total response of iteration " + progress.iteration + ": " + status + " ==========");
            notifyIteration();
            break;
        }
        log.info("flJobRun finished: " + status + " after iteration " + progress.iteration + " of " + progress.iterations);
        try {
            callback.onFlJobFinished(p.getFlName(), progress.iterations, server.lastRetcode());
        } catch (RuntimeException e) {
            log.warning("the result callback failed in onFlJobFinished (ignored): " + e);
        }
        return status;
    }

    private void notifyIteration() {
        try {
            callback.onFlJobIterationFinished(p.getFlName(), progress.iteration, server.lastRetcode());
        } catch (RuntimeException e) {
            log.warning("the result callback failed in onFlJobIterationFinished (ignored): " + e);
        }
    }

    /** @return true when stopped while waiting */
    private boolean waitNextRequestTime() {
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
        return stop.sleep(wait);
    }

    /** One round, the steps in the protocol's order; model and data only live inside it. */
    private FLClientStatus oneRound() {
        try (LocalModel model = LocalModel.open(p, context, p.getTrainModelPath())) {
            Map<RunType, List<String>> files = new EnumMap<>(RunType.class);
            files.put(RunType.TRAINMODE, p.getDataMap().get(RunType.TRAINMODE));
            if (p.getDataMap().containsKey(RunType.EVALMODE)) {
                files.put(RunType.EVALMODE, p.getDataMap().get(RunType.EVALMODE));
            }
            Map<RunType, Integer> sizes = model.client().initDataSets(files);
            int dataSize = sizes.getOrDefault(RunType.TRAINMODE, 0);
            if (dataSize <= 0) {
                log.severe("[startFLJob] no training sample: the case read 0 samples from " + files.get(RunType.TRAINMODE));
                return FLClientStatus.FAILED;
            }
            logPadding(dataSize, model.batchSize());

            FLClientStatus s = startFLJob.run(model, dataSize);
            if (s != FLClientStatus.SUCCESS) {
                return s;
            }
            s = train.run(model.client(), progress.epochs);
            if (s != FLClientStatus.SUCCESS) {
                return s;
            }
            s = updateModel.run(model, dataSize);
            if (s != FLClientStatus.SUCCESS) {
                return s;
            }
            s = getModel.run(model);
            if (s != FLClientStatus.SUCCESS) {
                return s;
            }
            return evaluate.run(model.client(), sizes.getOrDefault(RunType.EVALMODE, 0));
        } catch (RuntimeException e) {
            log.severe("round failed: " + e.getMessage() + " (" + e.getClass().getSimpleName() + ")");
            return FLClientStatus.FAILED;
        }
    }

    private void logPadding(int samples, int batch) {
        int pad = (batch - samples % batch) % batch;
        if (pad > 0) {
            log.info("train data: " + samples + " samples in batches of " + batch + "; the last batch is completed with "
                    + pad + " repeated samples (loss and accuracy count each real sample once; the repeats weigh "
                    + "twice in that one step's gradient)");
        }
    }

    /** Standalone getModel: the latest global model into the model file(s). */
    FLClientStatus downloadModel(int iteration) {
        String path = p.getTrainModelPath() != null ? p.getTrainModelPath() : p.getInferModelPath();
        try (LocalModel model = LocalModel.open(p, context, path)) {
            return getModel.standalone(model, iteration);
        } catch (RuntimeException e) {
            log.severe("[getModel] failed: " + e.getMessage() + " (" + e.getClass().getSimpleName() + ")");
            return FLClientStatus.FAILED;
        }
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
