package io.jcascade.engine.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * GPT-2's reversible mapping between bytes and printable characters. Byte-level BPE vocabularies
 * store every token as the characters of its bytes under this mapping, so that a space is
 * {@code Ġ} (U+0120) and a newline {@code Ċ} (U+010A), and merges never see raw control bytes.
 *
 * <p>The printable Latin-1 bytes ({@code !}..{@code ~}, {@code ¡}..{@code ¬}, {@code ®}..{@code ÿ})
 * stand for themselves; the other 68 bytes are given the code points from U+0100 upwards in byte
 * order.
 *
 * <pre>{@code
 * ByteLevel.encode("Hi there".getBytes(UTF_8));   // "HiĠthere"
 * }</pre>
 */
final class ByteLevel {

    private static final char[] BYTE_TO_CHAR = new char[256];
    /** Indexed by code point; -1 where a character does not stand for a byte. */
    private static final int[] CHAR_TO_BYTE = new int[0x200];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        int next = 0x100;
        for (int b = 0; b < 256; b++) {
            boolean printable = b >= '!' && b <= '~' || b >= 0xA1 && b <= 0xAC || b >= 0xAE && b <= 0xFF;
            char c = printable ? (char) b : (char) next++;
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private ByteLevel() {
    }

    /** The characters standing for {@code bytes[from, to)}, one per byte. */
    static String encode(byte[] bytes, int from, int to) {
        char[] out = new char[to - from];
        for (int i = from; i < to; i++) {
            out[i - from] = BYTE_TO_CHAR[bytes[i] & 0xFF];
        }
        return new String(out);
    }

    static char charOf(int b) {
        return BYTE_TO_CHAR[b & 0xFF];
    }

    /**
     * The bytes a vocabulary piece stands for. Characters outside the mapping (a malformed
     * vocabulary) are kept as their own UTF-8 rather than dropped, so nothing silently vanishes.
     */
    static byte[] decode(String piece) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(piece.length());
        for (int i = 0; i < piece.length(); ) {
            int cp = piece.codePointAt(i);
            int n = Character.charCount(cp);
            int b = cp < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[cp] : -1;
            if (b >= 0) {
                out.write(b);
            } else {
                out.writeBytes(piece.substring(i, i + n).getBytes(StandardCharsets.UTF_8));
            }
            i += n;
        }
        return out.toByteArray();
    }
}
