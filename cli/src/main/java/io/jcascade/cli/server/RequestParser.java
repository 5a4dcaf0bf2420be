package io.jcascade.cli.server;

import com.fasterxml.jackson.databind.JsonNode;
import io.jcascade.engine.GenerationParams;
import io.jcascade.engine.chat.ChatMessage;
import io.jcascade.engine.sampling.SamplingParams;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Checks and reads the JSON body of a completion request. Every problem is an
 * {@link ApiException} (400) that names the field. Keys it does not know are ignored, as OpenAI
 * clients send many; {@code model} is ignored too (as the llama.cpp server does), but must be a
 * string when present.
 *
 * <p>Defaults are llama.cpp's: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, a fresh seed,
 * and {@code max_tokens} up to the end of the context.
 *
 * <pre>{@code
 * CompletionRequest r = RequestParser.parse(new ObjectMapper().readTree("{\"prompt\": \"37+485=\", \"max_tokens\": 8}"),
 *         false, 64);
 * }</pre>
 */
public final class RequestParser {

    private RequestParser() {
    }

    /**
     * @param chat whether the body is a chat request ({@code messages}) or a completion ({@code prompt})
     * @param defaultMaxTokens {@code max_tokens} when the request has none
     */
    public static CompletionRequest parse(JsonNode root, boolean chat, int defaultMaxTokens) {
        if (root == null || !root.isObject()) {
            throw ApiException.badRequest("the request body must be a JSON object", null);
        }
        optionalString(root, "model");
        String prompt = null;
        List<ChatMessage> messages = List.of();
        if (chat) {
            messages = messages(root);
        } else {
            prompt = prompt(root);
        }
        JsonNode n = present(root, "n");
        if (n != null && (!n.isIntegralNumber() || n.asLong() != 1)) {
            throw ApiException.badRequest("n: only 1 choice per request is supported", "n");
        }
        Integer maxTokens = optionalInt(root, "max_tokens", 0);
        if (maxTokens == null) {
            maxTokens = optionalInt(root, "max_completion_tokens", 0);
        }
        SamplingParams.Builder s = SamplingParams.builder();
        Double temperature = optionalNumber(root, "temperature");
        if (temperature != null) {
            if (temperature < 0) {
                throw ApiException.badRequest("temperature: must be >= 0 (0 is greedy), got " + temperature, "temperature");
            }
            s.temperature(temperature.floatValue());
        }
        Double topP = optionalNumber(root, "top_p");
        if (topP != null) {
            if (!(topP > 0 && topP <= 1)) {
                throw ApiException.badRequest("top_p: must be in (0, 1], got " + topP, "top_p");
            }
            s.topP(topP.floatValue());
        }
        Integer topK = optionalInt(root, "top_k", 0);
        if (topK != null) {
            s.topK(topK);
        }
        Double minP = optionalNumber(root, "min_p");
        if (minP != null) {
            if (!(minP >= 0 && minP <= 1)) {
                throw ApiException.badRequest("min_p: must be in [0, 1], got " + minP, "min_p");
            }
            s.minP(minP.floatValue());
        }
        Double repeatPenalty = optionalNumber(root, "repeat_penalty");
        if (repeatPenalty != null) {
            if (!(repeatPenalty > 0)) {
                throw ApiException.badRequest("repeat_penalty: must be > 0 (1 = off), got " + repeatPenalty,
                        "repeat_penalty");
            }
            s.repetitionPenalty(repeatPenalty.floatValue());
        }
        JsonNode seed = present(root, "seed");
        if (seed != null) {
            if (!seed.isIntegralNumber() || !seed.canConvertToLong()) {
                throw ApiException.badRequest("seed: expected an integer, got " + describe(seed), "seed");
            }
            s.seed(seed.asLong());
        } else {
            s.seed(ThreadLocalRandom.current().nextLong());
        }
        List<String> stop = stop(root);
        boolean stream = optionalBoolean(root, "stream", false);
        boolean includeUsage = false;
        JsonNode options = present(root, "stream_options");
        if (options != null) {
            if (!options.isObject()) {
                throw ApiException.badRequest("stream_options: expected an object, got " + describe(options),
                        "stream_options");
            }
            includeUsage = optionalBoolean(options, "include_usage", false);
        }
        GenerationParams params = GenerationParams.defaults()
                .withMaxTokens(maxTokens != null ? maxTokens : Math.max(1, defaultMaxTokens))
                .withSampling(s.build()).withStop(stop);
        return new CompletionRequest(chat, prompt, messages, params, maxTokens != null, stream, includeUsage);
    }

    private static String prompt(JsonNode root) {
        JsonNode p = root.get("prompt");
        if (p == null || p.isNull()) {
            throw ApiException.badRequest("prompt: required (a string)", "prompt");
        }
        if (p.isTextual()) {
            return p.asText();
        }
        if (p.isArray() && p.size() == 1 && p.get(0).isTextual()) {
            return p.get(0).asText();
        }
        throw ApiException.badRequest("prompt: expected a string (or an array of exactly one string), got "
                + describe(p), "prompt");
    }

    private static List<ChatMessage> messages(JsonNode root) {
        JsonNode m = root.get("messages");
        if (m == null || m.isNull()) {
            throw ApiException.badRequest("messages: required (an array of {\"role\", \"content\"} objects)", "messages");
        }
        if (!m.isArray() || m.isEmpty()) {
            throw ApiException.badRequest("messages: expected a non-empty array, got " + describe(m), "messages");
        }
        List<ChatMessage> out = new ArrayList<>();
        for (int i = 0; i < m.size(); i++) {
            JsonNode msg = m.get(i);
            String at = "messages[" + i + "]";
            if (!msg.isObject()) {
                throw ApiException.badRequest(at + ": expected an object, got " + describe(msg), "messages");
            }
            JsonNode role = msg.get("role");
            if (role == null || !role.isTextual()) {
                throw ApiException.badRequest(at + ".role: expected a string, got " + describe(role), "messages");
            }
            out.add(new ChatMessage(role.asText(), content(msg.get("content"), at)));
        }
        return out;
    }

    /** A string, null (an assistant turn without text) or an array of {"type": "text", "text": ...} parts. */
    private static String content(JsonNode c, String at) {
        if (c == null || c.isNull()) {
            return "";
        }
        if (c.isTextual()) {
            return c.asText();
        }
        if (c.isArray()) {
            StringBuilder sb = new StringBuilder();
            for (JsonNode part : c) {
                if (!part.isObject() || !"text".equals(part.path("type").asText()) || !part.path("text").isTextual()) {
                    throw ApiException.badRequest(at + ".content: only text parts ({\"type\": \"text\", \"text\": ...})"
                            + " are supported", "messages");
                }
                sb.append(part.get("text").asText());
            }
            return sb.toString();
        }
        throw ApiException.badRequest(at + ".content: expected a string or an array of text parts, got "
                + describe(c), "messages");
    }

    private static List<String> stop(JsonNode root) {
        JsonNode s = present(root, "stop");
        if (s == null) {
            return List.of();
        }
        List<String> out = new ArrayList<>();
        if (s.isTextual()) {
            out.add(s.asText());
        } else if (s.isArray()) {
            for (JsonNode e : s) {
                if (!e.isTextual()) {
                    throw ApiException.badRequest("stop: expected strings in the array, got " + describe(e), "stop");
                }
                out.add(e.asText());
            }
        } else {
            throw ApiException.badRequest("stop: expected a string or an array of strings, got " + describe(s), "stop");
        }
        if (out.stream().anyMatch(String::isEmpty)) {
            throw ApiException.badRequest("stop: a stop string must not be empty", "stop");
        }
        return out;
    }

    /** The field, or null when absent or JSON null. */
    private static JsonNode present(JsonNode root, String field) {
        JsonNode v = root.get(field);
        return v == null || v.isNull() ? null : v;
    }

    private static void optionalString(JsonNode root, String field) {
        JsonNode v = present(root, field);
        if (v != null && !v.isTextual()) {
            throw ApiException.badRequest(field + ": expected a string, got " + describe(v), field);
        }
    }

    private static Integer optionalInt(JsonNode root, String field, int min) {
        JsonNode v = present(root, field);
        if (v == null) {
            return null;
        }
        if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() < min) {
            throw ApiException.badRequest(field + ": expected an integer >= " + min + ", got " + describe(v), field);
        }
        return v.asInt();
    }

    private static Double optionalNumber(JsonNode root, String field) {
        JsonNode v = present(root, field);
        if (v == null) {
            return null;
        }
        if (!v.isNumber() || !Double.isFinite(v.asDouble())) {
            throw ApiException.badRequest(field + ": expected a number, got " + describe(v), field);
        }
        return v.asDouble();
    }

    private static boolean optionalBoolean(JsonNode root, String field, boolean dflt) {
        JsonNode v = present(root, field);
        if (v == null) {
            return dflt;
        }
        if (!v.isBoolean()) {
            throw ApiException.badRequest(field + ": expected true or false, got " + describe(v), field);
        }
        return v.asBoolean();
    }

    /** The JSON value, shortened, for an error message. */
    static String describe(JsonNode v) {
        if (v == null || v.isMissingNode()) {
            return "nothing";
        }
        String s = v.toString();
        String kind = v.isTextual() ? "string" : v.isArray() ? "array" : v.isObject() ? "object"
                : v.isBoolean() ? "boolean" : v.isNull() ? "null" : "number";
        return kind + " " + (s.length() > 40 ? s.substring(0, 40) + "..." : s);
    }
}
