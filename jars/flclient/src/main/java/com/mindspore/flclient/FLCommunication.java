package com.mindspore.flclient;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.Collection;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLHandshakeException;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManagerFactory;

/**
 * HTTP(S) to the FL server for one job: {@code POST {domainName}/{round}} with a FlatBuffer
 * body, plain http:// over the JVM's {@link LeanHttpClient}, https:// (and plain http:// with
 * {@code -Dflclient.http=jdk}) over the JVM's shared {@code java.net.http} client of its TLS
 * configuration. With useElb every request goes to {@code port + random % serverNum}. Exchanges are
 * asynchronous ({@link #send} gives a future, cancelled by {@link SyncFLJob#stopFLJob()}), so
 * that no thread waits for a reply, and bounded by {@code timeOut} seconds.
 */
final class FLCommunication {
    /** The body of a response and its HTTP status. */
    static final class Reply {
        final int httpStatus;
        final byte[] body;

        Reply(int httpStatus, byte[] body) {
            this.httpStatus = httpStatus;
            this.body = body;
        }
    }

    /**
     * The TLS handshake was refused for a reason another attempt cannot change (the server's
     * certificate is not trusted or does not name the host, no common protocol): not "unreachable".
     */
    static final class TlsFailure extends IOException {
        private static final long serialVersionUID = 1L;

        TlsFailure(URI url, Throwable cause) {
            super("TLS handshake with " + url + " failed: " + reason(cause)
                    + "; check --cert_path (certPath) / the server certificate", cause);
        }

        /** The server refused plain HTTP on its HTTPS port ({@link #PLAIN_HTTP_REFUSED} in its 400). */
        TlsFailure(URI url, String serverSays) {
            super(url + " is an HTTPS port, this client spoke plain HTTP to it (the server says: " + serverSays
                    + "); check --domainName (use https://) and --certPath");
        }

        private static String reason(Throwable t) {
            Throwable deepest = t;
            for (Throwable c = t; c != null; c = c.getCause()) {
                if (c.getMessage() != null) {
                    deepest = c;
                }
            }
            return t.getMessage() != null && t != deepest ? t.getMessage() + " (" + deepest.getMessage() + ")"
                    : String.valueOf(deepest.getMessage());
        }

        /**
         * True for a certificate or protocol refusal; false for a handshake cut short by a server
         * going away (an EOF or a reset inside the handshake), which is an outage like any other.
         */
        static boolean isPermanent(Throwable t) {
            boolean handshake = false;
            for (Throwable c = t; c != null; c = c.getCause()) {
                if (c instanceof GeneralSecurityException) { // CertificateException, CertPathBuilderException, ...
                    return true;
                }
                if (c instanceof SSLHandshakeException) {
                    handshake = true;
                } else if (handshake && !(c instanceof SSLException)) {
                    return false; // EOFException, SocketException: the peer went away mid-handshake
                }
            }
            return handshake;
        }
    }

    /**
     * What the pyflclient server's plain-text 400 says when plain HTTP reaches its HTTPS port
     * (pyflclient.server.transport.PLAIN_HTTP_ON_HTTPS): a setting to fix, not an outage to retry.
     */
    static final String PLAIN_HTTP_REFUSED = "HTTPS only";

    /** Plain http:// unless {@code -Dflclient.http=jdk}; else null. */
    private final LeanHttpClient lean;
    /** https://, or plain http:// with {@code -Dflclient.http=jdk}; else null. */
    private final HttpClient http;
    private final URI base;
    /**
     * Each round's URL by ELB port choice, built once per job: a URI built and parsed at every request
     * cost microseconds, and ~0.4 s of C2 compilation in a 1,000-client simulation.
     */
    private final ConcurrentHashMap<String, URI[]> urls = new ConcurrentHashMap<>();
    private final boolean useElb;
    private final int serverNum;
    private final Duration timeout;
    private final StopSignal stop;
    /** pkiVerify: signs startFLJob and updateModel anew before each attempt (null without PKI). */
    private final DeviceSigner signer;

    FLCommunication(FLParameter p, StopSignal stop) {
        this.stop = stop;
        try {
            this.base = new URI(p.getDomainName());
        } catch (URISyntaxException e) {
            throw new IllegalArgumentException("FLParameter.domainName = " + p.getDomainName() + ": " + e.getMessage(), e);
        }
        this.useElb = p.isUseElb();
        this.serverNum = p.getServerNum();
        this.timeout = Duration.ofSeconds(p.getTimeOut());
        this.lean = !p.isHttps() && LeanHttpClient.chosen() ? LeanHttpClient.shared() : null;
        this.http = lean != null ? null : shared(p.isHttps() ? p.getCertPath() : null, p.isHttps() ? p.getSslProtocol() : null);
        if (p.isPkiVerify()) {
            this.signer = DeviceSigner.load(p.getPkiPath(), p.getEquipCrlPath(), p.getValidInterval());
            DeviceSigner.register(p.getClientID(), signer);
        } else {
            this.signer = null;
        }
    }

    /**
     * The JVM's {@code java.net.http} clients, one per TLS configuration (plain HTTP, with
     * {@code -Dflclient.http=jdk}, is the key {@code null|null}).
     * Each {@link HttpClient} owns a selector thread, an executor and buffers, so one per job cost
     * 500 simulated devices their 2 GiB heap (OutOfMemoryError in the SelectorManager threads);
     * shared, they are one connection pool. Timeouts are per request, so nothing else of a job's
     * parameters belongs to the client.
     */
    private static final int HTTP_THREADS = 4;

    /**
     * Idle keep-alive connections the HTTP clients keep, the JDK's and {@link LeanHttpClient} (JDK property
     * {@code jdk.httpclient.connectionPoolSize}; unbounded by default). Thousands of simulated
     * devices asking at once open as many connections; kept in the pool for the JDK's 20-minute
     * keep-alive, each held some 18 KB of buffers on this side and a socket on the server's, so a
     * waiting device cost ~40 KB. Beyond this many, an idle connection is closed. A value set on
     * the command line ({@code -Djdk.httpclient.connectionPoolSize=...}) wins.
     */
    static final int IDLE_CONNECTIONS = 64;

    static {
        if (System.getProperty("jdk.httpclient.connectionPoolSize") == null) {
            System.setProperty("jdk.httpclient.connectionPoolSize", Integer.toString(IDLE_CONNECTIONS));
        }
    }
    private static final AtomicInteger HTTP_THREAD_IDS = new AtomicInteger();
    private static final Map<String, HttpClient> CLIENTS = new ConcurrentHashMap<>();

    /**
     * The HTTP clients' executor (their default is an unbounded cached pool, which grew to a
     * thread per request in flight: 64 threads for 200 waiting clients). Its tasks never block
     * (bodies are byte arrays; continuations only schedule the next step), so a few threads do.
     */
    private static final ExecutorService HTTP_EXECUTOR = Executors.newFixedThreadPool(HTTP_THREADS, r -> {
        Thread t = new Thread(r, "fl-http-" + HTTP_THREAD_IDS.incrementAndGet());
        t.setDaemon(true);
        return t;
    });

    static HttpClient shared(String certPath, String protocol) {
        String key = (certPath == null ? "" : Path.of(certPath).toAbsolutePath().normalize()) + "|" + protocol;
        return CLIENTS.computeIfAbsent(key, k -> {
            HttpClient.Builder b = HttpClient.newBuilder()
                    .executor(HTTP_EXECUTOR)
                    .version(HttpClient.Version.HTTP_1_1)
                    .followRedirects(HttpClient.Redirect.NEVER);
            if (protocol != null) {
                b.sslContext(sslContext(certPath, protocol));
                SSLParameters params = new SSLParameters();
                params.setProtocols(new String[] {protocol});
                b.sslParameters(params);
            }
            return b.build();
        });
    }

    /** How many HTTP clients the JVM holds (one per TLS configuration in use), for tests. */
    static int sharedClients() {
        return CLIENTS.size();
    }

    /** A TLS context that trusts the CA certificate(s) of {@code certPath} (or the JVM's defaults when null). */
    static SSLContext sslContext(String certPath, String protocol) {
        try {
            SSLContext ctx = SSLContext.getInstance(protocol);
            if (certPath == null) {
                ctx.init(null, null, null);
                return ctx;
            }
            KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
            ks.load(null, null);
            Collection<? extends Certificate> certs;
            try (InputStream in = Files.newInputStream(Path.of(certPath))) {
                certs = CertificateFactory.getInstance("X.509").generateCertificates(in);
            }
            if (certs.isEmpty()) {
                throw new IllegalArgumentException("FLParameter.certPath = " + certPath + ": no PEM certificate in the file");
            }
            int i = 0;
            for (Certificate c : certs) {
                ks.setCertificateEntry("ca" + i++, c);
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(ks);
            ctx.init(null, tmf.getTrustManagers(), null);
            return ctx;
        } catch (IOException e) {
            throw new UncheckedIOException("FLParameter.certPath = " + certPath + ": cannot read it: " + e.getMessage(), e);
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException("FLParameter.certPath = " + certPath + " / sslProtocol = " + protocol
                    + ": " + e.getMessage(), e);
        }
    }

    /** The URL of a round, with the ELB port choice applied. */
    URI urlOf(String round) {
        int choice = useElb && serverNum > 1 ? ThreadLocalRandom.current().nextInt(serverNum) : 0;
        URI[] byPort = urls.computeIfAbsent(round, r -> new URI[useElb && serverNum > 1 ? serverNum : 1]);
        URI url = byPort[choice];
        if (url == null) { // a race builds an equal URI twice; URI is immutable, so either may be kept
            String path = (base.getRawPath() == null ? "" : base.getRawPath()) + "/" + round;
            try {
                url = new URI(base.getScheme(), null, base.getHost(), base.getPort() + choice, path, null, null);
            } catch (URISyntaxException e) {
                throw new IllegalStateException(e);
            }
            byPort[choice] = url;
        }
        return url;
    }

    /**
     * Starts posting {@code body} to the round; the future is cancelled by a stop. Read its
     * outcome with {@link #reply}.
     */
    CompletableFuture<Reply> send(String round, byte[] body) {
        if (signer != null) {
            signer.resign(round, body); // each attempt its own timestamp and signature: the server takes each once
        }
        URI url = urlOf(round);
        if (lean != null) {
            return stop.track(lean.post(url, body, timeout.toMillis()));
        }
        HttpRequest req = HttpRequest.newBuilder(url)
                .timeout(timeout)
                .header("Content-Type", "application/octet-stream")
                .POST(HttpRequest.BodyPublishers.ofByteArray(body))
                .build();
        CompletableFuture<HttpResponse<byte[]>> sent = http.sendAsync(req, HttpResponse.BodyHandlers.ofByteArray());
        CompletableFuture<Reply> reply = sent.thenApply(
            r -> new Reply(r.statusCode(), r.body() == null ? new byte[0] : r.body()));
        reply.whenComplete((r, e) -> {
            if (e instanceof CancellationException) {
                sent.cancel(true); // a stop ends the JDK's exchange too
            }
        });
        return stop.track(reply);
    }

    /**
     * The reply of a completed {@link #send}.
     *
     * @throws TlsFailure      the TLS handshake was refused (certificate, protocol): retrying cannot help
     * @throws IOException      the server is unreachable, timed out or closed the connection
     * @throws StopSignal.StoppedException stopFLJob was called meanwhile
     */
    Reply reply(String round, CompletableFuture<Reply> sent) throws IOException, StopSignal.StoppedException {
        try {
            Reply reply = sent.getNow(null);
            if (reply == null) {
                throw new IllegalStateException("reply() before the exchange completed");
            }
            if (reply.httpStatus == 400 && reply.body.length < 1024) {
                String text = new String(reply.body, java.nio.charset.StandardCharsets.UTF_8);
                if (text.contains(PLAIN_HTTP_REFUSED)) {
                    throw new TlsFailure(urlOf(round), text.trim());
                }
            }
            return reply;
        } catch (CancellationException e) {
            throw new StopSignal.StoppedException();
        } catch (CompletionException e) {
            Throwable c = e.getCause();
            if (TlsFailure.isPermanent(c)) {
                throw new TlsFailure(urlOf(round), c);
            }
            if (c instanceof IOException) {
                throw (IOException) c;
            }
            throw new IOException(c == null ? e.toString() : c.toString(), c);
        }
    }
}
