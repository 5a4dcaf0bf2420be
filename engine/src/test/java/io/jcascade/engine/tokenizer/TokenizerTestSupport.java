package io.jcascade.engine.tokenizer;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.jcascade.gguf.GgufFile;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Locating shared test data and loading tokenizers from it. */
final class TokenizerTestSupport {

    static final String VECTOR_SEPARATOR = "\n__ggml_vocab_test__\n";

    private TokenizerTestSupport() {
    }

    /** A file under the shared data directory; skips the calling test when it is not there. */
    static Path shared(String relative) {
        String dir = System.getProperty("jcascade.shared");
        assumeTrue(dir != null, "system property jcascade.shared is not set");
        Path p = Path.of(dir).resolve(relative);
        assumeTrue(Files.isRegularFile(p), "missing shared file " + p);
        return p;
    }

    static Tokenizer load(Path gguf) {
        try (GgufFile f = GgufFile.open(gguf)) {
            return Tokenizers.fromGguf(f);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** One test string with the ids llama.cpp expects for it (no BOS, no special parsing). */
    record Vector(int index, String text, int[] expected) {
        @Override
        public String toString() {
            return "#" + index + " " + text.replace("\n", "\\n").replace("\t", "\\t");
        }
    }

    /** Reads llama.cpp's {@code .inp}/{@code .out} pair for a vocab file. */
    static List<Vector> vectors(Path vocab) throws IOException {
        String inp = Files.readString(Path.of(vocab + ".inp"), StandardCharsets.UTF_8);
        List<String> outLines = Files.readAllLines(Path.of(vocab + ".out"), StandardCharsets.UTF_8);
        List<String> texts = new ArrayList<>();
        int pos = 0;
        while (pos < inp.length()) {
            int end = inp.indexOf(VECTOR_SEPARATOR, pos);
            if (end < 0) {
                throw new IllegalStateException("unterminated test string at " + pos);
            }
            texts.add(inp.substring(pos, end));
            pos = end + VECTOR_SEPARATOR.length();
        }
        if (texts.size() != outLines.size()) {
            throw new IllegalStateException(texts.size() + " inputs but " + outLines.size() + " outputs");
        }
        List<Vector> result = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            String line = outLines.get(i).trim();
            int[] ids = line.isEmpty() ? new int[0] : Arrays.stream(line.split("\\s+")).mapToInt(Integer::parseInt).toArray();
            result.add(new Vector(i, texts.get(i), ids));
        }
        return result;
    }

    /** Strings that stress whitespace handling, scripts and byte fallback. */
    static final List<String> HARD_STRINGS = List.of(
            "", " ", "  ", "   ", "\t", "\n", "\n\n", " \n ", "\t\t x", "a\tb\nc",
            "Hello world", " Hello world", "Hello world ", "  leading and trailing  ",
            "Once upon a time, there was a little girl named Lily.",
            "multiple     spaces    inside", "line one\nline two\r\nline three",
            "0123456789", "3.14159 2,718 1e-10 -42 +7", "37+485=", "12*34=",
            "public static void main(String[] args) { System.out.println(\"hi\"); }",
            "def f(x):\n    return x ** 2  # square\n",
            "<html><body class=\"x\">&amp;</body></html>",
            "🦙🚀😁👍🏽", "😶‍🌫️ zero width joiner", "emoji at end 🎉",
            "日本語のテキスト", "我想在apple工作", "한국어 텍스트",
            "Ünïcödé àccénts çà et là", "Cửa Việt", "naïve café résumé",
            "нещо на Български", "Ελληνικά", "עברית", "العربية", "हिन्दी",
            "mixed: abc АБВ 中文 🙂 123",
            "'''\"\"\"```...!!!???", "~!@#$%^&*()_+{}|:<>?`-=[]\\;',./",
            "<s> not special </s>", "▁already▁escaped", "\u00a0non-breaking\u2009thin",
            "a".repeat(300), "ab ".repeat(200));
}
