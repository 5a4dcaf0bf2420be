package io.jcascade.cascade;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.jcascade.engine.GeneratedToken;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The signals against values worked out by hand. */
class CascadeSignalsTest {

    // Three tokens (the last one the end-of-sequence token):
    //   entropy 0.2, p 0.9, top 0.9, second 0.05
    //   entropy 1.0, p 0.4, top 0.5, second 0.4   (the model did not pick its top token)
    //   entropy 0.1, p 0.95, top 0.95, second 0.03
    static final List<GeneratedToken> TOKENS = List.of(
            new GeneratedToken(5, "4", 0.2, 0.9, 0.9, 0.05),
            new GeneratedToken(6, "2", 1.0, 0.4, 0.5, 0.4),
            new GeneratedToken(2, "", 0.1, 0.95, 0.95, 0.03));

    @Test
    void everySignalMatchesTheHandComputedValue() {
        Signals s = SignalAccumulator.of(TOKENS, 2);
        assertThat(s.tokens()).isEqualTo(3);
        assertThat(s.meanEntropy()).isCloseTo((0.2 + 1.0 + 0.1) / 3, within(1e-12)); // 0.433333
        assertThat(s.maxEntropy()).isCloseTo(1.0, within(1e-12));
        // sorted 0.1, 0.2, 1.0; position 0.9 * 2 = 1.8 -> 0.2 + 0.8 * (1.0 - 0.2) = 0.84
        assertThat(s.entropyQ90()).isCloseTo(0.84, within(1e-12));
        assertThat(s.minProb()).isCloseTo(0.4, within(1e-12));
        // margins 0.85, 0.1, 0.92 -> mean 0.623333
        assertThat(s.meanMargin()).isCloseTo((0.85 + 0.1 + 0.92) / 3, within(1e-12));
        assertThat(s.firstKEntropy()).isCloseTo(0.6, within(1e-12)); // (0.2 + 1.0) / 2
        assertThat(s.seqLogprob()).isCloseTo(Math.log(0.9) + Math.log(0.4) + Math.log(0.95), within(1e-12)); // -1.073
        assertThat(s.asMap()).containsOnlyKeys("mean_entropy", "max_entropy", "entropy_q90", "min_prob",
                "mean_margin", "first_k_entropy", "seq_logprob");
        assertThat(s.asMap().get("seq_logprob")).isCloseTo(-1.0729445, within(1e-6));
    }

    @Test
    void percentileOfOneTokenAndOfTenTokens() {
        assertThat(SignalAccumulator.of(TOKENS.subList(0, 1), 3).entropyQ90()).isEqualTo(0.2);
        SignalAccumulator acc = new SignalAccumulator(3);
        for (int i = 1; i <= 10; i++) {
            acc.accept(i / 10.0, 0.5, 0.5, 0.1); // entropies 0.1..1.0
        }
        // position 0.9 * 9 = 8.1 -> 0.9 + 0.1 * 0.1 = 0.91
        assertThat(acc.signals().entropyQ90()).isCloseTo(0.91, within(1e-12));
        assertThat(acc.signals().firstKEntropy()).isCloseTo(0.2, within(1e-12)); // (0.1+0.2+0.3)/3
        assertThat(acc.signals().meanEntropy()).isCloseTo(0.55, within(1e-12));
    }

    @Test
    void firstKWithFewerTokensAveragesWhatThereIs() {
        assertThat(SignalAccumulator.of(TOKENS.subList(0, 2), 5).firstKEntropy()).isCloseTo(0.6, within(1e-12));
    }

    @Test
    void noTokensMeansNothingUncertain() {
        Signals s = new SignalAccumulator(3).signals();
        assertThat(s.meanEntropy()).isZero();
        assertThat(s.maxEntropy()).isZero();
        assertThat(s.entropyQ90()).isZero();
        assertThat(s.minProb()).isEqualTo(1);
        assertThat(s.meanMargin()).isEqualTo(1);
        assertThat(s.seqLogprob()).isZero();
    }

    @Test
    void aZeroProbabilityGivesAFiniteLogprob() {
        SignalAccumulator acc = new SignalAccumulator(3);
        acc.accept(2.0, 0.0, 0.5, 0.4);
        assertThat(acc.signals().seqLogprob()).isFinite().isLessThan(-600);
    }

    @Test
    void directionOfEachSignal() {
        assertThat(Signal.MEAN_ENTROPY.escalates(0.5, 0.5)).isTrue(); // at or above
        assertThat(Signal.MEAN_ENTROPY.escalates(0.49, 0.5)).isFalse();
        assertThat(Signal.MIN_PROB.escalates(0.5, 0.5)).isFalse(); // below only
        assertThat(Signal.MIN_PROB.escalates(0.49, 0.5)).isTrue();
        assertThat(Signal.SEQ_LOGPROB.escalates(-3, -2)).isTrue();
        assertThat(Signal.MEAN_MARGIN.escalates(0.9, 0.5)).isFalse();
        assertThat(Signal.parse("entropy_q90")).isEqualTo(Signal.ENTROPY_Q90);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> Signal.parse("entropy"))
                .hasMessageContaining("mean_entropy, max_entropy");
    }

    @Test
    void earlyExitIsCertainOnlyWhenNoLaterTokenCanUndoIt() {
        SignalAccumulator acc = new SignalAccumulator(2);
        Policy max = new Policy(Signal.MAX_ENTROPY, List.of(0.5), 2, true);
        Policy mean = new Policy(Signal.MEAN_ENTROPY, List.of(0.1), 2, true);
        Policy minProb = new Policy(Signal.MIN_PROB, List.of(0.5), 2, true);
        Policy firstK = new Policy(Signal.FIRST_K_ENTROPY, List.of(0.5), 2, true);
        Policy seq = new Policy(Signal.SEQ_LOGPROB, List.of(-0.5), 2, true);
        acc.accept(TOKENS.get(0));
        assertThat(max.certain(acc, 0)).isFalse();
        assertThat(minProb.certain(acc, 0)).isFalse();
        assertThat(firstK.certain(acc, 0)).isFalse(); // only one of k=2 tokens in
        assertThat(mean.certain(acc, 0)).isFalse(); // mean 0.2 >= 0.1, but later tokens could pull it down
        acc.accept(TOKENS.get(1));
        assertThat(max.certain(acc, 0)).isTrue(); // 1.0 >= 0.5
        assertThat(minProb.certain(acc, 0)).isTrue(); // 0.4 < 0.5
        assertThat(firstK.certain(acc, 0)).isTrue(); // (0.2+1.0)/2 = 0.6 >= 0.5
        assertThat(seq.certain(acc, 0)).isTrue(); // log 0.9 + log 0.4 = -1.02 < -0.5
        assertThat(mean.certain(acc, 0)).isFalse();
    }
}
