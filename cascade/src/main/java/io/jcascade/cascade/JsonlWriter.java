package io.jcascade.cascade;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Appends JSON lines to a file, flushed after every line so that an interrupted run loses
 * nothing already decided. Thread-safe.
 *
 * <pre>{@code
 * try (JsonlWriter w = JsonlWriter.append(Path.of("decisions.jsonl"))) {
 *     w.write(CascadeJson.decisionLine(result, policy));
 * }
 * }</pre>
 */
public final class JsonlWriter implements AutoCloseable {
    private final Path path;
    private final BufferedWriter out;

    private JsonlWriter(Path path, BufferedWriter out) {
        this.path = path;
        this.out = out;
    }

    /** Opens {@code path} for appending, creating it (and its folder) when missing. */
    public static JsonlWriter append(Path path) throws IOException {
        Path parent = path.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        return new JsonlWriter(path, Files.newBufferedWriter(path, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                StandardOpenOption.APPEND, StandardOpenOption.WRITE));
    }

    /** Writes one line and flushes it. */
    public synchronized void write(JsonNode line) {
        try {
            out.write(CascadeJson.JSON.writeValueAsString(line));
            out.newLine();
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + path + ": " + e.getMessage(), e);
        }
    }

    /** The file written to. */
    public Path path() {
        return path;
    }

    @Override
    public synchronized void close() throws IOException {
        out.close();
    }
}
