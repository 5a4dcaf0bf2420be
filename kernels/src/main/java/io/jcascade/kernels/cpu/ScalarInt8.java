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
 * <p>Per token the activation row is quantized like ggml's {@code quantize_row_q8_0} on x86
 * ({@code d = amax / 127} stored as fp16, {@code q = rint(x * (127 / amax))}) for
 * Q8_0/Q4_0 weights, or like {@code quantize_row_q8_K} ({@code iscale = -127 / max} where
 * {@code max} is the signed element of largest magnitude, {@code q = min(127, nearest_int(iscale * x))},
 * float {@code d = 1 / iscale}) for K-quants. The integer products are summed and scaled in the float
 * order of ggml's x86 kernels ({@link #row}), so that results are bit for bit those of llama.cpp
 * on an AVX2 machine.
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
        matmul(w, x, xOffset, xStride, out, outOffset, outStride, nTokens, false);
    }

    /**
     * As {@link #matmul(WeightMatrix, float[], int, int, float[], int, int, int)}, with Q4_K rows
     * summed in the super-block order of interleaved Q4_K when {@code superBlockOrder} ({@link #row}).
     */
    static void matmul(WeightMatrix w, float[] x, int xOffset, int xStride, float[] out, int outOffset, int outStride,
            int nTokens, boolean superBlockOrder) {
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
                out[outOffset + t * outStride + r] = row(w, r, q, d, superBlockOrder);
            }
        }
    }

    /**
     * One weight row times the quantized activations, in the float order of ggml's x86 kernels
     * (what {@link Int8Dot} reproduces): per block (Q8_0/Q4_0) or super-block (K-quants) eight
     * integer lanes, lane l summing the products of the elements whose index mod 32 lies in
     * [4l, 4l + 4) (times their sub-block scales), each multiply-added in float into lane l of an
     * accumulator with the block's scale; the lanes summed at the end as
     * {@code ((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7))}. Q4_0 matrices whose row count is a
     * multiple of 8 are repacked by llama.cpp (8 rows interleaved) and summed per block instead:
     * {@code acc = fma(sum of the block's 32 products, d_w * d_x, acc)}.
     *
     * <p>With {@code superBlockOrder}, Q4_K rows are summed as jcascade's interleaved Q4_K layout
     * sums them (its own order, not llama.cpp's): per super-block the exact integer sums
     * {@code S = sum(sc_i * q * x)} and {@code M = sum(m_i * x)}, then
     * {@code acc = fma(S, d_w * d_x, acc)} and {@code accMin = fma(M, dmin_w * d_x, accMin)}, and
     * the row is {@code acc - accMin}.
     */
    static float row(WeightMatrix w, int r, int[] q, float[] d, boolean superBlockOrder) {
        GgmlType type = w.type();
        int n = w.cols();
        MemorySegment seg = w.data();
        long base = r * type.rowBytes(n);
        float[] acc = new float[8];
        float tail = 0; // Q5_K's running min term; repacked Q4_0's sum; super-block order Q4_K's sum
        float minTail = 0; // super-block order Q4_K's mins
        float[] minLanes = new float[4]; // Q4_K: lane k accumulates the mins of sub-blocks 2k, 2k+1
        boolean repackedQ4_0 = type == GgmlType.Q4_0 && w.rows() % 8 == 0;
        for (int b = 0; b < n / type.blockSize(); b++) {
            long bo = base + (long) type.typeSize() * b;
            int[] lanes = new int[8];
            switch (type) {
                case Q8_0, Q4_0 -> {
                    int sum = 0;
                    for (int j = 0; j < 32; j++) {
                        int wq = type == GgmlType.Q8_0 ? seg.get(ValueLayout.JAVA_BYTE, bo + 2 + j)
                                : ((u8(seg, bo + 2 + j % 16) >> (j < 16 ? 0 : 4)) & 0xF) - 8;
                        lanes[j / 4] += wq * q[32 * b + j];
                        sum += wq * q[32 * b + j];
                    }
                    float dd = f16(seg, bo) * d[b];
                    if (repackedQ4_0) {
                        tail = Math.fma((float) sum, dd, tail);
                    } else {
                        lanes(acc, dd, lanes);
                    }
                }
                case Q2_K -> {
                    int[] mins = new int[8];
                    for (int e = 0; e < 256; e++) {
                        int sc = u8(seg, bo + e / 16);
                        int qv = (u8(seg, bo + 16 + 32 * (e / 128) + e % 32) >> (2 * ((e % 128) / 32))) & 3;
                        lanes[(e % 32) / 4] += (sc & 0xF) * qv * q[256 * b + e];
                        mins[e / 32] += (sc >> 4) * q[256 * b + e]; // lane m: min groups 2m, 2m+1
                    }
                    lanes(acc, -d[b] * f16(seg, bo + 82), mins);
                    lanes(acc, d[b] * f16(seg, bo + 80), lanes);
                }
                case Q3_K -> {
                    for (int e = 0; e < 256; e++) {
                        int h = e / 128, j = (e % 128) / 32, l = e % 32;
                        int lo = (u8(seg, bo + 32 + 32 * h + l) >> (2 * j)) & 3;
                        int v = lo - (((u8(seg, bo + l) >> (e / 32)) & 1) == 1 ? 0 : 4);
                        lanes[(e % 32) / 4] += (ScalarKernels.q3Scale(seg, bo + 96, e / 16) - 32) * v * q[256 * b + e];
                    }
                    lanes(acc, d[b] * f16(seg, bo + 108), lanes);
                }
                case Q4_K, Q5_K -> {
                    boolean five = type == GgmlType.Q5_K;
                    long qs = bo + (five ? 48 : 16);
                    int[] mins = new int[4];
                    for (int e = 0; e < 256; e++) {
                        int i = e / 32;
                        int v = u8(seg, qs + 32 * (e / 64) + e % 32);
                        v = (e % 64) < 32 ? v & 0xF : v >> 4;
                        if (five) {
                            v += ((u8(seg, bo + 16 + e % 32) >> i) & 1) << 4;
                        }
                        lanes[(e % 32) / 4] += ScalarKernels.kScale(seg, bo + 4, i) * v * q[256 * b + e];
                        mins[i / 2] += ScalarKernels.kMin(seg, bo + 4, i) * q[256 * b + e];
                    }
                    if (superBlockOrder && !five) {
                        int sum = 0;
                        for (int l = 0; l < 8; l++) {
                            sum += lanes[l];
                        }
                        tail = Math.fma((float) sum, f16(seg, bo) * d[b], tail);
                        minTail = Math.fma((float) (mins[0] + mins[1] + mins[2] + mins[3]), f16(seg, bo + 2) * d[b],
                                minTail);
                        continue;
                    }
                    float dmin = -d[b] * f16(seg, bo + 2);
                    if (five) {
                        tail = Math.fma(dmin, (float) (mins[0] + mins[1] + mins[2] + mins[3]), tail);
                    } else {
                        for (int k = 0; k < 4; k++) {
                            minLanes[k] = Math.fma(dmin, (float) mins[k], minLanes[k]);
                        }
                    }
                    lanes(acc, d[b] * f16(seg, bo), lanes);
                }
                case Q6_K -> {
                    for (int e = 0; e < 256; e++) {
                        int h = e / 128, s = (e % 128) / 32, l = e % 32;
                        int ql = u8(seg, bo + 64 * h + 32 * (s % 2) + l);
                        int qh = u8(seg, bo + 128 + 32 * h + l);
                        int v = ((s < 2 ? ql & 0xF : ql >> 4) | ((qh >> (2 * s)) & 3) << 4) - 32;
                        lanes[(e % 32) / 4] += seg.get(ValueLayout.JAVA_BYTE, bo + 192 + e / 16) * v * q[256 * b + e];
                    }
                    lanes(acc, d[b] * f16(seg, bo + 208), lanes);
                }
                default -> throw new UnsupportedOperationException(type.toString());
            }
        }
        if (repackedQ4_0) {
            return tail;
        }
        if (superBlockOrder && type == GgmlType.Q4_K) {
            return tail - minTail;
        }
        if (type == GgmlType.Q4_K) {
            tail = (minLanes[0] + minLanes[2]) + (minLanes[1] + minLanes[3]);
        }
        return GgmlMath.hsum8(acc, 0) + tail;
    }

    /** acc[l] = fma(scale, lanes[l], acc[l]) for the first lanes.length lanes. */
    private static void lanes(float[] acc, float scale, int[] lanes) {
        for (int l = 0; l < lanes.length; l++) {
            acc[l] = Math.fma(scale, (float) lanes[l], acc[l]);
        }
    }


    /** ggml's x86 quantize_row_q8_0: per 32, d = amax/127 (fp16 stored), q = rint(x * (127/amax)). */
    static void quantizeQ8_0(float[] x, int xo, int n, int[] q, float[] d) {
        for (int b = 0; b < n / 32; b++) {
            float amax = 0;
            for (int j = 0; j < 32; j++) {
                amax = Math.max(amax, Math.abs(x[xo + 32 * b + j]));
            }
            d[b] = Float.float16ToFloat(Float.floatToFloat16(amax / 127f));
            float id = amax != 0 ? 127f / amax : 0f;
            for (int j = 0; j < 32; j++) {
                q[32 * b + j] = (int) Math.rint(x[xo + 32 * b + j] * id);
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

    private static int u8(MemorySegment seg, long off) {
        return Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, off));
    }

    private static float f16(MemorySegment seg, long off) {
        return Float.float16ToFloat((short) (u8(seg, off) | u8(seg, off + 1) << 8));
    }
}
