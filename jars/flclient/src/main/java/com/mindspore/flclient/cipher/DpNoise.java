package com.mindspore.flclient.cipher;

import java.util.Map;
import java.util.Random;

/**
 * The differential-privacy protection of an upload on the device: the update d = trained − received (all uploaded weights as one vector)
 * is clipped to L2 norm ≤ C (dp_norm_clip), then Gaussian noise of standard deviation
 * σ = C · sqrt(2 ln(1.25 / δ)) / ε is added to every value (the Gaussian mechanism, Dwork & Roth
 * Thm. A.1, for one release of sensitivity C); ε = ∞ clips only. The weights become
 * received + clip(d) + N(0, σ²).
 */
public final class DpNoise {
    private DpNoise() {
    }

    /** σ of the Gaussian mechanism (0 for ε = ∞). */
    public static double sigma(double clip, double eps, double delta) {
        if (Double.isInfinite(eps)) {
            return 0.0;
        }
        return clip * Math.sqrt(2 * Math.log(1.25 / delta)) / eps;
    }

    /** Rewrites {@code trained} in place; returns the update's L2 norm before clipping. */
    public static double apply(Map<String, float[]> trained, Map<String, float[]> received, double clip, double eps,
                               double delta, Random random) {
        double squares = 0;
        for (Map.Entry<String, float[]> e : trained.entrySet()) {
            float[] w = e.getValue();
            float[] r = received.get(e.getKey());
            for (int i = 0; i < w.length; i++) {
                double d = (double) w[i] - r[i];
                squares += d * d;
            }
        }
        double norm = Math.sqrt(squares);
        if (!Double.isFinite(norm)) { // the noise of earlier iterations made local training diverge (loss NaN)
            throw new IllegalArgumentException("the trained update is NaN or Inf (local training "
                    + "diverged); nothing is uploaded");
        }
        double scale = norm > clip ? clip / norm : 1.0;
        double sigma = sigma(clip, eps, delta);
        for (Map.Entry<String, float[]> e : trained.entrySet()) {
            float[] w = e.getValue();
            float[] r = received.get(e.getKey());
            for (int i = 0; i < w.length; i++) {
                double d = ((double) w[i] - r[i]) * scale;
                w[i] = (float) (r[i] + d + (sigma > 0 ? sigma * random.nextGaussian() : 0.0));
            }
        }
        return norm;
    }
}
