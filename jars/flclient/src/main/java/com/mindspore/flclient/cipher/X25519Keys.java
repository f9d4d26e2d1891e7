package com.mindspore.flclient.cipher;

import com.mindspore.flclient.runtime.schema.SecureAggregationParameters;

import java.math.BigInteger;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.interfaces.XECPrivateKey;
import java.security.interfaces.XECPublicKey;
import java.security.spec.NamedParameterSpec;
import java.security.spec.XECPrivateKeySpec;
import java.security.spec.XECPublicKeySpec;

import javax.crypto.KeyAgreement;

/**
 * X25519 key pairs of the JCA ("XDH") in the raw 32-byte encodings of RFC 7748 that travel in
 * exchangeKeys (c_pk, s_pk) and that the server's {@code cryptography} package reads.
 */
public final class X25519Keys {
    /** A key pair as raw bytes. */
    public static final class Raw {
        public final byte[] privateKey;
        public final byte[] publicKey;

        Raw(byte[] privateKey, byte[] publicKey) {
            this.privateKey = privateKey;
            this.publicKey = publicKey;
        }
    }

    private X25519Keys() {
    }

    public static Raw generate() {
        try {
            KeyPair kp = KeyPairGenerator.getInstance("X25519").generateKeyPair();
            byte[] sk = ((XECPrivateKey) kp.getPrivate()).getScalar()
                    .orElseThrow(() -> new IllegalStateException("the X25519 private key hides its scalar"));
            return new Raw(sk, encodeU(((XECPublicKey) kp.getPublic()).getU()));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("X25519 is not available: " + e, e);
        }
    }

    /** The X25519 shared secret of a raw private key and a raw public key (32 bytes each). */
    public static byte[] agree(byte[] privateKey, byte[] publicKey) {
        int n = SecureAggregationParameters.PUBLIC_KEY_BYTES;
        if (privateKey.length != n || publicKey.length != n) {
            throw new IllegalArgumentException("X25519 keys are " + n + " bytes, got " + privateKey.length + " and "
                    + publicKey.length);
        }
        try {
            KeyFactory kf = KeyFactory.getInstance("XDH");
            PrivateKey sk = kf.generatePrivate(new XECPrivateKeySpec(NamedParameterSpec.X25519, privateKey));
            PublicKey pk = kf.generatePublic(new XECPublicKeySpec(NamedParameterSpec.X25519, decodeU(publicKey)));
            KeyAgreement ka = KeyAgreement.getInstance("XDH");
            ka.init(sk);
            ka.doPhase(pk, true);
            return ka.generateSecret();
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException("X25519 key agreement failed: " + e.getMessage(), e);
        }
    }

    /** RFC 7748: the u-coordinate as 32 little-endian bytes. */
    static byte[] encodeU(BigInteger u) {
        byte[] big = u.toByteArray();
        byte[] out = new byte[32];
        for (int i = 0; i < out.length && i < big.length; i++) {
            out[i] = big[big.length - 1 - i];
        }
        return out;
    }

    /** RFC 7748: 32 little-endian bytes, the top bit masked, as the u-coordinate. */
    static BigInteger decodeU(byte[] raw) {
        byte[] big = new byte[raw.length];
        for (int i = 0; i < raw.length; i++) {
            big[i] = raw[raw.length - 1 - i];
        }
        big[0] &= 0x7f;
        return new BigInteger(1, big);
    }
}
