package io.jcascade.cli.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jcascade.engine.Batcher;
import io.jcascade.engine.CancelToken;
import io.jcascade.engine.ContextOverflowException;
import io.jcascade.engine.FinishReason;
import io.jcascade.engine.GeneratedToken;
import io.jcascade.engine.GenerationParams;
import io.jcascade.engine.GenerationResult;
import io.jcascade.engine.Model;
import io.jcascade.engine.ModelOptions;
import io.jcascade.engine.TokenListener;
import io.jcascade.engine.chat.ChatMessage;
import io.jcascade.engine.chat.ChatTemplate;
import io.jcascade.engine.chat.ChatTemplateException;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Collectors;

/**
 * Serves one GGUF model: completions tokenize the prompt as {@code jcascade generate} does (BOS
 * added), chat requests are rendered with the model's chat template (special tokens parsed), or
 * with another {@link ChatFormat}.
 *
 * <p>Each response carries {@code "jcascade": {"mean_entropy", "max_entropy", "tokens": [{"id",
 * "text", "entropy", "logprob"}]}}: per generated token, the entropy of the model's next-token
 * distribution (nats) and the log-probability of the chosen token.
 *
 * <pre>{@code
 * ServerBackend b = ModelBackend.load(Path.of("models/arith-large.gguf"), ModelOptions.defaults().withThreads(2),
 *         null, ModelBackend.ChatFormat.RAW);
 * }</pre>
 */
public final class ModelBackend implements ServerBackend {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** How chat messages become a prompt. */
    public enum ChatFormat {
        /** The model's {@code tokenizer.chat_template}, or the plain format when it has none. */
        TEMPLATE,
        /** {@link ChatTemplate#plain()}: "User: ..." lines and "Assistant:". */
        PLAIN,
        /** The message contents joined by newlines, no role markers: for base models (e.g. the arith models). */
        RAW
    }

    private final Model model;
    private final String name;
    private final ChatTemplate template;
    private final ChatFormat format;
    /** Decodes concurrent requests together; null: each request generates on its own thread. */
    private final Batcher batcher;

    /** Serves an already loaded model; it is closed with this backend. */
    public ModelBackend(Model model, String name, ChatFormat format) {
        this(model, name, format, 1);
    }

    /**
     * Serves an already loaded model, decoding up to {@code sequences} concurrent requests
     * together ({@link Batcher}; 1: each on its own thread, one step at a time). The model is
     * closed with this backend.
     */
    public ModelBackend(Model model, String name, ChatFormat format, int sequences) {
        if (sequences < 1) {
            throw new IllegalArgumentException("sequences must be at least 1: " + sequences);
        }
        this.batcher = sequences > 1 ? model.batcher(sequences) : null;
        this.model = model;
        this.name = name != null ? name : model.path().getFileName().toString();
        this.format = format;
        this.template = switch (format) {
            case TEMPLATE -> model.chatTemplate().orElseGet(ChatTemplate::plain);
            case PLAIN -> ChatTemplate.plain();
            case RAW -> null;
        };
    }

    /**
     * Loads a model to serve.
     *
     * @param name the model id in responses; null for the file name
     */
    public static ModelBackend load(Path path, ModelOptions options, String name, ChatFormat format)
            throws IOException {
        return load(path, options, name, format, 1);
    }

    /** Loads a model to serve, decoding up to {@code sequences} concurrent requests together. */
    public static ModelBackend load(Path path, ModelOptions options, String name, ChatFormat format, int sequences)
            throws IOException {
        Model m = Model.load(path, options);
        try {
            return new ModelBackend(m, name, format, sequences);
        } catch (RuntimeException e) {
            m.close();
            throw e;
        }
    }

    /** The model served. */
    public Model model() {
        return model;
    }

    /** What chat requests are rendered with, for the startup line. */
    public String chatDescription() {
        return switch (format) {
            case RAW -> "raw message contents";
            default -> template.isPlain() ? ChatTemplate.PLAIN_DESCRIPTION : "the model's chat template";
        };
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public List<String> modelIds() {
        return List.of(name);
    }

    @Override
    public int contextLength() {
        return model.contextLength();
    }

    @Override
    public Answer complete(CompletionRequest request, TokenSink sink, CancelToken cancel) {
        int[] ids;
        String param = request.chat() ? "messages" : "prompt";
        if (!request.chat()) {
            ids = model.tokenizer().encode(request.prompt(), true);
        } else if (template == null) {
            String raw = request.messages().stream().map(ChatMessage::content).collect(Collectors.joining("\n"));
            ids = model.tokenizer().encode(raw, true);
        } else {
            String rendered;
            try {
                rendered = template.render(request.messages(), true);
            } catch (ChatTemplateException e) {
                throw ApiException.badRequest(e.getMessage(), "messages");
            }
            ids = ChatTemplate.encode(model.tokenizer(), rendered);
        }
        if (ids.length == 0) {
            throw ApiException.badRequest(param + ": the prompt is empty and the model adds no BOS token", param);
        }
        if (ids.length >= model.contextLength()) {
            throw new ApiException(400, "invalid_request_error",
                    new ContextOverflowException(ids.length, model.contextLength()).getMessage(), param,
                    "context_length_exceeded");
        }
        GenerationResult r = generate(ids, request.params(), tok -> sink.onToken(tok.text()), cancel);
        String finish = r.finishReason() == FinishReason.MAX_TOKENS || r.finishReason() == FinishReason.CONTEXT_FULL
                ? "length" : "stop";
        return new Answer(name, r.text(), r.promptTokens(), r.tokens().size(), finish, extension(r));
    }

    /** With {@code --sequences}: the batcher's steps, the tokens they ran, and the most at once. */
    @Override
    public void bindMetrics(MeterRegistry registry) {
        if (batcher == null) {
            return;
        }
        FunctionCounter.builder("jcascade.batch.steps", batcher, b -> b.stats().steps())
                .description("decoding steps of the generations decoded together").register(registry);
        FunctionCounter.builder("jcascade.batch.tokens", batcher, b -> b.stats().tokens())
                .description("tokens those steps ran (tokens / steps: the mean batch)").register(registry);
        Gauge.builder("jcascade.batch.largest", batcher, b -> b.stats().largestStep())
                .description("the most generations one step ran together").register(registry);
    }

    private GenerationResult generate(int[] ids, GenerationParams params, TokenListener listener, CancelToken cancel) {
        return batcher == null ? model.generate(ids, params, listener, cancel)
                : batcher.generate(ids, params, listener, cancel);
    }

    private static ObjectNode extension(GenerationResult r) {
        ObjectNode ext = JSON.createObjectNode();
        ext.put("mean_entropy", round(r.meanEntropy()));
        ext.put("max_entropy", round(r.maxEntropy()));
        ext.put("finish", r.finishReason().name().toLowerCase(java.util.Locale.ROOT));
        ArrayNode tokens = ext.putArray("tokens");
        for (GeneratedToken t : r.tokens()) {
            tokens.addObject().put("id", t.id()).put("text", t.text()).put("entropy", round(t.entropy()))
                    .put("logprob", round(Math.log(t.probability())));
        }
        return ext;
    }

    static double round(double v) {
        return Double.isFinite(v) ? Math.round(v * 1e6) / 1e6 : v;
    }

    @Override
    public void close() {
        if (batcher != null) {
            batcher.close();
        }
        model.close();
    }
}
