package io.jcascade.kernels.cpu;

import io.jcascade.gguf.GgmlType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * A reusable buffer of activations quantized to 8 bits as llama.cpp does before multiplying them
 * with quantized weights: Q8_0 blocks of 32 for Q8_0/Q4_0 weights, Q8_K blocks of 256 for
 * K-quants. The quants are kept widened to {@code int} (one load feeds the integer dot products
 * without a conversion); the arrays grow to the largest matmul seen and are then reused, so
 * quantizing allocates nothing in steady state.
 *
 * <p>Layout, for token {@code t} of a batch of rows of {@code n}: quants {@code q[t*n + i]};
 * block scales (Q8_0: {@code d[t*(n/32) + b]}, the fp16-rounded scale of block b of 32; Q8_K:
 * {@code d[t*(n/256) + b]}, the float scale of super-block b of 256); for Q8_K also {@code bsums[t*(n/16) + g]}, the sum of
 * the quants of group g of 16 (ggml's {@code block_q8_K.bsums}). The quants are also kept as shorts,
 * {@code qs[t*n + i]}, for the 16-bit-lane kernels of {@link Int8Dot}.
 *
 * <pre>{@code
 * Q8Activations a = new Q8Activations();
 * a.quantize(GgmlType.Q4_K, x, 0, dim, dim, 1);
 * float y = Int8Dot.dot(w.type(), w.data(), 0, dim, a, 0);
 * }</pre>
 */
final class Q8Activations {

    int[] q = new int[0];
    /** The same quants as {@link #q}, as shorts: the Q8_0/Q4_0 kernels multiply them in 16-bit lanes. */
    short[] qs = new short[0];
    /**
     * The same quants with each chunk of 32 transposed as 4 x 8: {@code qt[32m + 8k + l] = q[32m + 4l + k]}.
     * Lane l of the 8-lane kernels of {@link Int8Dot} then sums elements 4l .. 4l+3 of a chunk,
     * which is the grouping of ggml's x86 dot products (and so their float rounding).
     */
    int[] qt = new int[0];
    float[] d = new float[0];
    int[] bsums = new int[0];
    /** Elements per token row. */
    int n;
    /** Whether the blocks are Q8_K (else Q8_0). */
    boolean k;

    /** The dequantized quants ({@link #dequantize}), {@code xf[t*n + i]}; grows like {@link #q}. */
    float[] xf = new float[0];

    /** The quants {@link #qs} in a {@link PackedMatrix} layout's element order ({@link #permute}). */
    short[] qp = new short[0];
    /** Dequantized quants in a packed element order ({@link #dequantizePermuted}). */
    float[] xp = new float[0];
    /**
     * Adjacent quants paired into ints ({@link #pair}): {@code pairs[i]} holds {@code qs[2i]} in its
     * low and {@code qs[2i+1]} in its high 16 bits, so one broadcast of it fills the short lanes
     * (2j, 2j+1) of a vector with elements (2i, 2i+1) for every row j of an interleaved Q4_0 group.
     */
    int[] pairs = new int[0];

    /**
     * The quants laid out for interleaved Q8_0 ({@link #halves}): per block of 32, 32 bytes in
     * {@link PackedMatrix#PERM_Q8_0} order, elements {@code 4g, 4g+1} (g = 0..7), then
     * {@code 4g+2, 4g+3}. The kernel copies each half into both halves of a vector in registers, one
     * copy per row of a unit: a copy in memory (64 bytes a block) made an 8192-column row's
     * activations too large for L1 beside the streamed weights (17 against 23 GB/s per core).
     */
    byte[] q8Halves = new byte[0];

    /** Fills {@link #q8Halves} for the first {@code nTokens} tokens. */
    void halves(int nTokens) {
        int total = n * nTokens;
        if (q8Halves.length < total) {
            q8Halves = new byte[qs.length];
        }
        for (int b = 0; b < total / 32; b++) {
            for (int i = 0; i < 32; i++) {
                q8Halves[32 * b + i] = (byte) qs[32 * b + PackedMatrix.PERM_Q8_0[i]];
            }
        }
    }

    /**
     * Sums of the Q8_K quants of each sub-block of 32 ({@link #sums32}): {@code sums32[t*(n/32) + c]
     * = bsums[2c] + bsums[2c+1]} of token t, which interleaved Q4_K's mins multiply.
     */
    int[] sums32 = new int[0];

    /** Lays the first {@code nTokens} tokens out for the integer kernels of an interleaved {@code type} matrix. */
    void interleaved(GgmlType type, int nTokens) {
        if (type == GgmlType.Q8_0) {
            halves(nTokens);
            return;
        }
        pair(nTokens);
        if (type == GgmlType.Q4_K) {
            int total = n * nTokens / 32;
            if (sums32.length < total) {
                sums32 = new int[qs.length / 32];
            }
            for (int i = 0; i < total; i++) {
                sums32[i] = bsums[2 * i] + bsums[2 * i + 1];
            }
        }
    }

    /** Fills {@link #pairs} for the first {@code nTokens} tokens. */
    void pair(int nTokens) {
        int total = n * nTokens / 2;
        if (pairs.length < total) {
            pairs = new int[qs.length / 2];
        }
        for (int i = 0; i < total; i++) {
            pairs[i] = (qs[2 * i] & 0xFFFF) | (qs[2 * i + 1] << 16);
        }
    }

    /**
     * Fills {@link #qp} with the first {@code nTokens} tokens' quants in {@code packed}'s element
     * order: within each group of {@code perm.length} elements, {@code qp[base + i] = qs[base + perm[i]]}.
     */
    void permute(int[] perm, int nTokens) {
        int total = n * nTokens;
        if (qp.length < total) {
            qp = new short[qs.length];
        }
        int g = perm.length;
        for (int base = 0; base < total; base += g) {
            for (int i = 0; i < g; i++) {
                qp[base + i] = qs[base + perm[i]];
            }
        }
    }

    /** {@link #dequantize}d activations in the element order {@code perm} (as {@link #permute}); grows like {@link #xf}. */
    float[] dequantizePermuted(int[] perm, int nTokens) {
        float[] x = dequantize(nTokens);
        int total = n * nTokens;
        if (xp.length < total) {
            xp = new float[total];
        }
        float[] out = xp;
        int g = perm.length;
        for (int base = 0; base < total; base += g) {
            for (int i = 0; i < g; i++) {
                out[base + i] = x[base + perm[i]];
            }
        }
        return out;
    }

    /**
     * The quantized activations back as floats, token t at {@code xf[t*n ..)}: element i of block b
     * is {@code d_b * q_i}. For Q8_0 blocks this is exact (fp16 scale times an integer of at most 7
     * bits fits a float), so a float dot product with Q8_0/Q4_0 weights (also exact as floats)
     * differs from the integer one only in float rounding of the sum; for Q8_K it is rounded once
     * per element (relative 2^-24).
     */
    float[] dequantize(int nTokens) {
        int total = n * nTokens;
        if (xf.length < total) {
            xf = new float[total];
        }
        int block = k ? 256 : 32;
        for (int i = 0; i < total; i++) {
            xf[i] = d[i / block] * q[i]; // blocks never straddle tokens: n is a multiple of block
        }
        return xf;
    }

    /** The activation block type that weights of {@code type} multiply with. */
    static boolean usesQ8K(GgmlType type) {
        return type.blockSize() == 256;
    }

    /**
     * Quantizes {@code nTokens} rows of {@code n} floats, token t at {@code x[xOffset + t*xStride]},
     * into the blocks that {@code weightType} multiplies with.
     */
    void quantize(GgmlType weightType, float[] x, int xOffset, int xStride, int n, int nTokens) {
        this.n = n;
        this.k = usesQ8K(weightType);
        int total = n * nTokens;
        if (q.length < total) {
            q = new int[total];
            qs = new short[total];
            qt = new int[total];
            d = new float[total / 32];
            bsums = new int[total / 16];
        }
        for (int t = 0; t < nTokens; t++) {
            if (k) {
                quantizeQ8K(x, xOffset + t * xStride, t * n);
            } else {
                quantizeQ8_0(x, xOffset + t * xStride, t * n);
            }
        }
        for (int m = 0; m < total; m += 32) {
            for (int j = 0; j < 32; j++) {
                qt[m + 8 * (j & 3) + (j >> 2)] = q[m + j];
            }
        }
    }

    /**
     * As ggml's x86 {@code quantize_row_q8_0} (AVX2, what llama.cpp runs on these machines, also in
     * its repacked and tinyBLAS paths): per block of 32, {@code d = amax / 127} stored as fp16,
     * {@code q = rint(x * (127 / amax))}, rounding half to even.
     */
    private void quantizeQ8_0(float[] x, int xo, int qo) {
        for (int b = 0; b < n / 32; b++) {
            int xb = xo + 32 * b;
            float amax = 0;
            for (int j = 0; j < 32; j++) {
                amax = Math.max(amax, Math.abs(x[xb + j]));
            }
            d[qo / 32 + b] = Float.float16ToFloat(Float.floatToFloat16(amax / 127f));
            float id = amax != 0 ? 127f / amax : 0f;
            for (int j = 0; j < 32; j++) {
                int qv = (int) Math.rint(x[xb + j] * id);
                q[qo + 32 * b + j] = qv;
                qs[qo + 32 * b + j] = (short) qv;
            }
        }
    }

    /**
     * As ggml's {@code quantize_row_q8_K}: per block of 256, {@code max} the element of largest
     * magnitude (the first one on ties), {@code iscale = -127 / max},
     * {@code q = min(127, nearest_int(iscale * x))} (nearest_int rounds half to even),
     * {@code d = 1 / iscale}, and the sums of each 16 quants.
     */
    private void quantizeQ8K(float[] x, int xo, int qo) {
        for (int b = 0; b < n / 256; b++) {
            int xb = xo + 256 * b;
            int qb = qo + 256 * b;
            float max = 0, amax = 0;
            for (int j = 0; j < 256; j++) {
                float a = Math.abs(x[xb + j]);
                if (a > amax) {
                    amax = a;
                    max = x[xb + j];
                }
            }
            int db = qo / 256 + b;
            if (amax == 0) {
                d[db] = 0;
                java.util.Arrays.fill(q, qb, qb + 256, 0);
                java.util.Arrays.fill(qs, qb, qb + 256, (short) 0);
                java.util.Arrays.fill(bsums, qb / 16, qb / 16 + 16, 0);
                continue;
            }
            float iscale = -127f / max;
            for (int j = 0; j < 256; j++) {
                int qv = Math.min(127, (int) Math.rint(iscale * x[xb + j]));
                q[qb + j] = qv;
                qs[qb + j] = (short) qv;
            }
            for (int g = 0; g < 16; g++) {
                int s = 0;
                for (int j = 0; j < 16; j++) {
                    s += q[qb + 16 * g + j];
                }
                bsums[qb / 16 + g] = s;
            }
            d[db] = 1 / iscale;
        }
    }

    /** The machine's vectors (4 to 16 lanes: they divide a block of 32). */
    private static final VectorSpecies<Float> FP = FloatVector.SPECIES_PREFERRED;
    /** Adding and subtracting 1.5 * 2^23 rounds a float of magnitude below 2^22 to an integer, half to even: Math.rint. */
    private static final float RINT = 0x1.8p23f;

    /**
     * The activations of the float prompt path for tokens {@code [t0, t1)}: each row quantized as
     * {@link #quantize} does and back as {@link #dequantize} gives it ({@code d * q}), in the
     * element order {@code perm} (per group of its length, as {@link #dequantizePermuted}; null for
     * the natural order), token t at {@code out[t * n ..)}. The same floats, bit for bit, without
     * the integer arrays; it touches only those tokens' rows, so threads may split a batch.
     */
    static void quantizedFloats(GgmlType weightType, float[] x, int xOffset, int xStride, int n, int t0, int t1,
            int[] perm, float[] out) {
        boolean q8k = usesQ8K(weightType);
        int block = q8k ? 256 : 32;
        float[] row = perm == null ? null : rowBuffer(n);
        for (int t = t0; t < t1; t++) {
            float[] v = perm == null ? out : row;
            int o = perm == null ? t * n : 0;
            for (int b = 0; b < n / block; b++) {
                int xb = xOffset + t * xStride + block * b;
                if (q8k) {
                    blockQ8K(x, xb, v, o + block * b);
                } else {
                    blockQ8_0(x, xb, v, o + block * b);
                }
            }
            if (perm != null) {
                int g = perm.length;
                for (int base = 0; base < n; base += g) {
                    for (int i = 0; i < g; i++) {
                        out[t * n + base + i] = row[base + perm[i]];
                    }
                }
            }
        }
    }

    private static final ThreadLocal<float[]> ROW = ThreadLocal.withInitial(() -> new float[0]);

    private static float[] rowBuffer(int n) {
        float[] r = ROW.get();
        if (r.length < n) {
            r = new float[n];
            ROW.set(r);
        }
        return r;
    }

    /** One Q8_0 block of 32 quantized as {@link #quantizeQ8_0} and back as floats, to {@code v[vo, vo + 32)}. */
    private static void blockQ8_0(float[] x, int xb, float[] v, int vo) {
        FloatVector m = FloatVector.zero(FP);
        for (int j = 0; j < 32; j += FP.length()) {
            m = m.lanewise(VectorOperators.MAX, FloatVector.fromArray(FP, x, xb + j).abs());
        }
        float amax = m.reduceLanes(VectorOperators.MAX);
        float d = Float.float16ToFloat(Float.floatToFloat16(amax / 127f));
        float id = amax != 0 ? 127f / amax : 0f;
        for (int j = 0; j < 32; j += FP.length()) {
            dequantized(FloatVector.fromArray(FP, x, xb + j).mul(id), d).intoArray(v, vo + j);
        }
    }

    /** One Q8_K block of 256 as {@link #quantizeQ8K} and back, to {@code v[vo, vo + 256)}. */
    private static void blockQ8K(float[] x, int xb, float[] v, int vo) {
        FloatVector m = FloatVector.zero(FP);
        for (int j = 0; j < 256; j += FP.length()) {
            m = m.lanewise(VectorOperators.MAX, FloatVector.fromArray(FP, x, xb + j).abs());
        }
        float amax = m.reduceLanes(VectorOperators.MAX);
        if (Float.isNaN(amax)) { // quantizeQ8K's maximum passes over NaN elements
            amax = 0;
            for (int j = 0; j < 256; j++) {
                amax = Math.abs(x[xb + j]) > amax ? Math.abs(x[xb + j]) : amax;
            }
        }
        if (amax == 0) {
            java.util.Arrays.fill(v, vo, vo + 256, 0f);
            return;
        }
        float max = 0;
        for (int j = 0; j < 256; j++) { // the first element of that magnitude, sign and all
            if (Math.abs(x[xb + j]) == amax) {
                max = x[xb + j];
                break;
            }
        }
        float iscale = -127f / max;
        float d = 1 / iscale;
        for (int j = 0; j < 256; j += FP.length()) {
            dequantized(FloatVector.fromArray(FP, x, xb + j).mul(iscale), d).intoArray(v, vo + j);
        }
    }

    /**
     * {@code d * min(127, (int) Math.rint(y))} lane by lane, for |y| at most about 127 (NaN
     * lanes give 0 quants, as the int cast does).
     */
    private static FloatVector dequantized(FloatVector y, float d) {
        FloatVector r = y.add(RINT).sub(RINT).min(127f);
        return ((FloatVector) r.convert(VectorOperators.F2I, 0).convert(VectorOperators.I2F, 0)).mul(d);
    }
}
