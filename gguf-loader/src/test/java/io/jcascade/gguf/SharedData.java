package io.jcascade.gguf;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/** Locates the shared test data (real GGUF files) that lives outside the repository. */
final class SharedData {
    private SharedData() {}

    static Path dir() {
        String prop = System.getProperty("jcascade.shared");
        if (prop != null && !prop.isBlank()) {
            return Path.of(prop);
        }
        String root = System.getProperty("jcascade.root");
        // Surefire runs in the module directory; the project root is its parent.
        Path base = root != null ? Path.of(root) : Path.of("").toAbsolutePath().getParent();
        return base.resolve("../shared").normalize();
    }

    /** The shared file at {@code relative}, or a skipped test when the data is absent. */
    static Path require(String relative) {
        Path p = dir().resolve(relative);
        assumeTrue(Files.isRegularFile(p), "shared test data missing: " + p);
        return p;
    }
}
