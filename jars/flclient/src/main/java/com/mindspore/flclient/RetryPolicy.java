package com.mindspore.flclient;

import java.util.Random;

/**
 * How long a client keeps asking a server that fails (unreachable, SystemError, an unreadable
 * reply, ...): exponential backoff with full jitter, bounded in time.
 *
 * <p>After the n-th failure in a row the client waits a random time in {@code [0, ceiling(n)]}
 * with {@code ceiling(n) = min(cap, base × 2^(n-1))}, {@code base} = {@code sleepTime} (200 ms
 * when that is 0) and {@code cap} = 10 s (or base, if larger). The jitter spreads the clients
 * of a restarted server over the window instead of letting them all knock at the same instant.
 * The streak of failures is tolerated for {@code retryTimeout} seconds from its first failure
 * (the last attempt is made at that deadline); with {@code maxRetries} set as well, the job also
 * ends after that many retries, whichever comes first. A decisive answer ends the streak.
 *
 * <p>Why time and not a count: a count of attempts bounds nothing a device can plan with (11
 * attempts at a 250 ms poll gave up after 2.5 s of server downtime); a server restart takes
 * seconds to minutes.
 */
final class RetryPolicy {
    /** The first backoff ceiling when sleepTime is 0 (no hot loop against a dead server). */
    static final long MIN_BASE_MS = 200;
    /** Largest ceiling: a device notices a server that is back within about this long. */
    static final long CAP_MS = 10_000;

    private final long baseMs;
    private final long capMs;
    private final long timeoutMs;
    private final int maxRetries;
    private final Random random;

    /**
     * @param maxRetries retries tolerated after the first failure, or {@link FLParameter#MAX_RETRIES_UNSET}
     * @param random     the jitter's source (one per client; a fixed seed makes the schedule reproducible)
     */
    RetryPolicy(long baseMs, long capMs, long timeoutMs, int maxRetries, Random random) {
        if (baseMs <= 0 || capMs < baseMs || timeoutMs <= 0) {
            throw new IllegalArgumentException("backoff base " + baseMs + " ms, cap " + capMs + " ms, timeout "
                    + timeoutMs + " ms: need 0 < base <= cap and timeout > 0");
        }
        this.baseMs = baseMs;
        this.capMs = capMs;
        this.timeoutMs = timeoutMs;
        this.maxRetries = maxRetries;
        this.random = random;
    }

    /**
     * The jitter of every client's waits: one thread-safe generator for the JVM (a SecureRandom
     * per client cost thousands of waiting clients a seeded generator each, for no secret).
     */
    private static final Random JITTER = new Random();

    /** The policy of a client's parameters. */
    static RetryPolicy of(FLParameter p) {
        long base = p.getSleepTime() > 0 ? p.getSleepTime() : MIN_BASE_MS;
        return new RetryPolicy(base, Math.max(CAP_MS, base), p.getRetryTimeout() * 1000L, p.getMaxRetries(), JITTER);
    }

    /** The longest wait after the {@code failures}-th failure in a row (1-based). */
    long ceilingMs(int failures) {
        long ceiling = baseMs;
        for (int i = 1; i < failures && ceiling < capMs; i++) {
            ceiling *= 2;
        }
        return Math.min(capMs, ceiling);
    }

    /** The wait after the {@code failures}-th failure in a row: uniform in [0, ceiling]. */
    long delayMs(int failures) {
        return (long) (random.nextDouble() * (ceilingMs(failures) + 1));
    }

    long timeoutMs() {
        return timeoutMs;
    }

    /** The bounds in words, for the log. */
    String bounds() {
        return "giving up " + timeoutMs / 1000 + " s after the first failure"
                + (maxRetries == FLParameter.MAX_RETRIES_UNSET ? "" : " or after " + maxRetries + " retries");
    }

    /**
     * Null while the streak is tolerated, else why it is not (the end of the log line).
     *
     * @param failures  failures in a row so far (1-based)
     * @param elapsedMs since the first failure of the streak
     */
    String giveUp(int failures, long elapsedMs) {
        if (maxRetries != FLParameter.MAX_RETRIES_UNSET && failures > maxRetries) {
            return "giving up after " + failures + " failed attempts in a row (maxRetries = " + maxRetries + ")";
        }
        if (elapsedMs >= timeoutMs) {
            return "giving up after " + failures + " failed attempts in a row over " + elapsedMs / 1000.0
                    + " s (retryTimeout = " + timeoutMs / 1000 + " s)";
        }
        return null;
    }
}
