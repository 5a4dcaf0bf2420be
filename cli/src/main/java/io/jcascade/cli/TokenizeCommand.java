package io.jcascade.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jcascade.cli.JCascade.CliException;
import io.jcascade.engine.UnsupportedModelException;
import io.jcascade.engine.tokenizer.Tokenizer;
import io.jcascade.engine.tokenizer.Tokenizers;
import io.jcascade.gguf.GgufFile;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code jcascade tokenize}: the token ids of a text as one JSON array, or of every line of a
 * JSONL file. Only the tokenizer is read from the model file, not the weights.
 *
 * <pre>
 * ./jcascade tokenize --model Meta-Llama-3-8B-Instruct.Q4_0.gguf --text "Hello world"
 * [128000,9906,1917]
 * ./jcascade tokenize --model model.gguf --input texts.jsonl --output ids.jsonl --no-bos
 * </pre>
 */
@Command(name = "tokenize", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Print the token ids of a text as a JSON array (one array per line for a JSONL input).")
final class TokenizeCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "FILE", description = "GGUF model (or vocab-only) file")
    Path model;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static final class Source {
        @Option(names = "--text", required = true, paramLabel = "TEXT", description = "the text to tokenize")
        String text;

        @Option(names = "--input", required = true, paramLabel = "IN.jsonl",
                description = "one JSON object with a \"text\" string per line")
        Path input;
    }

    @Option(names = "--output", paramLabel = "OUT.jsonl", description = "write the arrays here instead of stdout")
    Path output;

    @Option(names = "--no-bos", description = "do not add BOS even when the model asks for it")
    boolean noBos;

    @Option(names = "--parse-special",
            description = "turn the text of special tokens (e.g. <|eot_id|>) into those tokens; off: they stay text")
    boolean parseSpecial;

    private final ObjectMapper json = new ObjectMapper();

    @Override
    public Integer call() throws IOException {
        Tokenizer tokenizer;
        try (GgufFile gguf = GgufFile.open(model)) {
            tokenizer = Tokenizers.fromGguf(gguf);
        } catch (IllegalArgumentException e) {
            throw new UnsupportedModelException(model + ": " + e.getMessage());
        }
        if (source.text != null) {
            try (Writer w = writer()) {
                w.write(json.writeValueAsString(encode(tokenizer, source.text)));
                w.write('\n');
            }
            return 0;
        }
        if (!Files.isRegularFile(source.input)) {
            throw new CliException("no such input file: " + source.input);
        }
        List<String> lines = Files.readAllLines(source.input, StandardCharsets.UTF_8);
        try (Writer w = writer()) {
            for (int i = 0; i < lines.size(); i++) {
                if (lines.get(i).isBlank()) {
                    continue;
                }
                w.write(json.writeValueAsString(encode(tokenizer, text(lines.get(i), i + 1))));
                w.write('\n');
            }
        }
        return 0;
    }

    private int[] encode(Tokenizer tokenizer, String text) {
        return tokenizer.encode(text, !noBos, parseSpecial);
    }

    /** A bad line stops the run: a skipped line would shift every later array against its input. */
    private String text(String line, int number) {
        JsonNode node;
        try {
            node = json.readTree(line);
        } catch (JsonProcessingException e) {
            throw new CliException(source.input + ":" + number + ": not valid JSON: " + e.getOriginalMessage());
        }
        JsonNode text = node.get("text");
        if (text == null || !text.isTextual()) {
            throw new CliException(source.input + ":" + number + ": no \"text\" string");
        }
        return text.asText();
    }

    private Writer writer() throws IOException {
        if (output != null) {
            return new BufferedWriter(new OutputStreamWriter(Files.newOutputStream(output), StandardCharsets.UTF_8));
        }
        PrintWriter out = spec.commandLine().getOut();
        return new Writer() {
            @Override
            public void write(char[] cbuf, int off, int len) {
                out.write(cbuf, off, len);
            }

            @Override
            public void flush() {
                out.flush();
            }

            @Override
            public void close() {
                out.flush(); // stdout stays open
            }
        };
    }
}
