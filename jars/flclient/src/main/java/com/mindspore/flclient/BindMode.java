package com.mindspore.flclient;

/**
 * r1.6 CPU binding modes. The pure-Java runtime leaves thread placement to the JVM, so the
 * value is accepted (the seed passes it on the command line) and only logged.
 */
public enum BindMode {
    NOT_BINDING_CORE, BIND_LARGE_CORE, BIND_MIDDLE_CORE
}
