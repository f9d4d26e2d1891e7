package com.mindspore.flclient.cipher;

import com.mindspore.flclient.runtime.schema.SecureAggregationParameters;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;

import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Shares travel sealed for their holder: AES-256-GCM under HKDF(X25519 of the two devices' c keys),
 * nonce ‖ ciphertext ‖ tag, bound (as associated data) to owner, holder and iteration. The owner
 * also publishes a SHA-256 commitment of each share, against which the server checks the share
 * the holder returns in reconstructSecrets.
 */
public final class ShareSeal {
    private static final int TAG_BITS = 128;

    private ShareSeal() {
    }

    public static byte[] key(byte[] cPrivate, byte[] cPublicOther) {
        return MaskPrg.hkdf(X25519Keys.agree(cPrivate, cPublicOther),
                SecureAggregationParameters.SHARE_KEY_INFO.getBytes(StandardCharsets.UTF_8));
    }

    public static byte[] aad(String owner, String holder, int iteration) {
        return (owner + "\n" + holder + "\n" + iteration).getBytes(StandardCharsets.UTF_8);
    }

    public static byte[] seal(byte[] key, byte[] plaintext, byte[] aad, SecureRandom random) {
        byte[] nonce = new byte[SecureAggregationParameters.GCM_NONCE_BYTES];
        random.nextBytes(nonce);
        try {
            Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
            gcm.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(key, "AES"), new GCMParameterSpec(TAG_BITS, nonce));
            gcm.updateAAD(aad);
            byte[] sealed = gcm.doFinal(plaintext);
            byte[] out = new byte[nonce.length + sealed.length];
            System.arraycopy(nonce, 0, out, 0, nonce.length);
            System.arraycopy(sealed, 0, out, nonce.length, sealed.length);
            return out;
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES/GCM is not available: " + e, e);
        }
    }

    /** The plaintext, or IllegalArgumentException when the share was not sealed for this key and binding. */
    public static byte[] open(byte[] key, byte[] sealed, byte[] aad) {
        int n = SecureAggregationParameters.GCM_NONCE_BYTES;
        if (sealed.length < n + TAG_BITS / 8) {
            throw new IllegalArgumentException("a sealed share of " + sealed.length + " bytes is too short");
        }
        try {
            Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
            gcm.init(Cipher.DECRYPT_MODE, new SecretKeySpec(key, "AES"), new GCMParameterSpec(TAG_BITS, sealed, 0, n));
            gcm.updateAAD(aad);
            return gcm.doFinal(sealed, n, sealed.length - n);
        } catch (javax.crypto.AEADBadTagException e) {
            throw new IllegalArgumentException("a share does not decrypt (wrong key or tampered)");
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES/GCM is not available: " + e, e);
        }
    }

    public static byte[] commitment(byte[] share) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(share);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException(e);
        }
    }
}
