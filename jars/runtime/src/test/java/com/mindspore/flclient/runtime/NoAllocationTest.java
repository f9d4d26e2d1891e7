package com.mindspore.flclient.runtime;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.lang.management.ManagementFactory;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * After the first step, a training step allocates nothing: every buffer is made at load. Measured
 * with the JVM's per-thread allocation counter on the plain-Java kernels (which allocate nothing
 * even before the JIT compiles them; the Vector API ones only once C2 has removed their boxes).
 */
class NoAllocationTest {
    @AfterEach
    void restoreKernelChoice() {
        System.clearProperty("flclient.runtime.vector");
    }

    @Test
    void trainingStepsAfterTheFirstAllocateNothing() {
        var bean = ManagementFactory.getThreadMXBean();
        assumeTrue(bean instanceof com.sun.management.ThreadMXBean, "needs HotSpot's allocation counter");
        var threads = (com.sun.management.ThreadMXBean) bean;
        System.setProperty("flclient.runtime.vector", "false");
        TrainSession s = TrainSession.load(LeNetGraph.build(4, 10, 1), "lenet4.ms");
        Random r = new Random(1);
        float[] x = new float[4 * 3 * 32 * 32];
        for (int i = 0; i < x.length; i++) {
            x[i] = r.nextFloat();
        }
        int[] y = {1, 2, 3, 4};
        s.trainStep(x, y);
        long id = Thread.currentThread().getId();
        long before = threads.getThreadAllocatedBytes(id);
        for (int i = 0; i < 5; i++) {
            s.trainStep(x, y);
        }
        long allocated = threads.getThreadAllocatedBytes(id) - before;
        assertTrue(allocated < 1024, "5 training steps allocated " + allocated + " bytes");
    }

    /**
     * The Vector API kernels allocate nothing either once C2 has compiled them: a Vector API call
     * that C2 does not inline boxes its vectors (0.1–0.5 MB a call, several times slower) without
     * any other symptom — a second vector width in the JVM, or a loop too big to inline whole,
     * did it (docs/runtime.md). Steps of 20 until they allocate nothing, at most 60 s.
     */
    @Test
    void vectorKernelsAllocateNothingOnceCompiled() {
        var bean = ManagementFactory.getThreadMXBean();
        assumeTrue(bean instanceof com.sun.management.ThreadMXBean, "needs HotSpot's allocation counter");
        assumeTrue(com.mindspore.flclient.runtime.kernels.VectorSupport.moduleAvailable(), "needs jdk.incubator.vector");
        var threads = (com.sun.management.ThreadMXBean) bean;
        System.clearProperty("flclient.runtime.vector");
        TrainSession s = TrainSession.load(LeNetGraph.build(4, 10, 1), "lenet4.ms");
        Random r = new Random(2);
        float[] x = new float[4 * 3 * 32 * 32];
        for (int i = 0; i < x.length; i++) {
            x[i] = r.nextFloat();
        }
        int[] y = {1, 2, 3, 4};
        long id = Thread.currentThread().getId();
        long deadline = System.nanoTime() + 60_000_000_000L;
        long allocated;
        int rounds = 0;
        do {
            long before = threads.getThreadAllocatedBytes(id);
            for (int i = 0; i < 20; i++) {
                s.trainStep(x, y);
            }
            allocated = threads.getThreadAllocatedBytes(id) - before;
            rounds++;
        } while (allocated >= 1024 && System.nanoTime() < deadline);
        assertTrue(allocated < 1024, "after " + rounds * 20 + " steps, 20 steps still allocated " + allocated
                + " bytes: a Vector API kernel boxes its vectors");
    }
}
