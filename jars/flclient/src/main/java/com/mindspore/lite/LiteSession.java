package com.mindspore.lite;

import com.mindspore.flclient.cases.RuntimeModel;
import com.mindspore.lite.config.MSConfig;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * MindSpore Lite's session, for code written against r1.6 (a LeNet-like classifier): a facade over
 * this project's runtime ({@link RuntimeModel}). Two inputs as the converted r1.6 model had them:
 * the images, float32 NHWC ({@code [batch, H, W, C]}, the bin-file layout, turned into the runtime's
 * NCHW here) — or the model's own shape when it is not 4-D — and the labels, int32 {@code [batch]}
 * (a one-hot float32 buffer of {@code batch * classes} values is accepted too).
 * {@link #runGraph()} trains one step in train mode (output {@code "loss"}, one float) and computes
 * the logits in eval mode (output {@code "logits"}, {@code batch * classes} floats).
 */
public class LiteSession {
    private RuntimeModel model;
    private int[] runtimeShape;
    private MSTensor data;
    private MSLabelTensor labels;
    private final Map<String, MSTensor> outputs = new LinkedHashMap<>();
    private boolean trainMode = true;

    private LiteSession() {
    }

    private LiteSession attach(RuntimeModel model) {
        this.model = model;
        this.runtimeShape = model.inputShape();
        int[] shown = runtimeShape.length == 4
                ? new int[] {runtimeShape[0], runtimeShape[2], runtimeShape[3], runtimeShape[1]}
                : runtimeShape;
        int batch = runtimeShape[0];
        this.data = new MSTensor("data", shown, DataType.kNumberTypeFloat32, zeros(model.sampleSize() * batch));
        this.labels = new MSLabelTensor(batch, model.numClasses());
        return this;
    }

    static LiteSession open(Path modelFile, MSConfig config) {
        return new LiteSession().attach(RuntimeModel.load(modelFile));
    }

    /** r1.6: an empty session; {@link #compileGraph} loads the model into it. */
    public static LiteSession createSession(MSConfig config) {
        return new LiteSession();
    }

    private static ByteBuffer zeros(int floats) {
        return ByteBuffer.allocate(floats * Float.BYTES).order(ByteOrder.nativeOrder());
    }

    /** pyflclient addition: the runtime model behind this session (the framework moves weights through it). */
    public RuntimeModel runtimeModel() {
        return requireModel();
    }

    private RuntimeModel requireModel() {
        if (model == null) {
            throw new IllegalStateException("the LiteSession has no model (freed, or compileGraph not called)");
        }
        return model;
    }

    /** Loads the file named by {@link Model#loadModel} (a session holds one model). */
    public boolean compileGraph(Model m) {
        if (model != null) {
            throw new IllegalStateException("compileGraph: this session already holds a model");
        }
        if (m.file() == null) {
            throw new IllegalArgumentException("compileGraph: the Model has no file (call loadModel first)");
        }
        attach(RuntimeModel.load(m.file()));
        return true;
    }

    public List<MSTensor> getInputs() {
        requireModel();
        return List.of(data, labels);
    }

    public MSTensor getInputsByTensorName(String name) {
        return "data".equals(name) ? data : "labels".equals(name) ? labels : null;
    }

    /** Only the model's own input shapes are accepted: the batch is baked into the exported model. */
    public boolean resize(List<MSTensor> inputs, int[][] dims) {
        for (int i = 0; i < inputs.size(); i++) {
            if (!Arrays.equals(inputs.get(i).getShape(), dims[i])) {
                throw new IllegalArgumentException("LiteSession.resize " + inputs.get(i).tensorName() + " to "
                        + Arrays.toString(dims[i]) + ": not supported, the model was exported with "
                        + Arrays.toString(inputs.get(i).getShape()) + " (re-export it for another batch)");
            }
        }
        return true;
    }

    public boolean train() {
        trainMode = true;
        return true;
    }

    public boolean eval() {
        trainMode = false;
        return true;
    }

    public boolean isTrain() {
        return trainMode;
    }

    public boolean isEval() {
        return !trainMode;
    }

    /** pyflclient addition: the loss of the input tensors at the current weights, nothing updated. */
    public float loss() {
        return requireModel().loss(nchw(data.getFloatData()), labels.classIds());
    }

    /** One training step (train mode) or one forward pass (eval mode) on the input tensors. */
    public boolean runGraph() {
        RuntimeModel m = requireModel();
        float[] x = nchw(data.getFloatData());
        outputs.clear();
        if (trainMode) {
            float loss = m.trainStep(x, labels.classIds());
            outputs.put("loss", new MSTensor("loss", new int[] {1}, new float[] {loss}));
        } else {
            float[] logits = m.session().logits(x);
            outputs.put("logits", new MSTensor("logits", new int[] {runtimeShape[0], m.numClasses()}, logits));
        }
        return true;
    }

    private float[] nchw(float[] nhwc) {
        if (runtimeShape.length != 4) {
            return nhwc;
        }
        int n = runtimeShape[0];
        int c = runtimeShape[1];
        int h = runtimeShape[2];
        int w = runtimeShape[3];
        float[] out = new float[nhwc.length];
        for (int b = 0; b < n; b++) {
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    int src = ((b * h + y) * w + x) * c;
                    for (int ch = 0; ch < c; ch++) {
                        out[((b * c + ch) * h + y) * w + x] = nhwc[src + ch];
                    }
                }
            }
        }
        return out;
    }

    public List<MSTensor> getOutputs() {
        return new ArrayList<>(outputs.values());
    }

    public Map<String, MSTensor> getOutputMapByTensor() {
        return new LinkedHashMap<>(outputs);
    }

    public MSTensor getOutputByTensorName(String name) {
        return outputs.get(name);
    }

    public List<String> getOutputTensorNames() {
        return new ArrayList<>(outputs.keySet());
    }

    /** The trainable weights, in the model's order. */
    public List<MSTensor> getFeaturesMap() {
        RuntimeModel m = requireModel();
        List<MSTensor> out = new ArrayList<>();
        for (String name : m.weightNames()) {
            out.add(new MSTensor(name, m.session().weightShape(name), m.getWeight(name)));
        }
        return out;
    }

    /** Sets the weights by name; an unknown name or a size mismatch throws, naming the weight. */
    public boolean updateFeatures(List<MSTensor> features) {
        RuntimeModel m = requireModel();
        for (MSTensor t : features) {
            m.setWeight(t.tensorName(), t.getFloatData());
        }
        return true;
    }

    public boolean setLearningRate(float lr) {
        requireModel().setLearningRate(lr);
        return true;
    }

    /** Writes the whole model (weights and optimizer state) as a .ms file; r1.6's quantization and model-type arguments are ignored. */
    public boolean export(String modelFileName, int modelType, int quantizationType) {
        requireModel().save(Path.of(modelFileName));
        return true;
    }

    public void free() {
        if (model != null) {
            model.close();
            model = null;
        }
    }
}
