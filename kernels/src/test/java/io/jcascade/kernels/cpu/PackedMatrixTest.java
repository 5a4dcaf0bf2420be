package io.jcascade.kernels.cpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.Backend;
import io.jcascade.kernels.WeightMatrix;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Repacked weights ({@link PackedMatrix}, {@link PackedDot}): dequantization bit for bit equal to
 * the file layout's, and the 8-bit matmul (single tokens: the packed integer dots; batches: the
 * float tiles in packed order) against the scalar 8-bit reference within {@link Int8MatmulTest}'s
 * bound. Runs on any machine (the 512-bit kernels are emulated where vectors are narrower).
 */
class PackedMatrixTest {

    private static final int[] THREADS = {1, 2, 3};
    private static final ScalarKernels REF8 = ScalarKernels.int8Activations();
    private static final ScalarKernels REF = new ScalarKernels();
    private static PanamaKernels[] fast;

    @BeforeAll
    static void start() {
        fast = new PanamaKernels[THREADS.length];
        for (int i = 0; i < THREADS.length; i++) {
            fast[i] = new PanamaKernels(THREADS[i], true);
        }
    }

    @AfterAll
    static void stop() {
        for (PanamaKernels k : fast) {
            k.close();
        }
    }

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        for (GgmlType type : new GgmlType[] {GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q8_0}) {
            // Q4_0: 16-block scale vectors plus tails of 4, 8, 12 blocks
            int[] cols = switch (type) {
                case Q4_0 -> new int[] {512, 1024 + 512, 4096};
                case Q8_0 -> new int[] {32, 512 + 96, 2048};
                default -> new int[] {256, 768, 4096 + 256};
            };
            for (int c : cols) {
                // Q4_0 is packed only for matrices of 8k rows (llama.cpp's repacked order): 16k rows
                // interleaved, others row by row; Q8_0 in pairs of rows
                int[] rowCounts = switch (type) {
                    case Q4_0 -> new int[] {8, 16, 24, 48, 256};
                    case Q8_0 -> new int[] {2, 16, 34};
                    case Q4_K -> new int[] {1, 16, 17, 48}; // 16k rows interleaved
                    default -> new int[] {1, 17, 257};
                };
                for (int r : rowCounts) {
                    for (int t : new int[] {1, 3, 5, 20}) { // 20: past EXACT_BATCH (the float tiles; interleaved layouts column by column)
                        cases.add(Arguments.of(type, c, r, t));
                    }
                }
            }
        }
        return cases.stream();
    }

    @Test
    void permutationsAreBijections() {
        for (int[] perm : new int[][] {PackedMatrix.PERM_Q4_0, PackedMatrix.PERM_Q4_K, PackedMatrix.PERM_Q6_K,
                PackedMatrix.PERM_Q8_0}) {
            int[] p = perm.clone();
            Arrays.sort(p);
            for (int i = 0; i < p.length; i++) {
                assertThat(p[i]).as("permutation of %d", p.length).isEqualTo(i);
            }
        }
    }

    @ParameterizedTest(name = "{0} {2}x{1}")
    @MethodSource("cases")
    void dequantizationIsBitIdentical(GgmlType type, int cols, int rows, int nTokens) {
        if (nTokens != 1) {
            return; // one case per shape
        }
        WeightMatrix w = TestMatrices.random(type, rows, cols, type.ordinal() * 31L + cols + rows, rows % 5);
        PackedMatrix p = PackedMatrix.pack(w);
        assertThat(p.byteSize()).isEqualTo(PackedMatrix.packedRowBytes(type, cols) * rows);
        float[] want = new float[cols], got = new float[cols + 2];
        for (int r = 0; r < rows; r++) {
            fast[0].dequantizeRow(w, r, want, 0);
            Arrays.fill(got, Float.NaN);
            fast[0].dequantizeRow(p, r, got, 1);
            for (int c = 0; c < cols; c++) {
                if (Float.floatToRawIntBits(got[1 + c]) != Float.floatToRawIntBits(want[c])) {
                    fail("row %d col %d: packed %s, file layout %s", r, c, got[1 + c], want[c]);
                }
            }
            assertThat(got[0]).isNaN();
            assertThat(got[cols + 1]).isNaN();
        }
    }

    @ParameterizedTest(name = "{0} {2}x{1} tokens={3}")
    @MethodSource("cases")
    void packedMatmulMatchesInt8Reference(GgmlType type, int cols, int rows, int nTokens) {
        long seed = type.ordinal() * 7_000_003L + cols * 1013L + rows * 37L + nTokens;
        WeightMatrix w = TestMatrices.random(type, rows, cols, seed, (int) (seed % 5));
        int xOffset = 3, xStride = cols + 1, outOffset = 2, outStride = rows + 1;
        float[] x = TestMatrices.randomVector(xOffset + nTokens * xStride, seed + 1);
        int outLen = outOffset + nTokens * outStride;
        PackedMatrix p = PackedMatrix.pack(w);
        assertThat(p.interleaved()).as("interleaved").isEqualTo(switch (type) {
            case Q4_0, Q4_K -> rows % 16 == 0;
            case Q8_0 -> true;
            default -> false;
        });
        float[] ref8 = TestMatrices.poisoned(outLen);
        // interleaved Q4_K sums each row per super-block (its own float order)
        ScalarInt8.matmul(w, x, xOffset, xStride, ref8, outOffset, outStride, nTokens,
                type == GgmlType.Q4_K && p.interleaved());
        float[][] wf = new float[rows][cols];
        for (int r = 0; r < rows; r++) {
            REF.dequantizeRow(w, r, wf[r], 0);
        }
        for (PanamaKernels k : fast) {
            float[] out = TestMatrices.poisoned(outLen);
            k.matmul(p, x, xOffset, xStride, out, outOffset, outStride, nTokens);
            check(type, wf, x, xOffset, xStride, out, ref8, outOffset, outStride, nTokens, "threads=" + k.threads());
        }
    }

    /** Out against the 8-bit reference, with {@link Int8MatmulTest}'s tolerance; gaps stay NaN. */
    private static void check(GgmlType type, float[][] wf, float[] x, int xOffset, int xStride, float[] out,
            float[] ref8, int outOffset, int outStride, int nTokens, String what) {
        int rows = wf.length, cols = wf[0].length;
        int block = type.blockSize() == 256 ? 256 : 32;
        for (int t = 0; t < nTokens; t++) {
            int xo = xOffset + t * xStride;
            for (int r = 0; r < rows; r++) {
                int o = outOffset + t * outStride + r;
                double mag = 0, quantBound = 0;
                for (int b = 0; b < cols / block; b++) {
                    double amax = 0;
                    for (int c = b * block; c < (b + 1) * block; c++) {
                        amax = Math.max(amax, Math.abs(x[xo + c]));
                    }
                    for (int c = b * block; c < (b + 1) * block; c++) {
                        mag += Math.abs((double) wf[r][c] * x[xo + c]);
                        quantBound += Math.abs(wf[r][c]) * amax * (1.0 / 254 + 1.0 / 2048);
                    }
                }
                double tol = 1e-5 * (mag + quantBound) + Float.MIN_NORMAL;
                // up to EXACT_BATCH tokens: ggml's float order, bit for bit the reference
                if (nTokens <= PanamaKernels.EXACT_BATCH
                        ? Float.floatToRawIntBits(out[o]) != Float.floatToRawIntBits(ref8[o])
                        : !(Math.abs(out[o] - ref8[o]) <= tol)) {
                    fail("%s token %d row %d: got %s, int8 reference %s", what, t, r, out[o], ref8[o]);
                }
            }
            for (int o = outOffset + t * outStride + rows; o < outOffset + (t + 1) * outStride; o++) {
                assertThat(out[o]).as("gap element %d", o).isNaN();
            }
        }
    }

    /**
     * The largest products the layouts' short sums must hold: every weight quant at its extreme
     * (Q4_0 -8, Q4_K 15 with scale 63, Q6_K -32 with scale -128) against activations that all
     * quantize to 127 in magnitude. The packed result must equal the scalar reference's.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("extremeTypes")
    void extremeQuantsDoNotOverflow(GgmlType type) {
        extremeQuantsDoNotOverflow(type, 2);
        extremeQuantsDoNotOverflow(type, 16); // the interleaved layouts of Q4_0 and Q4_K
    }

    private void extremeQuantsDoNotOverflow(GgmlType type, int rows) {
        int cols = 1024;
        byte[] bytes = new byte[(int) (type.rowBytes(cols) * rows)];
        int bs = type.typeSize();
        for (int b = 0; b < bytes.length / bs; b++) {
            int o = b * bs;
            switch (type) {
                case Q4_0 -> {
                    putF16(bytes, o, 0.01f);
                    // nibble 0 = -8, all 32 elements
                }
                case Q4_K -> {
                    putF16(bytes, o, 0.001f);
                    putF16(bytes, o + 2, 0.001f);
                    Arrays.fill(bytes, o + 4, o + 16, (byte) 0xFF); // 6-bit scales and mins 63
                    Arrays.fill(bytes, o + 16, o + 144, (byte) 0xFF); // quants 15
                }
                case Q6_K -> {
                    // quants 0 (value -32): ql, qh zero; scales -128
                    Arrays.fill(bytes, o + 192, o + 208, (byte) -128);
                    putF16(bytes, o + 208, 0.001f);
                }
                case Q8_0 -> {
                    putF16(bytes, o, 0.01f);
                    Arrays.fill(bytes, o + 2, o + 34, (byte) -128); // outside the quantizer's -127..127
                }
                default -> throw new IllegalArgumentException();
            }
        }
        WeightMatrix w = TestMatrices.of(type, rows, cols, bytes);
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) {
            x[i] = 1f; // quantizes to 127 (Q8_0) or -127 (Q8_K) everywhere: all products of one sign
        }
        float[] ref8 = new float[rows], out = new float[rows];
        REF8.matmul(w, x, 0, cols, ref8, 0, rows, 1);
        fast[0].matmul(PackedMatrix.pack(w), x, 0, cols, out, 0, rows, 1);
        for (int r = 0; r < rows; r++) {
            assertThat((double) out[r]).isCloseTo(ref8[r], org.assertj.core.data.Offset.offset(1e-5 * Math.abs(ref8[r])));
        }
        assertThat(ref8[0]).isNotZero();
    }

    static Stream<GgmlType> extremeTypes() {
        return Stream.of(GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q8_0);
    }

    private static void putF16(byte[] b, int o, float v) {
        short h = Float.floatToFloat16(v);
        b[o] = (byte) h;
        b[o + 1] = (byte) (h >> 8);
    }

    @Test
    void backendPacksWhereTheKernelsDoAndMatchesTheFileLayout() {
        int rows = 64, cols = 512;
        for (GgmlType type : new GgmlType[] {GgmlType.Q4_0, GgmlType.Q4_K, GgmlType.Q6_K, GgmlType.Q8_0}) {
            WeightMatrix w = TestMatrices.random(type, rows, cols, 11 + type.ordinal(), 0);
            try (CpuBackend cpu = new CpuBackend(new PanamaKernels(2, true))) {
                Backend.Weight bw = cpu.weight(w);
                CpuBackend.CpuWeight cw = (CpuBackend.CpuWeight) bw;
                boolean expectPacked = Int8Dot.WIDE && PackedMatrix.supports(type, cols)
                        && !"false".equalsIgnoreCase(System.getProperty("jcascade.repack", "true"));
                assertThat(cw.packed != null).as("%s packed", type).isEqualTo(expectPacked);
                Backend.Tensor xt = cpu.tensor(cols), yt = cpu.tensor(rows), e = cpu.tensor(2 * cols);
                float[] x = TestMatrices.randomVector(cols, 3);
                System.arraycopy(x, 0, ((CpuBackend.CpuTensor) xt).data, 0, cols);
                cpu.matmul(bw, xt, yt, 1);
                float[] ref8 = new float[rows];
                ScalarInt8.matmul(w, x, 0, cols, ref8, 0, rows, 1,
                        type == GgmlType.Q4_K && cw.packed != null && cw.packed.interleaved());
                float[][] wf = new float[rows][cols];
                for (int r = 0; r < rows; r++) {
                    REF.dequantizeRow(w, r, wf[r], 0);
                }
                check(type, wf, x, 0, cols, ((CpuBackend.CpuTensor) yt).data, ref8, 0, rows, 1, type.toString());
                cpu.embed(bw, new int[] {5, 63}, 2, e);
                float[] emb = ((CpuBackend.CpuTensor) e).data;
                float[] want = new float[2 * cols];
                fast[0].dequantizeRow(w, 5, want, 0);
                fast[0].dequantizeRow(w, 63, want, cols);
                assertThat(emb).startsWith(want);
            }
        }
    }

    /**
     * {@link PanamaKernels#matvecs} (a decode step's fused projections) gives what separate matmul
     * calls (and swiglu) give, packed or not, for same-type and mixed-type sets.
     */
    @ParameterizedTest(name = "{0} {1} packed={2} swiglu={3}")
    @MethodSource("fusedCases")
    void fusedMatvecsEqualSeparateCalls(GgmlType a, GgmlType b, boolean pack, boolean swiglu) {
        int cols = 1024;
        int[] rows = swiglu ? new int[] {384, 384} : new int[] {256, 64, 96};
        GgmlType[] types = swiglu ? new GgmlType[] {a, b} : new GgmlType[] {a, a, b};
        for (PanamaKernels k : fast) {
            WeightMatrix[] ws = new WeightMatrix[rows.length];
            PackedMatrix[] ps = new PackedMatrix[rows.length];
            float[][] outs = new float[rows.length][], want = new float[rows.length][];
            for (int i = 0; i < rows.length; i++) {
                ws[i] = TestMatrices.random(types[i], rows[i], cols, 100 + i + types[i].ordinal(), i);
                ps[i] = pack && PackedMatrix.supports(types[i], cols) ? PackedMatrix.pack(ws[i]) : null;
                outs[i] = TestMatrices.poisoned(rows[i]);
                want[i] = new float[rows[i]];
            }
            float[] x = TestMatrices.randomVector(cols + 5, 7);
            k.matvecs(ws, pack ? ps : null, x, 5, outs, swiglu);
            for (int i = 0; i < rows.length; i++) {
                if (ps[i] != null) {
                    k.matmul(ps[i], x, 5, cols, want[i], 0, rows[i], 1);
                } else {
                    k.matmul(ws[i], x, 5, cols, want[i], 0, rows[i], 1);
                }
            }
            if (swiglu) {
                k.swiglu(want[0], 0, want[1], 0, want[0], 0, rows[0]);
            }
            // The same row computations; only a row done by code of another JIT tier can differ
            // (reduceLanes sums in another order in the interpreter), by a few ulps.
            for (int i = 0; i < rows.length; i++) {
                for (int r = 0; r < rows[i]; r++) {
                    assertThat((double) outs[i][r]).as("threads=%d output %d row %d", k.threads(), i, r)
                            .isCloseTo(want[i][r], org.assertj.core.data.Offset.offset(1e-5 * (Math.abs(want[i][r]) + 1)));
                }
            }
        }
    }

    static Stream<Arguments> fusedCases() {
        List<Arguments> cases = new ArrayList<>();
        for (boolean swiglu : new boolean[] {false, true}) {
            for (boolean pack : new boolean[] {false, true}) {
                cases.add(Arguments.of(GgmlType.Q4_K, GgmlType.Q4_K, pack, swiglu));
                cases.add(Arguments.of(GgmlType.Q4_K, GgmlType.Q6_K, pack, swiglu));
                cases.add(Arguments.of(GgmlType.Q4_0, GgmlType.Q4_0, pack, swiglu));
            }
            cases.add(Arguments.of(GgmlType.Q8_0, GgmlType.Q8_0, false, swiglu));
            cases.add(Arguments.of(GgmlType.Q8_0, GgmlType.Q8_0, true, swiglu));
            cases.add(Arguments.of(GgmlType.Q8_0, GgmlType.Q4_0, true, swiglu));
            cases.add(Arguments.of(GgmlType.F16, GgmlType.F16, false, swiglu));
            cases.add(Arguments.of(GgmlType.F32, GgmlType.BF16, false, swiglu));
        }
        return cases.stream();
    }
}
