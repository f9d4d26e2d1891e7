package com.mindspore.flclient;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509CRL;
import java.security.cert.X509Certificate;
import java.security.interfaces.RSAPrivateCrtKey;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.PSSParameterSpec;
import java.util.Base64;
import java.util.Date;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

import mindspore.schema.RequestFLJob;
import mindspore.schema.RequestUpdateModel;

/**
 * r1.6's device authentication (FLParameter {@code pkiVerify}), with the JDK's JCA only: the device's RSA key
 * and its four certificates from a folder ({@code pkiPath}, made by {@code pyflclient pki issue}: key.pem,
 * key_attestation.pem, equip_cert.pem, equip_ca_cert.pem, root_cert.pem). It signs with RSASSA-PSS (SHA-256,
 * MGF1-SHA-256, 32-byte salt):
 * <ul>
 * <li>startFLJob: {@code sign_data} = sign(fl_id + " " + timestamp), with the four certificates beside it;</li>
 * <li>updateModel: {@code signature} = sign(timestamp + iteration).</li>
 * </ul>
 * The request builders ({@link FLMessages}) reserve the fields (a timestamp and a signature of the key's length);
 * {@link FLCommunication#send} calls {@link #resign} before every attempt, so a retried request carries a new
 * timestamp and signature (the server accepts each signature once) without rebuilding its FlatBuffer. Signers are
 * registered per fl_id, so the simulated devices of one JVM each sign with their own key.
 */
final class DeviceSigner {
    static final String[] FILES = {"key.pem", "key_attestation.pem", "equip_cert.pem", "equip_ca_cert.pem",
        "root_cert.pem"};
    private static final Map<String, DeviceSigner> BY_FL_ID = new ConcurrentHashMap<>();

    private final PrivateKey key;
    final String keyAttestation;
    final String equipCert;
    final String equipCaCert;
    final String rootCert;
    /** Bytes of a signature: the RSA modulus' length. */
    final int signatureBytes;

    private DeviceSigner(PrivateKey key, int signatureBytes, String[] pems) {
        this.key = key;
        this.signatureBytes = signatureBytes;
        this.keyAttestation = pems[0];
        this.equipCert = pems[1];
        this.equipCaCert = pems[2];
        this.rootCert = pems[3];
    }

    /**
     * The signer of a {@code pki issue} folder; checks the certificates are valid now and for {@code validIntervalMs}
     * more, and that equip_cert is not in {@code crlPath} (when given), so a device fails at start with the reason
     * instead of being refused by the server.
     */
    static DeviceSigner load(String folder, String crlPath, long validIntervalMs) {
        if (folder == null) {
            throw new IllegalArgumentException("FLParameter.pkiPath = null: pkiVerify needs the folder of the device's "
                    + "key and certificates (pyflclient pki issue --device ID)");
        }
        Path dir = Path.of(folder);
        try {
            String keyPem = Files.readString(dir.resolve(FILES[0]), StandardCharsets.US_ASCII);
            byte[] der = Base64.getMimeDecoder().decode(keyPem.replaceAll("-----[A-Z ]+-----", ""));
            PrivateKey key = KeyFactory.getInstance("RSA").generatePrivate(new PKCS8EncodedKeySpec(der));
            int bytes = (((RSAPrivateCrtKey) key).getModulus().bitLength() + 7) / 8;
            String[] pems = new String[4];
            CertificateFactory cf = CertificateFactory.getInstance("X.509");
            for (int i = 0; i < 4; i++) {
                Path file = dir.resolve(FILES[i + 1]);
                pems[i] = Files.readString(file, StandardCharsets.US_ASCII);
                X509Certificate cert;
                try (InputStream in = Files.newInputStream(file)) {
                    cert = (X509Certificate) cf.generateCertificate(in);
                }
                try {
                    cert.checkValidity(new Date());
                    cert.checkValidity(new Date(System.currentTimeMillis() + validIntervalMs));
                } catch (GeneralSecurityException e) {
                    throw new IllegalArgumentException("FLParameter.pkiPath = " + folder + ": " + FILES[i + 1]
                            + " is not valid now or within validInterval (" + validIntervalMs + " ms): " + e.getMessage()
                            + "; issue a new one (pyflclient pki issue)");
                }
                if (i == 1 && crlPath != null) {
                    X509CRL crl;
                    try (InputStream in = Files.newInputStream(Path.of(crlPath))) {
                        crl = (X509CRL) cf.generateCRL(in);
                    }
                    if (crl.isRevoked(cert)) {
                        throw new IllegalArgumentException("FLParameter.equipCrlPath = " + crlPath + ": this device's "
                                + "certificate (" + folder + "/equip_cert.pem) is revoked; the server refuses it");
                    }
                }
            }
            return new DeviceSigner(key, bytes, pems);
        } catch (IOException e) {
            throw new IllegalArgumentException("FLParameter.pkiPath = " + folder + ": cannot read " + e.getMessage()
                    + " (expected " + String.join(", ", FILES) + ")", e);
        } catch (GeneralSecurityException | ClassCastException | IllegalArgumentException e) {
            if (e instanceof IllegalArgumentException && e.getMessage() != null && e.getMessage().startsWith("FLParameter")) {
                throw (IllegalArgumentException) e;
            }
            throw new IllegalArgumentException("FLParameter.pkiPath = " + folder + ": not an RSA PKCS#8 key and PEM "
                    + "certificates (" + e + ")", e);
        }
    }

    /** Makes {@code signer} the one of {@code flId} in this JVM (the request builders reserve its fields). */
    static void register(String flId, DeviceSigner signer) {
        BY_FL_ID.put(flId, signer);
    }

    /** The signer of {@code flId}, or null (no pkiVerify). */
    static DeviceSigner of(String flId) {
        return flId == null ? null : BY_FL_ID.get(flId);
    }

    byte[] sign(byte[] message) {
        try {
            Signature s = Signature.getInstance("RSASSA-PSS");
            s.setParameter(new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1));
            s.initSign(key);
            s.update(message);
            return s.sign();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("RSASSA-PSS signing failed: " + e.getMessage(), e);
        }
    }

    /**
     * Puts a fresh timestamp and its signature into a startFLJob or updateModel body built with the fields
     * reserved (same lengths: a 13-digit ms timestamp, a signature of {@link #signatureBytes}). Bodies of other
     * rounds, or without the reserved fields, are left as they are.
     */
    void resign(String round, byte[] body) {
        ByteBuffer bb = ByteBuffer.wrap(body);
        ByteBuffer ts;
        ByteBuffer sig;
        byte[] message;
        String now = FLMessages.now();
        if ("startFLJob".equals(round)) {
            RequestFLJob r = RequestFLJob.getRootAsRequestFLJob(bb);
            ts = r.timestampAsByteBuffer();
            sig = r.signDataAsByteBuffer();
            message = (r.flId() + " " + now).getBytes(StandardCharsets.UTF_8);
        } else if ("updateModel".equals(round)) {
            RequestUpdateModel r = RequestUpdateModel.getRootAsRequestUpdateModel(bb);
            ts = r.timestampAsByteBuffer();
            sig = r.signatureAsByteBuffer();
            message = (now + r.iteration()).getBytes(StandardCharsets.UTF_8);
        } else {
            return;
        }
        if (ts == null || sig == null || ts.remaining() != now.length() || sig.remaining() != signatureBytes) {
            return;
        }
        byte[] signature = sign(message);
        ts.duplicate().put(now.getBytes(StandardCharsets.US_ASCII));
        sig.duplicate().put(signature);
    }
}
