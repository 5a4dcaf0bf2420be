package io.jcascade.kernels.cpu;

import io.jcascade.kernels.WeightMatrix;

/**
 * The numeric kernels of the CPU backend, on heap {@code float[]} activations and weights in
 * ggml's block layouts. Two implementations: {@link PanamaKernels} (Vector API, multi-threaded,
 * the one that runs) and {@link ScalarKernels} (plain loops accumulating in double, the reference
 * the tests hold the fast one against).
 *
 * <p>Activations of several tokens are stored token-major: token {@code t} of a batch starts at
 * {@code offset + t * stride}. Numerics follow llama.cpp where that matters for agreement: RMSNorm
 * and softmax accumulate their sums in double, RoPE steps its angle by repeated multiplication in
 * float.
 *
 * <pre>{@code
 * CpuKernels k = CpuKernels.create(Runtime.getRuntime().availableProcessors());
 * k.rmsNorm(x, 0, normWeight, xn, 0, dim, 1e-5f);
 * k.matmul(wq, xn, 0, dim, q, 0, wq.rows(), 1);
 * }</pre>
 */
public interface CpuKernels extends AutoCloseable {

    /** The fast kernels on {@code threads} worker threads (1 runs on the caller's thread alone). */
    static CpuKernels create(int threads) {
        return new PanamaKernels(threads);
    }

    /** Number of threads the kernels split work over. */
    int threads();

    /**
     * Matrix product with the weights: for each token {@code t < nTokens} and row {@code r < w.rows()},
     * {@code out[outOffset + t*outStride + r] = sum_c W[r][c] * x[xOffset + t*xStride + c]}.
     * Supported weight types: F32, F16, BF16, Q8_0, Q4_0 (more in later versions).
     *
     * @throws UnsupportedOperationException naming the type, for any other weight type
     */
    void matmul(WeightMatrix w, float[] x, int xOffset, int xStride, float[] out, int outOffset, int outStride,
            int nTokens);

    /** Dequantizes row {@code row} of {@code w} into {@code out[outOffset .. outOffset + w.cols())}. */
    void dequantizeRow(WeightMatrix w, int row, float[] out, int outOffset);

    /**
     * {@code w} repacked into a layout these kernels multiply faster ({@link PackedMatrix}), or null
     * to keep using {@code w} as it is (the default). The packed copy replaces {@code w} for
     * {@link #matmul(PackedMatrix, float[], int, int, float[], int, int, int)} and
     * {@link #dequantizeRow(PackedMatrix, int, float[], int)}; {@code w} itself is not read again.
     */
    default PackedMatrix pack(WeightMatrix w) {
        return null;
    }

    /** {@link #matmul(WeightMatrix, float[], int, int, float[], int, int, int)} on a matrix from {@link #pack}. */
    default void matmul(PackedMatrix w, float[] x, int xOffset, int xStride, float[] out, int outOffset, int outStride,
            int nTokens) {
        throw new UnsupportedOperationException("these kernels do not pack weights");
    }

    /** {@link #dequantizeRow(WeightMatrix, int, float[], int)} on a matrix from {@link #pack}. */
    default void dequantizeRow(PackedMatrix w, int row, float[] out, int outOffset) {
        throw new UnsupportedOperationException("these kernels do not pack weights");
    }

    /**
     * RMSNorm with weights: {@code out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i]} for {@code i < n}.
     * {@code out} may be {@code x} itself at the same offset.
     */
    void rmsNorm(float[] x, int xOffset, float[] weight, float[] out, int outOffset, int n, float eps);

    /**
     * Rotary position embedding, in place, on {@code nHeads} heads of {@code headDim} starting at
     * {@code offset}, for position {@code pos}. Only the first {@code ropeDims} of each head rotate.
     * Pair {@code i} (i < ropeDims/2) turns by {@code pos * freqBase^(-2i/ropeDims) / freqFactors[i]}.
     * Normal mode (llama) rotates adjacent pairs {@code (x[2i], x[2i+1])}; NeoX mode (phi3 and
     * others) rotates {@code (x[i], x[i + ropeDims/2])}.
     *
     * @param freqFactors per-pair divisors of the angle (Llama 3.1 scaling), or null for none
     */
    default void rope(float[] x, int offset, int nHeads, int headDim, int ropeDims, int pos, float freqBase,
            float[] freqFactors, boolean neox) {
        rope(x, offset, nHeads, headDim, ropeDims, pos, freqBase, freqFactors, neox, 1.0f);
    }

    /**
     * Rotary position embedding with a frequency scale, as ggml's {@code rope_yarn} without
     * extrapolation: pair {@code i} turns by {@code freqScale * (theta_i / freqFactors[i])}, where
     * {@code theta_i = pos * freqBase^(-2i/ropeDims)} is stepped in float as described above.
     * {@code freqScale = 1 / factor} is linear ("position interpolation") scaling.
     */
    default void rope(float[] x, int offset, int nHeads, int headDim, int ropeDims, int pos, float freqBase,
            float[] freqFactors, boolean neox, float freqScale) {
        rope(x, offset, nHeads, headDim, ropeDims, pos, freqBase, freqFactors, neox, freqScale, 1.0f);
    }

    /**
     * Rotary position embedding with a frequency scale and a magnitude scale, as ggml's
     * {@code rope_yarn} without extrapolation: the cosine and sine of each angle are rounded to
     * float and multiplied by {@code mscale} before they rotate the pair, so every rotated pair
     * (and only those: the dimensions past {@code ropeDims} keep their values) is scaled by
     * {@code mscale}. llama.cpp passes {@code rope.scaling.attn_factor} here (Phi-3 128k's
     * LongRoPE magnitude factor); 1 leaves {@link #rope(float[], int, int, int, int, int, float,
     * float[], boolean, float)} unchanged.
     *
     * <pre>{@code
     * k.rope(q, 0, heads, 96, 32, pos, 10000f, longFactors, true, 1f, 1.1902f);
     * }</pre>
     */
    void rope(float[] x, int offset, int nHeads, int headDim, int ropeDims, int pos, float freqBase,
            float[] freqFactors, boolean neox, float freqScale, float mscale);

    /** Softmax in place over {@code x[offset .. offset + n)}. */
    void softmax(float[] x, int offset, int n);

    /** SwiGLU: {@code out[i] = silu(gate[i]) * up[i]}, with {@code silu(v) = v / (1 + exp(-v))}. */
    void swiglu(float[] gate, int gateOffset, float[] up, int upOffset, float[] out, int outOffset, int n);

    /** Dot product of {@code a[aOffset..+n)} and {@code b[bOffset..+n)}. */
    float dot(float[] a, int aOffset, float[] b, int bOffset, int n);

    /** {@code y[yOffset + i] += alpha * x[xOffset + i]} for {@code i < n}. */
    void axpy(float alpha, float[] x, int xOffset, float[] y, int yOffset, int n);

    /** {@code y[yOffset + i] += x[xOffset + i]} for {@code i < n}. */
    void add(float[] x, int xOffset, float[] y, int yOffset, int n);

    /**
     * Runs {@code body.accept(i)} for every {@code i < count}, split over the kernels' threads, and
     * returns when all are done. For work the other kernels do not cover, such as attention heads.
     */
    void parallelFor(int count, java.util.function.IntConsumer body);

    /** Stops the worker threads. */
    @Override
    void close();
}
