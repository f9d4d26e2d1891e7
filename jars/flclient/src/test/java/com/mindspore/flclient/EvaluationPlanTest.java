package com.mindspore.flclient;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class EvaluationPlanTest {
    @Test
    void r16EvaluatesEveryClientAfterEveryIteration() {
        EvaluationPlan all = EvaluationPlan.EVERY_CLIENT_EVERY_ITERATION;
        for (int it = 1; it <= 7; it++) {
            assertTrue(all.evaluates("f3_writer_003", it, 7));
        }
    }

    @Test
    void everyKthIterationAndTheLastOne() {
        EvaluationPlan plan = new EvaluationPlan(5, 1.0, 0);
        StringBuilder evaluated = new StringBuilder();
        for (int it = 1; it <= 12; it++) {
            if (plan.evaluates("c", it, 12)) {
                evaluated.append(it).append(' ');
            }
        }
        assertEquals("5 10 12 ", evaluated.toString());
    }

    @Test
    void theSampleIsSeededByClientIdAndIterationAndHasTheFraction() {
        EvaluationPlan a = new EvaluationPlan(1, 0.2, 42);
        EvaluationPlan b = new EvaluationPlan(1, 0.2, 42);
        EvaluationPlan other = new EvaluationPlan(1, 0.2, 43);
        int chosen = 0;
        int differs = 0;
        int n = 3500;
        for (int i = 0; i < n; i++) {
            String id = "f" + i + "_writer";
            boolean x = a.evaluates(id, 3, 10);
            assertEquals(x, b.evaluates(id, 3, 10), "same seed, same client, same iteration");
            chosen += x ? 1 : 0;
            differs += x != other.evaluates(id, 3, 10) ? 1 : 0;
        }
        assertTrue(Math.abs(chosen - 0.2 * n) < 4 * Math.sqrt(n * 0.2 * 0.8), "chosen " + chosen + " of " + n);
        assertTrue(differs > 0.2 * n, "another seed draws another sample (" + differs + " differ)");
        int changes = 0;
        for (int i = 0; i < 200; i++) {
            changes += a.evaluates("f" + i, 1, 10) != a.evaluates("f" + i, 2, 10) ? 1 : 0;
        }
        assertTrue(changes > 20, "the sample changes between iterations (" + changes + ")");
    }

    @Test
    void refusesWhatCannotBeAPlan() {
        assertThrows(IllegalArgumentException.class, () -> new EvaluationPlan(0, 1.0, 0));
        assertThrows(IllegalArgumentException.class, () -> new EvaluationPlan(1, 0.0, 0));
        assertThrows(IllegalArgumentException.class, () -> new EvaluationPlan(1, 1.5, 0));
        assertThrows(IllegalArgumentException.class, () -> new EvaluationPlan(1, Double.NaN, 0));
        assertFalse(new EvaluationPlan(2, 1.0, 0).evaluates("c", 1, 10));
    }
}
