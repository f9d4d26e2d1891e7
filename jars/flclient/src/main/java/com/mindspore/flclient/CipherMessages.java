package com.mindspore.flclient;

import com.google.flatbuffers.FlatBufferBuilder;
import com.mindspore.flclient.cipher.PairwiseMasker;
import com.mindspore.flclient.runtime.fb.FlatBufferVerifier;
import com.mindspore.flclient.runtime.schema.SchemaLayouts;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;

import mindspore.schema.ClientPublicKeys;
import mindspore.schema.ClientShare;
import mindspore.schema.GetClientList;
import mindspore.schema.GetExchangeKeys;
import mindspore.schema.GetShareSecrets;
import mindspore.schema.ReconstructSecret;
import mindspore.schema.RequestExchangeKeys;
import mindspore.schema.RequestShareSecrets;
import mindspore.schema.ResponseExchangeKeys;
import mindspore.schema.ResponseShareSecrets;
import mindspore.schema.ReturnClientList;
import mindspore.schema.ReturnExchangeKeys;
import mindspore.schema.ReturnShareSecrets;
import mindspore.schema.SendReconstructSecret;

/**
 * The messages of PW_ENCRYPT's six cipher rounds (schema/cipher.fbs, r1.6's tables), built and read
 * like {@link FLMessages}: every reply is verified against its table before it is read. Payloads go
 * to {@link FLMessages.Response#cipher}: fl_id → {c_pk, s_pk} (getKeys), a list of
 * {@link PairwiseMasker.Share} (getSecrets) or a list of fl_ids (getClientList).
 */
final class CipherMessages {
    private static final FlatBufferVerifier EXCHANGE_KEYS = FlatBufferVerifier.of(SchemaLayouts.RESPONSE_EXCHANGE_KEYS);
    private static final FlatBufferVerifier GET_KEYS = FlatBufferVerifier.of(SchemaLayouts.RETURN_EXCHANGE_KEYS);
    private static final FlatBufferVerifier SHARE_SECRETS = FlatBufferVerifier.of(SchemaLayouts.RESPONSE_SHARE_SECRETS);
    private static final FlatBufferVerifier GET_SECRETS = FlatBufferVerifier.of(SchemaLayouts.RETURN_SHARE_SECRETS);
    private static final FlatBufferVerifier CLIENT_LIST = FlatBufferVerifier.of(SchemaLayouts.RETURN_CLIENT_LIST);
    private static final FlatBufferVerifier RECONSTRUCT = FlatBufferVerifier.of(SchemaLayouts.RECONSTRUCT_SECRET);

    private CipherMessages() {
    }

    static byte[] exchangeKeys(String flId, int iteration, byte[] cPk, byte[] sPk) {
        FlatBufferBuilder b = new FlatBufferBuilder(256);
        int id = b.createString(flId);
        int c = RequestExchangeKeys.createCPkVector(b, cPk);
        int s = RequestExchangeKeys.createSPkVector(b, sPk);
        int ts = b.createString(FLMessages.now());
        RequestExchangeKeys.startRequestExchangeKeys(b);
        RequestExchangeKeys.addFlId(b, id);
        RequestExchangeKeys.addCPk(b, c);
        RequestExchangeKeys.addSPk(b, s);
        RequestExchangeKeys.addIteration(b, iteration);
        RequestExchangeKeys.addTimestamp(b, ts);
        b.finish(RequestExchangeKeys.endRequestExchangeKeys(b));
        return b.sizedByteArray();
    }

    /** The three get rounds' requests: fl_id, iteration and timestamp, nothing else. */
    @FunctionalInterface
    private interface GetRequest {
        int create(FlatBufferBuilder b, int flId, int timestamp);
    }

    private static byte[] getRequest(String flId, GetRequest table) {
        FlatBufferBuilder b = new FlatBufferBuilder(128);
        int id = b.createString(flId);
        int ts = b.createString(FLMessages.now());
        b.finish(table.create(b, id, ts));
        return b.sizedByteArray();
    }

    static byte[] getKeys(String flId, int iteration) {
        return getRequest(flId, (b, id, ts) -> GetExchangeKeys.createGetExchangeKeys(b, id, iteration, ts, 0));
    }

    static byte[] getSecrets(String flId, int iteration) {
        return getRequest(flId, (b, id, ts) -> GetShareSecrets.createGetShareSecrets(b, id, iteration, ts, 0));
    }

    static byte[] getClientList(String flId, int iteration) {
        return getRequest(flId, (b, id, ts) -> GetClientList.createGetClientList(b, id, iteration, ts, 0));
    }

    static byte[] shareSecrets(String flId, int iteration, List<PairwiseMasker.Share> shares) {
        FlatBufferBuilder b = new FlatBufferBuilder(1024 + shares.size() * 300);
        int vector = RequestShareSecrets.createEncryptedSharesVector(b, shareTables(b, shares));
        int id = b.createString(flId);
        int ts = b.createString(FLMessages.now());
        b.finish(RequestShareSecrets.createRequestShareSecrets(b, id, vector, iteration, ts, 0));
        return b.sizedByteArray();
    }

    static byte[] reconstructSecrets(String flId, int iteration, List<PairwiseMasker.Share> shares) {
        FlatBufferBuilder b = new FlatBufferBuilder(1024 + shares.size() * 120);
        int vector = SendReconstructSecret.createReconstructSecretSharesVector(b, shareTables(b, shares));
        int id = b.createString(flId);
        int ts = b.createString(FLMessages.now());
        b.finish(SendReconstructSecret.createSendReconstructSecret(b, id, vector, iteration, ts, 0));
        return b.sizedByteArray();
    }

    private static int[] shareTables(FlatBufferBuilder b, List<PairwiseMasker.Share> shares) {
        int[] offsets = new int[shares.size()];
        for (int i = 0; i < offsets.length; i++) {
            PairwiseMasker.Share s = shares.get(i);
            int id = b.createString(s.flId);
            int data = ClientShare.createShareVector(b, s.bytes);
            offsets[i] = ClientShare.createClientShare(b, id, data, s.index);
        }
        return offsets;
    }

    static FLMessages.Response parseExchangeKeys(FLCommunication.Reply reply) {
        return parsed(reply, EXCHANGE_KEYS, (bb, r) -> {
            ResponseExchangeKeys m = ResponseExchangeKeys.getRootAsResponseExchangeKeys(bb);
            fill(r, m.retcode(), m.reason(), m.iteration(), m.nextReqTime());
        });
    }

    static FLMessages.Response parseShareSecrets(FLCommunication.Reply reply) {
        return parsed(reply, SHARE_SECRETS, (bb, r) -> {
            ResponseShareSecrets m = ResponseShareSecrets.getRootAsResponseShareSecrets(bb);
            fill(r, m.retcode(), m.reason(), m.iteration(), m.nextReqTime());
        });
    }

    static FLMessages.Response parseReconstructSecrets(FLCommunication.Reply reply) {
        return parsed(reply, RECONSTRUCT, (bb, r) -> {
            ReconstructSecret m = ReconstructSecret.getRootAsReconstructSecret(bb);
            fill(r, m.retcode(), m.reason(), m.iteration(), m.nextReqTime());
        });
    }

    static FLMessages.Response parseGetKeys(FLCommunication.Reply reply) {
        return parsed(reply, GET_KEYS, (bb, r) -> {
            ReturnExchangeKeys m = ReturnExchangeKeys.getRootAsReturnExchangeKeys(bb);
            fill(r, m.retcode(), null, m.iteration(), m.nextReqTime());
            Map<String, byte[][]> keys = new LinkedHashMap<>();
            for (int i = 0; i < m.remotePublickeysLength(); i++) {
                ClientPublicKeys k = m.remotePublickeys(i);
                keys.put(orEmpty(k.flId()), new byte[][] {bytes(k.cPkAsByteBuffer()), bytes(k.sPkAsByteBuffer())});
            }
            r.cipher = keys;
        });
    }

    static FLMessages.Response parseGetSecrets(FLCommunication.Reply reply) {
        return parsed(reply, GET_SECRETS, (bb, r) -> {
            ReturnShareSecrets m = ReturnShareSecrets.getRootAsReturnShareSecrets(bb);
            fill(r, m.retcode(), null, m.iteration(), m.nextReqTime());
            List<PairwiseMasker.Share> shares = new ArrayList<>();
            for (int i = 0; i < m.encryptedSharesLength(); i++) {
                ClientShare s = m.encryptedShares(i);
                shares.add(new PairwiseMasker.Share(orEmpty(s.flId()), s.index(), bytes(s.shareAsByteBuffer())));
            }
            r.cipher = shares;
        });
    }

    static FLMessages.Response parseClientList(FLCommunication.Reply reply) {
        return parsed(reply, CLIENT_LIST, (bb, r) -> {
            ReturnClientList m = ReturnClientList.getRootAsReturnClientList(bb);
            fill(r, m.retcode(), m.reason(), m.iteration(), m.nextReqTime());
            List<String> clients = new ArrayList<>();
            for (int i = 0; i < m.clientsLength(); i++) {
                clients.add(orEmpty(m.clients(i)));
            }
            r.cipher = clients;
        });
    }

    /** The reply, read by {@code read} once it is verified as a buffer of the verifier's table. */
    private static FLMessages.Response parsed(FLCommunication.Reply reply, FlatBufferVerifier verifier,
                                              BiConsumer<ByteBuffer, FLMessages.Response> read) {
        FLMessages.Response r = FLMessages.preParse(reply, verifier);
        if (r.kind == FLMessages.Kind.REPLY) {
            read.accept(ByteBuffer.wrap(reply.body).order(ByteOrder.LITTLE_ENDIAN), r);
        }
        return r;
    }

    private static void fill(FLMessages.Response r, int retcode, String reason, int iteration, String nextReqTime) {
        r.retcode = retcode;
        r.reason = orEmpty(reason);
        r.iteration = iteration;
        r.nextReqTime = orEmpty(nextReqTime);
    }

    private static byte[] bytes(ByteBuffer buffer) {
        if (buffer == null) {
            return new byte[0];
        }
        byte[] out = new byte[buffer.remaining()];
        buffer.get(out);
        return out;
    }

    private static String orEmpty(String s) {
        return s == null ? "" : s;
    }
}
