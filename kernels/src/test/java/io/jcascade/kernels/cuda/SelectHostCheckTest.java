package io.jcascade.kernels.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.kernels.TokenCandidates;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The token selection of {@code select_tokens}, checked without a GPU: nvcc builds
 * {@code kernels/src/test/cuda/select_host_check.cu}, which runs the kernel's rank order and
 * radix select (the same source, compiled for the host) with its threads made sequential, and the
 * tokens it takes must be {@link TokenCandidates#select}'s. The block's parallel parts (the
 * ballot over ties, the atomics) are {@code CudaKernelsTest}'s, on a GPU. Skips where nvcc is not
 * installed (CI has it).
 */
class SelectHostCheckTest {
    private static Path harness;

    @TempDir
    static Path tmp;

    @BeforeAll
    static void build() throws IOException, InterruptedException {
        harness = HostHarness.build("select_host_check", tmp);
    }

    @ParameterizedTest(name = "n={0} k={1} {2}")
    @CsvSource({"1, 1, gaussian", "10, 3, gaussian", "1000, 40, gaussian", "1000, 1000, gaussian",
        "128256, 40, gaussian", "32000, 1024, gaussian", "5000, 40, ties", "5000, 300, ties",
        "3000, 50, signs", "3000, 2999, signs", "2000, 64, few", "1000, 500, nan"})
    void theKernelTakesTheKBest(int n, int k, String kind) throws Exception {
        Random r = new Random(n * 31L + k);
        float[] l = new float[n];
        for (int i = 0; i < n; i++) {
            l[i] = switch (kind) {
                case "ties" -> (float) Math.round(r.nextGaussian() * 3); // a few values, many equal
                case "signs" -> new float[] {0f, -0f, Float.NaN, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY,
                    Float.MIN_VALUE, -Float.MIN_VALUE, 1f, -1f}[r.nextInt(9)];
                case "few" -> i % 100 == 0 ? 10f + i * 1e-3f : -5f; // one run of equal ranks below the k best
                case "nan" -> i % 3 == 0 ? Float.NaN : i % 3 == 1 ? Float.NEGATIVE_INFINITY : (float) r.nextGaussian();
                default -> (float) (r.nextGaussian() * 4);
            };
        }
        int[] got = run(l, k);
        TokenCandidates want = new TokenCandidates().select(l, n, k, 1f, new int[0], 0);
        int[] expected = new int[want.count()];
        for (int i = 0; i < expected.length; i++) {
            expected[i] = want.id(i);
        }
        Arrays.sort(expected); // the harness takes them in id order, the kernel in any: the host sorts
        assertThat(got).containsExactly(expected);
    }

    private static int[] run(float[] l, int k) throws IOException, InterruptedException {
        ByteBuffer in = ByteBuffer.allocate(8 + 4 * l.length).order(ByteOrder.LITTLE_ENDIAN);
        in.putInt(l.length).putInt(k);
        for (float v : l) {
            in.putFloat(v);
        }
        Process p = new ProcessBuilder(harness.toString()).start();
        try (OutputStream os = p.getOutputStream()) {
            os.write(in.array());
        }
        byte[] out = p.getInputStream().readAllBytes();
        assertThat(p.waitFor()).as("select_host_check exit status").isZero();
        ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
        int[] ids = new int[out.length / 4];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = b.getInt();
        }
        return ids;
    }
}
