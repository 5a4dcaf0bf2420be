package io.jcascade.kernels;

/**
 * Statistics of {@code softmax(logits)} at temperature 1, computed in double with the log-sum-exp
 * trick: the entropy, the two most likely tokens and their probabilities, and log Z, from which
 * any token's probability follows. A backend fills them where the logits are ({@link
 * Backend#selectTokens}); {@link #compute} is the host reference. Reusable from step to step.
 *
 * <pre>{@code
 * LogitStats st = new LogitStats().compute(logits, vocabSize);
 * double h = st.entropy(), margin = st.p1() - st.p2(), p = st.probability(logits[token]);
 * }</pre>
 */
public final class LogitStats {
    private double max;
    private double logZ; // log of sum exp(logit - max)
    private double entropy;
    private int id1;
    private int id2;
    private double p1;
    private double p2;

    /**
     * Computes the statistics of {@code softmax(logits[0, n))}; NaN logits are skipped, -inf ones
     * contribute nothing. The most likely tokens are the first (lowest id) of equals.
     *
     * @throws IllegalArgumentException if every logit is NaN, or n is outside 1..logits.length
     */
    public LogitStats compute(float[] logits, int n) {
        if (n <= 0 || n > logits.length) {
            throw new IllegalArgumentException("n " + n + " outside 1.." + logits.length);
        }
        id1 = -1;
        id2 = -1;
        for (int i = 0; i < n; i++) {
            float x = logits[i];
            if (Float.isNaN(x)) {
                continue;
            }
            if (id1 < 0 || x > logits[id1]) {
                id2 = id1;
                id1 = i;
            } else if (id2 < 0 || x > logits[id2]) {
                id2 = i;
            }
        }
        if (id1 < 0) {
            throw new IllegalArgumentException("all logits are NaN");
        }
        max = logits[id1];
        if (Double.isInfinite(max)) {
            // All tokens impossible (-inf): the limit of equal logits, uniform. +inf: certain.
            boolean none = max < 0;
            logZ = none ? 0 : Double.NaN;
            entropy = 0;
            p1 = none ? 1.0 / n : 1;
            p2 = id2 < 0 ? 0 : none ? 1.0 / n : 0;
            return this;
        }
        // H = log Z - E[x - max] with Z = sum exp(x - max): one pass for both sums.
        double z = 0;
        double weighted = 0;
        for (int i = 0; i < n; i++) {
            double d = logits[i] - max;
            if (d == Double.NEGATIVE_INFINITY || Double.isNaN(d)) {
                continue;
            }
            double e = Math.exp(d);
            z += e;
            weighted += e * d;
        }
        logZ = Math.log(z);
        entropy = Math.max(0, logZ - weighted / z);
        p1 = Math.exp(-logZ);
        p2 = id2 < 0 ? 0 : Math.exp((logits[id2] - max) - logZ);
        return this;
    }

    /**
     * Sets the statistics a backend computed elsewhere (on a device). {@code id2} is -1 and
     * {@code p2} 0 when there is one logit.
     */
    public LogitStats set(double max, double logZ, double entropy, int id1, double p1, int id2, double p2) {
        this.max = max;
        this.logZ = logZ;
        this.entropy = entropy;
        this.id1 = id1;
        this.p1 = p1;
        this.id2 = id2;
        this.p2 = p2;
        return this;
    }

    /** Natural-log entropy. */
    public double entropy() {
        return entropy;
    }

    /** The most likely token. */
    public int id1() {
        return id1;
    }

    /** The second most likely token, or -1 when there is one logit. */
    public int id2() {
        return id2;
    }

    /** Probability of the most likely token. */
    public double p1() {
        return p1;
    }

    /** Probability of the second most likely token (0 when there is one logit). */
    public double p2() {
        return p2;
    }

    /** The largest logit. */
    public double max() {
        return max;
    }

    /** log(sum(exp(logits))). */
    public double logSumExp() {
        return Double.isInfinite(max) ? max : max + logZ;
    }

    /** The probability of a token whose logit is {@code logit}. */
    public double probability(float logit) {
        return Double.isInfinite(max) ? (logit == max ? p1 : 0) : Math.exp((logit - max) - logZ);
    }
}
