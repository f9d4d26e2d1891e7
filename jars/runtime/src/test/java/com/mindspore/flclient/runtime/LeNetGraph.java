package com.mindspore.flclient.runtime;

import com.mindspore.flclient.runtime.MsModelBuilder.A;
import com.mindspore.flclient.runtime.schema.Phase;

/**
 * The LeNet5 train graph as MindSpore 2.10 exports it (docs/notes/lenet_train_mindir_nodes.txt),
 * after the converter's folding: forward, the loss and its gradient, the backward ops in
 * MindSpore's order, then AssignAdd(global_step) and one ApplyMomentum per weight. Lets the
 * runtime be tested and benchmarked on the real op sequence without MindSpore installed.
 */
public final class LeNetGraph {
    private LeNetGraph() {
    }

    public static byte[] build(int n, int classes, long seed) {
        MsModelBuilder b = new MsModelBuilder(seed);
        int x = b.input("inputs0", n, 3, 32, 32);
        int y = b.labels("inputs1", n);
        int w1 = b.weight("conv1.weight", 75, 6, 3, 5, 5);
        int w2 = b.weight("conv2.weight", 150, 16, 6, 5, 5);
        int f1w = b.weight("fc1.weight", 400, 120, 400);
        int f1b = b.weight("fc1.bias", 400, 120);
        int f2w = b.weight("fc2.weight", 120, 84, 120);
        int f2b = b.weight("fc2.bias", 120, 84);
        int f3w = b.weight("fc3.weight", 84, classes, 84);
        int f3b = b.weight("fc3.bias", 84, classes);
        int lr = b.state("learning_rate", new float[] {0.01f});
        int step = b.intState("global_step", new long[] {0}, 1);
        int one = b.intConstant("one", new long[] {1}, 1);
        A[] conv = MsModelBuilder.conv(1, 0);
        A[] pool = {A.ints("kernel", 2, 2), A.ints("stride", 2, 2), A.ints("pad", 0, 0, 0, 0)};
        A nt = A.b("transpose_b", true);
        int c1 = b.fwd("Conv2D", new int[] {x, w1}, new int[] {n, 6, 28, 28}, conv);
        int r1 = b.fwd("ReLU", new int[] {c1}, b.shape(c1));
        int p1 = b.fwd("MaxPool", new int[] {r1}, new int[] {n, 6, 14, 14}, pool);
        int c2 = b.fwd("Conv2D", new int[] {p1, w2}, new int[] {n, 16, 10, 10}, conv);
        int r2 = b.fwd("ReLU", new int[] {c2}, b.shape(c2));
        int p2 = b.fwd("MaxPool", new int[] {r2}, new int[] {n, 16, 5, 5}, pool);
        int f = b.fwd("Flatten", new int[] {p2}, new int[] {n, 400});
        int m1 = b.fwd("MatMul", new int[] {f, f1w}, new int[] {n, 120}, nt);
        int b1 = b.fwd("BiasAdd", new int[] {m1, f1b}, b.shape(m1));
        int a1 = b.fwd("ReLU", new int[] {b1}, b.shape(b1));
        int m2 = b.fwd("MatMul", new int[] {a1, f2w}, new int[] {n, 84}, nt);
        int b2 = b.fwd("BiasAdd", new int[] {m2, f2b}, b.shape(m2));
        int a2 = b.fwd("ReLU", new int[] {b2}, b.shape(b2));
        int m3 = b.fwd("MatMul", new int[] {a2, f3w}, new int[] {n, classes}, nt);
        int logits = b.fwd("BiasAdd", new int[] {m3, f3b}, b.shape(m3));
        int loss = b.fwd("SparseSoftmaxCrossEntropyWithLogits", new int[] {logits, y}, new int[0], A.b("is_grad", false));
        int dl = b.bwd("SparseSoftmaxCrossEntropyWithLogits", new int[] {logits, y}, b.shape(logits), A.b("is_grad", true));
        int da2 = b.bwd("MatMul", new int[] {dl, f3w}, new int[] {n, 84});
        int db2 = b.bwd("ReluGrad", new int[] {da2, a2}, b.shape(a2));
        int da1 = b.bwd("MatMul", new int[] {db2, f2w}, new int[] {n, 120});
        int db1 = b.bwd("ReluGrad", new int[] {da1, a1}, b.shape(a1));
        int df = b.bwd("MatMul", new int[] {db1, f1w}, new int[] {n, 400});
        int dp2 = b.bwd("Reshape", new int[] {df}, b.shape(p2), A.ints("shape", n, 16, 5, 5));
        int dr2 = b.bwd("MaxPoolGrad", new int[] {r2, p2, dp2}, b.shape(r2), pool);
        int dc2 = b.bwd("ReluGrad", new int[] {dr2, r2}, b.shape(r2));
        int dp1 = b.bwd("Conv2DBackpropInput", new int[] {dc2, w2}, b.shape(p1),
                MsModelBuilder.concat(conv, A.ints("input_shape", n, 6, 14, 14)));
        int dr1 = b.bwd("MaxPoolGrad", new int[] {r1, p1, dp1}, b.shape(r1), pool);
        int dc1 = b.bwd("ReluGrad", new int[] {dr1, r1}, b.shape(r1));
        int gw1 = b.bwd("Conv2DBackpropFilter", new int[] {dc1, x}, b.shape(w1),
                MsModelBuilder.concat(conv, A.ints("filter_shape", 6, 3, 5, 5)));
        b.node("AssignAdd", Phase.Optimizer, new int[] {step, one}, new int[0]);
        int gf3b = b.bwd("BiasAddGrad", new int[] {dl}, b.shape(f3b));
        int gf3w = b.bwd("MatMul", new int[] {dl, a2}, b.shape(f3w), A.b("transpose_a", true));
        int gf2b = b.bwd("BiasAddGrad", new int[] {db2}, b.shape(f2b));
        int gf2w = b.bwd("MatMul", new int[] {db2, a1}, b.shape(f2w), A.b("transpose_a", true));
        int gf1b = b.bwd("BiasAddGrad", new int[] {db1}, b.shape(f1b));
        int gf1w = b.bwd("MatMul", new int[] {db1, f}, b.shape(f1w), A.b("transpose_a", true));
        int gw2 = b.bwd("Conv2DBackpropFilter", new int[] {dc2, p1}, b.shape(w2),
                MsModelBuilder.concat(conv, A.ints("filter_shape", 16, 6, 5, 5)));
        b.momentum(new int[] {f3b, f3w, f2b, f2w, f1b, f1w, w2, w1},
                new int[] {gf3b, gf3w, gf2b, gf2w, gf1b, gf1w, gw2, gw1}, lr, 0.9f);
        b.mark(logits, loss, lr);
        return b.build();
    }

    /** Writes a LeNet train model: {@code LeNetGraph out.ms [batch] [classes]} (for early benchmarks). */
    public static void main(String[] args) throws java.io.IOException {
        int n = args.length > 1 ? Integer.parseInt(args[1]) : 32;
        int classes = args.length > 2 ? Integer.parseInt(args[2]) : 62;
        java.nio.file.Files.write(java.nio.file.Path.of(args[0]), build(n, classes, 1));
    }
}
