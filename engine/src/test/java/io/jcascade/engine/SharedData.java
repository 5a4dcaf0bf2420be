package io.jcascade.engine;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/** Locates the test data beside the project ({@code ../shared}) and the embedded models. */
public final class SharedData {
    private SharedData() {}

    /** The shared data folder; skips the calling test when it is absent. */
    public static Path shared() {
        String prop = System.getProperty("jcascade.shared");
        Path p = prop != null ? Path.of(prop) : Path.of("..", "shared");
        assumeTrue(Files.isDirectory(p), "shared test data not found at " + p.toAbsolutePath());
        return p;
    }

    public static Path shared(String relative) {
        Path p = shared().resolve(relative);
        assumeTrue(Files.exists(p), "shared test file not found: " + p);
        return p;
    }

    /** A model committed in the project's models/ folder. */
    public static Path embeddedModel(String name) {
        String root = System.getProperty("jcascade.root");
        Path p = (root != null ? Path.of(root) : Path.of("..")).resolve("models").resolve(name);
        assumeTrue(Files.exists(p), "embedded model not found: " + p);
        return p;
    }
}
