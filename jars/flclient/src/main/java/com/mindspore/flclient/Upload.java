package com.mindspore.flclient;

import java.util.Collections;
import java.util.Map;

/**
 * What one updateModel carries besides the round's names: the weights (× data_size, possibly
 * protected), upload_loss when the plan asks for it, and Scaffold's control-variate delta. Built
 * by {@link TrainStep}, turned into the body by the plan's {@link UploadProtection}.
 */
final class Upload {
    /** Weight name → trained weight × data_size, in the server's order. */
    final Map<String, float[]> weights;
    /** upload_loss is sent (the plan's aggregation or early stop reports the loss). */
    final boolean hasLoss;
    /** The mean training loss at the received model (meaningful when {@link #hasLoss}). */
    final float loss;
    /** Scaffold's delta c_i by weight name (empty otherwise); not × data_size. */
    final Map<String, float[]> controlVariate;
    /** The plan's upload codec's encoding of the weights (null: they travel as they are, in feature_map). */
    final UploadCodec.Encoded compressed;

    Upload(Map<String, float[]> weights, boolean hasLoss, float loss, Map<String, float[]> controlVariate) {
        this(weights, hasLoss, loss, controlVariate, null);
    }

    Upload(Map<String, float[]> weights, boolean hasLoss, float loss, Map<String, float[]> controlVariate,
           UploadCodec.Encoded compressed) {
        this.weights = weights;
        this.hasLoss = hasLoss;
        this.loss = loss;
        this.controlVariate = controlVariate == null ? Collections.emptyMap() : controlVariate;
        this.compressed = compressed;
    }
}
