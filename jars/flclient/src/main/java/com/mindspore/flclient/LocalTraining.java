package com.mindspore.flclient;

import com.mindspore.flclient.runtime.schema.RoundPlugins;

import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the device does differently while training for an aggregation type: the row's
 * {@code device} kind in schema/round_plugins.json ("plain": nothing). One class per kind
 * ({@link PlainTraining}, {@link FedProxTraining}, {@link ScaffoldTraining}), chosen through the
 * plan's aggregation row by {@link #forClient}. {@link #begin} runs after the received weights and
 * the plan's learning rate are set, before the first step; the returned {@link Round} ends after
 * the last step and gives the upload's control variate.
 */
interface LocalTraining {
    /** The device kind (a {@code device} of RoundPlugins.AGGREGATION_TYPES). */
    String device();

    /** Prepares the round's training (installs a gradient hook on the model when the algorithm needs one). */
    Round begin(Plan plan, LocalModel model);

    /** One round's training under this plug-in. */
    interface Round {
        /**
         * After the last step: removes what {@link #begin} installed; returns the control variate
         * to upload for the weights in {@code uploaded} (empty: none).
         */
        Map<String, float[]> end(LocalModel model, Collection<String> uploaded);
    }

    /**
     * One instance of every kind, by kind; IllegalStateException when the classes and the table's
     * device kinds differ.
     */
    static Map<String, LocalTraining> forClient(FLParameter p) {
        Map<String, LocalTraining> byKind = new LinkedHashMap<>();
        for (LocalTraining t : List.of(new PlainTraining(), new FedProxTraining(), new ScaffoldTraining(p))) {
            byKind.put(t.device(), t);
        }
        Set<String> table = new HashSet<>();
        for (RoundPlugins.Aggregation a : RoundPlugins.AGGREGATION_TYPES) {
            table.add(a.device);
        }
        if (!table.equals(byKind.keySet())) {
            throw new IllegalStateException("the device kinds of schema/round_plugins.json " + table
                    + " and the client's LocalTraining classes " + byKind.keySet() + " differ");
        }
        return byKind;
    }
}
