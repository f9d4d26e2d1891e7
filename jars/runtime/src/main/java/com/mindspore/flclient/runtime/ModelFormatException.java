package com.mindspore.flclient.runtime;

/**
 * A {@code .ms} file that cannot be trusted: truncated, not a pyflclient model, inconsistent
 * (sizes that do not match shapes, indices out of range), or using an op this runtime does not
 * implement. The message names the file and what is wrong, so that the user knows whether to
 * re-run {@code pyflclient convert} or to fetch the model again.
 */
public class ModelFormatException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ModelFormatException(String message) {
        super(message);
    }

    public ModelFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
