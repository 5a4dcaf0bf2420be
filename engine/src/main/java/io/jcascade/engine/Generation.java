package io.jcascade.engine;

import io.jcascade.engine.model.Llama;
import io.jcascade.engine.sampling.Sampler;
import io.jcascade.engine.tokenizer.TokenDecoder;
import io.jcascade.engine.tokenizer.Tokenizer;
import io.jcascade.kernels.Backend;
import io.jcascade.kernels.LogitStats;
import io.jcascade.kernels.TokenCandidates;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One sequence being generated: its KV cache, sampler and text, from the prompt's logits to a
 * {@link GenerationResult}. {@link Model#generate} runs one; {@link Model#generateAll} steps
 * several together. After each forward pass the caller calls {@link #logitsReady}, then
 * {@link #step}, which picks and streams the next token and says whether to run it.
 */
final class Generation {
    private final Backend backend;
    private final Tokenizer tokenizer;
    private final GenerationParams params;
    private final TokenListener listener;
    private final CancelToken cancel;
    private final int contextLength;
    private final int vocab;
    final Llama.State state;
    private final int capacity;
    private final int promptLength;

    private final Sampler sampler;
    /** Candidates the backend selects (greedy, top-k), so the logits stay where they are; else -1. */
    private final int needed;
    private final TokenCandidates candidates = new TokenCandidates();
    private final float[] hostLogits;
    private final int[] history;
    private int historyLength;
    private final int[] penalised;
    private final TokenDecoder decoder;
    private final StopStrings stops;
    private final StringBuilder text = new StringBuilder();
    private int released;
    private final List<GeneratedToken> tokens = new ArrayList<>();
    private FinishReason reason = FinishReason.MAX_TOKENS;
    private int token;
    private int pos;
    private final long start = System.nanoTime();
    private long prefilled;
    private long end;

    Generation(Backend backend, Llama llama, Tokenizer tokenizer, int contextLength, int batchSize, int[] prompt,
            GenerationParams params, TokenListener listener, CancelToken cancel) {
        check(prompt, contextLength);
        this.backend = backend;
        this.tokenizer = tokenizer;
        this.params = params;
        this.listener = listener;
        this.cancel = cancel;
        this.contextLength = contextLength;
        this.vocab = llama.config().vocabSize();
        this.promptLength = prompt.length;
        this.capacity = (int) Math.min(contextLength, (long) prompt.length + Math.max(1, params.maxTokens()));
        this.state = llama.newState(capacity, batchSize);
        this.sampler = new Sampler(params.sampling(), vocab);
        int k = sampler.candidatesNeeded(vocab);
        this.needed = k < vocab ? k : -1;
        this.hostLogits = needed < 0 ? new float[vocab] : null;
        this.history = Arrays.copyOf(prompt, capacity + 1);
        this.historyLength = prompt.length;
        this.penalised = new int[history.length];
        this.decoder = new TokenDecoder(tokenizer, false); // continuing the prompt: a leading space is real
        this.stops = new StopStrings(params.stop());
        this.pos = prompt.length;
    }

    /** Throws what generating from {@code prompt} would: an empty prompt, or one past the context. */
    static void check(int[] prompt, int contextLength) {
        if (prompt.length == 0) {
            throw new IllegalArgumentException("the prompt is empty: give some text, or let the model add its BOS token");
        }
        if (prompt.length >= contextLength) {
            throw new ContextOverflowException(prompt.length, contextLength);
        }
    }

    /** Whether no token is to be generated at all ({@code maxTokens} 0). */
    boolean empty() {
        return params.maxTokens() == 0;
    }

    /** The prompt's tokens. */
    int[] prompt() {
        return Arrays.copyOf(history, promptLength);
    }

    /** The token {@link #step} chose, to run at {@link #position}. */
    int token() {
        return token;
    }

    /** Where the chosen token goes in the sequence. */
    int position() {
        return pos;
    }

    /** The forward pass left the state's logits: read them if the sampler needs them all. */
    void logitsReady() {
        if (prefilled == 0) {
            prefilled = System.nanoTime();
        }
        if (hostLogits != null) {
            backend.read(state.logits(), 0, hostLogits, 0, vocab);
        }
    }

    /** The token ran: its position is taken. */
    void advance() {
        pos++;
    }

    /**
     * Picks the next token from the logits, streams it, and says whether generation goes on (then
     * {@link #token} is to run at {@link #position}, and {@link #advance} follows).
     */
    boolean step() {
        double probability;
        LogitStats signals;
        if (needed > 0) {
            int count = sampler.penalisedTokens(history, historyLength, penalised);
            backend.selectTokens(state.logits(), vocab, needed, params.sampling().repetitionPenalty(), penalised,
                    count, candidates);
            token = sampler.sample(candidates);
            probability = candidates.probability(candidates.indexOf(token));
            signals = candidates.stats();
        } else {
            signals = candidates.stats().compute(hostLogits, vocab);
            token = sampler.sample(hostLogits, history, historyLength);
            probability = signals.probability(hostLogits[token]);
        }
        history[historyLength++] = token;
        boolean endOfSequence = tokenizer.isEndOfGeneration(token);
        int before = text.length();
        if (!endOfSequence) {
            text.append(decoder.next(token));
        }
        boolean last = endOfSequence || tokens.size() == params.maxTokens() - 1 || pos >= capacity
                || cancel.isCancelled();
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
        GeneratedToken generated = new GeneratedToken(token, release, signals.entropy(), probability, signals.p1(),
                signals.p2());
        tokens.add(generated);
        listener.onToken(generated);
        if (last) {
            end = System.nanoTime();
        }
        return !last;
    }

    GenerationResult result() {
        if (empty()) {
            return new GenerationResult("", List.of(), promptLength, 0, 0, FinishReason.MAX_TOKENS);
        }
        return new GenerationResult(text.toString(), tokens, promptLength, prefilled - start, end - prefilled, reason);
    }
}
