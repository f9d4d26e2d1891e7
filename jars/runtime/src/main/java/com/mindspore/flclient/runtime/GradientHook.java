package com.mindspore.flclient.runtime;

/**
 * Changes a weight's gradient inside a training step, after backward and before the optimizer
 * op that updates that weight reads it ({@link TrainSession#setGradientHook}): the place where a
 * federated algorithm changes local training (FedProx's proximal term, Scaffold's correction).
 * Called once per trainable weight and step, on the training thread; it must not allocate (it
 * runs in the hot loop) and may only write {@code gradient}.
 */
@FunctionalInterface
public interface GradientHook {
    /**
     * @param weight   the weight's name (as in {@link TrainSession#weightNames()})
     * @param values   the weight before this step's update (read only)
     * @param gradient the gradient the optimizer is about to apply, changed in place
     */
    void onGradient(String weight, float[] values, float[] gradient);
}
