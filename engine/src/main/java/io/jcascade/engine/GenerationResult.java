package io.jcascade.engine;

import java.util.List;

/**
 * The outcome of one generation.
 *
 * <pre>{@code
 * GenerationResult r = model.generate("37+485=", params);
 * System.out.println(r.text() + " mean entropy " + r.meanEntropy());
 * }</pre>
 *
 * @param text the completion (not the prompt), cut before a stop string if one was found
 * @param tokens every generated token, the end-of-sequence token included
 * @param promptTokens tokens in the prompt, special tokens included
 * @param promptNanos time spent processing the prompt
 * @param generateNanos time spent generating after the prompt
 * @param finishReason why it ended
 */
public record GenerationResult(String text, List<GeneratedToken> tokens, int promptTokens, long promptNanos,
        long generateNanos, FinishReason finishReason) {

    public GenerationResult {
        tokens = List.copyOf(tokens);
    }

    /** Mean token entropy over the generated tokens, or 0 when none. */
    public double meanEntropy() {
        return tokens.stream().mapToDouble(GeneratedToken::entropy).average().orElse(0);
    }

    /** Largest token entropy over the generated tokens, or 0 when none. */
    public double maxEntropy() {
        return tokens.stream().mapToDouble(GeneratedToken::entropy).max().orElse(0);
    }

    public double promptMillis() {
        return promptNanos / 1e6;
    }

    public double generateMillis() {
        return generateNanos / 1e6;
    }
}
