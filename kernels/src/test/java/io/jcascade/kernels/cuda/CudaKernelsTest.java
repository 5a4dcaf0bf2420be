package io.jcascade.kernels.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.fail;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.Backend;
import io.jcascade.kernels.Backend.Tensor;
import io.jcascade.kernels.Backend.Weight;
import io.jcascade.kernels.LogitStats;
import io.jcascade.kernels.TokenCandidates;
import io.jcascade.kernels.WeightMatrix;
import io.jcascade.kernels.cpu.CpuBackend;
import io.jcascade.kernels.cpu.ScalarKernels;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every CUDA kernel against the CPU backend running the reference {@link ScalarKernels} (sums in
 * double), on fresh random inputs, with each output poisoned with NaN before the run so that an
 * element the kernel forgets to write fails. Skips, through {@link CudaTestSupport}, where there
 * is no CUDA driver or device.
 */
class CudaKernelsTest {

    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static CudaBackend gpu;
    private static CpuBackend cpu;
    private static final ScalarKernels REF = new ScalarKernels();
    /** The reference of the 8-bit activation path: llama.cpp's vec_dot, as the CPU's default. */
    private static final ScalarKernels REF8 = ScalarKernels.int8Activations();
    private final Random rnd = new Random(System.nanoTime());

    @BeforeAll
    static void open() {
        gpu = CudaTestSupport.backendOrNull();
        cpu = new CpuBackend(new ScalarKernels());
    }

    @BeforeEach
    void needsGpu() {
        CudaTestSupport.assumeGpu(); // each test reports itself skipped, with the reason
    }

    @AfterAll
    static void close() {
        if (gpu != null) {
            gpu.close();
        }
    }

    // ---- helpers -----------------------------------------------------------------------------

    private float[] gaussian(int n, double sigma) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (rnd.nextGaussian() * sigma);
        }
        return a;
    }

    /** A random matrix in ggml's layout; see {@link RandomWeights#matrix}. */
    private WeightMatrix randomMatrix(GgmlType type, int rows, int cols) {
        return RandomWeights.matrix(rnd, type, rows, cols);
    }

    private Tensor onGpu(float[] data) {
        Tensor t = gpu.tensor(data.length);
        gpu.write(data, 0, t, 0, data.length);
        return t;
    }

    /** A CPU tensor holding {@code data}, written through {@code embed} of a one-row F32 table (the seam has no write). */
    private static Tensor onCpu(float[] data) {
        MemorySegment seg = Arena.ofAuto().allocate(4L * data.length, 64);
        MemorySegment.copy(data, 0, seg, F32_LE, 0, data.length);
        Weight row = cpu.weight(new WeightMatrix(GgmlType.F32, seg, 1, data.length));
        Tensor t = cpu.tensor(data.length);
        cpu.embed(row, new int[] {0}, 1, t);
        return t;
    }

    private static Tensor poisoned(int n) {
        Tensor t = gpu.tensor(n);
        gpu.fill(t, n, Float.NaN);
        return t;
    }

    private static float[] read(Backend b, Tensor t, int n) {
        float[] out = new float[n];
        b.read(t, 0, out, 0, n);
        return out;
    }

    /** |got - want| <= rel * scale[i] + abs for every element, with NaN failing. */
    private static void assertClose(String what, float[] got, float[] want, float[] scale, double rel, double abs) {
        assertThat(got).hasSameSizeAs(want);
        for (int i = 0; i < want.length; i++) {
            double bound = rel * (scale == null ? Math.abs(want[i]) : scale[i]) + abs;
            if (!(Math.abs(got[i] - want[i]) <= bound)) {
                fail(what + ": element " + i + " is " + got[i] + ", the CPU says " + want[i] + " (bound " + bound + ")");
            }
        }
    }

    // ---- kernels -----------------------------------------------------------------------------

    @ParameterizedTest(name = "{0} {1}x{2}, {3} tokens")
    @CsvSource({
        "F32, 37, 50, 1", "F32, 64, 64, 9", "F16, 100, 96, 1", "F16, 33, 256, 17", "BF16, 70, 128, 3",
        "Q8_0, 131, 288, 1", "Q8_0, 64, 512, 8", "Q8_0, 5, 32, 33", "Q4_0, 257, 256, 1", "Q4_0, 96, 768, 12",
        // K-quants: rows of one and of several 256-element super-blocks, a single token, a partial
        // token tile and more than one tile
        "Q4_K, 131, 256, 1", "Q4_K, 64, 1024, 9", "Q5_K, 70, 512, 1", "Q5_K, 33, 768, 17",
        "Q6_K, 257, 256, 1", "Q6_K, 48, 1280, 12", "Q3_K, 37, 512, 1", "Q3_K, 64, 256, 8",
        "Q2_K, 100, 768, 1", "Q2_K, 5, 256, 33",
        // one token at Llama-3.2-1B widths: the decode kernels (matvec_*), rows not a multiple of
        // a block's 8 warps, and the unrolled lane loop with and without a tail
        "Q8_0, 61, 2048, 1", "Q8_0, 20, 8192, 1", "Q4_0, 61, 2048, 1", "Q4_0, 20, 8192, 1",
        "Q4_K, 61, 2048, 1", "Q4_K, 20, 8192, 1", "Q6_K, 61, 2048, 1", "Q6_K, 20, 3328, 1",
        // prompts on the tensor cores (mmq_*): partial 64 x 64 tiles, Llama widths, 512 tokens
        "Q8_0, 130, 2048, 70", "Q4_0, 200, 2048, 65", "Q4_0, 64, 512, 512", "Q8_0, 17, 8192, 9",
        "Q4_K, 130, 2048, 70", "Q6_K, 70, 768, 65", "Q4_K, 64, 512, 300", "Q6_K, 17, 2048, 9",
    })
    void matmulMatchesTheCpu(GgmlType type, int rows, int cols, int nTokens) {
        WeightMatrix m = randomMatrix(type, rows, cols);
        float[] x = gaussian(nTokens * cols, 1.0);
        float[] want = new float[nTokens * rows];
        boolean int8 = gpu.multipliesWithInt8(type, nTokens);
        (int8 ? REF8 : REF).matmul(m, x, 0, cols, want, 0, rows, nTokens);
        // The error of a float32 dot product grows with the sum of |w_i x_i|, not with the result.
        float[] scale = new float[want.length];
        float[] row = new float[cols];
        for (int r = 0; r < rows; r++) {
            REF.dequantizeRow(m, r, row, 0);
            for (int t = 0; t < nTokens; t++) {
                double s = 0;
                for (int c = 0; c < cols; c++) {
                    s += Math.abs(row[c] * x[t * cols + c]);
                }
                scale[t * rows + r] = (float) s;
            }
        }
        Weight w = gpu.weight(m);
        Tensor out = poisoned(nTokens * rows);
        gpu.matmul(w, onGpu(x), out, nTokens);
        assertClose("matmul " + type + (int8 ? " (8-bit activations)" : ""), read(gpu, out, want.length), want, scale,
                1e-5 * Math.sqrt(cols), 1e-30);
        if (int8) {
            // and the float kernels of the same type, on a backend that takes float activations
            float[] wantFloat = new float[nTokens * rows];
            REF.matmul(m, x, 0, cols, wantFloat, 0, rows, nTokens);
            try (CudaBackend floats = CudaBackend.open(0, false)) {
                Tensor o = floats.tensor(nTokens * rows);
                floats.fill(o, nTokens * rows, Float.NaN);
                Tensor fx = floats.tensor(nTokens * cols);
                floats.write(x, 0, fx, 0, nTokens * cols);
                floats.matmul(floats.weight(m), fx, o, nTokens);
                float[] got = new float[nTokens * rows];
                floats.read(o, 0, got, 0, nTokens * rows);
                assertClose("matmul " + type + " (float activations)", got, wantFloat, scale, 1e-5 * Math.sqrt(cols),
                        1e-30);
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"})
    void embedDequantizesExactly(GgmlType type) {
        int rows = 50;
        int cols = type.blockSize() == 256 ? 512 : 96; // the K-quants: two super-blocks a row
        WeightMatrix m = randomMatrix(type, rows, cols);
        int[] tokens = {7, 0, 49, 7, 13};
        float[] want = new float[tokens.length * cols];
        for (int t = 0; t < tokens.length; t++) {
            REF.dequantizeRow(m, tokens[t], want, t * cols);
        }
        Tensor out = poisoned(want.length);
        gpu.embed(gpu.weight(m), tokens, tokens.length, out);
        assertThat(read(gpu, out, want.length)).containsExactly(want);
    }

    @ParameterizedTest(name = "{0} tokens of {1}")
    @CsvSource({"1, 288", "5, 288", "1, 100", "3, 100"}) // 288: the norm that also quantizes (n % 32 == 0)
    void rmsNormMatchesTheCpu(int nTokens, int n) {
        float[] x = gaussian(nTokens * n, 3.0);
        float[] w = gaussian(n, 1.0);
        float[] want = new float[x.length];
        for (int t = 0; t < nTokens; t++) {
            REF.rmsNorm(x, t * n, w, want, t * n, n, 1e-5f);
        }
        MemorySegment seg = Arena.ofAuto().allocate(4L * n, 64);
        MemorySegment.copy(w, 0, seg, F32_LE, 0, n);
        Weight norm = gpu.weight(new WeightMatrix(GgmlType.F32, seg, 1, n));
        Tensor out = poisoned(x.length);
        gpu.rmsNorm(onGpu(x), norm, out, nTokens, 1e-5f);
        assertClose("rmsNorm", read(gpu, out, x.length), want, null, 2e-6, 1e-30);
        // In place, as the forward pass does for the last row.
        Tensor inPlace = onGpu(x);
        gpu.rmsNorm(inPlace, norm, inPlace, nTokens, 1e-5f);
        assertClose("rmsNorm in place", read(gpu, inPlace, x.length), want, null, 2e-6, 1e-30);
    }

    @ParameterizedTest(name = "{0} {1}x{2}, {3} tokens")
    @CsvSource({"Q8_0, 70, 2048, 1", "Q4_0, 96, 512, 1", "Q4_K, 40, 1024, 1", "Q6_K, 33, 768, 1", "F16, 20, 256, 1",
        "Q4_0, 130, 512, 9", "Q8_0, 64, 256, 3", "Q4_K, 16, 256, 2"})
    void matmulAddMatchesTheCpu(GgmlType type, int rows, int cols, int nTokens) {
        WeightMatrix m = randomMatrix(type, rows, cols);
        float[] x = gaussian(nTokens * cols, 1.0);
        float[] y = gaussian(nTokens * rows, 2.0);
        float[] want = new float[nTokens * rows];
        (gpu.multipliesWithInt8(type, nTokens) ? REF8 : REF).matmul(m, x, 0, cols, want, 0, rows, nTokens);
        for (int i = 0; i < want.length; i++) {
            want[i] += y[i];
        }
        float[] scale = dotScale(m, x, nTokens);
        for (int i = 0; i < scale.length; i++) {
            scale[i] += Math.abs(y[i]) * 1e-2f; // the add's own rounding
        }
        Tensor gy = onGpu(y);
        gpu.matmulAdd(gpu.weight(m), onGpu(x), gpu.tensor(nTokens * rows), gy, nTokens);
        assertClose("matmulAdd " + type, read(gpu, gy, want.length), want, scale, 1e-5 * Math.sqrt(cols), 1e-30);
    }

    @Test
    void ropeQkIsTwoRopes() {
        int nTokens = 3;
        int headDim = 64;
        Backend.Rope rope = new Backend.Rope(64, 500000f, null, false, 1f, 1f);
        float[] q = gaussian(nTokens * 8 * headDim, 1.0);
        float[] k = gaussian(nTokens * 2 * headDim, 1.0);
        Tensor q1 = onGpu(q);
        Tensor k1 = onGpu(k);
        gpu.ropeQk(q1, 8, k1, 2, headDim, rope, 17, nTokens);
        Tensor q2 = onGpu(q);
        Tensor k2 = onGpu(k);
        gpu.rope(q2, 8, headDim, rope, 17, nTokens);
        gpu.rope(k2, 2, headDim, rope, 17, nTokens);
        assertThat(read(gpu, q1, q.length)).as("rope_qk's queries").containsExactly(read(gpu, q2, q.length));
        assertThat(read(gpu, k1, k.length)).as("rope_qk's keys").containsExactly(read(gpu, k2, k.length));
    }

    @ParameterizedTest(name = "{0}, {1} tokens")
    @CsvSource({"Q8_0, 1", "Q4_0, 1", "Q4_0, 7", "Q8_0, 70"})
    void productAfterANormTakesItsQuantsAsTheyAre(GgmlType type, int nTokens) {
        // The norm quantizes its output for the next product (rms_norm_q8); the product must give
        // what it gives when it quantizes the same floats itself (another operation in between).
        int cols = 512;
        float[] x = gaussian(nTokens * cols, 3.0);
        MemorySegment seg = Arena.ofAuto().allocate(4L * cols, 64);
        MemorySegment.copy(gaussian(cols, 1.0), 0, seg, F32_LE, 0, cols);
        Weight norm = gpu.weight(new WeightMatrix(GgmlType.F32, seg, 1, cols));
        Weight w = gpu.weight(randomMatrix(type, 96, cols));
        Tensor gx = onGpu(x);
        Tensor xb = gpu.tensor(nTokens * cols);
        Tensor fused = poisoned(nTokens * 96);
        gpu.rmsNorm(gx, norm, xb, nTokens, 1e-5f);
        gpu.matmul(w, xb, fused, nTokens);
        Tensor apart = poisoned(nTokens * 96);
        gpu.rmsNorm(gx, norm, xb, nTokens, 1e-5f);
        gpu.fill(gpu.tensor(1), 1, 0f);
        gpu.matmul(w, xb, apart, nTokens);
        assertThat(read(gpu, fused, nTokens * 96)).containsExactly(read(gpu, apart, nTokens * 96));
        // and a norm whose output changes before the product is not taken as quantized
        gpu.rmsNorm(gx, norm, xb, nTokens, 1e-5f);
        gpu.write(new float[nTokens * cols], 0, xb, 0, nTokens * cols);
        Tensor zero = poisoned(nTokens * 96);
        gpu.matmul(w, xb, zero, nTokens);
        assertThat(read(gpu, zero, nTokens * 96)).containsOnly(0f);
    }

    @ParameterizedTest(name = "heads {0}/{1} x {2}, decoding at {3}")
    @CsvSource({"4, 2, 64, 0", "4, 1, 128, 200", "8, 8, 96, 1022", "2, 2, 512, 500"})
    void oneKernelDecodeAttentionIsTheChunkedOneToTheBit(int nHeads, int nKvHeads, int headDim, int pos) {
        float[][] outs = twoDecodeSteps(nHeads, nKvHeads, headDim, pos, (q, k, v, cache, out, p) ->
                gpu.attention(q, k, v, cache, 0, out, nHeads, nKvHeads, headDim, p, 1, 0.5f, 0.125f));
        assertThat(outs[1]).containsExactly(outs[0]);
    }

    /** One decode step's attention call, on the step's q, k, v and output at position {@code p}. */
    private interface DecodeStep {
        void run(Tensor q, Tensor k, Tensor v, Backend.KvCache cache, Tensor out, int p);
    }

    /**
     * Two decode steps, at pos and pos + 1, after a prompt of pos tokens: with the chunked
     * kernels (fusedAttentionMax = 0) in outs[0], with the one-kernel attention in outs[1]. The
     * second step reads the key and value the first stored.
     */
    private float[][] twoDecodeSteps(int nHeads, int nKvHeads, int headDim, int pos, DecodeStep step) {
        int qDim = nHeads * headDim;
        int kvDim = nKvHeads * headDim;
        float[] k0 = gaussian((pos + 2) * kvDim, 1.0);
        float[] v0 = gaussian((pos + 2) * kvDim, 1.0);
        float[] q = gaussian(2 * qDim, 1.0);
        float[][] outs = new float[2][];
        for (int fused = 0; fused < 2; fused++) {
            gpu.fusedAttentionMax = fused == 1 ? 1024 : 0;
            try {
                Backend.KvCache cache = gpu.kvCache(1, pos + 2, kvDim);
                if (pos > 0) {
                    gpu.attention(onGpu(gaussian(pos * qDim, 1.0)), onGpu(java.util.Arrays.copyOf(k0, pos * kvDim)),
                            onGpu(java.util.Arrays.copyOf(v0, pos * kvDim)), cache, 0, gpu.tensor(pos * qDim), nHeads,
                            nKvHeads, headDim, 0, pos);
                }
                outs[fused] = new float[2 * qDim];
                for (int s = 0; s < 2; s++) {
                    int p = pos + s;
                    Tensor out = poisoned(qDim);
                    step.run(onGpu(java.util.Arrays.copyOfRange(q, s * qDim, (s + 1) * qDim)),
                            onGpu(java.util.Arrays.copyOfRange(k0, p * kvDim, (p + 1) * kvDim)),
                            onGpu(java.util.Arrays.copyOfRange(v0, p * kvDim, (p + 1) * kvDim)), cache, out, p);
                    System.arraycopy(read(gpu, out, qDim), 0, outs[fused], s * qDim, qDim);
                }
            } finally {
                gpu.fusedAttentionMax = 1024;
            }
        }
        return outs;
    }

    @ParameterizedTest(name = "positions {0}")
    @CsvSource({"'0, 5, 300'", "'1000, 2, 17, 64'", "'1023, 1024'"}) // 1024: past attn_decode, the copied path
    void attentionOnRowsWhereTheyAreIsEachSequenceAlone(String list) {
        // Sequences decoding together: attn_decode on each row in place against the one-token
        // call on copies of the rows, each over its own cache (filled with the same prompt).
        int[] positions = java.util.Arrays.stream(list.split(",")).mapToInt(p -> Integer.parseInt(p.trim())).toArray();
        int n = positions.length;
        int nHeads = 4, nKvHeads = 2, headDim = 64, qDim = nHeads * headDim, kvDim = nKvHeads * headDim;
        Backend.Rope rope = new Backend.Rope(64, 500000f, null, false, 1f, 1f);
        float[] q = gaussian(n * qDim, 1.0);
        float[] k = gaussian(n * kvDim, 1.0);
        float[] v = gaussian(n * kvDim, 1.0);
        float[][] outs = new float[2][];
        for (int way = 0; way < 2; way++) {
            Backend.KvCache[] caches = new Backend.KvCache[n];
            for (int i = 0; i < n; i++) {
                caches[i] = gpu.kvCache(1, positions[i] + 1, kvDim);
                if (positions[i] > 0) {
                    Random same = new Random(positions[i]);
                    float[] prompt = new float[positions[i] * kvDim];
                    for (int j = 0; j < prompt.length; j++) {
                        prompt[j] = (float) same.nextGaussian();
                    }
                    gpu.attention(onGpu(new float[positions[i] * qDim]), onGpu(prompt), onGpu(prompt), caches[i], 0,
                            gpu.tensor(positions[i] * qDim), nHeads, nKvHeads, headDim, 0, positions[i]);
                }
            }
            Tensor out = poisoned(n * qDim);
            if (way == 0) {
                gpu.ropeAndAttentionRows(onGpu(q), onGpu(k), onGpu(v), caches, positions, n, 0, out, nHeads, nKvHeads,
                        headDim, rope, 1f, 0.125f, new Backend.RowScratch(gpu.tensor(qDim), gpu.tensor(kvDim),
                                gpu.tensor(kvDim), gpu.tensor(qDim)));
            } else {
                for (int i = 0; i < n; i++) {
                    Tensor o = poisoned(qDim);
                    gpu.ropeAndAttention(onGpu(java.util.Arrays.copyOfRange(q, i * qDim, (i + 1) * qDim)),
                            onGpu(java.util.Arrays.copyOfRange(k, i * kvDim, (i + 1) * kvDim)),
                            onGpu(java.util.Arrays.copyOfRange(v, i * kvDim, (i + 1) * kvDim)), caches[i], 0, o, nHeads,
                            nKvHeads, headDim, rope, positions[i], 1, 1f, 0.125f);
                    gpu.copy(o, 0, out, i * qDim, qDim);
                }
            }
            outs[way] = read(gpu, out, n * qDim);
        }
        assertThat(outs[0]).containsExactly(outs[1]);
    }

    @ParameterizedTest(name = "neox={0}, factors={1}, rope dims {2}, decoding at {3}")
    @CsvSource({"false, false, 64, 0", "true, false, 64, 300", "false, true, 32, 77", "true, true, 48, 1000"})
    void ropeInsideAttentionIsRopeThenAttentionToTheBit(boolean neox, boolean factors, int dims, int pos) {
        // Through ropeAndAttention: RoPE inside attn_decode against rope_qk and the chunked kernels.
        float[] ff = null;
        if (factors) {
            ff = new float[dims / 2];
            for (int i = 0; i < ff.length; i++) {
                ff[i] = 1 + rnd.nextFloat() * 7;
            }
        }
        Backend.Rope rope = new Backend.Rope(dims, 10000f, ff, neox, 1f, factors ? 1.19f : 1f);
        float[][] outs = twoDecodeSteps(4, 2, 64, pos, (q, k, v, cache, out, p) ->
                gpu.ropeAndAttention(q, k, v, cache, 0, out, 4, 2, 64, rope, p, 1, 1f, 0.125f));
        assertThat(outs[1]).containsExactly(outs[0]);
    }

    @ParameterizedTest(name = "{0}, heads {1} x {2}, {3} tokens at {4}")
    @CsvSource({"Q8_0, 4, 64, 1, 0", "Q4_0, 4, 64, 1, 300", "Q4_0, 2, 128, 5, 0", "Q8_0, 2, 96, 1, 140",
        "Q4_0, 2, 64, 1, 1100", "Q8_0, 2, 64, 3, 300"}) // one kernel (decode), one chunk, chunks and attn_reduce
    void productAfterAttentionTakesItsQuantsAsTheyAre(GgmlType type, int nHeads, int headDim, int nTokens, int pos) {
        // attn_values (one 128-position chunk) or attn_reduce (several) quantizes the output for
        // the output projection; the product must equal the one that quantizes the floats itself.
        int qDim = nHeads * headDim;
        Backend.KvCache cache = gpu.kvCache(1, pos + nTokens, headDim);
        if (pos > 0) { // fill the cache up to pos
            gpu.attention(onGpu(gaussian(pos * qDim, 1.0)), onGpu(gaussian(pos * headDim, 1.0)),
                    onGpu(gaussian(pos * headDim, 1.0)), cache, 0, gpu.tensor(pos * qDim), nHeads, 1, headDim, 0, pos);
        }
        Tensor q = onGpu(gaussian(nTokens * qDim, 1.0));
        Tensor k = onGpu(gaussian(nTokens * headDim, 1.0));
        Tensor v = onGpu(gaussian(nTokens * headDim, 1.0));
        Tensor att = gpu.tensor(nTokens * qDim);
        Weight w = gpu.weight(randomMatrix(type, 40, qDim));
        Tensor fused = poisoned(nTokens * 40);
        gpu.attention(q, k, v, cache, 0, att, nHeads, 1, headDim, pos, nTokens);
        gpu.matmul(w, att, fused, nTokens);
        Tensor apart = poisoned(nTokens * 40);
        gpu.fill(gpu.tensor(1), 1, 0f);
        gpu.matmul(w, att, apart, nTokens);
        assertThat(read(gpu, fused, nTokens * 40)).containsExactly(read(gpu, apart, nTokens * 40));
    }

    @ParameterizedTest(name = "neox={0}, factors={1}, dims={2}, pos={3}")
    @CsvSource({"false, false, 64, 0", "false, false, 64, 1000", "true, false, 64, 77", "true, true, 32, 4000",
        "false, true, 48, 123"})
    void ropeMatchesTheCpu(boolean neox, boolean factors, int dims, int startPos) {
        int nHeads = 3;
        int headDim = 64;
        int nTokens = 4;
        float[] ff = null;
        if (factors) {
            ff = new float[dims / 2];
            for (int i = 0; i < ff.length; i++) {
                ff[i] = 1 + rnd.nextFloat() * 7;
            }
        }
        // with factors, also LongRoPE's magnitude scale (Phi-3 128k's attn_factor)
        float mscale = factors ? 1.1902381f : 1f;
        Backend.Rope rope = new Backend.Rope(dims, 10000f, ff, neox, 1f, mscale);
        float[] x = gaussian(nTokens * nHeads * headDim, 1.0);
        float[] want = x.clone();
        for (int t = 0; t < nTokens; t++) {
            REF.rope(want, t * nHeads * headDim, nHeads, headDim, dims, startPos + t, 10000f, ff, neox, 1f, mscale);
        }
        Tensor g = onGpu(x);
        gpu.rope(g, nHeads, headDim, rope, startPos, nTokens);
        float[] got = read(gpu, g, x.length);
        float[] scale = new float[x.length];
        java.util.Arrays.fill(scale, 1f);
        assertClose("rope", got, want, scale, 2e-6, 0);
    }

    @ParameterizedTest(name = "heads {0}/{1}, headDim {2}")
    @CsvSource({"4, 2, 64", "6, 6, 48", "8, 1, 128"})
    void attentionMatchesTheCpuThroughPrefillAndDecode(int nHeads, int nKvHeads, int headDim) {
        int capacity = 400;
        int layers = 2;
        int layer = 1;
        int kvDim = nKvHeads * headDim;
        int qDim = nHeads * headDim;
        Backend.KvCache gc = gpu.kvCache(layers, capacity, kvDim);
        Backend.KvCache cc = cpu.kvCache(layers, capacity, kvDim);
        int pos = 0;
        // A prompt in one chunk, a batch that crosses the 128-position chunk boundary, then decode steps.
        for (int n : new int[] {13, 150, 1, 1, 120, 1}) {
            float[] q = gaussian(n * qDim, 1.0);
            float[] k = gaussian(n * kvDim, 1.0);
            float[] v = gaussian(n * kvDim, 1.0);
            Tensor cOut = cpu.tensor(n * qDim);
            cpu.attention(onCpu(q), onCpu(k), onCpu(v), cc, layer, cOut, nHeads, nKvHeads, headDim, pos, n);
            float[] want = read(cpu, cOut, n * qDim);
            Tensor gOut = poisoned(n * qDim);
            gpu.attention(onGpu(q), onGpu(k), onGpu(v), gc, layer, gOut, nHeads, nKvHeads, headDim, pos, n);
            float[] got = read(gpu, gOut, n * qDim);
            // The weights are rounded to half after a softmax summed in another order: one weight
            // may land one half-ulp (2^-11 relative) away, so bound by the values' magnitude.
            float[] scale = new float[want.length];
            java.util.Arrays.fill(scale, 4f);
            assertClose("attention at " + pos + " (+" + n + ")", got, want, scale, 1e-3, 0);
            pos += n;
        }
    }

    /** Per output element, the sum of |w_i x_i| of its dot product: what a float32 sum's error grows with. */
    private static float[] dotScale(WeightMatrix m, float[] x, int nTokens) {
        int rows = m.rows();
        int cols = m.cols();
        float[] scale = new float[nTokens * rows];
        float[] row = new float[cols];
        for (int r = 0; r < rows; r++) {
            REF.dequantizeRow(m, r, row, 0);
            for (int t = 0; t < nTokens; t++) {
                double s = 0;
                for (int c = 0; c < cols; c++) {
                    s += Math.abs(row[c] * x[t * cols + c]);
                }
                scale[t * rows + r] = (float) s;
            }
        }
        return scale;
    }

    @ParameterizedTest(name = "{0} {1} columns, {2} tokens")
    @CsvSource({"Q8_0, 512, 1", "Q4_0, 2048, 1", "Q4_K, 2048, 1", "Q6_K, 768, 1", "F16, 256, 1", "Q4_0, 512, 3",
        "Q8_0, 2048, 3", "Q4_K, 512, 5", "Q6_K, 256, 70"})
    void fusedProjectionsMatchTheCpu(GgmlType type, int cols, int nTokens) {
        // q, k, v as in grouped-query attention (k and v narrower), gate and up of one width
        int[] rows = {96, 40, 40};
        WeightMatrix[] w = {randomMatrix(type, rows[0], cols), randomMatrix(type, rows[1], cols),
            randomMatrix(type, rows[2], cols)};
        float[] x = gaussian(nTokens * cols, 1.0);
        Tensor gx = onGpu(x);
        Tensor[] outs = {poisoned(nTokens * rows[0]), poisoned(nTokens * rows[1]), poisoned(nTokens * rows[2])};
        gpu.matmulQkv(gpu.weight(w[0]), gpu.weight(w[1]), gpu.weight(w[2]), gx, outs[0], outs[1], outs[2], nTokens);
        ScalarKernels ref = gpu.multipliesWithInt8(type, nTokens) ? REF8 : REF;
        for (int i = 0; i < 3; i++) {
            float[] want = new float[nTokens * rows[i]];
            ref.matmul(w[i], x, 0, cols, want, 0, rows[i], nTokens);
            assertClose("matmulQkv " + type + " output " + i, read(gpu, outs[i], want.length), want,
                    dotScale(w[i], x, nTokens), 1e-5 * Math.sqrt(cols), 1e-30);
        }

        WeightMatrix gate = randomMatrix(type, 70, cols);
        WeightMatrix up = randomMatrix(type, 70, cols);
        float[] g = new float[nTokens * 70];
        float[] u = new float[nTokens * 70];
        ref.matmul(gate, x, 0, cols, g, 0, 70, nTokens);
        ref.matmul(up, x, 0, cols, u, 0, 70, nTokens);
        float[] want = new float[g.length];
        REF.swiglu(g, 0, u, 0, want, 0, g.length);
        // silu(g) u moves by at most about (|u| + |g u|) per unit of error in g, and by |silu(g)| per unit in u
        float[] gs = dotScale(gate, x, nTokens);
        float[] us = dotScale(up, x, nTokens);
        float[] scale = new float[want.length];
        for (int i = 0; i < scale.length; i++) {
            scale[i] = (float) ((Math.abs(u[i]) * 1.1 + Math.abs(g[i] * u[i])) * gs[i] + Math.abs(g[i]) * us[i]);
        }
        Tensor out = poisoned(want.length);
        gpu.ffnGateUp(gpu.weight(gate), gpu.weight(up), gx, out, gpu.tensor(want.length), nTokens);
        assertClose("ffnGateUp " + type, read(gpu, out, want.length), want, scale, 1e-5 * Math.sqrt(cols), 1e-30);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 1000, 65537})
    void swigluAndAddMatchTheCpu(int n) {
        float[] gate = gaussian(n, 4.0);
        float[] up = gaussian(n, 1.0);
        float[] want = new float[n];
        REF.swiglu(gate, 0, up, 0, want, 0, n);
        Tensor out = poisoned(n);
        gpu.swiglu(onGpu(gate), onGpu(up), out, n);
        assertClose("swiglu", read(gpu, out, n), want, null, 1e-6, 1e-30);

        float[] y = gaussian(n, 1.0);
        float[] sum = y.clone();
        REF.add(gate, 0, sum, 0, n);
        Tensor gy = onGpu(y);
        gpu.add(onGpu(gate), gy, n);
        assertThat(read(gpu, gy, n)).containsExactly(sum);
    }

    @ParameterizedTest(name = "{0} {1}x{2}, {3} tokens")
    @CsvSource({"Q8_0, 70, 2048, 2", "Q4_0, 61, 2048, 8", "Q4_K, 40, 1024, 5", "Q6_K, 33, 768, 8"})
    void fewTokensGetTheProductsTheyGetAlone(GgmlType type, int rows, int cols, int nTokens) {
        // Sequences decoded together (mmv_*): token t's output is the one-token product's, to the bit.
        WeightMatrix m = randomMatrix(type, rows, cols);
        Weight w = gpu.weight(m);
        float[] x = gaussian(nTokens * cols, 1.0);
        Tensor together = poisoned(nTokens * rows);
        gpu.matmul(w, onGpu(x), together, nTokens);
        float[] got = read(gpu, together, nTokens * rows);
        for (int t = 0; t < nTokens; t++) {
            Tensor alone = poisoned(rows);
            gpu.matmul(w, onGpu(java.util.Arrays.copyOfRange(x, t * cols, (t + 1) * cols)), alone, 1);
            float[] want = read(gpu, alone, rows);
            for (int r = 0; r < rows; r++) {
                assertThat(Float.floatToIntBits(got[t * rows + r])).as("token %d row %d", t, r)
                        .isEqualTo(Float.floatToIntBits(want[r]));
            }
        }
    }

    @org.junit.jupiter.api.Test
    void copyCopiesARangeBetweenOffsets() {
        float[] x = gaussian(100, 1.0);
        Tensor dst = poisoned(60);
        gpu.copy(onGpu(x), 37, dst, 11, 40);
        float[] got = read(gpu, dst, 60);
        for (int i = 0; i < 60; i++) {
            if (i >= 11 && i < 51) {
                assertThat(got[i]).isEqualTo(x[37 + i - 11]);
            } else {
                assertThat(got[i]).isNaN();
            }
        }
    }

    @org.junit.jupiter.api.Test
    void copyRowCopiesOneRow() {
        float[] x = gaussian(5 * 40, 1.0);
        Tensor dst = poisoned(40);
        gpu.copyRow(onGpu(x), 3, dst, 40);
        assertThat(read(gpu, dst, 40)).containsExactly(java.util.Arrays.copyOfRange(x, 120, 160));
    }

    @ParameterizedTest(name = "n={0} k={1} penalty={2} {3}")
    @CsvSource({"1, 1, 1, gaussian", "512, 1, 1, gaussian", "32000, 1, 1.3, gaussian", "128256, 1, 1, gaussian",
        "128256, 40, 1, gaussian", "128256, 40, 1.1, gaussian", "32000, 1024, 0.9, gaussian", "32000, 2000, 1.2, gaussian",
        "5000, 40, 1, ties", "5000, 700, 1.5, ties", "3000, 50, 1, signs", "3000, 2999, 1, signs", "1000, 500, 1, nan",
        "2000, 64, 1, few"})
    void tokenSelectionMatchesTheHost(int n, int k, float penalty, String kind) {
        // Candidates to the bit (ids, logits before and after the penalty, in TokenCandidates'
        // order); statistics as double sums in another order. k = 2000 reads the logits back.
        Random r = new Random(n * 31L + k);
        float[] logits = new float[n];
        for (int i = 0; i < n; i++) {
            logits[i] = switch (kind) {
                case "ties" -> (float) Math.round(r.nextGaussian() * 3);
                case "signs" -> new float[] {0f, -0f, Float.NaN, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY,
                    Float.MIN_VALUE, -Float.MIN_VALUE, 1f, -1f}[r.nextInt(9)];
                case "few" -> i % 100 == 0 ? 10f + i * 1e-3f : -5f;
                case "nan" -> i % 3 == 0 ? Float.NaN : i % 3 == 1 ? Float.NEGATIVE_INFINITY : (float) r.nextGaussian();
                default -> (float) (r.nextGaussian() * 5);
            };
        }
        if (kind.equals("gaussian") && n > 10) {
            logits[n / 3] = logits[n / 2] = 40f; // a tie at the top: the lower id first
        }
        int[] penalised = r.ints(Math.min(n, 64), 0, n).toArray(); // repeats: penalised once
        TokenCandidates want = new TokenCandidates().select(logits, n, k, penalty, penalised, penalised.length);
        TokenCandidates got = new TokenCandidates();
        gpu.selectTokens(onGpu(logits), n, k, penalty, penalised, penalised.length, got);
        assertThat(got.count()).isEqualTo(want.count());
        for (int i = 0; i < want.count(); i++) {
            assertThat(got.id(i)).as("rank %d", i).isEqualTo(want.id(i));
            assertThat((Object) got.logit(i)).as("rank %d", i).isEqualTo(want.logit(i));
            assertThat((Object) got.penalisedLogit(i)).as("rank %d", i).isEqualTo(want.penalisedLogit(i));
        }
        LogitStats w = want.stats();
        LogitStats g = got.stats();
        assertThat(g.id1()).isEqualTo(w.id1());
        assertThat(g.id2()).isEqualTo(w.id2());
        assertThat(g.entropy()).isCloseTo(w.entropy(), org.assertj.core.data.Offset.offset(1e-9 + 1e-9 * w.entropy()));
        assertThat(g.p1()).isCloseTo(w.p1(), org.assertj.core.data.Offset.offset(1e-12));
        assertThat(g.p2()).isCloseTo(w.p2(), org.assertj.core.data.Offset.offset(1e-12));
        assertThat(g.probability(want.logit(0))).isCloseTo(w.probability(want.logit(0)),
                org.assertj.core.data.Offset.offset(1e-12));
        assertThat(gpu.argmax(onGpu(logits), n)).isEqualTo(new TokenCandidates().select(logits, n, 1, 1f,
                new int[0], 0).id(0));
    }
}
