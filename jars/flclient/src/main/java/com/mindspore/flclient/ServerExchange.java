package com.mindspore.flclient;

import java.io.IOException;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import java.util.logging.Logger;

import mindspore.schema.ResponseCode;

/**
 * One request of a round, with the client's patience: SucNotReady and safemode are waited out
 * ({@code sleepTime} apart); SystemError, the plain-text "finished", unreadable replies and an
 * unreachable server are failures, retried after the waits of {@link RetryPolicy} (exponential
 * backoff with jitter) until the streak exceeds {@code retryTimeout} (or {@code maxRetries}, when
 * set). A refused TLS handshake is not retried. A reply the round must decide on (SUCCEED,
 * OutOfTime, RequestError, ...) is handed to the caller's continuation.
 */
final class ServerExchange {
    /** What a SucNotReady reply means to the caller. */
    enum NotReady {
        /** Ask again after sleepTime, as long as the server keeps saying so (getModel in a round). */
        WAIT,
        /**
         * As WAIT, but the first SucNotReady after the server was unreachable in this exchange is
         * returned: a server that restarted meanwhile may have lost this device's upload.
         */
        RETURN_AFTER_OUTAGE,
        /** Count it as a failed attempt (the standalone getModel, which has no round to wait for). */
        FAIL
    }

    private final FLParameter p;
    private final Logger log;
    private final StopSignal stop;
    private final FLCommunication comm;
    private final RetryPolicy retry;
    /** The engine's gate, which spaces out and ends SucNotReady waits (null: sleepTime, as r1.6). */
    private final CheckInGate gate;

    private int failures;
    private long streakStartNanos;
    private int lastRetcode;
    private boolean reconnected;

    ServerExchange(FLParameter p, Logger log, StopSignal stop, FLCommunication comm, CheckInGate gate) {
        this(p, log, stop, comm, RetryPolicy.of(p), gate);
    }

    ServerExchange(FLParameter p, Logger log, StopSignal stop, FLCommunication comm, RetryPolicy retry,
                   CheckInGate gate) {
        this.gate = gate;
        this.p = p;
        this.log = log;
        this.stop = stop;
        this.comm = comm;
        this.retry = retry;
    }

    /** The retcode of the last FlatBuffer reply, for the result callbacks. */
    int lastRetcode() {
        return lastRetcode;
    }

    /** True when the last exchange reached the server only after it had been unreachable (a restart, maybe). */
    boolean reconnected() {
        return reconnected;
    }

    /**
     * Posts {@code body} to the round until the server answers with something other than "wait",
     * then continues with {@code then}: the reply, or null when the job must end (stopped, out of
     * retries, TLS refused). Waits and pending requests are transitions ({@link Next}), so no
     * thread is held while the server is away or busy.
     *
     * @param finishedIsDecisive whether the plain-text "finished" ends the exchange (it is given to
     *                           {@code then}, kind FINISHED) instead of counting as a failure
     */
    Next exchange(String round, byte[] body, Function<FLCommunication.Reply, FLMessages.Response> parse,
                  NotReady notReady, boolean finishedIsDecisive, Function<FLMessages.Response, Next> then) {
        reconnected = false;
        return new Attempts(round, body, parse, notReady, finishedIsDecisive, then).attempt();
    }

    Next exchange(String round, byte[] body, Function<FLCommunication.Reply, FLMessages.Response> parse,
                  NotReady notReady, Function<FLMessages.Response, Next> then) {
        return exchange(round, body, parse, notReady, false, then);
    }

    /** The attempts of one exchange: the state that the old blocking loop kept in local variables. */
    private final class Attempts {
        private final String round;
        private final byte[] body;
        private final Function<FLCommunication.Reply, FLMessages.Response> parse;
        private final NotReady notReady;
        private final boolean finishedIsDecisive;
        private final Function<FLMessages.Response, Next> then;
        private boolean outage;
        private boolean toldNotReady;

        Attempts(String round, byte[] body, Function<FLCommunication.Reply, FLMessages.Response> parse,
                 NotReady notReady, boolean finishedIsDecisive, Function<FLMessages.Response, Next> then) {
            this.round = round;
            this.body = body;
            this.parse = parse;
            this.notReady = notReady;
            this.finishedIsDecisive = finishedIsDecisive;
            this.then = then;
        }

        Next attempt() {
            if (stop.isStopped()) {
                return then.apply(null);
            }
            CompletableFuture<FLCommunication.Reply> sent = comm.send(round, body);
            return Next.await(sent, () -> answer(sent));
        }

        private Next answer(CompletableFuture<FLCommunication.Reply> sent) {
            String problem;
            try {
                FLCommunication.Reply reply = comm.reply(round, sent);
                TrainListener.traffic(p, log, round, body.length, reply.body.length);
                FLMessages.Response r = parse.apply(reply);
                if (r.kind == FLMessages.Kind.REPLY) {
                    lastRetcode = r.retcode;
                }
                if (r.kind == FLMessages.Kind.SAFEMODE) {
                    log.info("[" + round + "] the cluster is in safemode: asking again in " + p.getSleepTime() + " ms");
                    endStreak(round);
                    return Next.after(p.getSleepTime(), this::attempt);
                }
                if (r.kind == FLMessages.Kind.FINISHED && finishedIsDecisive) {
                    endStreak(round);
                    return then.apply(r);
                }
                if (r.kind == FLMessages.Kind.REPLY && r.retcode == ResponseCode.SucNotReady
                        && notReady != NotReady.FAIL) {
                    endStreak(round);
                    if (outage && notReady == NotReady.RETURN_AFTER_OUTAGE) {
                        return then.apply(r);
                    }
                    if (gate == null) {
                        log.info("[" + round + "] not ready yet (" + r + "): asking again in " + p.getSleepTime() + " ms");
                        return Next.after(p.getSleepTime(), this::attempt);
                    }
                    if (!toldNotReady) {
                        toldNotReady = true; // once per exchange: a device may be told so a hundred times
                        log.info("[" + round + "] not ready yet (" + r + "): asking again when a device of this "
                                + "simulation has the model, or in turn with the others (every " + p.getSleepTime()
                                + " ms x waiting devices / " + CheckInGate.POLLERS + ")");
                    }
                    return Next.await(gate.notReadyWait(p.getSleepTime()), this::attempt);
                }
                if (r.kind == FLMessages.Kind.REPLY && r.retcode != ResponseCode.SystemError
                        && r.retcode != ResponseCode.SucNotReady) {
                    endStreak(round);
                    return then.apply(r);
                }
                problem = r.kind == FLMessages.Kind.FINISHED
                        ? "the server's training job is disabled or finished"
                        : r.kind == FLMessages.Kind.REPLY ? "server answered " + r : "unreadable reply: " + r;
            } catch (FLCommunication.TlsFailure e) {
                log.severe("[" + round + "] " + e.getMessage() + "; not retried, the job ends");
                return then.apply(null);
            } catch (IOException e) {
                problem = "server " + comm.urlOf(round) + " unreachable: " + e;
                outage = true;
            } catch (StopSignal.StoppedException e) {
                return then.apply(null);
            }
            long now = System.nanoTime();
            if (failures++ == 0) {
                streakStartNanos = now;
            }
            long elapsedMs = (now - streakStartNanos) / 1_000_000;
            String giveUp = retry.giveUp(failures, elapsedMs);
            if (giveUp != null) {
                log.severe("[" + round + "] " + problem + "; " + giveUp);
                return then.apply(null);
            }
            long wait = Math.min(retry.delayMs(failures), retry.timeoutMs() - elapsedMs);
            log.warning("[" + round + "] " + problem + "; attempt " + failures + " failed, retrying in " + wait
                    + " ms (" + retry.bounds() + ")");
            return Next.after(wait, this::attempt);
        }
    }

    private void endStreak(String round) {
        reconnected |= failures > 0;
        if (failures > 0) {
            log.info("[" + round + "] the server answers again after " + failures + " failed attempts over "
                    + (System.nanoTime() - streakStartNanos) / 1_000_000 + " ms");
        }
        failures = 0;
    }
}
