package io.jcascade.cascade;

import io.jcascade.cascade.TierAttempt.Decision;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Function;

/**
 * A model cascade: a prompt goes to the cheapest tier first; a local tier's confidence signals,
 * computed while it generates, decide whether its answer stands or the next tier is asked.
 * Remote tiers that fail (after retries, or with their circuit breaker open) are skipped, and
 * when every escalation target fails the best local answer comes back marked degraded: a
 * transient remote fault never reaches the caller as an exception.
 *
 * <pre>{@code
 * try (Cascade cascade = Cascade.fromConfig(Path.of("models/arith-cascade.json"))) {
 *     CascadeResult r = cascade.run("37+485=");
 *     System.out.println(r.completion() + " from " + r.tier() + ", cost " + r.cost());
 * }
 *
 * // or, with overrides and logs:
 * try (Cascade cascade = Cascade.builder()
 *         .config(CascadeConfig.load(Path.of("models/arith-cascade.json")).withSignal(Signal.MAX_ENTROPY))
 *         .decisionLog(Path.of("decisions.jsonl"))
 *         .distillLog(Path.of("distill.jsonl"))
 *         .build()) {
 *     CascadeResult r = cascade.run("48*97=");
 * }
 * }</pre>
 *
 * <p>One {@code Cascade} may serve several threads at once. Closing it closes its local models,
 * its HTTP clients and its logs.
 */
public final class Cascade implements AutoCloseable {
    private final List<Tier> tiers;
    private final Policy policy;
    private final List<RouteRule> router;
    private final JsonlWriter decisionLog;
    private final JsonlWriter distillLog;

    private Cascade(List<Tier> tiers, Policy policy, List<RouteRule> router, JsonlWriter decisionLog,
            JsonlWriter distillLog) {
        this.tiers = List.copyOf(tiers);
        this.policy = policy;
        this.router = List.copyOf(router);
        this.decisionLog = decisionLog;
        this.distillLog = distillLog;
    }

    /** Loads a cascade from a JSON config file (see {@link CascadeConfig} for the keys). */
    public static Cascade fromConfig(Path config) throws IOException {
        return builder().config(CascadeConfig.load(config)).build();
    }

    /** A builder, for overrides, logs, custom tiers and tests. */
    public static Builder builder() {
        return new Builder();
    }

    /** The tiers, cheapest first. */
    public List<Tier> tiers() {
        return tiers;
    }

    /** The escalation policy. */
    public Policy policy() {
        return policy;
    }

    /** Runs one prompt through the cascade. Never throws for a failed tier. */
    public CascadeResult run(String prompt) {
        Objects.requireNonNull(prompt, "prompt");
        long start = System.nanoTime();
        int first = 0;
        String routedTo = null;
        for (RouteRule rule : router) {
            if (rule.matches(prompt)) {
                first = indexOf(rule.tier());
                routedTo = rule.tier();
                break;
            }
        }
        List<TierAttempt> attempts = new ArrayList<>();
        TierAttempt answer = null;
        for (int i = first; i < tiers.size() && answer == null; i++) {
            Tier tier = tiers.get(i);
            boolean last = i == tiers.size() - 1;
            boolean local = tier.config().kind() == TierKind.LOCAL;
            double threshold = last || !local ? Double.NaN : policy.threshold(i);
            int step = i;
            Tier.EarlyExit exit = !last && local && policy.earlyExit() ? acc -> policy.certain(acc, step)
                    : Tier.EarlyExit.NEVER;
            TierOutput out = tier.call(prompt, exit);
            Decision decision;
            if (!out.ok()) {
                decision = Decision.FAILED;
            } else if (last || out.signals() == null) {
                // The last tier's answer stands; a remote tier gives no signals, so its answer stands too.
                decision = Decision.ACCEPT;
            } else {
                decision = out.earlyExit() || policy.escalates(out.signals(), i) ? Decision.ESCALATE : Decision.ACCEPT;
            }
            TierAttempt attempt = new TierAttempt(tier.name(), tier.config().kind(), i, decision, threshold, out);
            attempts.add(attempt);
            if (decision == Decision.ACCEPT) {
                answer = attempt;
            }
        }
        boolean degraded = false;
        if (answer == null) {
            degraded = true;
            answer = fallback(prompt, attempts);
        }
        double cost = attempts.stream().mapToDouble(a -> a.output().cost()).sum();
        String completion = answer != null ? answer.output().completion() : "";
        String tierName = answer != null ? answer.tier() : null;
        boolean escalated = attempts.stream().anyMatch(a -> a.index() > attempts.get(0).index());
        CascadeResult result = new CascadeResult(prompt, completion, tierName, escalated, degraded, routedTo,
                attempts, cost, LocalTier.millisSince(start));
        if (decisionLog != null) {
            decisionLog.write(CascadeJson.decisionLine(result, policy));
        }
        if (distillLog != null && escalated && !degraded && answer != null) {
            distillLog.write(CascadeJson.distillLine(result));
        }
        return result;
    }

    /**
     * Every escalation target failed: pick the most confident escalated local answer by the
     * policy's signal (the later tier on a tie); if its generation was cut short by early exit,
     * generate it again in full. Returns null when no local tier answered.
     */
    private TierAttempt fallback(String prompt, List<TierAttempt> attempts) {
        int best = -1;
        for (int i = 0; i < attempts.size(); i++) {
            TierAttempt a = attempts.get(i);
            if (a.decision() != Decision.ESCALATE) {
                continue;
            }
            if (best < 0 || !moreConfident(attempts.get(best).output().signals(), a.output().signals())) {
                best = i;
            }
        }
        if (best < 0) {
            return null;
        }
        TierAttempt chosen = attempts.get(best);
        if (!chosen.output().earlyExit()) {
            TierAttempt f = new TierAttempt(chosen.tier(), chosen.kind(), chosen.index(), Decision.FALLBACK,
                    chosen.threshold(), chosen.output());
            attempts.set(best, f);
            return f;
        }
        TierOutput again = tiers.get(chosen.index()).call(prompt, Tier.EarlyExit.NEVER);
        TierAttempt f = new TierAttempt(chosen.tier(), chosen.kind(), chosen.index(),
                again.ok() ? Decision.FALLBACK : Decision.FAILED, chosen.threshold(), again);
        attempts.add(f);
        return again.ok() ? f : null;
    }

    private boolean moreConfident(Signals a, Signals b) {
        double va = a.get(policy.signal());
        double vb = b.get(policy.signal());
        return policy.signal().higherIsConfident() ? va > vb : va < vb;
    }

    private int indexOf(String name) {
        for (int i = 0; i < tiers.size(); i++) {
            if (tiers.get(i).name().equals(name)) {
                return i;
            }
        }
        throw new IllegalStateException("no tier " + name);
    }

    /** Closes the local models, the HTTP clients and the logs. */
    @Override
    public void close() {
        for (Tier t : tiers) {
            t.close();
        }
        for (JsonlWriter w : new JsonlWriter[] {decisionLog, distillLog}) {
            if (w != null) {
                try {
                    w.close();
                } catch (IOException e) {
                    // the lines were flushed as they were written
                }
            }
        }
    }

    /**
     * Builds a {@link Cascade} from a config, or from tiers made by hand.
     *
     * <pre>{@code
     * Cascade c = Cascade.builder()
     *         .config(CascadeConfig.load(Path.of("cascade.json")))
     *         .environment(Map.of("OPENAI_API_KEY", key)::get)
     *         .decisionLog(Path.of("decisions.jsonl"))
     *         .build();
     * }</pre>
     */
    public static final class Builder {
        private CascadeConfig config;
        private final List<Tier> customTiers = new ArrayList<>();
        private Policy policy;
        private List<RouteRule> router;
        private Path decisionLog;
        private Path distillLog;
        private Function<String, String> env = System::getenv;

        private Builder() {
        }

        /** Tiers, policy and router from a config; the tiers are loaded by {@link #build()}. */
        public Builder config(CascadeConfig c) {
            this.config = c;
            return this;
        }

        /** Adds a ready-made tier (instead of a config's tiers), cheapest first. */
        public Builder tier(Tier t) {
            customTiers.add(t);
            return this;
        }

        /** The policy (overrides the config's). */
        public Builder policy(Policy p) {
            this.policy = p;
            return this;
        }

        /** The router rules (override the config's). */
        public Builder router(List<RouteRule> rules) {
            this.router = List.copyOf(rules);
            return this;
        }

        /** Appends one JSON line per prompt to this file. */
        public Builder decisionLog(Path p) {
            this.decisionLog = p;
            return this;
        }

        /** Appends escalated prompts with their final answer to this file. */
        public Builder distillLog(Path p) {
            this.distillLog = p;
            return this;
        }

        /** Where API keys are looked up (default {@code System::getenv}). */
        public Builder environment(Function<String, String> e) {
            this.env = e;
            return this;
        }

        /** Loads the tiers and opens the logs. */
        public Cascade build() throws IOException {
            if (config != null && !customTiers.isEmpty()) {
                throw new IllegalStateException("give either a config or tiers, not both");
            }
            if (config == null && customTiers.isEmpty()) {
                throw new IllegalStateException("no tiers: give a config or at least one tier");
            }
            List<Tier> tiers = new ArrayList<>();
            JsonlWriter decisions = null;
            JsonlWriter distill = null;
            try {
                if (config != null) {
                    for (TierConfig tc : config.tiers()) {
                        int firstK = (policy != null ? policy : config.policy()).firstK();
                        tiers.add(tc.kind() == TierKind.LOCAL ? LocalTier.load(tc, firstK) : new RemoteTier(tc, env));
                    }
                } else {
                    tiers.addAll(customTiers);
                }
                Policy p = policy != null ? policy : config != null ? config.policy() : null;
                if (p == null) {
                    if (tiers.size() > 1) {
                        throw new IllegalStateException("a cascade of " + tiers.size() + " tiers needs a policy");
                    }
                    p = new Policy(Signal.MEAN_ENTROPY, List.of(), CascadeConfig.DEFAULT_FIRST_K, true);
                }
                if (tiers.size() > 1 && p.thresholds().size() == 1 && tiers.size() > 2) {
                    List<Double> all = new ArrayList<>();
                    for (int i = 0; i < tiers.size() - 1; i++) {
                        all.add(p.thresholds().get(0));
                    }
                    p = p.withThresholds(all);
                }
                if (p.thresholds().size() != tiers.size() - 1) {
                    throw new ConfigException("thresholds: expected " + (tiers.size() - 1) + " (one per step), got "
                            + p.thresholds().size());
                }
                List<RouteRule> rules = router != null ? router : config != null ? config.router() : List.of();
                for (RouteRule r : rules) {
                    if (tiers.stream().noneMatch(t -> t.name().equals(r.tier()))) {
                        throw new ConfigException("router: no tier named \"" + r.tier() + "\"");
                    }
                }
                decisions = decisionLog != null ? JsonlWriter.append(decisionLog) : null;
                distill = distillLog != null ? JsonlWriter.append(distillLog) : null;
                return new Cascade(tiers, p, rules, decisions, distill);
            } catch (IOException | RuntimeException e) {
                for (Tier t : tiers) {
                    t.close();
                }
                if (decisions != null) {
                    decisions.close();
                }
                throw e;
            }
        }
    }
}
