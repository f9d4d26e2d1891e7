package com.mindspore.flclient;

import com.mindspore.flclient.model.RunType;

import com.mindspore.flclient.rules.ParameterRules;

import java.util.Arrays;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Command-line arguments of {@link SyncFLJob#main}: the {@code --key value} form documented in
 * docs/java-client.md, or the 21/22 positional arguments that MindSpore r1.6's
 * run_client_x86.py passes. Both end in one {@link FLParameter} and a task.
 */
final class JobArgs {
    static final String USAGE = String.join(System.lineSeparator(),
            "usage: java -cp mindspore-lite-java-flclient.jar:quick_start_flclient.jar com.mindspore.flclient.SyncFLJob \\",
            "         --task train|inference|getModel --flName CLASS --trainModelPath M.ms [--inferModelPath M.ms] \\",
            "         --domainName http(s)://IP:PORT [--certPath CA.pem] [--sslProtocol TLSv1.2|TLSv1.3] \\",
            "         [--useElb true --serverNum N] --trainData DATA.bin,LABEL.bin [--evalData DATA.bin,LABEL.bin] \\",
            "         [--inferData DATA.bin[,LABEL.bin]] [--batchSize N] [--threadNum 1] [--clientID ID] \\",
            "         [--logPath client.log] [--sleepTime MS] [--timeOut S] [--retryTimeout S] [--maxRetries N] \\",
            "         [--pkiVerify true --pkiPath DEVICE_DIR [--equipCrlPath CRL.pem] [--validInterval MS]]",
            "   or the positional arguments of r1.6 run_client_x86.py: trainDataPath evalDataPath inferDataPath pathRegex",
            "         flName trainModelPath inferModelPath sslProtocol deployEnv domainName certPath useElb serverNum task",
            "         threadNum cpuBindMode trainWeightName inferWeightName nameRegex serverMod batchSize [inputShape]");

    /** r1.6 positional order. */
    private static final String[] POSITIONAL = {"trainData", "evalData", "inferData", "pathRegex", "flName",
        "trainModelPath", "inferModelPath", "sslProtocol", "deployEnv", "domainName", "certPath", "useElb", "serverNum",
        "task", "threadNum", "cpuBindMode", "trainWeightName", "inferWeightName", "nameRegex", "serverMod", "batchSize",
        "inputShape"};

    private static final Map<String, String> ALIASES = new LinkedHashMap<>();

    static {
        for (String k : POSITIONAL) {
            ALIASES.put(norm(k), k);
        }
        String[][] extra = {{"trainDataset", "trainData"}, {"testDataset", "evalData"}, {"evalDataset", "evalData"},
            {"inferDataset", "inferData"}, {"serverMode", "serverMod"}, {"ifUseElb", "useElb"}, {"clientID", "clientID"},
            {"flId", "clientID"}, {"sleepTime", "sleepTime"}, {"timeOut", "timeOut"}, {"maxRetries", "maxRetries"},
            {"retryTimeout", "retryTimeout"}, {"logPath", "logPath"}, {"pkiVerify", "pkiVerify"}, {"pkiPath", "pkiPath"},
            {"equipCrlPath", "equipCrlPath"}, {"validInterval", "validInterval"}};
        for (String[] e : extra) {
            ALIASES.put(norm(e[0]), e[1]);
        }
    }

    private final Map<String, String> values;
    private final FLParameter parameter = new FLParameter();
    private final String task;

    private JobArgs(Map<String, String> values) {
        this.values = values;
        String t = get("task");
        this.task = t == null ? "train" : t;
        build();
    }

    private static String norm(String key) {
        return key.replace("_", "").replace("-", "").toLowerCase(Locale.ROOT);
    }

    /** Parses either form; IllegalArgumentException says which argument is wrong. */
    static JobArgs parse(String[] args) {
        if (args.length == 0) {
            throw new IllegalArgumentException("no arguments");
        }
        Map<String, String> v = new LinkedHashMap<>();
        if (!args[0].startsWith("--")) {
            if (args.length < 21) {
                throw new IllegalArgumentException("the positional (r1.6) form takes 21 or 22 arguments, got "
                        + args.length + ": " + Arrays.toString(args));
            }
            for (int i = 0; i < Math.min(args.length, POSITIONAL.length); i++) {
                v.put(POSITIONAL[i], args[i]);
            }
            return new JobArgs(v);
        }
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument '" + a + "': options are --key value");
            }
            String key = a.substring(2);
            String value;
            int eq = key.indexOf('=');
            if (eq >= 0) {
                value = key.substring(eq + 1);
                key = key.substring(0, eq);
            } else {
                if (i + 1 >= args.length) {
                    throw new IllegalArgumentException("--" + key + " needs a value");
                }
                value = args[++i];
            }
            String canonical = ALIASES.get(norm(key));
            if (canonical == null) {
                throw new IllegalArgumentException("unknown option --" + key);
            }
            v.put(canonical, value);
        }
        return new JobArgs(v);
    }

    /** The value, or null when absent, empty or the r1.6 placeholder "null". */
    private String get(String key) {
        String s = values.get(key);
        return s == null || s.isBlank() || "null".equals(s) ? null : s.strip();
    }

    private void build() {
        String regex = values.getOrDefault("pathRegex", ",");
        Map<RunType, List<String>> dataMap = new EnumMap<>(RunType.class);
        putFiles(dataMap, RunType.TRAINMODE, get("trainData"), regex);
        putFiles(dataMap, RunType.EVALMODE, get("evalData"), regex);
        putFiles(dataMap, RunType.INFERMODE, get("inferData"), regex);
        parameter.setDataMap(dataMap);
        if (get("flName") != null) {
            parameter.setFlName(get("flName"));
        }
        parameter.setTrainModelPath(get("trainModelPath"));
        parameter.setInferModelPath(get("inferModelPath"));
        if (get("sslProtocol") != null) {
            parameter.setSslProtocol(get("sslProtocol"));
        }
        if (get("deployEnv") != null) {
            parameter.setDeployEnv(get("deployEnv"));
        }
        if (get("domainName") != null) {
            parameter.setDomainName(get("domainName"));
        }
        if (parameter.isHttps()) {
            parameter.setCertPath(get("certPath"));
        }
        if (get("useElb") != null) {
            parameter.setUseElb(bool("useElb"));
        }
        if (get("serverNum") != null) {
            parameter.setServerNum(integer("serverNum"));
        }
        if (get("threadNum") != null) {
            parameter.setThreadNum(integer("threadNum"));
        }
        if (get("cpuBindMode") != null) {
            parameter.setCpuBindMode(enumValue(BindMode.class, "cpuBindMode"));
        }
        if (get("serverMod") != null) {
            parameter.setServerMod(enumValue(ServerMod.class, "serverMod"));
        }
        if (get("batchSize") != null) {
            parameter.setBatchSize(integer("batchSize"));
        }
        if (get("clientID") != null) {
            parameter.setClientID(get("clientID"));
        }
        if (get("sleepTime") != null) {
            parameter.setSleepTime(integer("sleepTime"));
        }
        if (get("timeOut") != null) {
            parameter.setTimeOut(integer("timeOut"));
        }
        if (get("maxRetries") != null) {
            parameter.setMaxRetries(integer("maxRetries"));
        }
        if (get("retryTimeout") != null) {
            parameter.setRetryTimeout(integer("retryTimeout"));
        }
        parameter.setLogPath(get("logPath"));
        if (get("pkiVerify") != null) {
            parameter.setPkiVerify(bool("pkiVerify"));
        }
        parameter.setPkiPath(get("pkiPath"));
        parameter.setEquipCrlPath(get("equipCrlPath"));
        if (get("validInterval") != null) {
            parameter.setValidInterval(Long.parseLong(get("validInterval")));
        }
        if (get("trainWeightName") != null || get("inferWeightName") != null) {
            throw new IllegalArgumentException("trainWeightName / inferWeightName belong to HYBRID_TRAINING, which this "
                    + "client does not implement; pass null");
        }
    }

    private static void putFiles(Map<RunType, List<String>> map, RunType type, String joined, String regex) {
        if (joined == null) {
            return;
        }
        String[] parts = joined.split(Pattern.quote(regex));
        List<String> files = Arrays.stream(parts).map(String::strip).filter(s -> !s.isEmpty()).toList();
        if (!files.isEmpty()) {
            map.put(type, files);
        }
    }

    private boolean bool(String key) {
        String s = get(key).toLowerCase(Locale.ROOT);
        if (!s.equals("true") && !s.equals("false")) {
            throw new IllegalArgumentException("--" + key + " must be true or false, got " + get(key));
        }
        return Boolean.parseBoolean(s);
    }

    private int integer(String key) {
        try {
            return Integer.parseInt(get(key));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + key + " must be an integer, got " + get(key));
        }
    }

    /** {@code key} is the FLParameter field: its rule (schema/client_parameters.json) names the accepted values. */
    private <E extends Enum<E>> E enumValue(Class<E> type, String key) {
        return Enum.valueOf(type, ParameterRules.checkEnum(key, get(key)));
    }

    FLParameter parameter() {
        return parameter;
    }

    String task() {
        return task;
    }

    /** Runs the task; the process exit code (0 success, 1 failure). */
    int runTask() {
        SyncFLJob job = new SyncFLJob(parameter);
        switch (task) {
            case "train":
                return job.flJobRun() == FLClientStatus.SUCCESS ? 0 : 1;
            case "inference":
                return job.modelInference().length > 0 ? 0 : 1;
            case "getModel":
                return job.getModel() == FLClientStatus.SUCCESS ? 0 : 1;
            default:
                throw new IllegalArgumentException("--task must be train, inference or getModel, got " + task);
        }
    }
}
