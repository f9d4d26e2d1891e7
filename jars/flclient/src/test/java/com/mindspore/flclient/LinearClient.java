package com.mindspore.flclient;

import com.mindspore.flclient.model.RunType;

import com.mindspore.flclient.cases.AccuracyCallback;
import com.mindspore.flclient.cases.ArrayDataSet;
import com.mindspore.flclient.cases.BinFiles;
import com.mindspore.flclient.cases.Callback;
import com.mindspore.flclient.cases.Client;
import com.mindspore.flclient.cases.DataSet;
import com.mindspore.flclient.cases.LossCallback;
import com.mindspore.flclient.cases.PredictCallback;
import com.mindspore.flclient.cases.TrainableModel;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/** The test case: {@link LinearModel} on raw float32 feature files and int32 label files. */
public class LinearClient extends Client {
    @Override
    protected TrainableModel openModel(Path modelPath) {
        return LinearModel.load(modelPath);
    }

    @Override
    public Map<RunType, Integer> initDataSets(Map<RunType, List<String>> files) {
        Map<RunType, Integer> sizes = new EnumMap<>(RunType.class);
        int sampleSize = model.sampleSize();
        for (Map.Entry<RunType, List<String>> e : files.entrySet()) {
            float[] x = BinFiles.readFloats(Path.of(e.getValue().get(0)), sampleSize, "data");
            int[] y = e.getValue().size() > 1 ? BinFiles.readInts(Path.of(e.getValue().get(1)), "label") : null;
            ArrayDataSet ds = new ArrayDataSet(x, y, sampleSize);
            dataSets.put(e.getKey(), ds);
            sizes.put(e.getKey(), ds.sampleCount());
        }
        return sizes;
    }

    @Override
    public List<Callback> initCallbacks(RunType runType, DataSet dataSet) {
        List<Callback> cbs = new ArrayList<>();
        switch (runType) {
            case TRAINMODE:
                cbs.add(new LossCallback());
                break;
            case EVALMODE:
                cbs.add(new AccuracyCallback());
                break;
            default:
                cbs.add(new PredictCallback());
        }
        return cbs;
    }

    @Override
    public float getEvalAccuracy(List<Callback> evalCallbacks) {
        return ((AccuracyCallback) evalCallbacks.get(0)).getAccuracy();
    }

    @Override
    public Map<RunType, Integer> initInferData(float[] samples, int count) {
        dataSets.put(RunType.INFERMODE, new ArrayDataSet(samples, null, model.sampleSize()));
        Map<RunType, Integer> sizes = new EnumMap<>(RunType.class);
        sizes.put(RunType.INFERMODE, count);
        return sizes;
    }

    @Override
    public List<Object> getInferResult(List<Callback> inferCallbacks) {
        List<Object> out = new ArrayList<>();
        for (int v : ((PredictCallback) inferCallbacks.get(0)).getPredictions()) {
            out.add(v);
        }
        return out;
    }
}
