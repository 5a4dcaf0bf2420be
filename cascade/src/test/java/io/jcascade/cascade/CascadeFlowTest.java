package io.jcascade.cascade;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The cascade's decisions with scripted local tiers: thresholds per step, early exit, router, fallback. */
class CascadeFlowTest {

    static LocalTier local(String name, FakeGenerator g, double costPer1k) {
        return new LocalTier(TierConfig.local(name, Path.of(name + ".gguf"), costPer1k), g, 3, () -> { });
    }

    @Test
    void eachThresholdGovernsItsOwnStep() throws Exception {
        FakeGenerator a = FakeGenerator.constant("1", 0.4, 0.4);
        FakeGenerator b = FakeGenerator.constant("2", 0.4, 0.4);
        FakeGenerator c = FakeGenerator.constant("3", 0.4, 0.4);
        try (Cascade cascade = Cascade.builder().tier(local("a", a, 1)).tier(local("b", b, 2)).tier(local("c", c, 3))
                .policy(new Policy(Signal.MEAN_ENTROPY, List.of(0.3, 0.5), 3, true)).build()) {
            CascadeResult r = cascade.run("p");
            // 0.4 >= 0.3 escalates a -> b; 0.4 < 0.5 accepts b.
            assertThat(r.tier()).isEqualTo("b");
            assertThat(r.completion()).isEqualTo("2");
            assertThat(r.escalated()).isTrue();
            assertThat(r.attempts()).extracting(TierAttempt::decision)
                    .containsExactly(TierAttempt.Decision.ESCALATE, TierAttempt.Decision.ACCEPT);
            assertThat(r.attempts()).extracting(TierAttempt::threshold).containsExactly(0.3, 0.5);
            assertThat(r.signals()).containsOnlyKeys("a", "b");
            // cost: (2 prompt tokens + 2 generated) * price / 1000 for each tier
            assertThat(r.cost()).isEqualTo(4 * 1 / 1000.0 + 4 * 2 / 1000.0);
            assertThat(c.calls.get()).isZero();
        }
    }

    @Test
    void maxEntropyExitsTheMomentOneTokenCrosses() throws Exception {
        FakeGenerator small = FakeGenerator.constant("12345", 0.1, 0.9, 0.1, 0.1, 0.1, 0.1);
        FakeGenerator large = FakeGenerator.constant("99", 0.0, 0.0, 0.0);
        try (Cascade cascade = Cascade.builder().tier(local("small", small, 1)).tier(local("large", large, 1))
                .policy(new Policy(Signal.MAX_ENTROPY, List.of(0.5), 3, true)).build()) {
            CascadeResult r = cascade.run("p");
            assertThat(r.tier()).isEqualTo("large");
            TierAttempt first = r.attempts().get(0);
            assertThat(first.output().earlyExit()).isTrue();
            assertThat(first.output().completionTokens()).isEqualTo(2); // stopped right after the 0.9 token
            assertThat(first.output().signals().maxEntropy()).isEqualTo(0.9);
            assertThat(small.tokensGenerated.get()).isEqualTo(2);
        }
        // The same prompt without early exit generates every token and decides the same way.
        FakeGenerator small2 = FakeGenerator.constant("12345", 0.1, 0.9, 0.1, 0.1, 0.1, 0.1);
        try (Cascade cascade = Cascade.builder().tier(local("small", small2, 1))
                .tier(local("large", FakeGenerator.constant("99", 0, 0, 0), 1))
                .policy(new Policy(Signal.MAX_ENTROPY, List.of(0.5), 3, false)).build()) {
            CascadeResult r = cascade.run("p");
            assertThat(r.tier()).isEqualTo("large");
            assertThat(r.attempts().get(0).output().earlyExit()).isFalse();
            assertThat(small2.tokensGenerated.get()).isEqualTo(6);
        }
    }

    @Test
    void meanEntropyNeverExitsEarly() throws Exception {
        FakeGenerator small = FakeGenerator.constant("12345", 2.0, 0, 0, 0, 0, 0); // mean 0.333
        try (Cascade cascade = Cascade.builder().tier(local("small", small, 1))
                .tier(local("large", FakeGenerator.constant("9", 0, 0), 1))
                .policy(new Policy(Signal.MEAN_ENTROPY, List.of(0.5), 3, true)).build()) {
            CascadeResult r = cascade.run("p");
            assertThat(r.tier()).isEqualTo("small");
            assertThat(r.completion()).isEqualTo("12345");
            assertThat(small.tokensGenerated.get()).isEqualTo(6);
        }
    }

    @Test
    void theRouterSendsPromptsStraightToANamedTier() throws Exception {
        FakeGenerator small = FakeGenerator.constant("s", 0, 0);
        FakeGenerator large = FakeGenerator.constant("L", 0, 0);
        List<RouteRule> rules = List.of(new RouteRule("large", 0, 0, List.of(), Pattern.compile("\\d\\d\\*\\d\\d")),
                new RouteRule("large", 10, 0, List.of(), null),
                new RouteRule("large", 0, 0, List.of("HARD"), null));
        try (Cascade cascade = Cascade.builder().tier(local("small", small, 1)).tier(local("large", large, 1))
                .policy(new Policy(Signal.MEAN_ENTROPY, List.of(0.5), 3, true)).router(rules).build()) {
            CascadeResult routed = cascade.run("12*34=");
            assertThat(routed.tier()).isEqualTo("large");
            assertThat(routed.routedTo()).isEqualTo("large");
            assertThat(routed.escalated()).isFalse();
            assertThat(routed.attempts()).hasSize(1);
            assertThat(cascade.run("1+2+3+4+5+6=").tier()).isEqualTo("large");
            assertThat(cascade.run("a hard one").tier()).isEqualTo("large");
            CascadeResult plain = cascade.run("2*3=");
            assertThat(plain.tier()).isEqualTo("small");
            assertThat(plain.routedTo()).isNull();
            assertThat(small.calls.get()).isEqualTo(1);
        }
    }

    @Test
    void whenEveryTargetFailsAnEarlyExitedAnswerIsGeneratedAgainInFull() throws Exception {
        FakeGenerator small = FakeGenerator.constant("123", 0.1, 0.9, 0.1, 0.1);
        LocalGenerator broken = (p, l, c) -> {
            throw new IllegalStateException("out of memory");
        };
        try (Cascade cascade = Cascade.builder().tier(local("small", small, 1))
                .tier(new LocalTier(TierConfig.local("large", Path.of("x"), 1), broken, 3, () -> { }))
                .policy(new Policy(Signal.MAX_ENTROPY, List.of(0.5), 3, true)).build()) {
            CascadeResult r = cascade.run("p");
            assertThat(r.degraded()).isTrue();
            assertThat(r.completion()).isEqualTo("123");
            assertThat(r.tier()).isEqualTo("small");
            assertThat(r.attempts()).extracting(TierAttempt::decision).containsExactly(TierAttempt.Decision.ESCALATE,
                    TierAttempt.Decision.FAILED, TierAttempt.Decision.FALLBACK);
            assertThat(r.attempts().get(1).output().error()).contains("out of memory");
            assertThat(small.calls.get()).isEqualTo(2);
        }
    }

    @Test
    void theFallbackIsTheMostConfidentLocalAnswer() throws Exception {
        LocalGenerator broken = (p, l, c) -> {
            throw new IllegalStateException("down");
        };
        try (Cascade cascade = Cascade.builder().tier(local("a", FakeGenerator.constant("1", 0.9, 0.9), 1))
                .tier(local("b", FakeGenerator.constant("2", 0.6, 0.6), 1))
                .tier(new LocalTier(TierConfig.local("c", Path.of("x"), 1), broken, 3, () -> { }))
                .policy(new Policy(Signal.MEAN_ENTROPY, List.of(0.5, 0.5), 3, true)).build()) {
            CascadeResult r = cascade.run("p");
            assertThat(r.degraded()).isTrue();
            assertThat(r.tier()).isEqualTo("b");
            assertThat(r.completion()).isEqualTo("2");
        }
    }

    @Test
    void confidenceSignalsEscalateWhenBelow() throws Exception {
        // probability = 1 - h/2: entropies 0.2 -> p 0.9; 1.2 -> p 0.4
        try (Cascade cascade = Cascade.builder().tier(local("small", FakeGenerator.constant("1", 0.2, 1.2), 1))
                .tier(local("large", FakeGenerator.constant("2", 0, 0), 1))
                .policy(new Policy(Signal.MIN_PROB, List.of(0.5), 3, true)).build()) {
            assertThat(cascade.run("p").tier()).isEqualTo("large");
        }
        try (Cascade cascade = Cascade.builder().tier(local("small", FakeGenerator.constant("1", 0.2, 0.2), 1))
                .tier(local("large", FakeGenerator.constant("2", 0, 0), 1))
                .policy(new Policy(Signal.MIN_PROB, List.of(0.5), 3, true)).build()) {
            assertThat(cascade.run("p").tier()).isEqualTo("small");
        }
    }
}
