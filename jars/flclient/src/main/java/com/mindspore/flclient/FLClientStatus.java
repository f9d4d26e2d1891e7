package com.mindspore.flclient;

/**
 * Outcome of a federated-learning call: the r1.6 values, so code written against
 * MindSpore's client compiles unchanged. {@code WAIT} and {@code RESTART} are internal
 * states of the round loop (ask again later / go back to startFLJob); public calls return
 * {@code SUCCESS}, {@code FAILED} or {@code NOT_SELECTED}.
 *
 * <p>{@code NOT_SELECTED} (not in r1.6) is not a failure: the server's job ended while this
 * client waited to be admitted (a server admits {@code start_fl_job_threshold} devices an
 * iteration; with more registered, some take part in fewer iterations or in none).
 */
public enum FLClientStatus {
    SUCCESS, FAILED, WAIT, RESTART, NOT_SELECTED
}
