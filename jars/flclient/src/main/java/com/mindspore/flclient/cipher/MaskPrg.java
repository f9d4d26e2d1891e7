package com.mindspore.flclient.cipher;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;

import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * The mask generator: AES-256-CTR (zero initial counter block) keystream read as little-endian
 * 64-bit ring elements, keyed by HKDF-SHA256(seed, info = label ‖ iteration as 4 big-endian bytes).
 * The server's {@code pyflclient.wire.secagg.prg} gives the same elements from the same seed. The
 * keystream is produced in blocks and added or subtracted in place: a device never holds a mask.
 */
public final class MaskPrg {
    private static final int BLOCK_ELEMENTS = 4096;

    private MaskPrg() {
    }

    /** HKDF-SHA256 (RFC 5869) with an all-zero salt, one 32-byte output block. */
    public static byte[] hkdf(byte[] secret, byte[] info) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(new byte[32], "HmacSHA256"));
            byte[] prk = mac.doFinal(secret);
            mac.init(new SecretKeySpec(prk, "HmacSHA256"));
            mac.update(info);
            mac.update((byte) 1);
            return mac.doFinal();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 is not available: " + e, e);
        }
    }

    /** info of a mask: the label's UTF-8 bytes, then the iteration as 4 big-endian bytes. */
    static byte[] info(String label, int iteration) {
        byte[] l = label.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(l.length + 4).put(l).putInt(iteration).array();
    }

    /** {@code into[i] += sign · PRG(seed)[i]} for every i (wrapping: the ring Z_2^64). */
    public static void addMask(byte[] seed, String label, int iteration, int sign, long[] into) {
        Cipher aes;
        try {
            aes = Cipher.getInstance("AES/CTR/NoPadding");
            aes.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(hkdf(seed, info(label, iteration)), "AES"),
                    new IvParameterSpec(new byte[16]));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES/CTR is not available: " + e, e);
        }
        byte[] zeros = new byte[BLOCK_ELEMENTS * 8];
        byte[] stream = new byte[zeros.length];
        ByteBuffer view = ByteBuffer.wrap(stream).order(ByteOrder.LITTLE_ENDIAN);
        for (int at = 0; at < into.length; at += BLOCK_ELEMENTS) {
            int n = Math.min(BLOCK_ELEMENTS, into.length - at);
            try {
                aes.update(zeros, 0, n * 8, stream, 0);
            } catch (GeneralSecurityException e) {
                throw new IllegalStateException(e);
            }
            for (int i = 0; i < n; i++) {
                long m = view.getLong(i * 8);
                into[at + i] += sign > 0 ? m : -m;
            }
        }
    }
}
