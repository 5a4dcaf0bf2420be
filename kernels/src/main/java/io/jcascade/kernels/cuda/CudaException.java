package io.jcascade.kernels.cuda;

/**
 * A CUDA driver call that failed on a machine where CUDA is otherwise working: out of device
 * memory, a kernel that faulted, a bad launch. Carries the driver's {@code CUresult}.
 */
public final class CudaException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int result;

    CudaException(String message, int result) {
        super(message);
        this.result = result;
    }

    /** The driver's {@code CUresult} code. */
    public int result() {
        return result;
    }
}
