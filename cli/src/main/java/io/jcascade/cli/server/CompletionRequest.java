package io.jcascade.cli.server;

import io.jcascade.engine.GenerationParams;
import io.jcascade.engine.chat.ChatMessage;
import java.util.List;

/**
 * One parsed {@code /v1/completions} or {@code /v1/chat/completions} request.
 *
 * <pre>{@code
 * CompletionRequest r = RequestParser.parse(json.readTree(body), true, model.contextLength());
 * if (r.chat()) System.out.println(r.messages().size() + " messages");
 * }</pre>
 *
 * @param chat whether it came to the chat endpoint (then {@code messages} is set, else {@code prompt})
 * @param prompt the completion prompt, or null for chat
 * @param messages the conversation, or an empty list for completions
 * @param params generation settings: {@code max_tokens}, the sampling keys, {@code stop}
 * @param maxTokensGiven whether the request named {@code max_tokens} (the cascade ignores it either way)
 * @param stream whether to answer with Server-Sent Events
 * @param includeUsage {@code stream_options.include_usage}: a last stream chunk with the usage
 */
public record CompletionRequest(boolean chat, String prompt, List<ChatMessage> messages, GenerationParams params,
        boolean maxTokensGiven, boolean stream, boolean includeUsage) {

    public CompletionRequest {
        messages = List.copyOf(messages);
    }
}
