package io.jcascade.cascade;

import io.jcascade.engine.CancelToken;
import io.jcascade.engine.FinishReason;
import io.jcascade.engine.GenerationResult;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * A tier that runs a GGUF model in process and computes every {@link Signal} while it generates,
 * cancelling the generation early when the policy says escalation is already certain.
 *
 * <pre>{@code
 * try (LocalTier small = LocalTier.load(TierConfig.local("small", Path.of("models/arith-small.gguf"), 0.0001))) {
 *     TierOutput out = small.call("37+485=", Tier.EarlyExit.NEVER);
 *     System.out.println(out.completion() + " mean entropy " + out.signals().meanEntropy());
 * }
 * }</pre>
 */
public final class LocalTier implements Tier {
    private final TierConfig config;
    private final LocalGenerator generator;
    private final Runnable onClose;
    private final int firstK;

    /**
     * A local tier around any generator.
     *
     * @param firstK how many leading tokens {@code first_k_entropy} averages
     * @param onClose run by {@link #close()} (e.g. closing the model)
     */
    public LocalTier(TierConfig config, LocalGenerator generator, int firstK, Runnable onClose) {
        this.config = config;
        this.generator = generator;
        this.firstK = firstK;
        this.onClose = onClose;
    }

    /** Loads the tier's GGUF model with the engine (first_k 3). */
    public static LocalTier load(TierConfig config) throws IOException {
        return load(config, CascadeConfig.DEFAULT_FIRST_K);
    }

    /** Loads the tier's GGUF model with the engine. */
    public static LocalTier load(TierConfig config, int firstK) throws IOException {
        EngineGenerator g = EngineGenerator.load(config);
        return new LocalTier(config, g, firstK, g::close);
    }

    @Override
    public TierConfig config() {
        return config;
    }

    @Override
    public TierOutput call(String prompt, EarlyExit stopWhen) {
        long start = System.nanoTime();
        SignalAccumulator acc = new SignalAccumulator(firstK);
        CancelToken cancel = new CancelToken();
        GenerationResult r;
        try {
            r = generator.generate(prompt, token -> {
                acc.accept(token);
                if (!cancel.isCancelled() && stopWhen.stop(acc)) {
                    cancel.cancel();
                }
            }, cancel);
        } catch (RuntimeException e) {
            return TierOutput.failed(e.getClass().getSimpleName() + ": " + e.getMessage(), millisSince(start), 1);
        }
        int out = r.tokens().size();
        boolean early = r.finishReason() == FinishReason.CANCELLED;
        return new TierOutput(r.text(), acc.signals(), r.promptTokens(), out, millisSince(start),
                config.cost(r.promptTokens(), out), early, 1, null);
    }

    static double millisSince(long startNanos) {
        return (System.nanoTime() - startNanos) / 1e6;
    }

    @Override
    public void close() {
        try {
            onClose.run();
        } catch (UncheckedIOException e) {
            // closing a mapped model cannot usefully fail the caller
        }
    }

    @Override
    public String toString() {
        return "LocalTier[" + config.name() + ", " + config.modelPath() + "]";
    }
}
