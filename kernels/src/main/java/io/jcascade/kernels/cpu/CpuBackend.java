package io.jcascade.kernels.cpu;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.Backend;
import io.jcascade.kernels.WeightMatrix;
import java.lang.foreign.MemorySegment;
import java.util.OptionalDouble;

/**
 * The CPU backend: weights stay in the memory-mapped file in their block layout, activations and
 * the KV cache are heap float arrays, and {@link CpuKernels} does the arithmetic.
 *
 * <p>The KV cache holds half-precision values (rounded from float32 on store), as llama.cpp's
 * default {@code f16} cache does; attention then rounds the query and the attention weights to
 * half precision too, because that is what multiplying with a half-precision cache does in
 * llama.cpp. Matching these roundings keeps greedy decoding in step with llama.cpp on near ties.
 *
 * <pre>{@code
 * try (Backend cpu = new CpuBackend(CpuKernels.create(4))) { ... }
 * }</pre>
 */
public final class CpuBackend implements Backend {

    private final CpuKernels kernels;
    /** Whether one-token projections run fused ({@link #matmulQkv}, {@link #ffnGateUp}); {@code -Djcascade.fuse=false} for comparisons. */
    private static final boolean FUSE = !"false".equalsIgnoreCase(System.getProperty("jcascade.fuse", "true"));
    /** Whether prompt batches take {@link BatchAttention}; {@code -Djcascade.batchAttention=false} keeps the row-at-a-time loop (same values). */
    static final boolean BATCH_ATTENTION =
            !"false".equalsIgnoreCase(System.getProperty("jcascade.batchAttention", "true"));
    private final ThreadLocal<float[]> scratch = ThreadLocal.withInitial(() -> new float[256]);

    public CpuBackend(CpuKernels kernels) {
        this.kernels = kernels;
    }

    /** The kernels this backend runs on. */
    public CpuKernels kernels() {
        return kernels;
    }

    @Override
    public String name() {
        return "cpu";
    }

    /** Bytes per second read by all the kernels' threads over 512 MiB ({@code -Djcascade.bandwidthMiB}); see {@link ReadBandwidth}. */
    @Override
    public OptionalDouble measureBandwidth() {
        return OptionalDouble.of(ReadBandwidth.measure(kernels, Long.getLong("jcascade.bandwidthMiB", 512) << 20));
    }

    static final class CpuTensor implements Tensor {
        final float[] data;

        CpuTensor(int size) {
            this.data = new float[size];
        }

        @Override
        public int size() {
            return data.length;
        }
    }

    static final class CpuWeight implements Weight {
        final WeightMatrix matrix;
        /** A 1-row weight (a norm) dequantized once, since kernels take norms as float arrays. */
        final float[] vector;
        /** The matrix repacked by the kernels ({@link CpuKernels#pack}), used instead of {@link #matrix}; or null. */
        final PackedMatrix packed;

        CpuWeight(WeightMatrix matrix, float[] vector, PackedMatrix packed) {
            this.matrix = matrix;
            this.vector = vector;
            this.packed = packed;
        }

        @Override
        public int rows() {
            return matrix.rows();
        }

        @Override
        public int cols() {
            return matrix.cols();
        }
    }

    static final class CpuKvCache implements KvCache {
        /** keys[layer][pos * kvDim + kvHead * headDim + d]; values alike. */
        final float[][] keys;
        final float[][] values;
        final int capacity;
        final int kvDim;

        CpuKvCache(int layers, int capacity, int kvDim) {
            this.keys = new float[layers][Math.multiplyExact(capacity, kvDim)];
            this.values = new float[layers][capacity * kvDim];
            this.capacity = capacity;
            this.kvDim = kvDim;
        }

        @Override
        public int capacity() {
            return capacity;
        }
    }

    /**
     * Binds a weight. Matrices the kernels multiply faster in another layout are repacked here
     * (Q4_0, Q4_K, Q6_K on 512-bit machines: {@link PackedMatrix}); the kernels drop the packed
     * pages of a file mapping from this process as they go ({@link MemorySegment#unload}), so the
     * weights take about the file's size in memory, not twice. The file is not read again.
     */
    @Override
    public Weight weight(WeightMatrix matrix) {
        float[] vector = null;
        PackedMatrix packed = null;
        if (matrix.rows() == 1) {
            vector = new float[matrix.cols()];
            kernels.dequantizeRow(matrix, 0, vector, 0);
        } else {
            switch (matrix.type()) {
                case F32, F16, BF16, Q8_0, Q4_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> { }
                default -> throw new UnsupportedOperationException("the CPU backend does not run " + matrix.type()
                        + " weights yet (supported: F32, F16, BF16, Q8_0, Q4_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
            }
            packed = kernels.pack(matrix);
        }
        return new CpuWeight(matrix, vector, packed);
    }

    @Override
    public Tensor tensor(int size) {
        return new CpuTensor(size);
    }

    @Override
    public KvCache kvCache(int layers, int capacity, int kvDim) {
        return new CpuKvCache(layers, capacity, kvDim);
    }

    @Override
    public void read(Tensor src, int srcOffset, float[] dst, int dstOffset, int length) {
        System.arraycopy(data(src), srcOffset, dst, dstOffset, length);
    }

    /** In place: no copy of the logits. */
    @Override
    public int argmax(Tensor x, int n) {
        float[] v = data(x);
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    @Override
    public void embed(Weight table, int[] tokens, int n, Tensor out) {
        CpuWeight w = (CpuWeight) table;
        float[] o = data(out);
        for (int t = 0; t < n; t++) {
            if (tokens[t] < 0 || tokens[t] >= w.rows()) {
                throw new IllegalArgumentException("token id " + tokens[t] + " is outside the vocabulary of "
                        + w.rows());
            }
            if (w.packed != null) {
                kernels.dequantizeRow(w.packed, tokens[t], o, t * w.cols());
            } else {
                kernels.dequantizeRow(w.matrix, tokens[t], o, t * w.cols());
            }
        }
    }

    @Override
    public void rmsNorm(Tensor x, Weight norm, Tensor out, int nTokens, float eps) {
        CpuWeight w = (CpuWeight) norm;
        int n = w.cols();
        float[] xs = data(x);
        float[] os = data(out);
        for (int t = 0; t < nTokens; t++) {
            kernels.rmsNorm(xs, t * n, w.vector, os, t * n, n, eps);
        }
    }

    @Override
    public void matmul(Weight w, Tensor x, Tensor out, int nTokens) {
        CpuWeight cw = (CpuWeight) w;
        WeightMatrix m = cw.matrix;
        if (cw.packed != null) {
            kernels.matmul(cw.packed, data(x), 0, m.cols(), data(out), 0, m.rows(), nTokens);
        } else {
            kernels.matmul(m, data(x), 0, m.cols(), data(out), 0, m.rows(), nTokens);
        }
    }

    /** One token: one activation quantization and one pass over the threads for the three ({@link PanamaKernels#matvecs}). */
    @Override
    public void matmulQkv(Weight wq, Weight wk, Weight wv, Tensor x, Tensor q, Tensor k, Tensor v, int nTokens) {
        if (FUSE && nTokens == 1 && kernels instanceof PanamaKernels pk) {
            CpuWeight a = (CpuWeight) wq, b = (CpuWeight) wk, c = (CpuWeight) wv;
            pk.matvecs(new WeightMatrix[] {a.matrix, b.matrix, c.matrix}, packed(a, b, c), data(x), 0,
                    new float[][] {data(q), data(k), data(v)}, false);
            return;
        }
        Backend.super.matmulQkv(wq, wk, wv, x, q, k, v, nTokens);
    }

    /** One token: gate and up in one pass over the threads, SwiGLU applied to each chunk of rows as it is done. */
    @Override
    public void ffnGateUp(Weight gate, Weight up, Tensor x, Tensor out, Tensor upOut, int nTokens) {
        if (FUSE && nTokens == 1 && kernels instanceof PanamaKernels pk) {
            CpuWeight a = (CpuWeight) gate, b = (CpuWeight) up;
            pk.matvecs(new WeightMatrix[] {a.matrix, b.matrix}, packed(a, b), data(x), 0,
                    new float[][] {data(out), data(upOut)}, true);
            return;
        }
        Backend.super.ffnGateUp(gate, up, x, out, upOut, nTokens);
    }

    private static PackedMatrix[] packed(CpuWeight... ws) {
        PackedMatrix[] p = new PackedMatrix[ws.length];
        boolean any = false;
        for (int i = 0; i < ws.length; i++) {
            p[i] = ws[i].packed;
            any |= p[i] != null;
        }
        return any ? p : null;
    }

    @Override
    public void rope(Tensor x, int nHeads, int headDim, Rope rope, int startPos, int nTokens) {
        float[] xs = data(x);
        int width = nHeads * headDim;
        for (int t = 0; t < nTokens; t++) {
            kernels.rope(xs, t * width, nHeads, headDim, rope.dims(), startPos + t, rope.freqBase(),
                    rope.freqFactors(), rope.neox(), rope.freqScale(), rope.attnFactor());
        }
    }

    @Override
    public void attention(Tensor q, Tensor k, Tensor v, KvCache cache, int layer, Tensor out, int nHeads,
            int nKvHeads, int headDim, int startPos, int nTokens, float qScale, float kqScale) {
        CpuKvCache c = (CpuKvCache) cache;
        int kvDim = nKvHeads * headDim;
        if (startPos + nTokens > c.capacity) {
            throw new IllegalStateException("KV cache holds " + c.capacity + " positions, asked to fill up to "
                    + (startPos + nTokens));
        }
        float[] keys = c.keys[layer];
        float[] values = c.values[layer];
        float[] ks = data(k);
        float[] vs = data(v);
        // Cache layout: position-major, [pos][kvHead][d], so one head's history is a strided walk.
        for (int t = 0; t < nTokens; t++) {
            int dst = (startPos + t) * kvDim;
            for (int i = 0; i < kvDim; i++) {
                keys[dst + i] = toHalf(ks[t * kvDim + i]);
                values[dst + i] = toHalf(vs[t * kvDim + i]);
            }
        }
        float[] qs = data(q);
        float[] os = data(out);
        if (BATCH_ATTENTION && nTokens > 1 && kernels instanceof PanamaKernels && BatchAttention.supports(headDim)) {
            BatchAttention.run(kernels, qs, keys, values, os, nHeads, nKvHeads, headDim, startPos, nTokens, qScale,
                    kqScale);
            return;
        }
        attentionRows(qs, keys, values, os, nHeads, nKvHeads, headDim, startPos, nTokens, qScale, kqScale);
    }

    /**
     * Attention one (token, head) row at a time: for single tokens, and the reference
     * {@link BatchAttention} is tested against. Cache layout as {@link CpuKvCache}; queries and
     * outputs {@code [token][head][d]}.
     */
    void attentionRows(float[] qs, float[] keys, float[] values, float[] os, int nHeads, int nKvHeads, int headDim,
            int startPos, int nTokens, float qScale, float kqScale) {
        attentionRows(qs, keys, values, os, nHeads, nKvHeads, headDim, startPos, nTokens, qScale, kqScale, GROUP_FROM);
    }

    /** As above, the query heads of a KV head sharing a task from {@code groupFrom} positions (tests take both ways). */
    void attentionRows(float[] qs, float[] keys, float[] values, float[] os, int nHeads, int nKvHeads, int headDim,
            int startPos, int nTokens, float qScale, float kqScale, int groupFrom) {
        int kvDim = nKvHeads * headDim;
        int group = nHeads / nKvHeads;
        float scale = kqScale;
        // As llama.cpp's graph (no flash attention): scores = K . q with q rounded to f16, softmax
        // with ggml's exp, probabilities rounded to f16, times V; the sums in ggml's order, which
        // differs between a single token (ggml_vec_dot_f16) and a batch (tinyBLAS, 8 lanes).
        boolean batch = nTokens > 1;
        int width = batch ? 8 : 32; // accumulators of the weighted values (ggml_vec_dot_f16's 32, tinyBLAS's 8)
        // Long contexts (GROUP_FROM positions on): one task per (token, KV head), the query heads
        // that share a KV head taking each block of ROWS cache positions in turn while it is in
        // L1/L2, instead of each reading the whole cache. Short ones: one task per query head, all
        // its positions in one pass (more, smaller tasks; at 256 positions grouped ones were
        // slower). buf: the task's queries rounded to half (heads x headDim); their scores, then
        // probabilities (heads x padded); their accumulators for the weighted sum of values
        // (heads x width x headDim).
        int heads = startPos + nTokens >= groupFrom ? group : 1;
        int perGroup = group / heads;
        kernels.parallelFor(nTokens * nKvHeads * perGroup, task -> {
            int t = task / (nKvHeads * perGroup);
            int g = task / perGroup % nKvHeads;
            int h0 = g * group + task % perGroup * heads; // the task's first query head
            int len = startPos + t + 1;
            int padded = (len + 31) & ~31;
            int kvOffset = g * headDim;
            int block = heads == 1 ? padded : ROWS; // one head alone takes its positions in one pass
            int sc = heads * headDim, accOff = sc + heads * padded, end = accOff + heads * width * headDim;
            float[] buf = scratch(end);
            int qOffset = t * nHeads * headDim + h0 * headDim; // the task's heads are consecutive
            for (int i = 0; i < heads * headDim; i++) {
                buf[i] = toHalf(qScale == 1.0f ? qs[qOffset + i] : qs[qOffset + i] * qScale);
            }
            for (int s0 = 0; s0 < len; s0 += block) {
                int n = Math.min(block, len - s0);
                for (int j = 0; j < heads; j++) {
                    blockScores(buf, j * headDim, keys, s0 * kvDim + kvOffset, kvDim, n, headDim, scale, batch,
                            sc + j * padded + s0);
                }
            }
            for (int j = 0; j < heads; j++) {
                softmax(buf, sc + j * padded, len, padded);
            }
            // out[d] = sum_s p_s * v[s][d]: accumulator r takes the positions s = r mod width in
            // order, by fused multiply-add; the positions ggml pads with zero probabilities change
            // nothing and are skipped
            java.util.Arrays.fill(buf, accOff, end, 0f);
            for (int s0 = 0; s0 < len; s0 += block) { // block is a multiple of every width
                int n = Math.min(block, len - s0);
                for (int j = 0; j < heads; j++) {
                    weightedValues(buf, sc + j * padded + s0, n, values, s0 * kvDim + kvOffset, kvDim, headDim, width,
                            buf, accOff + j * width * headDim);
                }
            }
            for (int j = 0; j < heads; j++) {
                for (int d = 0; d < headDim; d++) {
                    int at = accOff + j * width * headDim + d;
                    os[qOffset + j * headDim + d] = batch ? hsum8(buf, at, headDim) : reduce32(buf, at, headDim);
                }
            }
        });
    }

    /**
     * Scores of one query ({@code buf[q ..)}, rounded to half) against {@code n} key rows
     * ({@code keys[k + i * stride ..)}), times {@code scale}, to {@code buf[o + i]}: summed as
     * ggml_vec_dot_f16 (one token) or tinyBLAS (a batch) sums them.
     */
    private static void blockScores(float[] buf, int q, float[] keys, int k, int stride, int n, int headDim,
            float scale, boolean batch, int o) {
        float[] lanes = LANES.get();
        for (int i = 0; i < n; i++) {
            float dot = batch ? GgmlMath.dot8(buf, q, keys, k + i * stride, headDim, lanes)
                    : GgmlMath.dotF16(buf, q, keys, k + i * stride, headDim, lanes);
            buf[o + i] = dot * scale;
        }
    }

    /**
     * ggml_vec_soft_max_f32 over the scores {@code buf[o, o + len)}, in place, then the
     * probabilities rounded to half: v_expf per chunk of 8 (positions past len give 0), chunk
     * sums (hsum8) added in double, one float reciprocal. {@code buf[o + len, o + padded)} is
     * scratch.
     */
    private static void softmax(float[] buf, int o, int len, int padded) {
        float max = Float.NEGATIVE_INFINITY;
        for (int s = 0; s < len; s++) {
            max = Math.max(max, buf[o + s]);
        }
        double sum = 0;
        for (int s0 = 0; s0 < padded; s0 += 8) {
            for (int s = s0; s < s0 + 8; s++) {
                buf[o + s] = s < len ? GgmlMath.expf(buf[o + s] - max) : 0f;
            }
            sum += GgmlMath.hsum8(buf, o + s0);
        }
        float inv = (float) (1.0 / sum);
        for (int s = 0; s < len; s++) {
            buf[o + s] = toHalf(buf[o + s] * inv);
        }
    }

    private static final ThreadLocal<float[]> LANES = ThreadLocal.withInitial(() -> new float[32]);

    private static final jdk.incubator.vector.VectorSpecies<Float> F = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED;
    private static final int L = F.length();

    /** Cache positions a group of query heads takes at a time: a multiple of 32 (the widest accumulator cycle). */
    private static final int ROWS = 128;
    /**
     * Positions from which the query heads of a KV head share one task ({@link #attentionRows}):
     * in AttentionBench (2 threads, docs/BENCHMARKS.md) as fast or faster from 2048 positions,
     * 1.2x at 4096, 1.4-1.8x at 8192, but slower at 256.
     */
    static final int GROUP_FROM = 2048;

    /**
     * Adds positions {@code [0, n)} of a block (whose first position is a multiple of
     * {@code width}) to the {@code width} accumulators of {@code sum_s p[s] * v[s]}: accumulator
     * r takes the positions {@code s = r mod width} in order by fused multiply-add
     * ({@code acc[accOff + r * headDim + d]}). One accumulator at a time, over its positions, in
     * registers: the same chains as an axpy per position, without loading and storing the
     * accumulators at every position. {@code v[s][d]} at {@code values[vOff + s * vStride + d]},
     * {@code p[s]} at {@code p[pOff + s]}.
     */
    static void weightedValues(float[] p, int pOff, int n, float[] values, int vOff, int vStride, int headDim,
            int width, float[] acc, int accOff) {
        for (int r = 0; r < Math.min(width, n); r++) {
            int ao = accOff + r * headDim;
            int d = 0;
            for (; d + 4 * L <= headDim; d += 4 * L) {
                var a0 = jdk.incubator.vector.FloatVector.fromArray(F, acc, ao + d);
                var a1 = jdk.incubator.vector.FloatVector.fromArray(F, acc, ao + d + L);
                var a2 = jdk.incubator.vector.FloatVector.fromArray(F, acc, ao + d + 2 * L);
                var a3 = jdk.incubator.vector.FloatVector.fromArray(F, acc, ao + d + 3 * L);
                for (int s = r, v = vOff + r * vStride + d; s < n; s += width, v += width * vStride) {
                    var w = jdk.incubator.vector.FloatVector.broadcast(F, p[pOff + s]);
                    a0 = jdk.incubator.vector.FloatVector.fromArray(F, values, v).fma(w, a0);
                    a1 = jdk.incubator.vector.FloatVector.fromArray(F, values, v + L).fma(w, a1);
                    a2 = jdk.incubator.vector.FloatVector.fromArray(F, values, v + 2 * L).fma(w, a2);
                    a3 = jdk.incubator.vector.FloatVector.fromArray(F, values, v + 3 * L).fma(w, a3);
                }
                a0.intoArray(acc, ao + d);
                a1.intoArray(acc, ao + d + L);
                a2.intoArray(acc, ao + d + 2 * L);
                a3.intoArray(acc, ao + d + 3 * L);
            }
            for (; d + L <= headDim; d += L) {
                var a = jdk.incubator.vector.FloatVector.fromArray(F, acc, ao + d);
                for (int s = r, v = vOff + r * vStride + d; s < n; s += width, v += width * vStride) {
                    a = jdk.incubator.vector.FloatVector.fromArray(F, values, v).fma(
                            jdk.incubator.vector.FloatVector.broadcast(F, p[pOff + s]), a);
                }
                a.intoArray(acc, ao + d);
            }
            for (; d < headDim; d++) {
                float a = acc[ao + d];
                for (int s = r; s < n; s += width) {
                    a = Math.fma(p[pOff + s], values[vOff + s * vStride + d], a);
                }
                acc[ao + d] = a;
            }
        }
    }

    /** ggml's hsum_float_8 of the 8 accumulators {@code buf[at + r * stride]}. */
    private static float hsum8(float[] buf, int at, int stride) {
        float h0 = buf[at + 4 * stride] + buf[at], h1 = buf[at + 5 * stride] + buf[at + stride];
        float h2 = buf[at + 6 * stride] + buf[at + 2 * stride], h3 = buf[at + 7 * stride] + buf[at + 3 * stride];
        return (h0 + h2) + (h1 + h3);
    }

    /**
     * ggml_vec_dot_f16's reduction of its 4 x 8 accumulators ({@code buf[at + r * stride]}, r = 8i + l):
     * (a0+a2) + (a1+a3) lane by lane, then the lanes as ((l0+l4) + (l1+l5)) + ((l2+l6) + (l3+l7)).
     */
    private static float reduce32(float[] buf, int at, int stride) {
        float t0 = lane(buf, at, stride, 0), t1 = lane(buf, at, stride, 1), t2 = lane(buf, at, stride, 2),
                t3 = lane(buf, at, stride, 3);
        return (t0 + t1) + (t2 + t3);
    }

    /** Lane l and l + 4 of the accumulators reduced (a0+a2) + (a1+a3), then added. */
    private static float lane(float[] buf, int at, int stride, int l) {
        float x0 = (buf[at + l * stride] + buf[at + (16 + l) * stride]) + (buf[at + (8 + l) * stride] + buf[at + (24 + l) * stride]);
        float x4 = (buf[at + (4 + l) * stride] + buf[at + (20 + l) * stride])
                + (buf[at + (12 + l) * stride] + buf[at + (28 + l) * stride]);
        return x0 + x4;
    }

    private float[] scratch(int size) {
        float[] buf = scratch.get();
        if (buf.length < size) {
            buf = new float[Math.max(size, buf.length * 2)];
            scratch.set(buf);
        }
        return buf;
    }

    /** {@code x} rounded to half precision (to nearest even) and back, as the cache stores it. */
    static float toHalf(float x) {
        return Float.float16ToFloat(Float.floatToFloat16(x));
    }

    @Override
    public void swiglu(Tensor gate, Tensor up, Tensor out, int n) {
        kernels.swiglu(data(gate), 0, data(up), 0, data(out), 0, n);
    }

    @Override
    public void add(Tensor x, Tensor y, int n) {
        kernels.add(data(x), 0, data(y), 0, n);
    }

    @Override
    public void copy(Tensor src, int srcOffset, Tensor dst, int dstOffset, int length) {
        System.arraycopy(data(src), srcOffset, data(dst), dstOffset, length);
    }

    private static float[] data(Tensor t) {
        return ((CpuTensor) t).data;
    }

    @Override
    public void close() {
        kernels.close();
    }
}
