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
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
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
        Path nvcc = NvccCompileTest.nvcc();
        Assumptions.assumeTrue(nvcc != null, "nvcc not installed here (looked in $CUDA_HOME/bin, /usr/local/bin, /usr/local/cuda/bin)");
        Path root = Stream.of(Path.of("."), Path.of("kernels")).filter(p -> Files.isDirectory(p.resolve("src/main/cuda")))
                .findFirst().orElse(null);
        Assumptions.assumeTrue(root != null, "the kernel sources (kernels/src/main/cuda) are not beside this run");
        harness = tmp.resolve("matvec_host_check");
        Process p = new ProcessBuilder(nvcc.toString(), "-std=c++17", "-O2", "-I", root.resolve("src/main/cuda").toString(),
                "-o", harness.toString(), root.resolve("src/test/cuda/matvec_host_check.cu").toString())
                .redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor()).as("nvcc on matvec_host_check.cu:%n%s", log).isZero();
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
        "Q4_0, 3, 32", "Q4_0, 7, 288", "Q4_0, 4, 2048", "Q4_0, 2, 8192", "Q4_0, 3, 3104"})
    void lanesOfThe8BitDecodeKernelMatchTheReference(GgmlType type, int rows, int cols) throws Exception {
        // The block sums are exact integers on both sides: only the float combination differs.
        check(type, rows, cols, true, 2e-6);
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
        check(type, rows, cols, false, 1e-5 * Math.sqrt(cols));
    }

    /** Runs the lanes of the {@code matvec} kernel on the host; |got - want| within rel * sum |w x| per row. */
    private static void check(GgmlType type, int rows, int cols, boolean int8, double rel) throws Exception {
        Random rnd = new Random(31L * rows + cols + type.ordinal());
        WeightMatrix m = RandomWeights.matrix(rnd, type, rows, cols);
        float[] x = new float[cols];
        for (int i = 0; i < cols; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        float[] want = new float[rows];
        (int8 ? REF8 : REF).matmul(m, x, 0, cols, want, 0, rows, 1);

        ByteArrayOutputStream in = new ByteArrayOutputStream();
        ByteBuffer head = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
        head.putInt(wtype(type)).putInt(int8 ? 1 : 0).putInt(rows).putInt(cols).putLong(m.rowBytes());
        in.write(head.array());
        in.write(m.data().asSlice(0, m.rowBytes() * rows).toArray(ValueLayout.JAVA_BYTE));
        ByteBuffer xb = ByteBuffer.allocate(4 * cols).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : x) {
            xb.putFloat(v);
        }
        in.write(xb.array());
        float[] got = run(in.toByteArray(), rows);

        float[] row = new float[cols];
        for (int r = 0; r < rows; r++) {
            // The error of a float32 dot product grows with the sum of |w_i x_i|, not with the result.
            REF.dequantizeRow(m, r, row, 0);
            double scale = 0;
            for (int c = 0; c < cols; c++) {
                scale += Math.abs(row[c] * x[c]);
            }
            double bound = rel * scale + 1e-30;
            if (!(Math.abs(got[r] - want[r]) <= bound)) {
                fail(type + " " + rows + "x" + cols + ": row " + r + " is " + got[r] + ", the reference says "
                        + want[r] + " (bound " + bound + ")");
            }
        }
    }

    private static float[] run(byte[] input, int rows) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(harness.toString()).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try (OutputStream o = p.getOutputStream()) {
            o.write(input);
        }
        byte[] out = p.getInputStream().readAllBytes();
        assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        assertThat(p.exitValue()).isZero();
        assertThat(out).hasSize(4 * rows);
        float[] got = new float[rows];
        ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(got);
        return got;
    }
}
