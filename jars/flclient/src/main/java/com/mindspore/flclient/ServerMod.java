package com.mindspore.flclient;

/**
 * r1.6 server modes. Only {@code FEDERATED_LEARNING} (training and inference use the same
 * model) is implemented; {@code HYBRID_TRAINING} is refused by
 * {@link FLParameter#setServerMod} with the rulebook's message (schema/client_parameters.json).
 */
public enum ServerMod {
    FEDERATED_LEARNING, HYBRID_TRAINING
}
