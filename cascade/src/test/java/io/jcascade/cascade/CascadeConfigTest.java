package io.jcascade.cascade;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Config parsing: the issue's example, defaults, path resolution, and errors that name the key. */
class CascadeConfigTest {

    @TempDir
    Path dir;

    Path touch(String name) throws Exception {
        Path p = dir.resolve(name);
        Files.createDirectories(p.getParent());
        Files.write(p, new byte[] {0});
        return p;
    }

    static final String EXAMPLE = """
            {"tiers": [
               {"name": "small", "kind": "local", "model": "models/arith-small.gguf", "cost_per_1k_tokens": 0.0001},
               {"name": "large", "kind": "local", "model": "models/arith-large.gguf", "cost_per_1k_tokens": 0.002},
               {"name": "frontier", "kind": "openai", "base_url": "https://api.openai.com/v1", "model": "gpt-4o",
                "api_key_env": "OPENAI_API_KEY", "price_input_per_1m": 2.5, "price_output_per_1m": 10.0}],
             "policy": {"signal": "mean_entropy", "thresholds": [0.35, 0.5]}}
            """;

    @Test
    void parsesTheIssueExampleResolvingModelsAgainstTheConfigFolder() throws Exception {
        touch("models/arith-small.gguf");
        touch("models/arith-large.gguf");
        Path file = dir.resolve("cascade.json");
        Files.writeString(file, EXAMPLE);
        CascadeConfig c = CascadeConfig.load(file);
        assertThat(c.tiers()).extracting(TierConfig::name).containsExactly("small", "large", "frontier");
        assertThat(c.tiers().get(0).modelPath()).isEqualTo(dir.resolve("models/arith-small.gguf").toAbsolutePath());
        assertThat(c.tiers().get(0).temperature()).isZero();
        assertThat(c.tiers().get(0).maxTokens()).isEqualTo(256);
        TierConfig f = c.tiers().get(2);
        assertThat(f.kind()).isEqualTo(TierKind.OPENAI);
        assertThat(f.apiKeyEnv()).isEqualTo("OPENAI_API_KEY");
        assertThat(f.cost(1_000_000, 100_000)).isEqualTo(2.5 + 1.0);
        assertThat(c.tiers().get(1).cost(10, 5)).isCloseTo(0.002 * 15 / 1000, org.assertj.core.api.Assertions.within(1e-15));
        assertThat(c.policy().signal()).isEqualTo(Signal.MEAN_ENTROPY);
        assertThat(c.policy().thresholds()).containsExactly(0.35, 0.5);
        assertThat(c.policy().firstK()).isEqualTo(3);
        assertThat(c.policy().earlyExit()).isTrue();
        assertThat(f.timeoutMs()).isEqualTo(30_000);
        assertThat(f.maxRetries()).isEqualTo(3);
    }

    @Test
    void overridesFromTheCommandLine() throws Exception {
        touch("a.gguf");
        touch("b.gguf");
        CascadeConfig c = CascadeConfig.parse("""
                {"tiers": [{"name": "a", "kind": "local", "model": "a.gguf"},
                           {"name": "b", "kind": "local", "model": "b.gguf"}],
                 "policy": {"signal": "mean_entropy", "thresholds": [0.3]}}""", dir);
        CascadeConfig o = c.withSignal(Signal.MIN_PROB).withThresholds(List.of(0.7));
        assertThat(o.policy().signal()).isEqualTo(Signal.MIN_PROB);
        assertThat(o.policy().thresholds()).containsExactly(0.7);
        assertThatThrownBy(() -> c.withThresholds(List.of(0.1, 0.2))).isInstanceOf(ConfigException.class)
                .hasMessageContaining("thresholds: expected 1 threshold");
    }

    @Test
    void oneThresholdServesEveryStep() throws Exception {
        touch("a.gguf");
        CascadeConfig c = CascadeConfig.parse("""
                {"tiers": [{"name": "a", "kind": "local", "model": "a.gguf"},
                           {"name": "b", "kind": "local", "model": "a.gguf"},
                           {"name": "c", "kind": "anthropic", "model": "claude", "max_tokens": 64}],
                 "policy": {"signal": "max_entropy", "thresholds": 0.4},
                 "router": [{"tier": "c", "keywords": ["Prove"]}, {"tier": "b", "regex": "\\\\d\\\\d\\\\*\\\\d\\\\d"}]}""", dir);
        assertThat(c.policy().thresholds()).containsExactly(0.4, 0.4);
        assertThat(c.tiers().get(2).baseUrl()).isEqualTo("https://api.anthropic.com/v1");
        assertThat(c.tiers().get(2).anthropicVersion()).isEqualTo("2023-06-01");
        assertThat(c.router().get(0).matches("please prove it")).isTrue();
        assertThat(c.router().get(1).matches("12*34=")).isTrue();
        assertThat(c.router().get(1).matches("1*34=")).isFalse();
    }

    @Test
    void errorsNameTheKey() throws Exception {
        touch("a.gguf");
        String local = "{\"name\": \"a\", \"kind\": \"local\", \"model\": \"a.gguf\"";
        String two = "{\"tiers\": [" + local + "}, " + local.replace("\"a\", \"kind", "\"b\", \"kind") + "}]";
        assertError(two + ", \"policy\": {\"thresholds\": [0.1], \"signl\": \"x\"}}", "policy.signl: unknown key");
        assertError(two + ", \"policy\": {\"thresholds\": [0.1], \"signal\": \"entropy\"}}",
                "policy.signal: unknown signal \"entropy\"");
        assertError(two + ", \"policy\": {\"thresholds\": [\"0.1\"]}}", "policy.thresholds[0]: expected a number");
        assertError(two + ", \"policy\": {\"thresholds\": [0.1, 0.2]}}", "policy.thresholds: expected 1 threshold");
        assertError(two + "}", "policy: required");
        assertError("{\"tiers\": [" + local + ", \"cost_per_1k_tokens\": \"cheap\"}]}",
                "tiers[0].cost_per_1k_tokens: expected a number >= 0, got \"cheap\"");
        assertError("{\"tiers\": [" + local + ", \"cost_per_1k_tokens\": -1}]}",
                "tiers[0].cost_per_1k_tokens: expected a number >= 0, got -1");
        assertError("{\"tiers\": [" + local + ", \"modle\": 1}]}", "tiers[0].modle: unknown key for kind local");
        assertError("{\"tiers\": [" + local + ", \"base_url\": \"http://x\"}]}", "tiers[0].base_url: unknown key for kind local");
        assertError("{\"tiers\": [" + local + ", \"threads\": 1.5}]}", "tiers[0].threads: expected an integer >= 0, got 1.5");
        assertError("{\"tiers\": [" + local + ", \"backend\": \"tpu\"}]}", "tiers[0].backend: unknown backend \"tpu\"");
        assertError("{\"tiers\": [" + local + ", \"stop\": [1]}]}", "tiers[0].stop[0]: expected a non-empty string");
        assertError("{\"tiers\": [{\"name\": \"a\", \"kind\": \"local\", \"model\": \"nope.gguf\"}]}",
                "tiers[0].model: no such model file \"nope.gguf\"");
        assertError("{\"tiers\": [{\"name\": \"a\", \"kind\": \"gemini\", \"model\": \"x\"}]}", "tiers[0].kind: unknown kind");
        assertError("{\"tiers\": [{\"kind\": \"local\", \"model\": \"a.gguf\"}]}", "tiers[0].name: required");
        assertError("{\"tiers\": [{\"name\": \"r\", \"kind\": \"anthropic\", \"model\": \"claude\"}]}",
                "tiers[0].max_tokens: required for kind anthropic");
        assertError("{\"tiers\": [{\"name\": \"r\", \"kind\": \"openai\", \"model\": \"m\", \"base_url\": \"ftp://x\"}]}",
                "tiers[0].base_url: expected an http:// or https:// URL");
        assertError("{\"tiers\": [{\"name\": \"r\", \"kind\": \"openai\", \"model\": \"m\", \"timeout_ms\": 0}]}",
                "tiers[0].timeout_ms: expected an integer >= 1, got 0");
        assertError("{\"tiers\": [{\"name\": \"r\", \"kind\": \"openai\", \"model\": \"m\", \"anthropic_version\": \"x\"}]}",
                "tiers[0].anthropic_version: unknown key for kind openai");
        assertError("{\"tiers\": [" + local + "}, " + local + "}], \"policy\": {\"thresholds\": [1]}}",
                "tiers[1].name: duplicate tier name \"a\"");
        assertError("{\"tiers\": [" + local + "}], \"router\": [{\"tier\": \"zz\", \"keywords\": [\"x\"]}]}",
                "router[0].tier: no tier named \"zz\"");
        assertError("{\"tiers\": [" + local + "}], \"router\": [{\"tier\": \"a\", \"regex\": \"(\"}]}",
                "router[0].regex: not a valid regular expression");
        assertError("{\"tiers\": [" + local + "}], \"router\": [{\"tier\": \"a\"}]}", "router[0]: a rule needs at least one");
        assertError("{\"tiers\": [" + local + "}], \"extra\": 1}", "extra: unknown key");
        assertError("{\"tiers\": [" + local + ", \"name\": \"b\"}]}", "not valid JSON: Duplicate field 'name'");
        assertError("{\"tiers\": []}", "tiers: at least one tier");
        assertError("{\"tiers\": ", "not valid JSON");
    }

    @Test
    void loadPrefixesTheFileName() throws Exception {
        Path file = dir.resolve("bad.json");
        Files.writeString(file, "{\"tiers\": [], \"x\": 1}");
        assertThatThrownBy(() -> CascadeConfig.load(file)).isInstanceOf(ConfigException.class)
                .hasMessageStartingWith(file + ": x: unknown key");
    }

    @Test
    void theApiKeyIsNeverInTheConfig() throws Exception {
        CascadeConfig c = CascadeConfig.parse("""
                {"tiers": [{"name": "r", "kind": "openai", "model": "m", "api_key_env": "MY_KEY"}]}""", dir);
        assertThat(c.toString()).contains("MY_KEY").doesNotContain("sk-");
    }

    void assertError(String json, String message) {
        assertThatThrownBy(() -> CascadeConfig.parse(json, dir)).as(json).isInstanceOf(ConfigException.class)
                .hasMessageContaining(message);
    }
}
