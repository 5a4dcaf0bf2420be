package io.jcascade.engine.tokenizer;

/**
 * Text to token ids and back, following llama.cpp's semantics so that prompts tokenize to exactly
 * the ids the model was evaluated with.
 *
 * <p>Implementations are immutable and thread-safe.
 *
 * <pre>{@code
 * try (GgufFile gguf = GgufFile.open(Path.of("model.gguf"))) {
 *     Tokenizer tok = Tokenizers.fromGguf(gguf);
 *     int[] prompt = tok.encode("Once upon a time", true);   // [bos, ...] when the model wants BOS
 *     String text = tok.decode(prompt);                        // "Once upon a time"
 * }
 * }</pre>
 */
public interface Tokenizer {

    /**
     * Tokenizes {@code text}; text that looks like a control token (e.g. {@code "<s>"}) stays plain
     * text, which is what user-supplied strings need.
     *
     * @param addSpecial add BOS (and EOS) where the model's metadata asks for them
     */
    default int[] encode(String text, boolean addSpecial) {
        return encode(text, addSpecial, false);
    }

    /**
     * Tokenizes {@code text}.
     *
     * @param addSpecial add BOS when {@link #addBos()} (and EOS when the metadata's
     *        {@code add_eos_token} is set), as llama.cpp's {@code llama_tokenize(add_special)}
     * @param parseSpecial when true, the text of control tokens in the input (e.g. {@code "<s>"})
     *        becomes those tokens' ids; user-defined tokens are always matched
     */
    int[] encode(String text, boolean addSpecial, boolean parseSpecial);

    /**
     * The raw bytes token {@code id} renders to in generated text: pieces with {@code ▁} turned into
     * spaces, byte tokens {@code <0xAB>} as that single byte (possibly part of a UTF-8 character),
     * nothing for control, unknown and unused tokens. The caller must not modify the array.
     */
    byte[] tokenBytes(int id);

    /**
     * The text of {@code ids}: the concatenation of {@link #tokenBytes} decoded as UTF-8, minus the
     * single space that the tokenizer's dummy prefix added in front of the first text-bearing token.
     * Invalid UTF-8 (an incomplete byte sequence) becomes U+FFFD.
     *
     * <p>Unlike llama.cpp's {@code llama_detokenize}, which keeps that space when the ids start with
     * BOS, the space is dropped after any leading control tokens, so that
     * {@code decode(encode(s, true)) == s} as well as {@code decode(encode(s, false)) == s}.
     */
    String decode(int[] ids);

    /** Number of tokens in the vocabulary (the model's logit count may be larger). */
    int vocabSize();

    /** Beginning-of-sequence token, or -1 if the vocabulary has none. */
    int bos();

    /** End-of-sequence token, or -1 if the vocabulary has none. */
    int eos();

    /** End-of-turn token (chat models), or -1 if the vocabulary has none. */
    int eot();

    /** Whether generating {@code id} ends generation (EOS, EOT and the like). */
    boolean isEndOfGeneration(int id);

    /** The token's piece exactly as stored in the vocabulary (e.g. {@code "▁Hello"}, {@code "<0x0A>"}). */
    String tokenText(int id);

    /** The token's kind. */
    TokenType tokenType(int id);

    /** Whether {@code encode(text, true, ...)} puts BOS in front. */
    boolean addBos();

    /**
     * Whether encoding puts a space in front of the text (SentencePiece's dummy prefix), so that
     * decoding a text from its start drops that space again.
     */
    default boolean addSpacePrefix() {
        return false;
    }
}
