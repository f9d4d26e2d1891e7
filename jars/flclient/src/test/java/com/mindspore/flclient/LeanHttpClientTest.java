package com.mindspore.flclient;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.ConnectException;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The client's own HTTP/1.1 ({@link LeanHttpClient}) on loopback sockets: against {@link FakeServer}
 * (the JDK's HTTP server) and against a raw {@link ServerSocket} for the replies a server may
 * send that FakeServer does not (chunked, close-delimited, 1xx, Connection: close, a reset
 * keep-alive connection, no reply at all).
 */
class LeanHttpClientTest {
    private static final long TIMEOUT_MS = 10_000;

    private LeanHttpClient client;

    @BeforeEach
    void open() throws IOException {
        client = new LeanHttpClient(FLCommunication.IDLE_CONNECTIONS);
    }

    @AfterEach
    void close() {
        client.close();
    }

    /** A loopback server whose every accepted connection runs the test's script on a thread of its own. */
    private static final class RawServer implements AutoCloseable {
        interface Script {
            /** {@code n}: the connection's number, from 1. */
            void run(Socket s, InputStream in, OutputStream out, int n) throws Exception;
        }

        private final ServerSocket listener = new ServerSocket(0, 512);
        private final AtomicInteger accepted = new AtomicInteger();
        private final List<Socket> sockets = new CopyOnWriteArrayList<>();
        private final List<Throwable> failures = new CopyOnWriteArrayList<>();

        RawServer(Script script) throws IOException {
            Thread acceptor = new Thread(() -> {
                while (!listener.isClosed()) {
                    try {
                        Socket s = listener.accept();
                        sockets.add(s);
                        int n = accepted.incrementAndGet();
                        Thread t = new Thread(() -> {
                            try {
                                script.run(s, s.getInputStream(), s.getOutputStream(), n);
                            } catch (Exception e) {
                                if (!listener.isClosed()) {
                                    failures.add(e);
                                }
                            }
                        }, "raw-server-" + n);
                        t.setDaemon(true);
                        t.start();
                    } catch (IOException e) {
                        return; // closed
                    }
                }
            }, "raw-server-accept");
            acceptor.setDaemon(true);
            acceptor.start();
        }

        URI url() {
            return URI.create("http://127.0.0.1:" + listener.getLocalPort() + "/startFLJob");
        }

        int connections() {
            return accepted.get();
        }

        @Override
        public void close() throws IOException {
            listener.close();
            for (Socket s : sockets) {
                s.close();
            }
            assertTrue(failures.isEmpty(), "the server script failed: " + failures);
        }
    }

    /** Reads one request (head and Content-Length body); null at a clean end of stream before it. */
    private static byte[] readRequest(InputStream in) throws IOException {
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        int b;
        while ((b = in.read()) >= 0) {
            head.write(b);
            byte[] h = head.toByteArray();
            int n = h.length;
            if (n >= 4 && h[n - 4] == '\r' && h[n - 3] == '\n' && h[n - 2] == '\r' && h[n - 1] == '\n') {
                String text = new String(h, StandardCharsets.ISO_8859_1);
                assertTrue(text.startsWith("POST /startFLJob HTTP/1.1\r\n"), text);
                assertTrue(text.contains("\r\nContent-Type: application/octet-stream\r\n"), text);
                int at = text.indexOf("Content-Length: ") + "Content-Length: ".length();
                int length = Integer.parseInt(text.substring(at, text.indexOf('\r', at)));
                return in.readNBytes(length);
            }
        }
        if (head.size() > 0) {
            throw new IOException("the connection ended inside a request head");
        }
        return null;
    }

    private static void reply(OutputStream out, String head, byte[] body) throws IOException {
        out.write(head.getBytes(StandardCharsets.ISO_8859_1));
        out.write(body);
        out.flush();
    }

    private static void ok(OutputStream out, byte[] body) throws IOException {
        reply(out, "HTTP/1.1 200 OK\r\nContent-Length: " + body.length + "\r\n\r\n", body);
    }

    private static byte[] bytes(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    private FLCommunication.Reply post(URI url, byte[] body) throws Exception {
        return client.post(url, body, TIMEOUT_MS).get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
    }

    /** The exception a failed exchange ended with. */
    private static Throwable failure(CompletableFuture<FLCommunication.Reply> f) throws Exception {
        ExecutionException e = assertThrows(ExecutionException.class, () -> f.get(TIMEOUT_MS, TimeUnit.MILLISECONDS));
        return e.getCause();
    }

    @Test
    void aModelSizedRequestAndReplyTravelWholeThroughFakeServer() throws Exception {
        byte[] upload = bytes(266_000, 1);
        byte[] model = bytes(270_001, 2);
        try (FakeServer server = new FakeServer()) {
            server.on("getModel", r -> FakeServer.Answer.buffer(model));
            FLCommunication.Reply reply = post(URI.create(server.url() + "/getModel"), upload);
            assertEquals(200, reply.httpStatus);
            assertArrayEquals(model, reply.body);
            assertArrayEquals(upload, server.requests("getModel").get(0).body);
            FLCommunication.Reply missing = post(URI.create(server.url() + "/nowhere"), new byte[0]);
            assertEquals(404, missing.httpStatus);
            assertEquals(0, missing.body.length);
        }
    }

    @Test
    void successiveRequestsToOneHostShareOneKeepAliveConnection() throws Exception {
        try (RawServer server = new RawServer((s, in, out, n) -> {
            byte[] req;
            while ((req = readRequest(in)) != null) {
                ok(out, req); // echo
            }
        })) {
            for (int i = 0; i < 5; i++) {
                byte[] body = bytes(1000 * i, i);
                assertArrayEquals(body, post(server.url(), body).body);
            }
            assertEquals(1, server.connections());
        }
    }

    @Test
    void aChunkedReplyIsReassembledAndItsConnectionKeptAlive() throws Exception {
        byte[] model = bytes(70_000, 3);
        try (RawServer server = new RawServer((s, in, out, n) -> {
            while (readRequest(in) != null) {
                out.write(ascii("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"));
                out.flush();
                int[] cuts = {0, 1, 4096, 4097, 60_000, model.length};
                for (int i = 0; i + 1 < cuts.length; i++) {
                    int len = cuts[i + 1] - cuts[i];
                    out.write(ascii(Integer.toHexString(len) + (i == 2 ? ";ext=1" : "") + "\r\n"));
                    out.write(model, cuts[i], len);
                    out.write(ascii("\r\n"));
                    out.flush(); // the chunks arrive in pieces
                }
                out.write(ascii("0\r\nX-Trailer: yes\r\n\r\n"));
                out.flush();
            }
        })) {
            assertArrayEquals(model, post(server.url(), new byte[10]).body);
            assertArrayEquals(model, post(server.url(), new byte[10]).body);
            assertEquals(1, server.connections());
        }
    }

    @Test
    void aReplyWithoutLengthIsReadUntilTheServerClosesAndItsConnectionIsNotReused() throws Exception {
        byte[] model = bytes(100_000, 4);
        try (RawServer server = new RawServer((s, in, out, n) -> {
            readRequest(in);
            out.write(ascii("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n"));
            out.write(model, 0, 5000);
            out.flush();
            out.write(model, 5000, model.length - 5000);
            s.close();
        })) {
            assertArrayEquals(model, post(server.url(), new byte[1]).body);
            assertArrayEquals(model, post(server.url(), new byte[1]).body);
            assertEquals(2, server.connections());
        }
    }

    @Test
    void informationalRepliesBeforeTheReplyAreSkipped() throws Exception {
        try (RawServer server = new RawServer((s, in, out, n) -> {
            readRequest(in);
            reply(out, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
                    + "HTTP/1.1 202 Accepted\r\nCONTENT-LENGTH: 3\r\n\r\n", ascii("abc"));
        })) {
            FLCommunication.Reply reply = post(server.url(), new byte[0]);
            assertEquals(202, reply.httpStatus);
            assertArrayEquals(ascii("abc"), reply.body);
        }
    }

    @Test
    void connectionCloseAndHttp10RepliesCloseTheConnection() throws Exception {
        CountDownLatch clientClosed = new CountDownLatch(2);
        try (RawServer server = new RawServer((s, in, out, n) -> {
            readRequest(in);
            reply(out, n == 1 ? "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n"
                    : "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n", ascii("ok"));
            if (in.read() < 0) { // the socket is left open: the client must close it
                clientClosed.countDown();
            }
        })) {
            assertArrayEquals(ascii("ok"), post(server.url(), new byte[0]).body);
            assertArrayEquals(ascii("ok"), post(server.url(), new byte[0]).body);
            assertEquals(2, server.connections());
            assertTrue(clientClosed.await(5, TimeUnit.SECONDS), "the client kept a closing connection open");
        }
    }

    @Test
    void headerNamesAndTokensAreReadWhateverTheirCaseAndSpacing() throws Exception {
        try (RawServer server = new RawServer((s, in, out, n) -> {
            readRequest(in);
            out.write(ascii("HTTP/1.0 200 OK\r\ncOnNeCtIoN :  Upgrade , Keep-Alive \r\n"
                    + "Transfer-Encoding: identity,  Chunked\r\nX-Note: a: b\r\n\r\n3\r\nabc\r\n0\r\n\r\n"));
            readRequest(in);
            reply(out, "HTTP/1.1 200 OK\r\ncontent-length:\t2 \r\n\r\n", ascii("de"));
        })) {
            assertArrayEquals(ascii("abc"), post(server.url(), new byte[0]).body);
            assertArrayEquals(ascii("de"), post(server.url(), new byte[0]).body);
            assertEquals(1, server.connections(), "HTTP/1.0 with Connection: keep-alive keeps the connection");
        }
    }

    @Test
    void aReplyThatIsNotHttpFailsTheExchangeNamingWhatCame() throws Exception {
        try (RawServer server = new RawServer((s, in, out, n) -> {
            readRequest(in);
            reply(out, "SSH-2.0-OpenSSH_9.2\r\n\r\n", new byte[0]);
        })) {
            Throwable e = failure(client.post(server.url(), new byte[0], TIMEOUT_MS));
            assertEquals("not an HTTP/1.x reply: SSH-2.0-OpenSSH_9.2", e.getMessage());
        }
    }

    @Test
    void aRefusalSentBeforeTheWholeBodyIsReadEndsTheUpload() throws Exception {
        byte[] huge = new byte[64 << 20];
        AtomicInteger drained = new AtomicInteger();
        CountDownLatch closedByClient = new CountDownLatch(1);
        try (RawServer server = new RawServer((s, in, out, n) -> {
            int crlfs = 0;
            while (crlfs < 4) { // the head only
                int b = in.read();
                crlfs = (b == '\r' && crlfs % 2 == 0) || (b == '\n' && crlfs % 2 == 1) ? crlfs + 1 : 0;
            }
            reply(out, "HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\nContent-Length: 8\r\n\r\n",
                    ascii("too big!"));
            byte[] sink = new byte[1 << 16];
            try {
                int k;
                while ((k = in.read(sink)) > 0) {
                    drained.addAndGet(k);
                }
            } catch (IOException e) {
                // the client reset it: also a close
            }
            closedByClient.countDown();
        })) {
            FLCommunication.Reply reply = client.post(server.url(), huge, TIMEOUT_MS).get(TIMEOUT_MS, TimeUnit.MILLISECONDS);
            assertEquals(413, reply.httpStatus);
            assertArrayEquals(ascii("too big!"), reply.body);
            assertTrue(closedByClient.await(5, TimeUnit.SECONDS));
            assertTrue(drained.get() < huge.length, "the client sent all " + drained.get() + " bytes after the refusal");
        }
    }

    @Test
    void aKeepAliveConnectionTheServerClosedWhileIdleIsNotUsedAgain() throws Exception {
        CountDownLatch replied = new CountDownLatch(1);
        CountDownLatch closedByServer = new CountDownLatch(1);
        try (RawServer server = new RawServer((s, in, out, n) -> {
            readRequest(in);
            ok(out, ascii("c" + n));
            if (n == 1) {
                replied.await();
                s.close(); // the server's keep-alive timeout
                closedByServer.countDown();
            }
        })) {
            assertArrayEquals(ascii("c1"), post(server.url(), new byte[0]).body);
            replied.countDown();
            assertTrue(closedByServer.await(5, TimeUnit.SECONDS));
            assertArrayEquals(ascii("c2"), post(server.url(), new byte[0]).body);
            assertEquals(2, server.connections());
        }
    }

    @Test
    void aPooledConnectionResetWithoutTakingTheRequestIsSentOnceMoreOnAFreshOne() throws Exception {
        try (RawServer server = new RawServer((s, in, out, n) -> {
            ok(out, ascii("answer " + n + ": " + readRequest(in).length));
            if (n == 1) {
                in.read(); // the second request begins: closed with it unread, the socket resets
                s.setSoLinger(true, 0);
                s.close();
            }
        })) {
            assertArrayEquals(ascii("answer 1: 5"), post(server.url(), new byte[5]).body);
            assertArrayEquals(ascii("answer 2: 300000"), post(server.url(), new byte[300_000]).body);
            assertEquals(2, server.connections());
        }
    }

    @Test
    void aRequestTheServerTookAndThenClosedWithoutReplyFailsAndIsNotSentAgain() throws Exception {
        AtomicInteger requests = new AtomicInteger();
        try (RawServer server = new RawServer((s, in, out, n) -> {
            readRequest(in);
            requests.incrementAndGet();
            if (n == 1) {
                ok(out, ascii("first"));
                readRequest(in);
                requests.incrementAndGet();
                s.close(); // a server killed while it held the request: the round loop must see the outage
            } else {
                ok(out, ascii("retried"));
            }
        })) {
            assertArrayEquals(ascii("first"), post(server.url(), new byte[3]).body);
            Throwable e = failure(client.post(server.url(), new byte[3], TIMEOUT_MS));
            assertInstanceOf(IOException.class, e);
            assertEquals(2, requests.get());
            assertEquals(1, server.connections());
        }
    }

    @Test
    void aReplySlowerThanTheTimeoutFailsWithHttpTimeoutExceptionAndClosesTheConnection() throws Exception {
        CountDownLatch closedByClient = new CountDownLatch(1);
        try (RawServer server = new RawServer((s, in, out, n) -> {
            readRequest(in);
            out.write(ascii("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")); // then nothing
            out.flush();
            if (in.read() < 0) {
                closedByClient.countDown();
            }
        })) {
            long t0 = System.nanoTime();
            Throwable e = failure(client.post(server.url(), new byte[1], 300));
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            assertInstanceOf(HttpTimeoutException.class, e);
            assertTrue(ms >= 290 && ms < 3000, "timed out after " + ms + " ms for 300 ms");
            assertTrue(closedByClient.await(5, TimeUnit.SECONDS), "the timed-out connection was left open");
        }
    }

    @Test
    void aRefusedConnectionIsAConnectException() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        Throwable e = failure(client.post(URI.create("http://127.0.0.1:" + port + "/startFLJob"), new byte[1], TIMEOUT_MS));
        assertInstanceOf(ConnectException.class, e);
    }

    @Test
    void cancellingAPendingRequestClosesItsConnection() throws Exception {
        CountDownLatch arrived = new CountDownLatch(1);
        CountDownLatch closedByClient = new CountDownLatch(1);
        try (RawServer server = new RawServer((s, in, out, n) -> {
            readRequest(in);
            arrived.countDown();
            if (in.read() < 0) { // held, as the server holds a startFLJob
                closedByClient.countDown();
            }
        })) {
            CompletableFuture<FLCommunication.Reply> f = client.post(server.url(), new byte[1], TIMEOUT_MS);
            assertTrue(arrived.await(5, TimeUnit.SECONDS));
            assertTrue(f.cancel(true));
            assertTrue(closedByClient.await(5, TimeUnit.SECONDS), "a cancelled request kept its connection");
            assertArrayEquals(new int[] {0, 0}, client.connections());
        }
    }

    @Test
    void twoHundredRequestsHeldByTheServerAreAllAnsweredWithoutAThreadEach() throws Exception {
        int n = 200;
        CountDownLatch allArrived = new CountDownLatch(n);
        try (FakeServer server = new FakeServer()) {
            server.on("startFLJob", r -> {
                allArrived.countDown();
                try {
                    allArrived.await(); // held until every device has asked, as startFLJob's threshold
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                return FakeServer.Answer.buffer(r.body);
            });
            long clientThreads = clientThreads();
            List<CompletableFuture<FLCommunication.Reply>> sent = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                sent.add(client.post(URI.create(server.url() + "/startFLJob"), bytes(100 + i, i), 30_000));
            }
            assertTrue(allArrived.await(30, TimeUnit.SECONDS), allArrived.getCount() + " requests never arrived");
            assertEquals(clientThreads, clientThreads(), "the client started threads for requests in flight");
            for (int i = 0; i < n; i++) {
                assertArrayEquals(bytes(100 + i, i), sent.get(i).get(30, TimeUnit.SECONDS).body);
            }
            int[] conns = client.connections();
            assertEquals(FLCommunication.IDLE_CONNECTIONS, conns[1], "idle connections kept");
            assertEquals(conns[1], conns[0], "busy connections after every reply");
        }
    }

    private static long clientThreads() {
        return Thread.getAllStackTraces().keySet().stream().filter(t -> t.getName().startsWith("fl-http")).count();
    }

    @Test
    void idleConnectionsBeyondTheCapAreClosedOldestFirst() throws Exception {
        client.close();
        client = new LeanHttpClient(2);
        int n = 5;
        CountDownLatch allArrived = new CountDownLatch(n);
        CountDownLatch closedByClient = new CountDownLatch(n - 2);
        try (RawServer server = new RawServer((s, in, out, i) -> {
            readRequest(in);
            allArrived.countDown();
            allArrived.await();
            ok(out, ascii("c"));
            if (readRequest(in) == null) {
                closedByClient.countDown();
            }
        })) {
            List<CompletableFuture<FLCommunication.Reply>> sent = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                sent.add(client.post(server.url(), new byte[1], TIMEOUT_MS));
            }
            for (CompletableFuture<FLCommunication.Reply> f : sent) {
                assertEquals(200, f.get(TIMEOUT_MS, TimeUnit.MILLISECONDS).httpStatus);
            }
            assertTrue(closedByClient.await(5, TimeUnit.SECONDS), "idle connections beyond the cap were kept");
            assertArrayEquals(new int[] {2, 2}, client.connections());
        }
    }

    @Test
    void theHttpPropertyChoosesTheClientAndRefusesOtherValuesNamingThem() {
        String before = System.getProperty(LeanHttpClient.PROPERTY);
        try {
            System.clearProperty(LeanHttpClient.PROPERTY);
            assertTrue(LeanHttpClient.chosen());
            System.setProperty(LeanHttpClient.PROPERTY, "jdk");
            assertFalse(LeanHttpClient.chosen());
            System.setProperty(LeanHttpClient.PROPERTY, "okhttp");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, LeanHttpClient::chosen);
            assertTrue(e.getMessage().startsWith("-Dflclient.http=okhttp: allowed values are lean "), e.getMessage());
            assertTrue(e.getMessage().contains(" and jdk "), e.getMessage());
        } finally {
            if (before == null) {
                System.clearProperty(LeanHttpClient.PROPERTY);
            } else {
                System.setProperty(LeanHttpClient.PROPERTY, before);
            }
        }
    }
}
