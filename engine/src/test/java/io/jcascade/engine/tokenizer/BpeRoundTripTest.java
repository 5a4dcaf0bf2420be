package io.jcascade.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** Decoding, streaming and the pre-tokenizers of the byte-level BPE tokenizer on the Llama 3 vocab. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class BpeRoundTripTest {

    private Tokenizer llama3;

    @BeforeAll
    void load() {
        llama3 = TokenizerTestSupport.load(TokenizerTestSupport.shared("tokenizer-vectors/ggml-vocab-llama-bpe.gguf"));
    }

    private List<String> corpus() {
        List<String> corpus = new ArrayList<>(TokenizerTestSupport.HARD_STRINGS);
        corpus.addAll(BpeLlamaCppAgreementTest.LLAMA3_STRINGS);
        return corpus;
    }

    @Test
    void decodeGivesBackTheText() {
        for (String s : corpus()) {
            assertThat(llama3.decode(llama3.encode(s, false))).as(s).isEqualTo(s);
            // BOS renders as nothing, so it does not change the text either.
            assertThat(llama3.decode(llama3.encode(s, true))).as(s).isEqualTo(s);
        }
    }

    @Test
    void parsedSpecialTokensRenderAsNothing() {
        int[] ids = llama3.encode("<|begin_of_text|>Hi<|eot_id|>", false, true);
        assertThat(ids).containsExactly(128000, 13347, 128009);
        assertThat(llama3.decode(ids)).isEqualTo("Hi");
        assertThat(llama3.tokenType(128009)).isEqualTo(TokenType.CONTROL);
    }

    @Test
    void streamingDecoderEqualsDecodeAndNeverSplitsCharacters() {
        for (String s : corpus()) {
            int[] ids = llama3.encode(s, true);
            TokenDecoder dec = new TokenDecoder(llama3, true);
            StringBuilder all = new StringBuilder();
            for (int id : ids) {
                String chunk = dec.next(id);
                assertThat(chunk).as(s).doesNotContain("\uFFFD");
                if (!chunk.isEmpty()) {
                    assertThat(Character.isHighSurrogate(chunk.charAt(chunk.length() - 1))).isFalse();
                }
                all.append(chunk);
            }
            all.append(dec.flush());
            assertThat(all.toString()).as(s).isEqualTo(s);
        }
    }

    @Test
    void emojiSpreadOverTokensStreamsWhole() {
        int[] ids = llama3.encode("🦙", false);
        // Llama 3 has no single token for the llama emoji: its four bytes come in pieces.
        assertThat(ids.length).isGreaterThan(1);
        TokenDecoder dec = new TokenDecoder(llama3);
        assertThat(dec.next(ids[0])).isEmpty();
        assertThat(dec.pendingBytes()).isPositive();
        StringBuilder rest = new StringBuilder();
        for (int i = 1; i < ids.length; i++) {
            rest.append(dec.next(ids[i]));
        }
        assertThat(rest.toString()).isEqualTo("🦙");
    }

    @Test
    void byteCharactersAreGpt2s() {
        assertThat(ByteLevel.encode(" \n\t!ÿ".getBytes(StandardCharsets.ISO_8859_1), 0, 5)).isEqualTo("ĠĊĉ!ÿ");
        for (int b = 0; b < 256; b++) {
            assertThat(ByteLevel.decode(String.valueOf(ByteLevel.charOf(b)))).containsExactly((byte) b);
        }
    }

    @Test
    void llama3SplitsDigitsInThreesAndKeepsContractions() {
        BpePreTokenizer p = BpePreTokenizer.forName("llama-bpe");
        assertThat(p.split("I'm 12345 ok!!\n\n  x")).containsExactly("I", "'m", " ", "123", "45", " ok", "!!\n\n",
                " ", " x");
        assertThat(BpePreTokenizer.forName("gpt-2").split("Hello  world 12345")).containsExactly("Hello", " ",
                " world", " 12345");
        assertThat(BpePreTokenizer.forName("falcon").split("x 1234567")).containsExactly("x", " ", "123", "456", "7");
    }

    @Test
    void splittingNeverLosesText() {
        for (String name : BpePreTokenizer.supportedNames()) {
            BpePreTokenizer p = BpePreTokenizer.forName(name);
            for (String s : corpus()) {
                assertThat(String.join("", p.split(s))).as(name + " " + s).isEqualTo(s);
            }
        }
    }

    @Test
    void unknownPreTokenizerNamesTheSupportedOnes() {
        assertThatThrownBy(() -> BpePreTokenizer.forName("tekken"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("\"tekken\"").hasMessageContaining("llama-bpe").hasMessageContaining("gpt-2");
    }

    @Test
    void longInputIsFast() {
        String text = String.join(" ", corpus()).repeat(50) + "x".repeat(20_000) + " ".repeat(20_000);
        long start = System.nanoTime();
        int[] ids = llama3.encode(text, false);
        long ms = (System.nanoTime() - start) / 1_000_000;
        assertThat(llama3.decode(ids)).isEqualTo(text);
        assertThat(ms).as("ms to encode %d chars", text.length()).isLessThan(5_000);
    }
}
