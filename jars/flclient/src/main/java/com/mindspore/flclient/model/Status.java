package com.mindspore.flclient.model;

/** Result of a {@link Client} operation (r1.6 names; {@code STOPPED} is pyflclient's: stopFLJob was called). */
public enum Status {
    SUCCESS, FAILED, NULLPTR, INVALID, STOPPED
}
