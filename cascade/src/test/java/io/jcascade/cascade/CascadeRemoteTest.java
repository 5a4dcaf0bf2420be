package io.jcascade.cascade;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.jcascade.cascade.LoopbackServer.Fault;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Remote tiers against a real HTTP server on 127.0.0.1, for both protocols, with injected faults:
 * a reply slower than the timeout, 429 with Retry-After, 500, a dropped connection, malformed
 * JSON; then the degraded local answer, the happy path and the circuit breaker.
 */
@Timeout(60)
class CascadeRemoteTest {
    static final String KEY = "sk-test-SECRET-0123456789";
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    TierConfig remote(boolean anthropic, LoopbackServer s, int retries) {
        TierConfig c = anthropic
                ? TierConfig.anthropic("frontier", s.baseUrl(), "claude-test", "TEST_KEY", 3.0, 15.0, 64)
                : TierConfig.openai("frontier", s.baseUrl(), "gpt-test", "TEST_KEY", 2.5, 10.0);
        // 1 s: generous for a cold JVM on a busy 2-core machine, well below the 2.5 s slow reply.
        return c.withFaults(1000, retries, 5, 50, 3, 60_000);
    }

    /** small (a scripted local model, unsure: mean entropy 0.8) then the remote tier. */
    Cascade cascade(TierConfig remote, FakeGenerator small, Map<String, String> env) throws Exception {
        return Cascade.builder()
                .tier(new LocalTier(TierConfig.local("small", Path.of("small.gguf"), 0.0001), small, 3, () -> { }))
                .tier(new RemoteTier(remote, env::get))
                .policy(new Policy(Signal.MEAN_ENTROPY, List.of(0.5), 3, true))
                .decisionLog(dir.resolve("decisions.jsonl"))
                .distillLog(dir.resolve("distill.jsonl"))
                .build();
    }

    List<JsonNode> lines(String file) throws Exception {
        Path p = dir.resolve(file);
        if (!Files.exists(p)) {
            return List.of();
        }
        return Files.readAllLines(p).stream().map(l -> {
            try {
                return JSON.readTree(l);
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }).toList();
    }

    void assertNoKeyAnywhere(CascadeResult r) throws Exception {
        assertThat(r.toString()).doesNotContain(KEY);
        for (String f : List.of("decisions.jsonl", "distill.jsonl")) {
            Path p = dir.resolve(f);
            if (Files.exists(p)) {
                assertThat(Files.readString(p)).doesNotContain(KEY);
            }
        }
    }

    @ParameterizedTest(name = "anthropic={0}")
    @ValueSource(booleans = {false, true})
    void happyPathAnswersWithTheCostFromUsage(boolean anthropic) throws Exception {
        try (LoopbackServer s = new LoopbackServer(anthropic);
                Cascade c = cascade(remote(anthropic, s, 2), FakeGenerator.constant("41", 0.8, 0.8, 0.8),
                        Map.of("TEST_KEY", KEY))) {
            CascadeResult r = c.run("6*7=");
            assertThat(r.completion()).isEqualTo("42");
            assertThat(r.tier()).isEqualTo("frontier");
            assertThat(r.escalated()).isTrue();
            assertThat(r.degraded()).isFalse();
            double remoteCost = anthropic ? 3.0 * 12 / 1e6 + 15.0 * 3 / 1e6 : 2.5 * 12 / 1e6 + 10.0 * 3 / 1e6;
            double localCost = 0.0001 * (5 + 3) / 1000; // prompt "6*7=" + BOS, 3 tokens
            assertThat(r.attempts().get(1).output().cost()).isCloseTo(remoteCost, within(1e-15));
            assertThat(r.cost()).isCloseTo(remoteCost + localCost, within(1e-15));
            assertThat(r.attempts().get(1).output().promptTokens()).isEqualTo(12);
            assertThat(r.attempts().get(1).output().completionTokens()).isEqualTo(3);
            assertThat(s.requests).hasSize(1);
            LoopbackServer.Request req = s.requests.get(0);
            JsonNode body = JSON.readTree(req.body());
            assertThat(body.path("messages").path(0).path("content").asText()).isEqualTo("6*7=");
            if (anthropic) {
                assertThat(req.path()).isEqualTo("/v1/messages");
                assertThat(req.header("x-api-key")).isEqualTo(KEY);
                assertThat(req.header("anthropic-version")).isEqualTo("2023-06-01");
                assertThat(body.path("max_tokens").asInt()).isEqualTo(64);
                assertThat(body.path("model").asText()).isEqualTo("claude-test");
            } else {
                assertThat(req.path()).isEqualTo("/v1/chat/completions");
                assertThat(req.header("Authorization")).isEqualTo("Bearer " + KEY);
                assertThat(body.path("model").asText()).isEqualTo("gpt-test");
            }
            assertThat(lines("distill.jsonl")).singleElement().satisfies(d -> {
                assertThat(d.path("prompt").asText()).isEqualTo("6*7=");
                assertThat(d.path("completion").asText()).isEqualTo("42");
                assertThat(d.path("tier").asText()).isEqualTo("frontier");
            });
            assertNoKeyAnywhere(r);
        }
    }

    @ParameterizedTest(name = "anthropic={0}")
    @ValueSource(booleans = {false, true})
    void everyFaultIsRetriedThenTheLocalAnswerComesBackDegraded(boolean anthropic) throws Exception {
        FakeGenerator small = FakeGenerator.constant("41", 0.8, 0.8, 0.8);
        try (LoopbackServer s = new LoopbackServer(anthropic)
                .play(Fault.SLOW, Fault.RATE_LIMITED, Fault.SERVER_ERROR, Fault.DROP, Fault.MALFORMED);
                Cascade c = cascade(remote(anthropic, s, 4), small, Map.of("TEST_KEY", KEY))) {
            s.whenScriptEnds = Fault.SERVER_ERROR;
            CascadeResult r = c.run("6*7=");
            assertThat(r.completion()).isEqualTo("41");
            assertThat(r.tier()).isEqualTo("small");
            assertThat(r.degraded()).isTrue();
            assertThat(r.escalated()).isTrue();
            assertThat(s.requests).hasSize(5);
            TierAttempt remote = r.attempts().stream().filter(a -> a.tier().equals("frontier")).findFirst().orElseThrow();
            assertThat(remote.decision()).isEqualTo(TierAttempt.Decision.FAILED);
            assertThat(remote.output().attempts()).isEqualTo(5);
            assertThat(remote.output().error()).contains("malformed reply").contains("after 5 attempts");
            assertThat(r.answering().decision()).isEqualTo(TierAttempt.Decision.FALLBACK);
            JsonNode line = lines("decisions.jsonl").get(0);
            assertThat(line.path("degraded").asBoolean()).isTrue();
            assertThat(line.path("tier").asText()).isEqualTo("small");
            assertThat(line.path("attempts")).hasSize(2);
            assertThat(line.path("attempts").path(0).path("signals").path("mean_entropy").asDouble()).isEqualTo(0.8);
            assertThat(line.path("attempts").path(1).path("http_attempts").asInt()).isEqualTo(5);
            assertThat(line.path("attempts").path(1).path("error").asText()).contains("after 5 attempts");
            assertThat(lines("distill.jsonl")).isEmpty(); // a degraded answer teaches nothing
            assertNoKeyAnywhere(r);
        }
    }

    @ParameterizedTest(name = "anthropic={0}")
    @ValueSource(booleans = {false, true})
    void transientFaultsThenSuccess(boolean anthropic) throws Exception {
        try (LoopbackServer s = new LoopbackServer(anthropic).play(Fault.SERVER_ERROR, Fault.DROP, Fault.SLOW);
                Cascade c = cascade(remote(anthropic, s, 3), FakeGenerator.constant("41", 0.8, 0.8, 0.8),
                        Map.of("TEST_KEY", KEY))) {
            CascadeResult r = c.run("6*7=");
            assertThat(r.completion()).isEqualTo("42");
            assertThat(r.degraded()).isFalse();
            assertThat(r.attempts().get(1).output().attempts()).isEqualTo(4);
            assertThat(s.requests).hasSize(4);
        }
    }

    @ParameterizedTest(name = "anthropic={0}")
    @ValueSource(booleans = {false, true})
    void retryAfterIsHonoured(boolean anthropic) throws Exception {
        try (LoopbackServer s = new LoopbackServer(anthropic).play(Fault.RATE_LIMITED)) {
            s.retryAfter = "1";
            TierConfig c = remote(anthropic, s, 1).withFaults(1000, 1, 1, 5_000, 3, 60_000);
            try (RemoteTier t = new RemoteTier(c, Map.of("TEST_KEY", KEY)::get)) {
                TierOutput out = t.call("6*7=", Tier.EarlyExit.NEVER);
                assertThat(out.ok()).as(out.error()).isTrue();
                assertThat(out.latencyMs()).isGreaterThanOrEqualTo(950); // waited the 1 s asked, not the 1 ms backoff
                assertThat(out.attempts()).isEqualTo(2);
            }
        }
    }

    @ParameterizedTest(name = "anthropic={0}")
    @ValueSource(booleans = {false, true})
    void theCircuitBreakerOpensThenLetsOneTrialThroughAfterTheCooldown(boolean anthropic) throws Exception {
        try (LoopbackServer s = new LoopbackServer(anthropic)) {
            s.whenScriptEnds = Fault.SERVER_ERROR;
            TierConfig c = remote(anthropic, s, 0).withFaults(2000, 0, 1, 5, 2, 400);
            FakeGenerator small = FakeGenerator.constant("41", 0.8, 0.8, 0.8);
            try (Cascade cascade = cascade(c, small, Map.of("TEST_KEY", KEY))) {
                RemoteTier tier = (RemoteTier) cascade.tiers().get(1);
                assertThat(cascade.run("1+1=").degraded()).isTrue();
                assertThat(tier.breaker().state()).isEqualTo(CircuitBreaker.State.CLOSED);
                assertThat(cascade.run("1+2=").degraded()).isTrue();
                assertThat(tier.breaker().state()).isEqualTo(CircuitBreaker.State.OPEN);
                CascadeResult fast = cascade.run("1+3=");
                assertThat(fast.degraded()).isTrue();
                assertThat(fast.attempts().get(1).output().error()).contains("circuit breaker open");
                assertThat(s.requests).hasSize(2); // the open breaker sent nothing
                Thread.sleep(450);
                s.whenScriptEnds = Fault.OK;
                CascadeResult trial = cascade.run("1+4=");
                assertThat(trial.degraded()).isFalse();
                assertThat(trial.completion()).isEqualTo("42");
                assertThat(tier.breaker().state()).isEqualTo(CircuitBreaker.State.CLOSED);
                assertThat(s.requests).hasSize(3);
                assertThat(lines("decisions.jsonl")).hasSize(4); // one line per prompt, faults included
            }
        }
    }

    @ParameterizedTest(name = "anthropic={0}")
    @ValueSource(booleans = {false, true})
    void aRejectedKeyIsNotRetriedAndNeverEchoed(boolean anthropic) throws Exception {
        try (LoopbackServer s = new LoopbackServer(anthropic).play(Fault.UNAUTHORIZED_ECHO);
                Cascade c = cascade(remote(anthropic, s, 3), FakeGenerator.constant("41", 0.8, 0.8, 0.8),
                        Map.of("TEST_KEY", KEY))) {
            CascadeResult r = c.run("6*7=");
            assertThat(r.degraded()).isTrue();
            assertThat(s.requests).hasSize(1);
            assertThat(r.attempts().get(1).output().error()).startsWith("HTTP 401").contains("[redacted]");
            assertNoKeyAnywhere(r);
        }
    }

    @ParameterizedTest(name = "anthropic={0}")
    @ValueSource(booleans = {false, true})
    void aMissingKeyVariableIsAFailureNotAnException(boolean anthropic) throws Exception {
        try (LoopbackServer s = new LoopbackServer(anthropic);
                Cascade c = cascade(remote(anthropic, s, 3), FakeGenerator.constant("41", 0.8, 0.8, 0.8), Map.of())) {
            CascadeResult r = c.run("6*7=");
            assertThat(r.degraded()).isTrue();
            assertThat(r.completion()).isEqualTo("41");
            assertThat(r.attempts().get(1).output().error()).isEqualTo("environment variable TEST_KEY is not set");
            assertThat(s.requests).isEmpty();
        }
    }
}
