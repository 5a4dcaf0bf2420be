package io.jcascade.kernels.cpu;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/**
 * {@link GgmlMath} against exact references: its exp within the error its algorithm documents
 * (1.45 ulp plus 0.5 for the final rounding) of the double-precision exp, its saturation, and the
 * sums in the orders they name. Bit equality with llama.cpp itself is GgmlOpAgreementTest's (engine).
 */
class GgmlMathTest {

    @Test
    void expIsWithinTwoUlpsOfTheTrueValue() {
        int worst = 0;
        for (float x = -87f; x <= 88f; x += 0.000731f) {
            float want = (float) Math.exp(x);
            int ulps = Math.abs(Float.floatToIntBits(GgmlMath.expf(x)) - Float.floatToIntBits(want));
            worst = Math.max(worst, ulps);
        }
        assertThat(worst).isLessThanOrEqualTo(2);
    }

    @Test
    void expSaturatesLikeGgml() {
        assertThat(GgmlMath.expf(Float.NEGATIVE_INFINITY)).isZero();
        assertThat(GgmlMath.expf(-200f)).isZero();
        assertThat(GgmlMath.expf(200f)).isInfinite();
        assertThat(GgmlMath.expf(0f)).isEqualTo(1f);
        // |n| > 126: the two-step scaling still lands near the true (subnormal / huge) value
        assertThat((double) GgmlMath.expf(-95f)).isCloseTo(Math.exp(-95), org.assertj.core.data.Percentage.withPercentage(1e-3));
        assertThat(GgmlMath.expf(89f)).isInfinite();
    }

    @Test
    void sumsFollowTheirNamedOrder() {
        // values chosen so that each association gives a different float
        float[] a = {1e8f, 1f, -1e8f, 1f, 3f, 5f, 7f, 9f};
        float h0 = a[4] + a[0], h1 = a[5] + a[1], h2 = a[6] + a[2], h3 = a[7] + a[3];
        assertThat(GgmlMath.hsum8(a, 0)).isEqualTo((h0 + h2) + (h1 + h3));

        float[] x = new float[40], y = new float[40];
        double exact = 0, magnitude = 0;
        for (int i = 0; i < 40; i++) {
            x[i] = (float) Math.scalb(1.0 + i / 7.0, (i % 5) * 6 - 12);
            y[i] = i % 3 == 0 ? -1.5f : 0.75f;
            exact += (double) x[i] * y[i];
            magnitude += Math.abs((double) x[i] * y[i]);
        }
        float[] scratch = new float[32];
        // dotF16: 32 elements in accumulators, the last 8 in double; dot8: 8 lanes; both near the exact sum
        assertThat((double) GgmlMath.dotF16(x, 0, y, 0, 40, scratch)).isCloseTo(exact, org.assertj.core.data.Offset.offset(1e-6 * magnitude));
        assertThat((double) GgmlMath.dot8(x, 0, y, 0, 40, scratch)).isCloseTo(exact, org.assertj.core.data.Offset.offset(1e-6 * magnitude));
        // and a hand-computed case of dot8: lane j holds x[j]*y[j] + x[j+8]*y[j+8] (fused)
        float[] lanes = new float[8];
        for (int j = 0; j < 8; j++) {
            lanes[j] = Math.fma(x[j + 8], y[j + 8], x[j] * y[j]);
        }
        assertThat(GgmlMath.dot8(x, 0, y, 0, 16, scratch)).isEqualTo(GgmlMath.hsum8(lanes, 0));
    }

    @Test
    void cosAndSinAreTheLibraryOnesOrWithinAnUlp() {
        for (float t = 0; t < 500; t += 0.37f) {
            assertThat(Math.abs(GgmlMath.cosf(t) - Math.cos(t))).isLessThanOrEqualTo(Math.ulp((float) Math.cos(t)));
            assertThat(Math.abs(GgmlMath.sinf(t) - Math.sin(t))).isLessThanOrEqualTo(Math.ulp((float) Math.sin(t)));
        }
    }
}
