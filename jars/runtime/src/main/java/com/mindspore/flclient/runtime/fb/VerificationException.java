package com.mindspore.flclient.runtime.fb;

/**
 * A buffer is not a valid FlatBuffer of the expected root table. {@link #where()} is the field
 * path from the root ({@code ResponseFLJob.feature_map[3].data}), {@link #why()} the problem.
 */
public final class VerificationException extends Exception {
    private static final long serialVersionUID = 1L;

    private final String where;
    private final String why;

    VerificationException(String where, String why) {
        super(where + ": " + why);
        this.where = where;
        this.why = why;
    }

    public String where() {
        return where;
    }

    public String why() {
        return why;
    }
}
