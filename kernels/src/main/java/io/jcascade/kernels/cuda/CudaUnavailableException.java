package io.jcascade.kernels.cuda;

/**
 * The CUDA backend cannot run here; the message is one line for the user (the CLI prints it after
 * {@code jcascade: error:}). {@link #kind()} tells a missing driver or device (tests skip) from a
 * machine with a GPU where the kernels could not be loaded (tests fail).
 */
public final class CudaUnavailableException extends UnsupportedOperationException {
    private static final long serialVersionUID = 1L;

    /** Why CUDA is not available. */
    public enum Kind {
        /** No {@code libcuda} (no NVIDIA driver), or one too old. */
        NO_DRIVER,
        /** A driver but no usable device (none present, none visible, or the index asked for is out of range). */
        NO_DEVICE,
        /** A device, but no kernel image could be loaded (prebuilt PTX/cubin refused and no NVRTC). */
        NO_KERNELS
    }

    private final Kind kind;

    public CudaUnavailableException(Kind kind, String message) {
        super(message);
        this.kind = kind;
    }

    public Kind kind() {
        return kind;
    }

    /** True when there is no NVIDIA GPU to use at all (as opposed to a GPU that failed to set up). */
    public boolean noGpu() {
        return kind == Kind.NO_DRIVER || kind == Kind.NO_DEVICE;
    }
}
