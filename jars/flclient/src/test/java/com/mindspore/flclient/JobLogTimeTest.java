package com.mindspore.flclient;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.Random;

import org.junit.jupiter.api.Test;

/** JobLog's hand-made line time against the DateTimeFormatter pattern it replaced. */
class JobLogTimeTest {
    private static final DateTimeFormatter PATTERN = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSS");

    private static String expected(long millis, ZoneId zone) {
        return LocalDateTime.ofInstant(Instant.ofEpochMilli(millis), zone).format(PATTERN);
    }

    private static String actual(long millis, ZoneId zone) {
        return JobLog.time(new StringBuilder(), millis, zone).toString();
    }

    @Test
    void sameTextAsThePatternAcrossZonesSecondsAndADaylightSavingChange() {
        ZoneId[] zones = {ZoneId.of("UTC"), ZoneId.of("Asia/Shanghai"), ZoneId.of("Europe/Berlin"),
            ZoneId.of("America/St_Johns"), ZoneId.systemDefault()};
        // 2026-03-29 00:59:59.999 UTC: Berlin's clocks go from 02:00 to 03:00 one millisecond later
        long dst = Instant.parse("2026-03-29T00:59:59.999Z").toEpochMilli();
        long[] fixed = {0L, 1L, 999L, 1000L, 1001L, -1L, -999L, -1000L, -1001L, dst, dst + 1, dst - 1000, dst + 1000,
            Instant.parse("2000-02-29T23:59:59.050Z").toEpochMilli(), System.currentTimeMillis()};
        for (ZoneId zone : zones) {
            for (long t : fixed) {
                assertEquals(expected(t, zone), actual(t, zone), zone + " at " + t);
            }
        }
        Random random = new Random(7);
        long t = Instant.parse("2026-12-07T00:00:00Z").toEpochMilli();
        for (int i = 0; i < 20_000; i++) { // mostly within the cached second, sometimes across it, zones interleaved
            t += random.nextInt(random.nextBoolean() ? 40 : 3_000);
            ZoneId zone = zones[random.nextInt(zones.length)];
            assertEquals(expected(t, zone), actual(t, zone), zone + " at " + t);
        }
    }
}
