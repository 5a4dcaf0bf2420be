package io.jcascade.engine.sampling;

import io.jcascade.kernels.LogitStats;

/**
 * Statistics of the softmax distribution behind a logit vector, computed in double with the
 * log-sum-exp trick so that large logits neither overflow nor lose precision. The cascade uses
 * them to judge how sure a model is of its next token.
 *
 * <pre>{@code
 * double h = Distribution.entropy(logits, vocabSize);          // nats; 0 = certain
 * Distribution.Top top = Distribution.top2(logits, vocabSize);
 * double margin = top.p1() - top.p2();
 * }</pre>
 */
public final class Distribution {

    private Distribution() {
    }

    /**
     * The two most likely tokens and their probabilities at temperature 1. When {@code n == 1},
     * {@code id2} is -1 and {@code p2} is 0.
     */
    public record Top(int id1, double p1, int id2, double p2) {
    }

    /**
     * Natural-log entropy of softmax(logits[0, n)) at temperature 1. Tokens with logit -inf
     * contribute nothing.
     */
    public static double entropy(float[] logits, int n) {
        return new Stats().compute(logits, n).entropy();
    }

    /** Top-1 and top-2 tokens with their softmax probabilities (lowest id first on ties). */
    public static Top top2(float[] logits, int n) {
        Stats st = new Stats().compute(logits, n);
        return new Top(st.id1(), st.p1(), st.id2(), st.p2());
    }

    /** log(sum(exp(logits[0, n)))), stable for any magnitude. */
    public static double logSumExp(float[] logits, int n) {
        return new Stats().compute(logits, n).logSumExp();
    }

    /**
     * Everything above for one logit vector in two passes (max and top two, then the exponentials),
     * reusable from step to step: the engine computes it for every generated token, over the full
     * vocabulary, so it does the work once rather than once per statistic.
     *
     * <pre>{@code
     * Distribution.Stats st = new Distribution.Stats();
     * st.compute(logits, vocabSize);
     * double h = st.entropy(), p = st.probability(token), margin = st.p1() - st.p2();
     * }</pre>
     */
    public static final class Stats {
        private final LogitStats stats = new LogitStats();
        private float[] logits;

        /** Computes the statistics of softmax(logits[0, n)); NaN logits are skipped, -inf ones contribute nothing. */
        public Stats compute(float[] logits, int n) {
            checkLength(logits, n);
            stats.compute(logits, n);
            this.logits = logits;
            return this;
        }

        /** Natural-log entropy. */
        public double entropy() {
            return stats.entropy();
        }

        /** The most likely token. */
        public int id1() {
            return stats.id1();
        }

        /** The second most likely token, or -1 when there is one logit. */
        public int id2() {
            return stats.id2();
        }

        /** Probability of the most likely token. */
        public double p1() {
            return stats.p1();
        }

        /** Probability of the second most likely token (0 when there is one logit). */
        public double p2() {
            return stats.p2();
        }

        /** log(sum(exp(logits))). */
        public double logSumExp() {
            return stats.logSumExp();
        }

        /** Probability of token {@code id}. */
        public double probability(int id) {
            return stats.probability(logits[id]);
        }
    }

    private static void checkLength(float[] logits, int n) {
        if (n <= 0 || n > logits.length) {
            throw new IllegalArgumentException("n " + n + " outside 1.." + logits.length);
        }
    }
}
