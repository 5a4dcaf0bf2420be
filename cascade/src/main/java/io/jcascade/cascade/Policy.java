package io.jcascade.cascade;

import java.util.List;

/**
 * When to escalate from one tier to the next: one signal and one threshold per step
 * ({@code thresholds.get(i)} governs the step from tier i to tier i+1).
 *
 * <p>Escalate when an uncertainty signal (the entropies) is at or above the threshold, or when a
 * confidence signal ({@code min_prob}, {@code mean_margin}, {@code seq_logprob}) is below it.
 * With {@code earlyExit}, a local tier's generation is cancelled as soon as escalation is certain
 * whatever the remaining tokens: for {@code max_entropy} and {@code min_prob} the moment one token
 * crosses, for {@code seq_logprob} the moment the running sum falls below (it can only fall), for
 * {@code first_k_entropy} once k tokens are in. Mean-type signals and the percentile can go either
 * way until the end, so they never exit early.
 *
 * <pre>{@code
 * Policy p = new Policy(Signal.MAX_ENTROPY, List.of(0.5), 3, true);
 * boolean up = p.escalates(signals, 0);
 * }</pre>
 *
 * @param signal the signal the decision uses
 * @param thresholds one per step between tiers
 * @param firstK how many leading tokens {@code first_k_entropy} averages
 * @param earlyExit whether to cancel a local generation once escalation is certain
 */
public record Policy(Signal signal, List<Double> thresholds, int firstK, boolean earlyExit) {

    public Policy {
        thresholds = List.copyOf(thresholds);
        for (Double t : thresholds) {
            if (t == null || !Double.isFinite(t)) {
                throw new IllegalArgumentException("thresholds must be finite numbers, got " + thresholds);
            }
        }
        if (firstK < 1) {
            throw new IllegalArgumentException("first_k must be >= 1, got " + firstK);
        }
    }

    /** The threshold of the step from tier {@code step} to tier {@code step + 1}. */
    public double threshold(int step) {
        return thresholds.get(step);
    }

    /** Whether finished signals escalate past step {@code step}. */
    public boolean escalates(Signals s, int step) {
        return signal.escalates(s.get(signal), threshold(step));
    }

    /** Whether escalation past {@code step} is already certain, whatever tokens come next. */
    public boolean certain(SignalAccumulator acc, int step) {
        double t = threshold(step);
        return switch (signal) {
            case MAX_ENTROPY, MIN_PROB, SEQ_LOGPROB -> acc.count() > 0 && signal.escalates(acc.current(signal), t);
            case FIRST_K_ENTROPY -> acc.count() >= acc.firstK() && signal.escalates(acc.current(signal), t);
            case MEAN_ENTROPY, ENTROPY_Q90, MEAN_MARGIN -> false;
        };
    }

    /** This policy with another signal. */
    public Policy withSignal(Signal s) {
        return new Policy(s, thresholds, firstK, earlyExit);
    }

    /** This policy with other thresholds. */
    public Policy withThresholds(List<Double> t) {
        return new Policy(signal, t, firstK, earlyExit);
    }

    /** This policy with early exit on or off. */
    public Policy withEarlyExit(boolean on) {
        return new Policy(signal, thresholds, firstK, on);
    }
}
