package com.mindspore.flclient;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** ELB port choice and HTTPS with a self-signed CA (certificates made by the JDK's keytool). */
class TransportTest {
    @TempDir
    static Path certs;

    private static final String PASS = "changeit";

    @TempDir
    Path tmp;

    private static void keytool(String... args) throws IOException, InterruptedException {
        List<String> cmd = new java.util.ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "keytool").toString());
        cmd.add("-J-XX:TieredStopAtLevel=1");
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).directory(certs.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        if (p.waitFor() != 0) {
            throw new IOException("keytool " + String.join(" ", args) + " failed: " + out);
        }
    }

    private static KeyStore load(String file) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(certs.resolve(file))) {
            ks.load(in, PASS.toCharArray());
        }
        return ks;
    }

    private static void writePem(Certificate c, String file) throws Exception {
        String b64 = Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII)).encodeToString(c.getEncoded());
        Files.writeString(certs.resolve(file), "-----BEGIN CERTIFICATE-----\n" + b64 + "\n-----END CERTIFICATE-----\n");
    }

    /** A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated self-signed certificate. */
    @BeforeAll
    static void makeCertificates() throws Exception {
        keytool("-genkeypair", "-alias", "ca", "-keyalg", "EC", "-dname", "CN=pyflclient test CA", "-ext", "bc:c",
                "-validity", "2", "-keystore", "ca.p12", "-storetype", "PKCS12", "-storepass", PASS);
        keytool("-genkeypair", "-alias", "server", "-keyalg", "EC", "-dname", "CN=127.0.0.1", "-validity", "2",
                "-keystore", "server.p12", "-storetype", "PKCS12", "-storepass", PASS);
        keytool("-certreq", "-alias", "server", "-keystore", "server.p12", "-storepass", PASS, "-file", "server.csr");
        keytool("-gencert", "-alias", "ca", "-keystore", "ca.p12", "-storepass", PASS, "-infile", "server.csr",
                "-outfile", "server.pem", "-ext", "SAN=ip:127.0.0.1", "-validity", "2", "-rfc");
        Certificate ca = load("ca.p12").getCertificate("ca");
        writePem(ca, "ca.pem");
        KeyStore server = load("server.p12");
        writePem(server.getCertificate("server"), "otherca.pem"); // self-signed, not the server's issuer
        Certificate signed;
        try (InputStream in = Files.newInputStream(certs.resolve("server.pem"))) {
            signed = CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
        server.setKeyEntry("server", server.getKey("server", PASS.toCharArray()), PASS.toCharArray(),
                new Certificate[] {signed, ca});
        serverKeys = server;
    }

    private static KeyStore serverKeys;

    private static SSLContext serverTls() throws Exception {
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(serverKeys, PASS.toCharArray());
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), null, null);
        return ctx;
    }

    private FLClientStatus runOverHttps(String caFile, String protocol) throws Exception {
        try (FakeServer server = new FakeServer(1, serverTls())) {
            Fixture.serveHappily(server, 1, 1);
            FLParameter p = new Fixture(tmp.resolve("c"), "c").parameter(server.url());
            p.setCertPath(certs.resolve(caFile).toString());
            p.setSslProtocol(protocol);
            return new SyncFLJob(p).flJobRun();
        }
    }

    @Test
    void httpsWithTheServersSelfSignedCaWorksOverTls12() throws Exception {
        assertEquals(FLClientStatus.SUCCESS, runOverHttps("ca.pem", "TLSv1.2"));
    }

    @Test
    void httpsWithTheServersSelfSignedCaWorksOverTls13() throws Exception {
        assertEquals(FLClientStatus.SUCCESS, runOverHttps("ca.pem", "TLSv1.3"));
    }

    @Test
    void httpsWithAnotherCaFailsAtOnceAndTheLogSaysWhy() throws Exception {
        long t0 = System.nanoTime();
        assertEquals(FLClientStatus.FAILED, runOverHttps("otherca.pem", "TLSv1.2"));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        String log = Files.readString(tmp.resolve("c").resolve("c").resolve("client.log"));
        assertTrue(ms < 3000, "a refused certificate is not retried for retryTimeout (5 s): took " + ms + " ms");
        assertTrue(log.contains("TLS handshake with https://127.0.0.1:"), log);
        assertTrue(log.contains("PKIX") && log.contains("check --cert_path"), log);
        assertEquals(1, log.split("TLS handshake with", -1).length - 1, "one attempt only: " + log);
        assertFalse(log.contains("unreachable"), log);
    }

    @Test
    void elbSendsEachRequestToOneOfServerNumConsecutivePorts() throws Exception {
        try (FakeServer server = new FakeServer(3, null)) {
            Fixture.serveHappily(server, 8, 1);
            FLParameter p = new Fixture(tmp.resolve("c"), "c").parameter(server.url());
            p.setUseElb(true);
            p.setServerNum(3);
            assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(p).flJobRun());
            Set<Integer> ports = new HashSet<>();
            server.allRequests().forEach(r -> ports.add(r.port));
            int first = server.firstPort();
            assertEquals(Set.of(first, first + 1, first + 2), ports, "24 requests should reach all 3 ports");
        }
    }

    @Test
    void withoutElbEveryRequestGoesToTheGivenPort() throws Exception {
        FLParameter p = new FLParameter();
        p.setDomainName("http://127.0.0.1:6666");
        p.setServerNum(4);
        FLCommunication comm = new FLCommunication(p, new StopSignal());
        for (int i = 0; i < 50; i++) {
            assertEquals(6666, comm.urlOf("startFLJob").getPort());
        }
        assertEquals("http://127.0.0.1:6666/startFLJob", comm.urlOf("startFLJob").toString());
    }

    @Test
    void plainHttpGoesThroughTheLeanClientUnlessFlclientHttpIsJdk() throws Exception {
        String before = System.getProperty(LeanHttpClient.PROPERTY);
        try (FakeServer server = new FakeServer()) {
            Fixture.serveHappily(server, 1, 1);
            System.clearProperty(LeanHttpClient.PROPERTY);
            assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(new Fixture(tmp.resolve("l"), "l").parameter(server.url())).flJobRun());
            Set<String> agents = new HashSet<>();
            server.allRequests().forEach(r -> agents.add(String.valueOf(r.userAgent)));
            assertEquals(Set.of("null"), agents, "the lean client sends no User-Agent");
            assertTrue(Thread.getAllStackTraces().keySet().stream().anyMatch(t -> t.getName().equals("fl-http-selector")));

            System.setProperty(LeanHttpClient.PROPERTY, LeanHttpClient.JDK);
            int seen = server.allRequests().size();
            assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(new Fixture(tmp.resolve("j"), "j").parameter(server.url())).flJobRun());
            List<FakeServer.Request> jdk = server.allRequests().subList(seen, server.allRequests().size());
            assertTrue(!jdk.isEmpty() && jdk.stream().allMatch(r -> String.valueOf(r.userAgent).startsWith("Java-http-client")),
                    "with -Dflclient.http=jdk every request is java.net.http's");
        } finally {
            if (before == null) {
                System.clearProperty(LeanHttpClient.PROPERTY);
            } else {
                System.setProperty(LeanHttpClient.PROPERTY, before);
            }
        }
    }

    @Test
    void allJobsOfOneTlsConfigurationShareOneHttpClient() throws Exception {
        try (FakeServer server = new FakeServer()) {
            Fixture.serveHappily(server, 1, 1);
            for (int i = 0; i < 20; i++) {
                FLParameter p = new Fixture(tmp.resolve("s" + i), "s" + i).parameter(server.url());
                p.setTimeOut(1 + i);
                assertEquals(FLClientStatus.SUCCESS, new SyncFLJob(p).flJobRun());
            }
            long selectors = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().endsWith("SelectorManager")).count();
            assertTrue(selectors <= FLCommunication.sharedClients(), selectors + " selector threads for "
                    + FLCommunication.sharedClients() + " TLS configurations: an HTTP client per job?");
            assertEquals(1, Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().equals("fl-http-selector")).count(), "one lean client for all plain jobs");
        }
    }
}
