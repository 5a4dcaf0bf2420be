package io.jcascade.engine;

import io.jcascade.engine.chat.ChatTemplate;
import io.jcascade.engine.model.Llama;
import io.jcascade.engine.model.ModelConfig;
import io.jcascade.engine.sampling.Sampler;
import io.jcascade.engine.tokenizer.TokenDecoder;
import io.jcascade.engine.tokenizer.Tokenizer;
import io.jcascade.engine.tokenizer.Tokenizers;
import io.jcascade.gguf.GgufFile;
import io.jcascade.kernels.Backend;
import io.jcascade.kernels.Backends;
import io.jcascade.kernels.LogitStats;
import io.jcascade.kernels.TokenCandidates;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

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
        if (prompt.length == 0) {
            throw new IllegalArgumentException("the prompt is empty: give some text, or let the model add its BOS token");
        }
        if (prompt.length >= contextLength) {
            throw new ContextOverflowException(prompt.length, contextLength);
        }
        long start = System.nanoTime();
        int capacity = (int) Math.min(contextLength, (long) prompt.length + Math.max(1, params.maxTokens()));
        Llama.State state = llama.newState(capacity, options.batchSize());
        if (params.maxTokens() == 0) {
            return new GenerationResult("", List.of(), prompt.length, 0, 0, FinishReason.MAX_TOKENS);
        }
        int vocab = config.vocabSize();
        Sampler sampler = new Sampler(params.sampling(), vocab);
        // With fewer candidates than the vocabulary (greedy, top-k), the backend picks them where
        // the logits are: on a GPU, k candidates and the step's statistics cross the bus, not the logits.
        int needed = sampler.candidatesNeeded(vocab);
        boolean onBackend = needed < vocab;
        TokenCandidates candidates = new TokenCandidates();
        float[] logits = onBackend ? null : new float[vocab];
        Backend.Tensor backendLogits = forward(state, prompt, prompt.length, 0, logits);
        long prefilled = System.nanoTime();

        int[] history = Arrays.copyOf(prompt, capacity + 1);
        int historyLength = prompt.length;
        int[] penalised = new int[history.length];
        TokenDecoder decoder = new TokenDecoder(tokenizer, false); // continuing the prompt: a leading space is real
        StopStrings stops = new StopStrings(params.stop());
        StringBuilder text = new StringBuilder();
        int released = 0;
        List<GeneratedToken> tokens = new ArrayList<>();
        FinishReason reason = FinishReason.MAX_TOKENS;
        int[] next = new int[1];
        int pos = prompt.length;
        for (int i = 0; i < params.maxTokens(); i++) {
            int token;
            double probability;
            LogitStats signals;
            if (onBackend) {
                int count = sampler.penalisedTokens(history, historyLength, penalised);
                backend.selectTokens(backendLogits, vocab, needed, params.sampling().repetitionPenalty(), penalised,
                        count, candidates);
                token = sampler.sample(candidates);
                probability = candidates.probability(candidates.indexOf(token));
                signals = candidates.stats();
            } else {
                signals = candidates.stats().compute(logits, vocab);
                token = sampler.sample(logits, history, historyLength);
                probability = signals.probability(logits[token]);
            }
            history[historyLength++] = token;
            boolean endOfSequence = tokenizer.isEndOfGeneration(token);
            int before = text.length();
            if (!endOfSequence) {
                text.append(decoder.next(token));
            }
            boolean last = endOfSequence || i == params.maxTokens() - 1 || pos >= capacity || cancel.isCancelled();
            int stopAt = stops.find(text, before);
            if (stopAt >= 0) {
                text.setLength(stopAt);
                reason = FinishReason.STOP_STRING;
                last = true;
            } else if (endOfSequence) {
                reason = FinishReason.END_OF_SEQUENCE;
            } else if (cancel.isCancelled()) {
                reason = FinishReason.CANCELLED;
            } else if (pos >= capacity) {
                reason = capacity == contextLength ? FinishReason.CONTEXT_FULL : FinishReason.MAX_TOKENS;
            }
            if (last && reason != FinishReason.STOP_STRING) {
                text.append(decoder.flush());
            }
            int safe = last ? text.length() : stops.safeLength(text);
            String release = safe > released ? text.substring(released, safe) : "";
            released = Math.max(released, safe);
            GeneratedToken generated = new GeneratedToken(token, release, signals.entropy(), probability,
                    signals.p1(), signals.p2());
            tokens.add(generated);
            listener.onToken(generated);
            if (last) {
                break;
            }
            next[0] = token;
            forward(state, next, 1, pos, logits);
            pos++;
        }
        long end = System.nanoTime();
        return new GenerationResult(text.toString(), tokens, prompt.length, prefilled - start, end - prefilled, reason);
    }

    /** Runs the model; reads the logits into {@code logits} unless it is null (they stay on the backend). */
    private Backend.Tensor forward(Llama.State state, int[] tokens, int n, int startPos, float[] logits) {
        if (logits == null) {
            return llama.forwardOnBackend(state, tokens, n, startPos);
        }
        llama.forward(state, tokens, n, startPos, logits);
        return null;
    }

    /** Unmaps the model file and stops the kernel threads. Generations must have finished. */
    @Override
    public void close() {
        backend.close();
        gguf.close();
    }
}
