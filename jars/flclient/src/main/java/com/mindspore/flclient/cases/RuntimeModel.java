package com.mindspore.flclient.cases;

import com.mindspore.flclient.runtime.GradientHook;
import com.mindspore.flclient.runtime.TrainSession;

import java.nio.file.Path;
import java.util.List;

/**
 * {@link TrainableModel} on the pure-Java .ms runtime ({@link TrainSession}).
 *
 * <p>A closed model leaves its built program to the next {@link #load} on the same thread (one
 * spare per thread): a trainer thread loads the next client's file into it when the file is the
 * same graph ({@link TrainSession#load(Path, TrainSession)}: the file read and verified, its
 * Parameters copied in, nothing built), so a simulation builds a program per trainer, not two
 * per client-iteration. Results are bit-identical to fresh loads; {@code -Dflclient.runtime.reuse=false}
 * builds every program afresh.
 */
public final class RuntimeModel implements TrainableModel {
    /** Whether closed programs are reused: the system property {@code flclient.runtime.reuse} (default true), read at each load and close. */
    private static boolean reuse() {
        return !"false".equals(System.getProperty("flclient.runtime.reuse"));
    }
    /** The last closed model's session of this thread, for the next {@link #load} on it. */
    private static final ThreadLocal<TrainSession> SPARE = new ThreadLocal<>();

    private TrainSession session;

    private RuntimeModel(TrainSession session) {
        this.session = session;
    }

    /**
     * Loads and verifies a .ms file (ModelFormatException names the file and what is wrong), from
     * memory when {@link TrainedModels} keeps its content.
     */
    public static RuntimeModel load(Path msFile) {
        TrainSession spare = SPARE.get();
        SPARE.remove();
        byte[] kept = TrainedModels.get(msFile); // a trained model waiting for getModel in memory
        TrainSession reused = reuse() ? spare : null;
        return new RuntimeModel(kept != null ? TrainSession.load(kept, msFile.toString(), reused)
                : TrainSession.load(msFile, reused));
    }

    /** The underlying session, for cases that need more than this interface. */
    public TrainSession session() {
        if (session == null) {
            throw new IllegalStateException("the model is closed");
        }
        return session;
    }

    @Override
    public List<String> weightNames() {
        return session().weightNames();
    }

    @Override
    public float[] getWeight(String name) {
        return session().getWeight(name);
    }

    @Override
    public void setWeight(String name, float[] values) {
        session().setWeight(name, values);
    }

    @Override
    public int[] inputShape() {
        return session().inputShape();
    }

    @Override
    public int batchSize() {
        return session().batchSize();
    }

    @Override
    public int numClasses() {
        return session().numClasses();
    }

    @Override
    public void setLearningRate(float lr) {
        session().setLearningRate(lr);
    }

    @Override
    public float trainStep(float[] data, int[] labels) {
        return session().trainStep(data, labels);
    }

    @Override
    public float loss(float[] data, int[] labels) {
        return session().loss(data, labels);
    }

    @Override
    public void setGradientHook(GradientHook hook) {
        session().setGradientHook(hook);
    }

    @Override
    public List<String> optimizedWeights() {
        return session().optimizedWeights();
    }

    @Override
    public float learningRate() {
        return session().getLearningRate();
    }

    @Override
    public int[] predict(float[] data) {
        return session().predict(data);
    }

    @Override
    public void save(Path out) {
        session().save(out);
    }

    @Override
    public void save(Path out, boolean durable) {
        session().save(out, durable);
    }

    @Override
    public void close() {
        if (session == null) {
            return;
        }
        session.close();
        if (reuse()) {
            SPARE.set(session);
        }
        session = null;
    }
}
