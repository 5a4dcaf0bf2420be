package io.jcascade.kernels.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.fail;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;
import io.jcascade.kernels.cpu.ScalarKernels;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The decode kernels' block decoding, checked without a GPU: nvcc builds
 * {@code kernels/src/test/cuda/matvec_host_check.cu}, which runs the per-lane code of the
 * {@code matvec_*} kernels (the same source, compiled for the host) as a warp's 32 lanes split a
 * row, and its products must equal the reference {@link ScalarKernels} (sums in double) to float
 * rounding. What only a GPU shows (the device intrinsics, the launch) is {@code CudaKernelsTest}'s.
 * Skips where nvcc is not installed (CI has it).
 */
class MatvecHostCheckTest {
    private static final ScalarKernels REF = new ScalarKernels();
    private static final ScalarKernels REF8 = ScalarKernels.int8Activations();
    private static Path harness;

    @TempDir
    static Path tmp;

    @BeforeAll
    static void build() throws IOException, InterruptedException {
        harness = HostHarness.build("matvec_host_check", tmp);
    }

    /** jcascade.cu's WType numbering. */
    private static int wtype(GgmlType type) {
        return switch (type) {
            case Q8_0 -> 3;
            case Q4_0 -> 4;
            case Q4_K -> 5;
            case Q6_K -> 7;
            default -> throw new IllegalArgumentException(type.toString());
        };
    }

    @ParameterizedTest(name = "{0} {1}x{2}, 8-bit activations")
    @CsvSource({"Q8_0, 3, 32", "Q8_0, 7, 288", "Q8_0, 4, 2048", "Q8_0, 2, 8192", "Q8_0, 3, 3104",
        "Q4_0, 3, 32", "Q4_0, 7, 288", "Q4_0, 4, 2048", "Q4_0, 2, 8192", "Q4_0, 3, 3104",
        "Q4_K, 3, 256", "Q4_K, 5, 768", "Q4_K, 4, 2048", "Q4_K, 2, 8192", "Q4_K, 3, 3328",
        "Q6_K, 3, 256", "Q6_K, 5, 768", "Q6_K, 4, 2048", "Q6_K, 2, 8192", "Q6_K, 3, 3328"})
    void lanesOfThe8BitDecodeKernelMatchTheReference(GgmlType type, int rows, int cols) throws Exception {
        // The block sums are exact integers on both sides: only the float combination differs.
        check(type, rows, cols, 1, 1, 2e-6);
    }

    @ParameterizedTest(name = "{0} {1}x{2}, {3} tokens, tensor-core prompt kernel")
    @CsvSource({
        // one tile, partial tiles in rows and in tokens (a warp past the end, a fragment half
        // out), several tiles both ways, and Llama widths
        "Q8_0, 64, 32, 64", "Q8_0, 5, 64, 3", "Q8_0, 70, 288, 33", "Q8_0, 129, 96, 130", "Q8_0, 40, 2048, 17",
        "Q4_0, 64, 32, 64", "Q4_0, 5, 64, 3", "Q4_0, 70, 288, 33", "Q4_0, 129, 96, 130", "Q4_0, 40, 2048, 17",
        "Q4_K, 64, 256, 64", "Q4_K, 5, 512, 3", "Q4_K, 70, 768, 33", "Q4_K, 129, 256, 70",
        "Q6_K, 64, 256, 64", "Q6_K, 5, 512, 3", "Q6_K, 70, 768, 33", "Q6_K, 129, 256, 70",
    })
    void lanesOfThePromptKernelMatchTheReference(GgmlType type, int rows, int cols, int tokens) throws Exception {
        // Exact integer block sums on both sides, as for the 8-bit decode kernels.
        check(type, rows, cols, 2, tokens, 2e-6);
    }

    @ParameterizedTest(name = "{0} {1}x{2}, {3} tokens, few-token kernel")
    @CsvSource({"Q8_0, 3, 288, 2", "Q8_0, 9, 2048, 8", "Q4_0, 3, 288, 3", "Q4_0, 9, 2048, 8", "Q4_0, 5, 3104, 5",
        "Q4_K, 3, 768, 2", "Q4_K, 9, 2048, 8", "Q6_K, 3, 768, 4", "Q6_K, 9, 2048, 8"})
    void lanesOfTheFewTokenKernelMatchTheReferenceAndEachTokenAlone(GgmlType type, int rows, int cols, int tokens)
            throws Exception {
        float[] together = check(type, rows, cols, 3, tokens, 2e-6);
        // Token t of mmv_* is matvec_*_q8 on token t alone, to the bit (sequences decoded together
        // get the products they get one at a time).
        Random rnd = new Random(31L * rows + cols + type.ordinal() + 977L * tokens);
        WeightMatrix m = RandomWeights.matrix(rnd, type, rows, cols);
        float[] x = new float[tokens * cols];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        for (int t = 0; t < tokens; t++) {
            float[] alone = run(input(type, m, rows, cols, 1, 1, java.util.Arrays.copyOfRange(x, t * cols, (t + 1) * cols)),
                    rows);
            for (int r = 0; r < rows; r++) {
                assertThat(Float.floatToIntBits(together[t * rows + r])).as("token %d row %d", t, r)
                        .isEqualTo(Float.floatToIntBits(alone[r]));
            }
        }
    }

    @ParameterizedTest(name = "{0} {1}x{2}")
    @CsvSource({
        // one chunk per row, fewer chunks than lanes, exactly the lanes, and the unrolled loop with
        // a tail (an odd number of chunks per lane): 2048 and 8192 columns as in Llama-3.2-1B
        "Q8_0, 3, 32", "Q8_0, 7, 288", "Q8_0, 5, 1024", "Q8_0, 4, 2048", "Q8_0, 2, 8192", "Q8_0, 3, 3104",
        "Q4_0, 3, 32", "Q4_0, 7, 288", "Q4_0, 5, 1024", "Q4_0, 4, 2048", "Q4_0, 2, 8192", "Q4_0, 3, 3104",
        "Q4_K, 3, 256", "Q4_K, 5, 768", "Q4_K, 4, 2048", "Q4_K, 2, 8192", "Q4_K, 3, 3328",
        "Q6_K, 3, 256", "Q6_K, 5, 768", "Q6_K, 4, 2048", "Q6_K, 2, 8192", "Q6_K, 3, 3328",
    })
    void lanesOfTheDecodeKernelMatchTheReference(GgmlType type, int rows, int cols) throws Exception {
        check(type, rows, cols, 0, 1, 1e-5 * Math.sqrt(cols));
    }

    /**
     * Runs the lanes of a kernel on the host ({@code path}: 0 {@code matvec_*}, 1 {@code matvec_*_q8},
     * 2 {@code mmq_*}, 3 {@code mmv_*} on {@code tokens} tokens); |got - want| within rel * sum |w x| per element.
     */
    private static float[] check(GgmlType type, int rows, int cols, int path, int tokens, double rel) throws Exception {
        Random rnd = new Random(31L * rows + cols + type.ordinal() + 977L * tokens);
        WeightMatrix m = RandomWeights.matrix(rnd, type, rows, cols);
        float[] x = new float[tokens * cols];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        float[] want = new float[tokens * rows];
        (path > 0 ? REF8 : REF).matmul(m, x, 0, cols, want, 0, rows, tokens);

        float[] got = run(input(type, m, rows, cols, path, tokens, x), want.length);

        float[] row = new float[cols];
        for (int r = 0; r < rows; r++) {
            // The error of a float32 dot product grows with the sum of |w_i x_i|, not with the result.
            REF.dequantizeRow(m, r, row, 0);
            for (int t = 0; t < tokens; t++) {
                double scale = 0;
                for (int c = 0; c < cols; c++) {
                    scale += Math.abs(row[c] * x[t * cols + c]);
                }
                double bound = rel * scale + 1e-30;
                int i = t * rows + r;
                if (!(Math.abs(got[i] - want[i]) <= bound)) {
                    fail(type + " " + rows + "x" + cols + ", path " + path + ": token " + t + ", row " + r + " is "
                            + got[i] + ", the reference says " + want[i] + " (bound " + bound + ")");
                }
            }
        }
        return got;
    }

    /** The harness's input: the header, the weight rows, the tokens' activations. */
    private static byte[] input(GgmlType type, WeightMatrix m, int rows, int cols, int path, int tokens, float[] x)
            throws IOException {
        ByteArrayOutputStream in = new ByteArrayOutputStream();
        ByteBuffer head = ByteBuffer.allocate(28).order(ByteOrder.LITTLE_ENDIAN);
        head.putInt(wtype(type)).putInt(path).putInt(rows).putInt(cols).putInt(tokens).putLong(m.rowBytes());
        in.write(head.array());
        in.write(m.data().asSlice(0, m.rowBytes() * rows).toArray(ValueLayout.JAVA_BYTE));
        ByteBuffer xb = ByteBuffer.allocate(4 * x.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : x) {
            xb.putFloat(v);
        }
        in.write(xb.array());
        return in.toByteArray();
    }

    private static float[] run(byte[] input, int n) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(harness.toString()).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try (OutputStream o = p.getOutputStream()) {
            o.write(input);
        }
        byte[] out = p.getInputStream().readAllBytes();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).isZero();
        assertThat(out).hasSize(4 * n);
        float[] got = new float[n];
        ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(got);
        return got;
    }
}
