package io.jcascade.engine;

/**
 * Statistics of one next-token distribution, softmax at temperature 1 over the full vocabulary,
 * in one pass over the logits after the max: entropy (natural log), the top two probabilities,
 * and the log-normaliser that turns any logit into a probability. Computed in double so that the
 * entropy of near-deterministic steps (the common case) keeps its small digits.
 */
final class TokenStats {
    double entropy;
    double top1;
    double top2;
    private double max;
    private double logSum;
    private float[] logits;

    void compute(float[] logits, int n) {
        this.logits = logits;
        double m = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            m = Math.max(m, logits[i]);
        }
        // H = log Z - sum p_i z_i  with z_i = logit_i - max and Z = sum exp(z_i).
        double z = 0;
        double weighted = 0;
        double best = Double.NEGATIVE_INFINITY;
        double second = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            double d = logits[i] - m;
            double e = Math.exp(d);
            z += e;
            weighted += e * d;
            if (d > best) {
                second = best;
                best = d;
            } else if (d > second) {
                second = d;
            }
        }
        this.max = m;
        this.logSum = Math.log(z);
        this.entropy = Math.max(0, logSum - weighted / z);
        this.top1 = Math.exp(best - logSum);
        this.top2 = second == Double.NEGATIVE_INFINITY ? 0 : Math.exp(second - logSum);
    }

    double probability(int token) {
        return Math.exp(logits[token] - max - logSum);
    }
}
