package com.mindspore.flclient.model;

import com.mindspore.flclient.cases.Callback;
import com.mindspore.flclient.cases.DataSet;
import com.mindspore.lite.config.MSConfig;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Runs a case written against r1.6 ({@link Client}) as one of this project's cases: the round
 * loop talks to {@link com.mindspore.flclient.cases.Client}; the loops, data sets and callbacks
 * are the r1.6 case's own, and weights move through the runtime model behind its LiteSession.
 */
public final class R16Case extends com.mindspore.flclient.cases.Client {
    private final Client r16;

    public R16Case(Client r16) {
        this.r16 = r16;
    }

    /** The r1.6 case this adapter runs. */
    public Client r16Client() {
        return r16;
    }

    @Override
    public Status initSessionAndInputs(String modelPath) {
        r16.bind(getContext());
        MSConfig config = new MSConfig();
        config.init();
        Status st = r16.initSessionAndInputs(modelPath, config);
        model = st == Status.SUCCESS ? r16.trainSession.runtimeModel() : null;
        return st;
    }

    @Override
    public Map<RunType, Integer> initDataSets(Map<RunType, List<String>> files) {
        Map<RunType, Integer> sizes = r16.initDataSets(files);
        if (model != null) {
            r16.setBatchSize(model.batchSize());
        }
        return sizes;
    }

    @Override
    public Status trainModel(int epochs) {
        return r16.trainModel(epochs);
    }

    /** The r1.6 case's own training set, batch by batch through its LiteSession (each batch weighs the same). */
    @Override
    public float trainingLoss() {
        return r16.trainingLoss();
    }

    @Override
    public float evalModel() {
        return r16.evalModel();
    }

    @Override
    public List<Object> inferModel() {
        List<Integer> labels = r16.inferModel();
        return labels == null ? null : new ArrayList<>(labels);
    }

    /** Not called: the r1.6 case's {@link Client#initCallbacks} serves its own loops. */
    @Override
    public List<Callback> initCallbacks(RunType runType, DataSet dataSet) {
        throw new IllegalStateException("an r1.6 case runs its own loops with its own callbacks");
    }

    /** Not called: {@link #evalModel} returns the r1.6 case's accuracy. */
    @Override
    public float getEvalAccuracy(List<Callback> evalCallbacks) {
        throw new IllegalStateException("an r1.6 case reads its own eval callbacks");
    }

    /** Not called: {@link #inferModel} returns the r1.6 case's labels. */
    @Override
    public List<Object> getInferResult(List<Callback> inferCallbacks) {
        throw new IllegalStateException("an r1.6 case reads its own infer callbacks");
    }

    @Override
    public void free() {
        model = null;
        r16.free();
        r16.dataSets.clear();
        super.free();
    }
}
