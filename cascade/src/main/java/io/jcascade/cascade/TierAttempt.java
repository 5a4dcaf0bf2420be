package io.jcascade.cascade;

/**
 * One tier tried for one prompt, and what the policy decided about it.
 *
 * <pre>{@code
 * for (TierAttempt a : result.attempts()) {
 *     System.out.println(a.tier() + " " + a.decision() + " " + a.output().latencyMs() + " ms");
 * }
 * }</pre>
 *
 * @param tier the tier's name
 * @param kind the tier's kind
 * @param index the tier's position in the cascade
 * @param decision what happened: {@link Decision}
 * @param threshold the threshold of the step after this tier (NaN for the last tier and remote tiers)
 * @param output the tier's answer or error, with signals, tokens, latency and cost
 */
public record TierAttempt(String tier, TierKind kind, int index, Decision decision, double threshold,
        TierOutput output) {

    /**
     * The policy's decision on one attempt.
     *
     * <pre>{@code
     * if (attempt.decision() == TierAttempt.Decision.ESCALATE) { ... }
     * }</pre>
     */
    public enum Decision {
        /** The answer was confident enough (or the tier is the last one): it is the cascade's answer. */
        ACCEPT("accept"),
        /** The signal crossed the threshold: the next tier is asked. */
        ESCALATE("escalate"),
        /** The call failed (see the output's error): the next tier is asked. */
        FAILED("failed"),
        /** Every later tier failed, so this earlier local answer is returned, marked degraded. */
        FALLBACK("fallback");

        private final String key;

        Decision(String key) {
            this.key = key;
        }

        /** The name in logs and JSON output. */
        public String key() {
            return key;
        }
    }
}
