package com.mindspore.flclient;

import java.io.EOFException;
import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.net.URI;
import java.net.http.HttpTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.Locale;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The client's own HTTP/1.1 for plain {@code http://} servers: {@code POST} a byte array, get
 * the status and the body, asynchronously. It exists because the JDK's {@code java.net.http}
 * cost a simulation more CPU than the exchanges themselves: of a 500-device run's client-side
 * CPU per device-iteration, 3.25 ms went to its threads and ~2.5 s of C2 compilation to its
 * internals (SocketTube, the header parser, the CompletableFuture chains), for three POSTs of
 * ~266 KB. Here one exchange is a few system calls on one thread: the request's head and the
 * caller's body array (wrapped, not copied) in one gathering write, the reply's head parsed
 * from one small buffer and a {@code Content-Length} body read straight into one array of
 * that size.
 *
 * <p>One daemon selector thread ({@code fl-http-selector}) owns every socket and all state
 * below; other threads only hand it work through a queue. Thousands of requests may be in
 * flight (the server holds a startFLJob until its threshold or a getModel until the model):
 * each is a non-blocking connection and a deadline, never a thread. A completed exchange
 * completes its future on the selector thread; the round loop's continuations only schedule
 * the next step ({@link ClientEngine} hands it to a control thread, {@link RoundLoop} wakes
 * the waiting caller), so nothing heavy runs there.
 *
 * <p>Semantics, as the round loop relies on them: keep-alive connections are pooled per
 * host:port, at most {@code jdk.httpclient.connectionPoolSize} idle ones in all (the property
 * the JDK client reads; {@link FLCommunication#IDLE_CONNECTIONS} unless set on the command
 * line; 0 = no cap), the oldest idle one closed beyond that; an idle connection the server
 * closes (or writes to) is closed at once, and a pooled one is looked at before it is used. A
 * request on a pooled connection that the server reset before the first byte of a reply (it
 * closed the connection while idle and never took the request: a stale keep-alive) is sent
 * once more on a fresh connection; nothing else is retried here ({@link RetryPolicy} does
 * retries, and {@link #fail} says why a clean close is not one of these).
 * The timeout bounds the whole exchange (connect, request, the complete reply) and fails it
 * with {@link HttpTimeoutException}; a refused connection is a {@link ConnectException}, as
 * with the JDK client; cancelling the future closes its connection. Replies: status line and
 * headers (names case-insensitive), bodies by {@code Content-Length}, {@code Transfer-Encoding:
 * chunked} or up to the server's close; {@code Connection: close} and HTTP/1.0 replies close
 * the connection; 1xx replies are skipped.
 *
 * <p>{@code -Dflclient.http=jdk} sends plain HTTP through {@code java.net.http} as well (HTTPS
 * always does).
 */
final class LeanHttpClient implements AutoCloseable {
    /** System property choosing the client of plain http:// URLs: {@link #LEAN} (default) or {@link #JDK}. */
    static final String PROPERTY = "flclient.http";
    static final String LEAN = "lean";
    static final String JDK = "jdk";

    private static final Logger LOG = Logger.getLogger(LeanHttpClient.class.getName());
    /** The reply's head and chunk-size lines are parsed from this buffer, grown up to {@link #MAX_HEAD}. */
    private static final int HEAD_BUFFER = 8 * 1024;
    private static final int MAX_HEAD = 64 * 1024;
    /** First size of a body whose length the reply does not give (chunked, up to the close). */
    private static final int UNSIZED_BODY = 16 * 1024;
    private static final byte[] EMPTY = new byte[0];

    /**
     * True when plain http:// goes through this client ({@code -Dflclient.http} unset or
     * {@code lean}), false for {@code jdk}.
     *
     * @throws IllegalArgumentException any other value
     */
    static boolean chosen() {
        String v = System.getProperty(PROPERTY, LEAN).trim().toLowerCase(Locale.ROOT);
        if (v.equals(LEAN)) {
            return true;
        }
        if (v.equals(JDK)) {
            return false;
        }
        throw new IllegalArgumentException("-D" + PROPERTY + "=" + System.getProperty(PROPERTY)
                + ": allowed values are " + LEAN + " (the flclient's own HTTP/1.1 client for http://, the default) and "
                + JDK + " (java.net.http, as HTTPS uses)");
    }

    private static final class Shared {
        static final LeanHttpClient INSTANCE = open();

        private static LeanHttpClient open() {
            try {
                return new LeanHttpClient(Integer.getInteger("jdk.httpclient.connectionPoolSize",
                        FLCommunication.IDLE_CONNECTIONS));
            } catch (IOException e) {
                throw new java.io.UncheckedIOException("cannot open a selector for the HTTP client: " + e, e);
            }
        }
    }

    /** The JVM's client, created at first use (its thread lives as long as the JVM, as a daemon). */
    static LeanHttpClient shared() {
        return Shared.INSTANCE;
    }

    private final Selector selector;
    private final Thread thread;
    private final Queue<Runnable> tasks = new ConcurrentLinkedQueue<>();
    private final int idleCap;
    private volatile boolean closed;

    // --- state of the selector thread only ---
    private final Map<String, ArrayDeque<Conn>> idleByHost = new HashMap<>();
    /** Every idle connection, oldest first: the one closed when the cap is exceeded. */
    private final LinkedHashSet<Conn> idle = new LinkedHashSet<>();
    private final PriorityQueue<Deadline> deadlines = new PriorityQueue<>();
    private final Consumer<SelectionKey> onReady = this::ready;

    /** A client of its own ({@link #shared} for the JVM's); {@code idleCap} idle connections at most, 0: no cap. */
    LeanHttpClient(int idleCap) throws IOException {
        if (idleCap < 0) {
            throw new IllegalArgumentException("jdk.httpclient.connectionPoolSize = " + idleCap + ": 0 (no cap) or more");
        }
        this.idleCap = idleCap;
        this.selector = Selector.open();
        this.thread = new Thread(this::loop, "fl-http-selector");
        thread.setDaemon(true);
        thread.start();
    }

    /**
     * Starts {@code POST url} with {@code body} (application/octet-stream; the array is sent as
     * it is, so it must not change until the future completes). The future gives the status and
     * the body, or fails with an IOException; cancelling it closes the connection.
     */
    CompletableFuture<FLCommunication.Reply> post(URI url, byte[] body, long timeoutMs) {
        Exchange x = new Exchange(url, body, timeoutMs);
        if (x.address.isUnresolved()) {
            x.completeExceptionally(new ConnectException("cannot resolve the host of " + url));
            return x;
        }
        submit(() -> start(x));
        return x;
    }

    private void submit(Runnable task) {
        tasks.add(task);
        selector.wakeup();
    }

    /** Stops the thread and closes every connection (the shared client is never closed). */
    @Override
    public void close() {
        closed = true;
        selector.wakeup();
        try {
            thread.join(5000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** One request and its future; its fields belong to the selector thread. */
    private final class Exchange extends CompletableFuture<FLCommunication.Reply> {
        final String hostPort;
        final InetSocketAddress address;
        final ByteBuffer[] out;
        final long deadlineNanos;
        Conn conn;
        Deadline deadline;
        boolean retried;
        /** A byte of the reply arrived: from here on a failure is the server's answer, not a stale connection. */
        boolean answered;

        Exchange(URI url, byte[] body, long timeoutMs) {
            int port = url.getPort() < 0 ? 80 : url.getPort();
            String host = url.getHost();
            this.hostPort = host + ":" + port;
            this.address = new InetSocketAddress(host, port);
            String path = url.getRawPath() == null || url.getRawPath().isEmpty() ? "/" : url.getRawPath();
            if (url.getRawQuery() != null) {
                path += "?" + url.getRawQuery();
            }
            String head = "POST " + path + " HTTP/1.1\r\nHost: " + (port == 80 ? host : hostPort)
                    + "\r\nContent-Type: application/octet-stream\r\nContent-Length: " + body.length + "\r\n\r\n";
            this.out = new ByteBuffer[] {ByteBuffer.wrap(head.getBytes(StandardCharsets.ISO_8859_1)),
                ByteBuffer.wrap(body)};
            this.deadlineNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        }

        boolean written() {
            return !out[0].hasRemaining() && !out[1].hasRemaining();
        }

        @Override
        public boolean cancel(boolean mayInterruptIfRunning) {
            boolean cancelled = super.cancel(mayInterruptIfRunning);
            if (cancelled) {
                submit(() -> abort(this));
            }
            return cancelled;
        }
    }

    /** When an exchange times out; dropped (x = null) when it completes first, so it holds nothing. */
    private static final class Deadline implements Comparable<Deadline> {
        final long atNanos;
        Exchange x;

        Deadline(long atNanos, Exchange x) {
            this.atNanos = atNanos;
            this.x = x;
        }

        @Override
        public int compareTo(Deadline o) {
            return Long.compare(atNanos - o.atNanos, 0);
        }
    }

    private enum Phase { WRITE, HEAD, FIXED, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILER, UNTIL_CLOSE, IDLE }

    /** One connection and the reply being read on it. */
    private static final class Conn {
        final String hostPort;
        final SocketChannel ch;
        SelectionKey key;
        /** Bytes received and not consumed yet, at [0, position). */
        ByteBuffer in = ByteBuffer.allocate(HEAD_BUFFER);
        /** Where the search for the end of the head goes on. */
        int scan;
        Exchange x;
        boolean reused;
        Phase phase = Phase.IDLE;
        int status;
        boolean keepAlive;
        byte[] body;
        int filled;
        long chunkLeft;

        Conn(String hostPort, SocketChannel ch) {
            this.hostPort = hostPort;
            this.ch = ch;
        }
    }

    private void loop() {
        while (!closed) {
            try {
                while (!deadlines.isEmpty() && deadlines.peek().x == null) {
                    deadlines.poll();
                }
                long timeoutMs = 0; // 0: until woken
                if (!deadlines.isEmpty()) {
                    long nanos = deadlines.peek().atNanos - System.nanoTime();
                    timeoutMs = Math.max(1, TimeUnit.NANOSECONDS.toMillis(nanos) + 1);
                }
                selector.select(onReady, timeoutMs);
                Runnable task;
                while ((task = tasks.poll()) != null) {
                    task.run();
                }
                expire();
            } catch (IOException | RuntimeException e) {
                LOG.log(Level.SEVERE, "the HTTP client's selector loop failed (it goes on)", e);
            }
        }
        Runnable task;
        while ((task = tasks.poll()) != null) {
            task.run(); // exchanges not started yet fail in start()
        }
        for (SelectionKey k : new ArrayList<>(selector.keys())) {
            fail((Conn) k.attachment(), new IOException("the HTTP client was closed"));
        }
        try {
            selector.close();
        } catch (IOException e) {
            // nothing left to release
        }
    }

    private void start(Exchange x) {
        if (x.isDone()) {
            return; // cancelled before it started
        }
        if (closed) {
            x.completeExceptionally(new IOException("the HTTP client was closed"));
            return;
        }
        x.deadline = new Deadline(x.deadlineNanos, x);
        deadlines.add(x.deadline);
        Conn c = takeIdle(x.hostPort);
        if (c == null) {
            connect(x);
            return;
        }
        c.reused = true;
        attach(c, x);
        try {
            write(c);
        } catch (IOException e) {
            fail(c, e);
        }
    }

    private void connect(Exchange x) {
        SocketChannel ch;
        try {
            ch = SocketChannel.open();
        } catch (IOException e) {
            done(x, e);
            return;
        }
        Conn c = new Conn(x.hostPort, ch);
        attach(c, x);
        try {
            ch.configureBlocking(false);
            ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
            boolean connected = ch.connect(x.address);
            c.key = ch.register(selector, connected ? 0 : SelectionKey.OP_CONNECT, c);
            if (connected) {
                write(c);
            }
        } catch (IOException e) {
            fail(c, e);
        }
    }

    private static void attach(Conn c, Exchange x) {
        c.x = x;
        x.conn = c;
        c.phase = Phase.WRITE;
        c.status = 0;
        c.keepAlive = true;
        c.body = null;
        c.filled = 0;
        c.scan = 0;
        c.in.clear();
    }

    private void ready(SelectionKey key) {
        Conn c = (Conn) key.attachment();
        try {
            if (!key.isValid()) {
                return;
            }
            int ops = key.readyOps();
            if ((ops & SelectionKey.OP_CONNECT) != 0) {
                if (c.ch.finishConnect()) {
                    write(c);
                }
                return;
            }
            if (c.x == null) {
                idleReadable(c);
                return;
            }
            if ((ops & SelectionKey.OP_READ) != 0 && c.phase == Phase.WRITE) {
                // the server answers before taking the whole request (an early refusal): read it, then close
                c.keepAlive = false;
                c.phase = Phase.HEAD;
                key.interestOps(SelectionKey.OP_READ);
            } else if ((ops & SelectionKey.OP_WRITE) != 0 && c.phase == Phase.WRITE) {
                write(c);
                return;
            }
            if ((ops & SelectionKey.OP_READ) != 0) {
                read(c);
            }
        } catch (IOException e) {
            fail(c, e);
        } catch (RuntimeException e) {
            fail(c, new IOException("HTTP client error: " + e, e));
        }
    }

    private void write(Conn c) throws IOException {
        Exchange x = c.x;
        c.ch.write(x.out);
        if (x.written()) {
            c.phase = Phase.HEAD;
            c.key.interestOps(SelectionKey.OP_READ);
        } else {
            c.key.interestOps(SelectionKey.OP_WRITE | SelectionKey.OP_READ);
        }
    }

    /** Reads what the socket has, parsing as it goes; completes the exchange at the end of the reply. */
    private void read(Conn c) throws IOException {
        while (true) {
            if (parse(c)) {
                finish(c);
                return;
            }
            ByteBuffer dst = bodyTarget(c);
            boolean direct = dst != null;
            if (!direct) {
                dst = roomIn(c);
            }
            int wanted = dst.remaining();
            int n = c.ch.read(dst);
            if (n < 0) {
                if (c.phase == Phase.UNTIL_CLOSE) {
                    c.keepAlive = false;
                    finish(c);
                    return;
                }
                throw new EOFException(c.x.answered ? "the server closed the connection in the middle of its reply"
                        : "the server closed the connection without replying");
            }
            if (n == 0) {
                return;
            }
            c.x.answered = true;
            if (direct) {
                c.filled += n;
                if (c.phase == Phase.CHUNK_DATA && (c.chunkLeft -= n) == 0) {
                    c.phase = Phase.CHUNK_END;
                }
            }
            if (n < wanted) { // the socket is drained for now
                if (parse(c)) {
                    finish(c);
                }
                return;
            }
        }
    }

    /** The body's free part when the next bytes are body bytes and none are buffered; else null. */
    private static ByteBuffer bodyTarget(Conn c) {
        if (c.in.position() > 0) {
            return null;
        }
        switch (c.phase) {
            case FIXED:
                return ByteBuffer.wrap(c.body, c.filled, c.body.length - c.filled);
            case CHUNK_DATA:
                return ByteBuffer.wrap(c.body, c.filled, (int) c.chunkLeft);
            case UNTIL_CLOSE:
                grow(c, c.filled + 1);
                return ByteBuffer.wrap(c.body, c.filled, c.body.length - c.filled);
            default:
                return null;
        }
    }

    private static ByteBuffer roomIn(Conn c) throws IOException {
        if (!c.in.hasRemaining()) {
            if (c.in.capacity() >= MAX_HEAD) {
                throw new IOException("reply head or chunk line longer than " + MAX_HEAD + " bytes");
            }
            ByteBuffer bigger = ByteBuffer.allocate(Math.min(MAX_HEAD, c.in.capacity() * 2));
            c.in.flip();
            bigger.put(c.in);
            c.in = bigger;
        }
        return c.in;
    }

    /** Consumes the buffered bytes; true when the reply is complete. */
    private static boolean parse(Conn c) throws IOException {
        while (true) {
            switch (c.phase) {
                case HEAD: {
                    int end = headEnd(c);
                    if (end < 0) {
                        return false;
                    }
                    boolean complete = head(c, c.in.array(), end);
                    consume(c, end);
                    if (complete) {
                        return true;
                    }
                    break;
                }
                case FIXED: {
                    int k = Math.min(c.in.position(), c.body.length - c.filled);
                    System.arraycopy(c.in.array(), 0, c.body, c.filled, k);
                    c.filled += k;
                    consume(c, k);
                    if (c.filled < c.body.length) {
                        return false;
                    }
                    return true;
                }
                case CHUNK_SIZE: {
                    String line = line(c);
                    if (line == null) {
                        return false;
                    }
                    int semi = line.indexOf(';');
                    long size;
                    try {
                        size = Long.parseLong((semi < 0 ? line : line.substring(0, semi)).trim(), 16);
                    } catch (NumberFormatException e) {
                        throw new IOException("bad chunk size line: " + printable(line));
                    }
                    if (size < 0 || size > Integer.MAX_VALUE - 16 - c.filled) {
                        throw new IOException("bad chunk size: " + printable(line));
                    }
                    if (size == 0) {
                        c.phase = Phase.TRAILER;
                    } else {
                        grow(c, c.filled + (int) size);
                        c.chunkLeft = size;
                        c.phase = Phase.CHUNK_DATA;
                    }
                    break;
                }
                case CHUNK_DATA: {
                    int k = (int) Math.min(c.in.position(), c.chunkLeft);
                    System.arraycopy(c.in.array(), 0, c.body, c.filled, k);
                    c.filled += k;
                    c.chunkLeft -= k;
                    consume(c, k);
                    if (c.chunkLeft > 0) {
                        return false;
                    }
                    c.phase = Phase.CHUNK_END;
                    break;
                }
                case CHUNK_END: {
                    String line = line(c);
                    if (line == null) {
                        return false;
                    }
                    if (!line.isEmpty()) {
                        throw new IOException("chunk not followed by CRLF: " + printable(line));
                    }
                    c.phase = Phase.CHUNK_SIZE;
                    break;
                }
                case TRAILER: {
                    String line = line(c);
                    if (line == null) {
                        return false;
                    }
                    if (line.isEmpty()) {
                        return true;
                    }
                    break;
                }
                case UNTIL_CLOSE: {
                    int k = c.in.position();
                    grow(c, c.filled + k);
                    System.arraycopy(c.in.array(), 0, c.body, c.filled, k);
                    c.filled += k;
                    consume(c, k);
                    return false;
                }
                default:
                    return false;
            }
        }
    }

    /** The length of the head (through its empty line) when it is buffered; else -1. */
    private static int headEnd(Conn c) {
        byte[] a = c.in.array();
        int end = c.in.position();
        for (int i = c.scan; i < end; i++) {
            if (a[i] == '\n') {
                if (i + 1 < end && a[i + 1] == '\n') {
                    return i + 2;
                }
                if (i + 2 < end && a[i + 1] == '\r' && a[i + 2] == '\n') {
                    return i + 3;
                }
            }
        }
        c.scan = Math.max(0, end - 2);
        return -1;
    }

    /** A buffered line without its line end (consumed), or null when no whole line is buffered. */
    private static String line(Conn c) {
        byte[] a = c.in.array();
        int end = c.in.position();
        for (int i = 0; i < end; i++) {
            if (a[i] == '\n') {
                int len = i > 0 && a[i - 1] == '\r' ? i - 1 : i;
                String s = new String(a, 0, len, StandardCharsets.ISO_8859_1);
                consume(c, i + 1);
                return s;
            }
        }
        return null;
    }

    private static void consume(Conn c, int n) {
        if (n == 0) {
            return;
        }
        int rest = c.in.position() - n;
        System.arraycopy(c.in.array(), n, c.in.array(), 0, rest);
        c.in.position(rest);
        c.scan = 0;
    }

    private static void grow(Conn c, int needed) {
        if (c.body == null) {
            c.body = new byte[Math.max(needed, UNSIZED_BODY)];
        } else if (needed > c.body.length) {
            long doubled = Math.max((long) needed, 2L * c.body.length);
            c.body = Arrays.copyOf(c.body, (int) Math.min(doubled, Integer.MAX_VALUE - 16));
        }
    }

    private static final byte[] CONTENT_LENGTH = ascii("content-length");
    private static final byte[] TRANSFER_ENCODING = ascii("transfer-encoding");
    private static final byte[] CONNECTION = ascii("connection");
    private static final byte[] CHUNKED = ascii("chunked");
    private static final byte[] CLOSE = ascii("close");
    private static final byte[] KEEP_ALIVE = ascii("keep-alive");

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    /**
     * Reads the head at {@code a[0, end)}: the status line and the three headers the framing
     * needs, from the bytes (no strings, no regular expressions: this runs for every reply).
     * Returns true when the reply has no body (it is then complete); a 1xx head is skipped (the
     * phase stays HEAD).
     */
    private static boolean head(Conn c, byte[] a, int end) throws IOException {
        int eol = lineEnd(a, 0, end);
        if (eol < 12 || !startsWith(a, "HTTP/1.") || a[8] != ' ' || !digit(a[9]) || !digit(a[10]) || !digit(a[11])) {
            throw new IOException("not an HTTP/1.x reply: " + printable(a, 0, eol));
        }
        int status = (a[9] - '0') * 100 + (a[10] - '0') * 10 + (a[11] - '0');
        if (status >= 100 && status < 200) {
            if (status == 101) {
                throw new IOException("the server switched protocols (101), which this client does not speak");
            }
            return false; // 100 Continue, 102, 103: the real reply follows
        }
        long length = -1;
        boolean chunked = false;
        boolean otherCoding = false;
        boolean close = a[7] == '0'; // HTTP/1.0: closes unless it says keep-alive
        for (int p = next(a, eol, end); p < end; ) {
            int e = lineEnd(a, p, end);
            if (e > p) {
                int colon = p;
                while (colon < e && a[colon] != ':') {
                    colon++;
                }
                if (colon == e || colon == p) {
                    throw new IOException("bad reply header line: " + printable(a, p, e));
                }
                int vs = skipSpace(a, colon + 1, e);
                int ve = trimSpace(a, vs, e);
                int ne = trimSpace(a, p, colon);
                if (named(a, p, ne, CONTENT_LENGTH)) {
                    long l = decimal(a, vs, ve);
                    if (l < 0 || (length >= 0 && l != length)) {
                        throw new IOException("bad Content-Length: " + printable(a, vs, ve));
                    }
                    length = l;
                } else if (named(a, p, ne, TRANSFER_ENCODING)) {
                    int last = ve; // the last coding decides the framing
                    while (last > vs && a[last - 1] != ',') {
                        last--;
                    }
                    chunked = named(a, skipSpace(a, last, ve), ve, CHUNKED);
                    otherCoding = !chunked;
                } else if (named(a, p, ne, CONNECTION)) {
                    for (int t = vs; t < ve; ) {
                        int te = t;
                        while (te < ve && a[te] != ',') {
                            te++;
                        }
                        int ts = skipSpace(a, t, te);
                        int tz = trimSpace(a, ts, te);
                        if (named(a, ts, tz, CLOSE)) {
                            close = true;
                        } else if (named(a, ts, tz, KEEP_ALIVE)) {
                            close = false;
                        }
                        t = te + 1;
                    }
                }
            }
            p = next(a, e, end);
        }
        c.status = status;
        c.keepAlive &= !close;
        if (status == 204 || status == 304) {
            c.body = EMPTY;
            return true;
        }
        if (chunked) {
            c.phase = Phase.CHUNK_SIZE;
        } else if (length >= 0 && !otherCoding) {
            if (length > Integer.MAX_VALUE - 16) {
                throw new IOException("reply of " + length + " bytes: too large for one array");
            }
            c.body = length == 0 ? EMPTY : new byte[(int) length];
            c.phase = Phase.FIXED;
        } else {
            c.keepAlive = false;
            c.phase = Phase.UNTIL_CLOSE;
        }
        return c.phase == Phase.FIXED && length == 0;
    }

    /** Where the line starting at {@code p} ends, before its CR LF (or LF). */
    private static int lineEnd(byte[] a, int p, int end) {
        int i = p;
        while (i < end && a[i] != '\n') {
            i++;
        }
        return i > p && a[i - 1] == '\r' ? i - 1 : i;
    }

    /** The start of the line after the one that ends at {@code e}. */
    private static int next(byte[] a, int e, int end) {
        int i = e;
        while (i < end && a[i] != '\n') {
            i++;
        }
        return i + 1;
    }

    private static boolean startsWith(byte[] a, String prefix) {
        for (int i = 0; i < prefix.length(); i++) {
            if (a[i] != prefix.charAt(i)) {
                return false;
            }
        }
        return true;
    }

    private static boolean digit(byte b) {
        return b >= '0' && b <= '9';
    }

    private static int skipSpace(byte[] a, int p, int end) {
        while (p < end && (a[p] == ' ' || a[p] == '\t')) {
            p++;
        }
        return p;
    }

    private static int trimSpace(byte[] a, int start, int e) {
        while (e > start && (a[e - 1] == ' ' || a[e - 1] == '\t')) {
            e--;
        }
        return e;
    }

    /** Whether {@code a[from, to)} is {@code lower}, ignoring ASCII case. */
    private static boolean named(byte[] a, int from, int to, byte[] lower) {
        if (to - from != lower.length) {
            return false;
        }
        for (int i = 0; i < lower.length; i++) {
            byte b = a[from + i];
            if (b >= 'A' && b <= 'Z') {
                b += 'a' - 'A';
            }
            if (b != lower[i]) {
                return false;
            }
        }
        return true;
    }

    /** The decimal number {@code a[from, to)}, or -1 when it is not one. */
    private static long decimal(byte[] a, int from, int to) {
        if (from == to || to - from > 18) {
            return -1;
        }
        long v = 0;
        for (int i = from; i < to; i++) {
            if (!digit(a[i])) {
                return -1;
            }
            v = v * 10 + (a[i] - '0');
        }
        return v;
    }

    private static String printable(byte[] a, int from, int to) {
        return printable(new String(a, from, Math.min(to, from + 100) - from, StandardCharsets.ISO_8859_1));
    }

    private static String printable(String s) {
        String t = s.length() > 80 ? s.substring(0, 80) + "..." : s;
        return t.replaceAll("[^\\x20-\\x7e]", "?");
    }

    private void finish(Conn c) {
        Exchange x = c.x;
        byte[] body = c.body == null ? EMPTY : c.body.length == c.filled ? c.body : Arrays.copyOf(c.body, c.filled);
        FLCommunication.Reply reply = new FLCommunication.Reply(c.status, body);
        c.x = null;
        c.body = null;
        x.conn = null;
        if (c.keepAlive && c.in.position() == 0 && x.written()) {
            toPool(c);
        } else {
            close(c);
        }
        done(x, null);
        x.complete(reply);
    }

    /** Drops the exchange's deadline; with {@code error}, fails it. */
    private static void done(Exchange x, Throwable error) {
        if (x.deadline != null) {
            x.deadline.x = null;
            x.deadline = null;
        }
        if (error != null) {
            x.completeExceptionally(error);
        }
    }

    /**
     * The connection failed: closed; its exchange fails, or is sent once more on a fresh
     * connection when it met a stale keep-alive: a pooled connection that failed with a write
     * error or a reset before any byte of the reply, i.e. the server closed it without taking the
     * request (a socket closed with unread bytes resets). A clean end of stream is not retried:
     * it is also what a server that took the request and died sends, and the round loop must see
     * that outage ({@link ServerExchange}: a restarted server may have lost this device's upload).
     */
    private void fail(Conn c, IOException e) {
        Exchange x = c.x;
        c.x = null;
        close(c);
        if (x == null || x.isDone()) {
            return;
        }
        x.conn = null;
        if (c.reused && !x.answered && !x.retried && !(e instanceof EOFException) && !closed) {
            x.retried = true;
            x.out[0].rewind();
            x.out[1].rewind();
            connect(x);
            return;
        }
        done(x, e);
    }

    /** A stop cancelled the exchange: its connection goes (the reply, if it comes, is nobody's). */
    private void abort(Exchange x) {
        Conn c = x.conn;
        x.conn = null;
        done(x, null);
        if (c != null && c.x == x) {
            c.x = null;
            close(c);
        }
    }

    private void expire() {
        long now = System.nanoTime();
        while (!deadlines.isEmpty() && deadlines.peek().atNanos - now <= 0) {
            Exchange x = deadlines.poll().x;
            if (x == null) {
                continue;
            }
            Conn c = x.conn;
            x.conn = null;
            if (c != null) {
                c.x = null;
                close(c);
            }
            done(x, new HttpTimeoutException("request timed out"));
        }
    }

    private Conn takeIdle(String hostPort) {
        ArrayDeque<Conn> q = idleByHost.get(hostPort);
        while (q != null && !q.isEmpty()) {
            Conn c = q.pollLast(); // the most recently used: the least likely to have been closed by the server
            idle.remove(c);
            try {
                c.in.clear();
                if (c.ch.isOpen() && c.ch.read(c.in) == 0) { // a close that arrived since the last select shows here
                    return c;
                }
            } catch (IOException e) {
                // reset while idle
            }
            close(c);
        }
        return null;
    }

    private void toPool(Conn c) {
        c.phase = Phase.IDLE;
        c.reused = false;
        c.in.clear();
        c.key.interestOps(SelectionKey.OP_READ); // an EOF (the server closed it) shows at once
        idleByHost.computeIfAbsent(c.hostPort, k -> new ArrayDeque<>()).addLast(c);
        idle.add(c);
        if (idleCap > 0 && idle.size() > idleCap) {
            close(idle.iterator().next());
        }
    }

    /** An idle connection became readable: the server closed it (or sent what no request asked for). */
    private void idleReadable(Conn c) throws IOException {
        c.in.clear();
        if (c.ch.read(c.in) != 0) {
            close(c);
        }
    }

    private void close(Conn c) {
        if (c.phase == Phase.IDLE && idle.remove(c)) {
            ArrayDeque<Conn> q = idleByHost.get(c.hostPort);
            if (q != null) {
                q.remove(c);
            }
        }
        c.phase = Phase.IDLE;
        try {
            c.ch.close(); // also cancels its key
        } catch (IOException e) {
            // closed anyway
        }
    }

    /** Counts for tests and diagnostics, taken on the selector thread: open connections, idle ones. */
    int[] connections() throws Exception {
        CompletableFuture<int[]> f = new CompletableFuture<>();
        submit(() -> {
            int open = 0;
            for (SelectionKey k : selector.keys()) {
                open += k.isValid() ? 1 : 0;
            }
            f.complete(new int[] {open, idle.size()});
        });
        return f.get(5, TimeUnit.SECONDS);
    }
}
