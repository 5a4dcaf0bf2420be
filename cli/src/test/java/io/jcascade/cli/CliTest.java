package io.jcascade.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The command line end to end, in process, on the embedded models. */
class CliTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    record Run(int exit, String out, String err) {}

    static Run run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = JCascade.run(args, new PrintWriter(out), new PrintWriter(err));
        return new Run(code, out.toString(), err.toString());
    }

    static Path model(String name) {
        String root = System.getProperty("jcascade.root");
        Path p = (root != null ? Path.of(root) : Path.of("..")).resolve("models").resolve(name);
        assumeTrue(Files.exists(p), "embedded model missing: " + p);
        return p;
    }

    @Test
    void generatePrintsTheCompletionAndStatsAsJson() throws Exception {
        Run r = run("generate", "--model", model("stories260K.gguf").toString(), "--prompt", "Once upon a time",
                "--max-tokens", "16", "--temperature", "0", "--stats", "--threads", "2");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).isNotBlank().doesNotStartWith("Once upon a time");
        String statsLine = r.err().lines().filter(l -> l.startsWith("{")).reduce((a, b) -> b).orElseThrow();
        JsonNode stats = JSON.readTree(statsLine);
        assertThat(stats.get("prompt_tokens").asInt()).isEqualTo(5); // BOS + "▁Once ▁upon ▁a ▁time"
        assertThat(stats.get("generated_tokens").asInt()).isBetween(1, 16);
        assertThat(stats.get("prompt_ms").isNumber()).isTrue();
        assertThat(stats.get("generate_ms").isNumber()).isTrue();
    }

    @Test
    void batchModeAnswersEachLineInOrderAndSkipsBadLines(@TempDir Path dir) throws Exception {
        Path in = dir.resolve("in.jsonl");
        Path out = dir.resolve("out.jsonl");
        Files.write(in, List.of("{\"prompt\": \"3+2=\", \"id\": 1}", "not json", "{\"text\": \"no prompt\"}",
                "{\"prompt\": \"37+485=\", \"id\": 2}", "[1,2]", "{\"prompt\": \"9*9=\", \"id\": 3}"));
        Run r = run("generate", "--model", model("arith-small.gguf").toString(), "--input", in.toString(),
                "--output", out.toString(), "--temperature", "0", "--max-tokens", "8", "--threads", "1");
        assertThat(r.exit()).as(r.err()).isZero();
        List<String> lines = Files.readAllLines(out);
        assertThat(lines).hasSize(3);
        List<JsonNode> rows = lines.stream().map(l -> {
            try {
                return JSON.readTree(l);
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }).toList();
        assertThat(rows).extracting(n -> n.get("id").asInt()).containsExactly(1, 2, 3);
        assertThat(rows.get(0).get("completion").asText()).isEqualTo("5");
        assertThat(rows.get(2).get("completion").asText()).isEqualTo("81");
        for (JsonNode row : rows) {
            assertThat(row.get("completion_tokens").asInt()).isPositive();
            assertThat(row.get("mean_entropy").asDouble()).isNotNegative()
                    .isLessThanOrEqualTo(row.get("max_entropy").asDouble());
        }
        assertThat(r.err()).contains(in + ":2: skipped: not valid JSON")
                .contains(in + ":3: skipped: no \"prompt\" string")
                .contains(in + ":5: skipped: expected a JSON object");
    }

    @Test
    void batchModeDecodingPromptsTogetherGivesTheSameAnswers(@TempDir Path dir) throws Exception {
        Path in = dir.resolve("in.jsonl");
        List<String> input = new java.util.ArrayList<>();
        for (int i = 0; i < 11; i++) {
            input.add("{\"prompt\": \"" + (17 * i + 3) + "+" + (29 * i % 100) + "=\", \"id\": " + i + "}");
        }
        input.add(4, "not json"); // a bad line inside a chunk: skipped, the chunk goes on
        input.add(7, "{\"prompt\": \"\", \"id\": 99}"); // the BOS token alone
        Files.write(in, input);
        List<List<String>> outputs = new java.util.ArrayList<>();
        for (String sequences : List.of("1", "4")) {
            Path out = dir.resolve("out-" + sequences + ".jsonl");
            Run r = run("generate", "--model", model("arith-small.gguf").toString(), "--input", in.toString(),
                    "--output", out.toString(), "--temperature", "0", "--max-tokens", "8", "--threads", "1",
                    "--sequences", sequences);
            assertThat(r.exit()).as(r.err()).isZero();
            assertThat(r.err()).contains(in + ":5: skipped: not valid JSON");
            outputs.add(Files.readAllLines(out));
        }
        assertThat(outputs.get(1)).hasSameSizeAs(outputs.get(0));
        for (int i = 0; i < outputs.get(0).size(); i++) {
            JsonNode a = JSON.readTree(outputs.get(0).get(i));
            JsonNode b = JSON.readTree(outputs.get(1).get(i));
            assertThat(b.get("id").asInt()).isEqualTo(a.get("id").asInt());
            assertThat(b.get("completion").asText()).isEqualTo(a.get("completion").asText());
            assertThat(b.get("completion_tokens").asInt()).isEqualTo(a.get("completion_tokens").asInt());
            assertThat(b.get("mean_entropy").asDouble()).isCloseTo(a.get("mean_entropy").asDouble(),
                    org.assertj.core.data.Offset.offset(1e-3));
        }
    }

    @Test
    void badInputGetsOneLineErrors(@TempDir Path dir) throws Exception {
        Run missing = run("generate", "--model", dir.resolve("nope.gguf").toString(), "--prompt", "x");
        assertThat(missing.exit()).isEqualTo(1);
        assertThat(missing.err().strip()).startsWith("jcascade: error: no such file").doesNotContain("\n\tat ");

        Path bad = dir.resolve("bad.gguf");
        Files.write(bad, new byte[] {'G', 'G', 'U', 'F', 3, 0, 0, 0, 1});
        Run malformed = run("inspect", bad.toString());
        assertThat(malformed.exit()).isEqualTo(1);
        assertThat(malformed.err()).startsWith("jcascade: error: not a valid GGUF file").contains("truncated");

        Run tooLong = run("generate", "--model", model("arith-small.gguf").toString(), "--prompt",
                "1+1=".repeat(20), "--temperature", "0");
        assertThat(tooLong.exit()).isEqualTo(1);
        assertThat(tooLong.err()).contains("the prompt is 81 tokens but the context holds 64");
    }

    @Test
    void inspectShowsMetadataAndTensors() {
        Run r = run("inspect", model("stories260K.gguf").toString());
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out()).contains("general.architecture").contains("llama").contains("token_embd.weight")
                .contains("blk.4.ffn_down.weight");
    }

    @Test
    void synthWritesAQuantizedModelThatGenerates(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("tiny-q8.gguf");
        Run synth = run("synth", "--shape", "mistral-tiny", "--type", "Q8_0", out.toString());
        assertThat(synth.exit()).as(synth.err()).isZero();
        assertThat(synth.out()).contains("mistral-tiny Q8_0");
        try (var files = Files.list(dir)) {
            assertThat(files.map(p -> p.getFileName().toString())).containsExactly("tiny-q8.gguf");
        }
        Run inspect = run("inspect", out.toString());
        assertThat(inspect.out()).contains("general.file_type").contains("Q8_0");
        Run gen = run("generate", "--model", out.toString(), "--prompt", "hello", "--max-tokens", "4",
                "--temperature", "0", "--threads", "1", "--stats");
        assertThat(gen.exit()).as(gen.err()).isZero();
        assertThat(gen.err()).contains("\"generated_tokens\":4");

        Run badShape = run("synth", "--shape", "llama9", out.toString());
        assertThat(badShape.exit()).isEqualTo(1);
        assertThat(badShape.err()).startsWith("jcascade: error: unknown shape \"llama9\"").contains("llama3-1b");
    }

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({
        // SHA-256 of the files the row-at-a-time writer and quantizer made (before rows were made
        // and quantized on all cores): a synthetic model is the same bytes on any machine, so a
        // benchmark of "synthetic llama3-8b Q4_0" means one file
        "phi3-tiny, F16, f92666f02debe48efdc41797d20fb1729341ba5981d9d3d3efce5c20347b9292",
        "llama3-tiny, Q4_K_M, 75660c6781cf08ac748ddd6d3b7023040d0bb022980007f920e17c80c8823405",
    })
    void synthIsTheSameBytesEverywhere(String shape, String type, String sha256, @TempDir Path dir) throws Exception {
        Path out = dir.resolve("m.gguf");
        Run synth = run("synth", "--shape", shape, "--type", type, out.toString());
        assertThat(synth.exit()).as(synth.err()).isZero();
        byte[] digest = java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(out));
        assertThat(java.util.HexFormat.of().formatHex(digest)).isEqualTo(sha256);
    }
}
