package io.jcascade.kernels.cpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Both kernel sets against values worked out by hand, independent of either implementation. */
class KnownAnswerTest {

    private static PanamaKernels fast;

    @BeforeAll
    static void start() {
        fast = new PanamaKernels(2, false); // the float path: exact hand-computed products
    }

    @AfterAll
    static void stop() {
        fast.close();
    }

    static Stream<CpuKernels> kernels() {
        return Stream.of(new ScalarKernels(), fast);
    }

    @ParameterizedTest
    @MethodSource("kernels")
    void q8_0BlockDecodes(CpuKernels k) {
        // d = 0.5 (fp16 0x3800, stored little-endian), qs[j] = j - 16: values (j - 16) / 2.
        byte[] block = new byte[34];
        block[0] = 0x00;
        block[1] = 0x38;
        for (int j = 0; j < 32; j++) {
            block[2 + j] = (byte) (j - 16);
        }
        block[2 + 31] = (byte) -128; // extremes of int8
        block[2 + 30] = (byte) 127;
        WeightMatrix w = TestMatrices.of(GgmlType.Q8_0, 1, 32, block);
        float[] out = TestMatrices.poisoned(33);
        k.dequantizeRow(w, 0, out, 1);
        for (int j = 0; j < 30; j++) {
            assertThat(out[1 + j]).as("element %d", j).isEqualTo((j - 16) * 0.5f);
        }
        assertThat(out[1 + 30]).isEqualTo(63.5f);
        assertThat(out[1 + 31]).isEqualTo(-64f);
        assertThat(out[0]).isNaN();

        // matmul with x = e_5 picks element 5
        float[] x = new float[32];
        x[5] = 1;
        float[] y = TestMatrices.poisoned(1);
        k.matmul(w, x, 0, 32, y, 0, 1, 1);
        assertThat(y[0]).isEqualTo(-5.5f);
    }

    @ParameterizedTest
    @MethodSource("kernels")
    void q4_0BlockDecodes(CpuKernels k) {
        // d = -2 (fp16 0xC000). Byte j holds low nibble j (element j) and high nibble 15 - j
        // (element j + 16): element j = -2 * (j - 8), element j + 16 = -2 * (7 - j).
        byte[] block = new byte[18];
        block[0] = 0x00;
        block[1] = (byte) 0xC0;
        for (int j = 0; j < 16; j++) {
            block[2 + j] = (byte) (j | (15 - j) << 4);
        }
        WeightMatrix w = TestMatrices.of(GgmlType.Q4_0, 1, 32, block);
        float[] out = TestMatrices.poisoned(32);
        k.dequantizeRow(w, 0, out, 0);
        for (int j = 0; j < 16; j++) {
            assertThat(out[j]).as("element %d", j).isEqualTo(-2f * (j - 8));
            assertThat(out[j + 16]).as("element %d", j + 16).isEqualTo(-2f * (7 - j));
        }
        float[] x = new float[32];
        x[0] = 1; // element 0 = 16
        x[16] = 0.5f; // element 16 = -14
        float[] y = TestMatrices.poisoned(1);
        k.matmul(w, x, 0, 32, y, 0, 1, 1);
        assertThat(y[0]).isEqualTo(16f - 7f);
    }

    /** fp16 bit patterns and their values; with a row long enough to go through the vector path. */
    private static final List<Object[]> HALFS = List.of(
            new Object[] {(short) 0x3C00, 1.0f},
            new Object[] {(short) 0xC000, -2.0f},
            new Object[] {(short) 0x7BFF, 65504f},
            new Object[] {(short) 0xFBFF, -65504f},
            new Object[] {(short) 0x0001, 0x1p-24f}, // smallest subnormal
            new Object[] {(short) 0x03FF, 1023 * 0x1p-24f}, // largest subnormal
            new Object[] {(short) 0x8200, -512 * 0x1p-24f},
            new Object[] {(short) 0x0400, 0x1p-14f}, // smallest normal
            new Object[] {(short) 0x0000, 0.0f},
            new Object[] {(short) 0x8000, -0.0f},
            new Object[] {(short) 0x7C00, Float.POSITIVE_INFINITY},
            new Object[] {(short) 0xFC00, Float.NEGATIVE_INFINITY},
            new Object[] {(short) 0x3555, 0.33325195f},
            new Object[] {(short) 0x7E00, Float.NaN},
            new Object[] {(short) 0xFD01, Float.NaN});

    @ParameterizedTest
    @MethodSource("kernels")
    void f16KnownBitPatterns(CpuKernels k) {
        int n = 3 * HALFS.size(); // 45: whole vectors and a tail, on any vector length <= 16
        byte[] bytes = new byte[2 * n];
        for (int i = 0; i < n; i++) {
            short h = (short) HALFS.get(i % HALFS.size())[0];
            bytes[2 * i] = (byte) h;
            bytes[2 * i + 1] = (byte) (h >> 8);
        }
        float[] out = TestMatrices.poisoned(n);
        k.dequantizeRow(TestMatrices.of(GgmlType.F16, 1, n, bytes), 0, out, 0);
        for (int i = 0; i < n; i++) {
            float want = (float) HALFS.get(i % HALFS.size())[1];
            if (Float.isNaN(want)) {
                assertThat(out[i]).as("element %d", i).isNaN();
            } else {
                // bit equality, so that -0.0 and 0.0 are told apart
                assertThat(Float.floatToRawIntBits(out[i])).as("element %d = %s", i, out[i])
                        .isEqualTo(Float.floatToRawIntBits(want));
            }
        }
    }

    @ParameterizedTest
    @MethodSource("kernels")
    void bf16KnownBitPatterns(CpuKernels k) {
        short[] bits = {0x3F80, (short) 0xC000, 0x4049, 0x0001, (short) 0xFF80, 0x7F80, 0x0000};
        float[] vals = {1.0f, -2.0f, Float.intBitsToFloat(0x40490000), Float.intBitsToFloat(0x00010000),
            Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY, 0.0f};
        int n = 5 * bits.length;
        byte[] bytes = new byte[2 * n];
        for (int i = 0; i < n; i++) {
            bytes[2 * i] = (byte) bits[i % bits.length];
            bytes[2 * i + 1] = (byte) (bits[i % bits.length] >> 8);
        }
        float[] out = TestMatrices.poisoned(n);
        k.dequantizeRow(TestMatrices.of(GgmlType.BF16, 1, n, bytes), 0, out, 0);
        for (int i = 0; i < n; i++) {
            assertThat(out[i]).as("element %d", i).isEqualTo(vals[i % bits.length]);
        }
    }

    @ParameterizedTest
    @MethodSource("kernels")
    void ropeAtPositionZeroIsIdentity(CpuKernels k) {
        for (boolean neox : new boolean[] {false, true}) {
            float[] x = TestMatrices.randomVector(4 * 64, 9);
            float[] y = x.clone();
            k.rope(y, 0, 4, 64, 64, 0, 10000f, null, neox);
            assertThat(y).containsExactly(x);
        }
    }

    @ParameterizedTest
    @MethodSource("kernels")
    void ropeRotatesAKnownVector(CpuKernels k) {
        // One pair, angle = pos: (1, 0) turns to (cos pos, sin pos); (0, 2) to (-2 sin, 2 cos).
        float[] x = {1, 0, 0, 2};
        k.rope(x, 0, 2, 2, 2, 1, 10000f, null, false);
        assertThat(x[0]).isCloseTo((float) Math.cos(1), within(1e-7f));
        assertThat(x[1]).isCloseTo((float) Math.sin(1), within(1e-7f));
        assertThat(x[2]).isCloseTo((float) (-2 * Math.sin(1)), within(2e-7f));
        assertThat(x[3]).isCloseTo((float) (2 * Math.cos(1)), within(2e-7f));

        // With a frequency factor of 2 at pos 3: angle 1.5.
        float[] y = {3, 4};
        k.rope(y, 0, 1, 2, 2, 3, 10000f, new float[] {2f}, false);
        assertThat(y[0]).isCloseTo((float) (3 * Math.cos(1.5) - 4 * Math.sin(1.5)), within(1e-6f));
        assertThat(y[1]).isCloseTo((float) (3 * Math.sin(1.5) + 4 * Math.cos(1.5)), within(1e-6f));

        // NeoX on 4 dims (+1 unrotated) with base 10000: pairs (0, 2) at angle pos and (1, 3) at
        // pos * 10000^(-2/4) = pos / 100. Normal mode would pair (0, 1) and (2, 3) instead.
        float[] z = {1, 1, 0, 0, 5};
        k.rope(z, 0, 1, 5, 4, 50, 10000f, null, true);
        assertThat(z[0]).isCloseTo((float) Math.cos(50), within(1e-5f));
        assertThat(z[2]).isCloseTo((float) Math.sin(50), within(1e-5f));
        assertThat(z[1]).isCloseTo((float) Math.cos(0.5), within(1e-6f));
        assertThat(z[3]).isCloseTo((float) Math.sin(0.5), within(1e-6f));
        assertThat(z[4]).isEqualTo(5f);
    }

    @ParameterizedTest
    @MethodSource("kernels")
    void linearRopeScalingIsAPositionDivisor(CpuKernels k) {
        // freqScale 1/4 at position 64 turns every pair exactly as no scaling at position 16: the
        // angle recurrence scales exactly by a power of two. Both modes, partial rotary, factors.
        float[] factors = {1f, 2f, 4f, 8f, 1.5f, 3f};
        for (boolean neox : new boolean[] {false, true}) {
            float[] x = TestMatrices.randomVector(3 * 16, 5);
            float[] scaled = x.clone();
            float[] plain = x.clone();
            k.rope(scaled, 0, 3, 16, 12, 64, 500000f, factors, neox, 0.25f);
            k.rope(plain, 0, 3, 16, 12, 16, 500000f, factors, neox);
            assertThat(scaled).containsExactly(plain);
            float[] one = x.clone();
            k.rope(one, 0, 3, 16, 12, 16, 500000f, factors, neox, 1.0f);
            assertThat(one).containsExactly(plain);
        }
    }

    @ParameterizedTest
    @MethodSource("kernels")
    void ropeMagnitudeScaleMultipliesOnlyTheRotatedPairs(CpuKernels k) {
        // At position 0 every angle is 0 (cos 1, sin 0): the rotated dimensions come out times
        // mscale exactly (1.5 and the values are exact in float), the rest of each head unchanged.
        for (boolean neox : new boolean[] {false, true}) {
            float[] x = {1, -2, 0.25f, 4, 8, -16, 3, 5};
            k.rope(x, 0, 2, 4, 2, 0, 10000f, null, neox, 1f, 1.5f);
            assertThat(x).containsExactly(1.5f, -3, 0.25f, 4, 12, -24, 3, 5);
        }
        // Elsewhere: (3, 4) at angle 1.5 (pos 3, factor 2), scaled by 1.25: length 5 * 1.25.
        float[] y = {3, 4};
        k.rope(y, 0, 1, 2, 2, 3, 10000f, new float[] {2f}, false, 1f, 1.25f);
        assertThat(y[0]).isCloseTo((float) (1.25 * (3 * Math.cos(1.5) - 4 * Math.sin(1.5))), within(2e-6f));
        assertThat(y[1]).isCloseTo((float) (1.25 * (3 * Math.sin(1.5) + 4 * Math.cos(1.5))), within(2e-6f));
        // mscale 1 is the plain rope, bit for bit
        float[] a = TestMatrices.randomVector(3 * 16, 6);
        float[] b = a.clone();
        k.rope(a, 0, 3, 16, 12, 77, 10000f, null, true, 1f, 1f);
        k.rope(b, 0, 3, 16, 12, 77, 10000f, null, true);
        assertThat(a).containsExactly(b);
    }

    @ParameterizedTest
    @MethodSource("kernels")
    void softmaxSumsToOne(CpuKernels k) {
        float[] x = TestMatrices.randomVector(1000, 4);
        x[17] = 80; // large values must not overflow: the max is subtracted first
        k.softmax(x, 0, 1000);
        double sum = 0;
        for (float v : x) {
            assertThat(v).isBetween(0f, 1f);
            sum += v;
        }
        assertThat(sum).isCloseTo(1.0, within(1e-5));
        float[] small = {1, 2, 3};
        k.softmax(small, 0, 3);
        double e = Math.exp(1) + Math.exp(2) + Math.exp(3);
        assertThat(small[2]).isCloseTo((float) (Math.exp(3) / e), within(1e-7f));
        assertThat(small[0]).isCloseTo((float) (Math.exp(1) / e), within(1e-7f));
    }

    @ParameterizedTest
    @MethodSource("kernels")
    void rmsNormHandExample(CpuKernels k) {
        // mean of squares = (1 + 4 + 9 + 16) / 4 = 7.5, scale = 1 / sqrt(7.5) = 0.36514837
        float[] x = {1, 2, 3, 4};
        float[] w = {1, 1, 2, 0.5f};
        float[] out = TestMatrices.poisoned(4);
        k.rmsNorm(x, 0, w, out, 0, 4, 0f);
        assertThat(out).containsExactly(new float[] {0.36514837f, 0.73029674f, 2.1908902f, 0.73029674f},
                within(1e-6f));
    }

    @ParameterizedTest
    @MethodSource("kernels")
    void swigluAndAxpyKnownValues(CpuKernels k) {
        float[] out = TestMatrices.poisoned(2);
        k.swiglu(new float[] {0, 2}, 0, new float[] {5, 3}, 0, out, 0, 2);
        assertThat(out[0]).isEqualTo(0f);
        assertThat(out[1]).isCloseTo((float) (3 * 2 / (1 + Math.exp(-2))), within(1e-6f));
        float[] y = {1, 1};
        k.axpy(2, new float[] {3, -4}, 0, y, 0, 2);
        assertThat(y).containsExactly(7, -7);
        assertThat(k.dot(new float[] {1, 2, 3}, 0, new float[] {4, 5, 6}, 0, 3)).isEqualTo(32f);
    }

    @ParameterizedTest
    @MethodSource("kernels")
    void unsupportedTypesThrowNamingTheType(CpuKernels k) {
        WeightMatrix w = TestMatrices.of(GgmlType.IQ4_XS, 1, 256, new byte[136]);
        assertThatThrownBy(() -> k.matmul(w, new float[256], 0, 256, new float[1], 0, 1, 1))
                .isInstanceOf(UnsupportedOperationException.class).hasMessageContaining("IQ4_XS");
        assertThatThrownBy(() -> k.dequantizeRow(w, 0, new float[256], 0))
                .isInstanceOf(UnsupportedOperationException.class).hasMessageContaining("IQ4_XS");
    }

    @Test
    void createGivesPanamaKernelsWithTheThreadCount() {
        try (CpuKernels k = CpuKernels.create(3)) {
            assertThat(k).isInstanceOf(PanamaKernels.class);
            assertThat(k.threads()).isEqualTo(3);
        }
    }
}
