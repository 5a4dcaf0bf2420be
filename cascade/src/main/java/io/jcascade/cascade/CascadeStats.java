package io.jcascade.cascade;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Running totals over many cascade results: share answered per tier, escalations, degraded
 * answers, cost against always using the last tier, and latency percentiles.
 *
 * <p>The always-last cost is what the last tier actually cost where it was asked; elsewhere it
 * is estimated by pricing the answering tier's prompt and completion token counts at the last
 * tier's prices (exact when the tiers share a tokenizer and answer at the same length).
 *
 * <pre>{@code
 * CascadeStats stats = new CascadeStats(cascade.tiers().stream().map(Tier::config).toList());
 * for (String p : prompts) stats.add(cascade.run(p));
 * System.out.println(stats.summary());
 * }</pre>
 */
public final class CascadeStats {
    private final List<TierConfig> tiers;
    private final Map<String, Integer> answered = new LinkedHashMap<>();
    private final List<Double> latencies = new ArrayList<>();
    private int count;
    private int escalated;
    private int degraded;
    private double cost;
    private double alwaysLastCost;

    public CascadeStats(List<TierConfig> tiers) {
        this.tiers = List.copyOf(tiers);
        for (TierConfig t : tiers) {
            answered.put(t.name(), 0);
        }
    }

    /** Adds one result. */
    public synchronized void add(CascadeResult r) {
        count++;
        if (r.tier() != null) {
            answered.merge(r.tier(), 1, Integer::sum);
        }
        escalated += r.escalated() ? 1 : 0;
        degraded += r.degraded() ? 1 : 0;
        cost += r.cost();
        latencies.add(r.latencyMs());
        alwaysLastCost += alwaysLastCost(r);
    }

    private double alwaysLastCost(CascadeResult r) {
        TierConfig last = tiers.get(tiers.size() - 1);
        for (TierAttempt a : r.attempts()) {
            if (a.tier().equals(last.name()) && a.output().ok()) {
                return a.output().cost();
            }
        }
        TierAttempt basis = r.answering();
        if (basis == null) {
            basis = r.attempts().isEmpty() ? null : r.attempts().get(0);
        }
        return basis == null ? 0 : last.cost(basis.output().promptTokens(), basis.output().completionTokens());
    }

    /** Results added. */
    public synchronized int count() {
        return count;
    }

    /** Results answered by each tier, in cascade order. */
    public synchronized Map<String, Integer> answeredPerTier() {
        return new LinkedHashMap<>(answered);
    }

    public synchronized int escalated() {
        return escalated;
    }

    public synchronized int degraded() {
        return degraded;
    }

    /** What the cascade cost. */
    public synchronized double cost() {
        return cost;
    }

    /** What always asking the last tier would have cost (see the class comment). */
    public synchronized double alwaysLastCost() {
        return alwaysLastCost;
    }

    /** The fraction saved against always asking the last tier (0 when that costs nothing). */
    public synchronized double savings() {
        return alwaysLastCost > 0 ? 1 - cost / alwaysLastCost : 0;
    }

    /** A latency percentile in ms (nearest rank), e.g. {@code latencyPercentile(0.9)}. */
    public synchronized double latencyPercentile(double q) {
        if (latencies.isEmpty()) {
            return 0;
        }
        double[] sorted = latencies.stream().mapToDouble(Double::doubleValue).toArray();
        Arrays.sort(sorted);
        int rank = (int) Math.ceil(q * sorted.length);
        return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
    }

    /** A few lines: share per tier, cost against always-last, latency percentiles. */
    public synchronized String summary() {
        StringBuilder b = new StringBuilder();
        b.append(String.format("prompts %d, escalated %d (%.1f%%), degraded %d%n", count, escalated,
                pct(escalated), degraded));
        b.append("answered by:");
        answered.forEach((t, n) -> b.append(String.format(" %s %d (%.1f%%)", t, n, pct(n))));
        b.append(String.format("%ncost %s vs %s always using %s: %.1f%% saved%n", money(cost), money(alwaysLastCost),
                tiers.get(tiers.size() - 1).name(), savings() * 100));
        b.append(String.format("latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms", latencyPercentile(0.5),
                latencyPercentile(0.9), latencyPercentile(0.99)));
        return b.toString();
    }

    private double pct(int n) {
        return count == 0 ? 0 : 100.0 * n / count;
    }

    /** A cost with enough digits for fractions of a cent. */
    public static String money(double v) {
        return String.format("$%.8f", v);
    }
}
