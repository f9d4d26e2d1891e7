package com.mindspore.lite;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * MindSpore Lite's model handle, for code written against r1.6: {@link #loadModel} names the
 * {@code .ms} file that {@link LiteSession#compileGraph} then loads into the runtime.
 */
public class Model {
    private Path file;

    /** True when the file exists; the file is read (and verified) by {@link LiteSession#compileGraph}. */
    public boolean loadModel(String modelPath) {
        Path p = Path.of(modelPath);
        if (!Files.isRegularFile(p)) {
            return false;
        }
        file = p;
        return true;
    }

    Path file() {
        return file;
    }

    public void free() {
        file = null;
    }
}
