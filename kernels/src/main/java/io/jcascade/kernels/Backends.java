package io.jcascade.kernels;

import io.jcascade.kernels.cpu.CpuBackend;
import io.jcascade.kernels.cpu.CpuKernels;
import io.jcascade.kernels.cuda.CudaBackend;
import java.util.List;

/**
 * Picks a {@link Backend} by name.
 *
 * <pre>{@code
 * try (Backend b = Backends.create("auto", 4)) { System.out.println(b.name()); }
 * }</pre>
 */
public final class Backends {
    /** Names accepted by {@link #create}. */
    public static final List<String> NAMES = List.of("cpu", "cuda", "auto");

    private Backends() {}

    /**
     * Creates the named backend: {@code cpu}; {@code cuda}, the first NVIDIA GPU (or the one that
     * {@code jcascade.cuda.device} / {@code JCASCADE_CUDA_DEVICE} names); {@code auto}, CUDA when a
     * driver, a device and kernels for it are there, else the CPU. {@code threads} is the CPU's.
     *
     * @throws IllegalArgumentException for an unknown name
     * @throws UnsupportedOperationException when the named backend is not available here
     */
    public static Backend create(String name, int threads) {
        return switch (name) {
            case "cpu" -> new CpuBackend(CpuKernels.create(threads));
            case "cuda" -> openCuda();
            case "auto" -> {
                try {
                    yield CudaBackend.open();
                } catch (UnsupportedOperationException noGpu) {
                    yield new CpuBackend(CpuKernels.create(threads));
                }
            }
            default -> throw new IllegalArgumentException("unknown backend \"" + name + "\"; choose one of " + NAMES);
        };
    }

    private static Backend openCuda() {
        try {
            return CudaBackend.open();
        } catch (UnsupportedOperationException e) {
            throw new UnsupportedOperationException("the CUDA backend cannot run here: " + e.getMessage()
                    + "; use --backend cpu", e);
        }
    }
}
