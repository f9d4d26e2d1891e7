/*
 * A custom federated-learning case written the way MindSpore r1.6's tutorial asks
 * ("ModelClient.java, which needs to inherit from the class Client.java") and shaped like r1.6's
 * LenetClient: only r1.6 types (com.mindspore.flclient.model.*, com.mindspore.lite.*).
 * tests/test_r16_custom_client.py compiles it against mindspore-lite-java-flclient.jar and trains it.
 */
package com.example.r16;

import com.mindspore.flclient.model.Callback;
import com.mindspore.flclient.model.Client;
import com.mindspore.flclient.model.ClientManager;
import com.mindspore.flclient.model.DataSet;
import com.mindspore.flclient.model.LossCallback;
import com.mindspore.flclient.model.RunType;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Logger;

public class ModelClient extends Client {
    private static final Logger LOGGER = Logger.getLogger(ModelClient.class.toString());
    private static final int NUM_OF_CLASS = 62;

    static {
        ClientManager.registerClient(new ModelClient());
    }

    @Override
    public List<Callback> initCallbacks(RunType runType, DataSet dataSet) {
        List<Callback> callbacks = new ArrayList<>();
        if (runType == RunType.TRAINMODE) {
            callbacks.add(new LossCallback(trainSession));
        } else if (runType == RunType.EVALMODE) {
            ImageDataSet images = (ImageDataSet) dataSet;
            callbacks.add(new TopOneCallback(trainSession, dataSet.batchSize, NUM_OF_CLASS, images.getTargetLabels()));
        } else {
            callbacks.add(new LabelCallback(trainSession, dataSet.batchSize, NUM_OF_CLASS));
        }
        return callbacks;
    }

    @Override
    public Map<RunType, Integer> initDataSets(Map<RunType, List<String>> files) {
        Map<RunType, Integer> sampleCounts = new HashMap<>();
        for (Map.Entry<RunType, List<String>> entry : files.entrySet()) {
            DataSet dataSet = new ImageDataSet(NUM_OF_CLASS);
            dataSet.init(entry.getValue());
            dataSets.put(entry.getKey(), dataSet);
            sampleCounts.put(entry.getKey(), dataSet.sampleSize);
        }
        return sampleCounts;
    }

    @Override
    public float getEvalAccuracy(List<Callback> evalCallbacks) {
        for (Callback callback : evalCallbacks) {
            if (callback instanceof TopOneCallback) {
                return ((TopOneCallback) callback).getAccuracy();
            }
        }
        LOGGER.severe("no accuracy callback");
        return Float.NaN;
    }

    @Override
    public List<Integer> getInferResult(List<Callback> inferCallbacks) {
        DataSet inferDataSet = dataSets.get(RunType.INFERMODE);
        for (Callback callback : inferCallbacks) {
            if (callback instanceof LabelCallback) {
                return ((LabelCallback) callback).getPredictResults().subList(0, inferDataSet.sampleSize);
            }
        }
        return new ArrayList<>();
    }
}
