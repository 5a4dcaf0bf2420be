package io.jcascade.kernels.cpu;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * Hand-built Q3_K, Q4_K and Q6_K blocks with chosen scales, mins and quants, and their dequantized
 * values worked out by hand from ggml's {@code dequantize_row_q3_K}/{@code dequantize_row_q4_K}/
 * {@code dequantize_row_q6_K}.
 */
class KQuantKnownAnswerTest {

    /**
     * Q4_K: d = 1, dmin = 0.5; 6-bit scales sc = 1,2,3,4,21,6,7,8 and mins m = 0..7 (sc[4] = 21
     * uses the high bits: 5 | (scales[0] >> 6) << 4); every quant byte 0x93 (low nibble 3, high 9).
     * Chunk c of 64: elements 0..31 = d*sc[2c]*3 - dmin*m[2c], 32..63 = d*sc[2c+1]*9 - dmin*m[2c+1].
     */
    @Test
    void q4K() {
        byte[] b = new byte[144];
        putF16(b, 0, 1f);
        putF16(b, 2, 0.5f);
        byte[] scales = {0x41, 2, 3, 4, 0, 1, 2, 3, 0x45, 0x56, 0x67, 0x78};
        System.arraycopy(scales, 0, b, 4, 12);
        Arrays.fill(b, 16, 144, (byte) 0x93);
        float[] expected = new float[256];
        float[] halves = {3, 17.5f, 8, 34.5f, 61, 51.5f, 18, 68.5f};
        for (int i = 0; i < 256; i++) {
            expected[i] = halves[i / 32];
        }
        check(GgmlType.Q4_K, b, expected);
    }

    /**
     * Q6_K: d = 0.5, scales[i] = i - 8; every ql byte 0x21 (low 1, high 2), every qh byte 0xE4
     * (2-bit fields 0, 1, 2, 3), so the four 32-element quarters of each half have q = -31, -15,
     * 2, 18, and each 16 elements take the next scale (scale 0 times q = -31 gives -0).
     */
    @Test
    void q6K() {
        byte[] b = new byte[210];
        Arrays.fill(b, 0, 128, (byte) 0x21);
        Arrays.fill(b, 128, 192, (byte) 0xE4);
        for (int i = 0; i < 16; i++) {
            b[192 + i] = (byte) (i - 8);
        }
        putF16(b, 208, 0.5f);
        float[] groups = {124, 108.5f, 45, 37.5f, -4, -3, -18, -9, -0f, -15.5f, -15, -22.5f, 4, 5, 54, 63};
        float[] expected = new float[256];
        for (int i = 0; i < 256; i++) {
            expected[i] = groups[i / 16];
        }
        check(GgmlType.Q6_K, b, expected);
    }

    /**
     * Q3_K: d = 0.25; the 16 stored 6-bit scales are s_i = 4i + 2 (so s_i - 32 = -30, -26, .., 30),
     * packed as ggml packs them: byte k < 8 holds s_k in its low and s_(k+8) in its high nibble
     * (0x22, 0x66, 0xaa, 0xee, twice), bytes 8..11 hold the top two bits of s_m, s_(m+4),
     * s_(m+8), s_(m+12) at bits 0-1, 2-3, 4-5, 6-7 (0, 1, 2, 3: 0xE4). Every qs byte 0xE4, so the
     * low bits of quarter j of each half are j. hmask[l] = 0x0F for l < 16, 0xF0 for l >= 16: the
     * high bit (bit 4h + j) is set in the first 16 elements of every quarter of half 0 and the
     * last 16 of half 1, where q = j; elsewhere q = j - 4. Sub-block i = 8h + 2j + g then holds
     * 0.25 * (s_i - 32) * q.
     */
    @Test
    void q3K() {
        byte[] b = new byte[110];
        Arrays.fill(b, 0, 16, (byte) 0x0F);
        Arrays.fill(b, 16, 32, (byte) 0xF0);
        Arrays.fill(b, 32, 96, (byte) 0xE4);
        byte[] scales = {0x22, 0x66, (byte) 0xaa, (byte) 0xee, 0x22, 0x66, (byte) 0xaa, (byte) 0xee,
            (byte) 0xE4, (byte) 0xE4, (byte) 0xE4, (byte) 0xE4};
        System.arraycopy(scales, 0, b, 96, 12);
        putF16(b, 108, 0.25f);
        // i = 0: -7.5 * 0 = -0; i = 1: -6.5 * -4 = 26; i = 2: -5.5 * 1; i = 3: -4.5 * -3; ...
        float[] groups = {-0f, 26, -5.5f, 13.5f, -7, 5, -4.5f, 0.5f, -2, 0, -7.5f, 3.5f, -9, 11, -6.5f, 22.5f};
        float[] expected = new float[256];
        for (int i = 0; i < 256; i++) {
            expected[i] = groups[i / 16];
        }
        check(GgmlType.Q3_K, b, expected);
    }

    private static void check(GgmlType type, byte[] block, float[] expected) {
        WeightMatrix w = new WeightMatrix(type, MemorySegment.ofArray(block), 1, 256);
        float[] scalar = new float[256];
        new ScalarKernels().dequantizeRow(w, 0, scalar, 0);
        assertThat(scalar).as("ScalarKernels " + type).containsExactly(expected);
        try (PanamaKernels k = new PanamaKernels(1)) {
            float[] panama = new float[256];
            k.dequantizeRow(w, 0, panama, 0);
            assertThat(panama).as("PanamaKernels " + type).containsExactly(expected);
        }
    }

    private static void putF16(byte[] b, int o, float v) {
        short h = Float.floatToFloat16(v);
        b[o] = (byte) h;
        b[o + 1] = (byte) (h >> 8);
    }
}
