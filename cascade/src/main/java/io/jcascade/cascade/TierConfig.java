package io.jcascade.cascade;

import java.nio.file.Path;
import java.util.List;

/**
 * One tier of a cascade config. Local tiers use {@code modelPath}, the costs per 1k tokens and
 * the sampling fields; remote tiers use {@code model} (the API's model name), {@code baseUrl},
 * {@code apiKeyEnv}, the prices per million tokens and the fault-handling fields. The API key
 * itself is never stored here: only the name of the environment variable that holds it.
 *
 * <pre>{@code
 * TierConfig small = TierConfig.local("small", Path.of("models/arith-small.gguf"), 0.0001);
 * TierConfig frontier = TierConfig.openai("frontier", "https://api.openai.com/v1", "gpt-4o",
 *         "OPENAI_API_KEY", 2.5, 10.0);
 * }</pre>
 *
 * @param name unique name, used in results and logs
 * @param kind local, openai or anthropic
 * @param model the remote model name, or the model path as written in the config for local tiers
 * @param modelPath the resolved GGUF file (local tiers), else null
 * @param costPer1kTokens local: cost per 1,000 prompt plus completion tokens
 * @param backend local: {@code cpu}, {@code cuda} or {@code auto}
 * @param threads local: CPU threads, 0 = one per core
 * @param contextLength local: context length, 0 = the model's
 * @param temperature sampling temperature; 0 is greedy (the local default, so decisions are repeatable);
 *     remote tiers send it only when set (NaN = not set)
 * @param topK local sampling
 * @param topP local sampling
 * @param minP local sampling
 * @param repeatPenalty local sampling
 * @param repeatLastN local sampling
 * @param seed local sampling seed
 * @param maxTokens most tokens to generate; remote openai sends it only when > 0
 * @param stop stop strings
 * @param baseUrl remote: the API base, e.g. {@code https://api.openai.com/v1}
 * @param apiKeyEnv remote: the environment variable holding the key, or null for none
 * @param priceInputPer1m remote: price per million input tokens
 * @param priceOutputPer1m remote: price per million output tokens
 * @param timeoutMs remote: per-request timeout
 * @param maxRetries remote: retries after the first attempt on 429, 5xx, timeouts, dropped connections, malformed replies
 * @param backoffMs remote: first backoff delay, doubled each retry, with jitter
 * @param maxBackoffMs remote: the largest backoff delay (a longer {@code Retry-After} is capped to it)
 * @param circuitFailures remote: consecutive failed requests that open the circuit breaker
 * @param circuitCooldownMs remote: how long the breaker stays open before letting one trial request through
 * @param anthropicVersion anthropic: the {@code anthropic-version} header
 * @param system remote: an optional system prompt
 */
public record TierConfig(String name, TierKind kind, String model, Path modelPath, double costPer1kTokens,
        String backend, int threads, int contextLength, double temperature, int topK, double topP, double minP,
        double repeatPenalty, int repeatLastN, long seed, int maxTokens, List<String> stop, String baseUrl,
        String apiKeyEnv, double priceInputPer1m, double priceOutputPer1m, long timeoutMs, int maxRetries,
        long backoffMs, long maxBackoffMs, int circuitFailures, long circuitCooldownMs, String anthropicVersion,
        String system) {

    public TierConfig {
        stop = List.copyOf(stop);
    }

    /** A local tier with the defaults: greedy, 256 tokens at most, auto backend. */
    public static TierConfig local(String name, Path model, double costPer1kTokens) {
        return new TierConfig(name, TierKind.LOCAL, model.toString(), model, costPer1kTokens, "auto", 0, 0, 0, 40,
                0.95, 0.05, 1.0, 64, 0, 256, List.of(), null, null, 0, 0, 0, 0, 0, 0, 0, 0, null, null);
    }

    /** An OpenAI-compatible tier with the default fault handling. */
    public static TierConfig openai(String name, String baseUrl, String model, String apiKeyEnv,
            double priceInputPer1m, double priceOutputPer1m) {
        return remote(name, TierKind.OPENAI, baseUrl, model, apiKeyEnv, priceInputPer1m, priceOutputPer1m, 0);
    }

    /** An Anthropic Messages tier with the default fault handling. */
    public static TierConfig anthropic(String name, String baseUrl, String model, String apiKeyEnv,
            double priceInputPer1m, double priceOutputPer1m, int maxTokens) {
        return remote(name, TierKind.ANTHROPIC, baseUrl, model, apiKeyEnv, priceInputPer1m, priceOutputPer1m,
                maxTokens);
    }

    private static TierConfig remote(String name, TierKind kind, String baseUrl, String model, String apiKeyEnv,
            double in, double out, int maxTokens) {
        return new TierConfig(name, kind, model, null, 0, null, 0, 0, Double.NaN, 0, 0, 0, 0, 0, 0, maxTokens,
                List.of(), baseUrl, apiKeyEnv, in, out, CascadeConfig.DEFAULT_TIMEOUT_MS, CascadeConfig.DEFAULT_RETRIES,
                CascadeConfig.DEFAULT_BACKOFF_MS, CascadeConfig.DEFAULT_MAX_BACKOFF_MS,
                CascadeConfig.DEFAULT_CIRCUIT_FAILURES, CascadeConfig.DEFAULT_CIRCUIT_COOLDOWN_MS,
                CascadeConfig.DEFAULT_ANTHROPIC_VERSION, null);
    }

    /** This tier with other fault-handling settings (remote tiers). */
    public TierConfig withFaults(long timeout, int retries, long backoff, long maxBackoff, int failures,
            long cooldown) {
        return new TierConfig(name, kind, model, modelPath, costPer1kTokens, backend, threads, contextLength,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, seed, maxTokens, stop, baseUrl, apiKeyEnv,
                priceInputPer1m, priceOutputPer1m, timeout, retries, backoff, maxBackoff, failures, cooldown,
                anthropicVersion, system);
    }

    /** This tier with another token limit. */
    public TierConfig withMaxTokens(int n) {
        return new TierConfig(name, kind, model, modelPath, costPer1kTokens, backend, threads, contextLength,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, seed, n, stop, baseUrl, apiKeyEnv,
                priceInputPer1m, priceOutputPer1m, timeoutMs, maxRetries, backoffMs, maxBackoffMs, circuitFailures,
                circuitCooldownMs, anthropicVersion, system);
    }

    /** This tier with other threads (local tiers). */
    public TierConfig withThreads(int n) {
        return new TierConfig(name, kind, model, modelPath, costPer1kTokens, backend, n, contextLength,
                temperature, topK, topP, minP, repeatPenalty, repeatLastN, seed, maxTokens, stop, baseUrl, apiKeyEnv,
                priceInputPer1m, priceOutputPer1m, timeoutMs, maxRetries, backoffMs, maxBackoffMs, circuitFailures,
                circuitCooldownMs, anthropicVersion, system);
    }

    /** The cost of a call with these token counts under this tier's prices. */
    public double cost(int inputTokens, int outputTokens) {
        if (kind == TierKind.LOCAL) {
            return costPer1kTokens * (inputTokens + outputTokens) / 1000.0;
        }
        return priceInputPer1m * inputTokens / 1e6 + priceOutputPer1m * outputTokens / 1e6;
    }
}
