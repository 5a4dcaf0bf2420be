package io.jcascade.engine;

/** Why a generation ended. */
public enum FinishReason {
    /** The model produced an end-of-sequence (or end-of-turn) token. */
    END_OF_SEQUENCE,
    /** The text reached one of the stop strings. */
    STOP_STRING,
    /** {@code maxTokens} tokens were generated. */
    MAX_TOKENS,
    /** The sequence filled the context. */
    CONTEXT_FULL,
    /** The caller cancelled. */
    CANCELLED
}
