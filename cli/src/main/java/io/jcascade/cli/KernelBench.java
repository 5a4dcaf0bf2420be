package io.jcascade.cli;

import io.jcascade.gguf.GgmlType;
import io.jcascade.gguf.GgufFile;
import io.jcascade.gguf.GgufTensor;
import io.jcascade.kernels.Backend;
import io.jcascade.kernels.Backend.Tensor;
import io.jcascade.kernels.Backend.Weight;
import io.jcascade.kernels.TokenCandidates;
import io.jcascade.kernels.WeightMatrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * The weight products of a model one shape at a time, for {@code jcascade bench --kernels}: for
 * each distinct (type, rows, columns) among the matrices a token multiplies, the time of one
 * one-token product (decode) and of one product over a prompt (prefill), on the backend's own
 * clock ({@link Backend#timeMillis}: device time on a GPU). A one-token product streams its
 * matrix once, so its weight bytes over its time are the bandwidth it reached, which the bench
 * reports against the backend's measured bandwidth.
 *
 * <pre>{@code
 * for (KernelBench.Shape s : KernelBench.shapes(gguf)) {
 *     KernelBench.Result r = KernelBench.time(backend, s, 512);
 * }
 * }</pre>
 */
final class KernelBench {

    /** Enough calls that one timing covers about this long; and never fewer than this many calls. */
    private static final double TARGET_MS = 50;
    private static final int MIN_CALLS = 5;
    /**
     * The calls cycle through this many bytes of distinct matrices of the shape (the model's own,
     * as many as it has): one matrix again and again would be read from a cache (50 MB of L2 on
     * an H100/H200, tens of MB of L3 on a CPU), not from memory.
     */
    static final long ROTATION_BYTES = 256L << 20;

    private KernelBench() {
    }

    /** One shape of weight product: the model's matrices that have it ({@code count} of them). */
    record Shape(GgmlType type, int rows, int cols, List<GgufTensor> tensors) {
        int count() {
            return tensors.size();
        }

        long bytes() {
            return type.rowBytes(cols) * rows;
        }

        /** The matrices a timing cycles through: enough for {@link #ROTATION_BYTES}, or all there are. */
        int rotation() {
            return (int) Math.min(count(), Math.max(1, (ROTATION_BYTES + bytes() - 1) / bytes()));
        }
    }

    /**
     * One shape's times: {@code decodeMillis} per one-token product, {@code prefillMillis} per
     * product over {@code prefillTokens} tokens.
     */
    record Result(Shape shape, double decodeMillis, int prefillTokens, double prefillMillis) {
        double decodeBytesPerSecond() {
            return shape.bytes() / (decodeMillis / 1e3);
        }

        double prefillFlopsPerSecond() {
            return 2.0 * shape.rows * shape.cols * prefillTokens / (prefillMillis / 1e3);
        }
    }

    /**
     * The shapes of the matrices one token multiplies, in file order: every two-dimensional tensor
     * but the token embedding (a table lookup), which counts only where there is no separate
     * {@code output.weight} (tied embeddings, multiplied for the logits).
     */
    static List<Shape> shapes(GgufFile gguf) {
        boolean tied = gguf.findTensor("output.weight").isEmpty();
        Map<String, List<GgufTensor>> groups = new LinkedHashMap<>();
        for (GgufTensor t : gguf.tensors()) {
            if (t.shape().length != 2 || t.rowCount() < 2 || (t.name().equals("token_embd.weight") && !tied)) {
                continue;
            }
            groups.computeIfAbsent(t.type() + " " + t.rowCount() + "x" + t.rowLength(), k -> new ArrayList<>()).add(t);
        }
        List<Shape> shapes = new ArrayList<>();
        for (List<GgufTensor> g : groups.values()) {
            GgufTensor t = g.get(0);
            shapes.add(new Shape(t.type(), Math.toIntExact(t.rowCount()), Math.toIntExact(t.rowLength()), List.copyOf(g)));
        }
        return shapes;
    }

    /**
     * Times the shape's one-token product and its product over {@code prefillTokens} tokens on
     * {@code b}, the calls cycling through {@link Shape#rotation()} of its matrices.
     */
    static Result time(Backend b, Shape s, int prefillTokens) {
        Weight[] w = new Weight[s.rotation()];
        for (int i = 0; i < w.length; i++) {
            w[i] = b.weight(WeightMatrix.of(s.tensors().get(i)));
        }
        Tensor x = activations(b, s.cols, prefillTokens);
        Tensor out = b.tensor(prefillTokens * s.rows);
        double decode = perCall(b, w.length, i -> b.matmul(w[i], x, out, 1));
        double prefill = perCall(b, w.length, i -> b.matmul(w[i], x, out, prefillTokens));
        return new Result(s, decode, prefillTokens, prefill);
    }

    /**
     * Milliseconds per {@link Backend#selectTokens} over {@code vocab} Gaussian logits already on
     * the backend: what a generation step costs after the logits, for {@code k} candidates, with
     * the repetition penalty on 64 recent tokens when {@code penalty} is not 1.
     */
    static double timeSelection(Backend b, int vocab, int k, float penalty) {
        Tensor logits = activations(b, vocab, 1);
        int[] recent = new Random(3).ints(64, 0, vocab).toArray();
        TokenCandidates out = new TokenCandidates();
        return perCall(b, 1, i -> b.selectTokens(logits, vocab, k, penalty, recent, recent.length, out));
    }

    /**
     * Milliseconds per call of {@code call} (given the matrix index, cycling through {@code m}):
     * a warm-up pass, a probe to size the run, then one timed run of whole passes.
     */
    private static double perCall(Backend b, int m, java.util.function.IntConsumer call) {
        Runnable pass = () -> {
            for (int i = 0; i < m; i++) {
                call.accept(i);
            }
        };
        b.timeMillis(pass); // warm-up: JIT, first-launch module loading
        double probe = Math.max(b.timeMillis(pass), 1e-3);
        int passes = (int) Math.max(Math.ceil((double) MIN_CALLS / m), Math.min(100_000, Math.ceil(TARGET_MS / probe)));
        float ms = b.timeMillis(() -> {
            for (int p = 0; p < passes; p++) {
                pass.run();
            }
        });
        return ms / ((double) passes * m);
    }

    /** {@code n} rows of {@code cols} Gaussian floats on the backend, written through {@code embed} of a one-row table. */
    private static Tensor activations(Backend b, int cols, int n) {
        MemorySegment row = Arena.ofAuto().allocate(4L * cols, 64);
        Random r = new Random(7);
        ValueLayout.OfFloat f32 = ValueLayout.JAVA_FLOAT.withOrder(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < cols; i++) {
            row.setAtIndex(f32, i, (float) r.nextGaussian());
        }
        Weight table = b.weight(new WeightMatrix(GgmlType.F32, row, 1, cols));
        Tensor x = b.tensor(n * cols);
        b.embed(table, new int[n], n, x);
        return x;
    }
}
