package com.mindspore.flclient.demo.lenet.attacks;

/** Uploads its update with the sign flipped and scaled by 10: a sign-flip attack (Damaskinos et al. 2018). */
public final class SignFlippedLenetClient extends PoisonedLenetClient {
    @Override
    protected float factor() {
        return -10f;
    }
}
