package com.example.r16;

import com.mindspore.flclient.model.DataSet;
import com.mindspore.flclient.model.Status;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;

/** 32x32x3 float32 NHWC images and int32 labels, as the 3500_clients_bin files hold them (r1.6 DataSet style). */
public class ImageDataSet extends DataSet {
    private static final int IMAGE_BYTES = 32 * 32 * 3 * Float.BYTES;
    private final int numOfClass;
    private byte[] images;
    private int[] labels;
    private List<Integer> targetLabels = new ArrayList<>();

    public ImageDataSet(int numOfClass) {
        this.numOfClass = numOfClass;
    }

    public List<Integer> getTargetLabels() {
        return targetLabels;
    }

    @Override
    public Status dataPreprocess(List<String> files) {
        try {
            images = Files.readAllBytes(Paths.get(files.get(0)));
            if (files.size() > 1) {
                ByteBuffer raw = ByteBuffer.wrap(Files.readAllBytes(Paths.get(files.get(1)))).order(ByteOrder.LITTLE_ENDIAN);
                labels = new int[raw.remaining() / Integer.BYTES];
                raw.asIntBuffer().get(labels);
            } else {
                labels = new int[images.length / IMAGE_BYTES];
            }
        } catch (IOException e) {
            return Status.FAILED;
        }
        sampleSize = images.length / IMAGE_BYTES;
        return sampleSize == labels.length ? Status.SUCCESS : Status.INVALID;
    }

    @Override
    public void shuffle() {
    }

    @Override
    public void padding() {
        int padSize = (batchSize - sampleSize % batchSize) % batchSize;
        byte[] paddedImages = new byte[(sampleSize + padSize) * IMAGE_BYTES];
        int[] paddedLabels = new int[sampleSize + padSize];
        System.arraycopy(images, 0, paddedImages, 0, sampleSize * IMAGE_BYTES);
        System.arraycopy(labels, 0, paddedLabels, 0, sampleSize);
        for (int i = 0; i < padSize; i++) {
            System.arraycopy(images, i * IMAGE_BYTES, paddedImages, (sampleSize + i) * IMAGE_BYTES, IMAGE_BYTES);
            paddedLabels[sampleSize + i] = labels[i];
        }
        batchNum = (sampleSize + padSize) / batchSize;
        targetLabels = new ArrayList<>();
        for (int label : paddedLabels) {
            targetLabels.add(label);
        }
        images = paddedImages;
        labels = paddedLabels;
    }

    @Override
    public void fillInputBuffer(List<ByteBuffer> inputsBuffer, int batchIdx) {
        ByteBuffer imageBuffer = inputsBuffer.get(0);
        ByteBuffer labelBuffer = inputsBuffer.get(1);
        imageBuffer.clear();
        labelBuffer.clear();
        imageBuffer.put(images, batchIdx * batchSize * IMAGE_BYTES, batchSize * IMAGE_BYTES);
        for (int i = 0; i < batchSize; i++) {
            labelBuffer.putInt(labels[batchIdx * batchSize + i]);
        }
    }
}
