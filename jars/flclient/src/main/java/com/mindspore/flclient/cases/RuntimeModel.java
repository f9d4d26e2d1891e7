package com.mindspore.flclient.cases;

import com.mindspore.flclient.runtime.GradientHook;
import com.mindspore.flclient.runtime.TrainSession;

import java.nio.file.Path;
import java.util.List;

/** {@link TrainableModel} on the pure-Java .ms runtime ({@link TrainSession}). */
public final class RuntimeModel implements TrainableModel {
    private final TrainSession session;

    private RuntimeModel(TrainSession session) {
        this.session = session;
    }

    /** Loads and verifies a .ms file (ModelFormatException names the file and what is wrong). */
    public static RuntimeModel load(Path msFile) {
        return new RuntimeModel(TrainSession.load(msFile));
    }

    /** The underlying session, for cases that need more than this interface. */
    public TrainSession session() {
        return session;
    }

    @Override
    public List<String> weightNames() {
        return session.weightNames();
    }

    @Override
    public float[] getWeight(String name) {
        return session.getWeight(name);
    }

    @Override
    public void setWeight(String name, float[] values) {
        session.setWeight(name, values);
    }

    @Override
    public int[] inputShape() {
        return session.inputShape();
    }

    @Override
    public int batchSize() {
        return session.batchSize();
    }

    @Override
    public int numClasses() {
        return session.numClasses();
    }

    @Override
    public void setLearningRate(float lr) {
        session.setLearningRate(lr);
    }

    @Override
    public float trainStep(float[] data, int[] labels) {
        return session.trainStep(data, labels);
    }

    @Override
    public float loss(float[] data, int[] labels) {
        return session.loss(data, labels);
    }

    @Override
    public void setGradientHook(GradientHook hook) {
        session.setGradientHook(hook);
    }

    @Override
    public List<String> optimizedWeights() {
        return session.optimizedWeights();
    }

    @Override
    public float learningRate() {
        return session.getLearningRate();
    }

    @Override
    public int[] predict(float[] data) {
        return session.predict(data);
    }

    @Override
    public void save(Path out) {
        session.save(out);
    }

    @Override
    public void save(Path out, boolean durable) {
        session.save(out, durable);
    }

    @Override
    public void close() {
        session.close();
    }
}
