package io.jcascade.engine.tokenizer;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Objects;

/**
 * Turns generated token ids, one at a time, into text chunks that never end inside a UTF-8
 * character. Byte-fallback tokens carry single bytes, so an emoji may arrive as four tokens; the
 * decoder holds such bytes back until the character is complete.
 *
 * <p>Not thread-safe; use one per generation stream.
 *
 * <pre>{@code
 * TokenDecoder dec = new TokenDecoder(tokenizer);   // continuing after a prompt
 * for (int id : generated) {
 *     System.out.print(dec.next(id));
 * }
 * System.out.print(dec.flush());
 * }</pre>
 */
public final class TokenDecoder {

    private final Tokenizer tokenizer;
    private byte[] pending = new byte[16];
    private int pendingLength;
    private boolean stripSpace;

    /** A decoder for tokens that continue a prompt, so a leading space is kept. */
    public TokenDecoder(Tokenizer tokenizer) {
        this(tokenizer, false);
    }

    /**
     * @param tokenizer the vocabulary
     * @param startOfText true when the ids begin the text (nothing was decoded before them): then
     *        the dummy-prefix space of the first piece is dropped, exactly as
     *        {@link Tokenizer#decode} does; false when continuing a prompt, where that space is real
     */
    public TokenDecoder(Tokenizer tokenizer, boolean startOfText) {
        this.tokenizer = Objects.requireNonNull(tokenizer);
        this.stripSpace = startOfText && tokenizer.addSpacePrefix();
    }

    /**
     * Adds one token and returns the text that is now complete, possibly empty. Bytes of an
     * unfinished UTF-8 character stay buffered for the next call. Ids beyond the vocabulary (models
     * may pad their output layer) render as nothing.
     */
    public String next(int id) {
        if (id >= tokenizer.vocabSize()) {
            return "";
        }
        byte[] piece = tokenizer.tokenBytes(id);
        if (piece.length == 0) {
            return "";
        }
        int from = stripSpace && piece[0] == ' ' ? 1 : 0;
        stripSpace = false;
        append(piece, from, piece.length - from);
        int complete = completePrefix(pending, pendingLength);
        if (complete == 0) {
            return "";
        }
        String text = new String(pending, 0, complete, StandardCharsets.UTF_8);
        System.arraycopy(pending, complete, pending, 0, pendingLength - complete);
        pendingLength -= complete;
        return text;
    }

    /**
     * Returns whatever is still buffered (an incomplete character becomes U+FFFD) and empties the
     * buffer; call at the end of generation.
     */
    public String flush() {
        String text = new String(pending, 0, pendingLength, StandardCharsets.UTF_8);
        pendingLength = 0;
        return text;
    }

    /** Number of bytes held back because their character is not complete yet. */
    public int pendingBytes() {
        return pendingLength;
    }

    private void append(byte[] b, int off, int len) {
        if (pendingLength + len > pending.length) {
            pending = Arrays.copyOf(pending, Math.max(pending.length * 2, pendingLength + len));
        }
        System.arraycopy(b, off, pending, pendingLength, len);
        pendingLength += len;
    }

    /**
     * Length of the longest prefix of {@code b[0, n)} that does not end inside a UTF-8 character.
     * Only a well-formed but unfinished tail is held back; garbage is let through (and rendered as
     * U+FFFD) rather than buffered forever.
     */
    static int completePrefix(byte[] b, int n) {
        for (int back = 1; back <= Math.min(4, n); back++) {
            int c = b[n - back] & 0xFF;
            if ((c & 0xC0) == 0x80) {
                continue; // continuation byte: the character starts further back
            }
            int need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 1;
            return back < need ? n - back : n;
        }
        return n;
    }
}
