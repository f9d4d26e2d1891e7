package com.mindspore.flclient;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;

/** The backoff schedule and the bounds of {@link RetryPolicy}: one behaviour per test. */
class RetryPolicyTest {
    private static RetryPolicy policy(long seed) {
        return new RetryPolicy(250, 10_000, 300_000, FLParameter.MAX_RETRIES_UNSET, new Random(seed));
    }

    private static List<Long> schedule(RetryPolicy r, int n) {
        List<Long> delays = new ArrayList<>();
        for (int i = 1; i <= n; i++) {
            delays.add(r.delayMs(i));
        }
        return delays;
    }

    @Test
    void ceilingsDoubleFromTheBaseUpToTheCap() {
        RetryPolicy r = policy(1);
        List<Long> ceilings = new ArrayList<>();
        for (int i = 1; i <= 9; i++) {
            ceilings.add(r.ceilingMs(i));
        }
        assertEquals(List.of(250L, 500L, 1000L, 2000L, 4000L, 8000L, 10_000L, 10_000L, 10_000L), ceilings);
        assertEquals(10_000L, r.ceilingMs(10_000), "no overflow for a streak of any length");
    }

    @Test
    void everyDelayIsJitteredBetweenZeroAndItsCeiling() {
        RetryPolicy r = policy(7);
        long min = Long.MAX_VALUE;
        long max = 0;
        for (int i = 0; i < 2000; i++) {
            long d = r.delayMs(6);
            assertTrue(d >= 0 && d <= 8000, "delay " + d + " outside [0, 8000]");
            min = Math.min(min, d);
            max = Math.max(max, d);
        }
        assertTrue(min < 800 && max > 7200, "full jitter covers the range: min " + min + ", max " + max);
    }

    @Test
    void aFixedSeedGivesTheSameScheduleAndAnotherSeedAnother() {
        assertEquals(schedule(policy(42), 20), schedule(policy(42), 20));
        assertNotEquals(schedule(policy(42), 20), schedule(policy(43), 20));
    }

    @Test
    void theStreakIsToleratedUntilTheRetryTimeout() {
        RetryPolicy r = policy(1);
        assertNull(r.giveUp(1000, 299_999));
        String why = r.giveUp(31, 300_000);
        assertTrue(why != null && why.contains("giving up after 31 failed attempts in a row over 300.0 s")
                && why.contains("retryTimeout = 300 s"), why);
    }

    @Test
    void maxRetriesWhenSetEndsTheStreakIfReachedFirst() {
        RetryPolicy r = new RetryPolicy(250, 10_000, 300_000, 3, new Random(1));
        assertNull(r.giveUp(3, 1000), "the third failure is retried once more");
        assertEquals("giving up after 4 failed attempts in a row (maxRetries = 3)", r.giveUp(4, 1000));
        assertTrue(r.giveUp(2, 300_000).contains("retryTimeout"), "the timeout still bounds it");
    }

    @Test
    void aClientsDefaultsOutliveMinutesOfDowntimeAndAZeroSleepTimeStillBacksOff() {
        FLParameter p = new FLParameter();
        assertEquals(300, p.getRetryTimeout());
        assertEquals(FLParameter.MAX_RETRIES_UNSET, p.getMaxRetries());
        RetryPolicy r = RetryPolicy.of(p);
        assertEquals(1000, r.ceilingMs(1), "the first wait is at most sleepTime");
        assertNull(r.giveUp(500, 299_000));
        p.setSleepTime(0);
        assertEquals(RetryPolicy.MIN_BASE_MS, RetryPolicy.of(p).ceilingMs(1));
    }
}
