package io.jcascade.cascade;

import io.jcascade.engine.CancelToken;
import io.jcascade.engine.GenerationResult;
import io.jcascade.engine.TokenListener;

/**
 * What a {@link LocalTier} runs: a generation that streams {@code GeneratedToken}s and can be
 * cancelled. The engine's {@code Model} is one (see {@link LocalTier#load}); tests and services
 * can plug in their own.
 *
 * <pre>{@code
 * LocalGenerator g = (prompt, listener, cancel) -> model.generate(prompt, params, listener, cancel);
 * Tier tier = new LocalTier(TierConfig.local("small", path, 0.0001), g, model::close);
 * }</pre>
 */
@FunctionalInterface
public interface LocalGenerator {
    /** Generates a completion of {@code prompt}, calling {@code listener} after every token. */
    GenerationResult generate(String prompt, TokenListener listener, CancelToken cancel);
}
