package io.jcascade.engine;

import io.jcascade.engine.chat.ChatTemplate;
import io.jcascade.engine.model.Llama;
import io.jcascade.engine.model.ModelConfig;
import io.jcascade.engine.tokenizer.Tokenizer;
import io.jcascade.engine.tokenizer.Tokenizers;
import io.jcascade.gguf.GgufFile;
import io.jcascade.kernels.Backend;
import io.jcascade.kernels.Backends;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * A loaded language model: the entry point for services that embed jcascade.
 *
 * <p>The weights stay memory-mapped from the GGUF file and are shared, read-only, by every
 * generation; each call to {@code generate} has its own KV cache, so one {@code Model} can serve
 * several threads at once. Close it to unmap the file and stop the kernel threads.
 *
 * <pre>{@code
 * try (Model model = Model.load(Path.of("models/stories260K.gguf"))) {
 *     GenerationParams params = GenerationParams.defaults()
 *             .withMaxTokens(64)
 *             .withSampling(SamplingParams.greedy());
 *     GenerationResult r = model.generate("Once upon a time", params,
 *             token -> System.out.print(token.text()));
 *     System.out.println("\nmean entropy " + r.meanEntropy());
 * }
 * }</pre>
 */
public final class Model implements AutoCloseable {

    private final Path path;
    private final GgufFile gguf;
    private final ModelConfig config;
    private final Tokenizer tokenizer;
    private final Backend backend;
    private final Llama llama;
    private final ModelOptions options;
    private final int contextLength;
    /** Batchers open on this model: closed with it, before the backend they use. */
    private final List<Batcher> batchers = new ArrayList<>();

    private Model(Path path, GgufFile gguf, ModelConfig config, Tokenizer tokenizer, Backend backend, Llama llama,
            ModelOptions options) {
        this.path = path;
        this.gguf = gguf;
        this.config = config;
        this.tokenizer = tokenizer;
        this.backend = backend;
        this.llama = llama;
        this.options = options;
        this.contextLength = options.contextLength() > 0 ? options.contextLength() : llama.defaultContextLength();
    }

    /** Loads a GGUF model with {@link ModelOptions#defaults()}. */
    public static Model load(Path path) throws IOException {
        return load(path, ModelOptions.defaults());
    }

    /**
     * Loads a GGUF model.
     *
     * @throws java.nio.file.NoSuchFileException if there is no such file
     * @throws io.jcascade.gguf.GgufFormatException if the file is not valid GGUF
     * @throws UnsupportedModelException if the architecture, a tensor type or a tensor shape is not supported
     */
    public static Model load(Path path, ModelOptions options) throws IOException {
        GgufFile gguf = GgufFile.open(path);
        Backend backend = null;
        try {
            ModelConfig config = ModelConfig.from(gguf);
            Tokenizer tokenizer;
            try {
                tokenizer = Tokenizers.fromGguf(gguf);
            } catch (IllegalArgumentException | UnsupportedOperationException e) {
                throw new UnsupportedModelException(path + ": " + e.getMessage());
            }
            backend = Backends.create(options.backend(), options.resolvedThreads());
            Llama llama = Llama.load(gguf, config, backend, options.contextLength());
            return new Model(path, gguf, config, tokenizer, backend, llama, options);
        } catch (IOException | RuntimeException e) {
            if (backend != null) {
                backend.close();
            }
            gguf.close();
            throw e;
        }
    }

    public Path path() {
        return path;
    }

    public ModelConfig config() {
        return config;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /**
     * The model's chat template ({@code tokenizer.chat_template}), or empty when the file has none;
     * callers then usually fall back to {@link ChatTemplate#plain()}.
     *
     * <pre>{@code
     * ChatTemplate t = model.chatTemplate().orElseGet(ChatTemplate::plain);
     * int[] prompt = ChatTemplate.encode(model.tokenizer(), t.render(List.of(ChatMessage.user("Hi")), true));
     * model.generate(prompt, params, listener, new CancelToken());
     * }</pre>
     */
    public Optional<ChatTemplate> chatTemplate() {
        return ChatTemplate.fromGguf(gguf, tokenizer);
    }

    /** The GGUF file the weights are mapped from. */
    public GgufFile gguf() {
        return gguf;
    }

    /** Name of the backend that runs the model, e.g. {@code cpu}. */
    public String backendName() {
        return backend.name();
    }

    public ModelOptions options() {
        return options;
    }

    /** The largest sequence, prompt and completion together, that a generation may reach. */
    public int contextLength() {
        return contextLength;
    }

    /** Generates a completion of {@code prompt}. */
    public GenerationResult generate(String prompt, GenerationParams params) {
        return generate(prompt, params, TokenListener.NONE, new CancelToken());
    }

    /** Generates a completion of {@code prompt}, streaming each token to {@code listener}. */
    public GenerationResult generate(String prompt, GenerationParams params, TokenListener listener) {
        return generate(prompt, params, listener, new CancelToken());
    }

    /**
     * Generates a completion of {@code prompt}, streaming each token to {@code listener}, until
     * an end-of-sequence token, a stop string, {@code maxTokens}, the end of the context, or
     * {@code cancel}.
     *
     * @throws ContextOverflowException if the prompt leaves no room in the context for a token
     */
    public GenerationResult generate(String prompt, GenerationParams params, TokenListener listener,
            CancelToken cancel) {
        int[] ids = tokenizer.encode(prompt, params.addSpecial());
        return generate(ids, params, listener, cancel);
    }

    /** Like {@link #generate(String, GenerationParams, TokenListener, CancelToken)} from token ids. */
    public GenerationResult generate(int[] prompt, GenerationParams params, TokenListener listener,
            CancelToken cancel) {
        Generation g = new Generation(backend, llama, tokenizer, contextLength, options.batchSize(), prompt, params,
                listener, cancel);
        if (g.empty()) {
            return g.result();
        }
        llama.forwardOnBackend(g.state, prompt, prompt.length, 0);
        g.logitsReady();
        int[] next = new int[1];
        while (g.step()) {
            next[0] = g.token();
            llama.forwardOnBackend(g.state, next, 1, g.position());
            g.logitsReady();
            g.advance();
        }
        return g.result();
    }

    /**
     * Generates a completion of each prompt, the sequences decoding together: each step runs one
     * token of every unfinished sequence through the model at once ({@link Llama#decode}), so the
     * weights are read once a step for all of them, not once per sequence. For batch work (an
     * evaluation set, a threshold sweep): on a backend bound by memory bandwidth, several
     * sequences cost little more a step than one. Each result is what {@link #generate} gives
     * that prompt alone (the same tokens for quantized weights; float weights sum in another
     * order over several tokens), sampling included: each sequence has its own sampler, seeded
     * from {@code params}. It runs on a {@link Batcher}: a prompt is processed when a place is
     * free, and its sequence joins the next step.
     *
     * <pre>{@code
     * List<GenerationResult> results = model.generateAll(List.of("2+2=", "3+5="),
     *         GenerationParams.defaults().withMaxTokens(8).withSampling(SamplingParams.greedy()), 8);
     * }</pre>
     *
     * @param maxSequences how many sequences decode together at most (the others wait for a
     *        place); 1 is sequential generation
     * @throws ContextOverflowException if a prompt leaves no room in the context for a token
     */
    public List<GenerationResult> generateAll(List<String> prompts, GenerationParams params, int maxSequences) {
        List<int[]> ids = new ArrayList<>();
        for (String prompt : prompts) {
            ids.add(tokenizer.encode(prompt, params.addSpecial()));
        }
        return generateAllTokens(ids, params, maxSequences);
    }

    /**
     * A {@link Batcher} on this model: generations submitted from any thread decode together,
     * up to {@code maxSequences} at a time (for a server). Closing the model closes it too.
     *
     * <pre>{@code
     * try (Batcher batcher = model.batcher(8)) {
     *     GenerationResult r = batcher.submit(ids, params, TokenListener.NONE, new CancelToken()).join();
     * }
     * }</pre>
     */
    public Batcher batcher(int maxSequences) {
        Batcher b = new Batcher(backend, llama, tokenizer, contextLength, options.batchSize(), maxSequences);
        synchronized (batchers) {
            batchers.add(b);
        }
        b.onClose(() -> {
            synchronized (batchers) {
                batchers.remove(b);
            }
        });
        return b;
    }

    /**
     * Throws the exception {@link #generate} would throw for {@code prompt} before any work: for
     * a batch that skips bad prompts rather than stopping at one.
     *
     * <pre>{@code
     * try {
     *     model.checkPrompt(ids);
     * } catch (IllegalArgumentException e) {   // ContextOverflowException included
     *     log.warn("skipped: " + e.getMessage());
     * }
     * }</pre>
     *
     * @throws IllegalArgumentException if the prompt is empty
     * @throws ContextOverflowException if it leaves no room in the context for a token
     */
    public void checkPrompt(int[] prompt) {
        Generation.check(prompt, contextLength);
    }

    /**
     * Like {@link #generateAll} from token ids (a chat template's rendering, say).
     *
     * <pre>{@code
     * int[] ids = ChatTemplate.encode(model.tokenizer(), template.render(messages, true));
     * List<GenerationResult> r = model.generateAllTokens(List.of(ids, otherIds), params, 8);
     * }</pre>
     */
    public List<GenerationResult> generateAllTokens(List<int[]> prompts, GenerationParams params, int maxSequences) {
        if (maxSequences < 1) {
            throw new IllegalArgumentException("maxSequences must be at least 1: " + maxSequences);
        }
        for (int[] prompt : prompts) {
            checkPrompt(prompt); // every prompt before any work
        }
        if (maxSequences == 1 || prompts.size() <= 1) { // one at a time: no worker thread needed
            List<GenerationResult> results = new ArrayList<>();
            for (int[] prompt : prompts) {
                results.add(generate(prompt, params, TokenListener.NONE, new CancelToken()));
            }
            return results;
        }
        try (Batcher b = new Batcher(backend, llama, tokenizer, contextLength, options.batchSize(),
                Math.min(maxSequences, prompts.size()))) {
            List<CompletableFuture<GenerationResult>> pending = new ArrayList<>();
            for (int[] prompt : prompts) {
                pending.add(b.submit(prompt, params, TokenListener.NONE, new CancelToken()));
            }
            List<GenerationResult> results = new ArrayList<>();
            for (CompletableFuture<GenerationResult> f : pending) {
                results.add(Batcher.join(f));
            }
            return results;
        }
    }

    /** Unmaps the model file and stops the kernel threads. Generations must have finished. */
    @Override
    public void close() {
        List<Batcher> open;
        synchronized (batchers) {
            open = new ArrayList<>(batchers);
            batchers.clear();
        }
        for (Batcher b : open) {
            b.close(); // their worker threads use the backend
        }
        backend.close();
        gguf.close();
    }
}
