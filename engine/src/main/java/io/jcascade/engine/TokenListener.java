package io.jcascade.engine;

/**
 * Receives generated tokens as they come, on the generating thread.
 *
 * <pre>{@code
 * TokenListener print = tok -> System.out.print(tok.text());
 * }</pre>
 */
@FunctionalInterface
public interface TokenListener {
    void onToken(GeneratedToken token);

    /** A listener that ignores everything. */
    TokenListener NONE = tok -> { };
}
