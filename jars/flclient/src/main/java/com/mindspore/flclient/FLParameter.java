package com.mindspore.flclient;

import com.mindspore.flclient.model.RunType;

import com.mindspore.flclient.cases.TrainableModel;
import com.mindspore.flclient.rules.ParameterRules;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.NoSuchElementException;
import java.util.UUID;
import java.util.concurrent.Semaphore;

/**
 * Everything one federated-learning client needs to know: where the server is, which case
 * class trains which model file on which data, and how patient to be.
 *
 * <p>The field names and checks are those of MindSpore r1.6 so code written against it keeps
 * working. Unlike r1.6, each {@link SyncFLJob} can have its own parameter object
 * ({@code new FLParameter()}): hundreds of clients run as threads of one JVM without sharing
 * any state. {@link #getInstance()} remains for r1.6 code and is used by {@code new SyncFLJob()}.
 *
 * <p>Setters check their argument at once and throw {@link IllegalArgumentException} naming
 * the field; {@link #validate()} checks that the fields a training job needs are present. The
 * rules of the plain values (numbers, names, the URL) are not written here: they are the table
 * schema/client_parameters.json, generated into {@link ParameterRules}, which the Python
 * {@code FLParameter} reads too ({@link #checkRule} lets a test hold both side by side).
 */
public class FLParameter {
    /** Default wait between two polls of a not-ready server (r1.6: 1 s). */
    public static final int SLEEP_TIME = 1000;
    /** Default HTTP timeout in seconds (connect and whole request). */
    public static final int TIME_OUT = 60;
    /** Default seconds a streak of failed exchanges (unreachable, server error, ...) is tolerated before FAILED. */
    public static final int RETRY_TIMEOUT = 300;
    /** {@link #getMaxRetries()} when no count bound was set: only {@code retryTimeout} bounds the retries. */
    public static final int MAX_RETRIES_UNSET = -1;

    private static FLParameter instance;

    private String domainName;
    private String certPath;
    private boolean useElb = false;
    private int serverNum = 1;
    private String flName;
    private String trainModelPath;
    private String inferModelPath;
    private String clientID = UUID.randomUUID().toString();
    private int threadNum = 1;
    private BindMode cpuBindMode = BindMode.NOT_BINDING_CORE;
    /** Null: the batch the model was exported with. */
    private Integer batchSize;
    private Map<RunType, List<String>> dataMap = new EnumMap<>(RunType.class);
    private int sleepTime = SLEEP_TIME;
    private int timeOut = TIME_OUT;
    private String sslProtocol = "TLSv1.2";
    private String deployEnv = "x86";
    private ServerMod serverMod = ServerMod.FEDERATED_LEARNING;
    private IFLJobResultCallback iflJobResultCallback;
    private boolean pkiVerify = false;
    private String equipCrlPath;
    private long validInterval = 3600000;
    private String pkiPath;
    private final Map<RunType, List<String>> hybridWeightNames = new EnumMap<>(RunType.class);
    private String logPath;
    private TrainListener trainListener;
    private Semaphore trainingPermits;
    private int maxRetries = MAX_RETRIES_UNSET;
    private int retryTimeout = RETRY_TIMEOUT;

    /** A fresh, independent parameter object (one per client when many run in one JVM). */
    public FLParameter() {
    }

    /** r1.6 singleton, for code written against r1.6; {@code new SyncFLJob()} uses it. */
    public static synchronized FLParameter getInstance() {
        if (instance == null) {
            instance = new FLParameter();
        }
        return instance;
    }

    private static IllegalArgumentException bad(String field, Object value, String rule) {
        return new IllegalArgumentException("FLParameter." + field + " = " + value + ": " + rule);
    }

    /**
     * The verdict of the rulebook (schema/client_parameters.json) on one value, as the setter of
     * {@code javaField} would give it: null when accepted, else the message of the
     * IllegalArgumentException it would throw. Ints are given in decimal, enums by name. For
     * tests that feed the same values to the Python and the Java checks.
     *
     * @throws NoSuchElementException when the table has no row for {@code javaField}
     */
    public static String checkRule(String javaField, String value) {
        try {
            ParameterRules.check(javaField, value);
            return null;
        } catch (IllegalArgumentException e) {
            return e.getMessage();
        }
    }

    public String getDomainName() {
        return domainName;
    }

    /**
     * @param domainName {@code http://host:port} or {@code https://host:port}, nothing more (the
     *                   client appends /startFLJob, ...); with useElb the port is the first server's
     */
    public void setDomainName(String domainName) {
        this.domainName = ParameterRules.checkUrl("domainName", domainName);
    }

    /** True when the domain name uses https. */
    public boolean isHttps() {
        return domainName != null && domainName.toLowerCase(Locale.ROOT).startsWith("https://");
    }

    public String getCertPath() {
        return certPath;
    }

    /** @param certPath PEM file of the CA that signed the server's certificate (https with a self-signed CA); null: the JVM's trust store */
    public void setCertPath(String certPath) {
        if (certPath == null || certPath.isEmpty() || "null".equals(certPath)) {
            this.certPath = null;
            return;
        }
        if (!Files.isRegularFile(Path.of(certPath))) {
            throw bad("certPath", certPath, "no such file; give the CA certificate (PEM) of the server");
        }
        this.certPath = certPath;
    }

    public boolean isUseElb() {
        return useElb;
    }

    /** @param useElb send each request to {@code port + random % serverNum} (several server processes on consecutive ports) */
    public void setUseElb(boolean useElb) {
        this.useElb = useElb;
    }

    public int getServerNum() {
        return serverNum;
    }

    public void setServerNum(int serverNum) {
        this.serverNum = ParameterRules.checkInt("serverNum", serverNum);
    }

    public String getFlName() {
        return flName;
    }

    /** @param flName class name of the case, a subclass of {@code com.mindspore.flclient.cases.Client} */
    public void setFlName(String flName) {
        this.flName = ParameterRules.checkClassName("flName", flName);
    }

    public String getTrainModelPath() {
        return trainModelPath;
    }

    /** @param trainModelPath the client's own .ms file: read at each round start, written back after getModel */
    public void setTrainModelPath(String trainModelPath) {
        this.trainModelPath = checkModelPath("trainModelPath", trainModelPath);
    }

    public String getInferModelPath() {
        return inferModelPath;
    }

    /** @param inferModelPath .ms file used by modelInference (null: the train model); also updated by getModel */
    public void setInferModelPath(String inferModelPath) {
        this.inferModelPath = checkModelPath("inferModelPath", inferModelPath);
    }

    private static String checkModelPath(String field, String path) {
        if (path == null || path.isBlank() || "null".equals(path)) {
            return null;
        }
        Path p = Path.of(path.strip());
        if (Files.isDirectory(p)) {
            throw bad(field, path, "is a folder; give the .ms file of this client");
        }
        return p.toString();
    }

    public String getClientID() {
        return clientID;
    }

    /** @param clientID the fl_id sent to the server; default: a random UUID */
    public void setClientID(String clientID) {
        this.clientID = ParameterRules.checkNonempty("clientID", clientID);
    }

    public int getThreadNum() {
        return threadNum;
    }

    public void setThreadNum(int threadNum) {
        this.threadNum = ParameterRules.checkInt("threadNum", threadNum);
    }

    /** r1.6: the mode's number (NOT_BINDING_CORE 0, BIND_LARGE_CORE 1, BIND_MIDDLE_CORE 2). Accepted and logged: a JVM thread is not pinned. */
    public int getCpuBindMode() {
        return cpuBindMode.ordinal();
    }

    /** The mode as the enum it was set with. */
    public BindMode getCpuBindModeEnum() {
        return cpuBindMode;
    }

    public void setCpuBindMode(BindMode cpuBindMode) {
        ParameterRules.checkEnum("cpuBindMode", cpuBindMode == null ? null : cpuBindMode.name());
        this.cpuBindMode = cpuBindMode;
    }

    /** The batch size that was set, or null: the batch the model was exported with. */
    public Integer getBatchSize() {
        return batchSize;
    }

    /**
     * @param batchSize samples per step. Optional: the batch is the one the .ms model was
     *                  exported with, and a job whose model has another batch is refused
     *                  ({@link TrainableModel#requireBatch})
     */
    public void setBatchSize(int batchSize) {
        this.batchSize = ParameterRules.checkInt("batchSize", batchSize);
    }

    /** Refuses a model whose batch differs from the batchSize that was set (unset: any model's batch is right). */
    void checkModelBatch(TrainableModel model, String modelPath) {
        if (batchSize != null) {
            model.requireBatch(modelPath, "FLParameter.batchSize", batchSize, "leave batchSize unset or set it to");
        }
    }

    public Map<RunType, List<String>> getDataMap() {
        return Collections.unmodifiableMap(dataMap);
    }

    /** @param dataMap for each RunType the case's files; for LeNet [data.bin, label.bin] */
    public void setDataMap(Map<RunType, List<String>> dataMap) {
        if (dataMap == null) {
            throw bad("dataMap", null, "give at least TRAINMODE -> [data.bin, label.bin]");
        }
        EnumMap<RunType, List<String>> copy = new EnumMap<>(RunType.class);
        for (Map.Entry<RunType, List<String>> e : dataMap.entrySet()) {
            if (e.getKey() == null || e.getValue() == null || e.getValue().isEmpty()) {
                throw bad("dataMap", dataMap, "every entry needs a RunType and at least one file");
            }
            copy.put(e.getKey(), List.copyOf(new ArrayList<>(e.getValue())));
        }
        this.dataMap = copy;
    }

    public int getSleepTime() {
        return sleepTime;
    }

    /** @param sleepTime milliseconds to wait before asking a not-ready server again */
    public void setSleepTime(int sleepTime) {
        this.sleepTime = ParameterRules.checkInt("sleepTime", sleepTime);
    }

    public int getTimeOut() {
        return timeOut;
    }

    /** @param timeOut seconds an HTTP exchange may take (connect + response) */
    public void setTimeOut(int timeOut) {
        this.timeOut = ParameterRules.checkInt("timeOut", timeOut);
    }

    public String getSslProtocol() {
        return sslProtocol;
    }

    /** @param sslProtocol TLSv1.2 or TLSv1.3 */
    public void setSslProtocol(String sslProtocol) {
        this.sslProtocol = ParameterRules.checkEnum("sslProtocol", sslProtocol);
    }

    public String getDeployEnv() {
        return deployEnv;
    }

    /** @param deployEnv x86 or android (r1.6 whitelist; only x86 behaviour exists here) */
    public void setDeployEnv(String deployEnv) {
        this.deployEnv = ParameterRules.checkEnum("deployEnv", deployEnv);
    }

    public ServerMod getServerMod() {
        return serverMod;
    }

    /** @param serverMod only FEDERATED_LEARNING is implemented */
    public void setServerMod(ServerMod serverMod) {
        ParameterRules.checkEnum("serverMod", serverMod == null ? null : serverMod.name());
        this.serverMod = serverMod;
    }

    /** r1.6: device-cloud PKI authentication: sign startFLJob and updateModel ({@link DeviceSigner}). */
    public boolean isPkiVerify() {
        return pkiVerify;
    }

    /**
     * r1.6: true signs every startFLJob and updateModel with the key and certificates of {@link #setPkiPath}
     * (RSASSA-PSS, JCA only), for a server with pki_verify true.
     */
    public void setPkiVerify(boolean pkiVerify) {
        ParameterRules.checkEnum("pkiVerify", String.valueOf(pkiVerify));
        this.pkiVerify = pkiVerify;
    }

    /** The folder of this device's key and certificates ({@code pyflclient pki issue}); read when pkiVerify is true. */
    public String getPkiPath() {
        return pkiPath;
    }

    public void setPkiPath(String pkiPath) {
        this.pkiPath = pkiPath;
    }

    /**
     * r1.6: the CRL of device certificates; with pkiVerify a device whose equip_cert is in it ends at start, saying
     * so, instead of being refused by the server.
     */
    public String getEquipCrlPath() {
        return equipCrlPath;
    }

    public void setEquipCrlPath(String certPath) {
        this.equipCrlPath = certPath;
    }

    /**
     * r1.6: ms the device's certificates must stay valid (pkiVerify): a certificate expiring within it ends the job
     * at start with the reason, before a server refuses a request signed near its end.
     */
    public long getValidInterval() {
        return validInterval;
    }

    public void setValidInterval(long validInterval) {
        this.validInterval = validInterval;
    }

    /** r1.6: the weight names of a HYBRID_TRAINING run type; HYBRID_TRAINING is not supported (see serverMod): kept, never read. */
    public List<String> getHybridWeightName(RunType runType) {
        return hybridWeightNames.get(runType);
    }

    public void setHybridWeightName(List<String> hybridWeightName, RunType runType) {
        hybridWeightNames.put(runType, List.copyOf(hybridWeightName));
    }

    public IFLJobResultCallback getIflJobResultCallback() {
        return iflJobResultCallback;
    }

    public void setIflJobResultCallback(IFLJobResultCallback iflJobResultCallback) {
        this.iflJobResultCallback = iflJobResultCallback;
    }

    public String getLogPath() {
        return logPath;
    }

    /** @param path file that receives this client's log (appended; parent folders are created); null: standard error */
    public void setLogPath(String path) {
        this.logPath = (path == null || path.isBlank()) ? null : path;
    }

    public TrainListener getTrainListener() {
        return trainListener;
    }

    public void setTrainListener(TrainListener l) {
        this.trainListener = l;
    }

    public Semaphore getTrainingPermits() {
        return trainingPermits;
    }

    /** @param s a permit is held while this client trains locally, bounding how many clients of a JVM train at once */
    public void setTrainingPermits(Semaphore s) {
        this.trainingPermits = s;
    }

    /** The count bound on retries in a row, or {@link #MAX_RETRIES_UNSET} (default: only retryTimeout bounds them). */
    public int getMaxRetries() {
        return maxRetries;
    }

    /**
     * @param n retries in a row of a failed exchange (unreachable server, SystemError, "finished" reply)
     *          tolerated before FAILED; an extra bound besides {@code retryTimeout}: whichever is reached
     *          first ends the job (see {@link RetryPolicy})
     */
    public void setMaxRetries(int n) {
        this.maxRetries = ParameterRules.checkInt("maxRetries", n);
    }

    public int getRetryTimeout() {
        return retryTimeout;
    }

    /**
     * @param seconds how long a streak of failed exchanges (from its first failure) is tolerated before
     *                FAILED; the waits between attempts grow from sleepTime to 10 s with jitter
     *                ({@link RetryPolicy}). Default {@link #RETRY_TIMEOUT}: a server restart is outlived
     */
    public void setRetryTimeout(int seconds) {
        this.retryTimeout = ParameterRules.checkInt("retryTimeout", seconds);
    }

    /** Checks what a training job ({@code flJobRun}) needs; IllegalArgumentException naming the field. */
    public void validate() {
        requireServer();
        requireFlName();
        requireTrainModel();
        List<String> train = dataMap.get(RunType.TRAINMODE);
        if (train == null) {
            throw bad("dataMap", dataMap.keySet(), "has no TRAINMODE entry; give [data.bin, label.bin] of the client");
        }
        checkFiles(RunType.TRAINMODE);
        if (dataMap.containsKey(RunType.EVALMODE)) {
            checkFiles(RunType.EVALMODE);
        }
    }

    /** What {@code getModel()} needs. */
    void validateForGetModel() {
        requireServer();
        requireFlName();
        if (trainModelPath == null && inferModelPath == null) {
            throw bad("trainModelPath", null, "give the .ms file the downloaded model is written into");
        }
        String target = trainModelPath != null ? trainModelPath : inferModelPath;
        if (!Files.isRegularFile(Path.of(target))) {
            throw bad(trainModelPath != null ? "trainModelPath" : "inferModelPath", target,
                    "no such file; getModel updates the weights of an existing .ms file");
        }
    }

    /** What {@code modelInference()} needs (data may come from the caller instead of INFERMODE files). */
    void validateForInference(boolean needFiles) {
        requireFlName();
        String model = inferModelPath != null ? inferModelPath : trainModelPath;
        if (model == null) {
            throw bad("inferModelPath", null, "give the .ms file to infer with");
        }
        if (!Files.isRegularFile(Path.of(model))) {
            throw bad(inferModelPath != null ? "inferModelPath" : "trainModelPath", model, "no such file");
        }
        if (needFiles) {
            if (!dataMap.containsKey(RunType.INFERMODE)) {
                throw bad("dataMap", dataMap.keySet(), "has no INFERMODE entry; give [data.bin] (label.bin optional)");
            }
            checkFiles(RunType.INFERMODE);
        }
    }

    private void requireServer() {
        if (domainName == null) {
            throw bad("domainName", null, "give the server URL, e.g. http://127.0.0.1:6666");
        }
        if (useElb && URI.create(domainName).getPort() < 0) {
            throw bad("domainName", domainName, "with useElb=true it must name the first server's port (http://IP:port)");
        }
    }

    private void requireFlName() {
        if (flName == null) {
            throw bad("flName", null, "give the case class, e.g. com.mindspore.flclient.demo.lenet.LenetClient");
        }
    }

    private void requireTrainModel() {
        if (trainModelPath == null) {
            throw bad("trainModelPath", null, "give this client's .ms file");
        }
        if (!Files.isRegularFile(Path.of(trainModelPath))) {
            throw bad("trainModelPath", trainModelPath, "no such file; copy the converted .ms model there first");
        }
    }

    private void checkFiles(RunType type) {
        for (String f : dataMap.get(type)) {
            if (!Files.isRegularFile(Path.of(f))) {
                throw bad("dataMap", type + " -> " + f, "no such file");
            }
        }
    }
}
