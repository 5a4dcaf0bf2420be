package io.jcascade.kernels.cpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@link PanamaKernels#matmul} on the float-activation path and {@code dequantizeRow} against
 * {@link ScalarKernels}, every type. (The 8-bit activation path is tested in {@link Int8MatmulTest}.)
 */
class MatmulTest {

    private static final int[] THREADS = {1, 2, 3};
    private static final GgmlType[] TYPES = {GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0,
        GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K};
    private static final int[] COLS = {32, 64, 96, 160, 4096 + 32};
    /** K-quants come in super-blocks of 256. */
    private static final int[] K_COLS = {256, 768, 4096 + 256};
    /** Plain types have no block constraint: also widths that leave a scalar tail. */
    private static final int[] ODD_COLS = {1, 37, 100};
    private static final int[] ROWS = {1, 3, 17, 257};
    private static final int[] TOKENS = {1, 2, 7};

    private static final ScalarKernels REF = new ScalarKernels();
    private static PanamaKernels[] fast;

    @BeforeAll
    static void start() {
        fast = new PanamaKernels[THREADS.length];
        for (int i = 0; i < THREADS.length; i++) {
            fast[i] = new PanamaKernels(THREADS[i], false);
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
            List<Integer> cols = new ArrayList<>();
            for (int c : type.blockSize() == 256 ? K_COLS : COLS) {
                cols.add(c);
            }
            if (!type.isQuantized()) {
                for (int c : ODD_COLS) {
                    cols.add(c);
                }
            }
            for (int c : cols) {
                for (int r : ROWS) {
                    // The widest matrices only with the larger row counts' neighbours, to keep time down.
                    if (c > 1000 && r == 17) {
                        continue;
                    }
                    for (int t : TOKENS) {
                        cases.add(Arguments.of(type, c, r, t));
                    }
                }
            }
        }
        // A prompt batch longer than one token block, so the token-block loop turns over.
        cases.add(Arguments.of(GgmlType.Q8_0, 96, 33, PanamaKernels.TOKEN_BLOCK + 5));
        cases.add(Arguments.of(GgmlType.F16, 160, 9, PanamaKernels.TOKEN_BLOCK * 2 + 1));
        return cases.stream();
    }

    /**
     * Tolerance per output relative to {@code sum_c |W[r][c] * x[c]|}. The reference is exact to
     * about one float rounding (double accumulation, weights decode exactly to float). The fast
     * kernel sums in float: each vector lane accumulates cols/L products with FMA (one rounding
     * each), then the lanes are reduced (log2 L roundings) and quantized blocks add a scale
     * multiply and a per-block partial sum; the first-order bound on the error of such a sum is
     * (number of roundings on the longest path) * 2^-24 * sum |a*b|. Twice that, plus a few spare
     * roundings, never fails by chance and still catches any wrong element (an error there is of
     * the order of the whole sum).
     */
    static double tolerance(int cols) {
        int lanes = PanamaKernels.F.length();
        return 2.0 * (cols / (double) lanes + 2 * 32 / lanes + 8 + 16) * 0x1p-24;
    }

    @ParameterizedTest(name = "{0} {2}x{1} tokens={3}")
    @MethodSource("cases")
    void matmulMatchesReference(GgmlType type, int cols, int rows, int nTokens) {
        long seed = type.ordinal() * 1_000_003L + cols * 1009L + rows * 31L + nTokens;
        WeightMatrix w = TestMatrices.random(type, rows, cols, seed, (int) (seed % 7));
        int xOffset = 5;
        int xStride = cols + 3;
        int outOffset = 7;
        int outStride = rows + 2;
        float[] x = TestMatrices.randomVector(xOffset + nTokens * xStride, seed + 1);
        int outLen = outOffset + nTokens * outStride;

        float[] ref = TestMatrices.poisoned(outLen);
        REF.matmul(w, x, xOffset, xStride, ref, outOffset, outStride, nTokens);

        // Dequantized rows give the magnitude sum_c |W[r][c] x[c]| that scales the tolerance.
        float[][] wf = new float[rows][cols];
        for (int r = 0; r < rows; r++) {
            REF.dequantizeRow(w, r, wf[r], 0);
        }
        double tol = tolerance(cols);
        for (PanamaKernels k : fast) {
            float[] out = TestMatrices.poisoned(outLen);
            k.matmul(w, x, xOffset, xStride, out, outOffset, outStride, nTokens);
            for (int t = 0; t < nTokens; t++) {
                for (int r = 0; r < rows; r++) {
                    int o = outOffset + t * outStride + r;
                    double mag = 0;
                    for (int c = 0; c < cols; c++) {
                        mag += Math.abs((double) wf[r][c] * x[xOffset + t * xStride + c]);
                    }
                    float got = out[o];
                    float want = ref[o];
                    if (!(Math.abs(got - want) <= tol * mag + Float.MIN_NORMAL)) {
                        fail("threads=%d token %d row %d: got %s, want %s (|diff| %s > %s)", k.threads(), t, r, got,
                                want, Math.abs(got - want), tol * mag);
                    }
                }
                // Elements between the rows of consecutive tokens must stay untouched.
                for (int o = outOffset + t * outStride + rows; o < outOffset + (t + 1) * outStride; o++) {
                    assertThat(out[o]).as("gap element %d", o).isNaN();
                }
            }
            for (int o = 0; o < outOffset; o++) {
                assertThat(out[o]).as("element %d before the output", o).isNaN();
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("types")
    void dequantizeRowMatchesReferenceExactly(GgmlType type) {
        int[] widths = type.blockSize() == 256 ? new int[] {256, 768, 4096 + 256} : new int[] {32, 96, 4096 + 32};
        for (int cols : widths) {
            WeightMatrix w = TestMatrices.random(type, 5, cols, type.ordinal() * 77L + cols, 3);
            for (int r = 0; r < 5; r++) {
                float[] want = TestMatrices.poisoned(cols + 4);
                float[] got = TestMatrices.poisoned(cols + 4);
                REF.dequantizeRow(w, r, want, 2);
                fast[0].dequantizeRow(w, r, got, 2);
                // Decoding is exact in both (every value is representable in float).
                assertThat(got).as("%s row %d of %d cols", type, r, cols).containsExactly(want);
                assertThat(got[0]).isNaN();
                assertThat(got[cols + 3]).isNaN();
                assertThat(got[2]).isNotNaN();
                assertThat(got[cols + 1]).isNotNaN();
            }
        }
    }

    static Stream<GgmlType> types() {
        return Stream.of(TYPES);
    }

    @Test
    void repeatedCallsWithChangingShapesStayCorrect() {
        // Many back-to-back matmuls exercise the pool hand-off (spinning and parked workers).
        WeightMatrix a = TestMatrices.random(GgmlType.Q8_0, 300, 256, 1, 0);
        WeightMatrix b = TestMatrices.random(GgmlType.F32, 129, 300, 2, 0);
        float[] x = TestMatrices.randomVector(256, 3);
        float[] refA = new float[300];
        float[] refB = new float[129];
        REF.matmul(a, x, 0, 256, refA, 0, 300, 1);
        REF.matmul(b, refA, 0, 300, refB, 0, 129, 1);
        for (PanamaKernels k : fast) {
            for (int iter = 0; iter < 300; iter++) {
                float[] ya = TestMatrices.poisoned(300);
                float[] yb = TestMatrices.poisoned(129);
                k.matmul(a, x, 0, 256, ya, 0, 300, 1);
                k.matmul(b, ya, 0, 300, yb, 0, 129, 1);
                for (int i = 0; i < 129; i++) {
                    assertThat(yb[i]).isCloseTo(refB[i], org.assertj.core.data.Offset.offset(1e-3f));
                }
                if (iter % 100 == 99) {
                    try {
                        Thread.sleep(2); // let the workers park, then wake them again
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                }
            }
        }
    }
}
