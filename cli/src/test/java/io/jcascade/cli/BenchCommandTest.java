package io.jcascade.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jcascade.cli.CliTest.Run;
import java.util.ArrayList;
import java.util.List;
import org.assertj.core.data.Offset;
import org.assertj.core.data.Percentage;
import org.junit.jupiter.api.Test;

/** {@code jcascade bench} on stories260K with tiny settings: the output's shape, never its speed. */
class BenchCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void jsonIsOneLineWithExactlyTheDocumentedFields() throws Exception {
        Run r = CliTest.run("bench", "--model", CliTest.model("stories260K.gguf").toString(), "--threads", "1",
                "--prompt-tokens", "8", "--gen-tokens", "4", "--repetitions", "1", "--backend", "cpu", "--json", "--no-bandwidth");
        assertThat(r.exit()).as(r.err()).isZero();
        List<String> lines = r.out().lines().filter(l -> !l.isBlank()).toList();
        assertThat(lines).hasSize(1);
        JsonNode o = JSON.readTree(lines.get(0));
        List<String> fields = new ArrayList<>();
        o.fieldNames().forEachRemaining(fields::add);
        assertThat(fields).containsExactlyInAnyOrder("prefill_tokens_per_s", "decode_tokens_per_s", "prompt_tokens",
                "gen_tokens", "threads", "backend", "weight_bytes_per_token");
        assertThat(o.get("prefill_tokens_per_s").isNumber()).isTrue();
        assertThat(o.get("prefill_tokens_per_s").asDouble()).isPositive();
        assertThat(o.get("decode_tokens_per_s").isNumber()).isTrue();
        assertThat(o.get("decode_tokens_per_s").asDouble()).isPositive();
        assertThat(o.get("prompt_tokens").asInt()).isEqualTo(8);
        assertThat(o.get("gen_tokens").asInt()).isEqualTo(4);
        assertThat(o.get("threads").asInt()).isEqualTo(1);
        assertThat(o.get("backend").asText()).isEqualTo("cpu");
    }

    @Test
    void bandwidthFieldsAreTheMeasuredBandwidthOverTheWeightBytes() throws Exception {
        Run r = CliTest.run("bench", "--model", CliTest.model("stories260K.gguf").toString(), "--threads", "1",
                "--prompt-tokens", "8", "--gen-tokens", "4", "--repetitions", "1", "--backend", "cpu", "--json");
        assertThat(r.exit()).as(r.err()).isZero();
        JsonNode o = JSON.readTree(r.out().strip());
        double gbs = o.get("bandwidth_gb_per_s").asDouble();
        long bytes = o.get("weight_bytes_per_token").asLong();
        double ceiling = o.get("decode_ceiling_tokens_per_s").asDouble();
        // A real machine reads between 0.1 GB/s and 10 TB/s; a broken measurement lands outside.
        assertThat(gbs).isBetween(0.1, 10_000.0);
        assertThat(ceiling).isCloseTo(gbs * 1e9 / bytes, Percentage.withPercentage(0.5));
        assertThat(o.get("decode_share_of_ceiling").asDouble())
                .isCloseTo(o.get("decode_tokens_per_s").asDouble() / ceiling, Offset.offset(0.002));
    }

    @Test
    void sequencesDecodeTogetherAndCountEveryToken() throws Exception {
        Run r = CliTest.run("bench", "--model", CliTest.model("stories260K.gguf").toString(), "--threads", "1",
                "--prompt-tokens", "8", "--gen-tokens", "4", "--repetitions", "1", "--backend", "cpu", "--json",
                "--sequences", "3");
        assertThat(r.exit()).as(r.err()).isZero();
        JsonNode o = JSON.readTree(r.out().strip());
        assertThat(o.get("sequences").asInt()).isEqualTo(3);
        assertThat(o.get("decode_steps_per_s").asDouble())
                .isCloseTo(o.get("decode_tokens_per_s").asDouble() / 3, Percentage.withPercentage(1));
        // the ceiling is one of steps: each reads the weights once for the three
        assertThat(o.get("decode_share_of_ceiling").asDouble()).isCloseTo(
                o.get("decode_steps_per_s").asDouble() / o.get("decode_ceiling_tokens_per_s").asDouble(),
                Offset.offset(0.002));
        Run bad = CliTest.run("bench", "--model", CliTest.model("stories260K.gguf").toString(), "--sequences", "0");
        assertThat(bad.exit()).isNotZero();
        assertThat(bad.err()).contains("--sequences must be at least 1");
    }

    @Test
    void kernelsListEachWeightShapeOfTheModelWithItsTimes() throws Exception {
        // stories260K: 5 layers of wq, wo (64x64), wk, wv (32x64: 4 of 8 heads), w1, w3 (172x64),
        // w2 (64x172), and the tied 512x64 embedding as the output matrix, all F32.
        Run r = CliTest.run("bench", "--model", CliTest.model("stories260K.gguf").toString(), "--threads", "1",
                "--prompt-tokens", "8", "--gen-tokens", "4", "--repetitions", "1", "--backend", "cpu", "--json",
                "--kernels");
        assertThat(r.exit()).as(r.err()).isZero();
        JsonNode o = JSON.readTree(r.out().strip());
        List<String> shapes = new ArrayList<>();
        for (JsonNode k : o.get("kernels")) {
            shapes.add(k.get("type").asText() + " " + k.get("rows").asInt() + "x" + k.get("cols").asInt() + " * "
                    + k.get("count").asInt());
            assertThat(k.get("weight_bytes").asLong()).isEqualTo(4L * k.get("rows").asInt() * k.get("cols").asInt());
            assertThat(k.get("decode_us").asDouble()).isPositive();
            assertThat(k.get("prefill_tokens").asInt()).isEqualTo(8);
            // GB/s is the matrix's bytes over the time of one product
            assertThat(k.get("decode_gb_per_s").asDouble()).isCloseTo(
                    k.get("weight_bytes").asLong() / (k.get("decode_us").asDouble() * 1e3),
                    Percentage.withPercentage(2));
            assertThat(k.get("prefill_gflop_per_s").asDouble()).isCloseTo(
                    2.0 * k.get("rows").asInt() * k.get("cols").asInt() * 8 / (k.get("prefill_us").asDouble() * 1e3),
                    Percentage.withPercentage(2));
        }
        assertThat(shapes).containsExactlyInAnyOrder("F32 512x64 * 1", "F32 64x64 * 10", "F32 32x64 * 10",
                "F32 172x64 * 10", "F32 64x172 * 5");
        List<String> selections = new ArrayList<>();
        for (JsonNode s : o.get("selection")) {
            selections.add(s.get("vocab").asInt() + " k" + s.get("k").asInt() + " " + s.get("penalty").asDouble());
            assertThat(s.get("us").asDouble()).isPositive();
        }
        assertThat(selections).containsExactly("512 k1 1.0", "512 k40 1.1");
    }

    @Test
    void tableNamesTheTestsAndTheRepetitions() {
        Run r = CliTest.run("bench", "--model", CliTest.model("stories260K.gguf").toString(), "--threads", "1",
                "--prompt-tokens", "8", "--gen-tokens", "4", "--repetitions", "2");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).contains("pp8").contains("tg4").contains("2 runs after 1 warm-up run")
                .contains("threads: 1")
                .contains("decode ceiling").contains("GB/s read on 1 threads");
    }

    @Test
    void refusesMoreTokensThanTheContext() {
        Run r = CliTest.run("bench", "--model", CliTest.model("stories260K.gguf").toString(), "--prompt-tokens",
                "2000", "--gen-tokens", "100", "--json");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).contains("exceeds the model's context of 2048");
    }

    @Test
    void rejectsNonsense() {
        Run r = CliTest.run("bench", "--model", CliTest.model("stories260K.gguf").toString(), "--gen-tokens", "0");
        assertThat(r.exit()).isEqualTo(1);
        assertThat(r.err()).contains("--gen-tokens must be at least 1");
        Run missing = CliTest.run("bench", "--model", "no-such.gguf");
        assertThat(missing.exit()).isEqualTo(1);
        assertThat(missing.err()).contains("no such file");
    }
}
