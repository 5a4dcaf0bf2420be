package io.jcascade.engine.tokenizer;

/**
 * The kind of a vocabulary entry, as stored in GGUF's {@code tokenizer.ggml.token_type} array
 * (llama.cpp's {@code llama_token_type}). The kind decides how a token is matched in the input and
 * how it is rendered back to text.
 *
 * <pre>{@code
 * if (tokenizer.tokenType(id) == TokenType.CONTROL) { ... }
 * }</pre>
 */
public enum TokenType {
    UNDEFINED, NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE;

    private static final TokenType[] BY_CODE = values();

    /** The type for a GGUF code; codes outside 0..6 map to {@link #UNDEFINED}. */
    public static TokenType fromCode(int code) {
        return code >= 0 && code < BY_CODE.length ? BY_CODE[code] : UNDEFINED;
    }

    /** GGUF's numeric code for this type. */
    public int code() {
        return ordinal();
    }
}
