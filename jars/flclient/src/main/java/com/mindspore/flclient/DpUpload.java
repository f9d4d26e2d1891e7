package com.mindspore.flclient;

import com.mindspore.flclient.cipher.DpNoise;

import java.util.Map;
import java.util.Random;
import java.util.logging.Logger;

/**
 * DP_ENCRYPT: the update (trained − received weights) is clipped to dp_norm_clip and noised by the
 * Gaussian mechanism of (dp_eps, dp_delta) before it is × data_size ({@link DpNoise}); then sent in
 * the clear. Scaffold's control variate and the loss are not noised.
 */
final class DpUpload implements UploadProtection {
    /** The encrypt type of this class (schema/round_plugins.json). */
    static final String NAME = "DP_ENCRYPT";

    private final FLParameter p;
    private final Logger log;
    private final Random noise = new java.security.SecureRandom();

    DpUpload(FLParameter p, Logger log) {
        this.p = p;
        this.log = log;
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public void protectTrained(Plan plan, Map<String, float[]> trained, Map<String, float[]> received) {
        double norm;
        try {
            norm = DpNoise.apply(trained, received, plan.dpNormClip, plan.dpEps, plan.dpDelta, noise);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(NAME + ": " + e.getMessage(), e);
        }
        log.info("[updateModel] " + NAME + ": update norm " + (float) norm + " clipped to " + (float) plan.dpNormClip
                + ", Gaussian noise sigma " + (float) DpNoise.sigma(plan.dpNormClip, plan.dpEps, plan.dpDelta));
    }

    @Override
    public byte[] body(Plan plan, int iteration, Upload upload) {
        return FLMessages.requestUpdateModel(p.getFlName(), p.getClientID(), iteration, upload);
    }
}
