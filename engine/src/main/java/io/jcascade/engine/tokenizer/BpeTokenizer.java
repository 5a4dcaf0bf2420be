package io.jcascade.engine.tokenizer;

import io.jcascade.gguf.GgufFile;
import io.jcascade.gguf.GgufValue;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.BitSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.PriorityQueue;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The byte-level BPE tokenizer of GPT-2-style GGUF files ({@code tokenizer.ggml.model = "gpt2"}:
 * Llama 3, GPT-2, DeepSeek, Falcon, MPT, StarCoder, Qwen, ...), reproducing llama.cpp's
 * {@code llm_tokenizer_bpe} id for id.
 *
 * <p>Encoding: special tokens are cut out first (see {@link Tokenizer#encode(String, boolean, boolean)}),
 * the rest is split into words by the pre-tokenizer that {@code tokenizer.ggml.pre} names
 * ({@link BpePreTokenizer}), each word's UTF-8 bytes are written as GPT-2's byte characters
 * ({@code " "} is {@code "Ġ"}), and within a word adjacent symbols are merged lowest merge rank
 * first (leftmost on ties), the rank being the merge's index in {@code tokenizer.ggml.merges}.
 *
 * <pre>{@code
 * try (GgufFile gguf = GgufFile.open(Path.of("Meta-Llama-3-8B-Instruct.Q4_0.gguf"))) {
 *     Tokenizer tok = Tokenizers.fromGguf(gguf);       // a BpeTokenizer, pre-tokenizer "llama-bpe"
 *     tok.encode("Hello world", true);                  // [128000, 9906, 1917]
 *     tok.encode("<|eot_id|>", false, true);            // [128009]
 * }
 * }</pre>
 */
public final class BpeTokenizer implements Tokenizer {

    /**
     * Special ids and flags; -1 means "none".
     *
     * @param bos beginning of sequence
     * @param eos end of sequence
     * @param eot end of turn, or -1 to look for a conventional one ({@code <|eot_id|>}, {@code <|im_end|>}, ...)
     * @param eom end of message (tool calls), or -1 to look for {@code <|eom_id|>}
     * @param addBos whether {@code encode(..., addSpecial=true, ...)} prepends BOS
     * @param addEos whether {@code encode(..., addSpecial=true, ...)} appends EOS
     */
    public record Options(int bos, int eos, int eot, int eom, boolean addBos, boolean addEos) {
    }

    /** Pieces llama.cpp takes as end of turn when the file names none (llama-vocab.cpp). */
    private static final List<String> EOT_TEXTS = List.of("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
            "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>", "<end_of_utterance>");
    private static final List<String> EOG_TEXTS = List.of("<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>",
            "<|call|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<end_of_utterance>");

    /**
     * Words cached with their ids. Natural text repeats a small set of words, so caching skips most
     * merge loops; the bound keeps an adversarial or huge input from growing it without limit.
     */
    private static final int WORD_CACHE_LIMIT = 1 << 16;
    private static final int CACHEABLE_WORD_LENGTH = 64;

    private final String[] texts;
    private final TokenType[] types;
    private final Map<String, Integer> idByText;
    /** Merge rank by {@code left + " " + right}; byte-level symbols never contain a plain space. */
    private final Map<String, Integer> rankByPair;
    private final byte[][] pieces;
    private final BpePreTokenizer preTokenizer;
    private final SpecialTokenSplitter specials;
    private final BitSet endOfGeneration = new BitSet();
    private final Map<String, int[]> wordCache = new ConcurrentHashMap<>();
    private final int bos;
    private final int eos;
    private final int eot;
    private final boolean addBos;
    private final boolean addEos;

    /**
     * Builds a tokenizer from vocabulary arrays.
     *
     * @param tokens the pieces in GPT-2 byte characters, indexed by id
     * @param tokenTypes GGUF token type codes per id; null for all {@link TokenType#NORMAL}
     * @param merges {@code "left right"} pairs, highest priority first
     */
    public BpeTokenizer(String[] tokens, int[] tokenTypes, String[] merges, BpePreTokenizer preTokenizer,
            Options options) {
        int n = tokens.length;
        if (tokenTypes != null && tokenTypes.length != n) {
            throw new IllegalArgumentException("tokens and token types differ in length");
        }
        this.texts = tokens.clone();
        this.preTokenizer = Objects.requireNonNull(preTokenizer);
        this.types = new TokenType[n];
        this.idByText = HashMap.newHashMap(n);
        for (int i = 0; i < n; i++) {
            types[i] = tokenTypes != null ? TokenType.fromCode(tokenTypes[i]) : TokenType.NORMAL;
            if (texts[i].isEmpty()) {
                texts[i] = "[EMPTY_" + i + "]"; // as llama.cpp, so an empty piece never matches
            }
            idByText.put(texts[i], i); // a duplicated piece resolves to the last id, as in llama.cpp
        }
        this.rankByPair = HashMap.newHashMap(merges.length);
        for (int i = 0; i < merges.length; i++) {
            // Split at the first space after the first character, so a merge of a literal space is kept.
            int space = merges[i].indexOf(' ', 1);
            if (space > 0) {
                rankByPair.putIfAbsent(merges[i], i);
            }
        }
        this.bos = validId(options.bos(), n);
        this.eos = validId(options.eos(), n);
        this.addBos = options.addBos();
        this.addEos = options.addEos();

        int eotId = validId(options.eot(), n);
        if (eotId < 0) {
            eotId = firstPresent(EOT_TEXTS);
            forceControl(eotId);
        }
        this.eot = eotId;
        int eomId = validId(options.eom(), n);
        if (eomId < 0) {
            eomId = firstPresent(List.of("<|eom_id|>"));
            forceControl(eomId);
        }
        for (int id : new int[] {eos, eot, eomId}) {
            if (id >= 0) {
                endOfGeneration.set(id);
            }
        }
        for (String s : EOG_TEXTS) {
            Integer id = idByText.get(s);
            if (id != null && types[id] == TokenType.CONTROL) {
                endOfGeneration.set(id);
            }
        }
        this.pieces = new byte[n][];
        for (int i = 0; i < n; i++) {
            pieces[i] = renderPiece(i);
        }
        this.specials = new SpecialTokenSplitter(texts, types);
    }

    /**
     * Reads the vocabulary from GGUF metadata ({@code tokenizer.ggml.tokens}, {@code token_type},
     * {@code merges}, {@code pre}, the special ids and {@code add_bos_token}/{@code add_eos_token}).
     *
     * @throws IllegalArgumentException if the file is not a {@code gpt2} tokenizer, has no tokens or
     *         merges, or names a pre-tokenizer that is not supported
     */
    public static BpeTokenizer fromGguf(GgufFile gguf) {
        String model = gguf.get("tokenizer.ggml.model").map(GgufValue::asString).orElse("");
        if (!model.equals("gpt2")) {
            throw new IllegalArgumentException("tokenizer.ggml.model is \"" + model + "\", not the byte-level BPE \"gpt2\"");
        }
        String[] tokens = gguf.get("tokenizer.ggml.tokens").map(GgufValue::asStringArray)
                .orElseThrow(() -> new IllegalArgumentException("GGUF has no tokenizer.ggml.tokens"));
        String[] merges = gguf.get("tokenizer.ggml.merges").map(GgufValue::asStringArray)
                .orElseThrow(() -> new IllegalArgumentException("GGUF has no tokenizer.ggml.merges"));
        int[] types = gguf.get("tokenizer.ggml.token_type").map(GgufValue::asIntArray).orElse(null);
        BpePreTokenizer pre = BpePreTokenizer.forName(gguf.get("tokenizer.ggml.pre").map(GgufValue::asString).orElse(null));
        // llama.cpp's BPE defaults: bos = eos = 11 unless the file says otherwise.
        Options options = new Options(
                intKey(gguf, "tokenizer.ggml.bos_token_id", 11),
                intKey(gguf, "tokenizer.ggml.eos_token_id", 11),
                intKey(gguf, "tokenizer.ggml.eot_token_id", -1),
                intKey(gguf, "tokenizer.ggml.eom_token_id", -1),
                gguf.get("tokenizer.ggml.add_bos_token").map(GgufValue::asBool).orElse(pre.addBosByDefault()),
                gguf.get("tokenizer.ggml.add_eos_token").map(GgufValue::asBool).orElse(false));
        return new BpeTokenizer(tokens, types, merges, pre, options);
    }

    private static int intKey(GgufFile gguf, String key, int fallback) {
        return gguf.get(key).map(v -> (int) v.asLong()).orElse(fallback);
    }

    private static int validId(int id, int n) {
        return id >= 0 && id < n ? id : -1;
    }

    /** llama.cpp makes a token it recognised as end of turn by its text CONTROL, so it never renders. */
    private void forceControl(int id) {
        if (id >= 0) {
            types[id] = TokenType.CONTROL;
        }
    }

    private int firstPresent(List<String> candidates) {
        for (String s : candidates) {
            Integer id = idByText.get(s);
            if (id != null) {
                return id;
            }
        }
        return -1;
    }

    private byte[] renderPiece(int id) {
        return switch (types[id]) {
            case NORMAL -> ByteLevel.decode(texts[id]);
            // Added tokens are stored as plain text, not in byte characters.
            case USER_DEFINED -> texts[id].getBytes(StandardCharsets.UTF_8);
            default -> new byte[0];
        };
    }

    // ---------------------------------------------------------------- encoding

    @Override
    public int[] encode(String text, boolean addSpecial, boolean parseSpecial) {
        Objects.requireNonNull(text);
        IdBuffer out = new IdBuffer(Math.max(8, text.length() / 3));
        if (addSpecial && addBos) {
            if (bos < 0) {
                throw new IllegalStateException("the vocabulary asks for BOS but has no BOS token");
            }
            out.add(bos);
        }
        for (SpecialTokenSplitter.Fragment f : specials.split(text, parseSpecial)) {
            if (f.token() >= 0) {
                out.add(f.token());
            } else {
                encodeText(text.substring(f.start(), f.end()), out);
            }
        }
        if (addSpecial && addEos) {
            if (eos < 0) {
                throw new IllegalStateException("the vocabulary asks for EOS but has no EOS token");
            }
            out.add(eos);
        }
        return out.toArray();
    }

    private void encodeText(String text, IdBuffer out) {
        int[] bounds = preTokenizer.splitOffsets(text);
        for (int i = 0; i + 1 < bounds.length; i++) {
            String word = text.substring(bounds[i], bounds[i + 1]);
            int[] cached = wordCache.get(word);
            if (cached == null) {
                byte[] utf8 = word.getBytes(StandardCharsets.UTF_8);
                cached = encodeWord(ByteLevel.encode(utf8, 0, utf8.length));
                if (word.length() <= CACHEABLE_WORD_LENGTH) {
                    if (wordCache.size() >= WORD_CACHE_LIMIT) {
                        wordCache.clear();
                    }
                    wordCache.put(word, cached);
                }
            }
            out.addAll(cached);
        }
    }

    /** A candidate merge of two adjacent symbols; {@code length} tells that either side changed since. */
    private record Bigram(int left, int right, int rank, int length) {
    }

    /**
     * The BPE merge loop on one word in byte characters (one char per byte). Symbols form a linked
     * list; a priority queue holds candidate merges, lowest rank then leftmost first, and stale
     * entries are skipped, which keeps a word O(n log n).
     */
    int[] encodeWord(String word) {
        if (preTokenizer.ignoreMerges()) {
            Integer whole = idByText.get(word);
            if (whole != null) {
                return new int[] {whole};
            }
        }
        int n = word.length();
        int[] len = new int[n];
        int[] prev = new int[n];
        int[] next = new int[n];
        for (int i = 0; i < n; i++) {
            len[i] = 1;
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        PriorityQueue<Bigram> queue = new PriorityQueue<>(Math.max(1, n),
                (a, b) -> a.rank != b.rank ? Integer.compare(a.rank, b.rank) : Integer.compare(a.left, b.left));
        for (int i = 1; i < n; i++) {
            offerBigram(word, len, i - 1, i, queue);
        }
        while (!queue.isEmpty()) {
            Bigram b = queue.poll();
            int l = b.left;
            int r = b.right;
            if (len[l] == 0 || len[r] == 0 || len[l] + len[r] != b.length) {
                continue;
            }
            len[l] += len[r];
            len[r] = 0;
            next[l] = next[r];
            if (next[r] >= 0) {
                prev[next[r]] = l;
            }
            offerBigram(word, len, prev[l], l, queue);
            offerBigram(word, len, l, next[l], queue);
        }
        IdBuffer ids = new IdBuffer(n);
        for (int i = 0; i >= 0 && n > 0; i = next[i]) {
            String symbol = word.substring(i, i + len[i]);
            Integer id = idByText.get(symbol);
            if (id != null) {
                ids.add(id);
            } else {
                // llama.cpp's fallback: each UTF-8 byte of the symbol looked up as a one-byte string,
                // which only an ASCII byte can match.
                for (byte c : symbol.getBytes(StandardCharsets.UTF_8)) {
                    Integer single = c >= 0 ? idByText.get(String.valueOf((char) c)) : null;
                    if (single != null) {
                        ids.add(single);
                    }
                }
            }
        }
        return ids.toArray();
    }

    private void offerBigram(String word, int[] len, int left, int right, PriorityQueue<Bigram> queue) {
        if (left < 0 || right < 0) {
            return;
        }
        String key = word.substring(left, left + len[left]) + ' ' + word.substring(right, right + len[right]);
        Integer rank = rankByPair.get(key);
        if (rank != null) {
            queue.add(new Bigram(left, right, rank, len[left] + len[right]));
        }
    }

    // ---------------------------------------------------------------- decoding

    @Override
    public byte[] tokenBytes(int id) {
        return pieces[Objects.checkIndex(id, pieces.length)];
    }

    @Override
    public String decode(int[] ids) {
        ByteArrayOutputStream buf = new ByteArrayOutputStream(ids.length * 4);
        for (int id : ids) {
            buf.writeBytes(tokenBytes(id));
        }
        return buf.toString(StandardCharsets.UTF_8);
    }

    // ---------------------------------------------------------------- accessors

    @Override
    public int vocabSize() {
        return texts.length;
    }

    @Override
    public int bos() {
        return bos;
    }

    @Override
    public int eos() {
        return eos;
    }

    @Override
    public int eot() {
        return eot;
    }

    @Override
    public boolean isEndOfGeneration(int id) {
        return id >= 0 && endOfGeneration.get(id);
    }

    @Override
    public String tokenText(int id) {
        return texts[Objects.checkIndex(id, texts.length)];
    }

    @Override
    public TokenType tokenType(int id) {
        return types[Objects.checkIndex(id, types.length)];
    }

    @Override
    public boolean addBos() {
        return addBos;
    }

    /** Whether {@code encode(..., addSpecial=true, ...)} appends EOS. */
    public boolean addEos() {
        return addEos;
    }

    /** The pre-tokenizer that splits text into words. */
    public BpePreTokenizer preTokenizer() {
        return preTokenizer;
    }

    /** The id of the token whose piece is exactly {@code text} (in byte characters for normal tokens), or -1. */
    public int tokenId(String text) {
        Integer id = idByText.get(text);
        return id != null ? id : -1;
    }

    /** A growable int array, so encoding long texts does not box every id. */
    private static final class IdBuffer {
        private int[] a;
        private int size;

        IdBuffer(int capacity) {
            a = new int[Math.max(1, capacity)];
        }

        void add(int v) {
            if (size == a.length) {
                a = Arrays.copyOf(a, a.length * 2);
            }
            a[size++] = v;
        }

        void addAll(int[] v) {
            if (size + v.length > a.length) {
                a = Arrays.copyOf(a, Math.max(a.length * 2, size + v.length));
            }
            System.arraycopy(v, 0, a, size, v.length);
            size += v.length;
        }

        int[] toArray() {
            return Arrays.copyOf(a, size);
        }
    }
}
