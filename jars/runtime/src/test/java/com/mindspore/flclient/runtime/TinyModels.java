package com.mindspore.flclient.runtime;

import com.mindspore.flclient.runtime.MsModelBuilder.A;

/** Small train graphs built in tests: an MLP (dense without bias, sigmoid/tanh) and a CNN with average pooling. */
final class TinyModels {
    private TinyModels() {
    }

    /** 8 features → tanh dense 16 (no bias) → sigmoid dense 16 → dense 3, trained with ApplyMomentum. */
    static MsModelBuilder mlp(int n) {
        MsModelBuilder b = new MsModelBuilder(7);
        int x = b.input("x", n, 8);
        int y = b.labels("y", n);
        int w1 = b.weight("fc1.weight", 8, 16, 8);
        int w2 = b.weight("fc2.weight", 16, 16, 16);
        int b2 = b.weight("fc2.bias", 16, 16);
        int w3 = b.weight("fc3.weight", 16, 3, 16);
        int b3 = b.weight("fc3.bias", 16, 3);
        int lr = b.state("learning_rate", new float[] {0.1f});
        A nt = A.b("transpose_b", true);
        int m1 = b.fwd("MatMul", new int[] {x, w1}, new int[] {n, 16}, nt);
        int t1 = b.fwd("Tanh", new int[] {m1}, b.shape(m1));
        int m2 = b.fwd("MatMul", new int[] {t1, w2}, new int[] {n, 16}, nt);
        int a2 = b.fwd("BiasAdd", new int[] {m2, b2}, b.shape(m2));
        int s2 = b.fwd("Sigmoid", new int[] {a2}, b.shape(a2));
        int m3 = b.fwd("MatMul", new int[] {s2, w3}, new int[] {n, 3}, nt);
        int logits = b.fwd("BiasAdd", new int[] {m3, b3}, b.shape(m3));
        int loss = b.fwd("SparseSoftmaxCrossEntropyWithLogits", new int[] {logits, y}, new int[0], A.b("is_grad", false));
        int dl = b.bwd("SparseSoftmaxCrossEntropyWithLogits", new int[] {logits, y}, b.shape(logits), A.b("is_grad", true));
        int gb3 = b.bwd("BiasAddGrad", new int[] {dl}, new int[] {3});
        int gw3 = b.bwd("MatMul", new int[] {dl, s2}, b.shape(w3), A.b("transpose_a", true));
        int ds2 = b.bwd("MatMul", new int[] {dl, w3}, b.shape(s2));
        int da2 = b.bwd("SigmoidGrad", new int[] {s2, ds2}, b.shape(s2));
        int gb2 = b.bwd("BiasAddGrad", new int[] {da2}, new int[] {16});
        int gw2 = b.bwd("MatMul", new int[] {da2, t1}, b.shape(w2), A.b("transpose_a", true));
        int dt1 = b.bwd("MatMul", new int[] {da2, w2}, b.shape(t1));
        int dm1 = b.bwd("TanhGrad", new int[] {t1, dt1}, b.shape(t1));
        int gw1 = b.bwd("MatMul", new int[] {dm1, x}, b.shape(w1), A.b("transpose_a", true));
        b.momentum(new int[] {w1, w2, b2, w3, b3}, new int[] {gw1, gw2, gb2, gw3, gb3}, lr, 0.9f);
        b.mark(logits, loss, lr);
        return b;
    }

    /** 1×8×8 → conv 3×3 pad 1 ×4 → ReLU → AvgPool 2 → flatten → dense 2, trained with ApplyMomentum. */
    static MsModelBuilder cnn(int n) {
        MsModelBuilder b = new MsModelBuilder(8);
        int x = b.input("x", n, 1, 8, 8);
        int y = b.labels("y", n);
        int w1 = b.weight("conv.weight", 9, 4, 1, 3, 3);
        int w2 = b.weight("fc.weight", 64, 2, 64);
        int lr = b.state("learning_rate", new float[] {0.05f});
        A[] conv = MsModelBuilder.conv(1, 1);
        A[] pool = {A.ints("kernel", 2, 2), A.ints("stride", 2, 2), A.ints("pad", 0, 0, 0, 0)};
        int c = b.fwd("Conv2D", new int[] {x, w1}, new int[] {n, 4, 8, 8}, conv);
        int r = b.fwd("ReLU", new int[] {c}, b.shape(c));
        int p = b.fwd("AvgPool", new int[] {r}, new int[] {n, 4, 4, 4}, pool);
        int f = b.fwd("Flatten", new int[] {p}, new int[] {n, 64});
        int logits = b.fwd("MatMul", new int[] {f, w2}, new int[] {n, 2}, A.b("transpose_b", true));
        int loss = b.fwd("SparseSoftmaxCrossEntropyWithLogits", new int[] {logits, y}, new int[0], A.b("is_grad", false));
        int dl = b.bwd("SparseSoftmaxCrossEntropyWithLogits", new int[] {logits, y}, b.shape(logits), A.b("is_grad", true));
        int gw2 = b.bwd("MatMul", new int[] {dl, f}, b.shape(w2), A.b("transpose_a", true));
        int df = b.bwd("MatMul", new int[] {dl, w2}, b.shape(f));
        int dp = b.bwd("Reshape", new int[] {df}, b.shape(p), A.ints("shape", n, 4, 4, 4));
        int dr = b.bwd("AvgPoolGrad", new int[] {r, p, dp}, b.shape(r), pool);
        int dc = b.bwd("ReluGrad", new int[] {dr, r}, b.shape(r));
        int gw1 = b.bwd("Conv2DBackpropFilter", new int[] {dc, x}, b.shape(w1),
                MsModelBuilder.concat(conv, A.ints("filter_shape", 4, 1, 3, 3)));
        b.momentum(new int[] {w2, w1}, new int[] {gw2, gw1}, lr, 0.9f);
        b.mark(logits, loss, lr);
        return b;
    }
}
