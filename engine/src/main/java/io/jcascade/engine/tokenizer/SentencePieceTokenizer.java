package io.jcascade.engine.tokenizer;

import io.jcascade.gguf.GgufFile;
import io.jcascade.gguf.GgufValue;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.PriorityQueue;

/**
 * The SentencePiece tokenizer of Llama-family GGUF files ({@code tokenizer.ggml.model = "llama"}),
 * reproducing llama.cpp's {@code llm_tokenizer_spm} id for id.
 *
 * <p>Encoding: control/user-defined tokens are first cut out of the input as whole strings, then
 * each remaining piece of text gets a leading space (the "dummy prefix", when
 * {@code add_space_prefix} and the piece starts the text or follows a special token), spaces become
 * {@code ▁}, the text is split into characters, and adjacent symbols are merged greedily, highest
 * vocabulary score first (leftmost on ties). Symbols that end up outside the vocabulary are spelled
 * with byte tokens {@code <0xXX>}, or with the unknown token when the vocabulary has none.
 *
 * <pre>{@code
 * Tokenizer tok = SentencePieceTokenizer.fromGguf(gguf);
 * tok.encode("Hello world", false);   // Llama 2: [15043, 3186]  ("▁Hello", "▁world")
 * tok.encode("Hello world", true);    // [1, 15043, 3186]
 * }</pre>
 */
public final class SentencePieceTokenizer implements Tokenizer {

    /**
     * Special ids and flags; -1 means "none".
     *
     * @param bos beginning of sequence
     * @param eos end of sequence
     * @param unk unknown token, used for characters the vocabulary cannot spell
     * @param eot end of turn, or -1 to look for a conventional one ({@code <|end|>}, {@code <|im_end|>}, ...)
     * @param eom end of message (tool calls), or -1
     * @param addBos whether {@code encode(..., addSpecial=true, ...)} prepends BOS
     * @param addEos whether {@code encode(..., addSpecial=true, ...)} appends EOS
     * @param addSpacePrefix whether text gets a leading space before tokenization
     */
    public record Options(int bos, int eos, int unk, int eot, int eom, boolean addBos, boolean addEos,
            boolean addSpacePrefix) {

        /** llama.cpp's defaults for SPM vocabularies. */
        public static Options defaults() {
            return new Options(1, 2, 0, -1, -1, true, false, true);
        }
    }

    /** Pieces llama.cpp treats as end of turn / end of generation when they are control tokens. */
    private static final List<String> EOT_TEXTS = List.of("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
            "<|endoftext|>", "<EOT>", "_<EOT>", "<｜end▁of▁sentence｜>", "<end_of_utterance>");
    private static final List<String> EOG_TEXTS = List.of("<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>",
            "<|call|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<end_of_utterance>");

    private static final char SPACE_MARK = '\u2581';
    private static final byte[] EMPTY = new byte[0];

    private final String[] texts;
    private final float[] scores;
    private final TokenType[] types;
    private final Map<String, Integer> idByText;
    private final byte[][] pieces;
    private final int[] byteToken = new int[256];
    /** Tokens matched as whole strings before splitting, longest first so longer ones win overlaps. */
    private final SpecialTokenSplitter specialTokens;
    private final BitSet endOfGeneration = new BitSet();
    private final int bos;
    private final int eos;
    private final int unk;
    private final int eot;
    private final boolean addBos;
    private final boolean addEos;
    private final boolean addSpacePrefix;

    /**
     * Builds a tokenizer from vocabulary arrays.
     *
     * @param tokens the pieces, indexed by id
     * @param scores merge priority per id (higher merges first); null for all zero
     * @param tokenTypes GGUF token type codes per id; null for all {@link TokenType#NORMAL}
     */
    public SentencePieceTokenizer(String[] tokens, float[] scores, int[] tokenTypes, Options options) {
        int n = tokens.length;
        if (scores != null && scores.length != n || tokenTypes != null && tokenTypes.length != n) {
            throw new IllegalArgumentException("tokens, scores and token types differ in length");
        }
        this.texts = tokens.clone();
        this.scores = scores != null ? scores.clone() : new float[n];
        this.types = new TokenType[n];
        for (int i = 0; i < n; i++) {
            types[i] = tokenTypes != null ? TokenType.fromCode(tokenTypes[i]) : TokenType.NORMAL;
        }
        this.idByText = HashMap.newHashMap(n);
        for (int i = 0; i < n; i++) {
            // llama.cpp fills its map in id order, so a duplicated piece resolves to the last id.
            idByText.put(texts[i], i);
        }
        this.bos = validId(options.bos(), n);
        this.eos = validId(options.eos(), n);
        this.unk = validId(options.unk(), n);
        this.addBos = options.addBos();
        this.addEos = options.addEos();
        this.addSpacePrefix = options.addSpacePrefix();

        Arrays.fill(byteToken, -1);
        for (int b = 0; b < 256; b++) {
            Integer id = idByText.get(String.format("<0x%02X>", b));
            if (id != null) {
                byteToken[b] = id;
            } else if (b < 0x80) {
                // Like llama.cpp, fall back to a token whose piece is the character itself.
                Integer plain = idByText.get(String.valueOf((char) b));
                if (plain != null) {
                    byteToken[b] = plain;
                }
            }
        }

        this.pieces = new byte[n][];
        for (int i = 0; i < n; i++) {
            pieces[i] = renderPiece(i);
        }

        this.specialTokens = new SpecialTokenSplitter(texts, types);

        int eotId = validId(options.eot(), n);
        if (eotId < 0) {
            for (String s : EOT_TEXTS) {
                Integer id = idByText.get(s);
                if (id != null) {
                    eotId = id;
                    break;
                }
            }
        }
        this.eot = eotId;
        for (int id : new int[] {eos, eot, validId(options.eom(), n)}) {
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
    }

    /**
     * Reads the vocabulary from GGUF metadata ({@code tokenizer.ggml.*}).
     *
     * @throws IllegalArgumentException if the file has no token list or the wrong tokenizer model
     */
    public static SentencePieceTokenizer fromGguf(GgufFile gguf) {
        String model = gguf.get("tokenizer.ggml.model").map(GgufValue::asString).orElse("llama");
        if (!model.equals("llama")) {
            throw new IllegalArgumentException("tokenizer.ggml.model is \"" + model + "\", not the SentencePiece \"llama\"");
        }
        String[] tokens = gguf.get("tokenizer.ggml.tokens").map(GgufValue::asStringArray)
                .orElseThrow(() -> new IllegalArgumentException("GGUF has no tokenizer.ggml.tokens"));
        float[] scores = gguf.get("tokenizer.ggml.scores").map(GgufValue::asFloatArray).orElse(null);
        int[] types = gguf.get("tokenizer.ggml.token_type").map(GgufValue::asIntArray).orElse(null);
        Options d = Options.defaults();
        Options options = new Options(
                intKey(gguf, "tokenizer.ggml.bos_token_id", d.bos()),
                intKey(gguf, "tokenizer.ggml.eos_token_id", d.eos()),
                intKey(gguf, "tokenizer.ggml.unknown_token_id", d.unk()),
                intKey(gguf, "tokenizer.ggml.eot_token_id", d.eot()),
                intKey(gguf, "tokenizer.ggml.eom_token_id", d.eom()),
                boolKey(gguf, "tokenizer.ggml.add_bos_token", d.addBos()),
                boolKey(gguf, "tokenizer.ggml.add_eos_token", d.addEos()),
                boolKey(gguf, "tokenizer.ggml.add_space_prefix", d.addSpacePrefix()));
        return new SentencePieceTokenizer(tokens, scores, types, options);
    }

    private static int intKey(GgufFile gguf, String key, int fallback) {
        return gguf.get(key).map(v -> (int) v.asLong()).orElse(fallback);
    }

    private static boolean boolKey(GgufFile gguf, String key, boolean fallback) {
        return gguf.get(key).map(GgufValue::asBool).orElse(fallback);
    }

    private static int validId(int id, int n) {
        return id >= 0 && id < n ? id : -1;
    }

    private byte[] renderPiece(int id) {
        String text = texts[id];
        return switch (types[id]) {
            case NORMAL -> text.replace(SPACE_MARK, ' ').getBytes(StandardCharsets.UTF_8);
            case USER_DEFINED -> text.getBytes(StandardCharsets.UTF_8);
            case BYTE -> {
                int b = parseByteToken(text);
                yield b >= 0 ? new byte[] {(byte) b} : text.getBytes(StandardCharsets.UTF_8);
            }
            default -> EMPTY;
        };
    }

    private static int parseByteToken(String text) {
        if (text.length() == 6 && text.startsWith("<0x") && text.charAt(5) == '>') {
            int hi = Character.digit(text.charAt(3), 16);
            int lo = Character.digit(text.charAt(4), 16);
            if (hi >= 0 && lo >= 0) {
                return hi << 4 | lo;
            }
        }
        return -1;
    }

    // ---------------------------------------------------------------- encoding

    @Override
    public int[] encode(String text, boolean addSpecial, boolean parseSpecial) {
        Objects.requireNonNull(text);
        IntBuffer out = new IntBuffer(Math.max(8, text.length() / 2));
        if (addSpecial && addBos) {
            if (bos < 0) {
                throw new IllegalStateException("the vocabulary asks for BOS but has no BOS token");
            }
            out.add(bos);
        }
        boolean afterSpecial = true;
        for (SpecialTokenSplitter.Fragment f : specialTokens.split(text, parseSpecial)) {
            if (f.token() >= 0) {
                out.add(f.token());
                afterSpecial = true;
            } else {
                String piece = text.substring(f.start(), f.end());
                if (addSpacePrefix && afterSpecial) {
                    piece = " " + piece;
                }
                encodePiece(piece.replace(' ', SPACE_MARK), out);
                afterSpecial = false;
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

    /** One candidate merge of two adjacent symbols; {@code length} detects that either side changed since. */
    private record Bigram(int left, int right, float score, int length) {
    }

    private static final Comparator<Bigram> BEST_FIRST = (a, b) -> {
        int c = Float.compare(b.score, a.score);
        return c != 0 ? c : Integer.compare(a.left, b.left);
    };

    /**
     * The SentencePiece merge loop on one escaped fragment. Symbols form a linked list over the
     * fragment's characters; a priority queue holds candidate merges, and stale ones (a side
     * already merged elsewhere) are recognised by their length and dropped, which keeps the whole
     * loop O(n log n).
     */
    private void encodePiece(String s, IntBuffer out) {
        int n = s.codePointCount(0, s.length());
        int[] start = new int[n];
        int[] len = new int[n];
        int[] prev = new int[n];
        int[] next = new int[n];
        for (int i = 0, pos = 0; i < n; i++) {
            int cp = s.codePointAt(pos);
            start[i] = pos;
            len[i] = Character.charCount(cp);
            pos += len[i];
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        PriorityQueue<Bigram> queue = new PriorityQueue<>(Math.max(1, n), BEST_FIRST);
        for (int i = 1; i < n; i++) {
            offerBigram(s, start, len, i - 1, i, queue);
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
            offerBigram(s, start, len, prev[l], l, queue);
            offerBigram(s, start, len, l, next[l], queue);
        }
        // Every merged symbol is a vocabulary piece by construction, so only single characters can
        // miss the vocabulary here; llama.cpp's "resegment via merge history" therefore reduces to
        // spelling such a character in bytes.
        for (int i = 0; i >= 0 && n > 0; i = next[i]) {
            String sym = s.substring(start[i], start[i] + len[i]);
            Integer id = idByText.get(sym);
            if (id != null) {
                out.add(id);
            } else {
                for (byte b : sym.getBytes(StandardCharsets.UTF_8)) {
                    out.add(tokenForByte(b & 0xFF, sym));
                }
            }
        }
    }

    private void offerBigram(String s, int[] start, int[] len, int left, int right, PriorityQueue<Bigram> queue) {
        if (left < 0 || right < 0) {
            return;
        }
        int length = len[left] + len[right];
        Integer id = idByText.get(s.substring(start[left], start[left] + length));
        if (id != null) {
            queue.add(new Bigram(left, right, scores[id], length));
        }
    }

    private int tokenForByte(int b, String symbol) {
        int id = byteToken[b];
        if (id >= 0) {
            return id;
        }
        if (unk >= 0) {
            return unk;
        }
        throw new IllegalArgumentException("the vocabulary can spell neither \"" + symbol
                + "\" nor its bytes and has no unknown token");
    }

    // ---------------------------------------------------------------- decoding

    @Override
    public byte[] tokenBytes(int id) {
        return pieces[Objects.checkIndex(id, pieces.length)];
    }

    @Override
    public String decode(int[] ids) {
        ByteArrayOutputStream buf = new ByteArrayOutputStream(ids.length * 4);
        boolean stripSpace = addSpacePrefix;
        for (int id : ids) {
            byte[] p = tokenBytes(id);
            if (p.length == 0) {
                continue;
            }
            int from = stripSpace && p[0] == ' ' ? 1 : 0;
            buf.write(p, from, p.length - from);
            stripSpace = false;
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

    /** The unknown token, or -1. */
    public int unk() {
        return unk;
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

    /** The token's merge score. */
    public float score(int id) {
        return scores[Objects.checkIndex(id, scores.length)];
    }

    @Override
    public boolean addBos() {
        return addBos;
    }

    /** Whether {@code encode(..., addSpecial=true, ...)} appends EOS. */
    public boolean addEos() {
        return addEos;
    }

    @Override
    public boolean addSpacePrefix() {
        return addSpacePrefix;
    }

    /** The id of the token whose piece is exactly {@code text}, or -1. */
    public int tokenId(String text) {
        Integer id = idByText.get(text);
        return id != null ? id : -1;
    }

    /** A growable int array, so encoding long texts does not box every id. */
    private static final class IntBuffer {
        private int[] a;
        private int size;

        IntBuffer(int capacity) {
            a = new int[capacity];
        }

        void add(int v) {
            if (size == a.length) {
                a = Arrays.copyOf(a, a.length * 2);
            }
            a[size++] = v;
        }

        int[] toArray() {
            return Arrays.copyOf(a, size);
        }
    }
}
