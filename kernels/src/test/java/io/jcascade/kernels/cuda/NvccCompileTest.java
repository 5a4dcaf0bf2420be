package io.jcascade.kernels.cuda;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.gguf.GgmlType;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Compiles every {@code .cu} of src/main/cuda with nvcc, as PTX for compute_80 and as NVRTC would
 * see it (no include path), where nvcc is installed (CI has it); skips elsewhere. The build's
 * "nvcc" profile does the same, so this guards builds that skip that profile. Also checks that the
 * PTX defines the matmul and embedding kernel of every weight type {@link CudaBackend} accepts,
 * since the backend finds them by name only when it launches them.
 */
class NvccCompileTest {

    static Path nvcc() {
        List<Path> candidates = new ArrayList<>();
        String home = System.getenv("CUDA_HOME");
        if (home != null) {
            candidates.add(Path.of(home, "bin", "nvcc"));
        }
        candidates.add(Path.of("/usr/local/bin/nvcc"));
        candidates.add(Path.of("/usr/local/cuda/bin/nvcc"));
        return candidates.stream().filter(Files::isExecutable).findFirst().orElse(null);
    }

    @Test
    void everyKernelSourceCompiles(@TempDir Path tmp) throws IOException, InterruptedException {
        Path nvcc = nvcc();
        Assumptions.assumeTrue(nvcc != null, "nvcc not installed here (looked in $CUDA_HOME/bin, /usr/local/bin, /usr/local/cuda/bin)");
        Path dir = Stream.of(Path.of("src/main/cuda"), Path.of("kernels/src/main/cuda")).filter(Files::isDirectory)
                .findFirst().orElse(null);
        Assumptions.assumeTrue(dir != null, "the kernel sources (kernels/src/main/cuda) are not beside this run");
        List<Path> sources;
        try (Stream<Path> s = Files.list(dir)) {
            sources = s.filter(p -> p.toString().endsWith(".cu")).sorted().toList();
        }
        assertThat(sources).isNotEmpty();
        for (Path cu : sources) {
            Path ptx = tmp.resolve(cu.getFileName() + ".ptx");
            Process p = new ProcessBuilder(nvcc.toString(), "-std=c++17", "-O3", "-arch=compute_80", "-ptx",
                    "-o", ptx.toString(), cu.toString()).redirectErrorStream(true).start();
            String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(p.waitFor()).as("nvcc on %s:%n%s", cu, log).isZero();
            String text = Files.readString(ptx);
            assertThat(text).contains(".entry attn_scores", ".entry select_tokens(", ".entry penalise(",
                    ".entry rms_norm_q8(", ".entry rope_qk(", ".entry attn_decode(", ".entry quantize_q8(",
                    ".entry quantize_q8k(");
            // every weight type CudaBackend accepts has the kernels it launches by name
            for (GgmlType type : GgmlType.values()) {
                String suffix = CudaBackend.kernelSuffix(type);
                if (suffix != null) {
                    assertThat(text).as("kernels for %s", type).contains(".entry matmul_" + suffix + "(",
                            ".entry embed_" + suffix + "(");
                }
                String matvec = CudaBackend.matvecSuffix(type);
                if (matvec != null) {
                    assertThat(text).as("decode kernels for %s", type).contains(".entry matvec_" + matvec + "(",
                            ".entry matvec3_" + matvec + "(", ".entry matvec_swiglu_" + matvec + "(");
                }
                String q8 = CudaBackend.matvecQ8Suffix(type);
                if (q8 != null) {
                    assertThat(text).as("8-bit decode kernels for %s", type).contains(".entry matvec_" + q8 + "(",
                            ".entry matvec3_" + q8 + "(", ".entry matvec_swiglu_" + q8 + "(");
                }
                String mmq = CudaBackend.mmqSuffix(type);
                if (mmq != null) {
                    assertThat(text).as("tensor-core prompt and few-token kernels for %s", type)
                            .contains(".entry mmq_" + mmq + "(", ".entry mmv_" + mmq + "(");
                }
            }
        }
    }
}
