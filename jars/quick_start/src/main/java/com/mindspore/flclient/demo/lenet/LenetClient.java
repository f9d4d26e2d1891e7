package com.mindspore.flclient.demo.lenet;

import com.mindspore.flclient.model.RunType;
import com.mindspore.flclient.cases.AccuracyCallback;
import com.mindspore.flclient.cases.ArrayDataSet;
import com.mindspore.flclient.cases.BinFiles;
import com.mindspore.flclient.cases.Callback;
import com.mindspore.flclient.cases.Client;
import com.mindspore.flclient.cases.DataSet;
import com.mindspore.flclient.cases.LossCallback;
import com.mindspore.flclient.cases.PredictCallback;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * The LeNet image-classification case of the MindSpore r1.6 tutorial. Its data are the FEMNIST
 * bin files: {@code *_data.bin} float32 images NHWC (N, 32, 32, 3), {@code *_label.bin} int32
 * classes (N). The model takes NCHW, so images are transposed once when read. The last batch
 * of a set is completed with repeated samples (logged); loss, accuracy and predictions count
 * each real sample once.
 */
public class LenetClient extends Client {
    /** Image layout of the bin files when no model is loaded to say otherwise. */
    static final int CHANNELS = 3;
    static final int HEIGHT = 32;
    static final int WIDTH = 32;

    /** {channels, height, width} of the model's input (NCHW), or the bin-file default. */
    int[] imageShape() {
        if (model == null) {
            return new int[] {CHANNELS, HEIGHT, WIDTH};
        }
        int[] s = model.inputShape();
        if (s.length != 4) {
            throw new IllegalArgumentException("LenetClient needs a model with an NCHW image input; this one takes "
                    + java.util.Arrays.toString(s));
        }
        return new int[] {s[1], s[2], s[3]};
    }

    @Override
    public Map<RunType, Integer> initDataSets(Map<RunType, List<String>> files) {
        Map<RunType, Integer> sizes = new EnumMap<>(RunType.class);
        for (Map.Entry<RunType, List<String>> e : files.entrySet()) {
            RunType type = e.getKey();
            List<String> paths = e.getValue();
            if (paths.isEmpty() || paths.size() > 2) {
                throw new IllegalArgumentException(type + ": give [data.bin, label.bin] (label optional for inference), got "
                        + paths);
            }
            if (paths.size() < 2 && type != RunType.INFERMODE) {
                throw new IllegalArgumentException(type + ": give [data.bin, label.bin]; the label file is missing");
            }
            int[] chw = imageShape();
            Path dataFile = Path.of(paths.get(0));
            float[] nchw = BinFiles.readFloatsNchw(dataFile, chw[0], chw[1], chw[2],
                    type + " data (" + chw[1] + "x" + chw[2] + "x" + chw[0] + " float32 NHWC images)");
            int n = nchw.length / (chw[0] * chw[1] * chw[2]);
            int[] labels = null;
            if (paths.size() == 2) {
                Path labelFile = Path.of(paths.get(1));
                labels = BinFiles.readInts(labelFile, type + " label");
                if (labels.length != n) {
                    throw new IllegalArgumentException(type + ": " + dataFile + " holds " + n + " images but " + labelFile
                            + " holds " + labels.length + " labels; they must pair up");
                }
                checkLabels(labels, labelFile);
            }
            dataSets.put(type, new ArrayDataSet(nchw, labels, chw[0] * chw[1] * chw[2]));
            sizes.put(type, n);
            logger().info("[LenetClient] " + type + ": " + n + " images from " + dataFile);
        }
        return sizes;
    }

    @Override
    public Map<RunType, Integer> initInferData(float[] samples, int count) {
        int[] chw = imageShape();
        int size = chw[0] * chw[1] * chw[2];
        if (count < 1 || samples.length != (long) count * size) {
            throw new IllegalArgumentException("modelInference: " + samples.length + " floats are not " + count + " images of "
                    + chw[1] + "x" + chw[2] + "x" + chw[0] + " (NHWC float32)");
        }
        dataSets.put(RunType.INFERMODE, new ArrayDataSet(toNchw(samples, count, chw[1], chw[2], chw[0]), null, size));
        Map<RunType, Integer> sizes = new EnumMap<>(RunType.class);
        sizes.put(RunType.INFERMODE, count);
        return sizes;
    }

    private void checkLabels(int[] labels, Path file) {
        int classes = model == null ? Integer.MAX_VALUE : model.numClasses();
        for (int i = 0; i < labels.length; i++) {
            if (labels[i] < 0 || labels[i] >= classes) {
                throw new IllegalArgumentException(file + ": label " + labels[i] + " of sample " + i + " is outside 0.."
                        + (classes - 1) + " (the model has " + classes + " classes)");
            }
        }
    }

    /** (n, h, w, c) → (n, c, h, w), channel-major: each output plane written in order. */
    static float[] toNchw(float[] nhwc, int n, int h, int w, int c) {
        float[] out = new float[nhwc.length];
        int plane = h * w;
        for (int s = 0; s < n; s++) {
            int base = s * plane * c;
            for (int ch = 0; ch < c; ch++) {
                int dst = base + ch * plane;
                for (int p = 0; p < plane; p++) {
                    out[dst + p] = nhwc[base + p * c + ch];
                }
            }
        }
        return out;
    }

    @Override
    public List<Callback> initCallbacks(RunType runType, DataSet dataSet) {
        List<Callback> callbacks = new ArrayList<>();
        switch (runType) {
            case TRAINMODE:
                callbacks.add(new LossCallback());
                break;
            case EVALMODE:
                callbacks.add(new AccuracyCallback());
                break;
            case INFERMODE:
                callbacks.add(new PredictCallback());
                break;
            default:
                throw new IllegalArgumentException("unknown run type " + runType);
        }
        int batch = model == null ? 0 : model.batchSize();
        if (batch > 0 && dataSet.paddedCount(batch) > 0) {
            logger().info("[LenetClient] " + runType + ": " + dataSet.sampleCount() + " samples in batches of " + batch
                    + "; the last batch repeats " + dataSet.paddedCount(batch) + " samples (counted once in loss/accuracy)");
        }
        return callbacks;
    }

    @Override
    public float getEvalAccuracy(List<Callback> evalCallbacks) {
        for (Callback c : evalCallbacks) {
            if (c instanceof AccuracyCallback) {
                return ((AccuracyCallback) c).getAccuracy();
            }
        }
        return Float.NaN;
    }

    @Override
    public List<Object> getInferResult(List<Callback> inferCallbacks) {
        List<Object> out = new ArrayList<>();
        for (Callback c : inferCallbacks) {
            if (c instanceof PredictCallback) {
                for (int label : ((PredictCallback) c).getPredictions()) {
                    out.add(label);
                }
            }
        }
        return out;
    }
}
