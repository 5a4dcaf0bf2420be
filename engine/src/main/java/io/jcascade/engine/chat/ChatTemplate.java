package io.jcascade.engine.chat;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import io.jcascade.engine.tokenizer.Tokenizer;
import io.jcascade.gguf.GgufFile;
import io.jcascade.gguf.GgufValue;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Renders a conversation into the prompt text a chat model was trained on, from the Jinja template
 * in the model's {@code tokenizer.chat_template} (the {@code chat_template} of Hugging Face's
 * {@code tokenizer_config.json}), with Jinjava.
 *
 * <p>The template sees what Hugging Face's {@code apply_chat_template} gives it: {@code messages}
 * (a list of {@code {'role': ..., 'content': ...}}), {@code add_generation_prompt},
 * {@code bos_token}, {@code eos_token} and a {@code raise_exception(message)} function; blocks are
 * rendered with {@code trim_blocks} and {@code lstrip_blocks}, as there. Python string methods that
 * templates call ({@code .strip()}, {@code .upper()}, ...) are mapped to Jinja filters.
 *
 * <p>The rendered text contains special tokens as text (e.g. {@code <|eot_id|>}), so encode it with
 * special-token parsing on; see {@link #encode}.
 *
 * <pre>{@code
 * ChatTemplate t = ChatTemplate.fromGguf(gguf, tokenizer).orElseGet(ChatTemplate::plain);
 * String prompt = t.render(List.of(ChatMessage.user("Hi")), true);
 * // Llama 3: "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
 * //          + "<|start_header_id|>assistant<|end_header_id|>\n\n"
 * int[] ids = ChatTemplate.encode(tokenizer, prompt);
 * }</pre>
 *
 * <p>Instances are immutable and thread-safe.
 */
public final class ChatTemplate {

    /** The plain format used when a model has no template. */
    public static final String PLAIN_DESCRIPTION = "plain \"User: ...\\nAssistant:\" lines";

    private static final Jinjava JINJAVA = newJinjava();

    /** Python string methods without arguments and the Jinja filters that do the same. */
    private static final Map<Pattern, String> PYTHON_METHODS = Map.of(
            Pattern.compile("\\.strip\\(\\s*\\)"), "|trim",
            Pattern.compile("\\.upper\\(\\s*\\)"), "|upper",
            Pattern.compile("\\.lower\\(\\s*\\)"), "|lower",
            Pattern.compile("\\.title\\(\\s*\\)"), "|title",
            Pattern.compile("\\.capitalize\\(\\s*\\)"), "|capitalize");

    private final String source;
    private final String jinjavaSource;
    private final String bosToken;
    private final String eosToken;

    private ChatTemplate(String source, String bosToken, String eosToken) {
        this.source = source;
        this.jinjavaSource = source == null ? null : adapt(source);
        this.bosToken = bosToken;
        this.eosToken = eosToken;
    }

    /**
     * A template from its Jinja source.
     *
     * @param bosToken the text {@code bos_token} stands for (e.g. {@code "<s>"}), or "" for none
     * @param eosToken the text {@code eos_token} stands for, or ""
     */
    public static ChatTemplate of(String jinja, String bosToken, String eosToken) {
        return new ChatTemplate(Objects.requireNonNull(jinja), Objects.requireNonNullElse(bosToken, ""),
                Objects.requireNonNullElse(eosToken, ""));
    }

    /**
     * The plain fallback for models without a template: one {@code "Role: content"} line per
     * message and {@code "Assistant:"} as the generation prompt.
     */
    public static ChatTemplate plain() {
        return new ChatTemplate(null, "", "");
    }

    /**
     * The template in the file's {@code tokenizer.chat_template}, with {@code bos_token} and
     * {@code eos_token} taken from the tokenizer's BOS and EOS pieces; empty when the file has none.
     */
    public static Optional<ChatTemplate> fromGguf(GgufFile gguf, Tokenizer tokenizer) {
        return gguf.get("tokenizer.chat_template").map(GgufValue::asString).filter(s -> !s.isBlank())
                .map(t -> of(t, tokenizer.bos() >= 0 ? tokenizer.tokenText(tokenizer.bos()) : "",
                        tokenizer.eos() >= 0 ? tokenizer.tokenText(tokenizer.eos()) : ""));
    }

    /**
     * The conversation as prompt text.
     *
     * @param addGenerationPrompt end with the header that starts the assistant's reply (templates
     *        that always add it ignore this)
     * @throws ChatTemplateException if the template does not render or rejects the conversation
     */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        if (source == null) {
            return renderPlain(messages, addGenerationPrompt);
        }
        List<Map<String, Object>> msgs = new ArrayList<>(messages.size());
        for (ChatMessage m : messages) {
            Map<String, Object> map = new LinkedHashMap<>();
            map.put("role", m.role());
            map.put("content", m.content());
            msgs.add(map);
        }
        Map<String, Object> bindings = new HashMap<>();
        bindings.put("messages", msgs);
        bindings.put("add_generation_prompt", addGenerationPrompt);
        bindings.put("bos_token", bosToken);
        bindings.put("eos_token", eosToken);
        RenderResult result;
        try {
            result = JINJAVA.renderForResult(jinjavaSource, bindings);
        } catch (RuntimeException e) {
            throw new ChatTemplateException("chat template failed: " + rootMessage(e), e);
        }
        for (TemplateError error : result.getErrors()) {
            if (error.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw new ChatTemplateException("chat template failed: " + errorMessage(error));
            }
        }
        return result.getOutput();
    }

    /** The Jinja source, or empty for {@link #plain()}. */
    public Optional<String> source() {
        return Optional.ofNullable(source);
    }

    /** Whether this is the {@link #plain()} fallback rather than a model's own template. */
    public boolean isPlain() {
        return source == null;
    }

    public String bosToken() {
        return bosToken;
    }

    public String eosToken() {
        return eosToken;
    }

    /**
     * Tokenizes a rendered prompt: special tokens in the text are parsed, BOS is added when the
     * model asks for it, but not a second time when the template already wrote one.
     */
    public static int[] encode(Tokenizer tokenizer, String rendered) {
        int[] ids = tokenizer.encode(rendered, true, true);
        int bos = tokenizer.bos();
        if (ids.length >= 2 && tokenizer.addBos() && ids[0] == bos && ids[1] == bos) {
            return java.util.Arrays.copyOfRange(ids, 1, ids.length);
        }
        return ids;
    }

    /** Called by templates as {@code raise_exception(message)}; public only for Jinjava. */
    public static String raiseException(String message) {
        throw new TemplateRaised(message);
    }

    private static String renderPlain(List<ChatMessage> messages, boolean addGenerationPrompt) {
        StringBuilder sb = new StringBuilder();
        for (ChatMessage m : messages) {
            String role = m.role().isEmpty() ? m.role() : Character.toUpperCase(m.role().charAt(0)) + m.role().substring(1);
            sb.append(role).append(": ").append(m.content()).append('\n');
        }
        if (addGenerationPrompt) {
            sb.append("Assistant:");
        }
        return sb.toString();
    }

    static String adapt(String jinja) {
        String s = jinja;
        for (Map.Entry<Pattern, String> e : PYTHON_METHODS.entrySet()) {
            s = e.getKey().matcher(s).replaceAll(e.getValue());
        }
        return s;
    }

    private static Jinjava newJinjava() {
        JinjavaConfig config = JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .build();
        Jinjava j = new Jinjava(config);
        j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class,
                "raiseException", String.class));
        return j;
    }

    private static String errorMessage(TemplateError error) {
        Throwable e = error.getException();
        if (e != null) {
            TemplateRaised raised = find(e);
            if (raised != null) {
                return raised.getMessage();
            }
        }
        String m = error.getMessage();
        // Jinjava wraps the function's exception message; keep what raise_exception was given.
        return m;
    }

    private static String rootMessage(Throwable e) {
        TemplateRaised raised = find(e);
        return raised != null ? raised.getMessage() : String.valueOf(e.getMessage());
    }

    private static TemplateRaised find(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof TemplateRaised r) {
                return r;
            }
        }
        return null;
    }

    /** What {@code raise_exception} throws, told apart from Jinjava's own errors. */
    private static final class TemplateRaised extends RuntimeException {
        private static final long serialVersionUID = 1L;

        TemplateRaised(String message) {
            super(message, null, false, false);
        }
    }
}
