package io.jcascade.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.jcascade.cascade.Cascade;
import io.jcascade.cascade.CascadeConfig;
import io.jcascade.cascade.CascadeResult;
import io.jcascade.cascade.TierAttempt;
import io.jcascade.cli.server.CascadeBackend;
import io.jcascade.cli.server.ModelBackend;
import io.jcascade.cli.server.OpenAiServer;
import io.jcascade.engine.ModelOptions;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** The server as a cascade's openai tier, and the server answering through a cascade. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ServerCascadeTest {

    @Test
    void aCascadeOpenaiTierPointedAtTheServerGetsItsAnswerAndCost(@TempDir Path dir) throws Exception {
        StringWriter log = new StringWriter();
        ModelBackend large = ModelBackend.load(CascadeCommandTest.repo("models/arith-large.gguf"),
                ModelOptions.defaults().withThreads(1), null, ModelBackend.ChatFormat.RAW);
        try (OpenAiServer server = OpenAiServer.start(large, OpenAiServer.Options.defaults().withPort(0),
                new PrintWriter(log, true)); ServerClient client = new ServerClient(server.port())) {
            Path config = dir.resolve("cascade.json");
            // Threshold 0: the small tier's answer always escalates, so the remote tier answers.
            Files.writeString(config, """
                    {"tiers": [
                       {"name": "small", "kind": "local", "model": "%s", "cost_per_1k_tokens": 0.0001,
                        "max_tokens": 8, "threads": 1},
                       {"name": "remote-large", "kind": "openai", "base_url": "%s", "model": "arith-large",
                        "price_input_per_1m": 1000, "price_output_per_1m": 2000, "max_tokens": 8, "temperature": 0,
                        "timeout_ms": 30000, "max_retries": 0}],
                     "policy": {"signal": "mean_entropy", "thresholds": [0.0]}}
                    """.formatted(CascadeCommandTest.repo("models/arith-small.gguf").toString().replace("\\", "\\\\"),
                    server.baseUri()));
            try (Cascade cascade = Cascade.fromConfig(config)) {
                CascadeResult r = cascade.run("37+485=");
                assertThat(r.degraded()).as(r.toString()).isFalse();
                assertThat(r.tier()).isEqualTo("remote-large");
                assertThat(r.escalated()).isTrue();
                assertThat(r.completion()).isEqualTo("522");
                TierAttempt remote = r.answering();
                // "37+485=" is BOS + 7 characters; "522" then </s> is 4 tokens.
                assertThat(remote.output().promptTokens()).isEqualTo(8);
                assertThat(remote.output().completionTokens()).isEqualTo(4);
                assertThat(remote.output().cost()).isCloseTo((8 * 1000 + 4 * 2000) / 1e6, org.assertj.core.data.Offset.offset(1e-12));
                double small = r.attempts().get(0).output().cost();
                assertThat(small).isPositive();
                assertThat(r.cost()).isCloseTo(small + 0.016, org.assertj.core.data.Offset.offset(1e-12));
            }
            // The same request straight to the server reports that usage.
            JsonNode direct = client.post("/v1/chat/completions",
                    "{\"model\": \"arith-large\", \"messages\": [{\"role\": \"user\", \"content\": \"37+485=\"}],"
                            + " \"max_tokens\": 8, \"temperature\": 0}").json();
            assertThat(direct.path("choices").path(0).path("message").path("content").asText()).isEqualTo("522");
            assertThat(direct.path("usage").path("prompt_tokens").asInt()).isEqualTo(8);
            assertThat(direct.path("usage").path("completion_tokens").asInt()).isEqualTo(4);
            assertThat(direct.path("choices").path(0).path("finish_reason").asText()).isEqualTo("stop");
            assertThat(log.toString()).contains("POST /v1/chat/completions 200 prompt_tokens=8 completion_tokens=4");
        }
    }

    @Test
    void serveCascadeAnswersWithTheTierAndItsDecision() throws Exception {
        CascadeConfig c = CascadeConfig.load(CascadeCommandTest.repo("models/arith-cascade.json"));
        CascadeBackend backend = new CascadeBackend(Cascade.builder().config(c).build());
        try (OpenAiServer server = OpenAiServer.start(backend, OpenAiServer.Options.defaults().withPort(0),
                new PrintWriter(new StringWriter(), true)); ServerClient client = new ServerClient(server.port())) {
            JsonNode models = client.get("/v1/models").json();
            assertThat(models.path("data").findValuesAsText("id")).containsExactly("cascade", "small", "large");

            // 3+0= is easy: the small tier keeps it. 4712+42= escalates to large (see CascadeCommandTest).
            JsonNode easy = client.post("/v1/completions", "{\"prompt\": \"3+0=\"}").json();
            assertThat(easy.path("model").asText()).isEqualTo("small");
            assertThat(easy.path("choices").path(0).path("text").asText()).isEqualTo("3");
            assertThat(easy.path("jcascade").path("tier").asText()).isEqualTo("small");
            assertThat(easy.path("jcascade").path("escalated").asBoolean()).isFalse();
            assertThat(easy.path("jcascade").path("degraded").asBoolean()).isFalse();
            assertThat(easy.path("jcascade").path("signals").path("small").path("mean_entropy").isNumber()).isTrue();

            JsonNode hard = client.post("/v1/chat/completions",
                    "{\"messages\": [{\"role\": \"system\", \"content\": \"ignored\"},"
                            + " {\"role\": \"user\", \"content\": \"4712+42=\"}]}").json();
            assertThat(hard.path("model").asText()).isEqualTo("large");
            assertThat(hard.path("choices").path(0).path("message").path("content").asText()).isEqualTo("4754");
            JsonNode ext = hard.path("jcascade");
            assertThat(ext.path("escalated").asBoolean()).isTrue();
            assertThat(ext.path("signals").has("small")).isTrue();
            assertThat(ext.path("attempts")).hasSize(2);
            double attemptsCost = ext.path("attempts").get(0).path("cost").asDouble()
                    + ext.path("attempts").get(1).path("cost").asDouble();
            assertThat(ext.path("cost").asDouble()).isCloseTo(attemptsCost, org.assertj.core.data.Offset.offset(1e-15));
            assertThat(hard.path("usage").path("completion_tokens").asInt())
                    .isEqualTo(ext.path("attempts").get(1).path("completion_tokens").asInt());

            ServerClient.Stream s = client.stream("/v1/chat/completions",
                    "{\"messages\": [{\"role\": \"user\", \"content\": \"4712+42=\"}], \"stream\": true}");
            assertThat(s.done()).isTrue();
            assertThat(s.text()).isEqualTo("4754");
            assertThat(s.last().path("model").asText()).isEqualTo("large");
            assertThat(s.last().path("jcascade").path("tier").asText()).isEqualTo("large");

            ServerTest.assertError(client.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\":"
                    + " \"1+1=\"}, {\"role\": \"assistant\", \"content\": \"2\"}, {\"role\": \"user\", \"content\": \"2+2=\"}]}"),
                    400, "messages", "one user message");
        }
    }
}
