package io.jcascade.engine.chat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.jcascade.engine.SharedData;
import io.jcascade.engine.tokenizer.Tokenizer;
import io.jcascade.engine.tokenizer.Tokenizers;
import io.jcascade.gguf.GgufFile;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Chat templates rendered with Jinjava against renderings written by hand from each model's
 * documented prompt format.
 */
class ChatTemplateTest {

    /** teknium/OpenHermes-2.5-Mistral-7B tokenizer_config.json. */
    static final String CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
            + " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    /** mistralai/Mistral-7B-Instruct-v0.1 tokenizer_config.json. */
    static final String MISTRAL = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != "
            + "(loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
            + "{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
            + "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token + ' ' }}{% else %}"
            + "{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

    private static final List<ChatMessage> HI = List.of(ChatMessage.user("Hi"));
    private static final List<ChatMessage> TWO_TURNS = List.of(ChatMessage.user("Hi"), ChatMessage.assistant("Hello!"),
            ChatMessage.user("How are you?"));

    static ChatTemplate fromVocab(String name) throws IOException {
        try (GgufFile gguf = GgufFile.open(SharedData.shared("tokenizer-vectors/" + name))) {
            Tokenizer tok = Tokenizers.fromGguf(gguf);
            return ChatTemplate.fromGguf(gguf, tok).orElseThrow();
        }
    }

    @Test
    void llama3() throws IOException {
        ChatTemplate t = fromVocab("ggml-vocab-llama-bpe.gguf");
        assertThat(t.bosToken()).isEqualTo("<|begin_of_text|>");
        assertThat(t.render(HI, true)).isEqualTo(
                "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                        + "<|start_header_id|>assistant<|end_header_id|>\n\n");
        List<ChatMessage> chat = List.of(ChatMessage.system("  Be brief.\n"), ChatMessage.user("Hi"),
                ChatMessage.assistant("Hello!"), ChatMessage.user("2+2?"));
        // Content is trimmed; BOS only before the first message.
        assertThat(t.render(chat, true)).isEqualTo("<|begin_of_text|>"
                + "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                + "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n");
    }

    @Test
    void phi3() throws IOException {
        ChatTemplate t = fromVocab("ggml-vocab-phi-3.gguf");
        assertThat(t.render(HI, true)).isEqualTo("<s><|user|>\nHi<|end|>\n<|assistant|>\n");
        assertThat(t.render(TWO_TURNS, true)).isEqualTo(
                "<s><|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n<|user|>\nHow are you?<|end|>\n<|assistant|>\n");
    }

    @Test
    void mistral() {
        ChatTemplate t = ChatTemplate.of(MISTRAL, "<s>", "</s>");
        assertThat(t.render(HI, true)).isEqualTo("<s>[INST] Hi [/INST]");
        assertThat(t.render(TWO_TURNS, true)).isEqualTo("<s>[INST] Hi [/INST]Hello!</s> [INST] How are you? [/INST]");
    }

    @Test
    void mistralRejectsWhatItsTemplateRejects() {
        ChatTemplate t = ChatTemplate.of(MISTRAL, "<s>", "</s>");
        assertThatThrownBy(() -> t.render(List.of(ChatMessage.user("a"), ChatMessage.user("b")), true))
                .isInstanceOf(ChatTemplateException.class)
                .hasMessageContaining("Conversation roles must alternate user/assistant/user/assistant/...");
        assertThatThrownBy(() -> t.render(List.of(ChatMessage.system("s")), true))
                .isInstanceOf(ChatTemplateException.class);
    }

    @Test
    void chatml() {
        ChatTemplate t = ChatTemplate.of(CHATML, "<s>", "<|im_end|>");
        List<ChatMessage> chat = List.of(ChatMessage.system("You are helpful."), ChatMessage.user("Hi"));
        assertThat(t.render(chat, true)).isEqualTo(
                "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
        assertThat(t.render(chat, false)).isEqualTo(
                "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
    }

    @Test
    void pythonIsmsThatTemplatesUse() {
        // Zephyr-style: messages[0]['role'], slicing, .strip(), loop.first/last, trim_blocks.
        String jinja = """
                {% if messages[0]['role'] == 'system' %}
                    {% set loop_messages = messages[1:] %}
                    {% set system_message = messages[0]['content'].strip() + '\\n\\n' %}
                {% else %}
                    {% set loop_messages = messages %}
                    {% set system_message = '' %}
                {% endif %}
                {{ bos_token + system_message }}
                {% for message in loop_messages %}
                    {% if loop.first %}[first]{% endif %}
                    {% if message['role'] == 'user' %}
                        {{ 'USER: ' + message['content'].strip() + '\\n' }}
                    {% elif message['role'] == 'assistant' %}
                        {{ 'ASSISTANT: ' + message['content'].strip() + eos_token + '\\n' }}
                    {% endif %}
                    {% if loop.last and message['role'] == 'user' and add_generation_prompt %}
                        {{ 'ASSISTANT:' }}
                    {% endif %}
                {% endfor %}""";
        ChatTemplate t = ChatTemplate.of(jinja, "<s>", "</s>");
        List<ChatMessage> chat = List.of(ChatMessage.system(" Sys "), ChatMessage.user(" Hi "),
                ChatMessage.assistant("Yo"), ChatMessage.user("Q"));
        // Exactly what Python's jinja2 3.1.6 renders with Hugging Face's settings
        // (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks).
        assertThat(t.render(chat, true)).isEqualTo("<s>Sys\n\n\n[first]        USER: Hi\n\n        ASSISTANT: Yo</s>\n\n"
                + "        USER: Q\n\n        ASSISTANT:\n");
    }

    @Test
    void trimAndLstripBlocksAsHuggingFace() {
        ChatTemplate t = ChatTemplate.of("{% for m in messages %}\n    {{ m.content }}\n{% endfor %}", "", "");
        // trim_blocks drops the newline after a tag, lstrip_blocks the indentation before one.
        assertThat(t.render(List.of(ChatMessage.user("a"), ChatMessage.user("b")), false)).isEqualTo("    a\n    b\n");
    }

    @Test
    void plainFallback() {
        ChatTemplate t = ChatTemplate.plain();
        assertThat(t.isPlain()).isTrue();
        assertThat(t.render(List.of(ChatMessage.system("Be brief."), ChatMessage.user("Hi")), true))
                .isEqualTo("System: Be brief.\nUser: Hi\nAssistant:");
    }

    @Test
    void vocabWithoutTemplateHasNone() throws IOException {
        try (GgufFile gguf = GgufFile.open(SharedData.shared("tokenizer-vectors/ggml-vocab-gpt-2.gguf"))) {
            assertThat(ChatTemplate.fromGguf(gguf, Tokenizers.fromGguf(gguf))).isEmpty();
        }
    }

    @Test
    void brokenTemplateFailsClearly() {
        assertThatThrownBy(() -> ChatTemplate.of("{% for m in messages %}", "", "").render(HI, true))
                .isInstanceOf(ChatTemplateException.class);
    }

}
