package io.jcascade.cascade;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * A confidence signal of a local tier's generation, computed from its tokens as they stream.
 *
 * <p>For the "uncertainty" signals (the entropies) a higher value means less confident, and the
 * policy escalates when the value is at or above the threshold. For the "confidence" signals
 * ({@link #MIN_PROB}, {@link #MEAN_MARGIN}, {@link #SEQ_LOGPROB}) a higher value means more
 * confident, and the policy escalates when the value is below the threshold.
 *
 * <pre>{@code
 * Signal s = Signal.parse("max_entropy");
 * boolean escalate = s.escalates(signals.get(s), 0.5);
 * }</pre>
 */
public enum Signal {
    /** Mean of the per-token entropies (natural log), end-of-sequence token included. */
    MEAN_ENTROPY("mean_entropy", false),
    /** Largest per-token entropy. */
    MAX_ENTROPY("max_entropy", false),
    /** 90th percentile of the per-token entropies (linear interpolation between order statistics). */
    ENTROPY_Q90("entropy_q90", false),
    /** Smallest probability of a chosen token. */
    MIN_PROB("min_prob", true),
    /** Mean of (top-1 probability minus top-2 probability) over the tokens. */
    MEAN_MARGIN("mean_margin", true),
    /** Mean entropy of the first k tokens (k is the policy's {@code first_k}). */
    FIRST_K_ENTROPY("first_k_entropy", false),
    /** Sum of the natural-log probabilities of the chosen tokens. */
    SEQ_LOGPROB("seq_logprob", true);

    private final String key;
    private final boolean higherIsConfident;

    Signal(String key, boolean higherIsConfident) {
        this.key = key;
        this.higherIsConfident = higherIsConfident;
    }

    /** The name used in configs, on the command line and in JSON output, e.g. {@code mean_entropy}. */
    public String key() {
        return key;
    }

    /** Whether a higher value means a more confident generation. */
    public boolean higherIsConfident() {
        return higherIsConfident;
    }

    /** Whether a generation with this signal value escalates past a step with this threshold. */
    public boolean escalates(double value, double threshold) {
        return higherIsConfident ? value < threshold : value >= threshold;
    }

    /** The signal named {@code key}, or an {@link IllegalArgumentException} that lists the known names. */
    public static Signal parse(String key) {
        for (Signal s : values()) {
            if (s.key.equals(key)) {
                return s;
            }
        }
        throw new IllegalArgumentException("unknown signal \"" + key + "\"; choose one of " + names());
    }

    /** The known names, comma-separated. */
    public static String names() {
        return Arrays.stream(values()).map(Signal::key).collect(Collectors.joining(", "));
    }
}
