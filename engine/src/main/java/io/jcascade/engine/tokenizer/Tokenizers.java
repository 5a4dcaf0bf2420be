package io.jcascade.engine.tokenizer;

import io.jcascade.gguf.GgufFile;
import io.jcascade.gguf.GgufValue;

/**
 * Picks the tokenizer implementation a GGUF file asks for in {@code tokenizer.ggml.model}.
 *
 * <pre>{@code
 * try (GgufFile gguf = GgufFile.open(modelPath)) {
 *     Tokenizer tok = Tokenizers.fromGguf(gguf);
 * }
 * }</pre>
 */
public final class Tokenizers {

    private Tokenizers() {
    }

    /**
     * The tokenizer described by the file's {@code tokenizer.ggml.*} metadata. The result keeps no
     * reference to the file, so the file may be closed afterwards.
     *
     * @throws IllegalArgumentException if the file has no tokenizer or one of a kind not supported
     *         yet (supported: {@code "llama"}, SentencePiece, and {@code "gpt2"}, byte-level BPE with
     *         the pre-tokenizers of {@link BpePreTokenizer#supportedNames()})
     */
    public static Tokenizer fromGguf(GgufFile gguf) {
        String model = gguf.get("tokenizer.ggml.model").map(GgufValue::asString)
                .orElseThrow(() -> new IllegalArgumentException("GGUF file has no tokenizer.ggml.model"));
        return switch (model) {
            case "llama" -> SentencePieceTokenizer.fromGguf(gguf);
            case "gpt2" -> BpeTokenizer.fromGguf(gguf);
            default -> throw new IllegalArgumentException("unsupported tokenizer.ggml.model \"" + model
                    + "\"; supported: \"llama\" (SentencePiece), \"gpt2\" (byte-level BPE)");
        };
    }
}
