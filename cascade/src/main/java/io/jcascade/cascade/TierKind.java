package io.jcascade.cascade;

/**
 * What runs a tier.
 *
 * <pre>{@code
 * TierKind k = TierKind.parse("openai");
 * }</pre>
 */
public enum TierKind {
    /** A GGUF model run in process by the jcascade engine. */
    LOCAL("local"),
    /** Any OpenAI Chat Completions endpoint (OpenAI, vLLM, llama.cpp server, ...). */
    OPENAI("openai"),
    /** The Anthropic Messages API. */
    ANTHROPIC("anthropic");

    private final String key;

    TierKind(String key) {
        this.key = key;
    }

    /** The name used in configs: {@code local}, {@code openai} or {@code anthropic}. */
    public String key() {
        return key;
    }

    /** Whether the tier is called over HTTP. */
    public boolean remote() {
        return this != LOCAL;
    }

    /** The kind named {@code key}. */
    public static TierKind parse(String key) {
        for (TierKind k : values()) {
            if (k.key.equals(key)) {
                return k;
            }
        }
        throw new IllegalArgumentException("unknown kind \"" + key + "\"; choose local, openai or anthropic");
    }
}
