package io.jcascade.kernels.cpu;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.function.IntConsumer;

/**
 * The reference {@link CpuKernels}: plain loops on one thread, dot products accumulated in double,
 * weights decoded byte by byte straight from ggml's block layouts (sharing no code with
 * {@link PanamaKernels}, so that the tests comparing the two compare two readings of the format).
 * Slow; for tests and for checking a suspicious result.
 *
 * <pre>{@code
 * CpuKernels ref = new ScalarKernels();
 * float[] row = new float[w.cols()];
 * ref.dequantizeRow(w, 0, row, 0);
 * }</pre>
 */
public final class ScalarKernels implements CpuKernels {

    /** A reference kernel set; it always runs on the calling thread. */
    public ScalarKernels() {
    }

    @Override
    public int threads() {
        return 1;
    }

    @Override
    public void close() {
    }

    @Override
    public void matmul(WeightMatrix w, float[] x, int xOffset, int xStride, float[] out, int outOffset, int outStride,
            int nTokens) {
        switch (w.type()) {
            case F32, F16, BF16, Q8_0, Q4_0 -> { }
            default -> throw unsupported(w.type());
        }
        int cols = w.cols();
        float[] row = new float[cols];
        for (int r = 0; r < w.rows(); r++) {
            dequantizeRow(w, r, row, 0);
            for (int t = 0; t < nTokens; t++) {
                int xo = xOffset + t * xStride;
                double s = 0;
                for (int c = 0; c < cols; c++) {
                    s += (double) row[c] * x[xo + c];
                }
                out[outOffset + t * outStride + r] = (float) s;
            }
        }
    }

    @Override
    public void dequantizeRow(WeightMatrix w, int row, float[] out, int outOffset) {
        MemorySegment seg = w.data();
        int n = w.cols();
        long base = row * w.type().rowBytes(n);
        switch (w.type()) {
            case F32 -> {
                for (int i = 0; i < n; i++) {
                    out[outOffset + i] = Float.intBitsToFloat(u32(seg, base + 4L * i));
                }
            }
            case F16 -> {
                for (int i = 0; i < n; i++) {
                    out[outOffset + i] = Float.float16ToFloat((short) u16(seg, base + 2L * i));
                }
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) {
                    out[outOffset + i] = Float.intBitsToFloat(u16(seg, base + 2L * i) << 16);
                }
            }
            case Q8_0 -> {
                // block: fp16 d (2 bytes), int8 qs[32]
                for (int b = 0; b < n / 32; b++) {
                    long bo = base + 34L * b;
                    float d = Float.float16ToFloat((short) u16(seg, bo));
                    for (int j = 0; j < 32; j++) {
                        byte q = seg.get(ValueLayout.JAVA_BYTE, bo + 2 + j);
                        out[outOffset + 32 * b + j] = d * q;
                    }
                }
            }
            case Q4_0 -> {
                // block: fp16 d (2 bytes), uint8 qs[16]; low nibbles are elements 0..15, high 16..31
                for (int b = 0; b < n / 32; b++) {
                    long bo = base + 18L * b;
                    float d = Float.float16ToFloat((short) u16(seg, bo));
                    for (int j = 0; j < 16; j++) {
                        int q = Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, bo + 2 + j));
                        out[outOffset + 32 * b + j] = d * ((q & 0x0F) - 8);
                        out[outOffset + 32 * b + j + 16] = d * ((q >>> 4) - 8);
                    }
                }
            }
            default -> throw unsupported(w.type());
        }
    }

    private static UnsupportedOperationException unsupported(GgmlType type) {
        return new UnsupportedOperationException("weight type " + type + " is not supported by the CPU kernels");
    }

    /** Little-endian unsigned 16 bits, assembled by hand rather than through a value layout. */
    private static int u16(MemorySegment seg, long off) {
        return Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, off))
                | Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, off + 1)) << 8;
    }

    private static int u32(MemorySegment seg, long off) {
        return u16(seg, off) | u16(seg, off + 2) << 16;
    }

    @Override
    public void rmsNorm(float[] x, int xOffset, float[] weight, float[] out, int outOffset, int n, float eps) {
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sum += (double) (x[xOffset + i] * x[xOffset + i]);
        }
        float mean = (float) (sum / n);
        float scale = 1.0f / (float) Math.sqrt(mean + eps);
        for (int i = 0; i < n; i++) {
            out[outOffset + i] = x[xOffset + i] * scale * weight[i];
        }
    }

    @Override
    public void rope(float[] x, int offset, int nHeads, int headDim, int ropeDims, int pos, float freqBase,
            float[] freqFactors, boolean neox, float freqScale) {
        float thetaScale = (float) Math.pow(freqBase, (double) (-2.0f / ropeDims));
        int half = ropeDims / 2;
        for (int h = 0; h < nHeads; h++) {
            int base = offset + h * headDim;
            float theta = pos;
            for (int i = 0; i < half; i++) {
                float angle = freqScale * (theta / (freqFactors != null ? freqFactors[i] : 1.0f));
                float cos = (float) Math.cos(angle);
                float sin = (float) Math.sin(angle);
                int a = neox ? base + i : base + 2 * i;
                int b = neox ? base + i + half : base + 2 * i + 1;
                float x0 = x[a];
                float x1 = x[b];
                x[a] = x0 * cos - x1 * sin;
                x[b] = x0 * sin + x1 * cos;
                theta *= thetaScale;
            }
        }
    }

    @Override
    public void softmax(float[] x, int offset, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            max = Math.max(max, x[offset + i]);
        }
        double sum = 0;
        for (int i = 0; i < n; i++) {
            float e = (float) Math.exp(x[offset + i] - max);
            x[offset + i] = e;
            sum += e;
        }
        float inv = (float) (1.0 / sum);
        for (int i = 0; i < n; i++) {
            x[offset + i] *= inv;
        }
    }

    @Override
    public void swiglu(float[] gate, int gateOffset, float[] up, int upOffset, float[] out, int outOffset, int n) {
        for (int i = 0; i < n; i++) {
            float g = gate[gateOffset + i];
            float silu = g / (1.0f + (float) Math.exp(-g));
            out[outOffset + i] = silu * up[upOffset + i];
        }
    }

    @Override
    public float dot(float[] a, int aOffset, float[] b, int bOffset, int n) {
        double s = 0;
        for (int i = 0; i < n; i++) {
            s += (double) a[aOffset + i] * b[bOffset + i];
        }
        return (float) s;
    }

    @Override
    public void axpy(float alpha, float[] x, int xOffset, float[] y, int yOffset, int n) {
        for (int i = 0; i < n; i++) {
            y[yOffset + i] = (float) ((double) y[yOffset + i] + (double) alpha * x[xOffset + i]);
        }
    }

    @Override
    public void add(float[] x, int xOffset, float[] y, int yOffset, int n) {
        for (int i = 0; i < n; i++) {
            y[yOffset + i] += x[xOffset + i];
        }
    }

    @Override
    public void parallelFor(int count, IntConsumer body) {
        for (int i = 0; i < count; i++) {
            body.accept(i);
        }
    }
}
