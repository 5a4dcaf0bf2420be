package io.jcascade.cascade;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Every confidence signal of one generation (see {@link Signal} for their meaning).
 *
 * <pre>{@code
 * Signals s = result.attempts().get(0).signals();
 * System.out.println(s.meanEntropy() + " " + s.get(Signal.MIN_PROB));
 * }</pre>
 *
 * @param tokens how many tokens the signals cover (the end-of-sequence token included)
 * @param meanEntropy mean per-token entropy
 * @param maxEntropy largest per-token entropy
 * @param entropyQ90 90th percentile of the per-token entropies
 * @param minProb smallest probability of a chosen token
 * @param meanMargin mean of top-1 minus top-2 probability
 * @param firstKEntropy mean entropy of the first k tokens
 * @param seqLogprob sum of the log-probabilities of the chosen tokens
 */
public record Signals(int tokens, double meanEntropy, double maxEntropy, double entropyQ90, double minProb,
        double meanMargin, double firstKEntropy, double seqLogprob) {

    /** The value of one signal. */
    public double get(Signal signal) {
        return switch (signal) {
            case MEAN_ENTROPY -> meanEntropy;
            case MAX_ENTROPY -> maxEntropy;
            case ENTROPY_Q90 -> entropyQ90;
            case MIN_PROB -> minProb;
            case MEAN_MARGIN -> meanMargin;
            case FIRST_K_ENTROPY -> firstKEntropy;
            case SEQ_LOGPROB -> seqLogprob;
        };
    }

    /** All signals keyed by their {@link Signal#key()}, in declaration order. */
    public Map<String, Double> asMap() {
        Map<String, Double> m = new LinkedHashMap<>();
        for (Signal s : Signal.values()) {
            m.put(s.key(), get(s));
        }
        return m;
    }
}
