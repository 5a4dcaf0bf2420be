package io.jcascade.cli;

import io.jcascade.engine.TinyGguf;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.PrintWriter;
import java.io.StringReader;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code tokenize}, {@code generate --chat} and {@code chat} on a tiny random model with the Llama 3 vocab. */
class CliChatTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path dir;
    static Path llama3;

    @BeforeAll
    static void tinyModel() throws Exception {
        String shared = System.getProperty("jcascade.shared");
        assumeTrue(shared != null, "jcascade.shared not set");
        Path vocab = Path.of(shared, "tokenizer-vectors", "ggml-vocab-llama-bpe.gguf");
        assumeTrue(Files.isRegularFile(vocab), "missing " + vocab);
        llama3 = TinyGguf.withVocabOf(vocab, dir.resolve("tiny-llama3.gguf"));
    }

    static CliTest.Run run(String input, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = JCascade.run(args, new BufferedReader(new StringReader(input)), new PrintWriter(out), new PrintWriter(err));
        return new CliTest.Run(code, out.toString(), err.toString());
    }

    @Test
    void tokenizePrintsIdsAsJson() {
        CliTest.Run r = CliTest.run("tokenize", "--model", llama3.toString(), "--text", "Hello world<|eot_id|>");
        assertThat(r.exit()).as(r.err()).isZero();
        // BOS because the vocab asks for it; <|eot_id|> stays text unless --parse-special.
        assertThat(r.out().strip()).isEqualTo("[128000,9906,1917,27,91,68,354,851,91,29]");

        CliTest.Run special = CliTest.run("tokenize", "--model", llama3.toString(), "--text", "Hello world<|eot_id|>",
                "--parse-special", "--no-bos");
        assertThat(special.out().strip()).isEqualTo("[9906,1917,128009]");
    }

    @Test
    void tokenizeJsonlOneArrayPerLine() throws Exception {
        Path in = dir.resolve("texts.jsonl");
        Files.writeString(in, "{\"text\": \"Hello world\"}\n\n{\"text\": \"\", \"id\": 2}\n{\"text\": \"日本\"}\n");
        CliTest.Run r = CliTest.run("tokenize", "--model", llama3.toString(), "--input", in.toString(), "--no-bos");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.out().lines().toList()).containsExactly("[9906,1917]", "[]", "[102433]");

        Path out = dir.resolve("ids.jsonl");
        CliTest.Run toFile = CliTest.run("tokenize", "--model", llama3.toString(), "--input", in.toString(),
                "--output", out.toString());
        assertThat(toFile.exit()).as(toFile.err()).isZero();
        assertThat(toFile.out()).isEmpty();
        assertThat(Files.readAllLines(out, StandardCharsets.UTF_8)).containsExactly("[128000,9906,1917]", "[128000]",
                "[128000,102433]");

        Path bad = dir.resolve("bad.jsonl");
        Files.writeString(bad, "{\"prompt\": \"x\"}\n");
        CliTest.Run failed = CliTest.run("tokenize", "--model", llama3.toString(), "--input", bad.toString());
        assertThat(failed.exit()).isEqualTo(1);
        assertThat(failed.err()).contains(bad + ":1: no \"text\" string");
    }

    @Test
    void generateChatWrapsThePromptInTheTemplateWithOneBos() throws Exception {
        CliTest.Run plain = CliTest.run("generate", "--model", llama3.toString(), "--prompt", "Hi", "--max-tokens", "2",
                "--temperature", "0", "--stats");
        assertThat(plain.exit()).as(plain.err()).isZero();
        assertThat(stats(plain).get("prompt_tokens").asInt()).isEqualTo(2); // <|begin_of_text|> Hi

        CliTest.Run chat = CliTest.run("generate", "--model", llama3.toString(), "--prompt", "Hi", "--max-tokens", "2",
                "--temperature", "0", "--stats", "--chat");
        assertThat(chat.exit()).as(chat.err()).isZero();
        // <|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>
        // <|start_header_id|>assistant<|end_header_id|>\n\n: 11 tokens, BOS once although the template writes it.
        assertThat(stats(chat).get("prompt_tokens").asInt()).isEqualTo(11);
        assertThat(chat.err()).doesNotContain("no chat template");
    }

    @Test
    void generateChatWithoutTemplateSaysSoAndUsesPlainFormat() {
        String root = System.getProperty("jcascade.root");
        Path stories = (root != null ? Path.of(root) : Path.of("..")).resolve("models").resolve("stories260K.gguf");
        assumeTrue(Files.exists(stories));
        CliTest.Run r = CliTest.run("generate", "--model", stories.toString(), "--prompt", "Hi", "--max-tokens", "3",
                "--temperature", "0", "--chat");
        assertThat(r.exit()).as(r.err()).isZero();
        assertThat(r.err()).contains("has no chat template").contains("User:");
    }

    @Test
    void chatKeepsHistoryAndEndsOnExit() {
        CliTest.Run r = run("Hi\n\nHow are you?\n/exit\nnot read\n", "chat", "--model", llama3.toString(),
                "--system", "Be brief.", "--max-tokens", "3", "--temperature", "0");
        assertThat(r.exit()).as(r.err()).isZero();
        // Three prompts: before "Hi", before "How are you?" (the blank line is skipped), before /exit.
        assertThat(r.out().split("> ", -1)).hasSize(5);
        assertThat(r.out()).doesNotContain("not read");

        CliTest.Run eof = run("Hi\n", "chat", "--model", llama3.toString(), "--max-tokens", "2", "--temperature", "0");
        assertThat(eof.exit()).as(eof.err()).isZero();
    }

    private static JsonNode stats(CliTest.Run r) throws Exception {
        List<String> lines = r.err().lines().filter(l -> l.startsWith("{")).toList();
        assertThat(lines).hasSize(1);
        return JSON.readTree(lines.getFirst());
    }
}
