package io.jcascade.engine.tokenizer;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The pre-tokenizers that GGUF's {@code tokenizer.ggml.pre} names: regular expressions that cut
 * text into words before byte-level BPE merges within each word, as llama.cpp's
 * {@code llm_tokenizer_bpe} does.
 *
 * <p>A pre-tokenizer is a list of expressions applied one after another. Each expression is run
 * over every piece the previous ones produced, on its own (lookaheads and {@code \z} stop at the
 * piece's end), and both its matches and the text between them become pieces. So
 * {@code "[0-9][0-9][0-9]"} after {@code "\p{N}+"} cuts digit runs into threes from the left.
 *
 * <p>The expressions follow llama.cpp's (which follow each model's {@code tokenizer.json}), with
 * two adjustments so Java's engine behaves as llama.cpp's: {@code \s} is spelled out as the
 * Unicode White_Space set that llama.cpp uses (Java's {@code \s} is ASCII only), and {@code $}
 * becomes {@code \z} (Java's {@code $} also matches before a final newline).
 *
 * <pre>{@code
 * BpePreTokenizer.forName("llama-bpe").split("Hello world!!")   // ["Hello", " world", "!!"]
 * }</pre>
 */
public enum BpePreTokenizer {

    /** GPT-2's expression behind runs of punctuation, digits and threes of ASCII digits. */
    DEFAULT(false, false, "[\\p{P}\\$\\+<=>\\^~\\|]+", Expr.GPT2, "\\p{N}+", "[0-9][0-9][0-9]"),
    /** Llama 3 (and Falcon 3, Pixtral, ...): digits in groups of up to three. */
    LLAMA3(true, true, Expr.LLAMA3),
    /** DeepSeek LLM: explicit letter ranges, CJK runs, whole digit runs. */
    DEEPSEEK_LLM(false, false, "[\\r\\n]", Expr.DEEPSEEK_LETTERS,
            "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3001}-\\x{3002}]+", "\\s+\\z", Expr.CJK, "\\p{N}+"),
    /** DeepSeek Coder: single digits. */
    DEEPSEEK_CODER(false, false, "[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", Expr.CJK, "\\p{N}"),
    /** Falcon: punctuation runs, then GPT-2, then threes of ASCII digits. */
    FALCON(false, false, "[\\p{P}\\$\\+<=>\\^~\\|`]+", Expr.GPT2, "[0-9][0-9][0-9]"),
    /** GPT-2 itself (also MPT, OLMo, Jais, Phi-2). */
    GPT2(false, false, Expr.GPT2),
    /** StarCoder, Refact, Command-R, SmolLM, CodeShell, EXAONE, Minerva: single digits, then GPT-2. */
    STARCODER(false, false, "\\p{N}", Expr.GPT2),
    /** Qwen 2 (and StableLM 2): Llama 3's expression with single digits. */
    QWEN2(false, false, Expr.QWEN2);

    /** {@code tokenizer.ggml.pre} values, as llama.cpp maps them (llama-vocab.cpp). */
    private static final Map<String, BpePreTokenizer> BY_NAME;

    static {
        Map<String, BpePreTokenizer> m = new LinkedHashMap<>();
        m.put("default", DEFAULT);
        for (String s : List.of("llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0",
                "lfm2")) {
            m.put(s, LLAMA3);
        }
        m.put("deepseek-llm", DEEPSEEK_LLM);
        m.put("deepseek-coder", DEEPSEEK_CODER);
        m.put("falcon", FALCON);
        for (String s : List.of("gpt-2", "mpt", "phi-2", "olmo", "jais", "jina-es", "jina-de", "jina-v1-en",
                "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe", "gigachat", "exaone4", "trillion")) {
            m.put(s, GPT2);
        }
        for (String s : List.of("starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b")) {
            m.put(s, STARCODER);
        }
        for (String s : List.of("qwen2", "deepseek-r1-qwen", "stablelm2", "megrez", "hunyuan")) {
            m.put(s, QWEN2);
        }
        BY_NAME = Collections.unmodifiableMap(m);
    }

    private final boolean ignoreMerges;
    private final boolean addBosByDefault;
    private final Pattern[] patterns;

    BpePreTokenizer(boolean ignoreMerges, boolean addBosByDefault, String... expressions) {
        this.ignoreMerges = ignoreMerges;
        this.addBosByDefault = addBosByDefault;
        this.patterns = new Pattern[expressions.length];
        for (int i = 0; i < expressions.length; i++) {
            patterns[i] = Pattern.compile(Expr.withUnicodeSpace(expressions[i]));
        }
    }

    /**
     * The pre-tokenizer for a {@code tokenizer.ggml.pre} value; a missing value means
     * {@code "default"}, as in llama.cpp.
     *
     * @throws IllegalArgumentException for a name not in {@link #supportedNames()}
     */
    public static BpePreTokenizer forName(String pre) {
        if (pre == null || pre.isEmpty()) {
            return DEFAULT;
        }
        BpePreTokenizer p = BY_NAME.get(pre);
        if (p == null) {
            throw new IllegalArgumentException("unsupported tokenizer.ggml.pre \"" + pre + "\"; supported: "
                    + String.join(", ", BY_NAME.keySet()));
        }
        return p;
    }

    /** Every {@code tokenizer.ggml.pre} value {@link #forName} accepts. */
    public static Set<String> supportedNames() {
        return BY_NAME.keySet();
    }

    /**
     * Whether a word that is itself a vocabulary token is taken whole instead of being merged up
     * (Llama 3's tokenizer.json sets {@code ignore_merges}; merges would not always rebuild it).
     */
    public boolean ignoreMerges() {
        return ignoreMerges;
    }

    /** llama.cpp's add-BOS default for this kind, used when the file has no {@code add_bos_token}. */
    public boolean addBosByDefault() {
        return addBosByDefault;
    }

    /** Cuts {@code text} into words; concatenated they give back {@code text}. */
    public List<String> split(String text) {
        List<String> words = new ArrayList<>();
        int[] bounds = splitOffsets(text);
        for (int i = 0; i + 1 < bounds.length; i++) {
            words.add(text.substring(bounds[i], bounds[i + 1]));
        }
        return words;
    }

    /** Word boundaries as char offsets: 0, end of word 1, end of word 2, ..., text.length(). */
    int[] splitOffsets(String text) {
        if (text.isEmpty()) {
            return new int[] {0};
        }
        IntList bounds = new IntList();
        bounds.add(0);
        bounds.add(text.length());
        Matcher m = patterns[0].matcher(text);
        for (Pattern p : patterns) {
            m.usePattern(p);
            IntList next = new IntList();
            next.add(0);
            for (int i = 0; i + 1 < bounds.size; i++) {
                int start = bounds.a[i];
                int end = bounds.a[i + 1];
                m.region(start, end);
                while (m.find()) {
                    if (m.start() > next.last()) {
                        next.add(m.start());
                    }
                    if (m.end() > next.last()) {
                        next.add(m.end());
                    }
                }
                if (end > next.last()) {
                    next.add(end);
                }
            }
            bounds = next;
        }
        return java.util.Arrays.copyOf(bounds.a, bounds.size);
    }

    private static final class IntList {
        int[] a = new int[16];
        int size;

        void add(int v) {
            if (size == a.length) {
                a = java.util.Arrays.copyOf(a, size * 2);
            }
            a[size++] = v;
        }

        int last() {
            return a[size - 1];
        }
    }

    /** Expressions shared by several pre-tokenizers. */
    private static final class Expr {
        /** llama.cpp's whitespace set: put in place of \s (and, complemented, \S) when a pattern is compiled. */
        static final String WS_CHARS = "\\t\\n\\x0B\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
                + "\\x{202F}\\x{205F}\\x{3000}";

        static final String GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

        // tokenizer.json has (?i:'s|...); spelled case by case as llama.cpp does.
        static final String LLAMA3 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
                + "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

        static final String QWEN2 = LLAMA3.replace("\\p{N}{1,3}", "\\p{N}");

        static final String CJK = "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+";

        /** DeepSeek LLM's letters: explicit ranges rather than \p{L}, as in its tokenizer.json. */
        static final String DEEPSEEK_LETTERS = "\\s?[A-Za-z"
                + "\\x{00B5}\\x{00C0}-\\x{00D6}\\x{00D8}-\\x{00F6}\\x{00F8}-\\x{01BA}\\x{01BC}-\\x{01BF}"
                + "\\x{01C4}-\\x{0293}\\x{0295}-\\x{02AF}\\x{0370}-\\x{0373}\\x{0376}\\x{0377}\\x{037B}-\\x{037D}"
                + "\\x{037F}\\x{0386}\\x{0388}-\\x{038A}\\x{038C}\\x{038E}-\\x{03A1}\\x{03A3}-\\x{03F5}"
                + "\\x{03F7}-\\x{0481}\\x{048A}-\\x{052F}\\x{0531}-\\x{0556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}"
                + "\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}"
                + "\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}"
                + "\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}"
                + "\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}"
                + "\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}"
                + "\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}"
                + "\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}"
                + "\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}"
                + "\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}"
                + "\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}"
                + "\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}"
                + "\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}"
                + "]+";

        /**
         * Replaces {@code \s} and {@code \S} with the explicit whitespace set, inside and outside
         * character classes.
         */
        static String withUnicodeSpace(String expr) {
            StringBuilder out = new StringBuilder(expr.length() + 64);
            boolean inClass = false;
            for (int i = 0; i < expr.length(); i++) {
                char c = expr.charAt(i);
                if (c == '\\' && i + 1 < expr.length()) {
                    char n = expr.charAt(i + 1);
                    if (n == 's') {
                        out.append(inClass ? WS_CHARS : "[" + WS_CHARS + "]");
                    } else if (n == 'S') {
                        if (inClass) {
                            throw new IllegalStateException("\\S inside a class: " + expr);
                        }
                        out.append("[^").append(WS_CHARS).append(']');
                    } else {
                        out.append(c).append(n);
                    }
                    i++;
                    continue;
                }
                if (c == '[') {
                    inClass = true;
                } else if (c == ']') {
                    inClass = false;
                }
                out.append(c);
            }
            return out.toString();
        }
    }
}
