package io.jcascade.cli.server;

import io.micrometer.common.util.internal.logging.InternalLoggerFactory;
import io.micrometer.common.util.internal.logging.JdkLoggerFactory;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The server's Micrometer meters, scraped in Prometheus text format at {@code GET /metrics}:
 * <ul>
 * <li>{@code jcascade_http_requests_seconds} (count, sum, max) by {@code endpoint} and {@code status};
 * <li>{@code jcascade_prompt_tokens_total}, {@code jcascade_generated_tokens_total};
 * <li>{@code jcascade_time_to_first_token_seconds}, {@code jcascade_generation_seconds} by {@code endpoint};
 * <li>{@code jcascade_generations_active}, {@code jcascade_generations_queued} (gauges);
 * <li>{@code jcascade_requests_rejected_total} (503s).
 * </ul>
 *
 * <pre>{@code
 * ServerMetrics m = new ServerMetrics(() -> 0, () -> 0);
 * m.request("/v1/completions", 200, 1_000_000);
 * System.out.println(m.scrape());
 * }</pre>
 */
public final class ServerMetrics {
    static {
        // Micrometer logs through SLF4J when its API is on the class path (Jinjava brings it) and then
        // prints "No SLF4J providers were found" at startup; java.util.logging says nothing unless asked.
        InternalLoggerFactory.setDefaultFactory(JdkLoggerFactory.INSTANCE);
    }

    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final Counter promptTokens;
    private final Counter generatedTokens;
    private final Counter rejected;

    /** @param active running generations; @param queued requests waiting for a generation slot */
    public ServerMetrics(Supplier<Number> active, Supplier<Number> queued) {
        promptTokens = Counter.builder("jcascade.prompt.tokens").description("prompt tokens processed")
                .register(registry);
        generatedTokens = Counter.builder("jcascade.generated.tokens").description("tokens generated")
                .register(registry);
        rejected = Counter.builder("jcascade.requests.rejected").description("requests answered 503 (overloaded)")
                .register(registry);
        Gauge.builder("jcascade.generations.active", () -> active.get().doubleValue())
                .description("generations running").register(registry);
        Gauge.builder("jcascade.generations.queued", () -> queued.get().doubleValue())
                .description("requests waiting for a generation slot").register(registry);
    }

    /** One finished HTTP request. */
    public void request(String endpoint, int status, long nanos) {
        Timer.builder("jcascade.http.requests").description("HTTP requests by endpoint and status")
                .tag("endpoint", endpoint).tag("status", Integer.toString(status)).register(registry)
                .record(nanos, TimeUnit.NANOSECONDS);
    }

    /** One finished generation. */
    public void generation(String endpoint, int prompt, int generated, long firstTokenNanos, long totalNanos) {
        promptTokens.increment(prompt);
        generatedTokens.increment(generated);
        if (firstTokenNanos >= 0) {
            Timer.builder("jcascade.time.to.first.token").description("from admission to the first generated token")
                    .tag("endpoint", endpoint).register(registry).record(firstTokenNanos, TimeUnit.NANOSECONDS);
        }
        Timer.builder("jcascade.generation").description("from admission to the last generated token")
                .tag("endpoint", endpoint).register(registry).record(totalNanos, TimeUnit.NANOSECONDS);
    }

    public void rejected() {
        rejected.increment();
    }

    /** The Prometheus text exposition of every meter. */
    public String scrape() {
        return registry.scrape();
    }

    /** The registry, for embedding services that add their own meters. */
    public PrometheusMeterRegistry registry() {
        return registry;
    }
}
