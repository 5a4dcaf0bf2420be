package io.jcascade.kernels.cuda;

import org.junit.jupiter.api.Assumptions;

/**
 * Opens the CUDA backend for a test, or skips the test with the reason when this machine has no
 * NVIDIA driver or device (CI, laptops). A machine with a GPU where the backend still fails to
 * open (kernels refused, say) fails the test instead of skipping it.
 */
public final class CudaTestSupport {
    private CudaTestSupport() {}

    /** The backend, or null when there is no GPU; pair with {@link #assumeGpu} in each test. */
    public static CudaBackend backendOrNull() {
        return CudaBackend.unavailability() == null ? CudaBackend.open() : null;
    }

    /** Skips the calling test, with the reason, when this machine has no CUDA driver or device. */
    public static void assumeGpu() {
        CudaUnavailableException why = CudaBackend.unavailability();
        Assumptions.assumeTrue(why == null, () -> "skipped, no GPU here: " + why.getMessage());
    }

    public static CudaBackend backendOrSkip() {
        CudaUnavailableException why = CudaBackend.unavailability();
        Assumptions.assumeTrue(why == null, () -> "skipped, no GPU here: " + why.getMessage());
        return CudaBackend.open();
    }
}
