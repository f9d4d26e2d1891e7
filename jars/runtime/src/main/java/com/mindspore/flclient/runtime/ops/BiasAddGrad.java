package com.mindspore.flclient.runtime.ops;

import com.mindspore.flclient.runtime.graph.NodeSpec;

/** BiasAddGrad (dy) → db: the sum of dy over every axis but 1, the gradient of {@link BiasAdd}'s bias. */
final class BiasAddGrad implements Kernel {
    private final float[] dy;
    private final float[] db;
    private final int outer;
    private final int channels;
    private final int inner;

    BiasAddGrad(NodeSpec s) {
        s.requireInputs(1);
        var l = new BiasAdd.Layout(s, s.input(0), "dy", "");
        outer = l.outer;
        channels = l.channels;
        inner = l.inner;
        dy = s.floatIn(0);
        db = s.floatOut(0, new int[] {channels});
    }

    @Override
    public void run() {
        java.util.Arrays.fill(db, 0f);
        for (int n = 0; n < outer; n++) {
            for (int c = 0; c < channels; c++) {
                int off = (n * channels + c) * inner;
                float sum = 0f;
                for (int i = 0; i < inner; i++) {
                    sum += dy[off + i];
                }
                db[c] += sum;
            }
        }
    }
}
