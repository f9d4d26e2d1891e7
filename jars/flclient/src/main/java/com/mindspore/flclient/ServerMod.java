package com.mindspore.flclient;

/**
 * r1.6 server modes. Only {@code FEDERATED_LEARNING} (training and inference use the same
 * model) is implemented; {@code HYBRID_TRAINING} is accepted on the command line and refused
 * by {@link FLParameter#validate()} with a clear message.
 */
public enum ServerMod {
    FEDERATED_LEARNING, HYBRID_TRAINING
}
