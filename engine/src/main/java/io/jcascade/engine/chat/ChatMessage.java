package io.jcascade.engine.chat;

import java.util.Objects;

/**
 * One turn of a conversation, as chat templates see it: {@code message['role']} and
 * {@code message['content']}.
 *
 * <pre>{@code
 * List<ChatMessage> chat = List.of(ChatMessage.system("Be brief."), ChatMessage.user("Hi"));
 * }</pre>
 *
 * @param role who speaks: {@code "system"}, {@code "user"} or {@code "assistant"} (templates may know others)
 * @param content what they say
 */
public record ChatMessage(String role, String content) {

    public ChatMessage {
        Objects.requireNonNull(role, "role");
        Objects.requireNonNull(content, "content");
    }

    public static ChatMessage system(String content) {
        return new ChatMessage("system", content);
    }

    public static ChatMessage user(String content) {
        return new ChatMessage("user", content);
    }

    public static ChatMessage assistant(String content) {
        return new ChatMessage("assistant", content);
    }
}
