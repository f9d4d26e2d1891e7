package com.mindspore.flclient;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.logging.Formatter;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * The logger of one job. Hundreds of clients may run as threads of one JVM, each with its own
 * log file, so every job gets an anonymous {@link Logger} (not registered in the global
 * LogManager namespace) with its own handler: the {@code logPath} file when one is given,
 * standard error otherwise. A line is {@code time [fl_id] LEVEL: <FLClient> message} (r1.6's shape
 * after the time and id). One line per record, flushed at once so that {@code grep} on a
 * running client's log sees its progress.
 */
final class JobLog implements AutoCloseable {
    /** r1.6's Common.addTag prefix of every client message. */
    static final String FL_TAG = "<FLClient> ";
    /** The time of the last line's second, formatted once for every line of that second ({@link #time}). */
    private static volatile Second lastSecond = new Second(Long.MIN_VALUE, ZoneOffset.UTC, "");

    /** {@code yyyy-MM-dd HH:mm:ss} of one epoch second in one time zone. */
    private static final class Second {
        final long epochSecond;
        final ZoneId zone;
        final String text;

        Second(long epochSecond, ZoneId zone, String text) {
            this.epochSecond = epochSecond;
            this.zone = zone;
            this.text = text;
        }
    }

    private final Logger logger;
    private final Handler handler;

    private JobLog(Logger logger, Handler handler) {
        this.logger = logger;
        this.handler = handler;
    }

    /**
     * @param logPath file to append to (parents created), or null for standard error
     * @param tag     put in every line (the client's id) so interleaved output stays readable
     */
    static JobLog open(String logPath, String tag) {
        Logger logger = Logger.getAnonymousLogger();
        logger.setUseParentHandlers(false);
        logger.setLevel(Level.ALL);
        Path file = null;
        if (logPath != null) {
            try {
                file = Path.of(logPath).toAbsolutePath();
                Files.createDirectories(file.getParent());
                Files.write(file, new byte[0], StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot open the client log " + logPath + ": " + e.getMessage(), e);
            }
        }
        Handler h = new LineHandler(file, tag);
        h.setLevel(Level.ALL);
        logger.addHandler(h);
        return new JobLog(logger, h);
    }

    /**
     * Appends {@code millis} as {@code yyyy-MM-dd HH:mm:ss.SSS} in {@code zone} (what
     * {@code DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSS")} writes): the date and time of the
     * second are formatted once per second, the milliseconds by hand. DateTimeFormatter's fraction
     * printer goes through BigDecimal; with a line per training step, C2 compiled it and
     * {@code BigDecimal.toPlainString} in every simulation, for ~2 µs a line.
     */
    static StringBuilder time(StringBuilder sb, long millis, ZoneId zone) {
        long epochSecond = Math.floorDiv(millis, 1000L);
        Second s = lastSecond;
        if (s.epochSecond != epochSecond || !s.zone.equals(zone)) {
            ZoneOffset offset = zone.getRules().getOffset(Instant.ofEpochSecond(epochSecond));
            LocalDateTime t = LocalDateTime.ofEpochSecond(epochSecond, 0, offset);
            StringBuilder d = new StringBuilder(19);
            pad(d, t.getYear(), 4).append('-');
            pad(d, t.getMonthValue(), 2).append('-');
            pad(d, t.getDayOfMonth(), 2).append(' ');
            pad(d, t.getHour(), 2).append(':');
            pad(d, t.getMinute(), 2).append(':');
            pad(d, t.getSecond(), 2);
            s = new Second(epochSecond, zone, d.toString());
            lastSecond = s;
        }
        sb.append(s.text).append('.');
        return pad(sb, (int) Math.floorMod(millis, 1000L), 3);
    }

    private static StringBuilder pad(StringBuilder sb, int value, int width) {
        String digits = Integer.toString(value);
        for (int i = digits.length(); i < width; i++) {
            sb.append('0');
        }
        return sb.append(digits);
    }

    Logger logger() {
        return logger;
    }

    @Override
    public void close() {
        logger.removeHandler(handler);
        handler.close();
    }

    /**
     * Appends each record to the file (opened and closed per line) or to standard error. No
     * stream stays open: thousands of clients waiting in one JVM would each hold a descriptor
     * and some 24 KB of encoder buffers for a log line a minute.
     */
    private static final class LineHandler extends Handler {
        private final Path file;

        LineHandler(Path file, String tag) {
            this.file = file;
            setFormatter(new Formatter() {
                @Override
                public String format(LogRecord r) {
                    StringBuilder sb = new StringBuilder(128);
                    // r1.6's java.util.logging lines read "INFO: <FLClient> message"; the tutorial's
                    // greps show that shape, so it follows the time and the client's id here
                    time(sb, System.currentTimeMillis(), ZoneId.systemDefault()).append(" [").append(tag).append("] ")
                            .append(r.getLevel().getName()).append(": ").append(FL_TAG).append(formatMessage(r));
                    if (r.getThrown() != null) {
                        sb.append(" | ").append(r.getThrown());
                    }
                    return sb.append(System.lineSeparator()).toString();
                }
            });
        }

        @Override
        public synchronized void publish(LogRecord record) {
            if (!isLoggable(record)) {
                return;
            }
            byte[] line = getFormatter().format(record).getBytes(StandardCharsets.UTF_8);
            if (file == null) {
                System.err.write(line, 0, line.length);
                System.err.flush();
                return;
            }
            try {
                Files.write(file, line, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            } catch (IOException e) {
                reportError("cannot append to " + file + ": " + e.getMessage(), e, java.util.logging.ErrorManager.WRITE_FAILURE);
            }
        }

        @Override
        public void flush() {
            // every line is written when it is published
        }

        @Override
        public void close() {
            // nothing stays open
        }
    }
}
