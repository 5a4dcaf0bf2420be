package io.jcascade.engine;

import java.io.IOException;

/**
 * A well-formed GGUF file that jcascade cannot run: an unknown architecture, a missing or
 * misshapen tensor, an unsupported tensor type. The message names the problem and, for an
 * unknown architecture, lists the supported ones.
 *
 * <pre>{@code
 * try (Model m = Model.load(path)) { ... }
 * catch (UnsupportedModelException e) { System.err.println(e.getMessage()); }
 * }</pre>
 */
public class UnsupportedModelException extends IOException {
    private static final long serialVersionUID = 1L;

    public UnsupportedModelException(String message) {
        super(message);
    }
}
