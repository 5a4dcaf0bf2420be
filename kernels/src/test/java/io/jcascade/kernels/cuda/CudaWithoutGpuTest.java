package io.jcascade.kernels.cuda;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.jcascade.kernels.Backend;
import io.jcascade.kernels.Backends;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** What the CUDA backend does where it cannot run (it must fail softly), and what every build ships. */
class CudaWithoutGpuTest {

    @Test
    void theKernelSourceIsInTheJar() {
        byte[] cu = CudaBackend.resourceBytes(CudaBackend.MODULE + ".cu");
        assertThat(cu).isNotNull();
        assertThat(new String(cu, java.nio.charset.StandardCharsets.UTF_8)).contains("extern \"C\" __global__");
    }

    @Test
    void cudaIsRefusedInOneLineWithoutAGpu() {
        CudaUnavailableException why = CudaBackend.unavailability();
        Assumptions.assumeTrue(why != null, "this machine has a CUDA driver and device");
        assertThat(why.noGpu()).isTrue();
        assertThatThrownBy(() -> Backends.create("cuda", 1))
                .isInstanceOf(UnsupportedOperationException.class)
                .hasMessageStartingWith("the CUDA backend cannot run here: ")
                .hasMessageEndingWith("; use --backend cpu")
                .hasMessageNotContaining("\n");
        // Asking twice gives the same answer (the failed load is remembered, not retried into a crash).
        assertThatThrownBy(CudaBackend::open).isInstanceOf(CudaUnavailableException.class);
    }

    @Test
    void autoFallsBackToTheCpuWithoutAGpu() {
        Assumptions.assumeTrue(CudaBackend.unavailability() != null, "this machine has a CUDA driver and device");
        try (Backend b = Backends.create("auto", 1)) {
            assertThat(b.name()).isEqualTo("cpu");
        }
    }

    @Test
    void autoPicksTheGpuWhereThereIsOne() {
        Assumptions.assumeTrue(CudaBackend.unavailability() == null, "no CUDA driver or device here");
        try (Backend b = Backends.create("auto", 1)) {
            assertThat(b.name()).isEqualTo("cuda");
        }
    }
}
