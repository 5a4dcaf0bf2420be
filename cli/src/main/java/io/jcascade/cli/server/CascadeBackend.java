package io.jcascade.cli.server;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jcascade.cascade.Cascade;
import io.jcascade.cascade.CascadeResult;
import io.jcascade.cascade.Signals;
import io.jcascade.cascade.Tier;
import io.jcascade.cascade.TierAttempt;
import io.jcascade.engine.CancelToken;
import io.jcascade.engine.chat.ChatMessage;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Answers every request through a {@link Cascade}: the response's {@code model} is the tier that
 * answered, and {@code "jcascade": {"tier", "escalated", "degraded", "signals", "cost", "latency_ms",
 * "attempts"}} says how it got there.
 *
 * <p>The cascade takes one prompt: a completion's {@code prompt}, or a chat's single user turn
 * (system messages are left out: each tier has its own, in the config). Sampling keys,
 * {@code max_tokens} and {@code stop} are the tiers' own, from the config; the request's are
 * ignored. A streamed request gets the whole answer as one chunk once the cascade has decided
 * (the sink is not called).
 *
 * <pre>{@code
 * ServerBackend b = new CascadeBackend(Cascade.fromConfig(Path.of("models/arith-cascade.json")));
 * }</pre>
 */
public final class CascadeBackend implements ServerBackend {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Cascade cascade;

    /** Serves {@code cascade}; it is closed with this backend. */
    public CascadeBackend(Cascade cascade) {
        this.cascade = cascade;
    }

    @Override
    public String name() {
        return "cascade";
    }

    @Override
    public List<String> modelIds() {
        List<String> ids = new ArrayList<>();
        ids.add(name());
        for (Tier t : cascade.tiers()) {
            ids.add(t.name());
        }
        return ids;
    }

    @Override
    public int contextLength() {
        return Integer.MAX_VALUE;
    }

    @Override
    public Answer complete(CompletionRequest request, TokenSink sink, CancelToken cancel) {
        String prompt = request.chat() ? singleTurn(request.messages()) : request.prompt();
        CascadeResult r = cascade.run(prompt);
        TierAttempt answering = r.answering();
        if (r.tier() == null || answering == null) {
            StringBuilder why = new StringBuilder("no tier of the cascade answered");
            for (TierAttempt a : r.attempts()) {
                if (a.output().error() != null) {
                    why.append("; ").append(a.tier()).append(": ").append(a.output().error());
                }
            }
            throw new ApiException(502, "server_error", why.toString(), null, "cascade_failed");
        }
        ObjectNode ext = JSON.createObjectNode();
        ext.put("tier", r.tier());
        ext.put("escalated", r.escalated());
        ext.put("degraded", r.degraded());
        ObjectNode signals = ext.putObject("signals");
        for (Map.Entry<String, Signals> e : r.signals().entrySet()) {
            ObjectNode s = signals.putObject(e.getKey());
            e.getValue().asMap().forEach((k, v) -> s.put(k, ModelBackend.round(v)));
        }
        ext.put("cost", r.cost());
        ext.put("latency_ms", ModelBackend.round(r.latencyMs()));
        ArrayNode attempts = ext.putArray("attempts");
        for (TierAttempt a : r.attempts()) {
            ObjectNode o = attempts.addObject().put("tier", a.tier()).put("decision", a.decision().key())
                    .put("prompt_tokens", a.output().promptTokens())
                    .put("completion_tokens", a.output().completionTokens()).put("cost", a.output().cost());
            if (a.output().error() != null) {
                o.put("error", a.output().error());
            }
        }
        return new Answer(r.tier(), r.completion(), answering.output().promptTokens(),
                answering.output().completionTokens(), "stop", ext);
    }

    private static String singleTurn(List<ChatMessage> messages) {
        List<ChatMessage> turns = messages.stream().filter(m -> !m.role().equals("system")).toList();
        if (turns.size() != 1 || !turns.get(0).role().equals("user")) {
            throw ApiException.badRequest("messages: the cascade answers one user message (plus optional system"
                    + " messages), got " + turns.size() + " non-system messages", "messages");
        }
        return turns.get(0).content();
    }

    @Override
    public void close() {
        cascade.close();
    }
}
