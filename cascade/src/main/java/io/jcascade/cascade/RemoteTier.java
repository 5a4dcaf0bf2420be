package io.jcascade.cascade;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;

/**
 * A tier behind an HTTP API: OpenAI Chat Completions ({@code kind: openai}; also vLLM and the
 * llama.cpp server) or Anthropic Messages ({@code kind: anthropic}), on {@link HttpClient}.
 *
 * <p>Faults: each request has a timeout ({@code timeout_ms}); 429, 5xx, timeouts, dropped
 * connections and malformed replies are retried up to {@code max_retries} times with exponential
 * backoff from {@code backoff_ms} (doubling, capped at {@code max_backoff_ms}, with jitter: a
 * delay d becomes a uniform value in [d/2, d]) and a {@code Retry-After} header (seconds) is
 * honoured when longer (capped at {@code max_backoff_ms}). Other 4xx replies are not retried. A
 * {@link CircuitBreaker} per tier opens after {@code circuit_failures} consecutive failed
 * requests and lets one trial through after {@code circuit_cooldown_ms}. Failures come back as a
 * {@link TierOutput} with an error, never as an exception. The API key is read from the
 * environment variable {@code api_key_env} names and appears in no message, log or
 * {@code toString}.
 *
 * <pre>{@code
 * TierConfig c = TierConfig.openai("frontier", "https://api.openai.com/v1", "gpt-4o", "OPENAI_API_KEY", 2.5, 10);
 * try (RemoteTier t = new RemoteTier(c, System::getenv)) {
 *     TierOutput out = t.call("What is 37*48?", Tier.EarlyExit.NEVER);
 *     System.out.println(out.ok() ? out.completion() : out.error());
 * }
 * }</pre>
 */
public final class RemoteTier implements Tier {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final TierConfig config;
    private final Function<String, String> env;
    private final HttpClient http;
    private final CircuitBreaker breaker;
    private final URI endpoint;

    /**
     * @param env looks up environment variables (for the API key); {@code System::getenv} in production
     */
    public RemoteTier(TierConfig config, Function<String, String> env) {
        if (!config.kind().remote()) {
            throw new IllegalArgumentException("not a remote tier: " + config.name());
        }
        this.config = config;
        this.env = env;
        this.http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofMillis(config.timeoutMs())).build();
        this.breaker = new CircuitBreaker(config.circuitFailures(), config.circuitCooldownMs());
        String base = config.baseUrl().endsWith("/") ? config.baseUrl() : config.baseUrl() + "/";
        this.endpoint = URI.create(base).resolve(config.kind() == TierKind.OPENAI ? "chat/completions" : "messages");
    }

    @Override
    public TierConfig config() {
        return config;
    }

    /** This tier's circuit breaker. */
    public CircuitBreaker breaker() {
        return breaker;
    }

    /** The URL requests go to. */
    public URI endpoint() {
        return endpoint;
    }

    @Override
    public TierOutput call(String prompt, EarlyExit ignored) {
        long start = System.nanoTime();
        if (!breaker.tryAcquire()) {
            return TierOutput.failed("circuit breaker open after " + breaker.consecutiveFailures()
                    + " consecutive failures", LocalTier.millisSince(start), 0);
        }
        String key = null;
        if (config.apiKeyEnv() != null) {
            key = env.apply(config.apiKeyEnv());
            if (key == null || key.isBlank()) {
                breaker.onFailure();
                return TierOutput.failed("environment variable " + config.apiKeyEnv() + " is not set",
                        LocalTier.millisSince(start), 0);
            }
        }
        HttpRequest request = request(prompt, key);
        String lastError = null;
        int attempts = 0;
        for (int attempt = 0; attempt <= config.maxRetries(); attempt++) {
            attempts++;
            long retryAfterMs = -1;
            try {
                HttpResponse<String> resp = http.send(request, HttpResponse.BodyHandlers.ofString());
                int status = resp.statusCode();
                if (status == 200) {
                    try {
                        TierOutput out = parse(resp.body(), start, attempts);
                        breaker.onSuccess();
                        return out;
                    } catch (MalformedReply e) {
                        lastError = "malformed reply: " + e.getMessage();
                    }
                } else if (status == 429 || status >= 500) {
                    lastError = "HTTP " + status + snippet(resp.body());
                    retryAfterMs = retryAfter(resp);
                } else {
                    // 4xx other than 429: the request itself is wrong (key, model, body); retrying will not help.
                    breaker.onFailure();
                    return TierOutput.failed(redact("HTTP " + status + snippet(resp.body()), key),
                            LocalTier.millisSince(start), attempts);
                }
            } catch (HttpTimeoutException e) {
                lastError = "timed out after " + config.timeoutMs() + " ms";
            } catch (IOException e) {
                lastError = e.getClass().getSimpleName() + (e.getMessage() != null ? ": " + e.getMessage() : "");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                breaker.onFailure();
                return TierOutput.failed("interrupted", LocalTier.millisSince(start), attempts);
            }
            if (attempt < config.maxRetries()) {
                try {
                    Thread.sleep(backoff(attempt, retryAfterMs));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
        }
        breaker.onFailure();
        return TierOutput.failed(redact(lastError, key) + " (after " + attempts + " attempt" + (attempts == 1 ? "" : "s") + ")",
                LocalTier.millisSince(start), attempts);
    }

    /** The delay before retry number {@code attempt + 1}: exponential with jitter, at least Retry-After. */
    long backoff(int attempt, long retryAfterMs) {
        long cap = config.maxBackoffMs();
        long base = Math.min(cap, config.backoffMs() << Math.min(attempt, 30));
        long jittered = base <= 1 ? base : base / 2 + ThreadLocalRandom.current().nextLong(base / 2 + 1);
        if (retryAfterMs >= 0) {
            jittered = Math.max(jittered, Math.min(cap, retryAfterMs));
        }
        return jittered;
    }

    private static long retryAfter(HttpResponse<?> resp) {
        Optional<String> v = resp.headers().firstValue("Retry-After");
        if (v.isEmpty()) {
            return -1;
        }
        try {
            double seconds = Double.parseDouble(v.get().trim());
            return seconds < 0 ? -1 : (long) (seconds * 1000);
        } catch (NumberFormatException e) {
            return -1; // an HTTP date: fall back to the backoff
        }
    }

    /** Removes the key from a message, should a server echo it back. */
    private static String redact(String message, String key) {
        return key == null || key.isEmpty() || message == null ? message : message.replace(key, "[redacted]");
    }

    private static String snippet(String body) {
        if (body == null || body.isBlank()) {
            return "";
        }
        String one = body.replaceAll("\\s+", " ").trim();
        return ": " + (one.length() > 200 ? one.substring(0, 200) + "..." : one);
    }

    private HttpRequest request(String prompt, String key) {
        ObjectNode body = JSON.createObjectNode();
        body.put("model", config.model());
        ArrayNode messages = body.putArray("messages");
        if (config.kind() == TierKind.OPENAI) {
            if (config.system() != null) {
                messages.addObject().put("role", "system").put("content", config.system());
            }
            messages.addObject().put("role", "user").put("content", prompt);
            if (config.maxTokens() > 0) {
                body.put("max_tokens", config.maxTokens());
            }
            if (!config.stop().isEmpty()) {
                ArrayNode stop = body.putArray("stop");
                config.stop().forEach(stop::add);
            }
        } else {
            messages.addObject().put("role", "user").put("content", prompt);
            body.put("max_tokens", config.maxTokens());
            if (config.system() != null) {
                body.put("system", config.system());
            }
            if (!config.stop().isEmpty()) {
                ArrayNode stop = body.putArray("stop_sequences");
                config.stop().forEach(stop::add);
            }
        }
        if (!Double.isNaN(config.temperature())) {
            body.put("temperature", config.temperature());
        }
        HttpRequest.Builder b = HttpRequest.newBuilder(endpoint).timeout(Duration.ofMillis(config.timeoutMs()))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString()));
        if (config.kind() == TierKind.OPENAI) {
            if (key != null) {
                b.header("Authorization", "Bearer " + key);
            }
        } else {
            if (key != null) {
                b.header("x-api-key", key);
            }
            b.header("anthropic-version", config.anthropicVersion());
        }
        return b.build();
    }

    private TierOutput parse(String body, long start, int attempts) throws MalformedReply {
        JsonNode root;
        try {
            root = JSON.readTree(body);
        } catch (JsonProcessingException e) {
            throw new MalformedReply("not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) {
            throw new MalformedReply("expected a JSON object");
        }
        String text;
        int in;
        int out;
        if (config.kind() == TierKind.OPENAI) {
            JsonNode content = root.path("choices").path(0).path("message").path("content");
            if (!content.isTextual()) {
                throw new MalformedReply("no choices[0].message.content string");
            }
            text = content.asText();
            in = usage(root, "prompt_tokens");
            out = usage(root, "completion_tokens");
        } else {
            JsonNode content = root.path("content");
            if (!content.isArray()) {
                throw new MalformedReply("no content array");
            }
            StringBuilder sb = new StringBuilder();
            for (JsonNode block : content) {
                if ("text".equals(block.path("type").asText("text")) && block.path("text").isTextual()) {
                    sb.append(block.path("text").asText());
                }
            }
            text = sb.toString();
            in = usage(root, "input_tokens");
            out = usage(root, "output_tokens");
        }
        return new TierOutput(text, null, in, out, LocalTier.millisSince(start), config.cost(in, out), false,
                attempts, null);
    }

    private static int usage(JsonNode root, String field) throws MalformedReply {
        JsonNode v = root.path("usage").path(field);
        if (!v.isIntegralNumber() || v.asInt() < 0) {
            throw new MalformedReply("no usage." + field + " count");
        }
        return v.asInt();
    }

    private static final class MalformedReply extends Exception {
        private static final long serialVersionUID = 1L;

        MalformedReply(String message) {
            super(message);
        }
    }

    @Override
    public void close() {
        http.close();
    }

    @Override
    public String toString() {
        return "RemoteTier[" + config.name() + ", " + config.kind().key() + ", " + endpoint + "]";
    }
}
