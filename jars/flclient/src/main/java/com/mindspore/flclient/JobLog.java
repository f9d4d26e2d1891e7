package com.mindspore.flclient;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
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
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSS");

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
                    sb.append(LocalDateTime.now().format(TIME)).append(" [").append(tag).append("] ")
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
