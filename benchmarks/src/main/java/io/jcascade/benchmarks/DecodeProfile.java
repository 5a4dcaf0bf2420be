package io.jcascade.benchmarks;

import io.jcascade.engine.model.Llama;
import io.jcascade.engine.model.ModelConfig;
import io.jcascade.gguf.GgufFile;
import io.jcascade.kernels.Backend;
import io.jcascade.kernels.Backends;
import io.jcascade.kernels.WeightMatrix;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Where a decode step's time goes: the forward pass runs on a {@link Backend} wrapper that adds
 * each operation's wall time (System.nanoTime around the call) to a per-operation total; matmuls
 * are split by the weight's shape. Not JMH and not in production code: the figures are for
 * finding what to optimize, and the wrapper's own cost (two nanoTime calls per operation, ~150
 * operations per token) is small against a token's tens of milliseconds.
 *
 * <pre>{@code
 * java --add-modules=jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
 *     -cp benchmarks/target/benchmarks.jar io.jcascade.benchmarks.DecodeProfile MODEL.gguf [THREADS] [TOKENS]
 * }</pre>
 *
 * Prints, after a warm-up of the same length, the mean time per token of each operation and its
 * share of the step.
 */
public final class DecodeProfile {

    private DecodeProfile() {
    }

    public static void main(String[] args) throws Exception {
        Path model = Path.of(args[0]);
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : Runtime.getRuntime().availableProcessors();
        int tokens = args.length > 2 ? Integer.parseInt(args[2]) : 64;
        try (GgufFile gguf = GgufFile.open(model); Timed backend = new Timed(Backends.create("cpu", threads))) {
            long t0 = System.nanoTime();
            Llama llama = Llama.load(gguf, ModelConfig.from(gguf), backend);
            System.out.printf("load: %.2f s%n", (System.nanoTime() - t0) / 1e9);
            int vocab = llama.config().vocabSize();
            float[] logits = new float[vocab];
            for (int round = 0; round < 2; round++) {
                Llama.State s = llama.newState(2 * tokens + 8, 1);
                int[] tok = {1};
                backend.totals.clear();
                long start = System.nanoTime();
                for (int i = 0; i < tokens; i++) {
                    llama.forward(s, tok, 1, i, logits);
                    tok[0] = argmax(logits);
                }
                long total = System.nanoTime() - start;
                if (round == 0) {
                    continue; // warm-up
                }
                System.out.printf("%s, %d threads: %.2f tokens/s, %.2f ms/token%n", model.getFileName(), threads,
                        tokens / (total / 1e9), total / 1e6 / tokens);
                long sum = 0;
                for (Map.Entry<String, long[]> e : backend.totals.entrySet()) {
                    sum += e.getValue()[0];
                    System.out.printf("  %-36s %8.3f ms/token %5.1f %%  (%d calls/token)%n", e.getKey(),
                            e.getValue()[0] / 1e6 / tokens, 100.0 * e.getValue()[0] / total,
                            e.getValue()[1] / tokens);
                }
                System.out.printf("  %-36s %8.3f ms/token %5.1f %%%n", "(outside the backend: argmax, loop)",
                        (total - sum) / 1e6 / tokens, 100.0 * (total - sum) / total);
            }
        }
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    /** A backend that times every operation of another. */
    static final class Timed implements Backend {
        final Backend b;
        final Map<String, long[]> totals = new LinkedHashMap<>();
        final Map<Weight, String> names = new java.util.IdentityHashMap<>();

        Timed(Backend b) {
            this.b = b;
        }

        private void add(String op, long t0) {
            long[] v = totals.computeIfAbsent(op, k -> new long[2]);
            v[0] += System.nanoTime() - t0;
            v[1]++;
        }

        @Override
        public String name() {
            return b.name();
        }

        @Override
        public Weight weight(WeightMatrix matrix) {
            Weight w = b.weight(matrix);
            names.put(w, "matmul " + matrix.type() + " " + matrix.rows() + "x" + matrix.cols());
            return w;
        }

        @Override
        public Tensor tensor(int size) {
            return b.tensor(size);
        }

        @Override
        public KvCache kvCache(int layers, int capacity, int kvDim) {
            return b.kvCache(layers, capacity, kvDim);
        }

        @Override
        public void read(Tensor src, int srcOffset, float[] dst, int dstOffset, int length) {
            long t = System.nanoTime();
            b.read(src, srcOffset, dst, dstOffset, length);
            add("read (logits copy)", t);
        }

        @Override
        public void embed(Weight table, int[] tokens, int n, Tensor out) {
            long t = System.nanoTime();
            b.embed(table, tokens, n, out);
            add("embed", t);
        }

        @Override
        public void rmsNorm(Tensor x, Weight norm, Tensor out, int nTokens, float eps) {
            long t = System.nanoTime();
            b.rmsNorm(x, norm, out, nTokens, eps);
            add("rmsNorm", t);
        }

        @Override
        public void matmul(Weight w, Tensor x, Tensor out, int nTokens) {
            long t = System.nanoTime();
            b.matmul(w, x, out, nTokens);
            add(names.getOrDefault(w, "matmul"), t);
        }

        @Override
        public void matmulQkv(Weight wq, Weight wk, Weight wv, Tensor x, Tensor q, Tensor k, Tensor v, int nTokens) {
            long t = System.nanoTime();
            b.matmulQkv(wq, wk, wv, x, q, k, v, nTokens);
            add("matmulQkv (" + names.get(wq) + ", " + names.get(wk).replace("matmul ", "") + ", "
                    + names.get(wv).replace("matmul ", "") + ")", t);
        }

        @Override
        public void ffnGateUp(Weight gate, Weight up, Tensor x, Tensor out, Tensor upOut, int nTokens) {
            long t = System.nanoTime();
            b.ffnGateUp(gate, up, x, out, upOut, nTokens);
            add("ffnGateUp (" + names.get(gate) + " x2 + swiglu)", t);
        }

        @Override
        public void rope(Tensor x, int nHeads, int headDim, Rope rope, int startPos, int nTokens) {
            long t = System.nanoTime();
            b.rope(x, nHeads, headDim, rope, startPos, nTokens);
            add("rope", t);
        }

        @Override
        public void attention(Tensor q, Tensor k, Tensor v, KvCache cache, int layer, Tensor out, int nHeads,
                int nKvHeads, int headDim, int startPos, int nTokens, float qScale, float kqScale) {
            long t = System.nanoTime();
            b.attention(q, k, v, cache, layer, out, nHeads, nKvHeads, headDim, startPos, nTokens, qScale, kqScale);
            add("attention", t);
        }

        @Override
        public void swiglu(Tensor gate, Tensor up, Tensor out, int n) {
            long t = System.nanoTime();
            b.swiglu(gate, up, out, n);
            add("swiglu", t);
        }

        @Override
        public void add(Tensor x, Tensor y, int n) {
            long t = System.nanoTime();
            b.add(x, y, n);
            add("add", t);
        }

        @Override
        public void copy(Tensor src, int srcOffset, Tensor dst, int dstOffset, int length) {
            long t = System.nanoTime();
            b.copy(src, srcOffset, dst, dstOffset, length);
            add("copy", t);
        }

        @Override
        public void close() {
            b.close();
        }
    }
}
