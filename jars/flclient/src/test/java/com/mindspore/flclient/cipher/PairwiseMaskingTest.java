package com.mindspore.flclient.cipher;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigInteger;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.stream.IntStream;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Properties of the device's PW_ENCRYPT arithmetic, each over 40 random cases (seeded: a failure names
 * its seed). The server's side of the same arithmetic is tested in tests/test_secagg_math.py, and the
 * two are checked against each other in tests/test_secagg_java_python.py.
 */
class PairwiseMaskingTest {
    static Stream<Long> seeds() {
        return IntStream.range(0, 40).mapToObj(i -> 1000L + i);
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void anyTOfNSharesGiveBackTheSecretAndTMinusOneDoNot(long seed) {
        Random r = new Random(seed);
        int n = 1 + r.nextInt(10);
        int t = 1 + r.nextInt(n);
        BigInteger secret = new BigInteger(256, r);
        BigInteger[] shares = Shamir.split(secret, t, n, new SecureRandom());
        List<Integer> xs = new ArrayList<>();
        for (int x = 1; x <= n; x++) {
            xs.add(x);
        }
        Collections.shuffle(xs, r);
        Map<Integer, BigInteger> points = new HashMap<>();
        for (int x : xs.subList(0, t)) {
            points.put(x, shares[x - 1]);
        }
        assertEquals(secret, Shamir.combine(points));
        if (t > 1) {
            points.remove(xs.get(0));
            assertNotEquals(secret, Shamir.combine(points));
        }
        assertEquals(secret, Shamir.fromBytes(Shamir.toBytes(secret)));
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void pairwiseMasksCancelInTheSumOfTheMaskedUploads(long seed) {
        Random r = new Random(seed);
        int devices = 2 + r.nextInt(4);
        int values = 1 + r.nextInt(300);
        List<X25519Keys.Raw> keys = new ArrayList<>();
        for (int i = 0; i < devices; i++) {
            keys.add(X25519Keys.generate());
        }
        long[] sum = new long[values];
        double[] plain = new double[values];
        for (int i = 0; i < devices; i++) {
            float[] x = new float[values];
            for (int v = 0; v < values; v++) {
                x[v] = (float) (r.nextGaussian() * 1000);
                plain[v] += x[v];
            }
            long[] y = new long[values];
            Ring.addQuantised(x, y, 0);
            for (int j = 0; j < devices; j++) {
                if (j != i) {
                    byte[] pair = X25519Keys.agree(keys.get(i).privateKey, keys.get(j).publicKey);
                    MaskPrg.addMask(pair, "pyflclient/pw-mask", (int) seed, i < j ? 1 : -1, y);
                }
            }
            for (int v = 0; v < values; v++) {
                sum[v] += y[v];
            }
        }
        for (int v = 0; v < values; v++) {
            assertEquals(plain[v], Ring.decode(sum[v]), devices / Ring.SCALE + Math.abs(plain[v]) * 1e-9);
        }
    }

    @Test
    void valuesBeyondTheRingsRangeAreRefused() {
        long[] y = new long[1];
        assertThrows(IllegalArgumentException.class, () -> Ring.addQuantised(new float[] {Float.NaN}, y, 0));
        assertThrows(IllegalArgumentException.class, () -> Ring.addQuantised(new float[] {1e12f}, y, 0));
    }

    @Test
    void keysOfTheWrongLengthAreRefused() {
        X25519Keys.Raw k = X25519Keys.generate();
        assertThrows(IllegalArgumentException.class, () -> X25519Keys.agree(k.privateKey, new byte[31]));
    }

    @ParameterizedTest(name = "seed {0}")
    @MethodSource("seeds")
    void aSealedShareOpensOnlyForItsHolderAndBinding(long seed) {
        X25519Keys.Raw a = X25519Keys.generate();
        X25519Keys.Raw b = X25519Keys.generate();
        byte[] key = ShareSeal.key(a.privateKey, b.publicKey);
        assertArrayEquals(key, ShareSeal.key(b.privateKey, a.publicKey));
        byte[] plain = new byte[132];
        new Random(seed).nextBytes(plain);
        byte[] sealed = ShareSeal.seal(key, plain, ShareSeal.aad("a", "b", 1), new SecureRandom());
        assertArrayEquals(plain, ShareSeal.open(key, sealed, ShareSeal.aad("a", "b", 1)));
        assertThrows(IllegalArgumentException.class, () -> ShareSeal.open(key, sealed, ShareSeal.aad("a", "b", 2)));
        sealed[sealed.length - 1 - (int) (seed % 40)] ^= 1;
        assertThrows(IllegalArgumentException.class, () -> ShareSeal.open(key, sealed, ShareSeal.aad("a", "b", 1)));
    }

    @Test
    void threeMaskersUploadsSumToThePlainSumOnceTheSelfMasksAreRemoved() {
        SecureRandom random = new SecureRandom();
        List<String> ids = List.of("a", "b", "c");
        Map<String, PairwiseMasker> maskers = new LinkedHashMap<>();
        for (String id : ids) {
            maskers.put(id, new PairwiseMasker(id, 3, random));
        }
        Map<String, byte[][]> keys = new TreeMap<>();
        maskers.forEach((id, m) -> keys.put(id, new byte[][] {m.cPublicKey(), m.sPublicKey()}));
        maskers.values().forEach(m -> m.setPeers(keys));
        Map<String, List<PairwiseMasker.Share>> sent = new HashMap<>();
        maskers.forEach((id, m) -> sent.put(id, m.shares(2)));
        for (String holder : ids) {
            List<PairwiseMasker.Share> mine = new ArrayList<>();
            for (String owner : ids) {
                for (PairwiseMasker.Share s : sent.get(owner)) {
                    if (s.flId.equals(holder)) {
                        mine.add(new PairwiseMasker.Share(owner, s.index,
                                java.util.Arrays.copyOfRange(s.bytes, 64, s.bytes.length)));
                    }
                }
            }
            maskers.get(holder).receive(mine);
        }
        float[] x = {1.5f, -2.25f, 1000f};
        long[] sum = new long[3];
        for (PairwiseMasker m : maskers.values()) {
            long[] y = m.mask(Map.of("w", x));
            for (int i = 0; i < 3; i++) {
                sum[i] += y[i];
            }
        }
        // every device uploaded: the server rebuilds each self-mask seed from two returned shares
        for (String owner : ids) {
            Map<Integer, BigInteger> points = new HashMap<>();
            for (String holder : ids.subList(0, 2)) {
                for (PairwiseMasker.Share s : maskers.get(holder).reconstructShares(ids)) {
                    if (s.flId.equals(owner)) {
                        points.put(s.index, Shamir.fromBytes(s.bytes));
                    }
                }
            }
            byte[] seed = Shamir.toBytes(Shamir.combine(points));
            MaskPrg.addMask(java.util.Arrays.copyOfRange(seed, seed.length - 32, seed.length), "pyflclient/self-mask",
                    3, -1, sum);
        }
        for (int i = 0; i < 3; i++) {
            assertEquals(3 * x[i], Ring.decode(sum[i]), 1e-6);
        }
    }

    @Test
    void dpClipsTheUpdateToTheBoundAndSigmaFollowsTheGaussianMechanism() {
        Map<String, float[]> trained = new HashMap<>(Map.of("w", new float[] {3f, 4f}));
        Map<String, float[]> received = Map.of("w", new float[] {0f, 0f});
        double norm = DpNoise.apply(trained, received, 1.0, Double.POSITIVE_INFINITY, 0.01, new Random(1));
        assertEquals(5.0, norm, 1e-9);
        assertArrayEquals(new float[] {0.6f, 0.8f}, trained.get("w"), 1e-6f);
        assertEquals(Math.sqrt(2 * Math.log(125)) / 10, DpNoise.sigma(1.0, 10, 0.01), 1e-12);
        assertTrue(DpNoise.sigma(1.0, Double.POSITIVE_INFINITY, 0.01) == 0.0);
        Map<String, float[]> diverged = new HashMap<>(Map.of("w", new float[] {Float.NaN, 1f}));
        assertThrows(IllegalArgumentException.class, () -> DpNoise.apply(diverged, received, 1.0, 1.0, 0.01, new Random(1)));
    }
}
