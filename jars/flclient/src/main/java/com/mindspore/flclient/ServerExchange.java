package com.mindspore.flclient;

import java.io.IOException;
import java.util.function.Function;
import java.util.logging.Logger;

import mindspore.schema.ResponseCode;

/**
 * One request of a round, with the client's patience: SucNotReady and safemode are waited out
 * ({@code sleepTime} apart); SystemError, the plain-text "finished", unreadable replies and an
 * unreachable server are retried up to {@code maxRetries} times in a row before the job gives
 * up. A reply the round must decide on (SUCCEED, OutOfTime, RequestError, ...) is returned.
 */
final class ServerExchange {
    private final FLParameter p;
    private final Logger log;
    private final StopSignal stop;
    private final FLCommunication comm;

    private int failures;
    private int lastRetcode;

    ServerExchange(FLParameter p, Logger log, StopSignal stop, FLCommunication comm) {
        this.p = p;
        this.log = log;
        this.stop = stop;
        this.comm = comm;
    }

    /** The retcode of the last FlatBuffer reply, for the result callbacks. */
    int lastRetcode() {
        return lastRetcode;
    }

    /**
     * Posts {@code body} to the round until the server answers with something other than "wait".
     *
     * @param boundNotReady count SucNotReady as a failed attempt instead of waiting (the
     *                      standalone getModel, which has no round to wait for)
     * @return the reply, or null when the job must end (stopped or out of retries)
     */
    FLMessages.Response exchange(String round, byte[] body,
                                 Function<FLCommunication.Reply, FLMessages.Response> parse, boolean boundNotReady) {
        while (true) {
            if (stop.isStopped()) {
                return null;
            }
            String problem;
            try {
                FLMessages.Response r = parse.apply(comm.post(round, body));
                if (r.kind == FLMessages.Kind.REPLY) {
                    lastRetcode = r.retcode;
                }
                if (r.kind == FLMessages.Kind.SAFEMODE) {
                    log.info("[" + round + "] the cluster is in safemode: asking again in " + p.getSleepTime() + " ms");
                    failures = 0;
                    if (stop.sleep(p.getSleepTime())) {
                        return null;
                    }
                    continue;
                }
                if (r.kind == FLMessages.Kind.REPLY && r.retcode == ResponseCode.SucNotReady && !boundNotReady) {
                    failures = 0;
                    log.info("[" + round + "] not ready yet (" + r + "): asking again in " + p.getSleepTime() + " ms");
                    if (stop.sleep(p.getSleepTime())) {
                        return null;
                    }
                    continue;
                }
                if (r.kind == FLMessages.Kind.REPLY && r.retcode != ResponseCode.SystemError
                        && r.retcode != ResponseCode.SucNotReady) {
                    failures = 0;
                    return r;
                }
                problem = r.kind == FLMessages.Kind.FINISHED
                        ? "the server's training job is disabled or finished"
                        : r.kind == FLMessages.Kind.REPLY ? "server answered " + r : "unreadable reply: " + r;
            } catch (IOException e) {
                problem = "server " + comm.urlOf(round) + " unreachable: " + e;
            } catch (StopSignal.StoppedException e) {
                return null;
            }
            failures++;
            if (failures > p.getMaxRetries()) {
                log.severe("[" + round + "] " + problem + "; giving up after " + failures
                        + " failed attempts in a row (maxRetries = " + p.getMaxRetries() + ")");
                return null;
            }
            log.warning("[" + round + "] " + problem + "; attempt " + failures + " of " + (p.getMaxRetries() + 1)
                    + ", retrying in " + p.getSleepTime() + " ms");
            if (stop.sleep(p.getSleepTime())) {
                return null;
            }
        }
    }
}
