package io.jcascade.kernels.cpu;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The scalar reference of llama.cpp's 8-bit activation matmul, used by
 * {@link ScalarKernels#int8Activations()}: element by element, straight from the block layouts,
 * sharing no code with the fast path ({@link Q8Activations}, {@link Int8Dot}).
 *
 * <p>Per token the activation row is quantized like ggml's {@code quantize_row_q8_0_ref}
 * ({@code d = amax / 127} stored as fp16, {@code q = roundf(x / d)}) for
 * Q8_0/Q4_0 weights, or like {@code quantize_row_q8_K} ({@code iscale = -127 / max} where
 * {@code max} is the signed element of largest magnitude, {@code q = min(127, nearest_int(iscale * x))},
 * float {@code d = 1 / iscale}) for K-quants. Each block's integer dot product is scaled in float
 * as ggml's {@code vec_dot_*} do; the blocks' float terms are summed in double.
 *
 * <pre>{@code
 * ScalarKernels.int8Activations().matmul(w, x, 0, w.cols(), out, 0, w.rows(), 1);
 * }</pre>
 */
final class ScalarInt8 {

    private ScalarInt8() {
    }

    static void matmul(WeightMatrix w, float[] x, int xOffset, int xStride, float[] out, int outOffset, int outStride,
            int nTokens) {
        GgmlType type = w.type();
        int n = w.cols();
        boolean k = type.blockSize() == 256;
        int[] q = new int[n];
        float[] d = new float[n / 32];
        for (int t = 0; t < nTokens; t++) {
            if (k) {
                quantizeQ8K(x, xOffset + t * xStride, n, q, d);
            } else {
                quantizeQ8_0(x, xOffset + t * xStride, n, q, d);
            }
            for (int r = 0; r < w.rows(); r++) {
                long base = r * type.rowBytes(n);
                double s = 0;
                for (int b = 0; b < n / type.blockSize(); b++) {
                    long bo = base + (long) type.typeSize() * b;
                    s += block(type, w.data(), bo, q, 256 * b, q, 32 * b, d, b);
                }
                out[outOffset + t * outStride + r] = (float) s;
            }
        }
    }

    /** ggml quantize_row_q8_0_ref: per 32, d = amax/127 (fp16 stored), q = roundf(x * (1/d)). */
    static void quantizeQ8_0(float[] x, int xo, int n, int[] q, float[] d) {
        for (int b = 0; b < n / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) {
                amax = Math.max(amax, Math.abs(x[xo + 32 * b + j]));
            }
            float dd = amax / 127f;
            d[b] = Float.float16ToFloat(Float.floatToFloat16(dd));
            float id = dd != 0 ? 1f / dd : 0f;
            for (int j = 0; j < 32; j++) {
                double v = (double) (x[xo + 32 * b + j] * id);
                q[32 * b + j] = (int) (Math.signum(v) * Math.floor(Math.abs(v) + 0.5));
            }
        }
    }

    /** ggml quantize_row_q8_K: per 256, iscale = -127/max (signed max), q = min(127, rint(iscale*x)), d = 1/iscale. */
    static void quantizeQ8K(float[] x, int xo, int n, int[] q, float[] d) {
        for (int b = 0; b < n / 256; b++) {
            float max = 0, amax = 0;
            for (int j = 0; j < 256; j++) {
                float v = x[xo + 256 * b + j];
                if (Math.abs(v) > amax) {
                    amax = Math.abs(v);
                    max = v;
                }
            }
            if (amax == 0) {
                d[b] = 0;
                for (int j = 0; j < 256; j++) {
                    q[256 * b + j] = 0;
                }
                continue;
            }
            float iscale = -127f / max;
            for (int j = 0; j < 256; j++) {
                q[256 * b + j] = Math.min(127, (int) Math.rint(iscale * x[xo + 256 * b + j]));
            }
            d[b] = 1 / iscale;
        }
    }

    /** One weight block times its activation block: the float term ggml adds to the row's sum. */
    private static double block(GgmlType type, MemorySegment seg, long bo, int[] qk, int yk, int[] q0, int y0,
            float[] d, int b) {
        switch (type) {
            case Q8_0 -> {
                int sum = 0;
                for (int j = 0; j < 32; j++) {
                    sum += seg.get(ValueLayout.JAVA_BYTE, bo + 2 + j) * q0[y0 + j];
                }
                return f16(seg, bo) * d[b] * sum;
            }
            case Q4_0 -> {
                int sum = 0;
                for (int j = 0; j < 16; j++) {
                    int v = u8(seg, bo + 2 + j);
                    sum += ((v & 0xF) - 8) * q0[y0 + j] + ((v >> 4) - 8) * q0[y0 + j + 16];
                }
                return f16(seg, bo) * d[b] * sum;
            }
            case Q2_K -> {
                // sum_i scale_i * (q . y)_i and sum_i min_i * sum(y)_i over the 16 sub-blocks of 16
                int sumi = 0, summ = 0;
                for (int e = 0; e < 256; e++) {
                    int sc = u8(seg, bo + e / 16);
                    int qv = (u8(seg, bo + 16 + 32 * (e / 128) + e % 32) >> (2 * ((e % 128) / 32))) & 3;
                    sumi += (sc & 0xF) * qv * qk[yk + e];
                    summ += (sc >> 4) * qk[yk + e];
                }
                return d[b] * f16(seg, bo + 80) * sumi - d[b] * f16(seg, bo + 82) * summ;
            }
            case Q3_K -> {
                // as ggml's vec_dot_q3_K_q8_K: sum_e (scale(e/16) - 32) * q_e * y_e in integers
                int sumi = 0;
                for (int e = 0; e < 256; e++) {
                    int h = e / 128, j = (e % 128) / 32, l = e % 32;
                    int lo = (u8(seg, bo + 32 + 32 * h + l) >> (2 * j)) & 3;
                    int v = lo - (((u8(seg, bo + l) >> (e / 32)) & 1) == 1 ? 0 : 4);
                    sumi += (ScalarKernels.q3Scale(seg, bo + 96, e / 16) - 32) * v * qk[yk + e];
                }
                return d[b] * f16(seg, bo + 108) * sumi;
            }
            case Q4_K, Q5_K -> {
                boolean five = type == GgmlType.Q5_K;
                long qs = bo + (five ? 48 : 16);
                int sumi = 0, summ = 0;
                for (int e = 0; e < 256; e++) {
                    int i = e / 32;
                    int v = u8(seg, qs + 32 * (e / 64) + e % 32);
                    v = (e % 64) < 32 ? v & 0xF : v >> 4;
                    if (five) {
                        v += ((u8(seg, bo + 16 + e % 32) >> i) & 1) << 4;
                    }
                    sumi += ScalarKernels.kScale(seg, bo + 4, i) * v * qk[yk + e];
                    summ += ScalarKernels.kMin(seg, bo + 4, i) * qk[yk + e];
                }
                return d[b] * f16(seg, bo) * sumi - d[b] * f16(seg, bo + 2) * summ;
            }
            case Q6_K -> {
                int sumi = 0;
                for (int e = 0; e < 256; e++) {
                    int h = e / 128, s = (e % 128) / 32, l = e % 32;
                    int ql = u8(seg, bo + 64 * h + 32 * (s % 2) + l);
                    int qh = u8(seg, bo + 128 + 32 * h + l);
                    int v = ((s < 2 ? ql & 0xF : ql >> 4) | ((qh >> (2 * s)) & 3) << 4) - 32;
                    sumi += seg.get(ValueLayout.JAVA_BYTE, bo + 192 + e / 16) * v * qk[yk + e];
                }
                return d[b] * f16(seg, bo + 208) * sumi;
            }
            default -> throw new UnsupportedOperationException(type.toString());
        }
    }

    private static int u8(MemorySegment seg, long off) {
        return Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, off));
    }

    private static float f16(MemorySegment seg, long off) {
        return Float.float16ToFloat((short) (u8(seg, off) | u8(seg, off + 1) << 8));
    }
}
