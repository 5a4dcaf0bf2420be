package io.jcascade.kernels.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Integer dot products and dequantization of {@link PackedMatrix} rows (512-bit vectors only).
 *
 * <p>Per 64-byte load of packed quants, four (Q4_0, Q4_K, Q6_K low bits) vectors of 32 weight
 * quants come out of shifts and masks in 16-bit lanes, each multiplied with 32 activation quants
 * (permuted to the same order, {@link Q8Activations#permute}) in 16-bit lanes; the products of
 * all the vectors of a group are summed in shorts (the bounds are given per kernel), then widened
 * to int lanes (Q4_0: pair-summed, int lane i = block i; K-quants: a short lane is one ggml lane of
 * one chunk of 32, scaled in ints, folded to ggml's 8 lanes) before one float multiply-add per
 * block or super-block. The float order is ggml's, as in {@link Int8Dot}: K-quant int lanes are ggml's 8
 * lanes (a short lane sums the 4 elements of one ggml lane of one chunk of 32), Q4_0 blocks are
 * multiply-added one after another as llama.cpp's repacked Q4_0 does, so results are bit for bit
 * {@link ScalarInt8}'s.
 */
final class PackedDot {

    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(LE);
    private static final ValueLayout.OfLong I64_LE = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(LE);
    private static final VectorSpecies<Long> L256 = LongVector.SPECIES_256;
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    private static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;
    private static final VectorSpecies<Short> S512 = ShortVector.SPECIES_512;
    private static final VectorSpecies<Integer> I512 = IntVector.SPECIES_512;
    private static final VectorSpecies<Float> F512 = FloatVector.SPECIES_512;

    private static final VectorSpecies<Integer> I256 = IntVector.SPECIES_256;
    private static final VectorSpecies<Float> F256 = FloatVector.SPECIES_256;
    /**
     * K-quant layouts (see {@link PackedMatrix}): in part p (0: short lanes 0..15, 1: 16..31) of
     * the vectors of load l, int lane i is chunk 4l + 2p + i/8 (of 32), ggml lane i % 8. Q4_K's
     * scale (min) of that chunk's sub-block: index 4l + 2p + i/8 (8 + that) of [sc0..sc7, m0..m7];
     * Q6_K's scale (one per 16): index 8l + 4p + i/4. Indexed by 2l + p.
     */
    /** Q4_K: from the 16 ints [sc0..sc7, m0..m7], lane i takes the min of sub-block i/2 (lane i of bsums is in it). */
    private static final VectorShuffle<Integer> M_PICK = VectorShuffle.fromOp(I512, i -> 8 + i / 2);
    private static final VectorShuffle<Integer>[] Q4K_SC = shuffles(I512, (q, i) -> 2 * q + i / 8);
    private static final VectorShuffle<Integer>[] Q6K_SC = shuffles(I512, (q, i) -> 4 * q + i / 4);
    private static final VectorShuffle<Float>[] Q4K_D = shuffles(F512, (q, i) -> 2 * q + i / 8);
    private static final VectorShuffle<Float>[] Q4K_M = shuffles(F512, (q, i) -> 8 + 2 * q + i / 8);
    private static final VectorShuffle<Float>[] Q6K_D = shuffles(F512, (q, i) -> 4 * q + i / 4);
    /** Lane i from lane i ^ 1, and from lane i ^ 2: two adds sum four adjacent lanes into the first. */
    private static final VectorShuffle<Integer> XOR_1 = VectorShuffle.fromOp(I512, i -> i ^ 1);
    private static final VectorShuffle<Integer> XOR_2 = VectorShuffle.fromOp(I512, i -> i ^ 2);
    /** Int lanes i and i + 8 (the same ggml lane) added: lane i of the result, for i < 8. */
    private static final VectorShuffle<Integer> FOLD = VectorShuffle.fromOp(I512, i -> (i + 8) % 16);
    /** Q4_0 dequantization: lanes 0..15 of a 32-lane vector are blocks 0..7 of the group (two lanes each), 16..31 blocks 8..15. */
    private static final VectorShuffle<Float> Q40_LO = VectorShuffle.fromOp(F512, i -> i / 2);
    private static final VectorShuffle<Float> Q40_HI = VectorShuffle.fromOp(F512, i -> 8 + i / 2);

    @SuppressWarnings("unchecked")
    private static <E> VectorShuffle<E>[] shuffles(VectorSpecies<E> species, java.util.function.IntBinaryOperator f) {
        VectorShuffle<E>[] s = new VectorShuffle[4];
        for (int q = 0; q < 4; q++) {
            int qq = q;
            s[q] = VectorShuffle.fromOp(species, i -> f.applyAsInt(qq, i));
        }
        return s;
    }

    private static final ThreadLocal<float[]> BLOCKS = ThreadLocal.withInitial(() -> new float[32]);

    private PackedDot() {
    }

    /**
     * Rows {@code [Ig, Ig + I)} of an interleaved {@code p} (I = {@code p.interleave}) times token
     * {@code t} of {@code a} ({@link Q8Activations#interleaved}), written to {@code out[o .. o + I)}.
     */
    static void group(PackedMatrix p, int g, Q8Activations a, int t, float[] out, int o) {
        int n = p.cols;
        long go = (long) g * p.interleave * p.rowBytes; // a group's rows are one stream
        if (p.type == io.jcascade.gguf.GgmlType.Q8_0) {
            groupQ8_0x2(p.data, go, n / 32, a.q8Halves, t * n, a.d, t * (n / 32), out, o);
        } else if (p.type == io.jcascade.gguf.GgmlType.Q4_K) {
            groupQ4Kx16(p.data, go, n / 256, a.pairs, t * (n / 2), a.sums32, t * (n / 32), a.d, t * (n / 256), out, o);
        } else {
            groupQ4_0x16(p.data, go, n / 32, a.pairs, t * (n / 2), a.d, t * (n / 32), out, o);
        }
    }

    /** Dot product of row {@code r} of {@code p} with token {@code t} of {@code a}, permuted for {@code p}'s type. */
    static float dot(PackedMatrix p, int r, Q8Activations a, int t) {
        int n = p.cols;
        if (p.interleaved()) { // the whole group, one lane kept: for callers off the hot path
            float[] lanes = BLOCKS.get();
            group(p, r / p.interleave, a, t, lanes, 0);
            return lanes[r % p.interleave];
        }
        long off = r * p.rowBytes;
        return switch (p.type) {
            case Q4_0 -> dotQ4_0(p.data, off, n, a.qp, t * n, a.d, t * (n / 32));
            case Q4_K -> dotQ4K(p.data, off, n, a.qp, t * n, a.d, t * (n / 256), a.bsums, t * (n / 16));
            case Q6_K -> dotQ6K(p.data, off, n, a.qp, t * n, a.d, t * (n / 256));
            default -> throw new UnsupportedOperationException(p.type.toString());
        };
    }

    /** Sums of adjacent short lanes (2i, 2i+1) as 16 ints: exact while each pair sum fits in a short. */
    static IntVector pairSum(ShortVector p) {
        IntVector x = p.reinterpretAsInts(); // little-endian: short 2i is the low half of int i
        // (hi * 2^16 + lo) + lo * 2^16 = (hi + lo) * 2^16 + (lo & 0xFFFF): the top half is hi + lo
        return x.add(x.lanewise(VectorOperators.LSHL, 16)).lanewise(VectorOperators.ASHR, 16);
    }

    private static ShortVector act(short[] q, int y) {
        return ShortVector.fromArray(S512, q, y);
    }

    // ---------------------------------------------------------------------------------------------
    // Q4_0

    /**
     * Per group of 16 blocks: 16 vectors of signed quants (-8..7; nibble k sign-extended by shifting
     * it to the top and back) times activations, summed in shorts (16 products of at most 8 * 127
     * per lane: <= 16256; pair sums <= 32512 < 2^15), pair-summed into 16 int lanes (lane i:
     * block i), converted to float and multiplied-added with the 16 blocks' {@code d_w * d_x}
     * one block after another (the order of llama.cpp's repacked Q4_0; the row's single float
     * chain is the price of matching it).
     * Loops rather than unrolled code keep the method small enough for C2 to inline every vector
     * operation (and so intrinsify it).
     */
    static float dotQ4_0(MemorySegment seg, long off, int n, short[] q, int y, float[] d, int db) {
        float acc = 0;
        float[] blocks = BLOCKS.get();
        for (int b = 0; b < n / 32; b += 16) {
            groupQ4_0(seg, off + 18L * b, q, y + 32 * b, d, db + b, blocks, 0);
            // llama.cpp's repacked Q4_0 order: one fused multiply-add per block, block after block
            for (int i = 0; i < 16; i++) {
                acc = Math.fma(blocks[i], blocks[16 + i], acc);
            }
        }
        return acc;
    }

    /**
     * One group of 16 blocks at {@code qo}: the 16 integer block sums (as floats) to
     * {@code blocks[at .. at+16)}, the 16 scales {@code f16(d_w) * d_x} to {@code blocks[at+16 .. at+32)}.
     */
    private static void groupQ4_0(MemorySegment seg, long qo, short[] q, int yb, float[] d, int db, float[] blocks,
            int at) {
        IntVector sums = IntVector.zero(I512);
        for (int l = 0; l < 4; l++) {
            ShortVector w = ShortVector.fromMemorySegment(S512, seg, qo + 64 * l, LE);
            int ya = yb + 128 * l;
            ShortVector p = w.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 12).mul(act(q, ya))
                    .add(w.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 12).mul(act(q, ya + 32)))
                    .add(w.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.ASHR, 12).mul(act(q, ya + 64)))
                    .add(w.lanewise(VectorOperators.ASHR, 12).mul(act(q, ya + 96)));
            sums = sums.add(pairSum(p));
        }
        ((FloatVector) sums.convert(VectorOperators.I2F, 0)).intoArray(blocks, at);
        PanamaKernels.halfToFloat(ShortVector.fromMemorySegment(S256, seg, qo + 256, LE))
                .mul(FloatVector.fromArray(F512, d, db)).intoArray(blocks, at + 16);
    }

    /** 32 short lanes holding the two quants of {@code pair} (low half first) in every int lane. */
    private static ShortVector pairs(int pair) {
        return IntVector.broadcast(I512, pair).reinterpretAsShorts();
    }

    /**
     * Interleaved Q4_0 ({@link PackedMatrix}): 16 rows at once, one float lane per row. Per block:
     * 16 vectors of signed quants (short lanes 2i, 2i+1: row i, elements 2v and 2v+1) times the
     * broadcast activation pair (2v, 2v+1), summed in shorts (16 products of at most 8 * 127 per
     * lane; pair sums <= 32512 < 2^15), pair-summed into 16 int lanes (lane i: row i's block sum),
     * converted and multiplied-added with {@code f16(d_w) * d_x}: per row exactly llama.cpp's
     * repacked Q4_0 chain {@code acc = fma(sum, d_w * d_x, acc)}, block after block.
     *
     * @param go the group's first byte; {@code nb} blocks of 288 bytes follow
     * @param pairs activation pairs, block b's 16 at {@code pairs[pb + 16 b ..)}
     * @param d activation block scales from {@code d[db]}
     */
    static void groupQ4_0x16(MemorySegment seg, long go, int nb, int[] pairs, int pb, float[] d, int db, float[] out,
            int o) {
        FloatVector acc = FloatVector.zero(F512);
        for (int b = 0; b < nb; b++) {
            long bo = go + 288L * b;
            int pv = pb + 16 * b;
            ShortVector s = ShortVector.zero(S512);
            for (int l = 0; l < 4; l++) {
                ShortVector w = ShortVector.fromMemorySegment(S512, seg, bo + 64 * l, LE);
                int pl = pv + 4 * l;
                s = s.add(w.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 12).mul(pairs(pairs[pl])))
                        .add(w.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 12).mul(pairs(pairs[pl + 1])))
                        .add(w.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.ASHR, 12).mul(pairs(pairs[pl + 2])))
                        .add(w.lanewise(VectorOperators.ASHR, 12).mul(pairs(pairs[pl + 3])));
            }
            FloatVector scale = PanamaKernels.halfToFloat(ShortVector.fromMemorySegment(S256, seg, bo + 256, LE))
                    .mul(d[db + b]);
            acc = ((FloatVector) pairSum(s).convert(VectorOperators.I2F, 0)).fma(scale, acc);
        }
        acc.intoArray(out, o);
    }

    /**
     * Interleaved Q4_K ({@link PackedMatrix}): 16 rows at once, one lane per row. Per sub-block c
     * of a super-block: the interleaved Q4_0 block product of the quants stored as {@code q - 8},
     * pair-summed to one int lane per row, plus {@code 8 * S_c} (S_c the sum of
     * the sub-block's activation quants) gives the exact {@code sum(q * x)}, times the row's 6-bit
     * scale; the mins {@code m_c * S_c} likewise. Per super-block and row the two exact sums (at most
     * 8 * 63 * 32 * 15 * 127 < 2^31) are multiplied-added once each, with {@code d * d_x} and
     * {@code dmin * d_x}; the row's result is the difference of the two chains
     * ({@link ScalarInt8}'s super-block order). Two passes over a per-thread scratch of ints
     * ({@link #scaleSubBlocks}, then the super-blocks): as one method, or with the sub-block loop
     * nested in the super-block loop, C2 ran this at about half the speed.
     *
     * @param pairs activation pairs, sub-block k's 16 at {@code pairs[pb + 16 k ..)}
     * @param sums32 activation sub-block sums from {@code sums32[sb]}
     * @param d Q8_K super-block scales from {@code d[db]}
     */
    static void groupQ4Kx16(MemorySegment seg, long go, int ns, int[] pairs, int pb, int[] sums32, int sb, float[] d,
            int db, float[] out, int o) {
        int[] scaled = SCALED.get();
        long[] halves = HALVES.get();
        FloatVector acc = FloatVector.zero(F512);
        FloatVector mins = FloatVector.zero(F512);
        // pieces of PIECE super-blocks: the scratch stays in L1 beside the weights streaming through
        for (int b0 = 0; b0 < ns; b0 += PIECE) {
            int nb = Math.min(PIECE, ns - b0);
            scaleSubBlocks(seg, go + (long) PackedMatrix.Q4K_UNIT * b0, nb, pairs, pb + 128 * b0, sums32, sb + 8 * b0,
                    scaled);
            // per super-block: the 8 scaled sums and the mins m_c * S_c, one multiply-add each
            for (int b = 0; b < nb; b++) {
                long unit = go + (long) PackedMatrix.Q4K_UNIT * (b0 + b);
                IntVector sum = IntVector.zero(I512);
                IntVector min = IntVector.zero(I512);
                for (int c = 0; c < 8; c++) {
                    sum = sum.add(IntVector.fromArray(I512, scaled, 32 * (8 * b + c)));
                    min = min.add(IntVector.fromArray(I512, scaled, 32 * (8 * b + c) + 16));
                }
                float dx = d[db + b0 + b];
                for (int i = 0; i < 8; i++) { // 8 bytes of the 16 d, then of the 16 dmin, per chunk
                    halves[i] = seg.get(I64_LE, unit + (long) PackedMatrix.Q4K_CHUNK * i + PackedMatrix.Q4K_HALVES);
                }
                FloatVector dd = PanamaKernels.halfToFloat(LongVector.fromArray(L256, halves, 0).reinterpretAsShorts()).mul(dx);
                FloatVector dm = PanamaKernels.halfToFloat(LongVector.fromArray(L256, halves, 4).reinterpretAsShorts()).mul(dx);
                acc = ((FloatVector) sum.convert(VectorOperators.I2F, 0)).fma(dd, acc);
                mins = ((FloatVector) min.convert(VectorOperators.I2F, 0)).fma(dm, mins);
            }
        }
        acc.sub(mins).intoArray(out, o);
    }

    /**
     * Interleaved Q4_K's first pass (its own method: one method with both passes passed C2's
     * inlining budget and boxed vectors): each sub-block's exact {@code sum(q * x)} times its
     * scale, 16 ints to {@code scaled[32k ..)}, and its mins {@code m_c * S_c} to {@code scaled[32k + 16 ..)}.
     */
    private static void scaleSubBlocks(MemorySegment seg, long go, int ns, int[] pairs, int pb, int[] sums32, int sb,
            int[] scaled) {
        // one flat loop over the group's sub-blocks k = 8b + c, as interleaved Q4_0's over its blocks;
        // the block product written out as there, not shared: through one helper for both kernels
        // this one fell from 18 to 11.6 GB/s per core on 8192x2048 (the helper's vector is boxed)
        for (int k = 0; k < 8 * ns; k++) {
            long bo = go + (long) PackedMatrix.Q4K_CHUNK * k; // linear in k: see PackedMatrix.Q4K_CHUNK
            int pv = pb + 16 * k;
            ShortVector s = ShortVector.zero(S512);
            for (int l = 0; l < 4; l++) {
                ShortVector w = ShortVector.fromMemorySegment(S512, seg, bo + 64 * l, LE);
                int pl = pv + 4 * l;
                s = s.add(w.lanewise(VectorOperators.LSHL, 12).lanewise(VectorOperators.ASHR, 12).mul(pairs(pairs[pl])))
                        .add(w.lanewise(VectorOperators.LSHL, 8).lanewise(VectorOperators.ASHR, 12).mul(pairs(pairs[pl + 1])))
                        .add(w.lanewise(VectorOperators.LSHL, 4).lanewise(VectorOperators.ASHR, 12).mul(pairs(pairs[pl + 2])))
                        .add(w.lanewise(VectorOperators.ASHR, 12).mul(pairs(pairs[pl + 3])));
            }
            int sx = sums32[sb + k];
            // the 16 scale bytes then the 16 min bytes as 32 short lanes, each half then as 16 ints
            ShortVector sm = (ShortVector) ByteVector.fromMemorySegment(B256, seg, bo + PackedMatrix.Q4K_SC, LE)
                    .convertShape(VectorOperators.B2S, S512, 0);
            pairSum(s).add(8 * sx).mul((IntVector) sm.convertShape(VectorOperators.S2I, I512, 0)).intoArray(scaled, 32 * k);
            ((IntVector) sm.convertShape(VectorOperators.S2I, I512, 1)).mul(sx).intoArray(scaled, 32 * k + 16);
        }
    }

    /** A unit's 16 fp16 d then 16 fp16 dmin, gathered from its chunks, per thread. */
    private static final ThreadLocal<long[]> HALVES = ThreadLocal.withInitial(() -> new long[8]);

    /** Super-blocks per pass of {@link #groupQ4Kx16}: 8 KB of scratch. */
    private static final int PIECE = 8;

    /** Interleaved Q4_K's scaled sums and mins of a piece's sub-blocks (32 ints each), per thread. */
    private static final ThreadLocal<int[]> SCALED = ThreadLocal.withInitial(() -> new int[256 * PIECE]);

    private static final VectorMask<Float> HIGH_8 = VectorMask.fromLong(F512, 0xFF00L);
    private static final VectorSpecies<Byte> B256 = ByteVector.SPECIES_256;

    /**
     * 32 Q8_0 weight quants at {@code at} as 32 short lanes. Int8Dot.q8w's twin, kept here on
     * purpose: a vector-returning helper of another class that C2 does not inline boxes its
     * vectors (see PanamaKernels.reduce4x8).
     */
    private static ShortVector q8(MemorySegment seg, long at) {
        return (ShortVector) ByteVector.fromMemorySegment(B256, seg, at, LE).convertShape(VectorOperators.B2S, S512, 0);
    }

    /** 32 activation quants at {@code q[y ..)} as 32 short lanes. */
    private static ShortVector act8(byte[] q, int y) {
        return (ShortVector) ByteVector.fromArray(B256, q, y).convertShape(VectorOperators.B2S, S512, 0);
    }

    /**
     * Interleaved Q8_0 ({@link PackedMatrix}): two rows at once, float lanes 0..7 ggml's 8 lanes of
     * the first row, 8..15 of the second. Per block: each 32-byte half widened to shorts, times the
     * activations' half of the block in both halves of a vector ({@link Q8Activations#halves}, copied
     * in registers by one permute), pair-summed into ints
     * (products <= 128 * 127, pair sums < 2^15) and the two halves added: int lane l holds elements
     * 4l .. 4l+3 of its row, as ggml's {@code mul_sum_i8_pairs_float}; then one multiply-add with
     * {@code f16(d_w) * d_x} per row's lanes and ggml's {@code hsum_float_8} per row at the end: bit
     * for bit {@code ggml_vec_dot_q8_0_q8_0} on each row.
     */
    static void groupQ8_0x2(MemorySegment seg, long go, int nb, byte[] q, int yb, float[] d, int db, float[] out,
            int o) {
        FloatVector acc = FloatVector.zero(F512);
        for (int b = 0; b < nb; b++) {
            long unit = go + 68L * b;
            ShortVector x = act8(q, yb + 32 * b); // half 0 in lanes 0..15, half 1 in 16..31
            IntVector s = pairSum(q8(seg, unit).mul(x.rearrange(HALF_0)))
                    .add(pairSum(q8(seg, unit + 32).mul(x.rearrange(HALF_1))));
            float dx = d[db + b];
            FloatVector scale = FloatVector.broadcast(F512, Float.float16ToFloat(seg.get(I16_LE, unit + 64)) * dx)
                    .blend(Float.float16ToFloat(seg.get(I16_LE, unit + 66)) * dx, HIGH_8);
            acc = ((FloatVector) s.convert(VectorOperators.I2F, 0)).fma(scale, acc);
        }
        out[o] = Int8Dot.hsum8((FloatVector) acc.reinterpretShape(F256, 0));
        out[o + 1] = Int8Dot.hsum8((FloatVector) acc.reinterpretShape(F256, 1));
    }

    /** A block's half 0 (lanes 0..15) or half 1 (16..31) of the activations, twice over: one copy per row of a unit. */
    private static final VectorShuffle<Short> HALF_0 = VectorShuffle.fromOp(S512, i -> i % 16);
    private static final VectorShuffle<Short> HALF_1 = VectorShuffle.fromOp(S512, i -> 16 + i % 16);

    // ---------------------------------------------------------------------------------------------
    // Q4_K

    /**
     * Per super-block, for each of its two 64-byte loads: 4 vectors of quants (0..15) times
     * activations summed in shorts (short lane j: the 4 elements of ggml lane j % 8 of chunk
     * 4l + j/8, at most 4 * 15 * 127), widened to two int vectors, times their chunks' 6-bit
     * scales; the 16 int lanes folded to ggml's 8 and one float FMA with {@code d * d_x}; the mins
     * in ggml's four float lanes.
     */
    static float dotQ4K(MemorySegment seg, long off, int n, short[] q, int y, float[] d, int db, int[] bsums,
            int bso) {
        int ns = n / 256;
        FloatVector acc = FloatVector.zero(F256);
        FloatVector mins = FloatVector.zero(F512); // ggml's four min lanes in lanes 0, 4, 8, 12
        for (int b = 0; b < ns; b++) {
            long qo = off + 148L * b;
            int yb = y + 256 * b;
            // the 16 bytes [sc0..sc7, m0..m7] as ints (via shorts: a direct 128-to-512-bit B2I is not intrinsified)
            IntVector sm = (IntVector) ByteVector.fromMemorySegment(B128, seg, qo + 132, LE)
                    .convertShape(VectorOperators.B2S, S256, 0).convertShape(VectorOperators.S2I, I512, 0);
            IntVector lanes = IntVector.zero(I512);
            for (int l = 0; l < 2; l++) {
                ShortVector w = ShortVector.fromMemorySegment(S512, seg, qo + 64 * l, LE);
                int ya = yb + 128 * l;
                // short lane j: ggml lane j % 8 of chunk 4l + j/8, summed over its 4 elements (a
                // loop, not four copies: small enough for C2 to intrinsify every vector operation)
                ShortVector p = ShortVector.zero(S512);
                for (int k = 0; k < 4; k++) {
                    p = p.add(nibble(w, k).mul(act(q, ya + 32 * k)));
                }
                lanes = lanes.add(((IntVector) p.convertShape(VectorOperators.S2I, I512, 0)).mul(sm.rearrange(Q4K_SC[2 * l])))
                        .add(((IntVector) p.convertShape(VectorOperators.S2I, I512, 1)).mul(sm.rearrange(Q4K_SC[2 * l + 1])));
            }
            float yd = d[db + b];
            float dd = yd * Float.float16ToFloat(seg.get(I16_LE, qo + 128));
            float dmin = -yd * Float.float16ToFloat(seg.get(I16_LE, qo + 130));
            acc = eight(lanes).fma(FloatVector.broadcast(F256, dd), acc);
            // ggml's four min lanes: lane c += dmin * (m_2c * S_2c + m_2c+1 * S_2c+1), S_j the sum of
            // sub-block j's quants (two bsums of 16). Int lane i: m_{i/2} * bsum_i; lanes 4c .. 4c+3
            // summed into lane 4c (exact in ints), so float lane 4c of mins is ggml's lane c
            IntVector pm = sm.rearrange(M_PICK).mul(IntVector.fromArray(I512, bsums, bso + 16 * b));
            pm = pm.add(pm.rearrange(XOR_1));
            pm = pm.add(pm.rearrange(XOR_2));
            mins = ((FloatVector) pm.convert(VectorOperators.I2F, 0)).fma(FloatVector.broadcast(F512, dmin), mins);
        }
        return Int8Dot.hsum8(acc) + ((mins.lane(0) + mins.lane(8)) + (mins.lane(4) + mins.lane(12)));
    }

    /** Nibble k (0..3) of each short lane, 0..15: the top one needs no mask after a logical shift. */
    private static ShortVector nibble(ShortVector w, int k) {
        return k == 3 ? w.lanewise(VectorOperators.LSHR, 12) : w.lanewise(VectorOperators.LSHR, 4 * k).and((short) 0xF);
    }

    private static int u8(MemorySegment seg, long off) {
        return Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, off));
    }

    /** ggml's 8 lanes from 16 int lanes (lane i and i + 8 are the same ggml lane), as floats. */
    private static FloatVector eight(IntVector lanes16) {
        IntVector folded = lanes16.add(lanes16.rearrange(FOLD));
        return (FloatVector) ((IntVector) folded.reinterpretShape(I256, 0)).convert(VectorOperators.I2F, 0);
    }

    // ---------------------------------------------------------------------------------------------
    // Q6_K

    /**
     * Value 4l + k (0..7) of a Q6_K super-block, {@code q - 32} (-32..31): the low 4 bits from
     * nibble k of {@code w}, plus 16 times the high 2 bits stored as {@code high - 2} in two's
     * complement (crumb v = 4l + k of {@code h}: shifted to the top, arithmetically down to bits
     * 0..1, up to 4..5): an add where an or and a subtraction of 32 were.
     */
    private static ShortVector q6(ShortVector w, ShortVector h, int l, int k) {
        int v = 4 * l + k;
        ShortVector top = v == 7 ? h : h.lanewise(VectorOperators.LSHL, 14 - 2 * v);
        return nibble(w, k).add(top.lanewise(VectorOperators.ASHR, 14).lanewise(VectorOperators.LSHL, 4));
    }

    /**
     * Per super-block, for each of its two 64-byte loads: 4 vectors of values (-32..31) times
     * activations summed in shorts (short lane j: the 4 elements of ggml lane j % 8 of chunk
     * 4l + j/8, at most 4 * 32 * 127), widened to two int vectors, times the int8 scale of each
     * lane's 16 elements; folded to ggml's 8 lanes and one float FMA with {@code d * d_x}.
     */
    static float dotQ6K(MemorySegment seg, long off, int n, short[] q, int y, float[] d, int db) {
        int ns = n / 256;
        FloatVector acc = FloatVector.zero(F256);
        for (int b = 0; b < ns; b++) {
            long qo = off + 210L * b;
            int yb = y + 256 * b;
            ShortVector h = ShortVector.fromMemorySegment(S512, seg, qo + 128, LE);
            IntVector sc = (IntVector) ByteVector.fromMemorySegment(B128, seg, qo + 192, LE)
                    .convertShape(VectorOperators.B2S, S256, 0).convertShape(VectorOperators.S2I, I512, 0);
            IntVector lanes = IntVector.zero(I512);
            for (int l = 0; l < 2; l++) {
                ShortVector w = ShortVector.fromMemorySegment(S512, seg, qo + 64 * l, LE);
                ShortVector p = ShortVector.zero(S512);
                for (int k = 0; k < 4; k++) {
                    p = p.add(q6(w, h, l, k).mul(act(q, yb + 128 * l + 32 * k)));
                }
                lanes = lanes.add(((IntVector) p.convertShape(VectorOperators.S2I, I512, 0)).mul(sc.rearrange(Q6K_SC[2 * l])))
                        .add(((IntVector) p.convertShape(VectorOperators.S2I, I512, 1)).mul(sc.rearrange(Q6K_SC[2 * l + 1])));
            }
            float dd = d[db + b] * Float.float16ToFloat(seg.get(I16_LE, qo + 208));
            acc = eight(lanes).fma(FloatVector.broadcast(F256, dd), acc);
        }
        return Int8Dot.hsum8(acc);
    }

    // ---------------------------------------------------------------------------------------------
    // dequantization, in packed element order (prompt batches multiply it with permuted activations)

    /**
     * Row {@code r} of {@code p} as floats in packed element order (group or super-block {@code i}
     * at {@code out[oo + 128 i ..)} / {@code out[oo + 256 i ..)}, permuted by
     * {@link PackedMatrix#permutation}): each value bit for bit what the file layout's
     * dequantization gives for that element.
     */
    static void dequantizePacked(PackedMatrix p, int r, float[] out, int oo) {
        if (p.type == io.jcascade.gguf.GgmlType.F16) { // natural order, piece by piece
            for (int c = 0; c < p.cols; c += PackedMatrix.F16_PIECE) {
                PanamaKernels.packedHalfsToFloats(p.data, p.f16PieceOffset(r, c), out, oo + c,
                        Math.min(PackedMatrix.F16_PIECE, p.cols - c));
            }
            return;
        }
        MemorySegment seg = p.data;
        long off = r * p.rowBytes;
        int n = p.cols;
        if (p.interleaved()) {
            long go = (long) (r / p.interleave) * p.interleave * p.rowBytes;
            if (p.type == io.jcascade.gguf.GgmlType.Q8_0) {
                dequantQ8_0x2(seg, go, r % p.interleave, n, out, oo);
            } else if (p.type == io.jcascade.gguf.GgmlType.Q4_K) {
                dequantQ4Kx16(seg, go, r % p.interleave, n, out, oo);
            } else {
                dequantQ4_0x16(seg, go, r % p.interleave, n, out, oo);
            }
            return;
        }
        switch (p.type) {
            case Q4_0 -> dequantQ4_0(seg, off, n, out, oo);
            case Q4_K -> dequantQ4K(seg, off, n, out, oo);
            case Q6_K -> dequantQ6K(seg, off, n, out, oo);
            default -> throw new UnsupportedOperationException(p.type.toString());
        }
    }

    /**
     * Row {@code h} (0, 1) of the interleaved Q8_0 pair at {@code go}, in the layout's order
     * ({@link PackedMatrix#PERM_Q8_0} per block): each half's 16 lanes of the row, times the scale.
     */
    private static void dequantQ8_0x2(MemorySegment seg, long go, int h, int n, float[] out, int oo) {
        for (int b = 0; b < n / 32; b++) {
            long unit = go + 68L * b;
            FloatVector d = FloatVector.broadcast(F512, Float.float16ToFloat(seg.get(I16_LE, unit + 64 + 2L * h)));
            for (int half = 0; half < 2; half++) {
                ShortVector v = q8(seg, unit + 32 * half);
                FloatVector f = h == 0 ? lowF(v) : highF(v);
                f.mul(d).intoArray(out, oo + 32 * b + 16 * half);
            }
        }
    }

    /** Row {@code row} of the interleaved group at {@code go}, natural order (the layout's own). */
    private static void dequantQ4_0x16(MemorySegment seg, long go, int row, int n, float[] out, int oo) {
        for (int b = 0; b < n / 32; b++) {
            long unit = go + 288L * b;
            float d = Float.float16ToFloat(seg.get(I16_LE, unit + 256 + 2L * row));
            for (int l = 0; l < 4; l++) {
                // the row's shorts 2 row, 2 row + 1 of load l: elements 8l + 2k + parity, nibble k
                int v = seg.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(LE), unit + 64L * l + 4L * row);
                for (int k = 0; k < 4; k++) {
                    int e = oo + 32 * b + 8 * l + 2 * k;
                    out[e] = ((v << (28 - 4 * k)) >> 28) * d;
                    out[e + 1] = ((v << (12 - 4 * k)) >> 28) * d;
                }
            }
        }
    }

    /**
     * Row {@code row} of the interleaved Q4_K group at {@code go}, natural order: {@code q * (d * sc)
     * - dmin * m} per element, as the file layout's dequantization rounds it.
     */
    private static void dequantQ4Kx16(MemorySegment seg, long go, int row, int n, float[] out, int oo) {
        for (int b = 0; b < n / 256; b++) {
            long unit = go + (long) PackedMatrix.Q4K_UNIT * b;
            float d = Float.float16ToFloat(seg.get(I16_LE, PackedMatrix.q4kD(unit, row)));
            float dmin = Float.float16ToFloat(seg.get(I16_LE, PackedMatrix.q4kDmin(unit, row)));
            for (int c = 0; c < 8; c++) {
                long chunk = unit + (long) PackedMatrix.Q4K_CHUNK * c;
                float ds = d * u8(seg, chunk + PackedMatrix.Q4K_SC + row);
                float dm = dmin * u8(seg, chunk + PackedMatrix.Q4K_SC + 16 + row);
                for (int l = 0; l < 4; l++) {
                    // the row's shorts 2 row, 2 row + 1 of load l: elements 8l + 2k + parity, nibble k
                    int v = seg.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(LE), chunk + 64L * l + 4L * row);
                    for (int k = 0; k < 4; k++) {
                        int e = oo + 256 * b + 32 * c + 8 * l + 2 * k;
                        out[e] = ((((v >> (4 * k)) & 0xF) ^ 8) * ds) - dm;
                        out[e + 1] = ((((v >> (16 + 4 * k)) & 0xF) ^ 8) * ds) - dm;
                    }
                }
            }
        }
    }

    /** A unit's per-row scales for the column dequantization ({@link #rowScalesQ4K}), per thread. */
    private static final ThreadLocal<float[]> GROUP_SCALES = ThreadLocal.withInitial(() -> new float[256]);

    /**
     * The 16 rows of interleaved group {@code g} (Q4_0 or Q4_K) column by column, element j of row
     * i at {@code out[16 j + i]}: see {@link #dequantizeGroupColumnsQ4K}.
     */
    static void dequantizeGroupColumns(PackedMatrix p, int g, float[] out) {
        if (p.type == io.jcascade.gguf.GgmlType.Q4_K) {
            dequantizeGroupColumnsQ4K(p, g, out);
        } else {
            dequantizeGroupColumnsQ4_0(p, g, out);
        }
    }

    /** As {@link #dequantizeGroupColumnsQ4K}, for interleaved Q4_0: {@code (q - 8) * d}, as {@link #dequantQ4_0x16}. */
    private static void dequantizeGroupColumnsQ4_0(PackedMatrix p, int g, float[] out) {
        int n = p.cols;
        long go = (long) g * p.interleave * p.rowBytes;
        for (int b = 0; b < n / 32; b++) {
            long unit = go + 288L * b;
            FloatVector d = PanamaKernels.halfToFloat(ShortVector.fromMemorySegment(S256, p.data, unit + 256, LE));
            for (int l = 0; l < 4; l++) {
                IntVector w = IntVector.fromMemorySegment(I512, p.data, unit + 64 * l, LE);
                int col = 32 * b + 8 * l;
                for (int k = 0; k < 4; k++) {
                    for (int h = 0; h < 2; h++) {
                        // nibble k of short h, signed 4 bits: shifted to the top and back
                        IntVector q = w.lanewise(VectorOperators.LSHL, 28 - 16 * h - 4 * k).lanewise(VectorOperators.ASHR, 28);
                        ((FloatVector) q.convert(VectorOperators.I2F, 0)).mul(d).intoArray(out, 16 * (col + 2 * k + h));
                    }
                }
            }
        }
    }

    /**
     * The 16 rows of interleaved Q4_K group {@code g} as floats column by column: element j of
     * row i at {@code out[16 j + i]}, each value as the file layout's dequantization rounds it
     * ({@code q * (d * sc) - dmin * m}). An int lane of a load is one row, so each nibble of the
     * 16 lanes is one column of the 16 rows: no shuffles, no scatters; a prompt multiplies it
     * with {@link PanamaKernels}' 16-row tiles.
     */
    private static void dequantizeGroupColumnsQ4K(PackedMatrix p, int g, float[] out) {
        int n = p.cols;
        long go = (long) g * p.interleave * p.rowBytes;
        float[] f = GROUP_SCALES.get();
        for (int b = 0; b < n / 256; b++) {
            long unit = go + (long) PackedMatrix.Q4K_UNIT * b;
            rowScalesQ4K(p.data, unit, f);
            for (int c = 0; c < 8; c++) {
                FloatVector ds = FloatVector.fromArray(F512, f, 32 * c), dm = FloatVector.fromArray(F512, f, 32 * c + 16);
                long chunk = unit + (long) PackedMatrix.Q4K_CHUNK * c;
                for (int l = 0; l < 4; l++) {
                    IntVector w = IntVector.fromMemorySegment(I512, p.data, chunk + 64 * l, LE);
                    int col = 256 * b + 32 * c + 8 * l;
                    // element 8l + 2k + h of each row: nibble k of its short h (stored q ^ 8)
                    for (int k = 0; k < 4; k++) {
                        for (int h = 0; h < 2; h++) {
                            IntVector q = w.lanewise(VectorOperators.LSHR, 16 * h + 4 * k).and(0xF).lanewise(VectorOperators.XOR, 8);
                            ((FloatVector) q.convert(VectorOperators.I2F, 0)).mul(ds).sub(dm)
                                    .intoArray(out, 16 * (col + 2 * k + h));
                        }
                    }
                }
            }
        }
    }

    /** Per sub-block c of the unit at {@code unit}: the 16 rows' {@code d * sc} at {@code f[32c ..)}, {@code dmin * m} at {@code f[32c + 16 ..)}. */
    private static void rowScalesQ4K(MemorySegment seg, long unit, float[] f) {
        for (int r = 0; r < 16; r++) {
            float d = Float.float16ToFloat(seg.get(I16_LE, PackedMatrix.q4kD(unit, r)));
            float dmin = Float.float16ToFloat(seg.get(I16_LE, PackedMatrix.q4kDmin(unit, r)));
            for (int c = 0; c < 8; c++) {
                long sc = unit + (long) PackedMatrix.Q4K_CHUNK * c + PackedMatrix.Q4K_SC;
                f[32 * c + r] = d * u8(seg, sc + r);
                f[32 * c + 16 + r] = dmin * u8(seg, sc + 16 + r);
            }
        }
    }

    /** Row {@code r} of {@code p} as floats in the natural element order. */
    static void dequantizeRow(PackedMatrix p, int r, float[] out, int oo) {
        if ((p.interleaved() && p.type != io.jcascade.gguf.GgmlType.Q8_0)
                || p.type == io.jcascade.gguf.GgmlType.F16) { // natural order already
            dequantizePacked(p, r, out, oo);
            return;
        }
        float[] tmp = new float[p.cols];
        dequantizePacked(p, r, tmp, 0);
        int[] perm = PackedMatrix.permutation(p);
        int g = perm.length;
        for (int base = 0; base < p.cols; base += g) {
            for (int i = 0; i < g; i++) {
                out[oo + base + perm[i]] = tmp[base + i];
            }
        }
    }

    /** The two float halves (lanes 0..15, 16..31) of 32 short lanes. */
    private static FloatVector lowF(ShortVector v) {
        return (FloatVector) v.convertShape(VectorOperators.S2I, I512, 0).convert(VectorOperators.I2F, 0);
    }

    private static FloatVector highF(ShortVector v) {
        return (FloatVector) v.convertShape(VectorOperators.S2I, I512, 1).convert(VectorOperators.I2F, 0);
    }

    private static void dequantQ4_0(MemorySegment seg, long off, int n, float[] out, int oo) {
        int nb = n / 32;
        for (int g = 0; g < nb / 16; g++) {
            long go = off + 288L * g;
            // lanes 0..15 of a 32-lane vector are blocks 0..7 of the group (two lanes each), 16..31 blocks 8..15
            FloatVector s = PanamaKernels.halfToFloat(ShortVector.fromMemorySegment(S256, seg, go + 256, LE));
            FloatVector sLo = s.rearrange(Q40_LO), sHi = s.rearrange(Q40_HI);
            int o = oo + 512 * g;
            for (int l = 0; l < 4; l++) {
                ShortVector w = ShortVector.fromMemorySegment(S512, seg, go + 64 * l, LE);
                for (int k = 0; k < 4; k++) {
                    ShortVector v = w.lanewise(VectorOperators.LSHL, 12 - 4 * k).lanewise(VectorOperators.ASHR, 12);
                    int e = o + 128 * l + 32 * k;
                    lowF(v).mul(sLo).intoArray(out, e);
                    highF(v).mul(sHi).intoArray(out, e + 16);
                }
            }
        }
    }

    private static void dequantQ4K(MemorySegment seg, long off, int n, float[] out, int oo) {
        int ns = n / 256;
        for (int b = 0; b < ns; b++) {
            long bo = off + 148L * b;
            float d = Float.float16ToFloat(seg.get(I16_LE, bo + 128));
            float dmin = Float.float16ToFloat(seg.get(I16_LE, bo + 130));
            FloatVector sm = (FloatVector) ByteVector.fromMemorySegment(B128, seg, bo + 132, LE)
                    .convertShape(VectorOperators.B2S, S256, 0).convertShape(VectorOperators.S2I, I512, 0)
                    .convert(VectorOperators.I2F, 0);
            // lanes 0..7: d * sc_i, lanes 8..15: dmin * m_i (as the file path's float products)
            FloatVector f = sm.mul(FloatVector.broadcast(F512, d).blend(dmin, VectorMask.fromLong(F512, 0xFF00L)));
            int o = oo + 256 * b;
            for (int l = 0; l < 2; l++) {
                FloatVector dLo = f.rearrange(Q4K_D[2 * l]), dHi = f.rearrange(Q4K_D[2 * l + 1]);
                FloatVector mLo = f.rearrange(Q4K_M[2 * l]), mHi = f.rearrange(Q4K_M[2 * l + 1]);
                ShortVector w = ShortVector.fromMemorySegment(S512, seg, bo + 64 * l, LE);
                for (int k = 0; k < 4; k++) {
                    ShortVector v = w.lanewise(VectorOperators.LSHR, 4 * k).and((short) 0xF);
                    int e = o + 32 * (4 * l + k);
                    lowF(v).mul(dLo).sub(mLo).intoArray(out, e);
                    highF(v).mul(dHi).sub(mHi).intoArray(out, e + 16);
                }
            }
        }
    }

    private static void dequantQ6K(MemorySegment seg, long off, int n, float[] out, int oo) {
        int ns = n / 256;
        for (int b = 0; b < ns; b++) {
            long bo = off + 210L * b;
            float d = Float.float16ToFloat(seg.get(I16_LE, bo + 208));
            FloatVector f = ((FloatVector) ByteVector.fromMemorySegment(B128, seg, bo + 192, LE)
                    .convertShape(VectorOperators.B2S, S256, 0).convertShape(VectorOperators.S2I, I512, 0)
                    .convert(VectorOperators.I2F, 0)).mul(d);
            ShortVector h = ShortVector.fromMemorySegment(S512, seg, bo + 128, LE);
            int o = oo + 256 * b;
            for (int l = 0; l < 2; l++) {
                FloatVector fLo = f.rearrange(Q6K_D[2 * l]), fHi = f.rearrange(Q6K_D[2 * l + 1]);
                ShortVector w = ShortVector.fromMemorySegment(S512, seg, bo + 64 * l, LE);
                for (int k = 0; k < 4; k++) {
                    ShortVector val = q6(w, h, l, k);
                    int e = o + 128 * l + 32 * k;
                    lowF(val).mul(fLo).intoArray(out, e);
                    highF(val).mul(fHi).intoArray(out, e + 16);
                }
            }
        }
    }
}
