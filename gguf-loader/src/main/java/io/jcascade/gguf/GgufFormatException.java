package io.jcascade.gguf;

import java.io.IOException;

/**
 * A GGUF file is malformed: it names what is wrong and the byte offset where it was found.
 *
 * <pre>{@code
 * try (GgufFile f = GgufFile.open(path)) { ... }
 * catch (GgufFormatException e) { log.error("bad model at byte {}: {}", e.offset(), e.getMessage()); }
 * }</pre>
 */
public class GgufFormatException extends IOException {
    private static final long serialVersionUID = 1L;
    private final long offset;

    public GgufFormatException(String problem, long offset) {
        super(problem + " (at byte offset " + offset + ")");
        this.offset = offset;
    }

    public GgufFormatException(String problem, long offset, Throwable cause) {
        super(problem + " (at byte offset " + offset + ")", cause);
        this.offset = offset;
    }

    /** Byte offset in the file where the problem was found, or -1 when it concerns the whole file. */
    public long offset() {
        return offset;
    }
}
