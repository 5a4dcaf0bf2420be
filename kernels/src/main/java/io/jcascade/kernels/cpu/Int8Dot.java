package io.jcascade.kernels.cpu;

import io.jcascade.gguf.GgmlType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API kernels for quantized weights: integer dot products of weight rows with
 * {@link Q8Activations} (llama.cpp's {@code vec_dot_q8_0_q8_0}, {@code vec_dot_q4_0_q8_0},
 * {@code vec_dot_q2_K_q8_K}, {@code vec_dot_q3_K_q8_K}, {@code vec_dot_q4_K_q8_K}, {@code vec_dot_q5_K_q8_K},
 * {@code vec_dot_q6_K_q8_K}), and the K-quants' float dequantization.
 *
 * <p>On machines with 512-bit vectors, Q8_0, Q4_0, Q4_K and Q6_K use the 16-bit-lane kernels
 * ({@link #dotWide}, described where they are defined). The portable kernels below work on 8
 * elements at a time: 8 weight bytes are loaded into a 64-bit byte vector,
 * unpacked in byte lanes (nibbles, high bits), widened to 8 int lanes ({@code B2I}) and multiplied
 * with 8 int activation quants; products of a block (or a sub-block, which is then multiplied by
 * its integer scale) are accumulated in int lanes, and each block's int lanes are converted to
 * float once and multiplied-added with the block's float scale {@code d_w * d_x} into a float
 * accumulator, as ggml's AVX2 code does. Integer sums cannot overflow: the largest, a Q6_K
 * super-block, is below 256 * 32 * 127 * 128 < 2^31.
 *
 * <pre>{@code
 * Q8Activations a = new Q8Activations();
 * a.quantize(GgmlType.Q6_K, x, 0, n, n, 1);
 * float y0 = Int8Dot.dot(GgmlType.Q6_K, w.data(), 0, n, a, 0);
 * }</pre>
 */
final class Int8Dot {

    private static final VectorSpecies<Byte> B8 = ByteVector.SPECIES_64;
    private static final VectorSpecies<Integer> I8 = IntVector.SPECIES_256;
    private static final VectorSpecies<Float> F8 = FloatVector.SPECIES_256;
    private static final VectorSpecies<Integer> I4 = IntVector.SPECIES_128;
    private static final VectorSpecies<Float> F4 = FloatVector.SPECIES_128;
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfInt I32_LE = ValueLayout.JAVA_INT_UNALIGNED.withOrder(LE);

    private Int8Dot() {
    }

    // ---------------------------------------------------------------------------------------------
    // Q8_0 / Q4_0 in 16-bit lanes (AVX-512 class machines)
    //
    // Per block of 32: the weight quants are widened to shorts (B2S), multiplied with the
    // activation quants kept as shorts ({@link Q8Activations#qs}) in 16-bit lanes (|w*x| <= 128*127
    // fits), pair-summed into 16 int lanes and those into ggml's 8 ({@link #quadSum}), converted to
    // float and multiply-added with the block scale d_w * d_x into 8 float lanes, summed at the
    // end of the row as ggml's hsum_float_8: bit for bit ScalarInt8 (Q4_0 in the repacked order).

    /** Whether the 16-bit-lane kernels below run natively (512-bit vectors); otherwise the 8-lane ones. */
    static final boolean WIDE = FloatVector.SPECIES_PREFERRED.vectorBitSize() >= 512;
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    private static final VectorSpecies<Byte> B256 = ByteVector.SPECIES_256;
    private static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;
    private static final VectorSpecies<Short> S512 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;
    private static final VectorSpecies<Float> F512 = FloatVector.SPECIES_512;

    /** Whether {@link #dotWide} handles {@code type} (else use {@link #dot}). */
    static boolean wide(GgmlType type) {
        return WIDE && (type == GgmlType.Q8_0 || type == GgmlType.Q4_0 || type == GgmlType.Q4_K
                || type == GgmlType.Q6_K);
    }

    /** Dot product of the row at byte {@code off} ({@code n} columns) with token {@code t} of {@code a}; needs {@link #wide}. */
    static float dotWide(GgmlType type, MemorySegment seg, long off, int n, Q8Activations a, int t, boolean repacked) {
        int nb = n / 32;
        return switch (type) {
            case Q8_0 -> dotQ8_0w(seg, off, nb, a.qs, t * n, a.d, t * nb);
            case Q4_0 -> repacked ? dotQ4_0w(seg, off, nb, a.qs, t * n, a.d, t * nb) : dot(type, seg, off, n, a, t, false);
            case Q4_K -> dotQ4Kw(seg, off, n, a, t);
            case Q6_K -> dotQ6Kw(seg, off, n, a, t);
            default -> throw new UnsupportedOperationException("no 16-bit-lane kernel for " + type);
        };
    }

    /**
     * Q4_K row (blocks of 144 bytes: fp16 d, fp16 dmin, uint8 scales[12], uint8 qs[128]; chunk c
     * of 64 elements is bytes qs[32c .. 32c+31], low nibbles sub-block 2c, high nibbles 2c+1)
     * . token t's Q8_K quants. Per chunk the 32 bytes are widened once to 32 short lanes, both
     * nibble halves multiplied in shorts (<= 15*127), pair-summed into 16 int lanes, times the
     * sub-block's 6-bit scale, summed in ints over the super-block (< 256*15*127*63 < 2^31); then
     * one float FMA per super-block. The mins term is as in {@link #dotQ45K}.
     */
    private static float dotQ4Kw(MemorySegment seg, long off, int n, Q8Activations a, int t) {
        int qo = t * n;
        short[] q = a.qs;
        int db = qo / 256, bso = qo / 16;
        FloatVector acc = FloatVector.zero(F8);
        float m0 = 0, m1 = 0, m2 = 0, m3 = 0;
        for (int b = 0; b < n / 256; b++) {
            long bo = off + 144L * b;
            long qs = bo + 16;
            int y = qo + 256 * b;
            // The 12 scale bytes unpacked four at a time, as ggml's utmp masks: byte i of
            // scLo/scHi is the 6-bit scale of sub-block i / i + 4, of mLo/mHi the min.
            int u0 = seg.get(I32_LE, bo + 4), u1 = seg.get(I32_LE, bo + 8), u2 = seg.get(I32_LE, bo + 12);
            int scLo = u0 & 0x3f3f3f3f;
            int mLo = u1 & 0x3f3f3f3f;
            int scHi = (u2 & 0x0f0f0f0f) | (((u0 >>> 6) & 0x03030303) << 4);
            int mHi = ((u2 >>> 4) & 0x0f0f0f0f) | (((u1 >>> 6) & 0x03030303) << 4);
            IntVector acci = IntVector.zero(I512);
            float dmin = -a.d[db + b] * f16(seg, bo + 2);
            for (int c = 0; c < 4; c++) {
                ShortVector w = q8w(seg, qs + 32 * c); // bytes sign-extended: the masks below undo it
                ShortVector lo = w.and((short) 0xF);
                ShortVector hi = w.lanewise(VectorOperators.ASHR, 4).and((short) 0xF);
                IntVector s0 = pairSumI(lo.mul(ShortVector.fromArray(S512, q, y + 64 * c)));
                IntVector s1 = pairSumI(hi.mul(ShortVector.fromArray(S512, q, y + 64 * c + 32)));
                // sub-blocks 2c and 2c+1: byte (2c)&3 and (2c+1)&3 of the low (c < 2) or high word
                int sc = c < 2 ? scLo : scHi, m = c < 2 ? mLo : mHi;
                int sh = 16 * (c & 1);
                acci = acci.add(s0.mul((sc >>> sh) & 0xFF)).add(s1.mul((sc >>> (sh + 8)) & 0xFF));
                int g = bso + 16 * b + 4 * c;
                float mc = ((m >>> sh) & 0xFF) * (a.bsums[g] + a.bsums[g + 1])
                        + ((m >>> (sh + 8)) & 0xFF) * (a.bsums[g + 2] + a.bsums[g + 3]);
                switch (c) { // ggml's four min lanes (see dotQ45K)
                    case 0 -> m0 = Math.fma(dmin, mc, m0);
                    case 1 -> m1 = Math.fma(dmin, mc, m1);
                    case 2 -> m2 = Math.fma(dmin, mc, m2);
                    default -> m3 = Math.fma(dmin, mc, m3);
                }
            }
            acc = toFloat(quadSum(acci)).fma(FloatVector.broadcast(F8, a.d[db + b] * f16(seg, bo)), acc);
        }
        return hsum8(acc) + ((m0 + m2) + (m1 + m3));
    }

    /** For group g of a Q6_K super-block: int lanes 0..7 pick scale 2g, lanes 8..15 scale 2g + 1. */
    private static final jdk.incubator.vector.VectorShuffle<Integer>[] Q6_SCALE_PICK = q6ScalePick();

    @SuppressWarnings("unchecked")
    private static jdk.incubator.vector.VectorShuffle<Integer>[] q6ScalePick() {
        jdk.incubator.vector.VectorShuffle<Integer>[] s = new jdk.incubator.vector.VectorShuffle[8];
        for (int g = 0; g < 8; g++) {
            int gg = g;
            s[g] = jdk.incubator.vector.VectorShuffle.fromOp(IntVector.SPECIES_512, i -> 2 * gg + i / 8);
        }
        return s;
    }

    /**
     * Q6_K row (blocks of 210 bytes, layout as {@link #dotQ6K}) . token t's Q8_K quants. Per half
     * h, the 32 bytes of ql[64h ..], ql[64h + 32 ..] and qh[32h ..] are widened to 32 short
     * lanes; each of the four 32-element groups is assembled (value - 32, in -32..31), multiplied
     * in shorts (<= 32*127), pair-summed into 16 int lanes and multiplied by its two int8 scales
     * (lanes 0..7 the first 16 elements' scale, lanes 8..15 the second's, permuted out of the 16
     * scales widened once per super-block); ints summed over the super-block
     * (< 256*32*127*128 < 2^31), then one float FMA per super-block.
     */
    private static float dotQ6Kw(MemorySegment seg, long off, int n, Q8Activations a, int t) {
        int qo = t * n;
        short[] q = a.qs;
        int db = qo / 256;
        FloatVector acc = FloatVector.zero(F8);
        for (int b = 0; b < n / 256; b++) {
            long bo = off + 210L * b;
            int y = qo + 256 * b;
            // the 16 int8 scales as 16 ints (via shorts: a direct 128-to-512-bit B2I is not intrinsified)
            IntVector scales = (IntVector) ByteVector.fromMemorySegment(B128, seg, bo + 192, LE)
                    .convertShape(VectorOperators.B2S, S256, 0).convertShape(VectorOperators.S2I, I512, 0);
            IntVector acci = IntVector.zero(I512);
            for (int h = 0; h < 2; h++) {
                ShortVector hb = q8w(seg, bo + 128 + 32 * h);
                int yh = y + 128 * h;
                // Group k (elements 128h + 32k + l): nibble k >> 1 of ql[64h + 32(k & 1) + l],
                // bits 2k, 2k+1 of qh[32h + l] on top. A loop rather than four copies keeps the
                // method small enough for C2 to inline (and so intrinsify) every vector call.
                for (int k = 0; k < 4; k++) {
                    ShortVector l = q8w(seg, bo + 64 * h + 32 * (k & 1)); // an L1 hit for k >= 2
                    ShortVector v = l.lanewise(VectorOperators.ASHR, 4 * (k >> 1)).and((short) 0xF)
                            .or(hb.lanewise(VectorOperators.ASHR, 2 * k).and((short) 3).lanewise(VectorOperators.LSHL, 4));
                    acci = acci.add(q6group(v, q, yh + 32 * k, scales, 4 * h + k));
                }
            }
            acc = toFloat(quadSum(acci)).fma(FloatVector.broadcast(F8, a.d[db + b] * f16(seg, bo + 208)), acc);
        }
        return hsum8(acc);
    }

    /** Q6_K group g (32 values 0..63 before the -32) . quants q[y ..), times scales 2g and 2g + 1. */
    private static IntVector q6group(ShortVector v, short[] q, int y, IntVector scales, int g) {
        IntVector s = pairSumI(v.sub((short) 32).mul(ShortVector.fromArray(S512, q, y)));
        return s.mul(scales.rearrange(Q6_SCALE_PICK[g]));
    }

    /** Sums of adjacent short lanes (2i, 2i+1) as 16 ints. */
    private static IntVector pairSumI(ShortVector p) {
        IntVector x = p.reinterpretAsInts(); // little-endian: short 2i in the low half of int i
        // (hi * 2^16 + lo) + lo * 2^16: the top half is hi + lo (exact while it fits a short)
        return x.add(x.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
    }

    /** 32 Q8_0 weight quants at {@code qo} as 32 short lanes. */
    private static ShortVector q8w(MemorySegment seg, long qo) {
        return (ShortVector) ByteVector.fromMemorySegment(B256, seg, qo, LE).convertShape(VectorOperators.B2S, S512, 0);
    }


    /** Q8_0 row (blocks: fp16 d, int8 qs[32]; 34 bytes) . token quants {@code q[y ..)}, scales {@code d[db ..)}. */
    private static float dotQ8_0w(MemorySegment seg, long off, int nb, short[] q, int y, float[] d, int db) {
        FloatVector acc = FloatVector.zero(F8);
        for (int b = 0; b < nb; b++) {
            long bo = off + 34L * b;
            ShortVector p = q8w(seg, bo + 2).mul(ShortVector.fromArray(S512, q, y + 32 * b));
            acc = toFloat(quadSum(pairSumI(p))).fma(FloatVector.broadcast(F8, f16(seg, bo) * d[db + b]), acc);
        }
        return hsum8(acc);
    }

    /**
     * Sums of adjacent int lanes (2i, 2i+1) of 16, as 8 ints: applied to the pair sums of a chunk
     * of 32 products, lane l sums elements 4l .. 4l+3, ggml's grouping.
     */
    private static IntVector quadSum(IntVector pairs) { // local, as PanamaKernels.reduce4x8 says why
        LongVector x = pairs.reinterpretAsLongs(); // little-endian: int 2i in the low half of long i
        LongVector s = x.lanewise(VectorOperators.ASHR, 32)
                .add(x.lanewise(VectorOperators.LSHL, 32).lanewise(VectorOperators.ASHR, 32));
        return (IntVector) s.convertShape(VectorOperators.L2I, I8, 0);
    }

    /** The 16 quant bytes of the Q4_0 block at {@code bo} as 16 short lanes, 0..255 sign-extended. */
    private static ShortVector q4w(MemorySegment seg, long bo) {
        return (ShortVector) ByteVector.fromMemorySegment(B128, seg, bo + 2, LE).convertShape(VectorOperators.B2S, S256, 0);
    }


    /**
     * Q4_0 row (blocks: fp16 d, uint8 qs[16]; 18 bytes; byte j holds element j in its low nibble and
     * element j + 16 in its high nibble, each minus 8) . token quants {@code q[y ..)}.
     */
    private static float dotQ4_0w(MemorySegment seg, long off, int nb, short[] q, int y, float[] d, int db) {
        float sum = 0;
        for (int b = 0; b < nb; b++) {
            long bo = off + 18L * b;
            ShortVector w = q4w(seg, bo);
            ShortVector lo = w.and((short) 0xF).sub((short) 8);
            ShortVector hi = w.lanewise(VectorOperators.ASHR, 4).and((short) 0xF).sub((short) 8);
            ShortVector p = lo.mul(ShortVector.fromArray(S256, q, y + 32 * b))
                    .add(hi.mul(ShortVector.fromArray(S256, q, y + 32 * b + 16)));
            // |sum| <= 32 * 8 * 127 fits a short; ggml's repacked Q4_0 order: one fma per block
            sum = Math.fma((float) p.reduceLanes(VectorOperators.ADD), f16(seg, bo) * d[db + b], sum);
        }
        return sum;
    }

    /**
     * Dot product of the row of {@code n} at byte {@code off} with token {@code t} of {@code a}
     * ({@code repacked}: the matrix's row count is a multiple of 8, which for Q4_0 changes
     * llama.cpp's summation order; see {@link ScalarInt8#row}).
     */
    static float dot(GgmlType type, MemorySegment seg, long off, int n, Q8Activations a, int t, boolean repacked) {
        int qo = t * n;
        return switch (type) {
            case Q8_0 -> dotQ8_0(seg, off, n, a.qt, qo, a.d, qo / 32);
            case Q4_0 -> repacked ? dotQ4_0(seg, off, n, a.q, qo, a.d, qo / 32) : dotQ4_0Lanes(seg, off, n, a.qt, qo, a.d, qo / 32);
            case Q2_K -> dotQ2K(seg, off, n, a, qo);
            case Q3_K -> dotQ3K(seg, off, n, a.qt, qo, a.d, qo / 256);
            case Q4_K -> dotQ45K(seg, off, n, a, qo, false);
            case Q5_K -> dotQ45K(seg, off, n, a, qo, true);
            case Q6_K -> dotQ6K(seg, off, n, a.qt, qo, a.d, qo / 256);
            default -> throw new UnsupportedOperationException("no 8-bit kernel for " + type);
        };
    }

    // The kernels below work in ggml's lanes: the 32 bytes of a chunk are loaded as 8 ints, int l
    // holding elements 4l .. 4l+3 (one per byte); byte k of every lane, shifted and masked out,
    // multiplies plane k of the transposed activations (Q8Activations.qt), so that int lane l
    // sums elements 4l .. 4l+3 exactly as ggml's maddubs/madd pairs do. Per block (Q8_0) or
    // super-block (K-quants) the 8 int lanes are converted once and multiply-added in float into
    // 8 float lanes, which are summed at the end of the row in ggml's order (hsum8). Integer
    // sums are exact (the largest, a Q6_K super-block, is below 256 * 32 * 127 * 128 < 2^31).

    private static float f16(MemorySegment seg, long off) {
        return Float.float16ToFloat(seg.get(I16_LE, off));
    }

    private static FloatVector toFloat(IntVector v) {
        return (FloatVector) v.convert(VectorOperators.I2F, 0);
    }

    /** 32 bytes at {@code off} as 8 int lanes (lane l = bytes 4l .. 4l+3, little-endian). */
    private static IntVector words(MemorySegment seg, long off) {
        return ByteVector.fromMemorySegment(B256, seg, off, LE).reinterpretAsInts();
    }

    /** Plane k of the transposed chunk at {@code y}: element 4l + k in lane l. */
    private static IntVector plane(int[] qt, int y, int k) {
        return IntVector.fromArray(I8, qt, y + 8 * k);
    }

    /** Bits {@code [shift, shift + width)} of every byte-k lane field: {@code (w >>> shift) & mask}. */
    private static IntVector bits(IntVector w, int shift, int mask) {
        return w.lanewise(VectorOperators.LSHR, shift).and(mask);
    }

    /** ggml's hsum_float_8: halves added, then lanes (0+2) and (1+3), then those two. */
    static float hsum8(FloatVector a) {
        float h0 = a.lane(4) + a.lane(0), h1 = a.lane(5) + a.lane(1), h2 = a.lane(6) + a.lane(2), h3 = a.lane(7) + a.lane(3);
        return (h0 + h2) + (h1 + h3);
    }

    /** Lanes 0..3 one value, lanes 4..7 another: the per-16 scales of a chunk of 32. */
    private static IntVector halves(int lo, int hi) {
        return IntVector.broadcast(I8, lo).blend(hi, HIGH4);
    }

    private static final jdk.incubator.vector.VectorMask<Integer> HIGH4 =
            jdk.incubator.vector.VectorMask.fromLong(IntVector.SPECIES_256, 0xF0);

    /** Q8_0 block (34 bytes): fp16 d, int8 qs[32]. */
    private static float dotQ8_0(MemorySegment seg, long off, int n, int[] qt, int qo, float[] d, int db) {
        FloatVector acc = FloatVector.zero(F8);
        for (int b = 0; b < n / 32; b++) {
            long bo = off + 34L * b;
            int y = qo + 32 * b;
            IntVector w = words(seg, bo + 2);
            IntVector g = IntVector.zero(I8);
            for (int k = 0; k < 4; k++) { // byte k, sign-extended
                g = g.add(w.lanewise(VectorOperators.LSHL, 24 - 8 * k).lanewise(VectorOperators.ASHR, 24)
                        .mul(plane(qt, y, k)));
            }
            acc = toFloat(g).fma(FloatVector.broadcast(F8, f16(seg, bo) * d[db + b]), acc);
        }
        return hsum8(acc);
    }

    /**
     * Q4_0 block (18 bytes): fp16 d, uint8 qs[16]; low nibbles are elements 0..15, high 16..31,
     * minus 8. Repacked order (llama.cpp interleaves 8 rows and sums each block whole):
     * {@code sum = fma(block sum, d_w * d_x, sum)}.
     */
    private static float dotQ4_0(MemorySegment seg, long off, int n, int[] q, int qo, float[] d, int db) {
        float sum = 0;
        for (int b = 0; b < n / 32; b++) {
            long bo = off + 18L * b;
            int y = qo + 32 * b;
            ByteVector v0 = ByteVector.fromMemorySegment(B8, seg, bo + 2, LE);
            ByteVector v1 = ByteVector.fromMemorySegment(B8, seg, bo + 10, LE);
            IntVector s = widen(v0.and((byte) 0xF).sub((byte) 8)).mul(IntVector.fromArray(I8, q, y));
            s = s.add(widen(v1.and((byte) 0xF).sub((byte) 8)).mul(IntVector.fromArray(I8, q, y + 8)));
            s = s.add(widen(hi(v0).sub((byte) 8)).mul(IntVector.fromArray(I8, q, y + 16)));
            s = s.add(widen(hi(v1).sub((byte) 8)).mul(IntVector.fromArray(I8, q, y + 24)));
            sum = Math.fma((float) s.reduceLanes(VectorOperators.ADD), f16(seg, bo) * d[db + b], sum);
        }
        return sum;
    }

    /**
     * Q4_0 in ggml's lane order (matrices llama.cpp does not repack): the 16 quant bytes as 4 int
     * lanes; low nibbles give lanes 0..3 (elements 0..15), high nibbles lanes 4..7 (16..31), kept
     * as two 4-lane halves (the float lanes are independent, so this is the same arithmetic).
     */
    private static float dotQ4_0Lanes(MemorySegment seg, long off, int n, int[] qt, int qo, float[] d, int db) {
        FloatVector lo = FloatVector.zero(F4), hi = FloatVector.zero(F4);
        for (int b = 0; b < n / 32; b++) {
            long bo = off + 18L * b;
            int y = qo + 32 * b;
            IntVector w = ByteVector.fromMemorySegment(B128, seg, bo + 2, LE).reinterpretAsInts();
            IntVector gl = IntVector.zero(I4), gh = IntVector.zero(I4);
            for (int k = 0; k < 4; k++) {
                gl = gl.add(w.lanewise(VectorOperators.LSHR, 8 * k).and(0xF).sub(8)
                        .mul(IntVector.fromArray(I4, qt, y + 8 * k)));
                gh = gh.add(w.lanewise(VectorOperators.LSHR, 8 * k + 4).and(0xF).sub(8)
                        .mul(IntVector.fromArray(I4, qt, y + 8 * k + 4)));
            }
            FloatVector dd = FloatVector.broadcast(F4, f16(seg, bo) * d[db + b]);
            lo = ((FloatVector) gl.convert(VectorOperators.I2F, 0)).fma(dd, lo);
            hi = ((FloatVector) gh.convert(VectorOperators.I2F, 0)).fma(dd, hi);
        }
        float h0 = hi.lane(0) + lo.lane(0), h1 = hi.lane(1) + lo.lane(1), h2 = hi.lane(2) + lo.lane(2),
                h3 = hi.lane(3) + lo.lane(3);
        return (h0 + h2) + (h1 + h3);
    }

    private static IntVector widen(ByteVector v) {
        return (IntVector) v.convertShape(VectorOperators.B2I, I8, 0);
    }

    /** High nibbles of unsigned bytes, 0..15. */
    private static ByteVector hi(ByteVector v) {
        return v.lanewise(VectorOperators.LSHR, 4).and((byte) 0xF);
    }

    /**
     * Q2_K block (84 bytes): uint8 scales[16] (scale in the low, min in the high nibble, one per 16
     * elements), uint8 qs[64], fp16 d, fp16 dmin. Element 128h + 32j + l is bits 2j..2j+1 of
     * qs[32h + l]. As ggml: per super-block the mins (lane m: groups 2m and 2m+1 of 16, times
     * their quant sums) multiply-add with {@code -d_x * dmin} into the accumulator first, then the
     * scaled products with {@code d_x * d}.
     */
    private static float dotQ2K(MemorySegment seg, long off, int n, Q8Activations a, int qo) {
        int[] qt = a.qt, bs = a.bsums, mins = MIN_LANES.get(); // the activations are shared by the workers
        int db = qo / 256, bso = qo / 16;
        FloatVector acc = FloatVector.zero(F8);
        for (int b = 0; b < n / 256; b++) {
            long bo = off + 84L * b;
            int y = qo + 256 * b;
            IntVector acci = IntVector.zero(I8);
            for (int h = 0; h < 2; h++) {
                IntVector w = words(seg, bo + 16 + 32 * h);
                for (int j = 0; j < 4; j++) {
                    int yc = y + 128 * h + 32 * j;
                    IntVector s = IntVector.zero(I8);
                    for (int k = 0; k < 4; k++) {
                        s = s.add(bits(w, 8 * k + 2 * j, 3).mul(plane(qt, yc, k)));
                    }
                    int sc = 8 * h + 2 * j;
                    acci = acci.add(s.mul(halves(u8(seg, bo + sc) & 0xF, u8(seg, bo + sc + 1) & 0xF)));
                }
            }
            for (int m = 0; m < 8; m++) {
                int g = bso + 16 * b + 2 * m;
                mins[m] = (u8(seg, bo + 2 * m) >> 4) * bs[g] + (u8(seg, bo + 2 * m + 1) >> 4) * bs[g + 1];
            }
            float yd = a.d[db + b];
            acc = toFloat(IntVector.fromArray(I8, mins, 0)).fma(FloatVector.broadcast(F8, -yd * f16(seg, bo + 82)), acc);
            acc = toFloat(acci).fma(FloatVector.broadcast(F8, yd * f16(seg, bo + 80)), acc);
        }
        return hsum8(acc);
    }

    private static final ThreadLocal<int[]> MIN_LANES = ThreadLocal.withInitial(() -> new int[8]);

    private static int u8(MemorySegment seg, long off) {
        return Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, off));
    }

    /**
     * Q3_K block (110 bytes): uint8 hmask[32], uint8 qs[64], uint8 scales[12] (16 6-bit scales,
     * {@link #q3Scale}), fp16 d. Element 128h + 32j + l is bits 2j..2j+1 of qs[32h + l], minus 4
     * unless bit 4h + j of hmask[l] is set; each 16 elements have their own scale, stored + 32.
     * Row sum: d_x * d * sum_i (scale_i - 32) * (q.y)_i; no mins, so no bsums.
     */
    private static float dotQ3K(MemorySegment seg, long off, int n, int[] qt, int qo, float[] d, int db) {
        FloatVector acc = FloatVector.zero(F8);
        for (int b = 0; b < n / 256; b++) {
            long bo = off + 110L * b;
            int y = qo + 256 * b;
            IntVector hm = words(seg, bo);
            IntVector acci = IntVector.zero(I8);
            for (int h = 0; h < 2; h++) {
                IntVector q = words(seg, bo + 32 + 32 * h);
                for (int j = 0; j < 4; j++) {
                    int yc = y + 128 * h + 32 * j;
                    IntVector s = IntVector.zero(I8);
                    for (int k = 0; k < 4; k++) { // low bits - 4, plus 4 where the hmask bit is set
                        IntVector v = bits(q, 8 * k + 2 * j, 3).sub(4)
                                .add(bits(hm, 8 * k + 4 * h + j, 1).lanewise(VectorOperators.LSHL, 2));
                        s = s.add(v.mul(plane(qt, yc, k)));
                    }
                    int i = 8 * h + 2 * j;
                    acci = acci.add(s.mul(halves(q3Scale(seg, bo + 96, i) - 32, q3Scale(seg, bo + 96, i + 1) - 32)));
                }
            }
            acc = toFloat(acci).fma(FloatVector.broadcast(F8, d[db + b] * f16(seg, bo + 108)), acc);
        }
        return hsum8(acc);
    }

    /**
     * The 8 signed 3-bit quants (-4..3) of Q3_K elements 128h + 32j + l .. +7: the low bits shifted
     * out of qs, then 4 added back where the high bit is set (value = low - 4 + 4 * high).
     */
    private static ByteVector q3Quants(MemorySegment seg, long bo, int h, int j, int l) {
        ByteVector lo = ByteVector.fromMemorySegment(B8, seg, bo + 32 + 32 * h + l, LE)
                .lanewise(VectorOperators.LSHR, 2 * j).and((byte) 3);
        ByteVector hb = ByteVector.fromMemorySegment(B8, seg, bo + l, LE)
                .lanewise(VectorOperators.LSHR, 4 * h + j).and((byte) 1);
        return lo.sub((byte) 4).add(hb.lanewise(VectorOperators.LSHL, 2));
    }

    /**
     * 6-bit scale (0..63, stored with +32) of Q3_K sub-block i (0..15) from the 12 bytes at
     * {@code sc}: low nibble of byte i (i < 8) or high nibble of byte i - 8, with bits
     * 2(i/4)..2(i/4)+1 of byte 8 + i%4 above it (ggml's kmask1/kmask2 unpacking, one scale at a time).
     */
    static int q3Scale(MemorySegment seg, long sc, int i) {
        int lo = (seg.get(ValueLayout.JAVA_BYTE, sc + (i & 7)) >> (i < 8 ? 0 : 4)) & 0xF;
        int hi = (seg.get(ValueLayout.JAVA_BYTE, sc + 8 + (i & 3)) >> (2 * (i >> 2))) & 3;
        return lo | hi << 4;
    }

    /**
     * Q4_K block (144 bytes): fp16 d, fp16 dmin, uint8 scales[12], uint8 qs[128]; Q5_K block (176
     * bytes) has uint8 qh[32] between scales and qs. Chunk c (elements 64c..64c+63) reads bytes
     * qs[32c .. 32c+31]: their low nibbles are sub-block 2c, the high nibbles sub-block 2c+1; Q5_K
     * adds bit 2c (resp. 2c+1) of qh[l] as 16. The mins term, {@code -d_x * dmin * sum_i m_i *
     * (sum of y in sub-block i)}, goes as ggml's: Q4_K in four float lanes (lane c: sub-blocks 2c
     * and 2c+1), summed (0+2) + (1+3) at the end; Q5_K as one float, fma'd per super-block.
     */
    private static float dotQ45K(MemorySegment seg, long off, int n, Q8Activations a, int qo, boolean five) {
        int[] qt = a.qt, bs = a.bsums;
        int db = qo / 256, bso = qo / 16;
        int bsize = five ? 176 : 144;
        FloatVector acc = FloatVector.zero(F8);
        float m0 = 0, m1 = 0, m2 = 0, m3 = 0, summs = 0;
        for (int b = 0; b < n / 256; b++) {
            long bo = off + (long) bsize * b;
            long qs = bo + (five ? 48 : 16);
            int y = qo + 256 * b;
            IntVector h = five ? words(seg, bo + 16) : null;
            IntVector acci = IntVector.zero(I8);
            float dmin = -a.d[db + b] * f16(seg, bo + 2);
            int summ = 0;
            for (int c = 0; c < 4; c++) {
                IntVector w = words(seg, qs + 32 * c);
                IntVector s0 = IntVector.zero(I8), s1 = IntVector.zero(I8);
                for (int k = 0; k < 4; k++) {
                    IntVector lo = bits(w, 8 * k, 0xF), hi = bits(w, 8 * k + 4, 0xF);
                    if (five) {
                        lo = lo.or(bits(h, 8 * k + 2 * c, 1).lanewise(VectorOperators.LSHL, 4));
                        hi = hi.or(bits(h, 8 * k + 2 * c + 1, 1).lanewise(VectorOperators.LSHL, 4));
                    }
                    s0 = s0.add(lo.mul(plane(qt, y + 64 * c, k)));
                    s1 = s1.add(hi.mul(plane(qt, y + 64 * c + 32, k)));
                }
                int i0 = 2 * c, i1 = 2 * c + 1;
                acci = acci.add(s0.mul(kScale(seg, bo + 4, i0))).add(s1.mul(kScale(seg, bo + 4, i1)));
                int g = bso + 16 * b + 4 * c;
                int mc = kMin(seg, bo + 4, i0) * (bs[g] + bs[g + 1]) + kMin(seg, bo + 4, i1) * (bs[g + 2] + bs[g + 3]);
                if (five) {
                    summ += mc;
                } else {
                    switch (c) {
                        case 0 -> m0 = Math.fma(dmin, (float) mc, m0);
                        case 1 -> m1 = Math.fma(dmin, (float) mc, m1);
                        case 2 -> m2 = Math.fma(dmin, (float) mc, m2);
                        default -> m3 = Math.fma(dmin, (float) mc, m3);
                    }
                }
            }
            if (five) {
                summs = Math.fma(dmin, (float) summ, summs);
            }
            acc = toFloat(acci).fma(FloatVector.broadcast(F8, a.d[db + b] * f16(seg, bo)), acc);
        }
        return hsum8(acc) + (five ? summs : (m0 + m2) + (m1 + m3));
    }

    /**
     * Q6_K block (210 bytes): uint8 ql[128], uint8 qh[64], int8 scales[16], fp16 d. In half h,
     * chunk j (elements 128h + 32j + l, l < 32) takes the low (j < 2) or high (j >= 2) nibble of
     * ql[64h + 32(j & 1) + l], with bits 2j, 2j+1 of qh[32h + l] on top; value q - 32, scale
     * scales[element / 16].
     */
    private static float dotQ6K(MemorySegment seg, long off, int n, int[] qt, int qo, float[] d, int db) {
        FloatVector acc = FloatVector.zero(F8);
        for (int b = 0; b < n / 256; b++) {
            long bo = off + 210L * b;
            int y = qo + 256 * b;
            IntVector acci = IntVector.zero(I8);
            for (int h = 0; h < 2; h++) {
                IntVector ql0 = words(seg, bo + 64 * h), ql1 = words(seg, bo + 64 * h + 32);
                IntVector qh = words(seg, bo + 128 + 32 * h);
                for (int j = 0; j < 4; j++) {
                    IntVector src = (j & 1) == 0 ? ql0 : ql1;
                    int yc = y + 128 * h + 32 * j;
                    IntVector s = IntVector.zero(I8);
                    for (int k = 0; k < 4; k++) {
                        IntVector v = bits(src, 8 * k + 4 * (j >> 1), 0xF)
                                .or(bits(qh, 8 * k + 2 * j, 3).lanewise(VectorOperators.LSHL, 4)).sub(32);
                        s = s.add(v.mul(plane(qt, yc, k)));
                    }
                    long sc = bo + 192 + 8 * h + 2 * j;
                    acci = acci.add(s.mul(halves(seg.get(ValueLayout.JAVA_BYTE, sc), seg.get(ValueLayout.JAVA_BYTE, sc + 1))));
                }
            }
            acc = toFloat(acci).fma(FloatVector.broadcast(F8, d[db + b] * f16(seg, bo + 208)), acc);
        }
        return hsum8(acc);
    }

    /** 6-bit scale of sub-block i from the 12 packed bytes at {@code sc} (ggml's get_scale_min_k4, first half). */
    static int kScale(MemorySegment seg, long sc, int i) {
        if (i < 4) {
            return seg.get(ValueLayout.JAVA_BYTE, sc + i) & 63;
        }
        return (seg.get(ValueLayout.JAVA_BYTE, sc + i + 4) & 0xF)
                | ((seg.get(ValueLayout.JAVA_BYTE, sc + i - 4) >> 6) & 3) << 4;
    }

    /** 6-bit min of sub-block i (get_scale_min_k4, second half). */
    static int kMin(MemorySegment seg, long sc, int i) {
        if (i < 4) {
            return seg.get(ValueLayout.JAVA_BYTE, sc + i + 4) & 63;
        }
        return ((seg.get(ValueLayout.JAVA_BYTE, sc + i + 4) >> 4) & 0xF)
                | ((seg.get(ValueLayout.JAVA_BYTE, sc + i) >> 6) & 3) << 4;
    }

    // ---------------------------------------------------------------------------------------------
    // K-quant dequantization (float path and prompt batches of the float path)

    /** Dequantizes n elements of a K-quant row at {@code off} into {@code out[oo ..)}. */
    static void dequantizeK(GgmlType type, MemorySegment seg, long off, int n, float[] out, int oo) {
        switch (type) {
            case Q2_K -> dequantQ2K(seg, off, n, out, oo);
            case Q3_K -> dequantQ3K(seg, off, n, out, oo);
            case Q4_K -> dequantQ45K(seg, off, n, out, oo, false);
            case Q5_K -> dequantQ45K(seg, off, n, out, oo, true);
            case Q6_K -> dequantQ6K(seg, off, n, out, oo);
            default -> throw new UnsupportedOperationException(type.toString());
        }
    }

    private static FloatVector bf(ByteVector v) {
        return (FloatVector) v.convertShape(VectorOperators.B2F, F8, 0);
    }

    private static void dequantQ2K(MemorySegment seg, long off, int n, float[] out, int oo) {
        for (int b = 0; b < n / 256; b++) {
            long bo = off + 84L * b;
            float d = f16(seg, bo + 80), dmin = f16(seg, bo + 82);
            for (int h = 0; h < 2; h++) {
                for (int s = 0; s < 4; s++) {
                    for (int k = 0; k < 32; k += 8) {
                        int e = 128 * h + 32 * s + k;
                        int sc = Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, bo + e / 16));
                        ByteVector v = ByteVector.fromMemorySegment(B8, seg, bo + 16 + 32 * h + k, LE)
                                .lanewise(VectorOperators.LSHR, 2 * s).and((byte) 3);
                        bf(v).mul(d * (sc & 0xF)).sub(dmin * (sc >> 4)).intoArray(out, oo + 256 * b + e);
                    }
                }
            }
        }
    }

    private static void dequantQ3K(MemorySegment seg, long off, int n, float[] out, int oo) {
        for (int b = 0; b < n / 256; b++) {
            long bo = off + 110L * b;
            float d = f16(seg, bo + 108);
            for (int h = 0; h < 2; h++) {
                for (int j = 0; j < 4; j++) {
                    for (int g = 0; g < 2; g++) {
                        // as ggml's dequantize_row_q3_K: (d * (scale - 32)) * q, rounded once each
                        float dl = d * (q3Scale(seg, bo + 96, 8 * h + 2 * j + g) - 32);
                        for (int k = 0; k < 16; k += 8) {
                            int l = 16 * g + k;
                            bf(q3Quants(seg, bo, h, j, l)).mul(dl).intoArray(out, oo + 256 * b + 128 * h + 32 * j + l);
                        }
                    }
                }
            }
        }
    }

    private static void dequantQ45K(MemorySegment seg, long off, int n, float[] out, int oo, boolean five) {
        int bsize = five ? 176 : 144;
        for (int b = 0; b < n / 256; b++) {
            long bo = off + (long) bsize * b;
            long qs = bo + (five ? 48 : 16);
            float d = f16(seg, bo), dmin = f16(seg, bo + 2);
            for (int c = 0; c < 4; c++) {
                float d0 = d * kScale(seg, bo + 4, 2 * c), m0 = dmin * kMin(seg, bo + 4, 2 * c);
                float d1 = d * kScale(seg, bo + 4, 2 * c + 1), m1 = dmin * kMin(seg, bo + 4, 2 * c + 1);
                for (int k = 0; k < 32; k += 8) {
                    ByteVector v = ByteVector.fromMemorySegment(B8, seg, qs + 32 * c + k, LE);
                    ByteVector lo = v.and((byte) 0xF);
                    ByteVector hi = hi(v);
                    if (five) {
                        ByteVector h = ByteVector.fromMemorySegment(B8, seg, bo + 16 + k, LE);
                        lo = lo.or(h.lanewise(VectorOperators.LSHR, 2 * c).and((byte) 1).lanewise(VectorOperators.LSHL, 4));
                        hi = hi.or(h.lanewise(VectorOperators.LSHR, 2 * c + 1).and((byte) 1).lanewise(VectorOperators.LSHL, 4));
                    }
                    int e = oo + 256 * b + 64 * c + k;
                    bf(lo).mul(d0).sub(m0).intoArray(out, e);
                    bf(hi).mul(d1).sub(m1).intoArray(out, e + 32);
                }
            }
        }
    }

    private static void dequantQ6K(MemorySegment seg, long off, int n, float[] out, int oo) {
        for (int b = 0; b < n / 256; b++) {
            long bo = off + 210L * b;
            float d = f16(seg, bo + 208);
            for (int h = 0; h < 2; h++) {
                long ql = bo + 64 * h, qh = bo + 128 + 32 * h, sc = bo + 192 + 8 * h;
                for (int k = 0; k < 32; k += 8) {
                    ByteVector l0 = ByteVector.fromMemorySegment(B8, seg, ql + k, LE);
                    ByteVector l1 = ByteVector.fromMemorySegment(B8, seg, ql + 32 + k, LE);
                    ByteVector hb = ByteVector.fromMemorySegment(B8, seg, qh + k, LE);
                    int g = k / 16;
                    int e = oo + 256 * b + 128 * h + k;
                    bf(l0.and((byte) 0xF).or(hb.and((byte) 3).lanewise(VectorOperators.LSHL, 4)).sub((byte) 32))
                            .mul(d * seg.get(ValueLayout.JAVA_BYTE, sc + g)).intoArray(out, e);
                    bf(l1.and((byte) 0xF).or(hb.lanewise(VectorOperators.LSHR, 2).and((byte) 3)
                            .lanewise(VectorOperators.LSHL, 4)).sub((byte) 32))
                            .mul(d * seg.get(ValueLayout.JAVA_BYTE, sc + 2 + g)).intoArray(out, e + 32);
                    bf(hi(l0).or(hb.lanewise(VectorOperators.LSHR, 4).and((byte) 3).lanewise(VectorOperators.LSHL, 4))
                            .sub((byte) 32)).mul(d * seg.get(ValueLayout.JAVA_BYTE, sc + 4 + g)).intoArray(out, e + 64);
                    bf(hi(l1).or(hb.lanewise(VectorOperators.LSHR, 6).and((byte) 3).lanewise(VectorOperators.LSHL, 4))
                            .sub((byte) 32)).mul(d * seg.get(ValueLayout.JAVA_BYTE, sc + 6 + g)).intoArray(out, e + 96);
                }
            }
        }
    }
}
