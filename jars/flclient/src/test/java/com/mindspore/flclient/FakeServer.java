package com.mindspore.flclient;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;

import java.io.IOException;
import java.io.OutputStream;
import java.net.BindException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import javax.net.ssl.SSLContext;

/**
 * A scripted FL server endpoint in the test JVM: each round answers with what the test's
 * handler returns (a FlatBuffer, plain text, an HTTP error, or no answer at all); every
 * request is recorded with its arrival time and port. Listens on one or several consecutive
 * loopback ports (ELB tests).
 */
final class FakeServer implements AutoCloseable {
    /** One request as the server saw it. */
    static final class Request {
        final String round;
        final byte[] body;
        final long atMillis;
        final int port;
        /** The request's User-Agent header (null without one): which HTTP client sent it. */
        final String userAgent;

        Request(String round, byte[] body, long atMillis, int port, String userAgent) {
            this.round = round;
            this.body = body;
            this.atMillis = atMillis;
            this.port = port;
            this.userAgent = userAgent;
        }
    }

    /** What to send back. */
    static final class Answer {
        final int status;
        final byte[] body;
        final boolean hang;
        final boolean drop;

        private Answer(int status, byte[] body, boolean hang) {
            this(status, body, hang, false);
        }

        private Answer(int status, byte[] body, boolean hang, boolean drop) {
            this.status = status;
            this.body = body;
            this.hang = hang;
            this.drop = drop;
        }

        static Answer buffer(byte[] fb) {
            return new Answer(200, fb, false);
        }

        static Answer text(String s) {
            return new Answer(200, s.getBytes(StandardCharsets.UTF_8), false);
        }

        static Answer status(int code) {
            return new Answer(code, new byte[0], false);
        }

        /** Closes the connection without an answer, as a server killed in the middle of a request. */
        static Answer drop() {
            return new Answer(0, null, false, true);
        }

        /** Never answers (until the server closes). */
        static Answer hang() {
            return new Answer(0, null, true);
        }
    }

    interface Handler {
        Answer answer(Request r);
    }

    private final List<HttpServer> servers = new ArrayList<>();
    private final Map<String, Handler> handlers = new ConcurrentHashMap<>();
    private final List<Request> requests = new CopyOnWriteArrayList<>();
    private final BlockingQueue<Request> arrivals = new LinkedBlockingQueue<>();
    private final CountDownLatch closing = new CountDownLatch(1);
    private final ExecutorService pool = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "fake-fl-server");
        t.setDaemon(true);
        return t;
    });
    private final String scheme;
    private int firstPort;

    FakeServer() throws IOException {
        this(1, null);
    }

    /** {@code ports} consecutive ports; https when {@code tls} is given. */
    FakeServer(int ports, SSLContext tls) throws IOException {
        this.scheme = tls == null ? "http" : "https";
        IOException last = null;
        for (int attempt = 0; attempt < 20; attempt++) {
            int base;
            try (ServerSocket s = new ServerSocket(0)) {
                base = s.getLocalPort();
            }
            try {
                for (int i = 0; i < ports; i++) {
                    servers.add(bind(base + i, tls));
                }
                firstPort = base;
                servers.forEach(HttpServer::start);
                return;
            } catch (BindException e) {
                last = e;
                servers.forEach(s -> s.stop(0));
                servers.clear();
            }
        }
        throw last;
    }

    private HttpServer bind(int port, SSLContext tls) throws IOException {
        InetSocketAddress addr = new InetSocketAddress("127.0.0.1", port);
        HttpServer s;
        if (tls == null) {
            s = HttpServer.create(addr, 64);
        } else {
            HttpsServer hs = HttpsServer.create(addr, 64);
            hs.setHttpsConfigurator(new HttpsConfigurator(tls));
            s = hs;
        }
        s.setExecutor(pool);
        s.createContext("/", ex -> handle(ex, port));
        return s;
    }

    private void handle(HttpExchange ex, int port) throws IOException {
        byte[] body = ex.getRequestBody().readAllBytes();
        String path = ex.getRequestURI().getPath();
        String round = path.substring(path.lastIndexOf('/') + 1);
        Request r = new Request(round, body, System.currentTimeMillis(), port,
                ex.getRequestHeaders().getFirst("User-Agent"));
        requests.add(r);
        arrivals.add(r);
        Handler h = handlers.get(round);
        Answer a = h == null ? Answer.status(404) : h.answer(r);
        if (a.drop) {
            ex.close();
            return;
        }
        if (a.hang) {
            try {
                closing.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            ex.close();
            return;
        }
        if (a.body.length == 0) {
            ex.sendResponseHeaders(a.status, -1);
        } else {
            ex.sendResponseHeaders(a.status, a.body.length);
            try (OutputStream o = ex.getResponseBody()) {
                o.write(a.body);
            }
        }
        ex.close();
    }

    void on(String round, Handler h) {
        handlers.put(round, h);
    }

    String url() {
        return scheme + "://127.0.0.1:" + firstPort;
    }

    int firstPort() {
        return firstPort;
    }

    List<Request> requests(String round) {
        List<Request> out = new ArrayList<>();
        for (Request r : requests) {
            if (r.round.equals(round)) {
                out.add(r);
            }
        }
        return out;
    }

    List<Request> allRequests() {
        return new ArrayList<>(requests);
    }

    /** Blocks until the next request of {@code round} arrives (test fails after 10 s). */
    Request awaitRequest(String round) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (true) {
            Request r = arrivals.poll(end - System.nanoTime(), TimeUnit.NANOSECONDS);
            if (r == null) {
                throw new AssertionError("no " + round + " request within 10 s");
            }
            if (r.round.equals(round)) {
                return r;
            }
        }
    }

    @Override
    public void close() {
        closing.countDown();
        servers.forEach(s -> s.stop(0));
        pool.shutdownNow();
    }
}
