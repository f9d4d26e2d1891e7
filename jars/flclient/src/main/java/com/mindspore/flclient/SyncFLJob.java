package com.mindspore.flclient;

import com.mindspore.flclient.model.RunType;

import com.mindspore.flclient.cases.Client;
import com.mindspore.flclient.cases.JobContext;

import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;

/**
 * One federated-learning client: {@link #flJobRun()} takes part in the server's rounds until
 * its plan is done, {@link #modelInference()} labels data with the local model,
 * {@link #getModel()} fetches the latest global model, {@link #stopFLJob()} ends a running job
 * within a second. The API of MindSpore r1.6; many jobs may run as threads of one JVM, each
 * with its own {@link FLParameter} and log file.
 *
 * <p>{@link #main} runs one client from a shell: see docs/java-client.md for its arguments.
 */
public class SyncFLJob implements Runnable {
    private final FLParameter parameter;
    private volatile StopSignal stop = new StopSignal();
    private volatile FLClientStatus status;
    private volatile int lastModelIteration;
    private volatile int participated;
    private volatile JobLog openLog;

    /** A job on the r1.6 singleton {@link FLParameter#getInstance()}. */
    public SyncFLJob() {
        this(FLParameter.getInstance());
    }

    /** A job with its own parameters (one per client when many run in one JVM). */
    public SyncFLJob(FLParameter parameter) {
        if (parameter == null) {
            throw new IllegalArgumentException("the FLParameter of a SyncFLJob must not be null");
        }
        this.parameter = parameter;
        if (parameter.getFlName() != null) {
            ClientFactory.find(parameter.getFlName());
        }
    }

    public FLParameter getParameter() {
        return parameter;
    }

    /**
     * Runs the round loop until the plan's iterations are done (SUCCESS), the server's job ends
     * while this client waits to be admitted (NOT_SELECTED), or the job is stopped or fails
     * (FAILED; the log says why).
     *
     * @throws IllegalArgumentException when a parameter is missing or wrong (the message names it)
     */
    public FLClientStatus flJobRun() {
        RoundLoop loop = begin();
        FLClientStatus s = FLClientStatus.FAILED;
        try {
            s = loop.runBlocking();
            return s;
        } finally {
            end(loop, s);
        }
    }

    /** Opens the log and builds the round loop of a run (here or on a {@link ClientEngine}). */
    RoundLoop begin() {
        return begin(RunSettings.R16);
    }

    /** {@link #begin()} with an engine's settings. */
    RoundLoop begin(RunSettings settings) {
        parameter.validate();
        ClientFactory.find(parameter.getFlName());
        StopSignal signal = stop;
        JobLog jl = JobLog.open(parameter.getLogPath(), parameter.getClientID());
        Logger log = jl.logger();
        log.info("start flJobRun: server " + parameter.getDomainName() + (parameter.isUseElb()
                ? " (ELB over " + parameter.getServerNum() + " ports)" : "") + ", model " + parameter.getTrainModelPath()
                + ", threadNum " + parameter.getThreadNum() + ", cpuBindMode " + parameter.getCpuBindModeEnum());
        openLog = jl;
        return new RoundLoop(parameter, log, signal, new FLCommunication(parameter, signal), settings);
    }

    /** The end of a run: its result kept, its log closed, a fresh stop signal for the next run. */
    void end(RoundLoop loop, FLClientStatus s) {
        lastModelIteration = Math.max(lastModelIteration, loop.lastModelIteration());
        participated = loop.participated();
        status = s;
        JobLog jl = openLog;
        openLog = null;
        stop = new StopSignal();
        if (jl != null) {
            jl.close();
        }
    }

    /** Iterations the last (or current) run took part in: its upload accepted and the model received. */
    public int getParticipatedIterations() {
        return participated;
    }

    /** Labels of the INFERMODE data of the data map, predicted with inferModelPath (or trainModelPath). */
    public int[] modelInference() {
        parameter.validateForInference(true);
        Map<RunType, List<String>> files = new EnumMap<>(RunType.class);
        files.put(RunType.INFERMODE, parameter.getDataMap().get(RunType.INFERMODE));
        return infer(client -> client.initDataSets(files));
    }

    /**
     * Labels of in-memory images in the bin layout of the case (LeNet: float32 NHWC (count, 32, 32, 3)).
     */
    public int[] modelInference(float[] nhwcImages, int count) {
        parameter.validateForInference(false);
        if (nhwcImages == null || count < 1) {
            throw new IllegalArgumentException("modelInference: give at least one image (count = " + count + ")");
        }
        return infer(client -> client.initInferData(nhwcImages, count));
    }

    private interface DataLoader {
        Map<RunType, Integer> load(Client client);
    }

    private int[] infer(DataLoader loader) {
        StopSignal signal = stop;
        try (JobLog jl = JobLog.open(parameter.getLogPath(), parameter.getClientID())) {
            Logger log = jl.logger();
            String modelPath = parameter.getInferModelPath() != null ? parameter.getInferModelPath()
                    : parameter.getTrainModelPath();
            try (LocalModel model = LocalModel.open(parameter,
                    new JobContext(log, parameter.getTrainListener(), signal::isStopped), modelPath)) {
                Client client = model.client();
                Map<RunType, Integer> sizes = loader.load(client);
                if (sizes.getOrDefault(RunType.INFERMODE, 0) <= 0) {
                    throw new IllegalArgumentException("[model inference] the case read no inference sample");
                }
                log.info("===========model inference=============");
                List<Object> result = client.inferModel();
                if (result == null) {
                    log.severe("[model inference] inference failed or was stopped");
                    return new int[0];
                }
                int[] labels = new int[result.size()];
                for (int i = 0; i < labels.length; i++) {
                    labels[i] = ((Number) result.get(i)).intValue();
                }
                log.info("[model inference] the predicted labels: " + Arrays.toString(labels));
                log.info("[model inference] inference finish");
                return labels;
            }
        } finally {
            if (signal.isStopped()) {
                stop = new StopSignal();
            }
        }
    }

    /** Downloads the latest global model into trainModelPath (and inferModelPath when it is another file). */
    public FLClientStatus getModel() {
        parameter.validateForGetModel();
        StopSignal signal = stop;
        try (JobLog jl = JobLog.open(parameter.getLogPath(), parameter.getClientID())) {
            RoundLoop loop = new RoundLoop(parameter, jl.logger(), signal, new FLCommunication(parameter, signal));
            FLClientStatus s = loop.downloadModel(lastModelIteration);
            lastModelIteration = Math.max(lastModelIteration, loop.lastModelIteration());
            return s;
        } finally {
            stop = new StopSignal();
        }
    }

    /** The weights of the model file (trainModelPath, else inferModelPath), by name in file order. */
    public Map<String, float[]> getModelWeights() {
        String path = parameter.getTrainModelPath() != null ? parameter.getTrainModelPath() : parameter.getInferModelPath();
        if (path == null) {
            throw new IllegalArgumentException("FLParameter.trainModelPath = null: no model file to read weights from");
        }
        Client client = ClientFactory.create(parameter.getFlName());
        try {
            client.initSessionAndInputs(path);
            return client.getFeatures();
        } finally {
            client.free();
        }
    }

    /** Makes a running flJobRun / getModel / modelInference return within one second (FAILED). */
    public void stopFLJob() {
        stop.stop();
    }

    /** Runnable: flJobRun(); the result is in {@link #getStatus()}. */
    @Override
    public void run() {
        try {
            status = flJobRun();
        } catch (RuntimeException e) {
            status = FLClientStatus.FAILED;
            throw e;
        }
    }

    /** Result of the last flJobRun (null before the first). */
    public FLClientStatus getStatus() {
        return status;
    }

    /**
     * Runs one client from a shell. Two forms:
     * {@code --task train --flName ... --trainModelPath m.ms --domainName http://IP:port --trainData d.bin,l.bin ...}
     * or the positional arguments of MindSpore r1.6's run_client_x86.py. Exit code 0 on success,
     * 1 when the task failed, 2 on bad arguments.
     */
    public static void main(String[] args) {
        int code;
        try {
            code = JobArgs.parse(args).runTask();
        } catch (IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            System.err.println(JobArgs.USAGE);
            code = 2;
        }
        System.exit(code);
    }
}
