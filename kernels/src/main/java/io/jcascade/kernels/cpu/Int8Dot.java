package io.jcascade.kernels.cpu;

import io.jcascade.gguf.GgmlType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vector API kernels for quantized weights: integer dot products of weight rows with
 * {@link Q8Activations} (llama.cpp's {@code vec_dot_q8_0_q8_0}, {@code vec_dot_q4_0_q8_0},
 * {@code vec_dot_q2_K_q8_K}, {@code vec_dot_q4_K_q8_K}, {@code vec_dot_q5_K_q8_K},
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
    // fits), pair-summed or widened into 16 int lanes, converted to float and multiply-added with
    // the broadcast block scale d_w * d_x into 16 float accumulators. Nothing is reduced across
    // lanes until the end of the row. Integer sums are exact; only the float summation order
    // differs from ggml's (per lane instead of per block), a relative difference of a few ulps of
    // the sum of |terms| (well inside Int8MatmulTest's 1e-5 * magnitude bound).

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
    static float dotWide(GgmlType type, MemorySegment seg, long off, int n, Q8Activations a, int t) {
        int nb = n / 32;
        return switch (type) {
            case Q8_0 -> dotQ8_0w(seg, off, nb, a.qs, t * n, a.d, t * nb);
            case Q4_0 -> dotQ4_0w(seg, off, nb, a.qs, t * n, a.d, t * nb);
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
        FloatVector acc = FloatVector.zero(F512);
        float mins = 0;
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
            int summ = 0;
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
                summ += ((m >>> sh) & 0xFF) * (a.bsums[g] + a.bsums[g + 1])
                        + ((m >>> (sh + 8)) & 0xFF) * (a.bsums[g + 2] + a.bsums[g + 3]);
            }
            float yd = a.d[db + b];
            acc = ((FloatVector) acci.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F512, yd * f16(seg, bo)), acc);
            mins += yd * f16(seg, bo + 2) * summ;
        }
        return acc.reduceLanes(VectorOperators.ADD) - mins;
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
        FloatVector acc = FloatVector.zero(F512);
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
            acc = ((FloatVector) acci.convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F512, a.d[db + b] * f16(seg, bo + 208)), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    /** Q6_K group g (32 values 0..63 before the -32) . quants q[y ..), times scales 2g and 2g + 1. */
    private static IntVector q6group(ShortVector v, short[] q, int y, IntVector scales, int g) {
        IntVector s = pairSumI(v.sub((short) 32).mul(ShortVector.fromArray(S512, q, y)));
        return s.mul(scales.rearrange(Q6_SCALE_PICK[g]));
    }

    /** Sums of adjacent short lanes (2i, 2i+1) as 16 ints. */
    private static IntVector pairSumI(ShortVector p) {
        IntVector x = p.reinterpretAsInts(); // little-endian: short 2i in the low half of int i
        return x.lanewise(VectorOperators.ASHR, 16).add(x.lanewise(VectorOperators.LSHL, 16).lanewise(VectorOperators.ASHR, 16));
    }

    /** 32 Q8_0 weight quants at {@code qo} as 32 short lanes. */
    private static ShortVector q8w(MemorySegment seg, long qo) {
        return (ShortVector) ByteVector.fromMemorySegment(B256, seg, qo, LE).convertShape(VectorOperators.B2S, S512, 0);
    }

    /** Sums of adjacent short lanes (2i, 2i+1) as 16 ints, as float (exact: |sum| < 2^15). */
    private static FloatVector pairSum(ShortVector p) {
        IntVector x = p.reinterpretAsInts(); // little-endian: short 2i in the low half of int i
        // (hi * 2^16 + lo) + lo * 2^16: the top half is hi + lo (exact while it fits a short), 3 ops instead of 4
        return (FloatVector) x.add(x.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16)
                .convert(VectorOperators.I2F, 0);
    }

    /** Q8_0 row (blocks: fp16 d, int8 qs[32]; 34 bytes) . token quants {@code q[y ..)}, scales {@code d[db ..)}. */
    private static float dotQ8_0w(MemorySegment seg, long off, int nb, short[] q, int y, float[] d, int db) {
        FloatVector acc = FloatVector.zero(F512);
        for (int b = 0; b < nb; b++) {
            long bo = off + 34L * b;
            ShortVector p = q8w(seg, bo + 2).mul(ShortVector.fromArray(S512, q, y + 32 * b));
            acc = pairSum(p).fma(FloatVector.broadcast(F512, f16(seg, bo) * d[db + b]), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    /** The 16 quant bytes of the Q4_0 block at {@code bo} as 16 short lanes, 0..255 sign-extended. */
    private static ShortVector q4w(MemorySegment seg, long bo) {
        return (ShortVector) ByteVector.fromMemorySegment(B128, seg, bo + 2, LE).convertShape(VectorOperators.B2S, S256, 0);
    }

    /** 16 short products of one token (|lo*x + hi*x| <= 2*8*127) widened to ints, as float. */
    private static FloatVector q4sum(ShortVector lo, ShortVector hi, short[] q, int yb) {
        ShortVector p = lo.mul(ShortVector.fromArray(S256, q, yb)).add(hi.mul(ShortVector.fromArray(S256, q, yb + 16)));
        return (FloatVector) p.convertShape(VectorOperators.S2I, I512, 0).convert(VectorOperators.I2F, 0);
    }

    /**
     * Q4_0 row (blocks: fp16 d, uint8 qs[16]; 18 bytes; byte j holds element j in its low nibble and
     * element j + 16 in its high nibble, each minus 8) . token quants {@code q[y ..)}.
     */
    private static float dotQ4_0w(MemorySegment seg, long off, int nb, short[] q, int y, float[] d, int db) {
        FloatVector acc = FloatVector.zero(F512);
        for (int b = 0; b < nb; b++) {
            long bo = off + 18L * b;
            ShortVector w = q4w(seg, bo);
            ShortVector lo = w.and((short) 0xF).sub((short) 8);
            ShortVector hi = w.lanewise(VectorOperators.ASHR, 4).and((short) 0xF).sub((short) 8);
            acc = q4sum(lo, hi, q, y + 32 * b).fma(FloatVector.broadcast(F512, f16(seg, bo) * d[db + b]), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD);
    }

    /** Dot product of the row of {@code n} at byte {@code off} with token {@code t} of {@code a}. */
    static float dot(GgmlType type, MemorySegment seg, long off, int n, Q8Activations a, int t) {
        int qo = t * n;
        return switch (type) {
            case Q8_0 -> dotQ8_0(seg, off, n, a.q, qo, a.d, qo / 32);
            case Q4_0 -> dotQ4_0(seg, off, n, a.q, qo, a.d, qo / 32);
            case Q2_K -> dotQ2K(seg, off, n, a.q, qo, a.d, qo / 256, a.bsums, qo / 16);
            case Q4_K -> dotQ45K(seg, off, n, a.q, qo, a.d, qo / 256, a.bsums, qo / 16, false);
            case Q5_K -> dotQ45K(seg, off, n, a.q, qo, a.d, qo / 256, a.bsums, qo / 16, true);
            case Q6_K -> dotQ6K(seg, off, n, a.q, qo, a.d, qo / 256);
            default -> throw new UnsupportedOperationException("no 8-bit kernel for " + type);
        };
    }

    private static float f16(MemorySegment seg, long off) {
        return Float.float16ToFloat(seg.get(I16_LE, off));
    }

    private static IntVector widen(ByteVector v) {
        return (IntVector) v.convertShape(VectorOperators.B2I, I8, 0);
    }

    private static FloatVector toFloat(IntVector v) {
        return (FloatVector) v.convert(VectorOperators.I2F, 0);
    }

    /** Q8_0 block (34 bytes): fp16 d, int8 qs[32]. */
    private static float dotQ8_0(MemorySegment seg, long off, int n, int[] q, int qo, float[] d, int db) {
        float sum = 0;
        for (int b = 0; b < n / 32; b++) {
            long bo = off + 34L * b;
            int y = qo + 32 * b;
            IntVector s = widen(ByteVector.fromMemorySegment(B8, seg, bo + 2, LE)).mul(IntVector.fromArray(I8, q, y));
            s = s.add(widen(ByteVector.fromMemorySegment(B8, seg, bo + 10, LE)).mul(IntVector.fromArray(I8, q, y + 8)));
            s = s.add(widen(ByteVector.fromMemorySegment(B8, seg, bo + 18, LE)).mul(IntVector.fromArray(I8, q, y + 16)));
            s = s.add(widen(ByteVector.fromMemorySegment(B8, seg, bo + 26, LE)).mul(IntVector.fromArray(I8, q, y + 24)));
            // as ggml's generic vec_dot_q8_0_q8_0: sumf += sumi * (d_w * d_x), block by block
            sum += s.reduceLanes(VectorOperators.ADD) * (f16(seg, bo) * d[db + b]);
        }
        return sum;
    }

    /** Q4_0 block (18 bytes): fp16 d, uint8 qs[16]; low nibbles are elements 0..15, high 16..31, minus 8. */
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
            // as ggml's generic vec_dot_q4_0_q8_0: sumf += sumi * d_w * d_x, block by block
            sum += s.reduceLanes(VectorOperators.ADD) * f16(seg, bo) * d[db + b];
        }
        return sum;
    }

    /** High nibbles of unsigned bytes, 0..15. */
    private static ByteVector hi(ByteVector v) {
        return v.lanewise(VectorOperators.LSHR, 4).and((byte) 0xF);
    }

    /**
     * Q2_K block (84 bytes): uint8 scales[16] (scale in the low, min in the high nibble, one per 16
     * elements), uint8 qs[64], fp16 d, fp16 dmin. Element 128h + 32s + l is bits 2s..2s+1 of
     * qs[32h + l]. Row sum: d_x * (d * sum_i scale_i (q.y)_i - dmin * sum_i min_i bsum_i).
     */
    private static float dotQ2K(MemorySegment seg, long off, int n, int[] q, int qo, float[] d, int db, int[] bs,
            int bso) {
        FloatVector acc = FloatVector.zero(F8);
        float mins = 0;
        for (int b = 0; b < n / 256; b++) {
            long bo = off + 84L * b;
            int y = qo + 256 * b;
            IntVector acci = IntVector.zero(I8);
            int summ = 0;
            for (int h = 0; h < 2; h++) {
                for (int s = 0; s < 4; s++) {
                    for (int g = 0; g < 2; g++) {
                        int sc = Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, bo + 8 * h + 2 * s + g));
                        int e = 128 * h + 32 * s + 16 * g;
                        IntVector a = widen(ByteVector.fromMemorySegment(B8, seg, bo + 16 + 32 * h + 16 * g, LE)
                                .lanewise(VectorOperators.LSHR, 2 * s).and((byte) 3)).mul(IntVector.fromArray(I8, q, y + e));
                        a = a.add(widen(ByteVector.fromMemorySegment(B8, seg, bo + 24 + 32 * h + 16 * g, LE)
                                .lanewise(VectorOperators.LSHR, 2 * s).and((byte) 3)).mul(IntVector.fromArray(I8, q, y + e + 8)));
                        acci = acci.add(a.mul(sc & 0xF));
                        summ += (sc >> 4) * bs[bso + 16 * b + e / 16];
                    }
                }
            }
            float yd = d[db + b];
            acc = toFloat(acci).fma(FloatVector.broadcast(F8, yd * f16(seg, bo + 80)), acc);
            mins += yd * f16(seg, bo + 82) * summ;
        }
        return acc.reduceLanes(VectorOperators.ADD) - mins;
    }

    /**
     * Q4_K block (144 bytes): fp16 d, fp16 dmin, uint8 scales[12], uint8 qs[128]; Q5_K block (176
     * bytes) has uint8 qh[32] between scales and qs. Chunk c (elements 64c..64c+63) reads bytes
     * qs[32c .. 32c+31]: their low nibbles are sub-block 2c, the high nibbles sub-block 2c+1; Q5_K
     * adds bit 2c (resp. 2c+1) of qh[l] as 16. Row sum: d_x * (d * sum_i sc_i (q.y)_i - dmin *
     * sum_i m_i * (sum of y in sub-block i)).
     */
    private static float dotQ45K(MemorySegment seg, long off, int n, int[] q, int qo, float[] d, int db, int[] bs,
            int bso, boolean five) {
        int bsize = five ? 176 : 144;
        FloatVector acc = FloatVector.zero(F8);
        float mins = 0;
        for (int b = 0; b < n / 256; b++) {
            long bo = off + (long) bsize * b;
            long qs = bo + (five ? 48 : 16);
            int y = qo + 256 * b;
            IntVector acci = IntVector.zero(I8);
            int summ = 0;
            for (int c = 0; c < 4; c++) {
                IntVector a0 = IntVector.zero(I8), a1 = IntVector.zero(I8);
                for (int k = 0; k < 32; k += 8) {
                    ByteVector v = ByteVector.fromMemorySegment(B8, seg, qs + 32 * c + k, LE);
                    ByteVector lo = v.and((byte) 0xF);
                    ByteVector hi = hi(v);
                    if (five) {
                        ByteVector h = ByteVector.fromMemorySegment(B8, seg, bo + 16 + k, LE);
                        lo = lo.or(h.lanewise(VectorOperators.LSHR, 2 * c).and((byte) 1).lanewise(VectorOperators.LSHL, 4));
                        hi = hi.or(h.lanewise(VectorOperators.LSHR, 2 * c + 1).and((byte) 1).lanewise(VectorOperators.LSHL, 4));
                    }
                    a0 = a0.add(widen(lo).mul(IntVector.fromArray(I8, q, y + 64 * c + k)));
                    a1 = a1.add(widen(hi).mul(IntVector.fromArray(I8, q, y + 64 * c + 32 + k)));
                }
                int i0 = 2 * c, i1 = 2 * c + 1;
                acci = acci.add(a0.mul(kScale(seg, bo + 4, i0))).add(a1.mul(kScale(seg, bo + 4, i1)));
                int g = bso + 16 * b + 4 * c;
                summ += kMin(seg, bo + 4, i0) * (bs[g] + bs[g + 1]) + kMin(seg, bo + 4, i1) * (bs[g + 2] + bs[g + 3]);
            }
            float yd = d[db + b];
            acc = toFloat(acci).fma(FloatVector.broadcast(F8, yd * f16(seg, bo)), acc);
            mins += yd * f16(seg, bo + 2) * summ;
        }
        return acc.reduceLanes(VectorOperators.ADD) - mins;
    }

    /**
     * Q6_K block (210 bytes): uint8 ql[128], uint8 qh[64], int8 scales[16], fp16 d. In half h,
     * for l < 32: elements 128h + l, +32, +64, +96 take the low nibble of ql[64h + l], the low
     * nibble of ql[64h + 32 + l], the high nibble of ql[64h + l], the high nibble of
     * ql[64h + 32 + l], with bits 0-1, 2-3, 4-5, 6-7 of qh[32h + l] on top; value q - 32, scale
     * scales[element / 16].
     */
    private static float dotQ6K(MemorySegment seg, long off, int n, int[] q, int qo, float[] d, int db) {
        FloatVector acc = FloatVector.zero(F8);
        for (int b = 0; b < n / 256; b++) {
            long bo = off + 210L * b;
            int y = qo + 256 * b;
            IntVector acci = IntVector.zero(I8);
            for (int h = 0; h < 2; h++) {
                long ql = bo + 64 * h;
                long qh = bo + 128 + 32 * h;
                long sc = bo + 192 + 8 * h;
                int yh = y + 128 * h;
                for (int g = 0; g < 2; g++) {
                    IntVector a0 = IntVector.zero(I8), a1 = IntVector.zero(I8), a2 = IntVector.zero(I8),
                            a3 = IntVector.zero(I8);
                    for (int k = 16 * g; k < 16 * g + 16; k += 8) {
                        ByteVector l0 = ByteVector.fromMemorySegment(B8, seg, ql + k, LE);
                        ByteVector l1 = ByteVector.fromMemorySegment(B8, seg, ql + 32 + k, LE);
                        ByteVector hb = ByteVector.fromMemorySegment(B8, seg, qh + k, LE);
                        ByteVector v0 = l0.and((byte) 0xF).or(hb.and((byte) 3).lanewise(VectorOperators.LSHL, 4));
                        ByteVector v1 = l1.and((byte) 0xF)
                                .or(hb.lanewise(VectorOperators.LSHR, 2).and((byte) 3).lanewise(VectorOperators.LSHL, 4));
                        ByteVector v2 = hi(l0)
                                .or(hb.lanewise(VectorOperators.LSHR, 4).and((byte) 3).lanewise(VectorOperators.LSHL, 4));
                        ByteVector v3 = hi(l1)
                                .or(hb.lanewise(VectorOperators.LSHR, 6).and((byte) 3).lanewise(VectorOperators.LSHL, 4));
                        a0 = a0.add(widen(v0.sub((byte) 32)).mul(IntVector.fromArray(I8, q, yh + k)));
                        a1 = a1.add(widen(v1.sub((byte) 32)).mul(IntVector.fromArray(I8, q, yh + 32 + k)));
                        a2 = a2.add(widen(v2.sub((byte) 32)).mul(IntVector.fromArray(I8, q, yh + 64 + k)));
                        a3 = a3.add(widen(v3.sub((byte) 32)).mul(IntVector.fromArray(I8, q, yh + 96 + k)));
                    }
                    acci = acci.add(a0.mul(seg.get(ValueLayout.JAVA_BYTE, sc + g)))
                            .add(a1.mul(seg.get(ValueLayout.JAVA_BYTE, sc + 2 + g)))
                            .add(a2.mul(seg.get(ValueLayout.JAVA_BYTE, sc + 4 + g)))
                            .add(a3.mul(seg.get(ValueLayout.JAVA_BYTE, sc + 6 + g)));
                }
            }
            acc = toFloat(acci).fma(FloatVector.broadcast(F8, d[db + b] * f16(seg, bo + 208)), acc);
        }
        return acc.reduceLanes(VectorOperators.ADD);
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
