package io.jcascade.kernels.quant;

import io.jcascade.gguf.GgmlType;

/**
 * ggml's reference quantization of float rows into Q8_0, Q4_0, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K
 * blocks, written from the algorithms of {@code quantize_row_q8_0_ref}, {@code quantize_row_q4_0_ref},
 * {@code quantize_row_q2_K_ref}, {@code quantize_row_q3_K_ref}, {@code quantize_row_q4_K_ref}, {@code quantize_row_q5_K_ref},
 * {@code quantize_row_q6_K_ref} (with {@code make_q3_quants}, {@code make_qkx2_quants} and
 * {@code make_qx_quants}), in float arithmetic as ggml does,
 * so that the blocks come out as llama-quantize writes them without an importance matrix.
 *
 * <pre>{@code
 * byte[] row = new byte[(int) GgmlType.Q4_K.rowBytes(4096)];
 * Quantizer.quantizeRow(GgmlType.Q4_K, x, 0, 4096, row, 0);
 * }</pre>
 */
public final class Quantizer {

    private static final float GROUP_MAX_EPS = 1e-15f;

    private Quantizer() {
    }

    /** Whether {@link #quantizeRow} handles {@code type}. */
    public static boolean supports(GgmlType type) {
        return switch (type) {
            case Q8_0, Q4_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> true;
            default -> false;
        };
    }

    /**
     * Quantizes {@code x[xo .. xo+n)} ({@code n} a multiple of the type's block size) into
     * {@code out[oo .. oo + type.rowBytes(n))}.
     */
    public static void quantizeRow(GgmlType type, float[] x, int xo, int n, byte[] out, int oo) {
        int nb = n / type.blockSize();
        if ((long) nb * type.blockSize() != n) {
            throw new IllegalArgumentException(n + " is not a multiple of " + type + "'s block size");
        }
        for (int b = 0; b < nb; b++) {
            int xb = xo + b * type.blockSize();
            int ob = oo + b * type.typeSize();
            switch (type) {
                case Q8_0 -> q8_0(x, xb, out, ob);
                case Q4_0 -> q4_0(x, xb, out, ob);
                case Q2_K -> q2K(x, xb, out, ob);
                case Q3_K -> q3K(x, xb, out, ob);
                case Q4_K -> q45K(x, xb, out, ob, false);
                case Q5_K -> q45K(x, xb, out, ob, true);
                case Q6_K -> q6K(x, xb, out, ob);
                default -> throw new UnsupportedOperationException("cannot quantize to " + type);
            }
        }
    }

    /** ggml's nearest_int: round half to even (the float + 1.5*2^23 trick). */
    static int nearestInt(float v) {
        return (int) Math.rint(v);
    }

    private static void putF16(byte[] out, int o, float v) {
        short h = Float.floatToFloat16(v);
        out[o] = (byte) h;
        out[o + 1] = (byte) (h >> 8);
    }

    private static float f16(float v) {
        return Float.float16ToFloat(Float.floatToFloat16(v));
    }

    /** Q8_0: fp16 d = amax/127, qs = roundf(x / d). */
    private static void q8_0(float[] x, int xb, byte[] out, int ob) {
        float amax = 0;
        for (int j = 0; j < 32; j++) {
            amax = Math.max(amax, Math.abs(x[xb + j]));
        }
        float d = amax / 127f;
        float id = d != 0 ? 1f / d : 0f;
        putF16(out, ob, d);
        for (int j = 0; j < 32; j++) {
            out[ob + 2 + j] = (byte) roundf(x[xb + j] * id);
        }
    }

    /** C's roundf: half away from zero. */
    private static int roundf(float v) {
        return v < 0 ? -Math.round(-v) : Math.round(v);
    }

    /** Q4_0: d = max / -8 (max the signed element of largest magnitude), q = min(15, (int8)(x/d + 8.5)). */
    private static void q4_0(float[] x, int xb, byte[] out, int ob) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++) {
            float v = x[xb + j];
            if (amax < Math.abs(v)) {
                amax = Math.abs(v);
                max = v;
            }
        }
        float d = max / -8f;
        float id = d != 0 ? 1f / d : 0f;
        putF16(out, ob, d);
        for (int j = 0; j < 16; j++) {
            int q0 = Math.min(15, (byte) (int) (x[xb + j] * id + 8.5f));
            int q1 = Math.min(15, (byte) (int) (x[xb + 16 + j] * id + 8.5f));
            out[ob + 2 + j] = (byte) (q0 | q1 << 4);
        }
    }

    /**
     * make_q3_quants with do_rmse: symmetric quantization of n values to -nmax..nmax-1 with weights
     * x^2, starting from {@code -nmax / max} (max the signed element of largest magnitude) and then
     * moving one quant at a time to where it minimises the weighted error (the ratio
     * {@code sumlx^2 / suml2} grows), up to 5 passes. Returns the scale {@code sumlx / suml2};
     * the quants plus nmax go to {@code L[lo ..)}.
     */
    static float makeQ3Quants(int n, int nmax, float[] x, int xo, int[] L, int lo) {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++) {
            float ax = Math.abs(x[xo + i]);
            if (ax > amax) {
                amax = ax;
                max = x[xo + i];
            }
        }
        if (amax < GROUP_MAX_EPS) {
            for (int i = 0; i < n; i++) {
                L[lo + i] = 0;
            }
            return 0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearestInt(iscale * x[xo + i]);
            l = Math.max(-nmax, Math.min(nmax - 1, l));
            L[lo + i] = l;
            float w = x[xo + i] * x[xo + i];
            sumlx += w * x[xo + i] * l;
            suml2 += w * l * l;
        }
        for (int itry = 0; itry < 5; itry++) {
            int changed = 0;
            for (int i = 0; i < n; i++) {
                float xi = x[xo + i];
                float w = xi * xi;
                int li = L[lo + i];
                float slx = sumlx - w * xi * li;
                if (slx > 0) {
                    float sl2 = suml2 - w * li * li;
                    int newL = nearestInt(xi * sl2 / slx);
                    newL = Math.max(-nmax, Math.min(nmax - 1, newL));
                    if (newL != li) {
                        slx += w * xi * newL;
                        sl2 += w * newL * newL;
                        // the error with scale sumlx/suml2 is sum(w x^2) - sumlx^2/suml2: keep the
                        // move if it raises sumlx^2/suml2 (compared without dividing)
                        if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                            L[lo + i] = newL;
                            sumlx = slx;
                            suml2 = sl2;
                            changed++;
                        }
                    }
                }
            }
            if (changed == 0) {
                break;
            }
        }
        for (int i = 0; i < n; i++) {
            L[lo + i] += nmax;
        }
        return sumlx / suml2;
    }

    /**
     * Q3_K (ggml quantize_row_q3_K_ref): 16 sub-blocks of 16 scaled by make_q3_quants (3-bit
     * quants -4..3), the scales quantized to 6 bits (-32..31, stored + 32) against fp16
     * d = max scale / -32, the quants recomputed against the rounded scales, then packed:
     * hmask[32] (bit e/32 of byte e%32 is element e's high bit), qs[64] (2 low bits, element
     * 128h + 32j + l at bits 2j of byte 32h + l), scales[12], d.
     */
    private static void q3K(float[] x, int xb, byte[] out, int ob) {
        int[] L = new int[256];
        float[] scales = new float[16];
        float maxScale = 0, amax = 0;
        for (int j = 0; j < 16; j++) {
            scales[j] = makeQ3Quants(16, 4, x, xb + 16 * j, L, 16 * j);
            float abs = Math.abs(scales[j]);
            if (abs > amax) {
                amax = abs;
                maxScale = scales[j];
            }
        }
        int sc = ob + 96;
        for (int i = 0; i < 12; i++) {
            out[sc + i] = 0;
        }
        if (maxScale != 0) {
            float iscale = -32f / maxScale;
            for (int j = 0; j < 16; j++) {
                int l = Math.max(-32, Math.min(31, nearestInt(iscale * scales[j]))) + 32;
                // low nibble: byte j (j < 8) or the high nibble of byte j - 8; top 2 bits: bits
                // 2(j/4) of byte 8 + j%4
                if (j < 8) {
                    out[sc + j] = (byte) (l & 0xF);
                } else {
                    out[sc + j - 8] |= (byte) ((l & 0xF) << 4);
                }
                out[sc + 8 + j % 4] |= (byte) ((l >> 4) << (2 * (j / 4)));
            }
            putF16(out, ob + 108, 1 / iscale);
        } else {
            putF16(out, ob + 108, 0f);
        }
        float d0 = Float.float16ToFloat((short) ((out[ob + 108] & 0xFF) | (out[ob + 109] & 0xFF) << 8));
        for (int j = 0; j < 16; j++) {
            int lo = j < 8 ? out[sc + j] & 0xF : (out[sc + j - 8] & 0xFF) >> 4;
            int s = (lo | ((out[sc + 8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
            float d = d0 * s;
            if (d == 0) {
                continue; // keeps make_q3_quants' quants, as ggml does
            }
            for (int ii = 0; ii < 16; ii++) {
                int l = nearestInt(x[xb + 16 * j + ii] / d);
                L[16 * j + ii] = Math.max(-4, Math.min(3, l)) + 4;
            }
        }
        int hm = ob, qs = ob + 32;
        for (int i = 0; i < 32; i++) {
            out[hm + i] = 0;
        }
        for (int e = 0; e < 256; e++) {
            if (L[e] > 3) {
                out[hm + e % 32] |= (byte) (1 << (e / 32));
                L[e] -= 4;
            }
        }
        for (int h = 0; h < 2; h++) {
            for (int l = 0; l < 32; l++) {
                int e = 128 * h + l;
                out[qs + 32 * h + l] = (byte) (L[e] | L[e + 32] << 2 | L[e + 64] << 4 | L[e + 96] << 6);
            }
        }
    }

    /**
     * make_qkx2_quants: an asymmetric quantization {@code x ~ scale * L - min} of n values to
     * 0..nmax, refined by trying {@code nstep + 1} scales and a weighted least-squares fit.
     * Returns the scale and writes {@code -min} to {@code theMin[0]}.
     */
    static float makeQkx2Quants(int n, int nmax, float[] x, int xo, float[] weights, int[] L, int lo, float[] theMin,
            int[] laux, float rmin, float rdelta, int nstep) {
        return makeQkx2Quants(n, nmax, x, xo, weights, L, lo, theMin, laux, rmin, rdelta, nstep, false);
    }

    /** As above; {@code useMad}: errors weighted by |diff| instead of diff^2 (ggml's use_mad, Q2_K). */
    static float makeQkx2Quants(int n, int nmax, float[] x, int xo, float[] weights, int[] L, int lo, float[] theMin,
            int[] laux, float rmin, float rdelta, int nstep, boolean useMad) {
        float min = x[xo], max = x[xo];
        float sumW = weights[0];
        float sumX = sumW * x[xo];
        for (int i = 1; i < n; i++) {
            if (x[xo + i] < min) {
                min = x[xo + i];
            }
            if (x[xo + i] > max) {
                max = x[xo + i];
            }
            float w = weights[i];
            sumW += w;
            sumX += w * x[xo + i];
        }
        if (min > 0) {
            min = 0;
        }
        if (max == min) {
            for (int i = 0; i < n; i++) {
                L[lo + i] = 0;
            }
            theMin[0] = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++) {
            int l = nearestInt(iscale * (x[xo + i] - min));
            L[lo + i] = Math.max(0, Math.min(nmax, l));
            float diff = scale * L[lo + i] + min - x[xo + i];
            bestError += weights[i] * (useMad ? Math.abs(diff) : diff * diff);
        }
        if (nstep < 1) {
            theMin[0] = -min;
            return scale;
        }
        for (int is = 0; is <= nstep; is++) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++) {
                int l = nearestInt(iscale * (x[xo + i] - min));
                l = Math.max(0, Math.min(nmax, l));
                laux[i] = l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[xo + i];
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0) {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float curError = 0;
                for (int i = 0; i < n; i++) {
                    float diff = thisScale * laux[i] + thisMin - x[xo + i];
                    curError += weights[i] * (useMad ? Math.abs(diff) : diff * diff);
                }
                if (curError < bestError) {
                    for (int i = 0; i < n; i++) {
                        L[lo + i] = laux[i];
                    }
                    bestError = curError;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin[0] = -min;
        return scale;
    }

    /**
     * Q2_K (ggml quantize_row_q2_K_ref): per group of 16 a scale and min by make_qkx2_quants with
     * weights |x| and absolute-error fitting, both quantized to 4 bits against the super-block's
     * fp16 d = max scale / 15 and dmin = max min / 15 (scale in the low, min in the high nibble of
     * scales[j]), then the 2-bit quants recomputed against the rounded scales. Block: scales[16],
     * qs[64] (element 128h + 32s + l in bits 2s of qs[32h + l]), fp16 d, fp16 dmin.
     */
    private static void q2K(float[] x, int xb, byte[] out, int ob) {
        int[] L = new int[256];
        int[] laux = new int[16];
        float[] weights = new float[16];
        float[] scales = new float[16], mins = new float[16];
        float[] theMin = new float[1];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) {
                weights[l] = Math.abs(x[xb + 16 * j + l]);
            }
            scales[j] = makeQkx2Quants(16, 3, x, xb + 16 * j, weights, L, 16 * j, theMin, laux, -0.5f, 0.1f, 15, true);
            mins[j] = theMin[0];
            maxScale = Math.max(maxScale, scales[j]);
            maxMin = Math.max(maxMin, mins[j]);
        }
        int[] sc = new int[16];
        if (maxScale > 0) {
            float iscale = 15f / maxScale;
            for (int j = 0; j < 16; j++) {
                sc[j] = nearestInt(iscale * scales[j]);
            }
        }
        putF16(out, ob + 80, maxScale > 0 ? maxScale / 15f : 0f);
        if (maxMin > 0) {
            float iscale = 15f / maxMin;
            for (int j = 0; j < 16; j++) {
                sc[j] |= nearestInt(iscale * mins[j]) << 4;
            }
        }
        putF16(out, ob + 82, maxMin > 0 ? maxMin / 15f : 0f);
        float d = f16(maxScale > 0 ? maxScale / 15f : 0f), dmin = f16(maxMin > 0 ? maxMin / 15f : 0f);
        for (int j = 0; j < 16; j++) {
            out[ob + j] = (byte) sc[j];
            float dd = d * (sc[j] & 0xF);
            if (dd == 0) {
                continue;
            }
            float dm = dmin * ((sc[j] >> 4) & 0xF);
            for (int ii = 0; ii < 16; ii++) {
                int l = nearestInt((x[xb + 16 * j + ii] + dm) / dd);
                L[16 * j + ii] = Math.max(0, Math.min(3, l));
            }
        }
        for (int h = 0; h < 2; h++) {
            for (int l = 0; l < 32; l++) {
                int e = 128 * h + l;
                out[ob + 16 + 32 * h + l] = (byte) (L[e] | L[e + 32] << 2 | L[e + 64] << 4 | L[e + 96] << 6);
            }
        }
    }

    /**
     * Q4_K / Q5_K (ggml quantize_row_q4_K_ref / q5_K_ref): per sub-block of 32 a scale and min by
     * make_qkx2_quants (weights {@code sqrt(mean x^2) + |x|}), both quantized to 6 bits against the
     * super-block's fp16 d = max scale / 63 and dmin = max min / 63, then the quants recomputed
     * against the rounded scales.
     */
    private static void q45K(float[] x, int xb, byte[] out, int ob, boolean five) {
        int nmax = five ? 31 : 15;
        int[] L = new int[256];
        int[] laux = new int[32];
        float[] weights = new float[32];
        float[] scales = new float[8], mins = new float[8];
        float[] theMin = new float[1];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++) {
            float sumX2 = 0;
            for (int l = 0; l < 32; l++) {
                sumX2 += x[xb + 32 * j + l] * x[xb + 32 * j + l];
            }
            float avX = (float) Math.sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) {
                weights[l] = avX + Math.abs(x[xb + 32 * j + l]);
            }
            scales[j] = makeQkx2Quants(32, nmax, x, xb + 32 * j, weights, L, 32 * j, theMin, laux,
                    five ? -0.5f : -1f, 0.1f, five ? 15 : 20);
            mins[j] = theMin[0];
            if (scales[j] > maxScale) {
                maxScale = scales[j];
            }
            if (mins[j] > maxMin) {
                maxMin = mins[j];
            }
        }
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        int sc = ob + 4; // scales[12] after fp16 d, dmin
        for (int i = 0; i < 12; i++) {
            out[sc + i] = 0;
        }
        for (int j = 0; j < 8; j++) {
            int ls = Math.min(63, nearestInt(invScale * scales[j]));
            int lm = Math.min(63, nearestInt(invMin * mins[j]));
            if (j < 4) {
                out[sc + j] = (byte) ls;
                out[sc + j + 4] = (byte) lm;
            } else {
                out[sc + j + 4] = (byte) ((ls & 0xF) | (lm & 0xF) << 4);
                out[sc + j - 4] |= (byte) ((ls >> 4) << 6);
                out[sc + j] |= (byte) ((lm >> 4) << 6);
            }
        }
        putF16(out, ob, maxScale / 63f);
        putF16(out, ob + 2, maxMin / 63f);
        float d = f16(maxScale / 63f), dmin = f16(maxMin / 63f);
        for (int j = 0; j < 8; j++) {
            int s, m;
            if (j < 4) {
                s = out[sc + j] & 63;
                m = out[sc + j + 4] & 63;
            } else {
                s = (out[sc + j + 4] & 0xF) | ((out[sc + j - 4] >> 6) & 3) << 4;
                m = ((out[sc + j + 4] >> 4) & 0xF) | ((out[sc + j] >> 6) & 3) << 4;
            }
            float dd = d * s;
            if (dd == 0) {
                continue;
            }
            float dm = dmin * m;
            for (int ii = 0; ii < 32; ii++) {
                int l = nearestInt((x[xb + 32 * j + ii] + dm) / dd);
                L[32 * j + ii] = Math.max(0, Math.min(nmax, l));
            }
        }
        if (five) {
            // qh[32] at +16: bit (2c) / (2c+1) of qh[l] is the fifth bit of element 64c + l / 64c + 32 + l
            int qh = ob + 16, qs = ob + 48;
            for (int i = 0; i < 32; i++) {
                out[qh + i] = 0;
            }
            for (int c = 0; c < 4; c++) {
                for (int l = 0; l < 32; l++) {
                    int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
                    if (l1 > 15) {
                        l1 -= 16;
                        out[qh + l] |= (byte) (1 << (2 * c));
                    }
                    if (l2 > 15) {
                        l2 -= 16;
                        out[qh + l] |= (byte) (1 << (2 * c + 1));
                    }
                    out[qs + 32 * c + l] = (byte) (l1 | l2 << 4);
                }
            }
        } else {
            int qs = ob + 16;
            for (int c = 0; c < 4; c++) {
                for (int l = 0; l < 32; l++) {
                    out[qs + 32 * c + l] = (byte) (L[64 * c + l] | L[64 * c + 32 + l] << 4);
                }
            }
        }
    }

    /**
     * make_qx_quants with rmse_type 1 (weights x^2): symmetric quantization of n values to
     * -nmax..nmax-1, trying 18 scales around {@code -nmax / max}; returns the scale, quants + nmax in L.
     */
    static float makeQxQuants(int n, int nmax, float[] x, int xo, int[] L, int lo) {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++) {
            float ax = Math.abs(x[xo + i]);
            if (ax > amax) {
                amax = ax;
                max = x[xo + i];
            }
        }
        if (amax < GROUP_MAX_EPS) {
            for (int i = 0; i < n; i++) {
                L[lo + i] = 0;
            }
            return 0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearestInt(iscale * x[xo + i]);
            l = Math.max(-nmax, Math.min(nmax - 1, l));
            L[lo + i] = l + nmax;
            float w = x[xo + i] * x[xo + i];
            sumlx += w * x[xo + i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0f;
        float best = scale * sumlx;
        for (int is = -9; is <= 9; is++) {
            if (is == 0) {
                continue;
            }
            iscale = -(nmax + 0.1f * is) / max;
            sumlx = 0;
            suml2 = 0;
            for (int i = 0; i < n; i++) {
                int l = nearestInt(iscale * x[xo + i]);
                l = Math.max(-nmax, Math.min(nmax - 1, l));
                float w = x[xo + i] * x[xo + i];
                sumlx += w * x[xo + i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2) {
                for (int i = 0; i < n; i++) {
                    int l = nearestInt(iscale * x[xo + i]);
                    L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
                }
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /**
     * Q6_K (ggml quantize_row_q6_K_ref): 16 sub-blocks of 16 scaled by make_qx_quants, the scales
     * quantized to int8 against fp16 d = max scale / -128, quants recomputed against them, then
     * packed: ql[128] (low nibbles), qh[64] (2 high bits), scales[16], d.
     */
    private static void q6K(float[] x, int xb, byte[] out, int ob) {
        int[] L = new int[256];
        float[] scales = new float[16];
        float maxScale = 0, maxAbsScale = 0;
        for (int ib = 0; ib < 16; ib++) {
            float scale = makeQxQuants(16, 32, x, xb + 16 * ib, L, 16 * ib);
            scales[ib] = scale;
            float abs = Math.abs(scale);
            if (abs > maxAbsScale) {
                maxAbsScale = abs;
                maxScale = scale;
            }
        }
        if (maxAbsScale < GROUP_MAX_EPS) {
            for (int i = 0; i < 210; i++) {
                out[ob + i] = 0;
            }
            return;
        }
        float iscale = -128f / maxScale;
        putF16(out, ob + 208, 1 / iscale);
        float d0 = f16(1 / iscale);
        for (int ib = 0; ib < 16; ib++) {
            out[ob + 192 + ib] = (byte) Math.min(127, nearestInt(iscale * scales[ib]));
        }
        for (int j = 0; j < 16; j++) {
            float d = d0 * out[ob + 192 + j];
            if (d == 0) {
                continue;
            }
            for (int ii = 0; ii < 16; ii++) {
                int l = nearestInt(x[xb + 16 * j + ii] / d);
                l = Math.max(-32, Math.min(31, l));
                L[16 * j + ii] = l + 32;
            }
        }
        for (int h = 0; h < 2; h++) {
            int ql = ob + 64 * h, qh = ob + 128 + 32 * h, j = 128 * h;
            for (int l = 0; l < 32; l++) {
                int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                out[ql + l] = (byte) (q1 | q3 << 4);
                out[ql + l + 32] = (byte) (q2 | q4 << 4);
                out[qh + l] = (byte) ((L[j + l] >> 4) | (L[j + l + 32] >> 4) << 2 | (L[j + l + 64] >> 4) << 4
                        | (L[j + l + 96] >> 4) << 6);
            }
        }
    }
}
