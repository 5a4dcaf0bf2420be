package io.jcascade.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * llama.cpp's own tokenizer test vectors ({@code tests/test-tokenizer-0}): every case must give
 * exactly the expected ids.
 */
class TokenizerVectorsTest {

    @ParameterizedTest
    @ValueSource(strings = {"ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf"})
    void allVectorsMatchLlamaCpp(String vocabName) throws IOException {
        Path vocab = TokenizerTestSupport.shared("tokenizer-vectors/" + vocabName);
        Tokenizer tok = TokenizerTestSupport.load(vocab);
        List<TokenizerTestSupport.Vector> vectors = TokenizerTestSupport.vectors(vocab);
        assertThat(vectors).hasSize(46);

        List<String> failures = new ArrayList<>();
        for (TokenizerTestSupport.Vector v : vectors) {
            int[] got = tok.encode(v.text(), false, false);
            if (!java.util.Arrays.equals(got, v.expected())) {
                failures.add(v + "\n  expected " + java.util.Arrays.toString(v.expected())
                        + "\n  got      " + java.util.Arrays.toString(got));
            }
        }
        assertThat(failures).as("cases differing from llama.cpp").isEmpty();
    }

    @ParameterizedTest
    @ValueSource(strings = {"ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf"})
    void vectorsRoundTrip(String vocabName) throws IOException {
        Path vocab = TokenizerTestSupport.shared("tokenizer-vectors/" + vocabName);
        Tokenizer tok = TokenizerTestSupport.load(vocab);
        for (TokenizerTestSupport.Vector v : TokenizerTestSupport.vectors(vocab)) {
            assertThat(tok.decode(v.expected())).as(v.toString()).isEqualTo(v.text());
        }
    }
}
