package com.mindspore.flclient.cases;

/** A {@link DataSet} held in memory: samples already in the model's input layout, one after another. */
public final class ArrayDataSet extends DataSet {
    private final float[] samples;
    private final int[] labels;
    private final int sampleSize;
    private final int count;

    /**
     * @param samples    count × sampleSize floats, sample-major, in the model's layout (e.g. NCHW)
     * @param labels     one class per sample, or null for an unlabelled (inference) set
     * @param sampleSize floats per sample
     */
    public ArrayDataSet(float[] samples, int[] labels, int sampleSize) {
        if (sampleSize < 1 || samples.length % sampleSize != 0) {
            throw new IllegalArgumentException(samples.length + " floats are not a whole number of samples of "
                    + sampleSize + " floats");
        }
        this.count = samples.length / sampleSize;
        if (count == 0) {
            throw new IllegalArgumentException("the data set has no sample");
        }
        if (labels != null && labels.length != count) {
            throw new IllegalArgumentException(count + " samples but " + labels.length + " labels");
        }
        this.samples = samples;
        this.labels = labels;
        this.sampleSize = sampleSize;
    }

    @Override
    public int sampleCount() {
        return count;
    }

    @Override
    public int sampleSize() {
        return sampleSize;
    }

    @Override
    public boolean hasLabels() {
        return labels != null;
    }

    /** The labels (not a copy), or null. */
    public int[] labels() {
        return labels;
    }

    @Override
    public int fillBatch(int batchIdx, int batchSize, float[] data, int[] batchLabels) {
        int first = batchIdx * batchSize;
        if (first >= count || batchIdx < 0) {
            throw new IndexOutOfBoundsException("batch " + batchIdx + " of " + batchNum(batchSize));
        }
        int real = Math.min(batchSize, count - first);
        for (int i = 0; i < batchSize; i++) {
            int src = i < real ? first + i : (i - real) % count; // pad with samples from the start
            System.arraycopy(samples, src * sampleSize, data, i * sampleSize, sampleSize);
            if (batchLabels != null) {
                batchLabels[i] = labels == null ? 0 : labels[src];
            }
        }
        return real;
    }
}
