package io.jcascade.cascade;

/**
 * What one tier returned for one prompt: the answer or an error, with tokens, latency and cost.
 *
 * <pre>{@code
 * TierOutput out = tier.call(prompt, Tier.EarlyExit.NEVER);
 * if (out.ok()) System.out.println(out.completion());
 * }</pre>
 *
 * @param completion the answer (null when the call failed); cut short when {@code earlyExit}
 * @param signals the confidence signals (local tiers), else null
 * @param promptTokens input tokens (as the tokenizer or the API's usage counted them)
 * @param completionTokens output tokens
 * @param latencyMs wall time of the call, retries and backoff included
 * @param cost what the call cost under the tier's prices
 * @param earlyExit whether the generation was cancelled because escalation was certain
 * @param attempts HTTP attempts made (remote tiers), 1 for local tiers
 * @param error why the call failed, or null; never contains an API key
 */
public record TierOutput(String completion, Signals signals, int promptTokens, int completionTokens,
        double latencyMs, double cost, boolean earlyExit, int attempts, String error) {

    /** Whether the tier answered. */
    public boolean ok() {
        return error == null;
    }

    /** A failed call. */
    public static TierOutput failed(String error, double latencyMs, int attempts) {
        return new TierOutput(null, null, 0, 0, latencyMs, 0, false, attempts, error);
    }
}
