package io.jcascade.kernels.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;

/**
 * Builds a host program of {@code kernels/src/test/cuda} (which includes {@code jcascade.cu})
 * with nvcc, for the tests that run kernel code on the CPU. Skips the calling test class where
 * nvcc or the sources are not here.
 */
final class HostHarness {
    private HostHarness() {
    }

    /** {@code src/test/cuda/<name>.cu} compiled into {@code dir/<name>}. */
    static Path build(String name, Path dir) throws IOException, InterruptedException {
        Path nvcc = NvccCompileTest.nvcc();
        Assumptions.assumeTrue(nvcc != null, "nvcc not installed here (looked in $CUDA_HOME/bin, /usr/local/bin, /usr/local/cuda/bin)");
        Path root = Stream.of(Path.of("."), Path.of("kernels")).filter(p -> Files.isDirectory(p.resolve("src/main/cuda")))
                .findFirst().orElse(null);
        Assumptions.assumeTrue(root != null, "the kernel sources (kernels/src/main/cuda) are not beside this run");
        Path harness = dir.resolve(name);
        Process p = new ProcessBuilder(nvcc.toString(), "-std=c++17", "-O2", "-arch=sm_80", "-I",
                root.resolve("src/main/cuda").toString(), "-o", harness.toString(),
                root.resolve("src/test/cuda/" + name + ".cu").toString()).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor()).as("nvcc on %s.cu:%n%s", name, log).isZero();
        return harness;
    }
}
