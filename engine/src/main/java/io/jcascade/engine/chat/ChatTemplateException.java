package io.jcascade.engine.chat;

/**
 * A chat template could not be rendered: it does not parse, or it refused the conversation with
 * {@code raise_exception(...)} (e.g. "Conversation roles must alternate user/assistant/...").
 */
public final class ChatTemplateException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    public ChatTemplateException(String message) {
        super(message);
    }

    public ChatTemplateException(String message, Throwable cause) {
        super(message, cause);
    }
}
