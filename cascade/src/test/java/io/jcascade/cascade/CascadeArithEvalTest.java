package io.jcascade.cascade;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;

/**
 * The arith pair on the 1,000 dev prompts against the reference curve: each model runs every
 * prompt once (an always-escalate policy without early exit), and the accuracy and escalation
 * rate at three thresholds of {@code mean_entropy} and {@code max_entropy} are evaluated from the
 * recorded signals and compared with the same figures computed from the reference CSV.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@Timeout(300)
class CascadeArithEvalTest {
    static final ObjectMapper JSON = new ObjectMapper();

    record Ref(String prompt, String answer, boolean smallCorrect, double mean, double max, boolean largeCorrect) {}

    record Ours(String small, String large, Signals signals) {}

    List<Ref> refs = new ArrayList<>();
    Map<String, Ours> ours = new HashMap<>();
    double seconds;

    @BeforeAll
    void runBothModelsOnce() throws Exception {
        String shared = System.getProperty("jcascade.shared");
        String root = System.getProperty("jcascade.root");
        assumeTrue(shared != null && root != null, "jcascade.shared / jcascade.root not set");
        Path dev = Path.of(shared, "eval", "arith-dev.jsonl");
        Path csv = Path.of(shared, "eval", "arith-dev-reference.csv");
        Path small = Path.of(root, "models", "arith-small.gguf");
        Path large = Path.of(root, "models", "arith-large.gguf");
        assumeTrue(Files.exists(dev) && Files.exists(csv) && Files.exists(small) && Files.exists(large),
                "arith dev set, reference or models missing");
        List<String> header = null;
        for (String line : Files.readAllLines(csv)) {
            String[] f = line.split(",");
            if (header == null) {
                header = List.of(f);
                continue;
            }
            refs.add(new Ref(f[header.indexOf("prompt")], f[header.indexOf("answer")],
                    f[header.indexOf("small_correct")].equals("1"),
                    Double.parseDouble(f[header.indexOf("small_mean_entropy")]),
                    Double.parseDouble(f[header.indexOf("small_max_entropy")]),
                    f[header.indexOf("large_correct")].equals("1")));
        }
        List<String> prompts = new ArrayList<>();
        for (String line : Files.readAllLines(dev)) {
            if (!line.isBlank()) {
                JsonNode n = JSON.readTree(line);
                prompts.add(n.get("prompt").asText());
            }
        }
        assertThat(prompts).hasSize(1000);
        assertThat(refs).hasSize(1000);
        CascadeConfig config = CascadeConfig.parse("""
                {"tiers": [
                   {"name": "small", "kind": "local", "model": "%s", "cost_per_1k_tokens": 0.0001, "max_tokens": 8, "threads": 1},
                   {"name": "large", "kind": "local", "model": "%s", "cost_per_1k_tokens": 0.002, "max_tokens": 8, "threads": 1}],
                 "policy": {"signal": "mean_entropy", "thresholds": [-1], "early_exit": false}}
                """.formatted(small, large), null);
        long start = System.nanoTime();
        try (Cascade cascade = Cascade.builder().config(config).build()) {
            for (String p : prompts) {
                CascadeResult r = cascade.run(p);
                assertThat(r.attempts()).hasSize(2);
                ours.put(p, new Ours(r.attempts().get(0).output().completion(), r.attempts().get(1).output().completion(),
                        r.signals().get("small")));
            }
        }
        seconds = (System.nanoTime() - start) / 1e9;
        System.out.printf("arith dev: 1000 prompts through both models in %.1f s%n", seconds);
    }

    @Test
    void eachModelsAccuracyMatchesTheReference() {
        double small = refs.stream().filter(r -> ours.get(r.prompt()).small().equals(r.answer())).count() / 1000.0;
        double large = refs.stream().filter(r -> ours.get(r.prompt()).large().equals(r.answer())).count() / 1000.0;
        System.out.printf("small accuracy %.3f (reference 0.609), large %.3f (reference 0.943)%n", small, large);
        assertThat(small).isCloseTo(0.609, within(0.01));
        assertThat(large).isCloseTo(0.943, within(0.01));
    }

    @Test
    void meanEntropyCurveMatchesTheReference() {
        assertCurve(Signal.MEAN_ENTROPY, 0.05, 0.156737, 0.35);
    }

    @Test
    void maxEntropyCurveMatchesTheReference() {
        assertCurve(Signal.MAX_ENTROPY, 0.2, 0.575487, 1.0);
    }

    @Test
    void aLiveCascadeWithEarlyExitDecidesAsTheRecordedSignalsSay() throws Exception {
        String root = System.getProperty("jcascade.root");
        CascadeConfig config = CascadeConfig.parse("""
                {"tiers": [
                   {"name": "small", "kind": "local", "model": "models/arith-small.gguf", "max_tokens": 8, "threads": 1},
                   {"name": "large", "kind": "local", "model": "models/arith-large.gguf", "max_tokens": 8, "threads": 1}],
                 "policy": {"signal": "max_entropy", "thresholds": [0.575487]}}
                """, Path.of(root));
        int early = 0;
        try (Cascade cascade = Cascade.builder().config(config).build()) {
            for (Ref r : refs.subList(0, 200)) {
                CascadeResult res = cascade.run(r.prompt());
                Ours o = ours.get(r.prompt());
                boolean expected = o.signals().maxEntropy() >= 0.575487;
                assertThat(res.escalated()).as(r.prompt()).isEqualTo(expected);
                assertThat(res.completion()).isEqualTo(expected ? o.large() : o.small());
                if (res.attempts().get(0).output().earlyExit()) {
                    early++;
                    assertThat(res.attempts().get(0).output().completionTokens())
                            .isLessThanOrEqualTo(o.signals().tokens());
                }
            }
        }
        System.out.printf("max_entropy early exit cut %d of 200 small generations short%n", early);
        assertThat(early).isPositive();
    }

    void assertCurve(Signal signal, double... thresholds) {
        List<ThresholdSweep.Row> refRows = new ArrayList<>();
        List<ThresholdSweep.Row> ourRows = new ArrayList<>();
        for (Ref r : refs) {
            refRows.add(new ThresholdSweep.Row(signal == Signal.MEAN_ENTROPY ? r.mean() : r.max(), r.smallCorrect(),
                    r.largeCorrect()));
            Ours o = ours.get(r.prompt());
            ourRows.add(new ThresholdSweep.Row(o.signals().get(signal), o.small().equals(r.answer()),
                    o.large().equals(r.answer())));
        }
        ThresholdSweep ref = new ThresholdSweep(signal, refRows);
        ThresholdSweep mine = new ThresholdSweep(signal, ourRows);
        for (double t : thresholds) {
            ThresholdSweep.Point a = ref.at(t);
            ThresholdSweep.Point b = mine.at(t);
            System.out.printf("%s >= %.6f: reference escalation %.3f accuracy %.3f; jcascade escalation %.3f accuracy %.3f%n",
                    signal.key(), t, a.escalationRate(), a.accuracy(), b.escalationRate(), b.accuracy());
            assertThat(b.escalationRate()).as(signal.key() + " escalation at " + t).isCloseTo(a.escalationRate(),
                    within(0.01));
            assertThat(b.accuracy()).as(signal.key() + " accuracy at " + t).isCloseTo(a.accuracy(), within(0.01));
        }
    }
}
