package io.jcascade.engine;

/**
 * The prompt does not fit the context: it names both sizes so the caller can shorten the prompt
 * or load the model with a longer context.
 *
 * <pre>{@code
 * try { model.generate(longPrompt, params); }
 * catch (ContextOverflowException e) { int excess = e.promptTokens() - e.contextLength() + 1; }
 * }</pre>
 */
public class ContextOverflowException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;
    private final int promptTokens;
    private final int contextLength;

    public ContextOverflowException(int promptTokens, int contextLength) {
        super("the prompt is " + promptTokens + " tokens but the context holds " + contextLength
                + " (prompt plus at least one generated token must fit); shorten the prompt or raise the context length");
        this.promptTokens = promptTokens;
        this.contextLength = contextLength;
    }

    public int promptTokens() {
        return promptTokens;
    }

    public int contextLength() {
        return contextLength;
    }
}
