package com.mindspore.flclient.cases;

/**
 * Runs a case written against another case API as one of this project's {@link Client}s. The
 * framework finds the adapters with {@link java.util.ServiceLoader} (META-INF/services), so the
 * project's core names no other API: r1.6's compatibility layer ({@code com.mindspore.flclient.model},
 * {@code com.mindspore.lite}) registers its adapter there and depends on the core, never the reverse.
 */
public interface CaseAdapter {
    /** The base class of the cases this adapter runs (named in messages). */
    Class<?> caseBase();

    /** Whether {@code caseClass} is a case of this adapter. */
    default boolean accepts(Class<?> caseClass) {
        return caseBase().isAssignableFrom(caseClass);
    }

    /** The case instance as a project case. */
    Client adapt(Object instance);
}
