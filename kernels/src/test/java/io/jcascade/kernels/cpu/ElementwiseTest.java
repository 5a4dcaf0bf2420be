package io.jcascade.kernels.cpu;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The vector kernels other than matmul against {@link ScalarKernels}, at sizes around and between
 * multiples of the vector length and at non-zero offsets. Outputs start as NaN so that a skipped
 * element fails.
 */
class ElementwiseTest {

    private static final int OFF_A = 3;
    private static final int OFF_B = 11;
    private static final ScalarKernels REF = new ScalarKernels();
    private static PanamaKernels fast;

    @BeforeAll
    static void start() {
        fast = new PanamaKernels(2);
    }

    @AfterAll
    static void stop() {
        fast.close();
    }

    private static float[] vec(int n, long seed, float scale) {
        float[] v = TestMatrices.randomVector(n, seed);
        for (int i = 0; i < n; i++) {
            v[i] *= scale;
        }
        return v;
    }

    private static float[] pad(float[] v, int offset, int extra) {
        float[] p = TestMatrices.poisoned(offset + v.length + extra);
        System.arraycopy(v, 0, p, offset, v.length);
        return p;
    }

    /** The elements outside {@code [offset, offset + n)} must still be NaN. */
    private static void assertUntouchedOutside(float[] a, int offset, int n) {
        for (int i = 0; i < a.length; i++) {
            if (i < offset || i >= offset + n) {
                assertThat(a[i]).as("element %d outside the range", i).isNaN();
            }
        }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 15, 16, 17, 31, 33, 100, 4096 + 5})
    void rmsNormMatchesReferenceExactly(int n) {
        // Same operations in the same order (double sum, float scaling): bit-identical results.
        float[] x = pad(vec(n, n, 3), OFF_A, 2);
        float[] w = vec(n, n + 1, 2);
        float[] want = TestMatrices.poisoned(OFF_B + n + 2);
        float[] got = TestMatrices.poisoned(OFF_B + n + 2);
        REF.rmsNorm(x, OFF_A, w, want, OFF_B, n, 1e-5f);
        fast.rmsNorm(x, OFF_A, w, got, OFF_B, n, 1e-5f);
        assertThat(got).containsExactly(want);
        assertUntouchedOutside(got, OFF_B, n);

        float[] inPlace = x.clone();
        fast.rmsNorm(inPlace, OFF_A, w, inPlace, OFF_A, n, 1e-5f);
        float[] expect = TestMatrices.poisoned(inPlace.length);
        System.arraycopy(want, OFF_B, expect, OFF_A, n);
        assertThat(inPlace).containsExactly(expect);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 15, 16, 17, 31, 33, 100, 4096 + 5})
    void softmaxMatchesReference(int n) {
        float[] base = pad(vec(n, n * 3L, 20), OFF_A, 2);
        float[] want = base.clone();
        float[] got = base.clone();
        REF.softmax(want, OFF_A, n);
        fast.softmax(got, OFF_A, n);
        // Max, float exp and double sum are order independent: exact agreement.
        assertThat(got).containsExactly(want);
        assertUntouchedOutside(got, OFF_A, n);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 16, 17, 100, 4096 + 5})
    void swigluMatchesReferenceExactly(int n) {
        float[] g = pad(vec(n, n * 5L, 8), OFF_A, 0);
        float[] u = pad(vec(n, n * 5L + 1, 3), OFF_B, 0);
        float[] want = TestMatrices.poisoned(n + 4);
        float[] got = TestMatrices.poisoned(n + 4);
        REF.swiglu(g, OFF_A, u, OFF_B, want, 2, n);
        fast.swiglu(g, OFF_A, u, OFF_B, got, 2, n);
        assertThat(got).containsExactly(want);
        assertUntouchedOutside(got, 2, n);
    }

    @ParameterizedTest
    @ValueSource(ints = {0, 1, 7, 15, 16, 17, 31, 32, 33, 100, 4096 + 5})
    void dotMatchesReference(int n) {
        float[] a = pad(vec(n, n * 7L, 1), OFF_A, 1);
        float[] b = pad(vec(n, n * 7L + 1, 1), OFF_B, 1);
        float want = REF.dot(a, OFF_A, b, OFF_B, n);
        float got = fast.dot(a, OFF_A, b, OFF_B, n);
        double mag = 0;
        for (int i = 0; i < n; i++) {
            mag += Math.abs((double) a[OFF_A + i] * b[OFF_B + i]);
        }
        // Float accumulation: n/L FMA roundings per lane plus the lane reduction (see MatmulTest).
        assertThat((double) Math.abs(got - want)).isLessThanOrEqualTo(MatmulTest.tolerance(n) * mag + 1e-30);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 16, 17, 100, 4096 + 5})
    void axpyAndAddMatchReference(int n) {
        float[] x = pad(vec(n, n * 11L, 1), OFF_A, 1);
        float[] y0 = pad(vec(n, n * 11L + 1, 1), OFF_B, 2);
        float alpha = 0.37f;

        float[] want = y0.clone();
        float[] got = y0.clone();
        REF.axpy(alpha, x, OFF_A, want, OFF_B, n);
        fast.axpy(alpha, x, OFF_A, got, OFF_B, n);
        // One fused rounding against a double computation rounded once: within one ulp.
        for (int i = 0; i < n; i++) {
            assertThat(got[OFF_B + i]).isCloseTo(want[OFF_B + i],
                    org.assertj.core.data.Offset.offset(Math.ulp(want[OFF_B + i])));
        }
        assertUntouchedOutside(got, OFF_B, n);

        want = y0.clone();
        got = y0.clone();
        REF.add(x, OFF_A, want, OFF_B, n);
        fast.add(x, OFF_A, got, OFF_B, n);
        assertThat(got).containsExactly(want);
    }

    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void ropeMatchesReferenceExactly(boolean neox) {
        Random rnd = new Random(neox ? 1 : 2);
        for (int[] shape : new int[][] {{1, 2, 2}, {4, 64, 64}, {3, 96, 32}, {8, 128, 128}, {2, 80, 64}}) {
            int nHeads = shape[0];
            int headDim = shape[1];
            int ropeDims = shape[2];
            float[] factors = null;
            if (rnd.nextBoolean()) {
                factors = new float[ropeDims / 2];
                for (int i = 0; i < factors.length; i++) {
                    factors[i] = 1 + rnd.nextFloat() * 7;
                }
            }
            for (int pos : new int[] {0, 1, 17, 4095}) {
                float[] base = pad(vec(nHeads * headDim, pos + headDim, 2), OFF_A, 3);
                float[] want = base.clone();
                float[] got = base.clone();
                float freqScale = factors == null ? 0.125f : 1.0f / 3;
                float mscale = pos % 2 == 1 ? 1.1902381f : 1f; // Phi-3 128k's rope.scaling.attn_factor
                REF.rope(want, OFF_A, nHeads, headDim, ropeDims, pos, 500000f, factors, neox, freqScale, mscale);
                fast.rope(got, OFF_A, nHeads, headDim, ropeDims, pos, 500000f, factors, neox, freqScale, mscale);
                assertThat(got).as("%s heads=%d dim=%d rope=%d pos=%d", neox ? "neox" : "normal", nHeads, headDim,
                        ropeDims, pos).containsExactly(want);
                // Dimensions past ropeDims and everything outside the heads stay as they were.
                for (int h = 0; h < nHeads; h++) {
                    for (int i = ropeDims; i < headDim; i++) {
                        int at = OFF_A + h * headDim + i;
                        assertThat(got[at]).isEqualTo(base[at]);
                    }
                }
                assertUntouchedOutside(got, OFF_A, nHeads * headDim);
            }
        }
    }
}
