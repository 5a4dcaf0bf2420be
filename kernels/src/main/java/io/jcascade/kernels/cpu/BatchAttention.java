package io.jcascade.kernels.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Causal attention for a batch of tokens (a prompt), with the tokens of a block in vector lanes:
 * the same values, bit for bit, as {@link CpuBackend}'s row-at-a-time loop for batches (which
 * follows llama.cpp's graph: scores summed as tinyBLAS sums them, ggml's softmax, probabilities
 * rounded to half, the weighted values summed in 8 strided accumulators), but each key and value
 * element is loaded once per block of {@link #L} tokens instead of once per token, and every step
 * is a vector operation.
 *
 * <p>Why lanes hold tokens: every sum runs over the head dimension or the positions, in an order
 * fixed by llama.cpp; with tokens in lanes each lane does its own sum in exactly that order, and
 * no sum ever crosses lanes.
 *
 * <p>Layouts (as {@link CpuBackend}): queries and outputs {@code [token][head][d]}; the cache
 * {@code [pos][kvHead][d]}, floats holding halfs. Per task (a block of tokens and one query head)
 * the scratch holds {@code qT[d][lane]} (the query rounded to half, transposed) and
 * {@code p[pos][lane]} (scores, then probabilities).
 *
 * <pre>{@code
 * if (BatchAttention.supports(headDim)) {
 *     BatchAttention.run(kernels, qs, keys, values, os, nHeads, nKvHeads, headDim, startPos, nTokens, qScale, kqScale);
 * }
 * }</pre>
 */
final class BatchAttention {

    private BatchAttention() {
    }

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    /** Tokens per block: one per lane. */
    static final int L = F.length();
    private static final ThreadLocal<float[]> SCRATCH = ThreadLocal.withInitial(() -> new float[0]);

    /** Whether the head dimension suits this kernel (scores go in steps of 8 columns, values {@code 2 L} at a time). */
    static boolean supports(int headDim) {
        return headDim % (2 * L) == 0 && L >= 8;
    }

    /**
     * Attention of tokens {@code [0, nTokens)} (at positions {@code startPos + t}) over the cache
     * positions {@code [0, startPos + t]}, written to {@code os}; the cache must already hold the
     * batch's own keys and values.
     */
    static void run(CpuKernels kernels, float[] qs, float[] keys, float[] values, float[] os, int nHeads,
            int nKvHeads, int headDim, int startPos, int nTokens, float qScale, float kqScale) {
        int blocks = (nTokens + L - 1) / L;
        kernels.parallelFor(blocks * nHeads, task -> block(qs, keys, values, os, nHeads, nKvHeads, headDim,
                startPos, nTokens, qScale, kqScale, task / nHeads, task % nHeads));
    }

    private static void block(float[] qs, float[] keys, float[] values, float[] os, int nHeads, int nKvHeads,
            int headDim, int startPos, int nTokens, float qScale, float kqScale, int b, int h) {
        int t0 = b * L;
        int nb = Math.min(L, nTokens - t0);
        int kvDim = nKvHeads * headDim;
        int kvOffset = h / (nHeads / nKvHeads) * headDim;
        int width = nHeads * headDim;
        // positions [0, unmasked) are seen by every token of the block, [unmasked, maxLen) by some
        int unmasked = startPos + t0 + 1;
        int maxLen = startPos + t0 + nb;
        int padded = (maxLen + 7) & ~7;
        float[] buf = scratch(headDim * L + padded * L + L);
        int pOff = headDim * L;
        int cOff = pOff + padded * L; // L floats: a value per lane (chunk sums, reciprocals) on its way to a scalar
        // qT[d][lane]: token t0 + lane's query, rounded to half; lanes past the batch hold 0
        for (int i = 0; i < L; i++) {
            int qo = (t0 + i) * width + h * headDim;
            for (int d = 0; d < headDim; d++) {
                buf[d * L + i] = i < nb ? CpuBackend.toHalf(qs[qo + d] * qScale) : 0f;
            }
        }
        scores(buf, keys, kvDim, kvOffset, headDim, maxLen, unmasked, kqScale);
        softmax(buf, pOff, maxLen, padded, unmasked, cOff);
        values(buf, pOff, values, kvDim, kvOffset, headDim, unmasked, os, t0 * width + h * headDim, width, nb);
    }

    /**
     * {@code p[s][lane] = (qT . k[s]) * scale} as tinyBLAS sums it: accumulator l takes the
     * products of columns {@code d = l mod 8} in order by fused multiply-add, then
     * {@link GgmlMath#hsum8}'s tree over the 8. Lanes whose token does not see {@code s} get
     * {@code -inf}.
     */
    private static void scores(float[] buf, float[] keys, int kvDim, int kvOffset, int headDim, int maxLen,
            int unmasked, float scale) {
        int pOff = headDim * L;
        int s = 0;
        for (; s + 2 <= maxLen; s += 2) {
            scorePair(buf, keys, s * kvDim + kvOffset, kvDim, headDim, pOff + s * L, scale);
        }
        if (s < maxLen) {
            scoreOne(buf, keys, s * kvDim + kvOffset, headDim, pOff + s * L, scale);
        }
        for (s = unmasked; s < maxLen; s++) {
            int o = pOff + s * L;
            FloatVector.fromArray(F, buf, o).blend(Float.NEGATIVE_INFINITY, hidden(s, unmasked)).intoArray(buf, o);
        }
    }

    /*
     * The two methods below are separate, and each as small as it can be, because C2 stops
     * inlining a method's vector operations past a node budget, and a vector passed to a call it
     * did not inline is allocated, every iteration.
     */

    /** Scores of two consecutive positions (keys at {@code k0} and {@code k0 + kvDim}) to {@code buf[o ..]} and the next L. */
    private static void scorePair(float[] buf, float[] keys, int k0, int kvDim, int headDim, int o, float scale) {
        int k1 = k0 + kvDim;
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F),
                a4 = FloatVector.zero(F), a5 = FloatVector.zero(F), a6 = FloatVector.zero(F), a7 = FloatVector.zero(F);
        FloatVector b0 = FloatVector.zero(F), b1 = FloatVector.zero(F), b2 = FloatVector.zero(F), b3 = FloatVector.zero(F),
                b4 = FloatVector.zero(F), b5 = FloatVector.zero(F), b6 = FloatVector.zero(F), b7 = FloatVector.zero(F);
        for (int d = 0; d < headDim; d += 8) {
            FloatVector q;
            q = FloatVector.fromArray(F, buf, d * L);
            a0 = q.fma(FloatVector.broadcast(F, keys[k0 + d]), a0);
            b0 = q.fma(FloatVector.broadcast(F, keys[k1 + d]), b0);
            q = FloatVector.fromArray(F, buf, (d + 1) * L);
            a1 = q.fma(FloatVector.broadcast(F, keys[k0 + d + 1]), a1);
            b1 = q.fma(FloatVector.broadcast(F, keys[k1 + d + 1]), b1);
            q = FloatVector.fromArray(F, buf, (d + 2) * L);
            a2 = q.fma(FloatVector.broadcast(F, keys[k0 + d + 2]), a2);
            b2 = q.fma(FloatVector.broadcast(F, keys[k1 + d + 2]), b2);
            q = FloatVector.fromArray(F, buf, (d + 3) * L);
            a3 = q.fma(FloatVector.broadcast(F, keys[k0 + d + 3]), a3);
            b3 = q.fma(FloatVector.broadcast(F, keys[k1 + d + 3]), b3);
            q = FloatVector.fromArray(F, buf, (d + 4) * L);
            a4 = q.fma(FloatVector.broadcast(F, keys[k0 + d + 4]), a4);
            b4 = q.fma(FloatVector.broadcast(F, keys[k1 + d + 4]), b4);
            q = FloatVector.fromArray(F, buf, (d + 5) * L);
            a5 = q.fma(FloatVector.broadcast(F, keys[k0 + d + 5]), a5);
            b5 = q.fma(FloatVector.broadcast(F, keys[k1 + d + 5]), b5);
            q = FloatVector.fromArray(F, buf, (d + 6) * L);
            a6 = q.fma(FloatVector.broadcast(F, keys[k0 + d + 6]), a6);
            b6 = q.fma(FloatVector.broadcast(F, keys[k1 + d + 6]), b6);
            q = FloatVector.fromArray(F, buf, (d + 7) * L);
            a7 = q.fma(FloatVector.broadcast(F, keys[k0 + d + 7]), a7);
            b7 = q.fma(FloatVector.broadcast(F, keys[k1 + d + 7]), b7);
        }
        a4.add(a0).add(a6.add(a2)).add(a5.add(a1).add(a7.add(a3))).mul(scale).intoArray(buf, o);
        b4.add(b0).add(b6.add(b2)).add(b5.add(b1).add(b7.add(b3))).mul(scale).intoArray(buf, o + L);
    }

    /** As {@link #scorePair} for one position. */
    private static void scoreOne(float[] buf, float[] keys, int k0, int headDim, int o, float scale) {
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F),
                a4 = FloatVector.zero(F), a5 = FloatVector.zero(F), a6 = FloatVector.zero(F), a7 = FloatVector.zero(F);
        for (int d = 0; d < headDim; d += 8) {
            a0 = FloatVector.fromArray(F, buf, d * L).fma(FloatVector.broadcast(F, keys[k0 + d]), a0);
            a1 = FloatVector.fromArray(F, buf, (d + 1) * L).fma(FloatVector.broadcast(F, keys[k0 + d + 1]), a1);
            a2 = FloatVector.fromArray(F, buf, (d + 2) * L).fma(FloatVector.broadcast(F, keys[k0 + d + 2]), a2);
            a3 = FloatVector.fromArray(F, buf, (d + 3) * L).fma(FloatVector.broadcast(F, keys[k0 + d + 3]), a3);
            a4 = FloatVector.fromArray(F, buf, (d + 4) * L).fma(FloatVector.broadcast(F, keys[k0 + d + 4]), a4);
            a5 = FloatVector.fromArray(F, buf, (d + 5) * L).fma(FloatVector.broadcast(F, keys[k0 + d + 5]), a5);
            a6 = FloatVector.fromArray(F, buf, (d + 6) * L).fma(FloatVector.broadcast(F, keys[k0 + d + 6]), a6);
            a7 = FloatVector.fromArray(F, buf, (d + 7) * L).fma(FloatVector.broadcast(F, keys[k0 + d + 7]), a7);
        }
        hsum8(a0, a1, a2, a3, a4, a5, a6, a7).mul(scale).intoArray(buf, o);
    }

    /** Lanes that do not see position s: the first {@code s - unmasked + 1} (token lane i sees up to unmasked + i - 1). */
    private static VectorMask<Float> hidden(int s, int unmasked) {
        return IOTA.lt((float) (s - unmasked + 1));
    }

    private static final FloatVector IOTA = FloatVector.fromArray(F, iota(), 0);

    private static float[] iota() {
        float[] a = new float[L];
        for (int i = 0; i < L; i++) {
            a[i] = i;
        }
        return a;
    }

    /**
     * ggml_vec_soft_max_f32 per lane: the maximum, exp of the differences ({@link GgmlMath#expf},
     * hidden positions 0), sums of chunks of 8 ({@code hsum8}) added in double, one float
     * reciprocal, probabilities rounded to half, in place.
     */
    private static void softmax(float[] buf, int pOff, int maxLen, int padded, int unmasked, int cOff) {
        FloatVector.broadcast(F, Float.NEGATIVE_INFINITY).intoArray(buf, cOff);
        for (int s = 0; s < maxLen; s++) {
            max(buf, pOff + s * L, cOff);
        }
        for (int s = 0; s < maxLen; s++) {
            exp(buf, pOff + s * L, cOff);
        }
        for (int s = unmasked; s < maxLen; s++) {
            int o = pOff + s * L;
            FloatVector.fromArray(F, buf, o).blend(0f, hidden(s, unmasked)).intoArray(buf, o);
        }
        for (int s = maxLen; s < padded; s++) {
            FloatVector.zero(F).intoArray(buf, pOff + s * L);
        }
        // the chunk sums in double, lane by lane (a float vector per chunk, then L scalar sums)
        double[] sums = SUMS.get();
        java.util.Arrays.fill(sums, 0.0);
        for (int s0 = 0; s0 < padded; s0 += 8) {
            sum8(buf, pOff + s0 * L).intoArray(buf, cOff);
            for (int i = 0; i < L; i++) {
                sums[i] += buf[cOff + i];
            }
        }
        for (int i = 0; i < L; i++) {
            buf[cOff + i] = (float) (1.0 / sums[i]);
        }
        for (int s = 0; s < maxLen; s++) {
            normalize(buf, pOff + s * L, cOff);
        }
    }

    // One vector step each, in methods of their own: see the note above scorePair.

    private static void max(float[] buf, int o, int maxAt) {
        FloatVector.fromArray(F, buf, maxAt).lanewise(VectorOperators.MAX, FloatVector.fromArray(F, buf, o))
                .intoArray(buf, maxAt);
    }

    private static void exp(float[] buf, int o, int maxAt) {
        GgmlMath.expf(FloatVector.fromArray(F, buf, o).sub(FloatVector.fromArray(F, buf, maxAt))).intoArray(buf, o);
    }

    private static void normalize(float[] buf, int o, int invAt) {
        toHalfNonNegative(FloatVector.fromArray(F, buf, o).mul(FloatVector.fromArray(F, buf, invAt))).intoArray(buf, o);
    }

    private static final ThreadLocal<double[]> SUMS = ThreadLocal.withInitial(() -> new double[L]);
    private static final ThreadLocal<float[]> ACC = ThreadLocal.withInitial(() -> new float[16 * L]);

    /**
     * {@code out[d] = sum_s p[s] * v[s][d]} for each token of the block in turn, now with the
     * columns in lanes (value rows are contiguous; with tokens in lanes they would be read down a
     * column, a cache line per element): accumulator {@code r} takes the positions
     * {@code s = r mod 8} the token sees, in order, by fused multiply-add, then the tree of
     * {@code hsum8}; {@code 2 L} columns at a time. The accumulators ({@code acc[r L]} for the
     * first L columns, {@code acc[(8 + r) L]} for the next) go through memory between the whole
     * chunks of 8 positions and the last {@code len % 8}.
     */
    private static void values(float[] buf, int pOff, float[] values, int kvDim, int kvOffset, int headDim,
            int unmasked, float[] os, int oOff, int width, int nb) {
        float[] acc = ACC.get();
        for (int i = 0; i < nb; i++) {
            int len = unmasked + i;
            int full = len & ~7;
            int o = oOff + i * width;
            for (int d = 0; d < headDim; d += 2 * L) {
                valueChunks(buf, pOff + i, values, kvOffset + d, kvDim, full, acc);
                int v = kvOffset + d + full * kvDim, p = pOff + i + full * L;
                for (int s = full; s < len; s++, v += kvDim, p += L) {
                    FloatVector w = FloatVector.broadcast(F, buf[p]);
                    int r = (s & 7) * L;
                    FloatVector.fromArray(F, values, v).fma(w, FloatVector.fromArray(F, acc, r)).intoArray(acc, r);
                    FloatVector.fromArray(F, values, v + L).fma(w, FloatVector.fromArray(F, acc, 8 * L + r))
                            .intoArray(acc, 8 * L + r);
                }
                sum8(acc, 0).intoArray(os, o + d);
                sum8(acc, 8 * L).intoArray(os, o + d + L);
            }
        }
    }

    /**
     * The positions {@code [0, full)} (whole chunks of 8) of one token's weighted sum over
     * {@code 2 L} columns: probabilities at {@code buf[p + s L]}, values at
     * {@code values[v + s kvDim]}; the 16 accumulators stored to {@code acc}.
     */
    private static void valueChunks(float[] buf, int p, float[] values, int v, int kvDim, int full, float[] acc) {
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F), a3 = FloatVector.zero(F),
                a4 = FloatVector.zero(F), a5 = FloatVector.zero(F), a6 = FloatVector.zero(F), a7 = FloatVector.zero(F);
        FloatVector b0 = FloatVector.zero(F), b1 = FloatVector.zero(F), b2 = FloatVector.zero(F), b3 = FloatVector.zero(F),
                b4 = FloatVector.zero(F), b5 = FloatVector.zero(F), b6 = FloatVector.zero(F), b7 = FloatVector.zero(F);
        for (int s = 0; s < full; s += 8, v += 8 * kvDim, p += 8 * L) {
            FloatVector w;
            w = FloatVector.broadcast(F, buf[p]);
            a0 = FloatVector.fromArray(F, values, v).fma(w, a0);
            b0 = FloatVector.fromArray(F, values, v + L).fma(w, b0);
            w = FloatVector.broadcast(F, buf[p + L]);
            a1 = FloatVector.fromArray(F, values, v + kvDim).fma(w, a1);
            b1 = FloatVector.fromArray(F, values, v + kvDim + L).fma(w, b1);
            w = FloatVector.broadcast(F, buf[p + 2 * L]);
            a2 = FloatVector.fromArray(F, values, v + 2 * kvDim).fma(w, a2);
            b2 = FloatVector.fromArray(F, values, v + 2 * kvDim + L).fma(w, b2);
            w = FloatVector.broadcast(F, buf[p + 3 * L]);
            a3 = FloatVector.fromArray(F, values, v + 3 * kvDim).fma(w, a3);
            b3 = FloatVector.fromArray(F, values, v + 3 * kvDim + L).fma(w, b3);
            w = FloatVector.broadcast(F, buf[p + 4 * L]);
            a4 = FloatVector.fromArray(F, values, v + 4 * kvDim).fma(w, a4);
            b4 = FloatVector.fromArray(F, values, v + 4 * kvDim + L).fma(w, b4);
            w = FloatVector.broadcast(F, buf[p + 5 * L]);
            a5 = FloatVector.fromArray(F, values, v + 5 * kvDim).fma(w, a5);
            b5 = FloatVector.fromArray(F, values, v + 5 * kvDim + L).fma(w, b5);
            w = FloatVector.broadcast(F, buf[p + 6 * L]);
            a6 = FloatVector.fromArray(F, values, v + 6 * kvDim).fma(w, a6);
            b6 = FloatVector.fromArray(F, values, v + 6 * kvDim + L).fma(w, b6);
            w = FloatVector.broadcast(F, buf[p + 7 * L]);
            a7 = FloatVector.fromArray(F, values, v + 7 * kvDim).fma(w, a7);
            b7 = FloatVector.fromArray(F, values, v + 7 * kvDim + L).fma(w, b7);
        }
        a0.intoArray(acc, 0);
        a1.intoArray(acc, L);
        a2.intoArray(acc, 2 * L);
        a3.intoArray(acc, 3 * L);
        a4.intoArray(acc, 4 * L);
        a5.intoArray(acc, 5 * L);
        a6.intoArray(acc, 6 * L);
        a7.intoArray(acc, 7 * L);
        b0.intoArray(acc, 8 * L);
        b1.intoArray(acc, 9 * L);
        b2.intoArray(acc, 10 * L);
        b3.intoArray(acc, 11 * L);
        b4.intoArray(acc, 12 * L);
        b5.intoArray(acc, 13 * L);
        b6.intoArray(acc, 14 * L);
        b7.intoArray(acc, 15 * L);
    }

    /** {@link #hsum8} of the 8 vectors at {@code a[o + r L]}, r = 0..7. */
    private static FloatVector sum8(float[] a, int o) {
        return hsum8(FloatVector.fromArray(F, a, o), FloatVector.fromArray(F, a, o + L),
                FloatVector.fromArray(F, a, o + 2 * L), FloatVector.fromArray(F, a, o + 3 * L),
                FloatVector.fromArray(F, a, o + 4 * L), FloatVector.fromArray(F, a, o + 5 * L),
                FloatVector.fromArray(F, a, o + 6 * L), FloatVector.fromArray(F, a, o + 7 * L));
    }

    /** ggml's hsum_float_8 of 8 accumulators, lane by lane: {@code ((a4+a0) + (a6+a2)) + ((a5+a1) + (a7+a3))}. */
    private static FloatVector hsum8(FloatVector a0, FloatVector a1, FloatVector a2, FloatVector a3, FloatVector a4,
            FloatVector a5, FloatVector a6, FloatVector a7) {
        FloatVector h0 = a4.add(a0), h1 = a5.add(a1), h2 = a6.add(a2), h3 = a7.add(a3);
        return h0.add(h2).add(h1.add(h3));
    }

    /**
     * Each lane rounded to the nearest half (ties to even) and back, for lanes in
     * {@code [0, 65504]} (probabilities): below 2^-14 halfs are spaced 2^-24 apart, which adding
     * and subtracting 0.5 rounds to; above, the mantissa is cut to 10 bits with the carry.
     */
    static FloatVector toHalfNonNegative(FloatVector x) {
        FloatVector sub = x.add(0.5f).sub(0.5f);
        IntVector u = (IntVector) x.viewAsIntegralLanes();
        IntVector odd = u.lanewise(VectorOperators.LSHR, 13).and(1);
        FloatVector normal = (FloatVector) u.add(odd.add(0xFFF)).and(~0x1FFF).viewAsFloatingLanes();
        return normal.blend(sub, x.lt(0x1p-14f));
    }

    private static float[] scratch(int size) {
        float[] b = SCRATCH.get();
        if (b.length < size) {
            b = new float[Math.max(size, 2 * b.length)];
            SCRATCH.set(b);
        }
        return b;
    }
}
