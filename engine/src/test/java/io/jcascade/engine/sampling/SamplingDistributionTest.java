package io.jcascade.engine.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.api.Test;

/** {@link Distribution}: entropy and top-2 probabilities against double-precision references. */
class SamplingDistributionTest {

    private static double referenceEntropy(float[] l) {
        double z = 0;
        for (float x : l) {
            z += Math.exp(x);
        }
        double h = 0;
        for (float x : l) {
            double p = Math.exp(x) / z;
            if (p > 0) {
                h -= p * Math.log(p);
            }
        }
        return h;
    }

    @Test
    void entropyMatchesReferenceOnRandomLogits() {
        Random r = new Random(11);
        for (int t = 0; t < 200; t++) {
            int n = 1 + r.nextInt(2000);
            float[] l = new float[n];
            double scale = r.nextDouble() * 8;
            for (int i = 0; i < n; i++) {
                l[i] = (float) (r.nextGaussian() * scale);
            }
            assertThat(Distribution.entropy(l, n)).isCloseTo(referenceEntropy(l), within(1e-9));
        }
    }

    @Test
    void entropyKnownAnswers() {
        for (int n : new int[] {1, 2, 10, 32000, 128_000}) {
            float[] uniform = new float[n];
            java.util.Arrays.fill(uniform, 3.7f);
            assertThat(Distribution.entropy(uniform, n)).isCloseTo(Math.log(n), within(1e-9));
        }
        float[] oneHot = new float[1000];
        oneHot[17] = 100f;
        assertThat(Distribution.entropy(oneHot, 1000)).isCloseTo(0, within(1e-30));
        float[] masked = {0f, 0f, Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY};
        assertThat(Distribution.entropy(masked, 4)).isCloseTo(Math.log(2), within(1e-12));
    }

    @Test
    void entropyIsStableForHugeLogits() {
        Random r = new Random(12);
        float[] l = new float[500];
        float[] shifted = new float[500];
        for (int i = 0; i < l.length; i++) {
            l[i] = (float) r.nextGaussian();
            shifted[i] = l[i] + 5000f;   // exp would overflow without the max shift
        }
        double h = Distribution.entropy(l, l.length);
        assertThat(Distribution.entropy(shifted, shifted.length)).isFinite().isCloseTo(h, within(1e-3));
        assertThat(Distribution.logSumExp(shifted, 500)).isFinite().isGreaterThan(5000);
    }

    @Test
    void topTwoProbabilities() {
        float[] l = {0f, (float) Math.log(3), (float) Math.log(6), 0f};   // probs 1/11, 3/11, 6/11, 1/11
        Distribution.Top top = Distribution.top2(l, 4);
        assertThat(top.id1()).isEqualTo(2);
        assertThat(top.p1()).isCloseTo(6 / 11.0, within(1e-6));
        assertThat(top.id2()).isEqualTo(1);
        assertThat(top.p2()).isCloseTo(3 / 11.0, within(1e-6));
        Distribution.Top tie = Distribution.top2(new float[] {1f, 2f, 2f}, 3);
        assertThat(tie.id1()).isEqualTo(1);
        assertThat(tie.id2()).isEqualTo(2);
        Distribution.Top single = Distribution.top2(new float[] {5f}, 1);
        assertThat(single.p1()).isEqualTo(1.0);
        assertThat(single.id2()).isEqualTo(-1);
    }
}
