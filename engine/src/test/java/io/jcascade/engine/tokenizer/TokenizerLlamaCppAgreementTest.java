package io.jcascade.engine.tokenizer;

import static org.assertj.core.api.Assertions.assertThat;

import de.kherud.llama.LlamaModel;
import de.kherud.llama.ModelParameters;
import de.kherud.llama.args.LogFormat;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Holds our tokenizer against llama.cpp itself (via de.kherud's JNI bindings) on real model files.
 *
 * <p>de.kherud's {@code encode} calls llama.cpp's tokenizer with add_special=false and
 * parse_special=true: it never adds BOS, and {@code "<s>"} in the text becomes token 1. So the
 * comparison is against {@code encode(s, false, true)}, and {@code encode(s, true, true)} must be
 * the same ids behind BOS.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TokenizerLlamaCppAgreementTest {

    private static final Pattern PROMPT = Pattern.compile("\"prompt\"\\s*:\\s*\"([^\"]*)\"");

    private final Map<String, LlamaModel> oracles = new HashMap<>();
    private final Map<String, Tokenizer> tokenizers = new HashMap<>();

    @BeforeAll
    void loadModels() {
        LlamaModel.setLogger(LogFormat.TEXT, (level, message) -> { });
        for (String name : List.of("stories260K.gguf", "arith-small.gguf", "llama-2-tiny-random.gguf")) {
            String dir = System.getProperty("jcascade.shared");
            if (dir == null || !Files.isRegularFile(Path.of(dir, "models", name))) {
                continue;
            }
            Path path = Path.of(dir, "models", name);
            oracles.put(name, new LlamaModel(new ModelParameters().setModel(path.toString()).setCtxSize(64)
                    .setThreads(1).setThreadsBatch(1)));
            tokenizers.put(name, TokenizerTestSupport.load(path));
        }
    }

    @AfterAll
    void closeModels() {
        oracles.values().forEach(LlamaModel::close);
    }

    /** The corpus for a model; the arith vocabulary spells only digits and operators. */
    private List<String> corpus(String model) throws IOException {
        if (!model.startsWith("arith")) {
            return TokenizerTestSupport.HARD_STRINGS;
        }
        List<String> corpus = new ArrayList<>(arithPrompts(200));
        // llama.cpp aborts the process on characters an SPM vocab cannot spell and that have no
        // byte token, so only representable strings go to the oracle here.
        corpus.addAll(List.of("", "0", "37+485=", "(1+2)*3=", "10/5=", "-7", "==", "9999*9999=", "1+1=2"));
        return corpus;
    }

    static List<String> arithPrompts(int limit) throws IOException {
        Path dev = TokenizerTestSupport.shared("eval/arith-dev.jsonl");
        List<String> prompts = new ArrayList<>();
        for (String line : Files.readAllLines(dev, StandardCharsets.UTF_8)) {
            Matcher m = PROMPT.matcher(line);
            if (m.find()) {
                prompts.add(m.group(1));
            }
            if (prompts.size() == limit) {
                break;
            }
        }
        return prompts;
    }

    @ParameterizedTest
    @ValueSource(strings = {"stories260K.gguf", "arith-small.gguf", "llama-2-tiny-random.gguf"})
    void encodeMatchesLlamaCpp(String model) throws IOException {
        TokenizerTestSupport.shared("models/" + model);
        LlamaModel oracle = oracles.get(model);
        Tokenizer tok = tokenizers.get(model);
        List<String> failures = new ArrayList<>();
        List<String> corpus = corpus(model);
        for (String s : corpus) {
            int[] expected = oracle.encode(s);
            int[] got = tok.encode(s, false, true);
            if (!Arrays.equals(expected, got)) {
                failures.add("[" + s + "]\n  llama.cpp " + Arrays.toString(expected) + "\n  ours      " + Arrays.toString(got));
            }
            int[] withBos = tok.encode(s, true, true);
            int[] bosThenExpected = IntStream.concat(IntStream.of(tok.bos()), Arrays.stream(expected)).toArray();
            if (!Arrays.equals(withBos, bosThenExpected)) {
                failures.add("[" + s + "] with BOS: " + Arrays.toString(withBos));
            }
        }
        assertThat(corpus).hasSizeGreaterThan(40);
        assertThat(failures).as(model).isEmpty();
    }

    @ParameterizedTest
    @ValueSource(strings = {"stories260K.gguf", "arith-small.gguf", "llama-2-tiny-random.gguf"})
    void bosPolicyFromMetadata(String model) {
        TokenizerTestSupport.shared("models/" + model);
        Tokenizer tok = tokenizers.get(model);
        assertThat(tok.addBos()).isTrue();
        assertThat(tok.bos()).isEqualTo(1);
        assertThat(tok.eos()).isEqualTo(2);
        assertThat(tok.isEndOfGeneration(2)).isTrue();
        assertThat(tok.encode("", true)).containsExactly(1);
        assertThat(tok.encode("", false)).isEmpty();
    }

    @org.junit.jupiter.api.Test
    void arithExampleFromModelCard() {
        TokenizerTestSupport.shared("models/arith-small.gguf");
        Tokenizer tok = tokenizers.get("arith-small.gguf");
        assertThat(tok.encode("37+485=", true)).containsExactly(1, 6, 10, 13, 7, 11, 8, 16);
        assertThat(tok.decode(tok.encode("37+485=", true))).isEqualTo("37+485=");
    }
}
