package com.mindspore.flclient.cases;

import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The trained models of this JVM's clients between their upload and getModel, kept in memory in
 * place of their scratch files ({@code <trainModelPath>.trained}) up to a budget of bytes: a
 * client's trained model is written to its file only when keeping it would pass the budget. The
 * accepted upload each client keeps until getModel (for the restart check,
 * {@code <trainModelPath>.upload}) shares the budget ({@link #keepOrWrite}).
 * {@link RuntimeModel#load} reads a kept model from here, so a path held here is read from memory.
 * The budget is the system property {@code flclient.trainedModelMemoryMb} (MiB, default 48: the
 * trained LeNet models (530 KiB each) and uploads (266 KiB) of ~60 clients waiting for getModel at
 * once, the demo's 50; past it at 3,500 clients the heap grows by no more than the budget; 0 keeps
 * none in memory), or
 * {@link #setBudget}. What is kept is the bytes the file would hold, so results do not depend on it.
 */
public final class TrainedModels {
    private static final long DEFAULT_MB = 48;
    private static final Map<Path, byte[]> KEPT = new ConcurrentHashMap<>();
    private static final AtomicLong USED = new AtomicLong();
    private static volatile long budget = budgetFromProperty();

    private TrainedModels() {
    }

    private static long budgetFromProperty() {
        String v = System.getProperty("flclient.trainedModelMemoryMb");
        if (v == null) {
            return DEFAULT_MB << 20;
        }
        try {
            long mb = Long.parseLong(v.trim());
            if (mb >= 0) {
                return mb << 20;
            }
        } catch (NumberFormatException e) {
            // fall through to the error
        }
        throw new IllegalArgumentException("flclient.trainedModelMemoryMb = " + v + ": expected an integer >= 0 (MiB)");
    }

    /** Sets the budget in bytes (0: every trained model goes to its file); models kept already stay. */
    public static void setBudget(long bytes) {
        if (bytes < 0) {
            throw new IllegalArgumentException("trained model memory: " + bytes + " bytes; expected >= 0");
        }
        budget = bytes;
    }

    /** The budget in bytes. */
    public static long budget() {
        return budget;
    }

    /** Bytes held now. */
    public static long used() {
        return USED.get();
    }

    private static Path key(Path file) {
        return file.toAbsolutePath().normalize();
    }

    /** Keeps {@code bytes} as the content of {@code file} when the budget allows (true), else keeps nothing for it. */
    static boolean keep(Path file, byte[] bytes) {
        remove(file);
        long after = USED.addAndGet(bytes.length);
        if (after > budget) {
            USED.addAndGet(-bytes.length);
            return false;
        }
        KEPT.put(key(file), bytes);
        return true;
    }

    /** The kept content of {@code file}, or null. */
    public static byte[] get(Path file) {
        return KEPT.get(key(file));
    }

    /** Whether {@code file}'s content is kept here. */
    public static boolean has(Path file) {
        return KEPT.containsKey(key(file));
    }

    /** Forgets {@code file}'s kept content, if any. */
    public static void remove(Path file) {
        byte[] old = KEPT.remove(key(file));
        if (old != null) {
            USED.addAndGet(-old.length);
        }
    }

    /**
     * Keeps {@code bytes} for {@code file} in memory within the budget (true), else writes them to
     * {@code file} (not forced to disk; false). For a round's other scratch state, such as the
     * accepted upload kept for the restart check; read it with {@link #read}, end it with {@link #drop}.
     */
    public static boolean keepOrWrite(Path file, byte[] bytes) {
        if (budget > 0 && keep(file, bytes)) {
            return true;
        }
        try {
            java.nio.file.Files.write(file, bytes);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
        }
        return false;
    }

    /** {@code file}'s content: kept in memory (by {@link #save} or {@link #keepOrWrite}), else read from the file. */
    public static byte[] read(Path file) {
        byte[] kept = get(file);
        if (kept != null) {
            return kept;
        }
        try {
            return java.nio.file.Files.readAllBytes(file);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    /** Forgets {@code file}'s content: kept in memory, or else its file (deleted, if any). */
    public static void drop(Path file) {
        if (KEPT.containsKey(key(file))) {
            remove(file);
            return;
        }
        try {
            java.nio.file.Files.deleteIfExists(file);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("cannot delete " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Keeps the model's bytes for {@code file} in memory within the budget, else writes them to
     * {@code file} (not forced to disk); the other place is cleared. True when kept in memory.
     */
    public static boolean save(TrainableModel model, Path file) {
        if (model instanceof RuntimeModel && budget > 0) {
            byte[] bytes = ((RuntimeModel) model).session().toBytes();
            if (keep(file, bytes)) {
                try {
                    java.nio.file.Files.deleteIfExists(file); // an earlier round's file, written past the budget
                } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException("cannot delete " + file + ": " + e.getMessage(), e);
                }
                return true;
            }
        }
        remove(file);
        model.save(file, false);
        return false;
    }
}
