package com.mindspore.flclient;

import com.mindspore.flclient.runtime.schema.RoundPlugins;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The plan of one startFLJob reply, decoded and checked once ({@link #decode}) against the rules
 * of schema/round_plugins.json (generated as {@link RoundPlugins}), then handed to the steps of the
 * round as an argument; immutable, so no step reads what another step parked. A plan that this
 * client cannot follow is refused here, with one line naming the field, its value and the rule.
 */
final class Plan {
    /** The job's iterations. */
    final int iterations;
    /** Local epochs per iteration (≥ 1). */
    final int epochs;
    /** The server's client_batch_size (0: the server did not say). */
    final int miniBatch;
    /** The local learning rate (0: the server did not say, the model's own is kept). */
    final float lr;
    /** The encrypt type's row; its {@link UploadProtection} has the same name. */
    final RoundPlugins.Encrypt encrypt;
    /** PW_ENCRYPT's reconstruct_secrets_threshold (t). */
    final int secretsThreshold;
    /** DP_ENCRYPT's parameters (checked by their rules when the encrypt type has them). */
    final double dpEps;
    final double dpDelta;
    final double dpNormClip;
    /** The aggregation type's row (FedAvg when the plan has no aggregation table, as r1.6's plan). */
    final RoundPlugins.Aggregation aggregation;
    /** Its device parameters by name, from FLPlan.aggregation.weights in the row's order. */
    final Map<String, Double> deviceParams;
    /** The early stop's row, its weight and rounds (null: no early stop). */
    final RoundPlugins.EarlyStop earlyStop;
    final double earlyStopWeight;
    final int earlyStopRounds;
    /** Scaffold's server control variate c by weight name (empty otherwise). */
    final Map<String, float[]> controlVariate;
    /** FLPlan.server_mode is the asynchronous mode: the device runs {@link AsyncRounds}' loop. */
    final boolean async;
    /** The upload codec (upload_compress_type, upload_sparse_rate of schema/compression.json; NONE: r1.6's upload). */
    final UploadCodec uploadCodec;

    private Plan(FLMessages.WirePlan w, RoundPlugins.Encrypt encrypt, RoundPlugins.Aggregation aggregation,
                 Map<String, Double> deviceParams, RoundPlugins.EarlyStop earlyStop, Map<String, float[]> controlVariate,
                 UploadCodec uploadCodec) {
        this.iterations = w.iterations;
        this.epochs = w.epochs;
        this.miniBatch = w.miniBatch;
        this.lr = w.lr;
        this.encrypt = encrypt;
        this.secretsThreshold = w.t;
        this.dpEps = w.dpEps;
        this.dpDelta = w.dpDelta;
        this.dpNormClip = w.dpNormClip;
        this.aggregation = aggregation;
        this.deviceParams = Collections.unmodifiableMap(deviceParams);
        this.earlyStop = earlyStop;
        this.earlyStopWeight = earlyStop == null ? 0 : w.earlyStopWeight;
        this.earlyStopRounds = earlyStop == null ? 0 : w.earlyStopRounds;
        this.controlVariate = Collections.unmodifiableMap(new LinkedHashMap<>(controlVariate));
        this.async = AsyncRounds.SERVER_MODE.equals(w.serverMode);
        this.uploadCodec = uploadCodec;
    }

    /** The device sends upload_loss: its aggregation type or its early stop reports the loss. */
    boolean reportsLoss() {
        return aggregation.reportsLoss || (earlyStop != null && earlyStop.reportsLoss);
    }

    /** A device parameter of the aggregation type (one of its row's device_params). */
    double deviceParam(String name) {
        Double v = deviceParams.get(name);
        if (v == null) {
            throw new IllegalStateException(aggregation.name + " has no device parameter " + name);
        }
        return v;
    }

    /**
     * Checks a startFLJob plan once; IllegalArgumentException with one line naming what cannot be
     * followed. {@code controlVariate} is the reply's control_variate.
     */
    static Plan decode(FLMessages.WirePlan w, Map<String, float[]> controlVariate) {
        if (w.iterations < 1) {
            throw bad("iterations = " + w.iterations + ": must be an integer >= 1");
        }
        if (w.epochs < 1) {
            throw bad("epochs = " + w.epochs + ": must be an integer >= 1");
        }
        if (w.miniBatch < 0) {
            throw bad("mini_batch = " + w.miniBatch + ": must be 0 (not given) or the model's batch");
        }
        if (w.lr != 0f) {
            // 0: an r1.6 server that does not send the rate; the model's own is kept
            check("lr", "client_learning_rate", w.lr);
        }
        String encryptName = w.encryptType.isEmpty() ? PlainUpload.NAME : w.encryptType;
        RoundPlugins.Encrypt encrypt = RoundPlugins.encrypt(encryptName);
        if (encrypt == null) {
            throw bad("cipher.encrypt_type = " + w.encryptType + ": this client implements "
                    + RoundPlugins.names(RoundPlugins.ENCRYPT_TYPES));
        }
        Map<String, Number> cipher = new LinkedHashMap<>();
        cipher.put("dp_eps", w.dpEps);
        cipher.put("dp_delta", w.dpDelta);
        cipher.put("dp_norm_clip", w.dpNormClip);
        cipher.put("reconstruct_secrets_threshold", w.t);
        for (String name : encrypt.params) {
            if (cipher.containsKey(name) && RoundPlugins.parameters().containsKey(name)) {
                check(encrypt.name + " " + name, name, cipher.get(name));
            }
        }
        int type = w.hasAggregation ? w.aggregationType : RoundPlugins.AGGREGATION_TYPES.get(0).wire;
        RoundPlugins.Aggregation aggregation = RoundPlugins.aggregation(type);
        if (aggregation == null) {
            throw bad("aggregation.type = " + type + ": not an aggregation type this client knows ("
                    + wireNames() + ")");
        }
        if (aggregation.refused != null) {
            throw bad("aggregation.type = " + aggregation.name + ": " + aggregation.refused);
        }
        if (aggregation.needsSingleUploads && !encrypt.seesSingleUploads) {
            throw bad("aggregation.type = " + aggregation.name + " reads each device's upload, which "
                    + encrypt.name + " hides from the server");
        }
        float[] weights = w.aggregationWeights;
        if (weights.length != aggregation.deviceParams.size()) {
            throw bad("aggregation.weights has " + weights.length + " value(s): " + aggregation.name + " sends "
                    + aggregation.deviceParams.size() + " " + aggregation.deviceParams);
        }
        Map<String, Double> deviceParams = new LinkedHashMap<>();
        for (int i = 0; i < weights.length; i++) {
            String name = aggregation.deviceParams.get(i);
            deviceParams.put(name, check("aggregation.weights[" + i + "] (" + aggregation.name + " " + name + ")",
                    name, weights[i]));
        }
        RoundPlugins.EarlyStop earlyStop = null;
        if (w.hasEarlyStop) {
            earlyStop = RoundPlugins.earlyStop(w.earlyStopType);
            if (earlyStop == null) {
                throw bad("early_stop.early_stop_type = " + w.earlyStopType + ": this client knows "
                        + RoundPlugins.names(RoundPlugins.EARLY_STOP_TYPES));
            }
            check("early_stop.weight", "early_stop_weight", w.earlyStopWeight);
            check("early_stop.rounds", "early_stop_rounds", w.earlyStopRounds);
        }
        if (AsyncRounds.SERVER_MODE.equals(w.serverMode) && !encrypt.name.equals(PlainUpload.NAME)) {
            throw bad("server_mode = " + w.serverMode + " with cipher.encrypt_type = " + encrypt.name
                    + ": asynchronous uploads travel in the clear (" + PlainUpload.NAME + ")");
        }
        for (Map.Entry<String, float[]> e : controlVariate.entrySet()) {
            for (float v : e.getValue()) {
                if (!Float.isFinite(v)) {
                    throw bad("control_variate " + e.getKey() + " holds " + v + ": must be finite");
                }
            }
        }
        UploadCodec codec = UploadCodec.decode(w.uploadCompressType, w.uploadSparseRate);
        if (codec.compresses() && encrypt.params.contains("reconstruct_secrets_threshold")) {
            // masked uploads are summed before anyone reads them: each device's 8-bit ranges do not add up
            throw bad("upload_compress_type = " + codec.type + " with " + encrypt.name + ", whose uploads are masked");
        }
        if (codec.compresses() && AsyncRounds.SERVER_MODE.equals(w.serverMode)) {
            // RequestAsyncUpdateModel carries the weights only: no compressed feature maps
            throw bad("upload_compress_type = " + codec.type + " with server_mode = " + w.serverMode
                    + ": asyncUpdateModel carries the weights uncompressed");
        }
        return new Plan(w, encrypt, aggregation, deviceParams, earlyStop, controlVariate, codec);
    }

    /** {@code value} (a Float or Integer as the wire has it, printed so) when it follows the table's rule. */
    private static double check(String field, String rule, Number value) {
        RoundPlugins.Parameter p = RoundPlugins.parameter(rule);
        if (!p.accepts(value.doubleValue())) {
            throw bad(field + " = " + value + ": " + p.rule);
        }
        return value.doubleValue();
    }

    private static String wireNames() {
        StringBuilder b = new StringBuilder();
        for (RoundPlugins.Aggregation a : RoundPlugins.AGGREGATION_TYPES) {
            b.append(b.length() == 0 ? "" : ", ").append(a.name).append('=').append(a.wire);
        }
        return b.toString();
    }

    private static IllegalArgumentException bad(String what) {
        return new IllegalArgumentException("the server's plan asks for " + what);
    }

    @Override
    public String toString() {
        return (async ? AsyncRounds.SERVER_MODE + ", " : "") + "iterations " + iterations + ", epochs " + epochs + ", mini_batch " + miniBatch + ", lr " + lr
                + ", encrypt_type " + encrypt.name + ", aggregation " + aggregation.name
                + (deviceParams.isEmpty() ? "" : " " + deviceParams)
                + (earlyStop == null ? "" : ", early stop " + earlyStop.name + " (weight " + earlyStopWeight
                + ", rounds " + earlyStopRounds + ")")
                + (uploadCodec.compresses() ? ", upload_compress_type " + uploadCodec.type + " at upload_sparse_rate "
                + uploadCodec.rate : "");
    }
}
