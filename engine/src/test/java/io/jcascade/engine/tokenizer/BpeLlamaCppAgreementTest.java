package io.jcascade.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import de.kherud.llama.LlamaModel;
import de.kherud.llama.ModelParameters;
import de.kherud.llama.args.LogFormat;
import io.jcascade.engine.TinyGguf;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * Holds the byte-level BPE tokenizer against llama.cpp itself on the real Llama 3 vocabulary.
 * llama.cpp opens only files with weights, so the test wraps the vocab in a tiny random model
 * ({@link TinyGguf}). de.kherud's {@code encode} is llama.cpp's tokenize with add_special=false and
 * parse_special=true, so it is compared with {@code encode(s, false, true)}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class BpeLlamaCppAgreementTest {

    /** Strings aimed at the Llama 3 pre-tokenizer and its special tokens. */
    static final List<String> LLAMA3_STRINGS = List.of(
            "<|begin_of_text|>Hello", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
            "text<|eot_id|>more", "<|eot_id|><|eot_id|>", "< |eot_id| >", "<|eot_id", "<|reserved_special_token_5|>x",
            "I'm you're we've they'll she'd it's I'M YOU'RE", "don't DON'T 'twas", "1 12 123 1234 12345 123456",
            "3.14159265358979", "١٢٣ ٤٥٦", "x=1;y=22;z=333;", "    four spaces", "\t\ttabs\t", "a\n\n\nb", "a \n b",
            "trailing spaces   ", "\r\n\r\n", "   \n   \n", "🤖🦙👩‍👩‍👧‍👦", "Ω≈ç√∫˜µ≤≥÷", "ℌ𝔢𝔩𝔩𝔬", "ＦＵＬＬＷＩＤＴＨ",
            "Ünïcödé\u0301 combining", "\u200b zero\u200bwidth", "日本語 中文 한국어", "  \u3000ideographic space",
            "if (x) {\n    return y;\n}\n", "```python\nprint('hi')\n```", "https://example.com/a?b=c&d=e#f",
            "$$ \\frac{1}{2} $$", "!!!???...,,,", "…—–“”‘’");

    private LlamaModel oracle;
    private Tokenizer tokenizer;

    @BeforeAll
    void load(@TempDir Path dir) throws Exception {
        Path vocab = TokenizerTestSupport.shared("tokenizer-vectors/ggml-vocab-llama-bpe.gguf");
        Path model = TinyGguf.withVocabOf(vocab, dir.resolve("tiny-llama3.gguf"));
        LlamaModel.setLogger(LogFormat.TEXT, (level, message) -> { });
        oracle = new LlamaModel(new ModelParameters().setModel(model.toString()).setCtxSize(64)
                .setThreads(1).setThreadsBatch(1).setGpuLayers(0));
        tokenizer = TokenizerTestSupport.load(model);
    }

    @AfterAll
    void close() {
        if (oracle != null) {
            oracle.close();
        }
    }

    @Test
    void hardStringsTokenizeAsLlamaCpp() {
        List<String> corpus = new ArrayList<>(TokenizerTestSupport.HARD_STRINGS);
        corpus.addAll(LLAMA3_STRINGS);
        List<String> failures = new ArrayList<>();
        for (String s : corpus) {
            int[] expected = oracle.encode(s);
            int[] got = tokenizer.encode(s, false, true);
            if (!Arrays.equals(expected, got)) {
                failures.add(s.replace("\n", "\\n") + "\n  llama.cpp " + Arrays.toString(expected)
                        + "\n  jcascade  " + Arrays.toString(got));
            }
        }
        assertThat(failures).as("strings tokenized differently from llama.cpp (of %d)", corpus.size()).isEmpty();
    }

    @Test
    void addSpecialPutsBosInFront() {
        int[] plain = tokenizer.encode("Hello world", false, true);
        int[] withBos = tokenizer.encode("Hello world", true, true);
        assertThat(tokenizer.addBos()).isTrue();
        assertThat(withBos[0]).isEqualTo(128000);
        assertThat(Arrays.copyOfRange(withBos, 1, withBos.length)).containsExactly(plain);
        assertThat(plain).containsExactly(9906, 1917);
    }

    @Test
    void specialTokensStayTextUnlessParsed() {
        assertThat(tokenizer.encode("<|eot_id|>", false, true)).containsExactly(128009);
        assertThat(tokenizer.encode("<|eot_id|>", false, false)).hasSizeGreaterThan(1).doesNotContain(128009);
        assertThat(tokenizer.isEndOfGeneration(128009)).isTrue();
        assertThat(tokenizer.isEndOfGeneration(128001)).isTrue();
        assertThat(tokenizer.eot()).isEqualTo(128009);
    }
}
