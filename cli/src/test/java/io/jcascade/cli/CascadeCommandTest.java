package io.jcascade.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jcascade.cli.CliTest.Run;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code jcascade cascade} end to end, in process, on the arith pair. */
class CascadeCommandTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static Path repo(String relative) {
        String root = System.getProperty("jcascade.root");
        Path p = (root != null ? Path.of(root) : Path.of("..")).resolve(relative);
        assumeTrue(Files.exists(p), "missing: " + p);
        return p;
    }

    static List<JsonNode> read(Path p) throws Exception {
        return Files.readAllLines(p).stream().map(l -> {
            try {
                return JSON.readTree(l);
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }).toList();
    }

    @Test
    void demoPrintsATableAndTheSavings() {
        repo("models/arith-cascade.json");
        Run r = CliTest.run("cascade", "--demo");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).contains("prompt", "tier", "small mean_entropy", "answer", "expected", "result", "cost")
                .contains("3+0=").contains("57*87=").contains("answered by: small").contains("always using large")
                .contains("saved").contains("latency p50").contains("accuracy ");
        assertThat(r.out().lines().filter(l -> l.startsWith("4712+42=")).findFirst().orElseThrow())
                .contains("large").contains("4754").contains("right");
    }

    @Test
    void batchWritesEveryFieldAndBothLogs(@TempDir Path dir) throws Exception {
        Path in = dir.resolve("in.jsonl");
        Path out = dir.resolve("out.jsonl");
        Path decisions = dir.resolve("decisions.jsonl");
        Path distill = dir.resolve("distill.jsonl");
        Files.write(in, List.of("{\"prompt\": \"3+0=\", \"answer\": \"3\", \"id\": 1}", "not json",
                "{\"prompt\": \"4712+42=\", \"answer\": \"4754\", \"id\": 2}"));
        Run r = CliTest.run("cascade", "--config", repo("models/arith-cascade.json").toString(), "--input", in.toString(),
                "--output", out.toString(), "--signal", "max_entropy", "--threshold", "0.575",
                "--decision-log", decisions.toString(), "--distill-log", distill.toString());
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.err()).contains(in + ":2: skipped: not valid JSON");
        List<JsonNode> rows = read(out);
        assertThat(rows).extracting(n -> n.get("id").asInt()).containsExactly(1, 2);
        JsonNode easy = rows.get(0);
        assertThat(easy.get("completion").asText()).isEqualTo("3");
        assertThat(easy.get("tier").asText()).isEqualTo("small");
        assertThat(easy.get("escalated").asBoolean()).isFalse();
        assertThat(easy.get("degraded").asBoolean()).isFalse();
        assertThat(easy.get("cost").asDouble()).isPositive();
        assertThat(easy.get("signals").get("small").fieldNames()).toIterable().containsExactly("mean_entropy",
                "max_entropy", "entropy_q90", "min_prob", "mean_margin", "first_k_entropy", "seq_logprob");
        JsonNode hard = rows.get(1);
        assertThat(hard.get("tier").asText()).isEqualTo("large");
        assertThat(hard.get("completion").asText()).isEqualTo("4754");
        assertThat(hard.get("escalated").asBoolean()).isTrue();
        assertThat(hard.get("signals").has("small")).isTrue();
        assertThat(hard.get("signals").has("large")).isTrue();
        List<JsonNode> log = read(decisions);
        assertThat(log).hasSize(2);
        assertThat(log.get(1).get("signal").asText()).isEqualTo("max_entropy");
        assertThat(log.get(1).get("thresholds").get(0).asDouble()).isEqualTo(0.575);
        assertThat(log.get(1).get("attempts").get(0).get("decision").asText()).isEqualTo("escalate");
        assertThat(log.get(1).get("attempts").get(0).get("early_exit").asBoolean()).isTrue();
        assertThat(read(distill)).singleElement().satisfies(d -> {
            assertThat(d.get("prompt").asText()).isEqualTo("4712+42=");
            assertThat(d.get("completion").asText()).isEqualTo("4754");
            assertThat(d.get("tier").asText()).isEqualTo("large");
        });
        assertThat(r.out()).contains("answered by: small 1 (50.0%) large 1 (50.0%)").contains("accuracy 2/2");
    }

    @Test
    void onePromptPrintsTheAnswerAndTheTier() {
        Run r = CliTest.run("cascade", "--config", repo("models/arith-cascade.json").toString(), "--prompt", "12+47=");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out().trim()).isEqualTo("59");
        assertThat(r.err()).contains("tier small").contains("mean_entropy");
    }

    @Test
    void badConfigsAndFlagsAreOneLineErrors(@TempDir Path dir) throws Exception {
        Path bad = dir.resolve("bad.json");
        Files.writeString(bad, "{\"tiers\": [{\"name\": \"a\", \"kind\": \"local\", \"model\": \"x.gguf\", \"cost\": 1}]}");
        Run r = CliTest.run("cascade", "--config", bad.toString(), "--prompt", "1+1=");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).contains("jcascade: error:").contains("tiers[0].cost: unknown key for kind local");
        String cfg = repo("models/arith-cascade.json").toString();
        r = CliTest.run("cascade", "--config", cfg, "--prompt", "1+1=", "--signal", "entropy");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).contains("unknown signal \"entropy\"");
        r = CliTest.run("cascade", "--config", cfg, "--prompt", "1+1=", "--thresholds", "0.1,0.2");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).contains("thresholds: expected 1 threshold");
        r = CliTest.run("cascade", "--config", cfg, "--prompt", "1+1=", "--threshold", "0.1", "--thresholds", "0.2");
        assertThat(r.exit()).isEqualTo(1);
        r = CliTest.run("cascade", "--config", cfg);
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).contains("give either --prompt");
    }
}
