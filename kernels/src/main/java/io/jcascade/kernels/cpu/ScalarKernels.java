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
 * <p>Two matmul references for quantized weights: the default multiplies the exactly dequantized
 * weights with the float activations (accumulating in double); {@link #int8Activations()} is the
 * reference of llama.cpp's algorithm, which {@link PanamaKernels} runs by default: the activations
 * are first quantized to Q8_0 blocks (for Q8_0/Q4_0 weights) or Q8_K blocks (for K-quants), each
 * block of weights and activations is multiplied in integers, and the integer sum is scaled once
 * per block in float.
 *
 * <pre>{@code
 * CpuKernels ref = new ScalarKernels();
 * float[] row = new float[w.cols()];
 * ref.dequantizeRow(w, 0, row, 0);
 * CpuKernels ref8 = ScalarKernels.int8Activations();   // same results as llama.cpp's vec_dot
 * }</pre>
 */
public final class ScalarKernels implements CpuKernels {

    private final boolean int8;

    /** A reference kernel set with float activations; it always runs on the calling thread. */
    public ScalarKernels() {
        this(false);
    }

    private ScalarKernels(boolean int8) {
        this.int8 = int8;
    }

    /** The reference of the 8-bit activation path: quantized weights times Q8_0/Q8_K activations. */
    public static ScalarKernels int8Activations() {
        return new ScalarKernels(true);
    }

    /** Whether quantized weights multiply 8-bit quantized activations. */
    public boolean usesInt8Activations() {
        return int8;
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
            case F32, F16, BF16, Q8_0, Q4_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> { }
            default -> throw unsupported(w.type());
        }
        if (int8 && w.type().isQuantized()) {
            ScalarInt8.matmul(w, x, xOffset, xStride, out, outOffset, outStride, nTokens);
            return;
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
            case Q2_K -> {
                // block of 256: uint8 scales[16] (low nibble scale, high nibble min), uint8 qs[64]
                // (2-bit quants), fp16 d, fp16 dmin. Element order: 2 halves of 128; in a half, the
                // shift s = 0,2,4,6 of bytes qs[32h + l] (l < 32) gives elements 128h + 32*(s/2) + l,
                // sub-block of 16 elements i uses scales[i].
                for (int b = 0; b < n / 256; b++) {
                    long bo = base + 84L * b;
                    float d = Float.float16ToFloat((short) u16(seg, bo + 80));
                    float dmin = Float.float16ToFloat((short) u16(seg, bo + 82));
                    for (int e = 0; e < 256; e++) {
                        int half = e / 128, s = (e % 128) / 32, l = e % 32;
                        int sc = Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, bo + e / 16));
                        int q = (Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, bo + 16 + 32 * half + l)) >> (2 * s)) & 3;
                        out[outOffset + 256 * b + e] = d * (sc & 0xF) * q - dmin * (sc >> 4);
                    }
                }
            }
            case Q3_K -> {
                // block of 256: uint8 hmask[32] (high bits), uint8 qs[64] (low 2 bits), uint8
                // scales[12] (16 packed 6-bit scales, see q3Scale), fp16 d. Element e: half
                // h = e/128, quarter j = (e%128)/32, l = e%32; low bits are bits 2j..2j+1 of
                // qs[32h + l], the high bit is bit e/32 of hmask[l]; the 3-bit value is the low
                // bits minus 4 when the high bit is clear; value d * (scale(e/16) - 32) * q.
                for (int b = 0; b < n / 256; b++) {
                    long bo = base + 110L * b;
                    float d = Float.float16ToFloat((short) u16(seg, bo + 108));
                    for (int e = 0; e < 256; e++) {
                        int h = e / 128, j = (e % 128) / 32, l = e % 32;
                        int lo = (Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, bo + 32 + 32 * h + l)) >> (2 * j)) & 3;
                        int hi = (Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, bo + l)) >> (e / 32)) & 1;
                        int q = lo - (hi == 1 ? 0 : 4);
                        out[outOffset + 256 * b + e] = d * (q3Scale(seg, bo + 96, e / 16) - 32) * q;
                    }
                }
            }
            case Q4_K, Q5_K -> {
                // Q4_K block of 256: fp16 d, fp16 dmin, uint8 scales[12], uint8 qs[128].
                // Q5_K block of 256: fp16 d, fp16 dmin, uint8 scales[12], uint8 qh[32], uint8 qs[128].
                // Sub-block i (32 elements, i < 8) has a 6-bit scale and min (see kScale/kMin).
                // Element e: chunk c = e/64 uses bytes qs[32c + l] (l = e%32); the low nibble for
                // e%64 < 32, the high one otherwise; Q5_K adds bit (e/32) of qh[l] as the value 16.
                boolean five = w.type() == GgmlType.Q5_K;
                int bs = five ? 176 : 144;
                for (int b = 0; b < n / 256; b++) {
                    long bo = base + (long) bs * b;
                    float d = Float.float16ToFloat((short) u16(seg, bo));
                    float dmin = Float.float16ToFloat((short) u16(seg, bo + 2));
                    long qs = bo + (five ? 48 : 16);
                    for (int e = 0; e < 256; e++) {
                        int i = e / 32, c = e / 64, l = e % 32;
                        int q = Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, qs + 32 * c + l));
                        q = (e % 64) < 32 ? q & 0xF : q >> 4;
                        if (five) {
                            int h = Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, bo + 16 + l));
                            q += ((h >> i) & 1) << 4;
                        }
                        out[outOffset + 256 * b + e] = d * kScale(seg, bo + 4, i) * q - dmin * kMin(seg, bo + 4, i);
                    }
                }
            }
            case Q6_K -> {
                // block of 256: uint8 ql[128] (low 4 bits), uint8 qh[64] (high 2 bits), int8 scales[16],
                // fp16 d. Element e: half h = e/128, quarter s = (e%128)/32, l = e%32; low bits are
                // the low (s < 2) or high (s >= 2) nibble of ql[64h + 32*(s%2) + l], high bits are
                // bits 2s..2s+1 of qh[32h + l]; value (q - 32) * d * scales[e/16].
                for (int b = 0; b < n / 256; b++) {
                    long bo = base + 210L * b;
                    float d = Float.float16ToFloat((short) u16(seg, bo + 208));
                    for (int e = 0; e < 256; e++) {
                        int h = e / 128, s = (e % 128) / 32, l = e % 32;
                        int ql = Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, bo + 64 * h + 32 * (s % 2) + l));
                        int qh = Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, bo + 128 + 32 * h + l));
                        int q = (s < 2 ? ql & 0xF : ql >> 4) | ((qh >> (2 * s)) & 3) << 4;
                        byte sc = seg.get(ValueLayout.JAVA_BYTE, bo + 192 + e / 16);
                        out[outOffset + 256 * b + e] = d * sc * (q - 32);
                    }
                }
            }
            default -> throw unsupported(w.type());
        }
    }

    /**
     * The 6-bit scale of sub-block {@code i} (0..7) from the 12 packed bytes at {@code sc}: for
     * i < 4 the low 6 bits of byte i; else the low nibble of byte i+4 with the top 2 bits of byte
     * i-4 above it.
     */
    static int kScale(MemorySegment seg, long sc, int i) {
        if (i < 4) {
            return seg.get(ValueLayout.JAVA_BYTE, sc + i) & 63;
        }
        return (seg.get(ValueLayout.JAVA_BYTE, sc + i + 4) & 0xF)
                | (Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, sc + i - 4)) >> 6) << 4;
    }

    /**
     * The 6-bit scale (0..63, before the -32) of sub-block {@code i} (0..15, 16 elements each) of a
     * Q3_K block from the 12 packed bytes at {@code sc}: the low 4 bits are the low (i < 8) or high
     * (i >= 8) nibble of byte i % 8, the high 2 bits are bits 2(i/4)..2(i/4)+1 of byte 8 + i % 4.
     */
    static int q3Scale(MemorySegment seg, long sc, int i) {
        int b = Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, sc + i % 8));
        int lo = i < 8 ? b & 0xF : b >> 4;
        int hi = (Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, sc + 8 + i % 4)) >> (2 * (i / 4))) & 3;
        return lo | hi << 4;
    }

    /** The 6-bit min of sub-block {@code i}: low 6 bits of byte i+4, or the high nibble of byte i+4 with the top 2 bits of byte i. */
    static int kMin(MemorySegment seg, long sc, int i) {
        if (i < 4) {
            return seg.get(ValueLayout.JAVA_BYTE, sc + i + 4) & 63;
        }
        return (Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, sc + i + 4)) >> 4)
                | (Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, sc + i)) >> 6) << 4;
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
            float[] freqFactors, boolean neox, float freqScale, float mscale) {
        float thetaScale = (float) Math.pow(freqBase, (double) (-2.0f / ropeDims));
        int half = ropeDims / 2;
        for (int h = 0; h < nHeads; h++) {
            int base = offset + h * headDim;
            float theta = pos;
            for (int i = 0; i < half; i++) {
                float angle = freqScale * (theta / (freqFactors != null ? freqFactors[i] : 1.0f));
                float cos = GgmlMath.cosf(angle) * mscale;
                float sin = GgmlMath.sinf(angle) * mscale;
                int a = neox ? base + i : base + 2 * i;
                int b = neox ? base + i + half : base + 2 * i + 1;
                float x0 = x[a];
                float x1 = x[b];
                x[a] = Math.fma(x0, cos, -(x1 * sin)); // ggml's contraction, see PanamaKernels.rope
                x[b] = Math.fma(x0, sin, x1 * cos);
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
            out[outOffset + i] = GgmlMath.swiglu(gate[gateOffset + i], up[upOffset + i], i, n);
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
