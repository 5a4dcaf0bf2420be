package io.jcascade.cascade;

import io.jcascade.engine.GeneratedToken;
import java.util.Arrays;
import java.util.List;

/**
 * Computes every {@link Signal} incrementally, one {@link GeneratedToken} at a time: O(1) per
 * token (the entropies are kept in a growing array for the percentile, which is sorted only when
 * {@link #signals()} is called).
 *
 * <pre>{@code
 * SignalAccumulator acc = new SignalAccumulator(3);
 * model.generate(prompt, params, acc::accept);
 * Signals s = acc.signals();
 * }</pre>
 */
public final class SignalAccumulator {
    /** Probabilities are clamped to this before their log is taken, so a zero never gives -infinity. */
    static final double MIN_PROB_FOR_LOG = 1e-300;

    private final int firstK;
    private double[] entropies = new double[16];
    private int n;
    private double entropySum;
    private double maxEntropy;
    private double minProb = 1;
    private double marginSum;
    private double firstKSum;
    private double logprobSum;

    /** @param firstK how many leading tokens {@link Signal#FIRST_K_ENTROPY} averages (at least 1) */
    public SignalAccumulator(int firstK) {
        if (firstK < 1) {
            throw new IllegalArgumentException("first_k must be >= 1, got " + firstK);
        }
        this.firstK = firstK;
    }

    /** The signals of a whole list of tokens. */
    public static Signals of(List<GeneratedToken> tokens, int firstK) {
        SignalAccumulator acc = new SignalAccumulator(firstK);
        for (GeneratedToken t : tokens) {
            acc.accept(t);
        }
        return acc.signals();
    }

    /** Adds one token. */
    public void accept(GeneratedToken token) {
        accept(token.entropy(), token.probability(), token.topProbability(), token.secondProbability());
    }

    /** Adds one token given its entropy, its probability and the top two probabilities. */
    public void accept(double entropy, double probability, double top, double second) {
        if (n == entropies.length) {
            entropies = Arrays.copyOf(entropies, n * 2);
        }
        entropies[n++] = entropy;
        entropySum += entropy;
        if (entropy > maxEntropy) {
            maxEntropy = entropy;
        }
        if (probability < minProb) {
            minProb = probability;
        }
        marginSum += top - second;
        if (n <= firstK) {
            firstKSum += entropy;
        }
        logprobSum += Math.log(Math.max(probability, MIN_PROB_FOR_LOG));
    }

    /** Tokens added so far. */
    public int count() {
        return n;
    }

    /**
     * The value of {@code signal} so far, without sorting: exact for every signal but
     * {@link Signal#ENTROPY_Q90}, which this computes (and sorts a copy) on demand.
     */
    public double current(Signal signal) {
        return switch (signal) {
            case MEAN_ENTROPY -> n == 0 ? 0 : entropySum / n;
            case MAX_ENTROPY -> maxEntropy;
            case ENTROPY_Q90 -> quantile(0.9);
            case MIN_PROB -> minProb;
            case MEAN_MARGIN -> n == 0 ? 1 : marginSum / n;
            case FIRST_K_ENTROPY -> n == 0 ? 0 : firstKSum / Math.min(n, firstK);
            case SEQ_LOGPROB -> logprobSum;
        };
    }

    /** How many leading tokens {@link Signal#FIRST_K_ENTROPY} averages. */
    public int firstK() {
        return firstK;
    }

    /**
     * The signals of the tokens so far. With no tokens: entropies 0, {@code min_prob} 1,
     * {@code mean_margin} 1, {@code seq_logprob} 0 (nothing uncertain was generated).
     */
    public Signals signals() {
        return new Signals(n, current(Signal.MEAN_ENTROPY), maxEntropy, quantile(0.9), minProb,
                current(Signal.MEAN_MARGIN), current(Signal.FIRST_K_ENTROPY), logprobSum);
    }

    private double quantile(double q) {
        if (n == 0) {
            return 0;
        }
        double[] sorted = Arrays.copyOf(entropies, n);
        Arrays.sort(sorted);
        double pos = q * (n - 1);
        int lo = (int) Math.floor(pos);
        int hi = Math.min(lo + 1, n - 1);
        return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
    }
}
