package com.mindspore.flclient.demo.lenet.attacks;

import com.mindspore.flclient.demo.lenet.LenetClient;
import com.mindspore.flclient.model.Status;

import java.util.Map;

/**
 * A LeNet device that poisons its update, for experiments with robust aggregation
 * (docs/strategies.md, "Poisoning"): it trains as {@link LenetClient} does, then replaces its
 * update {@code d = w_trained - w_received} by {@code factor x d} before the framework uploads
 * it. A factor above 1 is the scaled ("boosted") attack, a negative one the sign-flip attack.
 * Everything else (data, protocol, data_size) is an honest device's, so the server cannot
 * tell it apart by anything but the update itself. Run it by giving its class as the
 * client's {@code flName}: {@link ScaledLenetClient} or {@link SignFlippedLenetClient}.
 */
public abstract class PoisonedLenetClient extends LenetClient {
    /** The factor applied to the honest update. */
    protected abstract float factor();

    @Override
    public Status trainModel(int epochs) {
        Map<String, float[]> received = getFeatures();
        Status st = super.trainModel(epochs);
        if (st != Status.SUCCESS) {
            return st;
        }
        Map<String, float[]> trained = getFeatures();
        float f = factor();
        for (Map.Entry<String, float[]> e : trained.entrySet()) {
            float[] w = e.getValue();
            float[] r = received.get(e.getKey());
            for (int i = 0; i < w.length; i++) {
                w[i] = r[i] + f * (w[i] - r[i]);
            }
        }
        logger().info("poisoned device: update x " + f);
        return updateFeatures(trained);
    }
}
