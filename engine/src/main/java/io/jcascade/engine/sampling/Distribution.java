package io.jcascade.engine.sampling;

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
        checkLength(logits, n);
        double max = max(logits, n);
        if (max == Double.NEGATIVE_INFINITY) {
            return 0;
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
        return Math.max(0, Math.log(z) - weighted / z);
    }

    /** Top-1 and top-2 tokens with their softmax probabilities (lowest id first on ties). */
    public static Top top2(float[] logits, int n) {
        checkLength(logits, n);
        int id1 = -1;
        int id2 = -1;
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
        double max = logits[id1];
        if (max == Double.NEGATIVE_INFINITY) {
            // All tokens impossible: treat as uniform, the limit of equal logits.
            return new Top(id1, 1.0 / n, id2, id2 < 0 ? 0 : 1.0 / n);
        }
        double z = 0;
        for (int i = 0; i < n; i++) {
            if (!Float.isNaN(logits[i])) {
                z += Math.exp(logits[i] - max);
            }
        }
        double p2 = id2 < 0 ? 0 : Math.exp(logits[id2] - max) / z;
        return new Top(id1, 1 / z, id2, p2);
    }

    /** log(sum(exp(logits[0, n)))), stable for any magnitude. */
    public static double logSumExp(float[] logits, int n) {
        checkLength(logits, n);
        double max = max(logits, n);
        if (max == Double.NEGATIVE_INFINITY || max == Double.POSITIVE_INFINITY) {
            return max;
        }
        double z = 0;
        for (int i = 0; i < n; i++) {
            if (!Float.isNaN(logits[i])) {
                z += Math.exp(logits[i] - max);
            }
        }
        return max + Math.log(z);
    }

    private static double max(float[] logits, int n) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            if (logits[i] > max) {
                max = logits[i];
            }
        }
        return max;
    }

    private static void checkLength(float[] logits, int n) {
        if (n <= 0 || n > logits.length) {
            throw new IllegalArgumentException("n " + n + " outside 1.." + logits.length);
        }
    }
}
