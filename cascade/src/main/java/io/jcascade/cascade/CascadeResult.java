package io.jcascade.cascade;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The outcome of one prompt through the cascade: the answer, the tier that gave it, and every
 * tier tried with its signals, tokens, latency and cost.
 *
 * <pre>{@code
 * CascadeResult r = cascade.run("37+485=");
 * System.out.println(r.completion() + " from " + r.tier() + (r.escalated() ? " (escalated)" : ""));
 * System.out.println("cost " + r.cost() + ", small mean entropy " + r.signals().get("small").meanEntropy());
 * }</pre>
 *
 * @param prompt the prompt
 * @param completion the answer; empty when no tier answered at all
 * @param tier the name of the tier that gave the answer, or null when none did
 * @param escalated whether the answer came from a later tier than the one the cascade started at
 * @param degraded whether the answer is a fallback: every escalation target failed, so it comes
 *     from an earlier local tier that the policy had escalated from (or nothing answered)
 * @param routedTo the tier a router rule sent the prompt to, or null
 * @param attempts every tier tried, in order
 * @param cost the total cost of every attempt
 * @param latencyMs wall time of the whole cascade for this prompt
 */
public record CascadeResult(String prompt, String completion, String tier, boolean escalated, boolean degraded,
        String routedTo, List<TierAttempt> attempts, double cost, double latencyMs) {

    public CascadeResult {
        attempts = List.copyOf(attempts);
    }

    /** The signals of every tier that produced some, keyed by tier name (the last attempt of a tier wins). */
    public Map<String, Signals> signals() {
        Map<String, Signals> m = new LinkedHashMap<>();
        for (TierAttempt a : attempts) {
            if (a.output().signals() != null) {
                m.put(a.tier(), a.output().signals());
            }
        }
        return m;
    }

    /** The attempt that gave the answer, or null. */
    public TierAttempt answering() {
        for (int i = attempts.size() - 1; i >= 0; i--) {
            TierAttempt a = attempts.get(i);
            if (a.decision() == TierAttempt.Decision.ACCEPT || a.decision() == TierAttempt.Decision.FALLBACK) {
                return a;
            }
        }
        return null;
    }
}
