package io.jcascade.cascade;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * A parsed, validated cascade config: the tiers in order, the policy and the router.
 *
 * <pre>{@code
 * CascadeConfig c = CascadeConfig.load(Path.of("models/arith-cascade.json"))
 *         .withSignal(Signal.MAX_ENTROPY)
 *         .withThresholds(List.of(0.5));
 * try (Cascade cascade = Cascade.builder().config(c).build()) { ... }
 * }</pre>
 *
 * <p>Keys (every error names the key at fault; unknown keys are errors):
 * <ul>
 * <li>top level: {@code tiers} (array, required), {@code policy} (object, required when there is
 *     more than one tier), {@code router} (array, optional)
 * <li>every tier: {@code name}, {@code kind} ({@code local}, {@code openai}, {@code anthropic}),
 *     {@code model}, {@code max_tokens}, {@code temperature}, {@code stop}
 * <li>local tiers: {@code cost_per_1k_tokens}, {@code backend}, {@code threads},
 *     {@code context_length}, {@code top_k}, {@code top_p}, {@code min_p}, {@code repeat_penalty},
 *     {@code repeat_last_n}, {@code seed}; {@code model} is a GGUF path, relative paths resolve
 *     against the config file's folder first, then the working directory
 * <li>remote tiers: {@code base_url}, {@code api_key_env}, {@code price_input_per_1m},
 *     {@code price_output_per_1m}, {@code timeout_ms}, {@code max_retries}, {@code backoff_ms},
 *     {@code max_backoff_ms}, {@code circuit_failures}, {@code circuit_cooldown_ms},
 *     {@code system}; anthropic also {@code anthropic_version}, and requires {@code max_tokens}
 * <li>policy: {@code signal}, {@code thresholds} (one per step, or one for all steps),
 *     {@code first_k}, {@code early_exit}
 * <li>router rules: {@code tier}, {@code min_prompt_chars}, {@code max_prompt_chars},
 *     {@code keywords}, {@code regex}
 * </ul>
 *
 * @param tiers the tiers, cheapest first
 * @param policy the escalation policy
 * @param router pre-generation routing rules, tried in order
 */
public record CascadeConfig(List<TierConfig> tiers, Policy policy, List<RouteRule> router) {

    static final long DEFAULT_TIMEOUT_MS = 30_000;
    static final int DEFAULT_RETRIES = 3;
    static final long DEFAULT_BACKOFF_MS = 500;
    static final long DEFAULT_MAX_BACKOFF_MS = 20_000;
    static final int DEFAULT_CIRCUIT_FAILURES = 5;
    static final long DEFAULT_CIRCUIT_COOLDOWN_MS = 30_000;
    static final String DEFAULT_ANTHROPIC_VERSION = "2023-06-01";
    static final int DEFAULT_FIRST_K = 3;

    private static final Set<String> TOP = Set.of("tiers", "policy", "router");
    private static final Set<String> COMMON = Set.of("name", "kind", "model", "max_tokens", "temperature", "stop");
    private static final Set<String> LOCAL = Set.of("cost_per_1k_tokens", "backend", "threads", "context_length",
            "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n", "seed");
    private static final Set<String> REMOTE = Set.of("base_url", "api_key_env", "price_input_per_1m",
            "price_output_per_1m", "timeout_ms", "max_retries", "backoff_ms", "max_backoff_ms", "circuit_failures",
            "circuit_cooldown_ms", "system");
    private static final Set<String> POLICY = Set.of("signal", "thresholds", "first_k", "early_exit");
    private static final Set<String> RULE = Set.of("tier", "min_prompt_chars", "max_prompt_chars", "keywords",
            "regex");

    public CascadeConfig {
        tiers = List.copyOf(tiers);
        router = List.copyOf(router);
        if (tiers.isEmpty()) {
            throw new ConfigException("tiers: at least one tier is needed");
        }
        Set<String> names = new HashSet<>();
        for (int i = 0; i < tiers.size(); i++) {
            if (!names.add(tiers.get(i).name())) {
                throw new ConfigException("tiers[" + i + "].name: duplicate tier name \"" + tiers.get(i).name() + "\"");
            }
        }
        checkThresholds(policy.thresholds(), tiers.size(), "policy.thresholds");
        for (int i = 0; i < router.size(); i++) {
            if (!names.contains(router.get(i).tier())) {
                throw new ConfigException("router[" + i + "].tier: no tier named \"" + router.get(i).tier()
                        + "\"; the tiers are " + tierNames(tiers));
            }
        }
        policy = policy.withThresholds(broadcast(policy.thresholds(), tiers.size()));
    }

    /** Reads and validates a config file; relative model paths resolve against its folder first. */
    public static CascadeConfig load(Path file) throws IOException {
        String text = Files.readString(file);
        Path dir = file.toAbsolutePath().getParent();
        try {
            return parse(text, dir);
        } catch (ConfigException e) {
            throw new ConfigException(file + ": " + e.getMessage());
        }
    }

    /**
     * Parses and validates a config from JSON text.
     *
     * @param baseDir the folder relative model paths resolve against first (then the working
     *     directory); may be null
     */
    public static CascadeConfig parse(String json, Path baseDir) {
        ObjectMapper mapper = new ObjectMapper();
        mapper.enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
        JsonNode root;
        try {
            root = mapper.readTree(json);
        } catch (JsonProcessingException e) {
            throw new ConfigException("not valid JSON: " + e.getOriginalMessage() + " at line "
                    + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr());
        }
        if (root == null || !root.isObject()) {
            throw new ConfigException("expected a JSON object at the top level");
        }
        Obj top = new Obj(root, "");
        top.only(TOP);
        JsonNode tiersNode = top.require("tiers");
        if (!tiersNode.isArray()) {
            throw new ConfigException("tiers: expected an array of tier objects");
        }
        List<TierConfig> tiers = new ArrayList<>();
        for (int i = 0; i < tiersNode.size(); i++) {
            tiers.add(tier(tiersNode.get(i), "tiers[" + i + "]", baseDir));
        }
        Policy policy;
        JsonNode policyNode = root.get("policy");
        if (policyNode == null) {
            if (tiers.size() > 1) {
                throw new ConfigException("policy: required when there is more than one tier");
            }
            policy = new Policy(Signal.MEAN_ENTROPY, List.of(), DEFAULT_FIRST_K, true);
        } else {
            policy = policy(policyNode);
        }
        List<RouteRule> router = new ArrayList<>();
        JsonNode routerNode = root.get("router");
        if (routerNode != null) {
            if (!routerNode.isArray()) {
                throw new ConfigException("router: expected an array of rule objects");
            }
            for (int i = 0; i < routerNode.size(); i++) {
                router.add(rule(routerNode.get(i), "router[" + i + "]"));
            }
        }
        return new CascadeConfig(tiers, policy, router);
    }

    /** This config with another policy signal (the {@code --signal} override). */
    public CascadeConfig withSignal(Signal s) {
        return new CascadeConfig(tiers, policy.withSignal(s), router);
    }

    /** This config with other thresholds (the {@code --threshold}/{@code --thresholds} overrides). */
    public CascadeConfig withThresholds(List<Double> t) {
        checkThresholds(t, tiers.size(), "thresholds");
        return new CascadeConfig(tiers, policy.withThresholds(t), router);
    }

    /** This config with another policy. */
    public CascadeConfig withPolicy(Policy p) {
        return new CascadeConfig(tiers, p, router);
    }

    /** This config with every local tier on {@code threads} CPU threads. */
    public CascadeConfig withLocalThreads(int threads) {
        return new CascadeConfig(tiers.stream().map(t -> t.kind() == TierKind.LOCAL ? t.withThreads(threads) : t)
                .toList(), policy, router);
    }

    /** The index of the tier named {@code name}, or -1. */
    public int indexOf(String name) {
        for (int i = 0; i < tiers.size(); i++) {
            if (tiers.get(i).name().equals(name)) {
                return i;
            }
        }
        return -1;
    }

    private static void checkThresholds(List<Double> t, int tierCount, String key) {
        int steps = tierCount - 1;
        if (steps == 0) {
            return;
        }
        if (t.size() != steps && t.size() != 1) {
            throw new ConfigException(key + ": expected " + steps + " threshold" + (steps == 1 ? "" : "s")
                    + " (one per step between " + tierCount + " tiers) or a single one for every step, got " + t.size());
        }
    }

    private static List<Double> broadcast(List<Double> t, int tierCount) {
        int steps = tierCount - 1;
        if (steps > 1 && t.size() == 1) {
            List<Double> all = new ArrayList<>();
            for (int i = 0; i < steps; i++) {
                all.add(t.get(0));
            }
            return all;
        }
        return t;
    }

    private static String tierNames(List<TierConfig> tiers) {
        return tiers.stream().map(TierConfig::name).toList().toString();
    }

    private static TierConfig tier(JsonNode node, String path, Path baseDir) {
        if (node == null || !node.isObject()) {
            throw new ConfigException(path + ": expected a tier object");
        }
        Obj o = new Obj(node, path);
        String name = o.string("name", null);
        if (name.isBlank()) {
            throw new ConfigException(path + ".name: must not be blank");
        }
        String kindName = o.string("kind", null);
        TierKind kind;
        try {
            kind = TierKind.parse(kindName);
        } catch (IllegalArgumentException e) {
            throw new ConfigException(path + ".kind: " + e.getMessage());
        }
        Set<String> allowed = new HashSet<>(COMMON);
        allowed.addAll(kind == TierKind.LOCAL ? LOCAL : REMOTE);
        if (kind == TierKind.ANTHROPIC) {
            allowed.add("anthropic_version");
        }
        o.only(allowed, "for kind " + kind.key());
        String model = o.string("model", null);
        List<String> stop = o.strings("stop");
        if (kind == TierKind.LOCAL) {
            Path modelPath = resolveModel(model, baseDir, path + ".model");
            String backend = o.string("backend", "auto");
            if (!List.of("auto", "cpu", "cuda").contains(backend)) {
                throw new ConfigException(path + ".backend: unknown backend \"" + backend + "\"; choose cpu, cuda or auto");
            }
            return new TierConfig(name, kind, model, modelPath, o.number("cost_per_1k_tokens", 0, 0),
                    backend, o.integer("threads", 0, 0), o.integer("context_length", 0, 0),
                    o.number("temperature", 0, 0), o.integer("top_k", 40, 0), o.number("top_p", 0.95, 0),
                    o.number("min_p", 0.05, 0), o.number("repeat_penalty", 1.0, 0), o.integer("repeat_last_n", 64, 0),
                    o.longInt("seed", 0, Long.MIN_VALUE), o.integer("max_tokens", 256, 0), stop, null, null, 0, 0, 0, 0,
                    0, 0, 0, 0, null, null);
        }
        String baseUrl = o.string("base_url", kind == TierKind.OPENAI ? "https://api.openai.com/v1"
                : "https://api.anthropic.com/v1");
        if (!baseUrl.startsWith("http://") && !baseUrl.startsWith("https://")) {
            throw new ConfigException(path + ".base_url: expected an http:// or https:// URL, got \"" + baseUrl + "\"");
        }
        try {
            java.net.URI.create(baseUrl);
        } catch (IllegalArgumentException e) {
            throw new ConfigException(path + ".base_url: not a valid URL: " + e.getMessage());
        }
        int maxTokens;
        if (kind == TierKind.ANTHROPIC) {
            if (!node.has("max_tokens")) {
                throw new ConfigException(path + ".max_tokens: required for kind anthropic (the Messages API needs it)");
            }
            maxTokens = o.integer("max_tokens", 0, 1);
        } else {
            maxTokens = o.integer("max_tokens", 0, 0);
        }
        String keyEnv = node.has("api_key_env") ? o.string("api_key_env", null) : null;
        return new TierConfig(name, kind, model, null, 0, null, 0, 0, o.number("temperature", Double.NaN, 0), 0, 0, 0,
                0, 0, 0, maxTokens, stop, baseUrl, keyEnv, o.number("price_input_per_1m", 0, 0),
                o.number("price_output_per_1m", 0, 0), o.longInt("timeout_ms", DEFAULT_TIMEOUT_MS, 1),
                o.integer("max_retries", DEFAULT_RETRIES, 0), o.longInt("backoff_ms", DEFAULT_BACKOFF_MS, 0),
                o.longInt("max_backoff_ms", DEFAULT_MAX_BACKOFF_MS, 0),
                o.integer("circuit_failures", DEFAULT_CIRCUIT_FAILURES, 1),
                o.longInt("circuit_cooldown_ms", DEFAULT_CIRCUIT_COOLDOWN_MS, 0),
                kind == TierKind.ANTHROPIC ? o.string("anthropic_version", DEFAULT_ANTHROPIC_VERSION) : null,
                node.has("system") ? o.string("system", null) : null);
    }

    private static Path resolveModel(String model, Path baseDir, String key) {
        Path p = Path.of(model);
        if (p.isAbsolute()) {
            if (!Files.isRegularFile(p)) {
                throw new ConfigException(key + ": no such model file: " + p);
            }
            return p;
        }
        List<Path> tried = new ArrayList<>();
        if (baseDir != null) {
            tried.add(baseDir.resolve(p).normalize());
        }
        tried.add(Path.of("").toAbsolutePath().resolve(p).normalize());
        for (Path c : tried) {
            if (Files.isRegularFile(c)) {
                return c;
            }
        }
        throw new ConfigException(key + ": no such model file \"" + model + "\" (looked for "
                + String.join(" and ", tried.stream().map(Path::toString).toList()) + ")");
    }

    private static Policy policy(JsonNode node) {
        if (!node.isObject()) {
            throw new ConfigException("policy: expected an object");
        }
        Obj o = new Obj(node, "policy");
        o.only(POLICY);
        Signal signal;
        String name = o.string("signal", Signal.MEAN_ENTROPY.key());
        try {
            signal = Signal.parse(name);
        } catch (IllegalArgumentException e) {
            throw new ConfigException("policy.signal: " + e.getMessage());
        }
        JsonNode t = o.require("thresholds");
        List<Double> thresholds = new ArrayList<>();
        if (t.isNumber()) {
            thresholds.add(t.asDouble());
        } else if (t.isArray()) {
            for (int i = 0; i < t.size(); i++) {
                JsonNode v = t.get(i);
                if (!v.isNumber() || !Double.isFinite(v.asDouble())) {
                    throw new ConfigException("policy.thresholds[" + i + "]: expected a number, got " + v);
                }
                thresholds.add(v.asDouble());
            }
        } else {
            throw new ConfigException("policy.thresholds: expected an array of numbers, got " + t);
        }
        int firstK = o.integer("first_k", DEFAULT_FIRST_K, 1);
        boolean earlyExit = o.bool("early_exit", true);
        return new Policy(signal, thresholds, firstK, earlyExit);
    }

    private static RouteRule rule(JsonNode node, String path) {
        if (node == null || !node.isObject()) {
            throw new ConfigException(path + ": expected a rule object");
        }
        Obj o = new Obj(node, path);
        o.only(RULE);
        String tier = o.string("tier", null);
        int min = o.integer("min_prompt_chars", 0, 0);
        int max = o.integer("max_prompt_chars", 0, 0);
        List<String> keywords = o.strings("keywords");
        Pattern regex = null;
        if (node.has("regex")) {
            String r = o.string("regex", null);
            try {
                regex = Pattern.compile(r);
            } catch (PatternSyntaxException e) {
                throw new ConfigException(path + ".regex: not a valid regular expression: " + e.getDescription());
            }
        }
        if (min == 0 && max == 0 && keywords.isEmpty() && regex == null) {
            throw new ConfigException(path + ": a rule needs at least one of min_prompt_chars, max_prompt_chars,"
                    + " keywords, regex");
        }
        return new RouteRule(tier, min, max, keywords, regex);
    }

    /** Typed access to one JSON object with errors that name the key. */
    private record Obj(JsonNode node, String path) {
        String key(String k) {
            return path.isEmpty() ? k : path + "." + k;
        }

        void only(Set<String> allowed) {
            only(allowed, null);
        }

        void only(Set<String> allowed, String context) {
            Iterator<String> it = node.fieldNames();
            while (it.hasNext()) {
                String k = it.next();
                if (!allowed.contains(k)) {
                    Set<String> sorted = new LinkedHashSet<>(allowed.stream().sorted().toList());
                    throw new ConfigException(key(k) + ": unknown key" + (context != null ? " " + context : "")
                            + "; known keys: " + String.join(", ", sorted));
                }
            }
        }

        JsonNode require(String k) {
            JsonNode v = node.get(k);
            if (v == null || v.isNull()) {
                throw new ConfigException(key(k) + ": required");
            }
            return v;
        }

        String string(String k, String def) {
            JsonNode v = node.get(k);
            if (v == null || v.isNull()) {
                if (def == null) {
                    throw new ConfigException(key(k) + ": required");
                }
                return def;
            }
            if (!v.isTextual()) {
                throw new ConfigException(key(k) + ": expected a string, got " + v);
            }
            return v.asText();
        }

        double number(String k, double def, double min) {
            JsonNode v = node.get(k);
            if (v == null || v.isNull()) {
                return def;
            }
            if (!v.isNumber() || !Double.isFinite(v.asDouble()) || v.asDouble() < min) {
                throw new ConfigException(key(k) + ": expected a number >= " + fmt(min) + ", got " + v);
            }
            return v.asDouble();
        }

        long longInt(String k, long def, long min) {
            JsonNode v = node.get(k);
            if (v == null || v.isNull()) {
                return def;
            }
            if (!v.isIntegralNumber() || !v.canConvertToLong() || v.asLong() < min) {
                throw new ConfigException(key(k) + ": expected an integer"
                        + (min == Long.MIN_VALUE ? "" : " >= " + min) + ", got " + v);
            }
            return v.asLong();
        }

        int integer(String k, int def, int min) {
            JsonNode v = node.get(k);
            if (v == null || v.isNull()) {
                return def;
            }
            if (!v.isIntegralNumber() || !v.canConvertToInt() || v.asInt() < min) {
                throw new ConfigException(key(k) + ": expected an integer >= " + min + ", got " + v);
            }
            return v.asInt();
        }

        boolean bool(String k, boolean def) {
            JsonNode v = node.get(k);
            if (v == null || v.isNull()) {
                return def;
            }
            if (!v.isBoolean()) {
                throw new ConfigException(key(k) + ": expected true or false, got " + v);
            }
            return v.asBoolean();
        }

        List<String> strings(String k) {
            JsonNode v = node.get(k);
            if (v == null || v.isNull()) {
                return List.of();
            }
            if (v.isTextual()) {
                return List.of(v.asText());
            }
            if (!v.isArray()) {
                throw new ConfigException(key(k) + ": expected a string or an array of strings, got " + v);
            }
            List<String> out = new ArrayList<>();
            for (int i = 0; i < v.size(); i++) {
                if (!v.get(i).isTextual() || v.get(i).asText().isEmpty()) {
                    throw new ConfigException(key(k) + "[" + i + "]: expected a non-empty string, got " + v.get(i));
                }
                out.add(v.get(i).asText());
            }
            return out;
        }

        private static String fmt(double d) {
            return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(d);
        }
    }
}
