package com.mindspore.flclient;

import com.mindspore.flclient.runtime.GradientHook;

import java.util.HashMap;
import java.util.Map;

/**
 * The device kind "fedprox" (Li et al., "Federated Optimization in Heterogeneous Networks",
 * MLSys 2020): each local step minimises {@code F_k(w) + mu/2 ||w - w_t||^2}, w_t the received
 * global model, so the gradient of every trainable weight becomes {@code grad + mu (w - w_t)}
 * between backward and the optimizer ({@link ProximalTerm}). mu is the plan's
 * {@code fedprox_mu} (FLPlan.aggregation.weights[0]).
 */
public final class FedProxTraining implements LocalTraining {
    static final String DEVICE = "fedprox";
    /** The device parameter of this kind (schema/round_plugins.json's device_params). */
    static final String MU = "fedprox_mu";

    FedProxTraining() {
    }

    /** The proximal term of {@code mu} around {@code global} (weight name → w_t) as a gradient hook. */
    public static GradientHook proximalTerm(float mu, Map<String, float[]> global) {
        return new ProximalTerm(mu, global);
    }

    @Override
    public String device() {
        return DEVICE;
    }

    @Override
    public Round begin(Plan plan, LocalModel model) {
        Map<String, float[]> global = new HashMap<>();
        for (String name : model.optimizedWeights()) {
            global.put(name, model.weight(name));
        }
        model.setGradientHook(proximalTerm((float) plan.deviceParam(MU), global));
        return (m, uploaded) -> {
            m.setGradientHook(null);
            return Map.of();
        };
    }

    /** {@code grad += mu (w - w_global)}, the gradient of {@code mu/2 ||w - w_global||^2}; allocates nothing. */
    static final class ProximalTerm implements GradientHook {
        private final float mu;
        private final Map<String, float[]> global;

        ProximalTerm(float mu, Map<String, float[]> global) {
            this.mu = mu;
            this.global = global;
        }

        @Override
        public void onGradient(String weight, float[] values, float[] gradient) {
            float[] x = global.get(weight);
            for (int i = 0; i < gradient.length; i++) {
                gradient[i] += mu * (values[i] - x[i]);
            }
        }
    }
}
