package io.jcascade.engine;

/**
 * Lets another thread (or the token listener itself) stop a running generation; the generation
 * ends after the current token with {@link FinishReason#CANCELLED} and returns what it has.
 *
 * <pre>{@code
 * CancelToken cancel = new CancelToken();
 * executor.submit(() -> model.generate(prompt, params, listener, cancel));
 * cancel.cancel();
 * }</pre>
 */
public final class CancelToken {
    private volatile boolean cancelled;

    public void cancel() {
        cancelled = true;
    }

    public boolean isCancelled() {
        return cancelled;
    }
}
