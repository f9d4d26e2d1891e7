package com.mindspore.lite;

import com.mindspore.lite.config.MSConfig;

/** MindSpore Lite's train-session factory, for code written against r1.6. */
public final class TrainSession {
    private TrainSession() {
    }

    /**
     * Loads a train {@code .ms} file into the pure-Java runtime. A file the runtime cannot read
     * throws (ModelFormatException or UncheckedIOException, naming the file and what is wrong)
     * rather than returning null as r1.6 did: the reason would otherwise be lost.
     */
    public static LiteSession createTrainSession(String modelName, MSConfig config, boolean useDefaultConfig) {
        return LiteSession.open(java.nio.file.Path.of(modelName), config);
    }
}
