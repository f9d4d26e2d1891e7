package com.mindspore.flclient;

import com.mindspore.flclient.model.Client;
import com.mindspore.flclient.model.JobContext;
import com.mindspore.flclient.model.Status;
import com.mindspore.flclient.model.TrainableModel;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.logging.Logger;

import mindspore.schema.ResponseCode;

/**
 * The device side of PROTOCOL.md for one job: startFLJob → train → updateModel → getModel →
 * evaluate, round after round until the plan's iterations are done, with every reply of the
 * server handled: SucNotReady waits {@code sleepTime}; OutOfTime ends the round and waits until
 * {@code next_req_time}; RequestError fails the job; SystemError, plain-text "finished",
 * unreadable replies and an unreachable server are retried {@code maxRetries} times in a row,
 * then the job fails instead of spinning; "safemode" is waited out. Every wait ends at once
 * on stopFLJob.
 *
 * <p>Model and data are loaded when a round starts and dropped when it ends (or is refused),
 * so a client waiting for its next round holds no tensors; the model file is saved after
 * getModel so that weights and optimizer state carry over to the next round.
 */
final class RoundLoop {
    /** Longest wait for a next_req_time, so that a server with a wrong clock cannot park a client for days. */
    static final long MAX_NEXT_REQ_WAIT_MS = 10 * 60 * 1000L;
    /** Shortest wait after OutOfTime, so that a next_req_time in the past cannot make the client spin. */
    static final long MIN_NEXT_REQ_WAIT_MS = 100L;

    private final FLParameter p;
    private final Logger log;
    private final StopSignal stop;
    private final FLCommunication comm;
    private final JobContext context;
    private final IFLJobResultCallback callback;

    private int failures;
    private int lastRetcode;
    private int iteration;
    private int iterations;
    private String nextReqTime = "";
    /** Names of the weights the server sent in startFLJob: exactly these are uploaded. */
    private List<String> serverWeightNames = List.of();
    /** Local epochs of the plan. */
    private int epochs;
    /** Iteration of the last model received, for the standalone getModel. */
    private int lastModelIteration;

    RoundLoop(FLParameter p, Logger log, StopSignal stop, FLCommunication comm) {
        this.p = p;
        this.log = log;
        this.stop = stop;
        this.comm = comm;
        this.context = new JobContext(log, p.getTrainListener(), stop::isStopped);
        IFLJobResultCallback cb = p.getIflJobResultCallback();
        this.callback = cb != null ? cb : new LoggingResultCallback(log);
    }

    int lastModelIteration() {
        return lastModelIteration;
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
                log.info("========== the total response of iteration " + iteration + ": SUCCESS ==========");
                notifyIteration();
                if (iteration >= iterations) {
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
            log.info("========== the total response of iteration " + iteration + ": " + status + " ==========");
            notifyIteration();
            break;
        }
        log.info("flJobRun finished: " + status + " after iteration " + iteration + " of " + iterations);
        try {
            callback.onFlJobFinished(p.getFlName(), iterations, lastRetcode);
        } catch (RuntimeException e) {
            log.warning("the result callback failed in onFlJobFinished (ignored): " + e);
        }
        return status;
    }

    private void notifyIteration() {
        try {
            callback.onFlJobIterationFinished(p.getFlName(), iteration, lastRetcode);
        } catch (RuntimeException e) {
            log.warning("the result callback failed in onFlJobIterationFinished (ignored): " + e);
        }
    }

    /** @return true when stopped while waiting */
    private boolean waitNextRequestTime() {
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

    /** One round; model and data only live inside it. */
    private FLClientStatus oneRound() {
        Client client = null;
        try {
            client = newClient();
            loadModel(client, p.getTrainModelPath());
            Map<RunType, List<String>> files = new EnumMap<>(RunType.class);
            files.put(RunType.TRAINMODE, p.getDataMap().get(RunType.TRAINMODE));
            if (p.getDataMap().containsKey(RunType.EVALMODE)) {
                files.put(RunType.EVALMODE, p.getDataMap().get(RunType.EVALMODE));
            }
            Map<RunType, Integer> sizes = client.initDataSets(files);
            int dataSize = sizes.getOrDefault(RunType.TRAINMODE, 0);
            if (dataSize <= 0) {
                log.severe("[startFLJob] no training sample: the case read 0 samples from " + files.get(RunType.TRAINMODE));
                return FLClientStatus.FAILED;
            }
            logPadding(dataSize, client.getModel().batchSize());

            FLClientStatus s = startFLJob(client, dataSize);
            if (s != FLClientStatus.SUCCESS) {
                return s;
            }
            s = train(client);
            if (s != FLClientStatus.SUCCESS) {
                return s;
            }
            s = updateModel(client, dataSize);
            if (s != FLClientStatus.SUCCESS) {
                return s;
            }
            s = getModelInLoop(client);
            if (s != FLClientStatus.SUCCESS) {
                return s;
            }
            if (sizes.getOrDefault(RunType.EVALMODE, 0) > 0) {
                float acc = client.evalModel();
                if (stop.isStopped()) {
                    return FLClientStatus.FAILED;
                }
                log.info("[evaluate] evaluate acc: " + acc);
                TrainListener l = p.getTrainListener();
                if (l != null) {
                    try {
                        l.onIterationAccuracy(iteration, acc);
                    } catch (RuntimeException e) {
                        log.warning("the TrainListener failed in onIterationAccuracy (ignored): " + e);
                    }
                }
            } else {
                log.info("[evaluate] no EVALMODE data in the data map: the new model is not evaluated");
            }
            return FLClientStatus.SUCCESS;
        } catch (RuntimeException e) {
            log.severe("round failed: " + e.getMessage() + " (" + e.getClass().getSimpleName() + ")");
            return FLClientStatus.FAILED;
        } finally {
            if (client != null) {
                client.free();
            }
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

    Client newClient() {
        Client c = ClientFactory.create(p.getFlName());
        c.setContext(context);
        return c;
    }

    private void loadModel(Client client, String path) {
        Status st = client.initSessionAndInputs(path);
        if (st != Status.SUCCESS) {
            throw new IllegalStateException("cannot load the model " + path + ": " + st);
        }
        TrainableModel m = client.getModel();
        if (m.batchSize() != p.getBatchSize()) {
            throw new IllegalArgumentException("FLParameter.batchSize = " + p.getBatchSize() + " but the model " + path
                    + " was exported with batch " + m.batchSize() + "; set batchSize to " + m.batchSize());
        }
    }

    private FLClientStatus startFLJob(Client client, int dataSize) {
        byte[] body = FLMessages.requestFLJob(p.getFlName(), p.getClientID(), iteration, dataSize);
        log.info("[startFLJob] request startFLJob with data_size " + dataSize);
        FLMessages.Response r = exchange("startFLJob", body, FLMessages::parseStartFLJob, false);
        if (r == null) {
            return FLClientStatus.FAILED;
        }
        if (r.retcode == ResponseCode.OutOfTime || r.retcode == ResponseCode.NotSelected
                || (r.retcode == ResponseCode.SUCCEED && !r.isSelected)) {
            nextReqTime = r.nextReqTime;
            log.info("[startFLJob] not admitted now (" + r + "): come back at next_req_time " + r.nextReqTime);
            return FLClientStatus.RESTART;
        }
        if (r.retcode != ResponseCode.SUCCEED) {
            log.severe("[startFLJob] refused: " + r + "; the request is invalid for this server, the job ends");
            return FLClientStatus.FAILED;
        }
        if (r.plan == null) {
            log.severe("[startFLJob] the reply has no fl_plan_config; the server is not a FL server of this protocol");
            return FLClientStatus.FAILED;
        }
        if (r.featureMap.isEmpty()) {
            log.severe("[startFLJob] the reply carries no weights (feature_map is empty)");
            return FLClientStatus.FAILED;
        }
        iteration = r.iteration;
        iterations = r.plan.iterations;
        context.setIteration(iteration);
        log.info("[startFLJob] startFLJob succeed, curIteration: " + iteration);
        log.info("[startFLJob] plan: iterations " + r.plan.iterations + ", epochs " + r.plan.epochs + ", mini_batch "
                + r.plan.miniBatch + ", lr " + r.plan.lr + ", encrypt_type '" + r.plan.encryptType + "'");
        if (!r.plan.encryptType.isEmpty() && !"NOT_ENCRYPT".equals(r.plan.encryptType)) {
            log.severe("[startFLJob] the server asks for encrypt_type " + r.plan.encryptType
                    + ", which this client does not implement; start the server with encrypt_type NOT_ENCRYPT");
            return FLClientStatus.FAILED;
        }
        if (r.plan.miniBatch > 0 && r.plan.miniBatch != client.getModel().batchSize()) {
            log.warning("[startFLJob] the plan's mini_batch " + r.plan.miniBatch + " differs from the model's batch "
                    + client.getModel().batchSize() + "; the model's batch is used");
        }
        setWeights(client, r.featureMap, "startFLJob");
        serverWeightNames = new ArrayList<>(r.featureMap.keySet());
        if (r.plan.lr > 0) {
            client.setLearningRate(r.plan.lr);
        }
        epochs = r.plan.epochs;
        return FLClientStatus.SUCCESS;
    }

    private void setWeights(Client client, Map<String, float[]> weights, String round) {
        List<String> known = client.getModel().weightNames();
        List<String> unknown = new ArrayList<>();
        for (String name : weights.keySet()) {
            if (!known.contains(name)) {
                unknown.add(name);
            }
        }
        if (!unknown.isEmpty()) {
            throw new IllegalArgumentException("[" + round + "] the server's model does not match this client's .ms "
                    + "file: weights " + unknown + " are not in it (it has " + known + ")");
        }
        Status st = client.updateFeatures(weights);
        if (st != Status.SUCCESS) {
            throw new IllegalStateException("[" + round + "] cannot set the weights: " + st);
        }
    }

    private FLClientStatus train(Client client) {
        if (epochs <= 0) {
            log.severe("[train] the plan asks for " + epochs + " epochs");
            return FLClientStatus.FAILED;
        }
        Semaphore permits = p.getTrainingPermits();
        if (permits != null && !acquire(permits)) {
            return FLClientStatus.FAILED;
        }
        Status st;
        try {
            st = client.trainModel(epochs);
        } finally {
            if (permits != null) {
                permits.release();
            }
        }
        if (st == Status.STOPPED) {
            return FLClientStatus.FAILED;
        }
        if (st != Status.SUCCESS) {
            log.severe("[train] local training failed: " + st);
            return FLClientStatus.FAILED;
        }
        log.info("[train] train succeed");
        return FLClientStatus.SUCCESS;
    }

    /** Waits for a training permit; false when stopped first. */
    private boolean acquire(Semaphore permits) {
        try {
            while (!stop.isStopped()) {
                if (permits.tryAcquire(100, TimeUnit.MILLISECONDS)) {
                    if (stop.isStopped()) {
                        permits.release();
                        return false;
                    }
                    return true;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return false;
    }

    private FLClientStatus updateModel(Client client, int dataSize) {
        Map<String, float[]> upload = new LinkedHashMap<>();
        for (String name : serverWeightNames) {
            float[] w = client.getModel().getWeight(name);
            for (int i = 0; i < w.length; i++) {
                w[i] *= dataSize;
            }
            upload.put(name, w);
        }
        byte[] body = FLMessages.requestUpdateModel(p.getFlName(), p.getClientID(), iteration, upload);
        FLMessages.Response r = exchange("updateModel", body, FLMessages::parseUpdateModel, false);
        if (r == null) {
            return FLClientStatus.FAILED;
        }
        if (r.retcode == ResponseCode.OutOfTime) {
            nextReqTime = r.nextReqTime;
            log.info("[updateModel] out of time (" + r + "): come back at next_req_time " + r.nextReqTime);
            return FLClientStatus.RESTART;
        }
        if (r.retcode != ResponseCode.SUCCEED) {
            log.severe("[updateModel] refused: " + r);
            return FLClientStatus.FAILED;
        }
        log.info("[updateModel] updateModel succeed: " + upload.size() + " weights x data_size " + dataSize);
        return FLClientStatus.SUCCESS;
    }

    private FLClientStatus getModelInLoop(Client client) {
        FLMessages.Response r = requestModel(iteration, false);
        if (r == null) {
            return FLClientStatus.FAILED;
        }
        if (r.retcode == ResponseCode.OutOfTime) {
            nextReqTime = r.nextReqTime;
            return FLClientStatus.RESTART;
        }
        if (r.retcode != ResponseCode.SUCCEED) {
            log.severe("[getModel] refused: " + r);
            return FLClientStatus.FAILED;
        }
        setWeights(client, r.featureMap, "getModel");
        saveModel(client);
        return FLClientStatus.SUCCESS;
    }

    /** getModel until the model is there. */
    private FLMessages.Response requestModel(int iter, boolean boundNotReady) {
        byte[] body = FLMessages.requestGetModel(p.getFlName(), iter);
        FLMessages.Response r = exchange("getModel", body, FLMessages::parseGetModel, boundNotReady);
        if (r != null && r.retcode == ResponseCode.SUCCEED) {
            if (r.featureMap.isEmpty()) {
                log.severe("[getModel] the reply carries no weights (feature_map is empty)");
                return null;
            }
            lastModelIteration = r.iteration;
            log.info("[getModel] get response from server ok!");
            log.info("[getModel] model of iteration " + r.iteration + ": " + r.featureMap.size() + " weights");
        }
        return r;
    }

    private void saveModel(Client client) {
        client.saveModel(p.getTrainModelPath());
        String infer = p.getInferModelPath();
        if (infer != null && !Path.of(infer).toAbsolutePath().equals(Path.of(p.getTrainModelPath()).toAbsolutePath())) {
            client.saveModel(infer);
        }
        log.info("[getModel] the new model is saved to " + p.getTrainModelPath()
                + (infer != null && !infer.equals(p.getTrainModelPath()) ? " and " + infer : ""));
    }

    /**
     * Posts {@code body} to the round until the server answers with something other than
     * "wait": SucNotReady, safemode (waited out), SystemError, "finished", unreadable replies and
     * an unreachable server (retried up to maxRetries times in a row).
     *
     * @return the reply, or null when the job must end (stopped or out of retries)
     */
    private FLMessages.Response exchange(String round, byte[] body,
                                         Function<FLCommunication.Reply, FLMessages.Response> parse,
                                         boolean boundNotReady) {
        while (true) {
            if (stop.isStopped()) {
                return null;
            }
            String problem;
            try {
                FLMessages.Response r = parse.apply(comm.post(round, body));
                if (r.kind == FLMessages.Kind.REPLY) {
                    lastRetcode = r.retcode;
                }
                if (r.kind == FLMessages.Kind.SAFEMODE) {
                    log.info("[" + round + "] the cluster is in safemode: asking again in " + p.getSleepTime() + " ms");
                    failures = 0;
                    if (stop.sleep(p.getSleepTime())) {
                        return null;
                    }
                    continue;
                }
                if (r.kind == FLMessages.Kind.REPLY && r.retcode == ResponseCode.SucNotReady && !boundNotReady) {
                    failures = 0;
                    log.info("[" + round + "] not ready yet (" + r + "): asking again in " + p.getSleepTime() + " ms");
                    if (stop.sleep(p.getSleepTime())) {
                        return null;
                    }
                    continue;
                }
                if (r.kind == FLMessages.Kind.REPLY && r.retcode != ResponseCode.SystemError
                        && r.retcode != ResponseCode.SucNotReady) {
                    failures = 0;
                    return r;
                }
                problem = r.kind == FLMessages.Kind.FINISHED
                        ? "the server's training job is disabled or finished"
                        : r.kind == FLMessages.Kind.REPLY ? "server answered " + r : "unreadable reply: " + r;
            } catch (IOException e) {
                problem = "server " + comm.urlOf(round) + " unreachable: " + e;
            } catch (StopSignal.StoppedException e) {
                return null;
            }
            failures++;
            if (failures > p.getMaxRetries()) {
                log.severe("[" + round + "] " + problem + "; giving up after " + failures
                        + " failed attempts in a row (maxRetries = " + p.getMaxRetries() + ")");
                return null;
            }
            log.warning("[" + round + "] " + problem + "; attempt " + failures + " of " + (p.getMaxRetries() + 1)
                    + ", retrying in " + p.getSleepTime() + " ms");
            if (stop.sleep(p.getSleepTime())) {
                return null;
            }
        }
    }

    /** Standalone getModel: the latest global model into the model file(s). */
    FLClientStatus downloadModel(int iter) {
        Client client = null;
        try {
            client = newClient();
            String path = p.getTrainModelPath() != null ? p.getTrainModelPath() : p.getInferModelPath();
            Status st = client.initSessionAndInputs(path);
            if (st != Status.SUCCESS) {
                return FLClientStatus.FAILED;
            }
            FLMessages.Response r = requestModel(iter, true);
            if (r == null) {
                return FLClientStatus.FAILED;
            }
            if (r.retcode != ResponseCode.SUCCEED) {
                log.severe("[getModel] refused: " + r);
                return FLClientStatus.FAILED;
            }
            setWeights(client, r.featureMap, "getModel");
            if (p.getTrainModelPath() != null) {
                client.saveModel(p.getTrainModelPath());
            }
            String infer = p.getInferModelPath();
            if (infer != null && Files.isRegularFile(Path.of(infer)) && (p.getTrainModelPath() == null
                    || !Path.of(infer).toAbsolutePath().equals(Path.of(p.getTrainModelPath()).toAbsolutePath()))) {
                client.saveModel(infer);
            }
            log.info("[getModel] the model of iteration " + r.iteration + " is saved to " + path);
            return FLClientStatus.SUCCESS;
        } catch (RuntimeException e) {
            log.severe("[getModel] failed: " + e.getMessage() + " (" + e.getClass().getSimpleName() + ")");
            return FLClientStatus.FAILED;
        } finally {
            if (client != null) {
                client.free();
            }
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
