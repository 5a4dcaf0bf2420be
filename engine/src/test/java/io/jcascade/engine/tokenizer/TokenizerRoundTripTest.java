package io.jcascade.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.jcascade.gguf.GgufFile;
import io.jcascade.gguf.GgufValue;
import io.jcascade.gguf.GgufValueType;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** decode(encode(s)) == s, token rendering, and the factory. */
class TokenizerRoundTripTest {

    @ParameterizedTest
    @ValueSource(strings = {"models/stories260K.gguf", "tokenizer-vectors/ggml-vocab-llama-spm.gguf"})
    void decodeInvertsEncode(String file) {
        Tokenizer tok = TokenizerTestSupport.load(TokenizerTestSupport.shared(file));
        List<String> corpus = new ArrayList<>(TokenizerTestSupport.HARD_STRINGS);
        corpus.add("\r\n\u0000\u0001\u007f");
        for (String s : corpus) {
            // A literal ▁ in the input is indistinguishable from an escaped space afterwards.
            if (s.indexOf('\u2581') >= 0) {
                continue;
            }
            assertThat(tok.decode(tok.encode(s, false))).as("[%s]", s).isEqualTo(s);
            assertThat(tok.decode(tok.encode(s, true))).as("[%s] with BOS", s).isEqualTo(s);
        }
    }

    @Test
    void randomUnicodeRoundTripsThroughByteFallback() {
        Tokenizer tok = TokenizerTestSupport.load(TokenizerTestSupport.shared("models/stories260K.gguf"));
        Random rnd = new Random(7);
        for (int i = 0; i < 200; i++) {
            StringBuilder sb = new StringBuilder();
            int len = rnd.nextInt(30);
            while (sb.length() < len) {
                int cp = switch (rnd.nextInt(4)) {
                    case 0 -> 0x20 + rnd.nextInt(0x5f);
                    case 1 -> 0xa0 + rnd.nextInt(0x700);
                    case 2 -> 0x3000 + rnd.nextInt(0x6000);
                    default -> 0x1f300 + rnd.nextInt(0x300);
                };
                if (cp != 0x2581) {
                    sb.appendCodePoint(cp);
                }
            }
            String s = sb.toString();
            assertThat(tok.decode(tok.encode(s, true))).isEqualTo(s);
        }
    }

    @Test
    void tokenBytesRenderPiecesBytesAndControls() {
        Tokenizer tok = TokenizerTestSupport.load(TokenizerTestSupport.shared("tokenizer-vectors/ggml-vocab-llama-spm.gguf"));
        assertThat(tok.tokenText(15043)).isEqualTo("▁Hello");
        assertThat(new String(tok.tokenBytes(15043), StandardCharsets.UTF_8)).isEqualTo(" Hello");
        int nl = 13;
        assertThat(tok.tokenText(nl)).isEqualTo("<0x0A>");
        assertThat(tok.tokenType(nl)).isEqualTo(TokenType.BYTE);
        assertThat(tok.tokenBytes(nl)).containsExactly('\n');
        assertThat(tok.tokenBytes(1)).isEmpty();   // <s>
        assertThat(tok.tokenBytes(2)).isEmpty();   // </s>
        assertThat(tok.tokenBytes(0)).isEmpty();   // <unk>
        assertThat(tok.vocabSize()).isEqualTo(32000);
        assertThat(tok.eot()).isEqualTo(-1);
        assertThat(tok.decode(new int[] {1, 15043, 3186, 2})).isEqualTo("Hello world");
    }

    @Test
    void phi3EndOfTurnTokens() {
        Tokenizer tok = TokenizerTestSupport.load(TokenizerTestSupport.shared("tokenizer-vectors/ggml-vocab-phi-3.gguf"));
        assertThat(tok.eos()).isEqualTo(32000);
        assertThat(tok.tokenText(tok.eot())).isEqualTo("<|end|>");
        assertThat(tok.isEndOfGeneration(32000)).isTrue();
        assertThat(tok.isEndOfGeneration(tok.eot())).isTrue();
        assertThat(tok.isEndOfGeneration(15043)).isFalse();
        // Control tokens are text unless special parsing is asked for.
        int end = tok.eot();
        assertThat(tok.encode("<|end|>", false, true)).containsExactly(end);
        assertThat(tok.encode("<|end|>", false, false)).doesNotContain(end);
        // After a special token the next text gets the dummy prefix again, as in llama.cpp.
        assertThat(tok.encode("<|user|>Hello", false, true))
                .containsExactly(tok.encode("<|user|>", false, true)[0], 15043);
    }

    @Test
    void userDefinedTokensAreAlwaysMatchedWhole() {
        String[] tokens = {"<unk>", "<s>", "</s>", "▁", "a", "b", "▁a", "ab", "<tool>"};
        float[] scores = {0, 0, 0, -1, -2, -3, -1.5f, -0.5f, 0};
        int[] types = {2, 3, 3, 1, 1, 1, 1, 1, 4};
        var tok = new SentencePieceTokenizer(tokens, scores, types, SentencePieceTokenizer.Options.defaults());
        // "ab" (-0.5) outscores "▁a" (-1.5), so the dummy prefix stays a lone "▁".
        assertThat(tok.encode("ab<tool>ab", false)).containsExactly(3, 7, 8, 3, 7);
        // Without byte tokens an unspellable character falls back to <unk>.
        assertThat(tok.encode("az", false)).containsExactly(6, 0);
        assertThat(tok.decode(new int[] {3, 7, 8, 3, 7})).isEqualTo("ab<tool> ab");
    }

    @Test
    void mergesHighestScoreFirstAndLeftmostOnTies() {
        // "aaa": both bigrams "aa" score the same, so the left pair merges first → [aa, a].
        String[] tokens = {"<unk>", "a", "aa", "b", "ab", "ba"};
        float[] scores = {0, -5, -1, -5, -2, -0.5f};
        var opts = new SentencePieceTokenizer.Options(-1, -1, 0, -1, -1, false, false, false);
        var tok = new SentencePieceTokenizer(tokens, scores, null, opts);
        assertThat(tok.encode("aaa", true)).containsExactly(2, 1);
        // "aba": "ba" (-0.5) beats "ab" (-2) although it is further right.
        assertThat(tok.encode("aba", false)).containsExactly(1, 5);
    }

    @Test
    void longInputIsFast() {
        Tokenizer tok = TokenizerTestSupport.load(TokenizerTestSupport.shared("tokenizer-vectors/ggml-vocab-llama-spm.gguf"));
        String s = "The quick brown fox jumps over the lazy dog. ".repeat(5000) + "a".repeat(100_000);
        long t0 = System.nanoTime();
        int[] ids = tok.encode(s, false);
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertThat(tok.decode(ids)).isEqualTo(s);
        assertThat(ms).as("ms for %d chars", s.length()).isLessThan(10_000);
    }

    @Test
    void factoryRejectsUnsupportedModels() throws IOException {
        // gpt2 (byte-level BPE) is supported now; WordPiece is not.
        try (GgufFile bert = GgufFile.open(TokenizerTestSupport.shared("tokenizer-vectors/ggml-vocab-bert-bge.gguf"))) {
            assertThatThrownBy(() -> Tokenizers.fromGguf(bert))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("\"bert\"").hasMessageContaining("llama").hasMessageContaining("gpt2");
        }
        assertThat(GgufValue.ofString("llama").type()).isEqualTo(GgufValueType.STRING);
    }
}
