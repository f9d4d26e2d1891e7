package com.mindspore.lite;

import com.mindspore.flclient.cases.RuntimeModel;
import com.mindspore.lite.config.MSConfig;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The MindSpore Lite facade over the runtime, on the LeNet .ms shipped in the Python package. */
class LiteSessionTest {
    private static final Path LENET = Path.of(System.getProperty("user.dir"), "..", "..", "pyflclient", "package_data",
            "lenet_train.ms").normalize();

    @TempDir
    Path tmp;

    private static ByteBuffer direct(int bytes) {
        return ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
    }

    private static float[] images(int n, long seed) {
        Random r = new Random(seed);
        float[] x = new float[n * 32 * 32 * 3];
        for (int i = 0; i < x.length; i++) {
            x[i] = r.nextFloat();
        }
        return x;
    }

    @Test
    void inputsAreNhwcImagesAndInt32LabelsOfTheModelsBatch() {
        LiteSession s = TrainSession.createTrainSession(LENET.toString(), new MSConfig(), false);
        List<MSTensor> in = s.getInputs();
        assertArrayEquals(new int[] {32, 32, 32, 3}, in.get(0).getShape());
        assertArrayEquals(new int[] {32}, in.get(1).getShape());
        assertEquals(DataType.kNumberTypeInt32, in.get(1).getDataType());
        s.free();
    }

    @Test
    void evalModeLogitsAreTheRuntimesLogitsOfTheTransposedImages() {
        float[] nhwc = images(32, 1);
        LiteSession s = TrainSession.createTrainSession(LENET.toString(), new MSConfig(), false);
        ByteBuffer b = direct(nhwc.length * 4);
        b.asFloatBuffer().put(nhwc);
        s.getInputs().get(0).setData(b);
        s.eval();
        s.runGraph();
        float[] got = s.getOutputByTensorName("logits").getFloatData();
        float[] nchw = new float[nhwc.length];
        for (int n = 0; n < 32; n++) {
            for (int y = 0; y < 32; y++) {
                for (int x = 0; x < 32; x++) {
                    for (int c = 0; c < 3; c++) {
                        nchw[((n * 3 + c) * 32 + y) * 32 + x] = nhwc[((n * 32 + y) * 32 + x) * 3 + c];
                    }
                }
            }
        }
        try (RuntimeModel direct = RuntimeModel.load(LENET)) {
            assertArrayEquals(direct.session().logits(nchw), got);
        }
        s.free();
    }

    @Test
    void oneHotFloatLabelsTrainExactlyLikeTheirClassIds() {
        float[] nhwc = images(32, 2);
        int[] ids = new int[32];
        ByteBuffer idBytes = direct(32 * 4);
        ByteBuffer oneHot = direct(32 * 62 * 4);
        for (int i = 0; i < 32; i++) {
            ids[i] = (i * 7) % 62;
            idBytes.putInt(ids[i]);
            for (int k = 0; k < 62; k++) {
                oneHot.putFloat(k == ids[i] ? 1f : 0f);
            }
        }
        float[] losses = new float[2];
        ByteBuffer[] labelForms = {idBytes, oneHot};
        for (int form = 0; form < 2; form++) {
            LiteSession s = TrainSession.createTrainSession(LENET.toString(), new MSConfig(), false);
            ByteBuffer b = direct(nhwc.length * 4);
            b.asFloatBuffer().put(nhwc);
            s.getInputs().get(0).setData(b);
            s.getInputs().get(1).setData(labelForms[form]);
            s.train();
            s.runGraph();
            losses[form] = s.getOutputMapByTensor().get("loss").getFloatData()[0];
            s.free();
        }
        assertTrue(Float.isFinite(losses[0]));
        assertEquals(losses[0], losses[1]);
    }

    @Test
    void weightsGoOutAndInByNameAndExportKeepsThem() {
        LiteSession a = TrainSession.createTrainSession(LENET.toString(), new MSConfig(), false);
        List<MSTensor> features = a.getFeaturesMap();
        float[] scaled = features.get(0).getFloatData();
        for (int i = 0; i < scaled.length; i++) {
            scaled[i] *= 2;
        }
        a.updateFeatures(List.of(new MSTensor(features.get(0).tensorName(), features.get(0).getShape(), scaled)));
        Path out = tmp.resolve("out.ms");
        a.export(out.toString(), 0, 0);
        a.free();
        Model m = new Model();
        assertTrue(m.loadModel(out.toString()));
        LiteSession b = LiteSession.createSession(new MSConfig());
        b.compileGraph(m);
        assertArrayEquals(scaled, b.getFeaturesMap().get(0).getFloatData());
        b.free();
    }

    @Test
    void aBufferOfTheWrongSizeAndAnotherBatchAreRefusedWithBothSizes() {
        LiteSession s = TrainSession.createTrainSession(LENET.toString(), new MSConfig(), false);
        String msg = assertThrows(IllegalArgumentException.class,
                () -> s.getInputs().get(0).setData(direct(100))).getMessage();
        assertTrue(msg.contains("takes 393216 bytes, the buffer holds 100"), msg);
        msg = assertThrows(IllegalArgumentException.class,
                () -> s.resize(s.getInputs(), new int[][] {{16, 32, 32, 3}, {16}})).getMessage();
        assertTrue(msg.contains("the model was exported with [32, 32, 32, 3]"), msg);
        s.free();
    }
}
