package io.jcascade.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * llama.cpp's tokenizer test vectors ({@code tests/test-tokenizer-0}) for every byte-level BPE
 * vocabulary in the shared data: each of the 46 cases must give exactly the expected ids
 * (add_special=false, parse_special=false), and decoding the expected ids gives back the text.
 */
class BpeVectorsTest {

    @ParameterizedTest
    @ValueSource(strings = {"ggml-vocab-llama-bpe.gguf", "ggml-vocab-gpt-2.gguf",
        "ggml-vocab-deepseek-llm.gguf", "ggml-vocab-deepseek-coder.gguf", "ggml-vocab-falcon.gguf",
        "ggml-vocab-mpt.gguf", "ggml-vocab-starcoder.gguf", "ggml-vocab-refact.gguf"})
    void allVectorsMatchLlamaCpp(String vocabName) throws IOException {
        Path vocab = TokenizerTestSupport.shared("tokenizer-vectors/" + vocabName);
        Tokenizer tok = TokenizerTestSupport.load(vocab);
        assertThat(tok).isInstanceOf(BpeTokenizer.class);
        List<TokenizerTestSupport.Vector> vectors = TokenizerTestSupport.vectors(vocab);
        assertThat(vectors).hasSize(46);

        List<String> failures = new ArrayList<>();
        for (TokenizerTestSupport.Vector v : vectors) {
            int[] got = tok.encode(v.text(), false, false);
            if (!Arrays.equals(got, v.expected())) {
                failures.add(v + "\n  expected " + Arrays.toString(v.expected()) + "\n  got      " + Arrays.toString(got));
            }
        }
        assertThat(failures).as("cases differing from llama.cpp").isEmpty();
    }

    @ParameterizedTest
    @ValueSource(strings = {"ggml-vocab-llama-bpe.gguf", "ggml-vocab-gpt-2.gguf",
        "ggml-vocab-deepseek-llm.gguf", "ggml-vocab-deepseek-coder.gguf", "ggml-vocab-falcon.gguf",
        "ggml-vocab-mpt.gguf", "ggml-vocab-starcoder.gguf", "ggml-vocab-refact.gguf"})
    void expectedIdsDecodeToTheText(String vocabName) throws IOException {
        Path vocab = TokenizerTestSupport.shared("tokenizer-vectors/" + vocabName);
        Tokenizer tok = TokenizerTestSupport.load(vocab);
        for (TokenizerTestSupport.Vector v : TokenizerTestSupport.vectors(vocab)) {
            assertThat(tok.decode(v.expected())).as(v.toString()).isEqualTo(v.text());
        }
    }
}
