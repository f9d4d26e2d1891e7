package com.mindspore.flclient;

import com.mindspore.flclient.runtime.schema.RoundPlugins;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * What the device does to its upload for one encrypt type (the plan's cipher.encrypt_type): its
 * rounds before training, its change to the trained weights, the updateModel body, its rounds
 * after the upload. One class per row of schema/round_plugins.json's encrypt_types
 * ({@link PlainUpload}, {@link DpUpload}, {@link PairwiseMaskingSteps}), chosen through the row's
 * name by {@link #forClient}; the name is a literal only in its own class.
 */
interface UploadProtection {
    /** The encrypt type (a name of RoundPlugins.ENCRYPT_TYPES). */
    String name();

    /** Rounds between startFLJob and training (PW_ENCRYPT's key and share rounds); then SUCCESS, RESTART or FAILED. */
    default Next beforeTraining(Plan plan, Function<FLClientStatus, Next> then) {
        return then.apply(FLClientStatus.SUCCESS);
    }

    /** Changes the trained weights in place before they are × data_size (DP_ENCRYPT clips and noises). */
    default void protectTrained(Plan plan, Map<String, float[]> trained, Map<String, float[]> received) {
    }

    /** The updateModel body of {@code upload} (weights already × data_size). */
    byte[] body(Plan plan, int iteration, Upload upload);

    /** Rounds between updateModel and getModel (PW_ENCRYPT's client list and reconstruction). */
    default Next afterUpload(Plan plan, Function<FLClientStatus, Next> then) {
        return then.apply(FLClientStatus.SUCCESS);
    }

    /** Drops what the round held (keys, shares). */
    default void forget() {
    }

    /**
     * One instance of every protection for one client, by name; IllegalStateException when the
     * classes and the table's encrypt types differ (a row without its class or the reverse).
     */
    static Map<String, UploadProtection> forClient(FLParameter p, java.util.logging.Logger log, ServerExchange server,
                                                   JobProgress progress) {
        Map<String, UploadProtection> byName = new LinkedHashMap<>();
        for (UploadProtection u : List.of(new PlainUpload(p), new DpUpload(p, log),
                new PairwiseMaskingSteps(p, log, server, progress))) {
            byName.put(u.name(), u);
        }
        List<String> table = new java.util.ArrayList<>();
        for (RoundPlugins.Encrypt e : RoundPlugins.ENCRYPT_TYPES) {
            table.add(e.name);
        }
        if (!new java.util.HashSet<>(table).equals(byName.keySet())) {
            throw new IllegalStateException("the encrypt types of schema/round_plugins.json " + table
                    + " and the client's UploadProtection classes " + byName.keySet() + " differ");
        }
        return byName;
    }
}
