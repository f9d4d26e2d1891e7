package com.mindspore.flclient.demo.lenet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.mindspore.flclient.model.RunType;
import com.mindspore.flclient.cases.DataSet;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reading the FEMNIST bin files: layout, pairing, padding and the error messages. */
class LenetClientTest {
    private static final int IMAGE = 32 * 32 * 3;

    @TempDir
    Path tmp;

    /** Image i has value (i*10000 + h*100 + w) * 10 + c at (h, w, c), so every position is recognisable. */
    private Path writeImages(String name, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n * IMAGE * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            for (int h = 0; h < 32; h++) {
                for (int w = 0; w < 32; w++) {
                    for (int c = 0; c < 3; c++) {
                        b.putFloat(value(i, h, w, c));
                    }
                }
            }
        }
        Path p = tmp.resolve(name);
        Files.write(p, b.array());
        return p;
    }

    private static float value(int i, int h, int w, int c) {
        return (i * 10000 + h * 100 + w) * 10 + c;
    }

    private Path writeLabels(String name, int... labels) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(labels.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int l : labels) {
            b.putInt(l);
        }
        Path p = tmp.resolve(name);
        Files.write(p, b.array());
        return p;
    }

    @Test
    void imagesAreTransposedFromNhwcToNchw() throws IOException {
        LenetClient c = new LenetClient();
        Map<RunType, Integer> sizes = c.initDataSets(Map.of(RunType.TRAINMODE,
                List.of(writeImages("d.bin", 2).toString(), writeLabels("l.bin", 4, 7).toString())));
        assertEquals(2, sizes.get(RunType.TRAINMODE));
        float[] batch = new float[2 * IMAGE];
        int[] labels = new int[2];
        DataSet ds = dataSet(c, RunType.TRAINMODE);
        assertEquals(2, ds.fillBatch(0, 2, batch, labels));
        assertArrayEquals(new int[] {4, 7}, labels);
        for (int i = 0; i < 2; i++) {
            for (int ch = 0; ch < 3; ch++) {
                for (int h = 0; h < 32; h += 7) {
                    for (int w = 0; w < 32; w += 5) {
                        assertEquals(value(i, h, w, ch), batch[i * IMAGE + ch * 1024 + h * 32 + w]);
                    }
                }
            }
        }
    }

    @Test
    void theLastBatchIsPaddedWithRepeatsAndSaysHowManyAreReal() throws IOException {
        LenetClient c = new LenetClient();
        c.initDataSets(Map.of(RunType.TRAINMODE,
                List.of(writeImages("d.bin", 5).toString(), writeLabels("l.bin", 0, 1, 2, 3, 4).toString())));
        DataSet ds = dataSet(c, RunType.TRAINMODE);
        assertEquals(2, ds.batchNum(4));
        assertEquals(3, ds.paddedCount(4));
        float[] batch = new float[4 * IMAGE];
        int[] labels = new int[4];
        assertEquals(1, ds.fillBatch(1, 4, batch, labels));
        assertArrayEquals(new int[] {4, 0, 1, 2}, labels);
    }

    @Test
    void aDataFileThatIsNoWholeNumberOfImagesIsRefused() throws IOException {
        Path bad = tmp.resolve("d.bin");
        Files.write(bad, new byte[IMAGE * 4 + 8]);
        LenetClient c = new LenetClient();
        String msg = assertThrows(IllegalArgumentException.class, () -> c.initDataSets(Map.of(RunType.TRAINMODE,
                List.of(bad.toString(), writeLabels("l.bin", 1).toString())))).getMessage();
        assertTrue(msg.contains("not a multiple of 12288") && msg.contains("32x32x3"), msg);
    }

    @Test
    void imagesAndLabelsMustPairUp() throws IOException {
        LenetClient c = new LenetClient();
        String msg = assertThrows(IllegalArgumentException.class, () -> c.initDataSets(Map.of(RunType.TRAINMODE,
                List.of(writeImages("d.bin", 3).toString(), writeLabels("l.bin", 1, 2).toString())))).getMessage();
        assertTrue(msg.contains("3 images") && msg.contains("2 labels"), msg);
    }

    @Test
    void aNegativeLabelIsRefusedNamingTheSample() throws IOException {
        LenetClient c = new LenetClient();
        String msg = assertThrows(IllegalArgumentException.class, () -> c.initDataSets(Map.of(RunType.EVALMODE,
                List.of(writeImages("d.bin", 2).toString(), writeLabels("l.bin", 1, -3).toString())))).getMessage();
        assertTrue(msg.contains("label -3 of sample 1"), msg);
    }

    @Test
    void trainingDataNeedsItsLabelFile() throws IOException {
        LenetClient c = new LenetClient();
        String msg = assertThrows(IllegalArgumentException.class, () -> c.initDataSets(Map.of(RunType.TRAINMODE,
                List.of(writeImages("d.bin", 1).toString())))).getMessage();
        assertTrue(msg.contains("label file is missing"), msg);
    }

    @Test
    void inferenceDataMayComeWithoutLabelsOrFromMemory() throws IOException {
        LenetClient c = new LenetClient();
        assertEquals(2, c.initDataSets(Map.of(RunType.INFERMODE, List.of(writeImages("d.bin", 2).toString())))
                .get(RunType.INFERMODE));
        assertEquals(3, c.initInferData(new float[3 * IMAGE], 3).get(RunType.INFERMODE));
        assertThrows(IllegalArgumentException.class, () -> c.initInferData(new float[IMAGE + 1], 1));
    }

    private static DataSet dataSet(LenetClient c, RunType type) {
        return c.getDataSet(type);
    }
}
