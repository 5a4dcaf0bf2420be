package io.jcascade.cli.server;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jcascade.engine.CancelToken;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.List;

/**
 * What answers the server's completion requests: one model ({@link ModelBackend}) or a cascade
 * ({@link CascadeBackend}). Implementations must be safe to call from several threads at once;
 * the server bounds how many calls run together.
 *
 * <pre>{@code
 * try (ServerBackend backend = ModelBackend.load(Path.of("models/stories260K.gguf"), ModelOptions.defaults(),
 *         null, ModelBackend.ChatFormat.TEMPLATE);
 *      OpenAiServer server = OpenAiServer.start(backend, OpenAiServer.Options.defaults(), log)) { ... }
 * }</pre>
 */
public interface ServerBackend extends AutoCloseable {

    /** Registers the backend's own meters, if it has any, beside the server's ({@code /metrics}). */
    default void bindMetrics(MeterRegistry registry) {
    }

    /** The name {@code /v1/models} lists first and responses carry unless the answer says otherwise. */
    String name();

    /** Every id {@code /v1/models} lists. */
    List<String> modelIds();

    /** The largest number of tokens a prompt and its completion may take together (for the default max_tokens). */
    int contextLength();

    /**
     * Answers one request, handing each generated token's text to {@code sink} as it comes
     * (text may be empty while a character or a stop string is incomplete).
     *
     * @throws ApiException for a request this backend cannot answer (too long, template refused, ...)
     */
    Answer complete(CompletionRequest request, TokenSink sink, CancelToken cancel);

    /** Receives generated text as it streams. */
    @FunctionalInterface
    interface TokenSink {
        void onToken(String text);
    }

    /**
     * A finished answer.
     *
     * @param model the model or tier that answered
     * @param text the completion
     * @param promptTokens prompt tokens
     * @param completionTokens generated tokens (an end-of-sequence token included)
     * @param finishReason OpenAI's {@code stop} or {@code length}
     * @param extension the {@code "jcascade"} object added to the response, or null
     */
    record Answer(String model, String text, int promptTokens, int completionTokens, String finishReason,
            ObjectNode extension) {}

    /** Releases the model or cascade; called once no request runs any more. */
    @Override
    void close();
}
