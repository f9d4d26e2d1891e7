package com.mindspore.flclient.cipher;

import com.mindspore.flclient.runtime.schema.SecureAggregationParameters;

import java.math.BigInteger;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * One device's side of PW_ENCRYPT for one iteration (docs/secure-aggregation.md), without I/O: its
 * two X25519 key pairs (c: to seal shares, s: to agree pairwise masks) and self-mask seed, the public
 * keys of the devices that exchanged keys (U1), the shares it holds for the devices that shared
 * (U2). It lives from exchangeKeys to reconstructSecrets and is dropped with the round. Masks are
 * generated into the upload ({@link #mask}), one peer at a time, never held.
 */
public final class PairwiseMasker {
    /** A share to send: the holder (or owner), the Shamir point, the bytes. */
    public static final class Share {
        public final String flId;
        public final int index;
        public final byte[] bytes;

        public Share(String flId, int index, byte[] bytes) {
            this.flId = flId;
            this.index = index;
            this.bytes = bytes;
        }
    }

    private final String flId;
    private final int iteration;
    private final SecureRandom random;
    private final X25519Keys.Raw c;
    private final X25519Keys.Raw s;
    private final byte[] seed;
    /** U1, sorted by fl_id: fl_id → {c_pk, s_pk}. */
    private final TreeMap<String, byte[][]> peers = new TreeMap<>();
    /** owner → {b share, s-key share} this device holds (U2). */
    private final TreeMap<String, byte[][]> held = new TreeMap<>();
    private int point;

    public PairwiseMasker(String flId, int iteration, SecureRandom random) {
        this.flId = flId;
        this.iteration = iteration;
        this.random = random;
        this.c = X25519Keys.generate();
        this.s = X25519Keys.generate();
        this.seed = new byte[SecureAggregationParameters.SECRET_BYTES];
        random.nextBytes(seed);
    }

    public byte[] cPublicKey() {
        return c.publicKey;
    }

    public byte[] sPublicKey() {
        return s.publicKey;
    }

    public int iteration() {
        return iteration;
    }

    /** The public keys of U1 (getKeys); IllegalArgumentException when a key has the wrong length or this device is missing. */
    public void setPeers(Map<String, byte[][]> keys) {
        for (Map.Entry<String, byte[][]> e : keys.entrySet()) {
            for (byte[] k : e.getValue()) {
                if (k == null || k.length != SecureAggregationParameters.PUBLIC_KEY_BYTES) {
                    throw new IllegalArgumentException("getKeys: a public key of " + e.getKey() + " is not "
                            + SecureAggregationParameters.PUBLIC_KEY_BYTES + " bytes");
                }
            }
        }
        if (!keys.containsKey(flId) || !Arrays.equals(keys.get(flId)[1], s.publicKey)) {
            throw new IllegalArgumentException("getKeys: this device's own keys are not in the list");
        }
        peers.clear();
        peers.putAll(keys);
        point = 1 + new ArrayList<>(peers.keySet()).indexOf(flId);
    }

    /** One sealed share pair for each device of U1 (itself included): commitments ‖ sealed(b share ‖ s-key share). */
    public List<Share> shares(int t) {
        int n = peers.size();
        BigInteger[] b = Shamir.split(Shamir.fromBytes(seed), t, n, random);
        BigInteger[] sk = Shamir.split(Shamir.fromBytes(s.privateKey), t, n, random);
        List<Share> out = new ArrayList<>(n);
        int x = 0;
        for (Map.Entry<String, byte[][]> holder : peers.entrySet()) {
            byte[] bs = Shamir.toBytes(b[x]);
            byte[] ss = Shamir.toBytes(sk[x]);
            byte[] plain = concat(bs, ss);
            byte[] sealed = ShareSeal.seal(ShareSeal.key(c.privateKey, holder.getValue()[0]), plain,
                    ShareSeal.aad(flId, holder.getKey(), iteration), random);
            out.add(new Share(holder.getKey(), x + 1, concat(concat(ShareSeal.commitment(bs), ShareSeal.commitment(ss)), sealed)));
            x++;
        }
        return out;
    }

    /** Opens the shares the devices of U2 sealed for this one (getSecrets). */
    public void receive(Collection<Share> sealed) {
        held.clear();
        int n = SecureAggregationParameters.SHARE_BYTES;
        for (Share share : sealed) {
            byte[][] keys = peers.get(share.flId);
            if (keys == null) {
                throw new IllegalArgumentException("getSecrets: a share of " + share.flId + ", which sent no keys");
            }
            byte[] plain = ShareSeal.open(ShareSeal.key(c.privateKey, keys[0]), share.bytes,
                    ShareSeal.aad(share.flId, flId, iteration));
            if (plain.length != 2 * n) {
                throw new IllegalArgumentException("getSecrets: the share of " + share.flId + " is " + plain.length + " bytes");
            }
            held.put(share.flId, new byte[][] {Arrays.copyOfRange(plain, 0, n), Arrays.copyOfRange(plain, n, 2 * n)});
        }
        if (!held.containsKey(flId)) {
            throw new IllegalArgumentException("getSecrets: this device's own share is missing");
        }
    }

    /**
     * The masked upload: all weights in sorted name order, quantised into the ring, plus the self mask,
     * plus (minus) the pairwise mask with each other device of U2 whose fl_id is greater (smaller).
     */
    public long[] mask(Map<String, float[]> upload) {
        int count = 0;
        for (float[] w : upload.values()) {
            count += w.length;
        }
        long[] y = new long[count];
        int at = 0;
        for (float[] w : new TreeMap<>(upload).values()) {
            Ring.addQuantised(w, y, at);
            at += w.length;
        }
        MaskPrg.addMask(seed, SecureAggregationParameters.SELF_MASK_INFO, iteration, 1, y);
        for (String other : held.keySet()) {
            if (!other.equals(flId)) {
                byte[] pair = X25519Keys.agree(s.privateKey, peers.get(other)[1]);
                MaskPrg.addMask(pair, SecureAggregationParameters.PAIRWISE_MASK_INFO, iteration,
                        flId.compareTo(other) < 0 ? 1 : -1, y);
            }
        }
        return y;
    }

    /** For each device of U2: its self-mask share if it uploaded (in {@code uploaders}), else its s-key share. */
    public List<Share> reconstructShares(Collection<String> uploaders) {
        List<Share> out = new ArrayList<>(held.size());
        for (Map.Entry<String, byte[][]> e : held.entrySet()) {
            out.add(new Share(e.getKey(), point, e.getValue()[uploaders.contains(e.getKey()) ? 0 : 1]));
        }
        return out;
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
