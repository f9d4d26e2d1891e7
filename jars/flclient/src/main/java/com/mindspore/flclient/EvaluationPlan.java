package com.mindspore.flclient;

import java.util.SplittableRandom;

/**
 * pyflclient addition: which clients evaluate the new global model after which iteration.
 *
 * <p>r1.6 evaluates after every iteration on every device. With thousands of simulated devices
 * that costs as much as training them once, so a simulation may evaluate every {@code every}-th
 * iteration (and always the plan's last one), and in those only a seeded sample: each client with
 * probability {@code fraction}, decided by a generator seeded with (seed, fl_id, iteration). The
 * same seed gives the same sample on any number of threads, engines or machines, because the
 * draw depends on the client's id, not on where or when it runs. A client that does not evaluate
 * still receives the model and saves it.
 */
public final class EvaluationPlan {
    /** r1.6: every client after every iteration. */
    public static final EvaluationPlan EVERY_CLIENT_EVERY_ITERATION = new EvaluationPlan(1, 1.0, 0L);

    private final int every;
    private final double fraction;
    private final long seed;

    /**
     * @param every    evaluate after iterations every, 2×every, ... and the last one (1: every iteration)
     * @param fraction the chance of each client to evaluate in such an iteration, in (0, 1]
     * @param seed     the seed of the sample
     */
    public EvaluationPlan(int every, double fraction, long seed) {
        if (every < 1) {
            throw new IllegalArgumentException("eval_every = " + every + ": evaluate every k >= 1 iterations");
        }
        if (!(fraction > 0.0 && fraction <= 1.0)) {
            throw new IllegalArgumentException("eval_fraction = " + fraction + ": must be in (0, 1]");
        }
        this.every = every;
        this.fraction = fraction;
        this.seed = seed;
    }

    public int every() {
        return every;
    }

    public double fraction() {
        return fraction;
    }

    public long seed() {
        return seed;
    }

    /** Whether iteration {@code iteration} (of {@code lastIteration}) is evaluated at all. */
    public boolean evaluatesIteration(int iteration, int lastIteration) {
        return iteration % every == 0 || iteration >= lastIteration;
    }

    /** Whether client {@code clientId} evaluates the model of {@code iteration}. */
    public boolean evaluates(String clientId, int iteration, int lastIteration) {
        if (!evaluatesIteration(iteration, lastIteration)) {
            return false;
        }
        if (fraction >= 1.0) {
            return true;
        }
        long key = seed * 0x9E3779B97F4A7C15L + (long) clientId.hashCode() * 0xBF58476D1CE4E5B9L + iteration;
        return new SplittableRandom(key).nextDouble() < fraction;
    }

    @Override
    public String toString() {
        return "eval_every " + every + ", eval_fraction " + fraction + ", seed " + seed;
    }
}
