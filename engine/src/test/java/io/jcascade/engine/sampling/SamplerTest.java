package io.jcascade.engine.sampling;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

class SamplerTest {

    private static SamplingParams.Builder plain() {
        return SamplingParams.builder().temperature(1f).topK(0).topP(1f).minP(0f).repetitionPenalty(1f);
    }

    private static float[] randomLogits(Random r, int n) {
        float[] l = new float[n];
        for (int i = 0; i < n; i++) {
            l[i] = (float) (r.nextGaussian() * 3);
        }
        return l;
    }

    private static float[] logProbs(double... p) {
        float[] l = new float[p.length];
        for (int i = 0; i < p.length; i++) {
            l[i] = (float) Math.log(p[i]);
        }
        return l;
    }

    private static double[] softmax(float[] l, double temperature) {
        double max = Double.NEGATIVE_INFINITY;
        for (float x : l) {
            max = Math.max(max, x);
        }
        double[] p = new double[l.length];
        double z = 0;
        for (int i = 0; i < l.length; i++) {
            p[i] = Math.exp((l[i] - max) / temperature);
            z += p[i];
        }
        for (int i = 0; i < l.length; i++) {
            p[i] /= z;
        }
        return p;
    }

    private static int[] support(double[] p) {
        return java.util.stream.IntStream.range(0, p.length).filter(i -> p[i] > 0).toArray();
    }

    @Test
    void greedyIsArgmaxWithLowestIdOnTies() {
        Sampler greedy = new Sampler(SamplingParams.greedy());
        Random r = new Random(1);
        for (int t = 0; t < 100; t++) {
            float[] l = randomLogits(r, 1000);
            int best = 0;
            for (int i = 1; i < l.length; i++) {
                if (l[i] > l[best]) {
                    best = i;
                }
            }
            assertThat(greedy.sample(l, l.length)).isEqualTo(best);
        }
        assertThat(greedy.sample(new float[] {1, 3, 3, 2}, 4)).isEqualTo(1);
        assertThat(greedy.sample(new float[] {Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY}, 2)).isZero();
        // Only the first vocabSize logits count.
        assertThat(greedy.sample(new float[] {1, 2, 9}, 2)).isEqualTo(1);
    }

    @Test
    void topKOneIsGreedyAtAnyTemperature() {
        Random r = new Random(2);
        for (float temperature : new float[] {0.1f, 1f, 5f, 100f}) {
            Sampler s = new Sampler(plain().temperature(temperature).topK(1).seed(9).build());
            for (int t = 0; t < 50; t++) {
                float[] l = randomLogits(r, 500);
                assertThat(s.sample(l, l.length)).isEqualTo(Sampler.argmax(l, l.length));
            }
        }
    }

    @Test
    void sameSeedSameSequence() {
        float[] l = randomLogits(new Random(3), 50);
        SamplingParams p = plain().temperature(1.5f).seed(1234).build();
        int[] a = draw(new Sampler(p), l, 200);
        int[] b = draw(new Sampler(p), l, 200);
        assertThat(a).isEqualTo(b);
        assertThat(draw(new Sampler(p.toBuilder().seed(1235).build()), l, 200)).isNotEqualTo(a);
        Sampler again = new Sampler(p);
        draw(again, l, 10);
        again.reseed(1234);
        assertThat(draw(again, l, 200)).isEqualTo(a);
    }

    private static int[] draw(Sampler s, float[] l, int count) {
        int[] out = new int[count];
        for (int i = 0; i < count; i++) {
            out[i] = s.sample(l, l.length);
        }
        return out;
    }

    /** Pearson's chi-square of the counts against the expected probabilities. */
    private static double chiSquare(int[] counts, double[] p, int draws) {
        double chi2 = 0;
        for (int i = 0; i < p.length; i++) {
            double e = p[i] * draws;
            if (e > 0) {
                chi2 += (counts[i] - e) * (counts[i] - e) / e;
            } else {
                assertThat(counts[i]).as("draws of impossible token %d", i).isZero();
            }
        }
        return chi2;
    }

    @Test
    void frequenciesMatchSoftmax() {
        float[] l = {2.0f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, 1.5f, 0.2f};
        int draws = 20_000;
        for (float temperature : new float[] {1f, 0.7f}) {
            Sampler s = new Sampler(plain().temperature(temperature).seed(42).build());
            int[] counts = new int[l.length];
            for (int i = 0; i < draws; i++) {
                counts[s.sample(l, l.length)]++;
            }
            double[] p = softmax(l, temperature);
            // df = 7; the 0.999 quantile of chi-square(7) is 24.32.
            assertThat(chiSquare(counts, p, draws)).as("T=%s counts %s", temperature, Arrays.toString(counts))
                    .isLessThan(24.32);
            for (int i = 0; i < l.length; i++) {
                assertThat(counts[i] / (double) draws).isCloseTo(p[i], within(0.015));
            }
        }
    }

    @Test
    void filteredDistributionIsSampledFaithfully() {
        float[] l = logProbs(0.4, 0.25, 0.15, 0.1, 0.06, 0.04);
        Sampler s = new Sampler(plain().topK(4).minP(0.3f).seed(5).build());
        double[] p = s.probabilities(l, l.length, new int[0], 0);
        assertThat(support(p)).containsExactly(0, 1, 2);
        int draws = 20_000;
        int[] counts = new int[l.length];
        for (int i = 0; i < draws; i++) {
            counts[s.sample(l, l.length)]++;
        }
        assertThat(chiSquare(counts, p, draws)).isLessThan(13.82); // df = 2, 0.999 quantile
    }

    @Test
    void topKKeepsExactlyTheKBest() {
        float[] l = {1, 5, 3, 4, 2, 4};
        Sampler s = new Sampler(plain().topK(2).build());
        assertThat(support(s.probabilities(l, l.length, new int[0], 0))).containsExactly(1, 3);
        Sampler three = new Sampler(plain().topK(3).build());
        assertThat(support(three.probabilities(l, l.length, new int[0], 0))).containsExactly(1, 3, 5);
        double[] p = three.probabilities(l, l.length, new int[0], 0);
        double z = Math.exp(5) + 2 * Math.exp(4);
        assertThat(p[1]).isCloseTo(Math.exp(5) / z, within(1e-9));
        // k >= n is the same as off.
        Sampler big = new Sampler(plain().topK(100).build());
        assertThat(support(big.probabilities(l, l.length, new int[0], 0))).hasSize(6);
    }

    @Test
    void topPKeepsTheSmallestSetReachingP() {
        float[] l = logProbs(0.05, 0.5, 0.15, 0.3);
        assertThat(support(new Sampler(plain().topP(0.45f).build()).probabilities(l, 4, new int[0], 0))).containsExactly(1);
        assertThat(support(new Sampler(plain().topP(0.75f).build()).probabilities(l, 4, new int[0], 0))).containsExactly(1, 3);
        assertThat(support(new Sampler(plain().topP(0.85f).build()).probabilities(l, 4, new int[0], 0))).containsExactly(1, 2, 3);
        assertThat(support(new Sampler(plain().topP(0.99f).build()).probabilities(l, 4, new int[0], 0))).containsExactly(0, 1, 2, 3);
        double[] p = new Sampler(plain().topP(0.75f).build()).probabilities(l, 4, new int[0], 0);
        assertThat(p[1]).isCloseTo(0.5 / 0.8, within(1e-6));
    }

    @Test
    void minPDropsTokensBelowTheFractionOfTheTop() {
        float[] l = logProbs(0.05, 0.5, 0.15, 0.3);
        assertThat(support(new Sampler(plain().minP(0.2f).build()).probabilities(l, 4, new int[0], 0))).containsExactly(1, 2, 3);
        assertThat(support(new Sampler(plain().minP(0.35f).build()).probabilities(l, 4, new int[0], 0))).containsExactly(1, 3);
        assertThat(support(new Sampler(plain().minP(0.9f).build()).probabilities(l, 4, new int[0], 0))).containsExactly(1);
    }

    @Test
    void repetitionPenaltyDividesPositiveAndMultipliesNegativeOnce() {
        Sampler s = new Sampler(plain().repetitionPenalty(2f).repeatLastN(64).build());
        float[] l = {2f, -2f, 1f, 0.5f, 0f};
        int[] history = {0, 1, 0, 1, 0, 4};
        s.applyRepetitionPenalty(l, l.length, history, history.length);
        assertThat(l).containsExactly(1f, -4f, 1f, 0.5f, 0f);

        float[] last = {2f, -2f, 1f, 0.5f, 0f};
        new Sampler(plain().repetitionPenalty(2f).repeatLastN(2).build()).applyRepetitionPenalty(last, 5, history, history.length);
        assertThat(last).containsExactly(1f, -2f, 1f, 0.5f, 0f);

        float[] none = {2f, -2f, 1f, 0.5f, 0f};
        new Sampler(plain().repetitionPenalty(2f).repeatLastN(0).build()).applyRepetitionPenalty(none, 5, history, history.length);
        assertThat(none).containsExactly(2f, -2f, 1f, 0.5f, 0f);

        float[] all = {2f, -2f, 1f, 0.5f, 0f};
        new Sampler(plain().repetitionPenalty(2f).repeatLastN(-1).build()).applyRepetitionPenalty(all, 5, history, 2);
        assertThat(all).containsExactly(1f, -4f, 1f, 0.5f, 0f);
    }

    @Test
    void penaltyChangesTheGreedyChoiceAndLeavesCallerLogitsAlone() {
        float[] l = {3f, 2.5f, 1f};
        float[] copy = l.clone();
        Sampler s = new Sampler(SamplingParams.greedy().toBuilder().repetitionPenalty(1.5f).build());
        assertThat(s.sample(l, 3, new int[] {0}, 1)).isEqualTo(1);   // 3/1.5 = 2 < 2.5
        assertThat(s.sample(l, 3, new int[] {0}, 0)).isZero();       // empty history
        assertThat(l).isEqualTo(copy);
    }

    @Test
    void largeVocabularyIsFastAndAllocationLight() {
        int n = 128_000;
        float[] l = randomLogits(new Random(4), n);
        int[] history = new int[64];
        for (int i = 0; i < history.length; i++) {
            history[i] = i * 1000;
        }
        for (SamplingParams p : new SamplingParams[] {SamplingParams.defaults(), plain().topP(0.9f).build(),
                plain().build(), SamplingParams.greedy()}) {
            Sampler s = new Sampler(p.toBuilder().repetitionPenalty(1.1f).seed(3).build());
            long t0 = System.nanoTime();
            for (int i = 0; i < 100; i++) {
                int id = s.sample(l, n, history, history.length);
                assertThat(id).isBetween(0, n - 1);
            }
            long ms = (System.nanoTime() - t0) / 1_000_000;
            assertThat(ms).as("100 samples with %s", p).isLessThan(5_000);
        }
    }

    @Test
    void fixedVocabularySizeConstructor() {
        float[] l = {1f, 2f, 7f, 3f, 100f};
        Sampler s = new Sampler(SamplingParams.greedy(), 4);
        assertThat(s.sample(l, new int[0], 0)).isEqualTo(2);
        assertThatThrownBy(() -> new Sampler(SamplingParams.greedy()).sample(l, new int[0], 0))
                .isInstanceOf(IllegalStateException.class);
        SamplingParams p = new SamplingParams(0.9f, 5, 0.9f, 0.1f, 1.2f, 32, 77L);
        assertThat(p.toBuilder().build()).isEqualTo(p);
    }

    @Test
    void paramsValidateAndDefaultLikeLlamaCpp() {
        SamplingParams d = SamplingParams.defaults();
        assertThat(d.temperature()).isEqualTo(0.8f);
        assertThat(d.topK()).isEqualTo(40);
        assertThat(d.topP()).isEqualTo(0.95f);
        assertThat(d.minP()).isEqualTo(0.05f);
        assertThat(d.repetitionPenalty()).isEqualTo(1f);
        assertThat(d.repeatLastN()).isEqualTo(64);
        assertThat(SamplingParams.greedy().isGreedy()).isTrue();
        assertThatThrownBy(() -> plain().topP(0f).build()).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> plain().topK(-1).build()).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> plain().minP(1.5f).build()).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> plain().repetitionPenalty(0f).build()).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> new Sampler(d).sample(new float[3], 4)).isInstanceOf(IllegalArgumentException.class);
    }

    /** Logits with the awkward cases: ties, -0.0 beside 0.0, -inf, a NaN. */
    private static float[] awkwardLogits(Random r, int n) {
        float[] l = randomLogits(r, n);
        for (int i = 0; i < n / 8; i++) {
            l[r.nextInt(n)] = l[r.nextInt(n)]; // ties
        }
        l[r.nextInt(n)] = 0f;
        l[r.nextInt(n)] = -0f;
        l[r.nextInt(n)] = Float.NEGATIVE_INFINITY;
        l[r.nextInt(n)] = Float.NaN;
        return l;
    }

    @Test
    void candidatesFromTheBackendDrawWhatTheFullLogitsDraw() {
        // Model.generate samples from TokenCandidates whenever top-k (or greedy) keeps fewer than
        // the vocabulary; it must pick the very tokens the full-logit path picks, seed for seed.
        Random r = new Random(11);
        int n = 700;
        SamplingParams[] cases = {
                SamplingParams.greedy(),
                SamplingParams.defaults(),
                plain().topK(1).temperature(3f).build(),
                plain().topK(5).build(),
                plain().topK(40).topP(0.9f).build(),
                plain().topK(40).minP(0.1f).temperature(0.7f).build(),
                plain().topK(100).topP(0.95f).minP(0.05f).repetitionPenalty(1.3f).repeatLastN(16).build(),
                plain().temperature(0f).repetitionPenalty(1.5f).repeatLastN(-1).build(),
                plain().topK(n - 1).topP(0.5f).repetitionPenalty(0.8f).build(),
        };
        for (SamplingParams p : cases) {
            Sampler full = new Sampler(p.toBuilder().seed(3).build(), n);
            Sampler fromCandidates = new Sampler(p.toBuilder().seed(3).build(), n);
            int k = fromCandidates.candidatesNeeded(n);
            assertThat(k).as("%s", p).isLessThan(n);
            io.jcascade.kernels.TokenCandidates c = new io.jcascade.kernels.TokenCandidates();
            int[] history = new int[300];
            int[] penalised = new int[history.length];
            for (int step = 0; step < 200; step++) {
                float[] l = awkwardLogits(r, n);
                int length = 50 + step;
                for (int i = 0; i < length; i++) {
                    history[i] = r.nextInt(n / 4); // repeats, so that the penalty has work
                }
                int count = fromCandidates.penalisedTokens(history, length, penalised);
                c.select(l, n, k, p.repetitionPenalty(), penalised, count);
                assertThat(fromCandidates.sample(c)).as("%s step %d", p, step)
                        .isEqualTo(full.sample(l, n, history, length));
            }
        }
    }

    @Test
    void penalisedTokensAreTheDistinctRecentOnes() {
        Sampler s = new Sampler(plain().repetitionPenalty(1.2f).repeatLastN(4).build());
        int[] out = new int[8];
        int count = s.penalisedTokens(new int[] {9, 1, 2, 1, 7, 2}, 6, out);
        assertThat(Arrays.copyOf(out, count)).containsExactly(2, 1, 7);
        assertThat(new Sampler(plain().build()).penalisedTokens(new int[] {1, 2}, 2, out)).isZero();
        assertThat(new Sampler(plain().repetitionPenalty(1.2f).repeatLastN(-1).build())
                .penalisedTokens(new int[] {3, 3, 4}, 3, out)).isEqualTo(2);
    }

    @Test
    void tooFewCandidatesForTheTopKAreRefused() {
        Sampler s = new Sampler(plain().topK(10).build());
        io.jcascade.kernels.TokenCandidates c = new io.jcascade.kernels.TokenCandidates()
                .select(new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, 12, 5, 1f, new int[0], 0);
        assertThatThrownBy(() -> s.sample(c)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("5 candidates for top-k 10");
        assertThat(s.candidatesNeeded(12)).isEqualTo(10);
        assertThat(s.candidatesNeeded(10)).isEqualTo(10); // top-k of the whole vocabulary: the full path
        assertThat(new Sampler(plain().build()).candidatesNeeded(12)).isEqualTo(12);
    }
}
