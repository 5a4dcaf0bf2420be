package io.jcascade.kernels.cpu;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.Backend;
import io.jcascade.kernels.WeightMatrix;
import java.lang.foreign.MemorySegment;

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
                case F32, F16, BF16, Q8_0, Q4_0, Q2_K, Q4_K, Q5_K, Q6_K -> { }
                default -> throw new UnsupportedOperationException("the CPU backend does not run " + matrix.type()
                        + " weights yet (supported: F32, F16, BF16, Q8_0, Q4_0, Q2_K, Q4_K, Q5_K, Q6_K)");
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
                    rope.freqFactors(), rope.neox(), rope.freqScale());
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
        int group = nHeads / nKvHeads;
        float scale = kqScale;
        kernels.parallelFor(nTokens * nHeads, task -> {
            int t = task / nHeads;
            int h = task % nHeads;
            int len = startPos + t + 1;
            int kvOffset = (h / group) * headDim;
            float[] buf = scratch(len + headDim);
            // buf[0..headDim) = the query rounded to half; buf[headDim..headDim+len) = scores.
            int qOffset = t * nHeads * headDim + h * headDim;
            for (int d = 0; d < headDim; d++) {
                buf[d] = toHalf(qScale == 1.0f ? qs[qOffset + d] : qs[qOffset + d] * qScale);
            }
            for (int s = 0; s < len; s++) {
                buf[headDim + s] = kernels.dot(buf, 0, keys, s * kvDim + kvOffset, headDim) * scale;
            }
            kernels.softmax(buf, headDim, len);
            int o = qOffset;
            java.util.Arrays.fill(os, o, o + headDim, 0f);
            for (int s = 0; s < len; s++) {
                kernels.axpy(toHalf(buf[headDim + s]), values, s * kvDim + kvOffset, os, o, headDim);
            }
        });
    }

    private float[] scratch(int size) {
        float[] buf = scratch.get();
        if (buf.length < size) {
            buf = new float[Math.max(size, buf.length * 2)];
            scratch.set(buf);
        }
        return buf;
    }

    private static float toHalf(float x) {
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
    public void copyRow(Tensor src, int row, Tensor dst, int width) {
        System.arraycopy(data(src), row * width, data(dst), 0, width);
    }

    private static float[] data(Tensor t) {
        return ((CpuTensor) t).data;
    }

    @Override
    public void close() {
        kernels.close();
    }
}
