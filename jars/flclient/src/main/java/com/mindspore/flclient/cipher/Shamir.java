package com.mindspore.flclient.cipher;

import com.mindspore.flclient.runtime.schema.SecureAggregationParameters;

import java.math.BigInteger;
import java.security.SecureRandom;
import java.util.Map;

/**
 * Shamir secret sharing over GF(p), p = the prime of schema/secure_aggregation.json (2^521 − 1): a
 * secret is f(0) of a random polynomial of degree t − 1, a share is (x, f(x)) for x = 1..n. The
 * server rebuilds a secret from any t shares (pyflclient.wire.secagg.combine); this side only
 * splits, and combines in its tests.
 */
public final class Shamir {
    /** The field's prime. */
    public static final BigInteger PRIME = new BigInteger(SecureAggregationParameters.PRIME_HEX, 16);

    private Shamir() {
    }

    /** f(1..n) of a random polynomial of degree t − 1 with f(0) = secret; index i holds f(i + 1). */
    public static BigInteger[] split(BigInteger secret, int t, int n, SecureRandom random) {
        if (secret.signum() < 0 || secret.compareTo(PRIME) >= 0) {
            throw new IllegalArgumentException("the secret must be in [0, prime)");
        }
        if (t < 1 || t > n) {
            throw new IllegalArgumentException("threshold " + t + " must be in 1.." + n);
        }
        BigInteger[] coefficients = new BigInteger[t];
        coefficients[0] = secret;
        for (int i = 1; i < t; i++) {
            coefficients[i] = new BigInteger(PRIME.bitLength() + 64, random).mod(PRIME);
        }
        BigInteger[] shares = new BigInteger[n];
        for (int x = 1; x <= n; x++) {
            BigInteger y = BigInteger.ZERO;
            BigInteger bx = BigInteger.valueOf(x);
            for (int i = t - 1; i >= 0; i--) {
                y = y.multiply(bx).add(coefficients[i]).mod(PRIME);
            }
            shares[x - 1] = y;
        }
        return shares;
    }

    /** f(0) of the polynomial through the points x → y (Lagrange interpolation). */
    public static BigInteger combine(Map<Integer, BigInteger> points) {
        BigInteger secret = BigInteger.ZERO;
        for (Map.Entry<Integer, BigInteger> i : points.entrySet()) {
            BigInteger num = BigInteger.ONE;
            BigInteger den = BigInteger.ONE;
            BigInteger xi = BigInteger.valueOf(i.getKey());
            for (Integer j : points.keySet()) {
                if (!j.equals(i.getKey())) {
                    BigInteger xj = BigInteger.valueOf(j);
                    num = num.multiply(xj).mod(PRIME);
                    den = den.multiply(xj.subtract(xi)).mod(PRIME);
                }
            }
            secret = secret.add(i.getValue().multiply(num).multiply(den.modInverse(PRIME))).mod(PRIME);
        }
        return secret;
    }

    /** A share as the fixed-length big-endian bytes of the wire (share_bytes). */
    public static byte[] toBytes(BigInteger value) {
        byte[] raw = value.toByteArray();
        byte[] out = new byte[SecureAggregationParameters.SHARE_BYTES];
        int copy = Math.min(raw.length, out.length);
        System.arraycopy(raw, raw.length - copy, out, out.length - copy, copy);
        return out;
    }

    /** A secret of secret_bytes big-endian bytes as a field element. */
    public static BigInteger fromBytes(byte[] bytes) {
        return new BigInteger(1, bytes);
    }
}
