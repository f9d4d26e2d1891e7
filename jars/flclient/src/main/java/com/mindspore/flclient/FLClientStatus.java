package com.mindspore.flclient;

/**
 * Outcome of a federated-learning call: the r1.6 values, so code written against
 * MindSpore's client compiles unchanged. {@code WAIT} and {@code RESTART} are internal
 * states of the round loop (ask again later / go back to startFLJob); public calls return
 * {@code SUCCESS} or {@code FAILED}.
 */
public enum FLClientStatus {
    SUCCESS, FAILED, WAIT, RESTART
}
