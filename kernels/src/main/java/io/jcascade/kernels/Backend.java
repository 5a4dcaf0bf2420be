package io.jcascade.kernels;

import java.util.OptionalDouble;

/**
 * The seam between the forward pass and the hardware that runs it: the engine describes a
 * transformer step as calls on this interface, and each backend (the CPU here; CUDA next) keeps
 * weights, activations and the KV cache in its own memory and runs the kernels on them.
 *
 * <p>Activations are float32 tensors that the backend allocates; a batch of {@code n} tokens of
 * width {@code d} is stored token-major ({@code n * d} floats). Only the embedding ids go in and
 * only logits come out ({@link #read}), or only a step's candidates and statistics ({@link
 * #selectTokens}), so a GPU backend moves almost nothing across the bus.
 *
 * <pre>{@code
 * try (Backend backend = Backends.cpu(4)) {
 *     Backend.Weight wq = backend.weight(WeightMatrix.of(gguf.tensor("blk.0.attn_q.weight")));
 *     Backend.Tensor x = backend.tensor(dim), q = backend.tensor(dim);
 *     backend.matmul(wq, x, q, 1);
 * }
 * }</pre>
 */
public interface Backend extends AutoCloseable {

    /** A float32 activation buffer in the backend's memory. */
    interface Tensor {
        /** Capacity in floats. */
        int size();
    }

    /** A weight matrix (or a 1-D weight vector, as one row) resident where the backend computes. */
    interface Weight {
        int rows();

        int cols();
    }

    /** Per-layer key/value storage for {@code capacity} positions. */
    interface KvCache {
        int capacity();
    }

    /**
     * How positions turn into rotations: see {@code CpuKernels.rope} for the exact formula.
     *
     * <pre>{@code
     * new Backend.Rope(64, 500000f, ropeFreqs, false, 1f)          // Llama 3.1/3.2: per-pair divisors
     * new Backend.Rope(96, 10000f, null, true, 0.25f)              // NeoX, linear scaling by 4
     * new Backend.Rope(96, 10000f, longFactors, true, 1f, 1.19f)   // Phi-3 128k past 4k: LongRoPE
     * }</pre>
     *
     * @param dims how many leading dimensions of each head rotate (partial rotary when fewer than the head)
     * @param freqBase frequency base ({@code rope.freq_base})
     * @param freqFactors per-pair divisors of the angle ({@code rope_freqs}, {@code rope_factors_short/long}), or null
     * @param neox rotate pairs {@code (i, i + dims/2)} rather than adjacent pairs
     * @param freqScale multiplier of every angle: {@code 1 / rope.scaling.factor} for linear scaling, else 1
     * @param attnFactor multiplier of every rotated pair (ggml's {@code mscale}: its cosines and sines
     *     are scaled): {@code rope.scaling.attn_factor}, else 1
     */
    record Rope(int dims, float freqBase, float[] freqFactors, boolean neox, float freqScale, float attnFactor) {
        /** Unscaled rope ({@code freqScale = 1}, {@code attnFactor = 1}). */
        public Rope(int dims, float freqBase, float[] freqFactors, boolean neox) {
            this(dims, freqBase, freqFactors, neox, 1.0f, 1.0f);
        }

        /** Rope with a frequency scale and no magnitude scale ({@code attnFactor = 1}). */
        public Rope(int dims, float freqBase, float[] freqFactors, boolean neox, float freqScale) {
            this(dims, freqBase, freqFactors, neox, freqScale, 1.0f);
        }
    }

    /** Short name, e.g. {@code cpu}. */
    String name();

    /**
     * Measures, now, the rate in bytes per second at which this backend streams memory the way a
     * decode step streams its weights: the ceiling that decode's tokens/s is judged against
     * (bandwidth ÷ weight bytes per token). The CPU reads a buffer far larger than its caches on
     * all its threads; a GPU copies one device buffer to another and counts the bytes read plus
     * the bytes written, as copy bandwidth is usually quoted. Takes about a second; the best of a
     * few passes is returned. Empty for a backend that has no such measurement.
     *
     * <pre>{@code
     * backend.measureBandwidth().ifPresent(b -> System.out.printf("%.1f GB/s%n", b / 1e9));
     * }</pre>
     */
    default OptionalDouble measureBandwidth() {
        return OptionalDouble.empty();
    }

    /**
     * Runs {@code work} (calls on this backend) and returns the time it took in milliseconds: the
     * wall time by default, for backends whose calls return when their work is done; a device
     * backend measures its own queue (CUDA: events around the work), so that the figure is the
     * device's time, not the time to queue it.
     *
     * <pre>{@code
     * float ms = backend.timeMillis(() -> backend.matmul(w, x, out, 1));
     * }</pre>
     */
    default float timeMillis(Runnable work) {
        long start = System.nanoTime();
        work.run();
        return (System.nanoTime() - start) / 1e6f;
    }

    /** Makes a weight usable by this backend: wraps it on the CPU, uploads it once on a GPU. */
    Weight weight(WeightMatrix matrix);

    /** Allocates an activation tensor of {@code size} floats. */
    Tensor tensor(int size);

    /** Allocates a KV cache of {@code layers} layers, each {@code capacity} positions of {@code kvDim} floats. */
    KvCache kvCache(int layers, int capacity, int kvDim);

    /** Copies {@code length} floats from {@code src[srcOffset..]} to {@code dst[dstOffset..]}. */
    void read(Tensor src, int srcOffset, float[] dst, int dstOffset, int length);

    /**
     * The index of the largest of the first {@code n} floats of {@code x} (the lowest index among
     * equals): the greedy token of a row of logits. The default reads them back; a device backend
     * finds it where they are, so that one int crosses the bus instead of the logits.
     *
     * <pre>{@code
     * int next = backend.argmax(logits, vocabSize);
     * }</pre>
     */
    default int argmax(Tensor x, int n) {
        float[] v = new float[n];
        read(x, 0, v, 0, n);
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    /**
     * One decoding step's choice material from the logits {@code x[0..n)}: their statistics and
     * the {@code k} best tokens after the repetition penalty (see {@link TokenCandidates}), into
     * {@code out}. {@code penalisedIds[0..penalisedCount)} are the recent tokens the penalty
     * lowers; penalty 1 changes nothing. The default reads the logits back and selects on the
     * host; a device backend selects where they are, so that k candidates cross the bus instead
     * of the vocabulary's logits.
     *
     * <pre>{@code
     * TokenCandidates c = new TokenCandidates();
     * backend.selectTokens(logits, vocabSize, 40, 1f, new int[0], 0, c);
     * double entropy = c.stats().entropy();
     * }</pre>
     */
    default void selectTokens(Tensor x, int n, int k, float penalty, int[] penalisedIds, int penalisedCount,
            TokenCandidates out) {
        TokenCandidates.checkRequest(n, k, penalisedIds, penalisedCount);
        float[] host = out.hostLogits(n);
        read(x, 0, host, 0, n);
        out.select(host, n, k, penalty, penalisedIds, penalisedCount);
    }

    /** Writes the rows {@code tokens[0..n)} of the embedding table into {@code out}, dequantized. */
    void embed(Weight table, int[] tokens, int n, Tensor out);

    /** RMSNorm of each of {@code nTokens} rows of width {@code norm.cols()}, times the weights. */
    void rmsNorm(Tensor x, Weight norm, Tensor out, int nTokens, float eps);

    /** {@code out[t] = W · x[t]} for {@code nTokens} tokens; x rows are {@code w.cols()} wide, out rows {@code w.rows()}. */
    void matmul(Weight w, Tensor x, Tensor out, int nTokens);

    /** Rotates {@code nHeads} heads of every token in place; token {@code t} is at position {@code startPos + t}. */
    void rope(Tensor x, int nHeads, int headDim, Rope rope, int startPos, int nTokens);

    /**
     * Causal grouped-query attention for {@code nTokens} new tokens at positions
     * {@code startPos..}: stores their keys and values in the cache at {@code layer}, then
     * attends each query head over positions {@code 0..its own}. Query head {@code h} reads KV
     * head {@code h / (nHeads / nKvHeads)}.
     */
    default void attention(Tensor q, Tensor k, Tensor v, KvCache cache, int layer, Tensor out, int nHeads,
            int nKvHeads, int headDim, int startPos, int nTokens) {
        attention(q, k, v, cache, layer, out, nHeads, nKvHeads, headDim, startPos, nTokens, 1.0f,
                1.0f / (float) Math.sqrt(headDim));
    }

    /**
     * Attention as {@link #attention(Tensor, Tensor, Tensor, KvCache, int, Tensor, int, int, int, int, int)},
     * with explicit scales: each query is multiplied by {@code qScale} before it meets the cache
     * (and so before a half-precision cache rounds it), and each score {@code q·k} by
     * {@code kqScale} before the softmax. Llama scales the scores ({@code 1, 1/sqrt(headDim)});
     * llama.cpp's phi3 graph scales the query ({@code 1/sqrt(headDim), 1}). The two are equal in
     * exact arithmetic but round differently, and agreement on near ties needs the same order.
     * {@code qScale} must leave {@code q} untouched (backends scale a copy).
     */
    void attention(Tensor q, Tensor k, Tensor v, KvCache cache, int layer, Tensor out, int nHeads, int nKvHeads,
            int headDim, int startPos, int nTokens, float qScale, float kqScale);

    /**
     * {@link #ropeQk} then {@link #attention(Tensor, Tensor, Tensor, KvCache, int, Tensor, int, int, int, int, int, float, float)}
     * (the default), which a backend may do in one pass; {@code q} and {@code k} are scratch
     * afterwards (rotated, or left as they were where the rotation happened inside).
     *
     * <pre>{@code
     * backend.ropeAndAttention(q, k, v, cache, layer, att, heads, kvHeads, headDim, rope, pos, n, 1f, kqScale);
     * }</pre>
     */
    default void ropeAndAttention(Tensor q, Tensor k, Tensor v, KvCache cache, int layer, Tensor out, int nHeads,
            int nKvHeads, int headDim, Rope rope, int startPos, int nTokens, float qScale, float kqScale) {
        ropeQk(q, nHeads, k, nKvHeads, headDim, rope, startPos, nTokens);
        attention(q, k, v, cache, layer, out, nHeads, nKvHeads, headDim, startPos, nTokens, qScale, kqScale);
    }

    /**
     * One-row tensors for {@link #ropeAndAttentionRows}' default: a query ({@code nHeads *
     * headDim}), a key and a value ({@code nKvHeads * headDim}) and an output (as the query).
     */
    record RowScratch(Tensor q, Tensor k, Tensor v, Tensor out) {
    }

    /**
     * Decode attention for {@code n} sequences stepping together, one token each: row i of
     * {@code q}, {@code k}, {@code v} (RoPE still to apply) is sequence i's token at position
     * {@code positions[i]}, attending over its own cache {@code caches[i]}, into row i of
     * {@code out}. The default copies each row through {@code scratch} into
     * {@link #ropeAndAttention} and back; a backend may read and write the rows where they are.
     *
     * <pre>{@code
     * backend.ropeAndAttentionRows(q, k, v, caches, positions, n, layer, att, heads, kvHeads, headDim, rope,
     *         1f, kqScale, scratch);
     * }</pre>
     */
    default void ropeAndAttentionRows(Tensor q, Tensor k, Tensor v, KvCache[] caches, int[] positions, int n,
            int layer, Tensor out, int nHeads, int nKvHeads, int headDim, Rope rope, float qScale, float kqScale,
            RowScratch scratch) {
        int qDim = nHeads * headDim;
        int kvDim = nKvHeads * headDim;
        for (int i = 0; i < n; i++) {
            copy(q, i * qDim, scratch.q(), 0, qDim);
            copy(k, i * kvDim, scratch.k(), 0, kvDim);
            copy(v, i * kvDim, scratch.v(), 0, kvDim);
            ropeAndAttention(scratch.q(), scratch.k(), scratch.v(), caches[i], layer, scratch.out(), nHeads, nKvHeads,
                    headDim, rope, positions[i], 1, qScale, kqScale);
            copy(scratch.out(), 0, out, i * qDim, qDim);
        }
    }

    /** {@code out = silu(gate) * up} over {@code n} floats. */
    void swiglu(Tensor gate, Tensor up, Tensor out, int n);

    /**
     * The three attention projections of one input: {@code q = wq . x}, {@code k = wk . x},
     * {@code v = wv . x} for {@code nTokens} tokens; the same as three {@link #matmul} calls (the
     * default), which a backend may do in one pass.
     */
    default void matmulQkv(Weight wq, Weight wk, Weight wv, Tensor x, Tensor q, Tensor k, Tensor v, int nTokens) {
        matmul(wq, x, q, nTokens);
        matmul(wk, x, k, nTokens);
        matmul(wv, x, v, nTokens);
    }

    /**
     * The gated feed-forward input: {@code out = silu(gate . x) * (up . x)} (element-wise), with
     * {@code upOut} as scratch for {@code up . x}; the same as {@code matmul(gate, x, out)},
     * {@code matmul(up, x, upOut)}, {@code swiglu(out, upOut, out)} (the default), which a backend
     * may fuse. {@code out} and {@code upOut} hold {@code nTokens * gate.rows()} values.
     */
    default void ffnGateUp(Weight gate, Weight up, Tensor x, Tensor out, Tensor upOut, int nTokens) {
        matmul(gate, x, out, nTokens);
        matmul(up, x, upOut, nTokens);
        swiglu(out, upOut, out, nTokens * gate.rows());
    }

    /** {@code y += x} over {@code n} floats. */
    void add(Tensor x, Tensor y, int n);

    /**
     * A product added to the residual stream: {@code y[t] += W · x[t]}, with {@code tmp}
     * ({@code nTokens * w.rows()} floats) as scratch; the same as {@code matmul(w, x, tmp)} then
     * {@code add(tmp, y)} (the default, which leaves the product in {@code tmp}), which a backend
     * may do in the product's own store (and then leave {@code tmp} unwritten). Each element is
     * the product rounded to float, then added, as in the two steps.
     *
     * <pre>{@code
     * backend.matmulAdd(layer.wo(), att, xb, x, n);   // x += wo . att
     * }</pre>
     */
    default void matmulAdd(Weight w, Tensor x, Tensor tmp, Tensor y, int nTokens) {
        matmul(w, x, tmp, nTokens);
        add(tmp, y, nTokens * w.rows());
    }

    /**
     * {@link #rope} on the query heads and the key heads of the same tokens: the same as two
     * {@code rope} calls (the default), which a backend may do in one pass.
     *
     * <pre>{@code
     * backend.ropeQk(q, config.heads(), k, config.kvHeads(), config.headDim(), rope, pos, n);
     * }</pre>
     */
    default void ropeQk(Tensor q, int nHeads, Tensor k, int nKvHeads, int headDim, Rope rope, int startPos,
            int nTokens) {
        rope(q, nHeads, headDim, rope, startPos, nTokens);
        rope(k, nKvHeads, headDim, rope, startPos, nTokens);
    }

    /**
     * Copies {@code length} floats from {@code src[srcOffset..]} to {@code dst[dstOffset..]}; src
     * and dst may be one tensor if the ranges do not overlap.
     *
     * <pre>{@code
     * backend.copy(batchQ, i * qDim, oneQ, 0, qDim);  // row i of a batch into a one-row tensor
     * }</pre>
     */
    void copy(Tensor src, int srcOffset, Tensor dst, int dstOffset, int length);

    /** Copies row {@code row} (of {@code width} floats) of {@code src} to row 0 of {@code dst}. */
    default void copyRow(Tensor src, int row, Tensor dst, int width) {
        copy(src, row * width, dst, 0, width);
    }

    @Override
    void close();
}
