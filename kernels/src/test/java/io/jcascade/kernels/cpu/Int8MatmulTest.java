package io.jcascade.kernels.cpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The 8-bit activation path (llama.cpp's): {@link PanamaKernels} against the scalar reference of
 * the same algorithm ({@link ScalarKernels#int8Activations()}), and both against the float
 * reference within the bound that activation quantization allows.
 */
class Int8MatmulTest {

    private static final int[] THREADS = {1, 2, 3};
    private static final GgmlType[] TYPES = {GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K,
        GgmlType.Q5_K, GgmlType.Q6_K};
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
        for (GgmlType type : TYPES) {
            int[] cols = type.blockSize() == 256 ? new int[] {256, 768, 4096 + 256} : new int[] {32, 96, 4096 + 32};
            for (int c : cols) {
                for (int r : new int[] {1, 17, 64, 257}) { // 64: Q4_0 in llama.cpp's repacked order
                    for (int t : new int[] {1, 3, 5, 20}) { // 20: past EXACT_BATCH, the float tiles
                        cases.add(Arguments.of(type, c, r, t));
                    }
                }
            }
        }
        return cases.stream();
    }

    @Test
    void defaultKernelsUseInt8Activations() {
        try (PanamaKernels k = new PanamaKernels(1)) {
            assertThat(k.usesInt8Activations()).isEqualTo(!"f32".equals(System.getProperty("jcascade.activations")));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("types")
    void activationQuantizationMatchesReferenceExactly(GgmlType type) {
        int n = 4096;
        float[] x = TestMatrices.randomVector(n + 3, 17 + type.ordinal());
        // A block of zeros, a block with a negative maximum, and exact ties of round-half-even.
        for (int j = 0; j < 256; j++) {
            x[3 + j] = 0;
            x[3 + 256 + j] = j == 7 ? -2f : (j % 2 == 0 ? 0.5f : -1f) * (j / 256f);
        }
        Q8Activations a = new Q8Activations();
        a.quantize(type, x, 3, n, n, 1);
        int[] q = new int[n];
        float[] d = new float[n / 32];
        if (Q8Activations.usesQ8K(type)) {
            ScalarInt8.quantizeQ8K(x, 3, n, q, d);
            for (int g = 0; g < n / 16; g++) {
                int s = 0;
                for (int j = 0; j < 16; j++) {
                    s += q[16 * g + j];
                }
                assertThat(a.bsums[g]).as("bsum %d", g).isEqualTo(s);
            }
            for (int b = 0; b < n / 256; b++) {
                assertThat(a.d[b]).isEqualTo(d[b]);
            }
        } else {
            ScalarInt8.quantizeQ8_0(x, 3, n, q, d);
            for (int b = 0; b < n / 32; b++) {
                assertThat(a.d[b]).isEqualTo(d[b]);
            }
        }
        for (int i = 0; i < n; i++) {
            assertThat(a.q[i]).as("quant %d", i).isEqualTo(q[i]).isBetween(-127, 127);
        }
    }

    static Stream<GgmlType> types() {
        return Stream.of(TYPES);
    }

    @ParameterizedTest(name = "{0} {2}x{1} tokens={3}")
    @MethodSource("cases")
    void int8MatmulMatchesInt8Reference(GgmlType type, int cols, int rows, int nTokens) {
        long seed = type.ordinal() * 7_000_003L + cols * 1013L + rows * 37L + nTokens;
        WeightMatrix w = TestMatrices.random(type, rows, cols, seed, (int) (seed % 5));
        int xOffset = 3, xStride = cols + 1, outOffset = 2, outStride = rows + 1;
        float[] x = TestMatrices.randomVector(xOffset + nTokens * xStride, seed + 1);
        int outLen = outOffset + nTokens * outStride;
        float[] ref8 = TestMatrices.poisoned(outLen);
        REF8.matmul(w, x, xOffset, xStride, ref8, outOffset, outStride, nTokens);
        float[] ref = TestMatrices.poisoned(outLen);
        REF.matmul(w, x, xOffset, xStride, ref, outOffset, outStride, nTokens);

        float[][] wf = new float[rows][cols];
        for (int r = 0; r < rows; r++) {
            REF.dequantizeRow(w, r, wf[r], 0);
        }
        int block = type.blockSize() == 256 ? 256 : 32;
        for (PanamaKernels k : fast) {
            float[] out = TestMatrices.poisoned(outLen);
            k.matmul(w, x, xOffset, xStride, out, outOffset, outStride, nTokens);
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
                            // |x - dequantized 8-bit x| <= amax/254, plus fp16 rounding of the Q8_0 scale
                            quantBound += Math.abs(wf[r][c]) * amax * (1.0 / 254 + 1.0 / 2048);
                        }
                    }
                    // Same integer sums and the same float order (ggml's): bit for bit, up to the
                    // batch size that takes the integer kernels.
                    double tol = 1e-5 * (mag + quantBound) + Float.MIN_NORMAL;
                    if (nTokens <= PanamaKernels.EXACT_BATCH
                            ? Float.floatToRawIntBits(out[o]) != Float.floatToRawIntBits(ref8[o])
                            : !(Math.abs(out[o] - ref8[o]) <= tol)) {
                        fail("threads=%d token %d row %d: got %s, int8 reference %s", k.threads(), t, r, out[o], ref8[o]);
                    }
                    if (!(Math.abs(ref8[o] - ref[o]) <= quantBound * 1.001 + tol)) {
                        fail("token %d row %d: int8 %s vs float %s exceeds the quantization bound %s", t, r, ref8[o],
                                ref[o], quantBound);
                    }
                }
                for (int o = outOffset + t * outStride + rows; o < outOffset + (t + 1) * outStride; o++) {
                    assertThat(out[o]).as("gap element %d", o).isNaN();
                }
            }
        }
    }

    /**
     * The portable 8-lane kernels ({@link Int8Dot#dot}, used where vectors are narrower than 512
     * bits) bit for bit against the reference order, whatever this machine runs by default.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("types")
    void portableKernelsMatchTheReferenceBitForBit(GgmlType type) {
        int cols = type.blockSize() == 256 ? 1024 : 4096;
        for (int rows : new int[] {7, 16}) {
            WeightMatrix w = TestMatrices.random(type, rows, cols, 31 + rows + type.ordinal(), 1);
            float[] x = TestMatrices.randomVector(cols, 77 + type.ordinal());
            float[] want = new float[rows];
            REF8.matmul(w, x, 0, cols, want, 0, rows, 1);
            Q8Activations a = new Q8Activations();
            a.quantize(type, x, 0, cols, cols, 1);
            for (int r = 0; r < rows; r++) {
                float got = Int8Dot.dot(type, w.data(), r * w.rowBytes(), cols, a, 0, rows % 8 == 0);
                assertThat(Float.floatToRawIntBits(got)).as("%s row %d of %d: %s vs %s", type, r, rows, got, want[r])
                        .isEqualTo(Float.floatToRawIntBits(want[r]));
            }
        }
    }

    @Test
    void relativeErrorOfInt8PathIsSmallOnRealisticData() {
        // Gaussian activations against Q4_K weights: the 8-bit path's error relative to the float
        // path stays well below the weights' own quantization error (documented: < 1% of |y|).
        Random rnd = new Random(5);
        int cols = 2048, rows = 64;
        WeightMatrix w = TestMatrices.random(GgmlType.Q4_K, rows, cols, 99, 0);
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        float[] a = new float[rows], b = new float[rows];
        fast[1].matmul(w, x, 0, cols, a, 0, rows, 1);
        REF.matmul(w, x, 0, cols, b, 0, rows, 1);
        double num = 0, den = 0;
        for (int r = 0; r < rows; r++) {
            num += (a[r] - b[r]) * (double) (a[r] - b[r]);
            den += b[r] * (double) b[r];
        }
        assertThat(Math.sqrt(num / den)).isLessThan(0.01);
    }
}
