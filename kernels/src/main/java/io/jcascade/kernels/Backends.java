package io.jcascade.kernels;

import io.jcascade.kernels.cpu.CpuBackend;
import io.jcascade.kernels.cpu.CpuKernels;
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
     * Creates the named backend: {@code cpu}; {@code auto}, the best one available (the CPU in this
     * version); {@code cuda}, which this version does not have yet and reports so.
     *
     * @throws IllegalArgumentException for an unknown name
     * @throws UnsupportedOperationException when the named backend is not available here
     */
    public static Backend create(String name, int threads) {
        return switch (name) {
            case "cpu", "auto" -> new CpuBackend(CpuKernels.create(threads));
            case "cuda" -> throw new UnsupportedOperationException(
                    "the CUDA backend is not part of this version of jcascade; use --backend cpu");
            default -> throw new IllegalArgumentException("unknown backend \"" + name + "\"; choose one of " + NAMES);
        };
    }
}
