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
 * F16 weights in column pieces ({@link PackedMatrix}, wide rows such as the FFN down projection):
 * every product bit for bit what the file layout gives on the same kernels (the order llama.cpp
 * sums in, which the agreement tests check) on one token and short batches, within float rounding
 * on prompt batches (the float tiles), on
 * 1-3 threads and both activation paths; and close to a double-precision reference.
 */
class F16PiecesTest {

    private static PanamaKernels[] kernels;

    @BeforeAll
    static void start() {
        kernels = new PanamaKernels[] {new PanamaKernels(1, true), new PanamaKernels(2, true),
                new PanamaKernels(3, true), new PanamaKernels(2, false)};
    }

    @AfterAll
    static void stop() {
        for (PanamaKernels k : kernels) {
            k.close();
        }
    }

    /** Shapes: several pieces, a short last piece (4128, 6176), groups of rows cut short (70, 130, 3). */
    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        int[][] shapes = {{64, 8192}, {70, 4128}, {130, 6176}, {3, 4160}, {256, 8192}};
        for (int[] s : shapes) {
            for (int t : new int[] {1, 2, 16, 20}) { // 20: past EXACT_BATCH, the float tiles
                cases.add(Arguments.of(s[0], s[1], t));
            }
        }
        return cases.stream();
    }

    @Test
    void onlyWideRowsOfWholeStepsArePacked() {
        assertThat(PackedMatrix.supports(GgmlType.F16, 4096)).isFalse();
        assertThat(PackedMatrix.supports(GgmlType.F16, 4128)).isTrue();
        assertThat(PackedMatrix.supports(GgmlType.F16, 4100)).as("not a multiple of 32").isFalse();
        assertThat(PackedMatrix.supports(GgmlType.BF16, 8192)).isFalse();
    }

    @ParameterizedTest(name = "{0}x{1} tokens={2}")
    @MethodSource("cases")
    void productsAreTheFileLayouts(int rows, int cols, int nTokens) {
        long seed = rows * 131L + cols + nTokens;
        WeightMatrix w = TestMatrices.random(GgmlType.F16, rows, cols, seed, 0);
        PackedMatrix p = PackedMatrix.pack(w);
        assertThat(p.byteSize()).isEqualTo(w.rowBytes() * rows);
        int xOffset = 5, xStride = cols + 3, outOffset = 1, outStride = rows + 2;
        float[] x = TestMatrices.randomVector(xOffset + nTokens * xStride, seed + 1);
        int outLen = outOffset + nTokens * outStride;
        for (PanamaKernels k : kernels) {
            float[] want = TestMatrices.poisoned(outLen), got = TestMatrices.poisoned(outLen);
            k.matmul(w, x, xOffset, xStride, want, outOffset, outStride, nTokens);
            k.matmul(p, x, xOffset, xStride, got, outOffset, outStride, nTokens);
            for (int t = 0; t < nTokens; t++) {
                for (int r = 0; r < rows; r++) {
                    int o = outOffset + t * outStride + r;
                    if (nTokens > PanamaKernels.EXACT_BATCH) {
                        // the float tiles: same products, but their lane sums may run in another
                        // JIT tier (reduceLanes sums in another order in the interpreter)
                        assertThat((double) got[o]).as("threads=%d token %d row %d", k.threads(), t, r)
                                .isCloseTo(want[o], org.assertj.core.data.Offset.offset(1e-5 * (Math.abs(want[o]) + 1)));
                    } else if (Float.floatToRawIntBits(got[o]) != Float.floatToRawIntBits(want[o])) {
                        fail("threads=%d int8=%s token %d row %d: pieces %s, file layout %s", k.threads(),
                                k.usesInt8Activations(), t, r, got[o], want[o]);
                    }
                }
            }
            // and both near the exact sum (fp16 weights and, on the int8 path, fp16-rounded x)
            for (int t = 0; t < nTokens; t++) {
                float[] wr = new float[cols];
                for (int r = 0; r < rows; r += Math.max(1, rows / 7)) {
                    k.dequantizeRow(w, r, wr, 0);
                    double exact = 0, mag = 0;
                    for (int c = 0; c < cols; c++) {
                        float xv = x[xOffset + t * xStride + c];
                        if (k.usesInt8Activations() && nTokens <= PanamaKernels.EXACT_BATCH) {
                            xv = Float.float16ToFloat(Float.floatToFloat16(xv));
                        }
                        exact += (double) wr[c] * xv;
                        mag += Math.abs((double) wr[c] * xv);
                    }
                    assertThat((double) got[outOffset + t * outStride + r]).as("row %d token %d", r, t)
                            .isCloseTo(exact, org.assertj.core.data.Offset.offset(1e-5 * mag + 1e-30));
                }
            }
        }
    }

    @Test
    void rowsDequantizeToTheFileValues() {
        WeightMatrix w = TestMatrices.random(GgmlType.F16, 70, 6176, 9, 0);
        PackedMatrix p = PackedMatrix.pack(w);
        float[] want = new float[6176], got = new float[6178];
        for (int r = 0; r < 70; r++) {
            kernels[0].dequantizeRow(w, r, want, 0);
            Arrays.fill(got, Float.NaN);
            kernels[0].dequantizeRow(p, r, got, 1);
            assertThat(Arrays.copyOfRange(got, 1, 6177)).as("row %d", r).isEqualTo(want);
            assertThat(got[0]).isNaN();
            assertThat(got[6177]).isNaN();
        }
    }

    @Test
    void theBackendPacksWideF16RowsAndMultipliesThemAsTheFileLayout() {
        int rows = 96, cols = 8192;
        WeightMatrix wide = TestMatrices.random(GgmlType.F16, rows, cols, 21, 0);
        WeightMatrix narrow = TestMatrices.random(GgmlType.F16, rows, 2048, 22, 0);
        try (PanamaKernels k = new PanamaKernels(2, true); CpuBackend cpu = new CpuBackend(new PanamaKernels(2, true))) {
            boolean repack = !"false".equalsIgnoreCase(System.getProperty("jcascade.repack", "true"));
            assertThat(((CpuBackend.CpuWeight) cpu.weight(wide)).packed != null).isEqualTo(repack);
            assertThat(((CpuBackend.CpuWeight) cpu.weight(narrow)).packed).isNull();
            Backend.Weight bw = cpu.weight(wide);
            Backend.Tensor xt = cpu.tensor(cols), yt = cpu.tensor(rows);
            float[] x = TestMatrices.randomVector(cols, 23);
            System.arraycopy(x, 0, ((CpuBackend.CpuTensor) xt).data, 0, cols);
            cpu.matmul(bw, xt, yt, 1);
            float[] want = new float[rows];
            k.matmul(wide, x, 0, cols, want, 0, rows, 1);
            assertThat(Arrays.copyOf(((CpuBackend.CpuTensor) yt).data, rows)).isEqualTo(want);
        }
    }
}
