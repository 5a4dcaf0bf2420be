package io.jcascade.cascade;

/**
 * A cascade config that cannot be used; the message names the offending key, e.g.
 * {@code tiers[1].cost_per_1k_tokens: expected a number >= 0, got "cheap"}.
 *
 * <pre>{@code
 * try {
 *     Cascade.fromConfig(Path.of("cascade.json"));
 * } catch (ConfigException e) {
 *     System.err.println(e.getMessage());
 * }
 * }</pre>
 */
public class ConfigException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    public ConfigException(String message) {
        super(message);
    }
}
