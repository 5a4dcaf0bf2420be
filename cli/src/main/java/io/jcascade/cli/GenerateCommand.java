package io.jcascade.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jcascade.cli.JCascade.CliException;
import io.jcascade.engine.CancelToken;
import io.jcascade.engine.GenerationParams;
import io.jcascade.engine.GenerationResult;
import io.jcascade.engine.Model;
import io.jcascade.engine.ModelOptions;
import io.jcascade.engine.TokenListener;
import io.jcascade.engine.chat.ChatMessage;
import io.jcascade.engine.chat.ChatTemplate;
import io.jcascade.engine.sampling.SamplingParams;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code jcascade generate}: one completion printed as it streams, or a JSONL dataset in batch.
 *
 * <pre>
 * ./jcascade generate --model models/stories260K.gguf --prompt "Once upon a time" --temperature 0 --stats
 * ./jcascade generate --model models/arith-small.gguf --input prompts.jsonl --output answers.jsonl --temperature 0
 * ./jcascade generate --model Meta-Llama-3-8B-Instruct.Q4_0.gguf --chat --prompt "Why is the sky blue?"
 * </pre>
 */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Generate a completion of a prompt, or of every prompt in a JSONL file.")
final class GenerateCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Mixin
    SamplingOptions samplingOptions = new SamplingOptions();

    @Mixin
    ModelLoadOptions loadOptions = new ModelLoadOptions();

    @Option(names = "--model", required = true, paramLabel = "FILE", description = "GGUF model file")
    Path model;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static final class Source {
        @Option(names = "--prompt", required = true, paramLabel = "TEXT", description = "the prompt")
        String prompt;

        @ArgGroup(exclusive = false)
        Batch batch;
    }

    static final class Batch {
        @Option(names = "--input", required = true, paramLabel = "IN.jsonl",
                description = "one JSON object with a \"prompt\" string per line")
        Path input;

        @Option(names = "--output", required = true, paramLabel = "OUT.jsonl",
                description = "each input object plus completion, completion_tokens, mean_entropy, max_entropy")
        Path output;
    }

    @Option(names = "--max-tokens", defaultValue = "256", paramLabel = "N",
            description = "most tokens to generate (default: ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--stop", paramLabel = "TEXT", description = "stop before this text (repeatable)")
    List<String> stop = new ArrayList<>();

    @Option(names = "--sequences", defaultValue = "1", paramLabel = "N",
            description = "with --input: decode N prompts together (each step reads the weights once for all; "
                    + "the same answers for quantized models) (default: ${DEFAULT-VALUE})")
    int sequences;

    @Option(names = "--stats", description = "print timing as one JSON line on stderr")
    boolean stats;

    @Option(names = "--chat", description = "wrap each prompt as a user turn in the model's chat template"
            + " (special tokens in the rendered prompt are parsed)")
    boolean chat;

    private final ObjectMapper json = new ObjectMapper();
    private ChatTemplate template;

    /** The model's template, or the plain fallback with a note on stderr saying so. */
    static ChatTemplate chatTemplate(Model m, PrintWriter err) {
        return m.chatTemplate().orElseGet(() -> {
            err.println("jcascade: note: " + m.path().getFileName() + " has no chat template (tokenizer.chat_template);"
                    + " using " + ChatTemplate.PLAIN_DESCRIPTION);
            err.flush();
            return ChatTemplate.plain();
        });
    }

    private GenerationResult generate(Model m, String prompt, GenerationParams params, TokenListener listener) {
        return m.generate(ids(m, prompt, params), params, listener, new CancelToken());
    }

    /** The prompt's token ids: through the chat template with --chat, else as the model encodes text. */
    private int[] ids(Model m, String prompt, GenerationParams params) {
        if (template == null) {
            return m.tokenizer().encode(prompt, params.addSpecial());
        }
        return ChatTemplate.encode(m.tokenizer(), template.render(List.of(ChatMessage.user(prompt)), true));
    }

    @Override
    public Integer call() throws Exception {
        if (maxTokens < 0) {
            throw new CliException("--max-tokens must be >= 0");
        }
        if (sequences < 1) {
            throw new CliException("--sequences must be at least 1");
        }
        SamplingParams sampling = samplingOptions.toParams();
        GenerationParams params = GenerationParams.defaults().withMaxTokens(maxTokens).withSampling(sampling)
                .withStop(stop);
        ModelOptions options = loadOptions.toModelOptions();
        try (Model m = Model.load(model, options)) {
            template = chat ? chatTemplate(m, spec.commandLine().getErr()) : null;
            if (source.prompt != null) {
                return single(m, params);
            }
            return batch(m, params);
        }
    }

    private int single(Model m, GenerationParams params) throws JsonProcessingException {
        PrintWriter out = spec.commandLine().getOut();
        GenerationResult r = generate(m, source.prompt, params, token -> {
            out.print(token.text());
            out.flush();
        });
        out.println();
        out.flush();
        if (stats) {
            ObjectNode s = json.createObjectNode();
            s.put("prompt_tokens", r.promptTokens());
            s.put("prompt_ms", round(r.promptMillis()));
            s.put("generated_tokens", r.tokens().size());
            s.put("generate_ms", round(r.generateMillis()));
            PrintWriter err = spec.commandLine().getErr();
            err.println(json.writeValueAsString(s));
            err.flush();
        }
        return 0;
    }

    private int batch(Model m, GenerationParams params) throws IOException {
        Path in = source.batch.input;
        Path outPath = source.batch.output;
        if (!Files.isRegularFile(in)) {
            throw new CliException("no such input file: " + in);
        }
        List<String> lines = Files.readAllLines(in, StandardCharsets.UTF_8);
        PrintWriter err = spec.commandLine().getErr();
        ProgressBar bar = new ProgressBar(err, "generate", lines.size(), System.console() != null && System.console().isTerminal());
        int written = 0;
        int skipped = 0;
        try (BufferedWriter w = Files.newBufferedWriter(outPath, StandardCharsets.UTF_8)) {
            for (int from = 0; from < lines.size(); from += sequences) {
                int to = Math.min(lines.size(), from + sequences);
                // Parse the chunk's lines; a bad one is skipped and named, the others go on.
                List<Integer> at = new ArrayList<>();
                List<ObjectNode> objs = new ArrayList<>();
                List<int[]> prompts = new ArrayList<>();
                for (int i = from; i < to; i++) {
                    if (lines.get(i).isBlank()) {
                        continue;
                    }
                    try {
                        ObjectNode obj = JsonlPrompts.parse(json, lines.get(i));
                        int[] ids = ids(m, obj.get("prompt").asText(), params);
                        m.checkPrompt(ids);
                        at.add(i);
                        objs.add(obj);
                        prompts.add(ids);
                    } catch (CliException | IllegalArgumentException e) {
                        skipped++;
                        err.println("\n" + in + ":" + (i + 1) + ": skipped: " + e.getMessage());
                    }
                }
                List<GenerationResult> results = m.generateAllTokens(prompts, params, sequences);
                for (int j = 0; j < results.size(); j++) {
                    GenerationResult r = results.get(j);
                    ObjectNode obj = objs.get(j);
                    obj.put("completion", r.text());
                    obj.put("completion_tokens", r.tokens().size());
                    obj.put("mean_entropy", r.meanEntropy());
                    obj.put("max_entropy", r.maxEntropy());
                    w.write(json.writeValueAsString(obj));
                    w.newLine();
                    // Flushed per line so an interrupted run keeps every finished answer.
                    w.flush();
                    written++;
                    bar.update(at.get(j) + 1);
                }
                bar.update(to);
            }
        }
        err.println("generate: wrote " + written + " lines to " + outPath
                + (skipped > 0 ? ", skipped " + skipped + " bad lines (see above)" : ""));
        err.flush();
        return skipped > 0 && written == 0 ? 1 : 0;
    }

    private static double round(double ms) {
        return Math.round(ms * 1000) / 1000.0;
    }
}
