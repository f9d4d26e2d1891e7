package com.mindspore.flclient.demo.lenet.attacks;

/** Uploads twenty times its update: a "boosted" model-replacement attack (Bhagoji et al. 2019). */
public final class ScaledLenetClient extends PoisonedLenetClient {
    @Override
    protected float factor() {
        return 20f;
    }
}
