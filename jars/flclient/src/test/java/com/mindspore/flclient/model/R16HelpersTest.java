package com.mindspore.flclient.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;

/** r1.6's small helpers of the case API: CommonUtils, ClientManager. */
class R16HelpersTest {
    /** A case as r1.6 code writes one, with nothing to do. */
    static final class IdleCase extends Client {
        @Override
        public List<Callback> initCallbacks(RunType runType, DataSet dataSet) {
            return List.of();
        }

        @Override
        public Map<RunType, Integer> initDataSets(Map<RunType, List<String>> files) {
            return Map.of();
        }

        @Override
        public float getEvalAccuracy(List<Callback> evalCallbacks) {
            return 0f;
        }

        @Override
        public List<Integer> getInferResult(List<Callback> inferCallbacks) {
            return List.of();
        }
    }

    @Test
    void maxScoreIndexCountsFromTheRowStartAndTakesTheFirstOfATie() {
        float[] scores = {9f, 0f, 1f, 3f, 3f, 2f};
        assertEquals(2, CommonUtils.getMaxScoreIndex(scores, 1, 6));
        assertEquals(0, CommonUtils.getMaxScoreIndex(scores, 0, 3));
    }

    @Test
    void maxScoreIndexRefusesARangeOutsideTheScores() {
        String msg = assertThrows(IllegalArgumentException.class,
                () -> CommonUtils.getMaxScoreIndex(new float[4], 2, 6)).getMessage();
        assertTrue(msg.contains("[2, 6) is not in scores of length 4"), msg);
    }

    @Test
    void clientManagerKeepsTheRegisteredInstanceByClassName() {
        IdleCase c = new IdleCase();
        ClientManager.registerClient(c);
        assertSame(c, ClientManager.getClient(IdleCase.class.getName()));
        assertNull(ClientManager.getClient("no.such.Case"));
        assertThrows(IllegalArgumentException.class, () -> ClientManager.registerClient(null));
    }
}
