package com.mindspore.flclient.runtime;

import java.io.IOException;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CountDownLatch;

/**
 * Command line of the runtime for tests, scripts and benchmarks (no JPype needed):
 *
 * <pre>
 * RuntimeTool info    --model m.ms
 * RuntimeTool train   --model m.ms --data x.bin --label y.bin [--steps K] [--lr LR] --out out.ms [--losses losses.txt]
 * RuntimeTool predict --model m.ms --data x.bin [--out pred.bin] [--logits logits.bin]
 * RuntimeTool bench   --model m.ms [--steps 100] [--warmup 30] [--sessions 1] [--profile]
 * </pre>
 *
 * {@code x.bin} is little-endian float32 in the model's input layout (NCHW), a whole number of
 * batches; {@code y.bin} little-endian int32 labels. {@code bench} trains on random data and
 * prints one JSON line (median ms per step, samples/s; with {@code --sessions S}, S sessions
 * train at once on S threads and the line gives their combined samples/s).
 * Exit codes: 0 success, 1 failure (message on stderr), 2 usage error.
 */
public final class RuntimeTool {
    private static final String USAGE = String.join("\n",
            "usage: RuntimeTool info    --model m.ms",
            "       RuntimeTool train   --model m.ms --data x.bin --label y.bin [--steps K] [--lr LR] --out out.ms [--losses losses.txt]",
            "       RuntimeTool predict --model m.ms --data x.bin [--out pred.bin] [--logits logits.bin]",
            "       RuntimeTool bench   --model m.ms [--steps N] [--warmup N] [--sessions S] [--profile]");

    private RuntimeTool() {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /** Runs one command; returns the exit code (so tests can call it in-process). */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        if (args.length == 0 || Arrays.asList("-h", "--help", "help").contains(args[0])) {
            (args.length == 0 ? err : out).println(USAGE);
            return args.length == 0 ? 2 : 0;
        }
        Map<String, String> opts;
        try {
            opts = parse(Arrays.copyOfRange(args, 1, args.length));
        } catch (IllegalArgumentException e) {
            err.println(e.getMessage());
            err.println(USAGE);
            return 2;
        }
        try {
            switch (args[0]) {
                case "info":
                    return info(opts, out);
                case "train":
                    return train(opts, out);
                case "predict":
                    return predict(opts, out);
                case "bench":
                    return bench(opts, out);
                default:
                    err.println("unknown command '" + args[0] + "'");
                    err.println(USAGE);
                    return 2;
            }
        } catch (UsageException e) {
            err.println(e.getMessage());
            err.println(USAGE);
            return 2;
        } catch (ModelFormatException | IllegalArgumentException | IllegalStateException | UncheckedIOException e) {
            err.println("error: " + e.getMessage());
            return 1;
        }
    }

    private static final class UsageException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        UsageException(String m) {
            super(m);
        }
    }

    private static Map<String, String> parse(String[] a) {
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i < a.length; i++) {
            if (!a[i].startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument '" + a[i] + "'");
            }
            String key = a[i].substring(2);
            if (key.equals("profile")) {
                m.put(key, "true");
            } else if (i + 1 < a.length) {
                m.put(key, a[++i]);
            } else {
                throw new IllegalArgumentException("option --" + key + " needs a value");
            }
        }
        return m;
    }

    private static String need(Map<String, String> o, String key) {
        String v = o.get(key);
        if (v == null) {
            throw new UsageException("missing --" + key);
        }
        return v;
    }

    private static int intOpt(Map<String, String> o, String key, int dflt) {
        String v = o.get(key);
        try {
            return v == null ? dflt : Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new UsageException("--" + key + " needs an integer, got '" + v + "'");
        }
    }

    private static int info(Map<String, String> o, PrintStream out) {
        try (TrainSession s = TrainSession.load(Path.of(need(o, "model")))) {
            out.println("input " + Arrays.toString(s.inputShape()) + " classes " + s.numClasses()
                    + " batch " + s.batchSize());
            for (String w : s.weightNames()) {
                out.println("weight " + w + " " + Arrays.toString(s.weightShape(w)));
            }
            out.println("ops " + String.join(" ", s.opTypes()));
            out.println("kernels " + (com.mindspore.flclient.runtime.kernels.VectorSupport.enabled() ? "Vector API"
                    : "plain Java (start the JVM with --add-modules jdk.incubator.vector for the Vector API ones)"));
        }
        return 0;
    }

    private static int train(Map<String, String> o, PrintStream out) {
        Path outPath = Path.of(need(o, "out"));
        try (TrainSession s = TrainSession.load(Path.of(need(o, "model")))) {
            float[] data = readFloats(Path.of(need(o, "data")));
            int[] labels = readInts(Path.of(need(o, "label")));
            int sample = s.inputShape().length == 0 ? 1 : Arrays.stream(s.inputShape()).skip(1).reduce(1, (a, b) -> a * b);
            int b = s.batchSize();
            int samples = labels.length;
            if (samples == 0 || samples % b != 0 || data.length != samples * sample) {
                throw new IllegalArgumentException("data holds " + data.length + " floats and labels " + samples
                        + " values; expected a multiple of the batch " + b + " and " + sample + " floats per label");
            }
            int batches = samples / b;
            int steps = intOpt(o, "steps", batches);
            if (o.containsKey("lr")) {
                s.setLearningRate(Float.parseFloat(o.get("lr")));
            }
            List<Float> losses = new ArrayList<>();
            float[] x = new float[b * sample];
            int[] y = new int[b];
            for (int step = 0; step < steps; step++) {
                int k = step % batches;
                System.arraycopy(data, k * b * sample, x, 0, x.length);
                System.arraycopy(labels, k * b, y, 0, b);
                losses.add(s.trainStep(x, y));
            }
            s.save(outPath);
            if (o.containsKey("losses")) {
                StringBuilder sb = new StringBuilder();
                for (float l : losses) {
                    sb.append(l).append('\n');
                }
                write(Path.of(o.get("losses")), sb.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
            }
            out.println("trained " + steps + " steps, last loss " + (losses.isEmpty() ? "n/a" : losses.get(losses.size() - 1)));
        }
        return 0;
    }

    private static int predict(Map<String, String> o, PrintStream out) {
        try (TrainSession s = TrainSession.load(Path.of(need(o, "model")))) {
            float[] data = readFloats(Path.of(need(o, "data")));
            int b = s.batchSize();
            int sample = Arrays.stream(s.inputShape()).skip(1).reduce(1, (a, c) -> a * c);
            if (data.length == 0 || data.length % (b * sample) != 0) {
                throw new IllegalArgumentException("data holds " + data.length + " floats, not a multiple of a batch ("
                        + b + " × " + sample + ")");
            }
            int batches = data.length / (b * sample);
            int k = s.numClasses();
            ByteBuffer pred = ByteBuffer.allocate(batches * b * 4).order(ByteOrder.LITTLE_ENDIAN);
            ByteBuffer logits = ByteBuffer.allocate(batches * b * k * 4).order(ByteOrder.LITTLE_ENDIAN);
            float[] x = new float[b * sample];
            for (int i = 0; i < batches; i++) {
                System.arraycopy(data, i * b * sample, x, 0, x.length);
                float[] z = s.logits(x);
                for (float v : z) {
                    logits.putFloat(v);
                }
                for (int n = 0; n < b; n++) {
                    int best = 0;
                    for (int c = 1; c < k; c++) {
                        if (z[n * k + c] > z[n * k + best]) {
                            best = c;
                        }
                    }
                    pred.putInt(best);
                }
            }
            if (o.containsKey("out")) {
                write(Path.of(o.get("out")), pred.array());
            }
            if (o.containsKey("logits")) {
                write(Path.of(o.get("logits")), logits.array());
            }
            out.println("predicted " + batches * b + " samples");
        }
        return 0;
    }

    private static int bench(Map<String, String> o, PrintStream out) {
        Path model = Path.of(need(o, "model"));
        int steps = intOpt(o, "steps", 100);
        int warmup = intOpt(o, "warmup", 30);
        int sessions = intOpt(o, "sessions", 1);
        if (steps < 1 || warmup < 0 || sessions < 1) {
            throw new UsageException("--steps ≥ 1, --warmup ≥ 0, --sessions ≥ 1");
        }
        double[][] times = new double[sessions][];
        int[] batch = new int[1];
        CountDownLatch warmed = new CountDownLatch(sessions);
        CountDownLatch go = new CountDownLatch(1);
        long[] wall = new long[2];
        List<Thread> threads = new ArrayList<>();
        RuntimeException[] failure = new RuntimeException[1];
        for (int t = 0; t < sessions; t++) {
            final int id = t;
            Thread th = new Thread(() -> {
                try (TrainSession s = TrainSession.load(model)) {
                    batch[0] = s.batchSize();
                    Random r = new Random(42 + id);
                    float[] x = new float[Arrays.stream(s.inputShape()).reduce(1, (a, b) -> a * b)];
                    int[] y = new int[s.batchSize()];
                    for (int i = 0; i < x.length; i++) {
                        x[i] = r.nextFloat();
                    }
                    for (int i = 0; i < y.length; i++) {
                        y[i] = r.nextInt(s.numClasses());
                    }
                    s.setLearningRate(1e-4f);
                    for (int i = 0; i < warmup; i++) {
                        s.trainStep(x, y);
                    }
                    warmed.countDown();
                    go.await();
                    double[] ms = new double[steps];
                    for (int i = 0; i < steps; i++) {
                        long t0 = System.nanoTime();
                        s.trainStep(x, y);
                        ms[i] = (System.nanoTime() - t0) / 1e6;
                    }
                    times[id] = ms;
                    if (id == 0 && o.containsKey("profile")) {
                        Map<String, Long> prof = s.profile(steps);
                        prof.entrySet().stream().sorted((a, b) -> Long.compare(b.getValue(), a.getValue()))
                                .forEach(e -> out.printf(Locale.ROOT, "# %8.3f ms  %s%n", e.getValue() / 1e6 / steps, e.getKey()));
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } catch (RuntimeException e) {
                    failure[0] = e;
                    warmed.countDown();
                }
            }, "bench-" + t);
            threads.add(th);
            th.start();
        }
        try {
            warmed.await();
            wall[0] = System.nanoTime();
            go.countDown();
            for (Thread th : threads) {
                th.join();
            }
            wall[1] = System.nanoTime();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted");
        }
        if (failure[0] != null) {
            throw failure[0];
        }
        double[] all = Arrays.stream(times).flatMapToDouble(Arrays::stream).sorted().toArray();
        double median = all[all.length / 2];
        double seconds = (wall[1] - wall[0]) / 1e9;
        double throughput = sessions * (double) steps * batch[0] / seconds;
        out.printf(Locale.ROOT, "{\"batch\": %d, \"sessions\": %d, \"steps\": %d, \"median_ms_per_step\": %.4f, "
                        + "\"min_ms_per_step\": %.4f, \"samples_per_s\": %.1f}%n",
                batch[0], sessions, steps, median, all[0], throughput);
        return 0;
    }

    static float[] readFloats(Path p) {
        ByteBuffer b = ByteBuffer.wrap(readAll(p)).order(ByteOrder.LITTLE_ENDIAN);
        if (b.remaining() % 4 != 0) {
            throw new IllegalArgumentException(p + " is " + b.remaining() + " bytes, not whole float32 values");
        }
        float[] f = new float[b.remaining() / 4];
        b.asFloatBuffer().get(f);
        return f;
    }

    static int[] readInts(Path p) {
        ByteBuffer b = ByteBuffer.wrap(readAll(p)).order(ByteOrder.LITTLE_ENDIAN);
        if (b.remaining() % 4 != 0) {
            throw new IllegalArgumentException(p + " is " + b.remaining() + " bytes, not whole int32 values");
        }
        int[] v = new int[b.remaining() / 4];
        b.asIntBuffer().get(v);
        return v;
    }

    private static byte[] readAll(Path p) {
        try {
            return Files.readAllBytes(p);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + p + ": " + e.getMessage(), e);
        }
    }

    private static void write(Path p, byte[] bytes) {
        try {
            Path parent = p.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            Files.write(p, bytes);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + p + ": " + e.getMessage(), e);
        }
    }
}
