package io.jcascade.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@link TokenDecoder}: same text as {@link Tokenizer#decode}, never half a character per chunk. */
class TokenizerStreamingDecoderTest {

    private static List<String> stream(Tokenizer tok, int[] ids, boolean startOfText) {
        TokenDecoder dec = new TokenDecoder(tok, startOfText);
        List<String> chunks = new ArrayList<>();
        for (int id : ids) {
            chunks.add(dec.next(id));
        }
        chunks.add(dec.flush());
        return chunks;
    }

    private static void assertWholeCharacters(List<String> chunks) {
        for (String c : chunks) {
            assertThat(c).doesNotContain("\uFFFD");
            for (int i = 0; i < c.length(); i++) {
                char ch = c.charAt(i);
                if (Character.isHighSurrogate(ch)) {
                    assertThat(i + 1 < c.length() && Character.isLowSurrogate(c.charAt(i + 1))).as("split pair in " + c).isTrue();
                    i++;
                } else {
                    assertThat(Character.isLowSurrogate(ch)).isFalse();
                }
            }
        }
    }

    @Test
    void streamingEqualsDecodeOnStories() {
        Tokenizer tok = TokenizerTestSupport.load(TokenizerTestSupport.shared("models/stories260K.gguf"));
        for (String s : TokenizerTestSupport.HARD_STRINGS) {
            int[] ids = tok.encode(s, true);
            List<String> chunks = stream(tok, ids, true);
            assertThat(String.join("", chunks)).as("[%s]", s).isEqualTo(tok.decode(ids));
            assertWholeCharacters(chunks);
        }
    }

    @Test
    void emojiSplitAcrossByteTokensComesOutWhole() {
        Tokenizer tok = TokenizerTestSupport.load(TokenizerTestSupport.shared("models/stories260K.gguf"));
        String s = "hi 🦙🚀 ok 日本";
        int[] ids = tok.encode(s, false);
        // The vocabulary has no emoji pieces, so each emoji is four byte tokens.
        long byteTokens = java.util.Arrays.stream(ids).filter(id -> tok.tokenType(id) == TokenType.BYTE).count();
        assertThat(byteTokens).isGreaterThanOrEqualTo(8);
        TokenDecoder dec = new TokenDecoder(tok, true);
        StringBuilder all = new StringBuilder();
        for (int id : ids) {
            String chunk = dec.next(id);
            assertWholeCharacters(List.of(chunk));
            all.append(chunk);
            if (tok.tokenType(id) == TokenType.BYTE && dec.pendingBytes() > 0) {
                assertThat(chunk).isEmpty();
            }
        }
        assertThat(dec.flush()).isEmpty();
        assertThat(all.toString()).isEqualTo(s);
    }

    @Test
    void idsBeyondTheVocabularyRenderAsNothing() {
        Tokenizer tok = TokenizerTestSupport.load(TokenizerTestSupport.shared("models/stories260K.gguf"));
        TokenDecoder dec = new TokenDecoder(tok);
        assertThat(dec.next(tok.vocabSize())).isEmpty();
        assertThat(dec.next(tok.vocabSize() + 100)).isEmpty();
    }

    @Test
    void continuationKeepsTheLeadingSpace() {
        Tokenizer tok = TokenizerTestSupport.load(TokenizerTestSupport.shared("tokenizer-vectors/ggml-vocab-llama-spm.gguf"));
        int[] ids = {15043, 3186};   // "▁Hello", "▁world"
        assertThat(String.join("", stream(tok, ids, false))).isEqualTo(" Hello world");
        TokenDecoder plain = new TokenDecoder(tok);
        assertThat(plain.next(15043) + plain.next(3186) + plain.flush()).isEqualTo(" Hello world");
        assertThat(String.join("", stream(tok, ids, true))).isEqualTo("Hello world");
    }

    @Test
    void completePrefixHoldsOnlyUnfinishedCharacters() {
        byte[] euro = "€".getBytes(StandardCharsets.UTF_8);          // 3 bytes
        byte[] b = {'a', euro[0], euro[1]};
        assertThat(TokenDecoder.completePrefix(b, 3)).isEqualTo(1);
        assertThat(TokenDecoder.completePrefix(new byte[] {'a', euro[0], euro[1], euro[2]}, 4)).isEqualTo(4);
        assertThat(TokenDecoder.completePrefix(new byte[] {(byte) 0xF0}, 1)).isZero();
        // A stray continuation byte is garbage, not a partial character: let it through.
        assertThat(TokenDecoder.completePrefix(new byte[] {'a', (byte) 0x80}, 2)).isEqualTo(2);
        assertThat(TokenDecoder.completePrefix(new byte[] {(byte) 0xFF}, 1)).isEqualTo(1);
    }

    @Test
    void flushRendersAnUnfinishedTailAsReplacement() {
        Tokenizer tok = TokenizerTestSupport.load(TokenizerTestSupport.shared("models/stories260K.gguf"));
        int[] ids = tok.encode("🦙", false);
        TokenDecoder dec = new TokenDecoder(tok, false);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < ids.length - 1; i++) {
            sb.append(dec.next(ids[i]));
        }
        assertThat(dec.pendingBytes()).isEqualTo(3);
        assertThat(sb.toString()).isEqualTo(" ");
        assertThat(dec.flush()).isEqualTo("\uFFFD");
    }
}
