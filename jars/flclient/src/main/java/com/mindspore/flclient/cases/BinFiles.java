package com.mindspore.flclient.cases;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Raw little-endian bin files (the FEMNIST {@code *_data.bin} / {@code *_label.bin} layout):
 * read whole into Java arrays, with errors that name the file and say what is wrong.
 */
public final class BinFiles {
    private BinFiles() {
    }

    /** All float32 values of the file; the size must be a multiple of {@code groupFloats} floats. */
    public static float[] readFloats(Path file, int groupFloats, String what) {
        ByteBuffer bb = readChecked(file, (long) groupFloats * Float.BYTES, what,
                groupFloats + " float32 values (" + (groupFloats * Float.BYTES) + " bytes) per sample");
        float[] out = new float[bb.remaining() / Float.BYTES];
        bb.asFloatBuffer().get(out);
        return out;
    }

    /**
     * The file's float32 NHWC images ({@code h × w × c} floats each) in NCHW order, read straight
     * from the file's bytes into the NCHW array: what {@link #readFloats} and a transpose give,
     * without the intermediate NHWC array and its pass. Channel-major loops: each output plane
     * is written in order and each input row read with stride c.
     */
    public static float[] readFloatsNchw(Path file, int c, int h, int w, String what) {
        int image = c * h * w;
        ByteBuffer bb = readChecked(file, (long) image * Float.BYTES, what,
                image + " float32 values (" + (image * Float.BYTES) + " bytes) per sample");
        float[] out = new float[bb.remaining() / Float.BYTES];
        int plane = h * w;
        int n = out.length / image;
        for (int s = 0; s < n; s++) {
            int base = s * image;
            for (int ch = 0; ch < c; ch++) {
                int dst = base + ch * plane;
                int src = (base + ch) * Float.BYTES;
                for (int p = 0; p < plane; p++) {
                    out[dst + p] = bb.getFloat(src + p * c * Float.BYTES);
                }
            }
        }
        return out;
    }

    /** All int32 values of the file. */
    public static int[] readInts(Path file, String what) {
        ByteBuffer bb = readChecked(file, Integer.BYTES, what, "int32 values (4 bytes each)");
        int[] out = new int[bb.remaining() / Integer.BYTES];
        bb.asIntBuffer().get(out);
        return out;
    }

    private static ByteBuffer readChecked(Path file, long unit, String what, String layout) {
        long size;
        try {
            size = Files.size(file);
        } catch (IOException e) {
            throw new UncheckedIOException(what + " file " + file + " cannot be read: " + e.getMessage(), e);
        }
        if (size == 0) {
            throw new IllegalArgumentException(what + " file " + file + " is empty");
        }
        if (size % unit != 0) {
            throw new IllegalArgumentException(what + " file " + file + " has " + size + " bytes, not a multiple of "
                    + unit + ": expected " + layout);
        }
        if (size > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException(what + " file " + file + " is larger than 2 GiB; split it");
        }
        try {
            return ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new UncheckedIOException(what + " file " + file + " cannot be read: " + e.getMessage(), e);
        }
    }
}
