package io.jcascade.cascade;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Instant;
import java.util.Map;

/**
 * The JSON forms of cascade results: the fields the CLI adds to each output line, the decision
 * log line and the distillation line.
 *
 * <pre>{@code
 * ObjectNode line = CascadeJson.decisionLine(result, cascade.policy());
 * System.out.println(line);
 * }</pre>
 */
public final class CascadeJson {
    static final ObjectMapper JSON = new ObjectMapper();

    private CascadeJson() {
    }

    /** All signals of a generation as a JSON object keyed by signal name. */
    public static ObjectNode signals(Signals s) {
        ObjectNode o = JSON.createObjectNode();
        for (Map.Entry<String, Double> e : s.asMap().entrySet()) {
            o.put(e.getKey(), round(e.getValue()));
        }
        return o;
    }

    /**
     * Adds the output fields to {@code line}: {@code completion}, {@code tier}, {@code escalated},
     * {@code signals} (keyed by tier name), {@code cost} and {@code degraded}.
     */
    public static ObjectNode addOutputFields(ObjectNode line, CascadeResult r) {
        line.put("completion", r.completion());
        line.put("tier", r.tier());
        line.put("escalated", r.escalated());
        ObjectNode sig = line.putObject("signals");
        r.signals().forEach((tier, s) -> sig.set(tier, signals(s)));
        line.put("cost", r.cost());
        line.put("degraded", r.degraded());
        return line;
    }

    /** One decision-log line: the prompt, the policy, every attempt with its signals, decision, cost and latency. */
    public static ObjectNode decisionLine(CascadeResult r, Policy policy) {
        ObjectNode o = JSON.createObjectNode();
        o.put("ts", Instant.now().toString());
        o.put("prompt", r.prompt());
        o.put("signal", policy.signal().key());
        ArrayNode th = o.putArray("thresholds");
        policy.thresholds().forEach(th::add);
        o.put("routed_to", r.routedTo());
        o.put("tier", r.tier());
        o.put("completion", r.completion());
        o.put("escalated", r.escalated());
        o.put("degraded", r.degraded());
        o.put("cost", r.cost());
        o.put("latency_ms", round(r.latencyMs()));
        ArrayNode attempts = o.putArray("attempts");
        for (TierAttempt a : r.attempts()) {
            ObjectNode x = attempts.addObject();
            TierOutput out = a.output();
            x.put("tier", a.tier());
            x.put("kind", a.kind().key());
            x.put("decision", a.decision().key());
            if (Double.isNaN(a.threshold())) {
                x.putNull("threshold");
            } else {
                x.put("threshold", a.threshold());
            }
            if (out.signals() != null) {
                x.set("signals", signals(out.signals()));
            } else {
                x.putNull("signals");
            }
            x.put("early_exit", out.earlyExit());
            x.put("completion", out.completion());
            x.put("prompt_tokens", out.promptTokens());
            x.put("completion_tokens", out.completionTokens());
            x.put("latency_ms", round(out.latencyMs()));
            x.put("cost", out.cost());
            x.put("http_attempts", out.attempts());
            x.put("error", out.error());
        }
        return o;
    }

    /** One distillation line: {@code {"prompt", "completion", "tier"}}. */
    public static ObjectNode distillLine(CascadeResult r) {
        ObjectNode o = JSON.createObjectNode();
        o.put("prompt", r.prompt());
        o.put("completion", r.completion());
        o.put("tier", r.tier());
        return o;
    }

    static double round(double v) {
        if (!Double.isFinite(v)) {
            return v;
        }
        return Math.round(v * 1e6) / 1e6;
    }
}
