package io.jcascade.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.jcascade.cli.server.ModelBackend;
import io.jcascade.cli.server.OpenAiServer;
import io.jcascade.engine.ModelOptions;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** {@code jcascade serve} over real HTTP on loopback, serving stories260K (context 128, one thread). */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ServerTest {
    static final StringWriter LOG = new StringWriter();
    static OpenAiServer server;
    static ServerClient client;

    @BeforeAll
    static void start() throws Exception {
        ModelBackend backend = ModelBackend.load(CascadeCommandTest.repo("models/stories260K.gguf"),
                ModelOptions.defaults().withThreads(1).withContextLength(128), null, ModelBackend.ChatFormat.TEMPLATE);
        server = OpenAiServer.start(backend, OpenAiServer.Options.defaults().withPort(0).withParallel(2).withQueue(4)
                .withShutdownGrace(Duration.ofSeconds(2)), new PrintWriter(LOG, true));
        client = new ServerClient(server.port());
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
        if (client != null) {
            client.close();
        }
    }

    static String greedy(String prompt, int maxTokens, String extra) {
        return "{\"prompt\": " + ServerClient.JSON.valueToTree(prompt) + ", \"max_tokens\": " + maxTokens
                + ", \"temperature\": 0" + extra + "}";
    }

    @Test
    void completionNonStreamedAndStreamedAgree() throws Exception {
        ServerClient.Reply r = client.post("/v1/completions", greedy("Once upon a time", 24, ""));
        assertThat(r.status()).as(r.body()).isEqualTo(200);
        JsonNode j = r.json();
        assertThat(j.path("object").asText()).isEqualTo("text_completion");
        assertThat(j.path("id").asText()).startsWith("cmpl-");
        assertThat(j.path("model").asText()).isEqualTo("stories260K.gguf");
        String text = j.path("choices").path(0).path("text").asText();
        assertThat(text).startsWith(", there was a little girl named Lily");
        assertThat(j.path("choices").path(0).path("finish_reason").asText()).isEqualTo("length");
        // "Once upon a time" is BOS + 4 pieces in this vocab.
        assertThat(j.path("usage").path("prompt_tokens").asInt()).isEqualTo(5);
        assertThat(j.path("usage").path("completion_tokens").asInt()).isEqualTo(24);
        assertThat(j.path("usage").path("total_tokens").asInt()).isEqualTo(29);
        JsonNode ext = j.path("jcascade");
        assertThat(ext.path("tokens")).hasSize(24);
        assertThat(ext.path("tokens").path(0).path("entropy").asDouble()).isPositive();
        assertThat(ext.path("tokens").path(0).path("logprob").asDouble()).isNegative();
        assertThat(ext.path("mean_entropy").asDouble()).isPositive();

        ServerClient.Stream s = client.stream("/v1/completions",
                greedy("Once upon a time", 24, ", \"stream\": true, \"stream_options\": {\"include_usage\": true}"));
        assertThat(s.status()).isEqualTo(200);
        assertThat(s.done()).isTrue();
        assertThat(s.text()).isEqualTo(text);
        assertThat(s.events().size()).isGreaterThan(10); // one chunk per token, not one at the end
        JsonNode usage = s.last();
        assertThat(usage.path("choices")).isEmpty();
        assertThat(usage.path("usage").path("completion_tokens").asInt()).isEqualTo(24);
        JsonNode finish = s.events().get(s.events().size() - 2);
        assertThat(finish.path("choices").path(0).path("finish_reason").asText()).isEqualTo("length");
        assertThat(s.events().get(0).path("choices").path(0).path("finish_reason").isNull()).isTrue();
        assertThat(LOG.toString()).contains("POST /v1/completions 200 prompt_tokens=5 completion_tokens=24 ");
    }

    @Test
    void chatNonStreamedAndStreamedAgree() throws Exception {
        String body = "{\"model\": \"gpt-4o\", \"messages\": [{\"role\": \"system\", \"content\": \"Tell a story.\"},"
                + " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Once upon a time\"}]}],"
                + " \"max_tokens\": 16, \"temperature\": 0";
        ServerClient.Reply r = client.post("/v1/chat/completions", body + "}");
        assertThat(r.status()).as(r.body()).isEqualTo(200);
        JsonNode j = r.json();
        assertThat(j.path("object").asText()).isEqualTo("chat.completion");
        assertThat(j.path("model").asText()).as("the requested model name is ignored").isEqualTo("stories260K.gguf");
        JsonNode msg = j.path("choices").path(0).path("message");
        assertThat(msg.path("role").asText()).isEqualTo("assistant");
        String text = msg.path("content").asText();
        assertThat(text).isNotEmpty();
        assertThat(j.path("usage").path("completion_tokens").asInt()).isEqualTo(16);
        assertThat(j.path("usage").path("total_tokens").asInt())
                .isEqualTo(j.path("usage").path("prompt_tokens").asInt() + 16);

        ServerClient.Stream s = client.stream("/v1/chat/completions", body + ", \"stream\": true}");
        assertThat(s.done()).isTrue();
        assertThat(s.events().get(0).path("object").asText()).isEqualTo("chat.completion.chunk");
        assertThat(s.events().get(0).path("choices").path(0).path("delta").path("role").asText()).isEqualTo("assistant");
        assertThat(s.events().get(0).path("choices").path(0).path("finish_reason").isNull()).isTrue();
        assertThat(s.events().get(1).path("choices").path(0).path("finish_reason").isNull()).isTrue();
        assertThat(s.text()).isEqualTo(text);
        JsonNode last = s.last().path("choices").path(0);
        assertThat(last.path("delta").isEmpty()).isTrue();
        assertThat(last.path("finish_reason").asText()).isEqualTo("length");
    }

    @Test
    void stopStringsCutTheTextAndFinishWithStop() throws Exception {
        String full = client.post("/v1/completions", greedy("Once upon a time", 24, "")).json()
                .path("choices").path(0).path("text").asText();
        int at = full.indexOf(" named");
        assertThat(at).isPositive();
        for (String stop : new String[] {"\" named\"", "[\"zzz\", \" named\"]"}) {
            JsonNode j = client.post("/v1/completions", greedy("Once upon a time", 24, ", \"stop\": " + stop)).json();
            JsonNode c = j.path("choices").path(0);
            assertThat(c.path("text").asText()).isEqualTo(full.substring(0, at));
            assertThat(c.path("finish_reason").asText()).isEqualTo("stop");
            assertThat(j.path("usage").path("completion_tokens").asInt()).isLessThan(24);
            ServerClient.Stream s = client.stream("/v1/completions",
                    greedy("Once upon a time", 24, ", \"stream\": true, \"stop\": " + stop));
            assertThat(s.text()).isEqualTo(full.substring(0, at));
            assertThat(s.last().path("choices").path(0).path("finish_reason").asText()).isEqualTo("stop");
        }
    }

    static void assertError(ServerClient.Reply r, int status, String param, String messagePart) {
        assertThat(r.status()).as(r.body()).isEqualTo(status);
        assertThat(r.json()).as(r.body()).isNotNull();
        JsonNode e = r.json().path("error");
        assertThat(e.path("message").asText()).contains(messagePart);
        assertThat(e.has("type") && e.has("param") && e.has("code")).as(r.body()).isTrue();
        assertThat(e.path("type").asText()).isNotEmpty();
        if (param == null) {
            assertThat(e.path("param").isNull()).as(r.body()).isTrue();
        } else {
            assertThat(e.path("param").asText()).isEqualTo(param);
        }
        assertThat(r.body()).doesNotContain("Exception").doesNotContain("\tat ");
    }

    @Test
    void badRequestsAreOpenAiErrorsNamingTheField() throws Exception {
        assertError(client.post("/v1/completions", "{\"prompt\": \"x\""), 400, null, "malformed JSON");
        assertError(client.post("/v1/completions", ""), 400, null, "empty");
        assertError(client.post("/v1/completions", "[1, 2]"), 400, null, "JSON object");
        assertError(client.post("/v1/completions", "{\"max_tokens\": 4}"), 400, "prompt", "prompt: required");
        assertError(client.post("/v1/completions", "{\"prompt\": 7}"), 400, "prompt", "expected a string");
        assertError(client.post("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": \"many\"}"), 400, "max_tokens",
                "max_tokens: expected an integer >= 0, got string \"many\"");
        assertError(client.post("/v1/completions", "{\"prompt\": \"x\", \"max_tokens\": -1}"), 400, "max_tokens",
                "max_tokens");
        assertError(client.post("/v1/completions", "{\"prompt\": \"x\", \"temperature\": \"hot\"}"), 400, "temperature",
                "temperature: expected a number");
        assertError(client.post("/v1/completions", "{\"prompt\": \"x\", \"temperature\": -1}"), 400, "temperature",
                ">= 0");
        assertError(client.post("/v1/completions", "{\"prompt\": \"x\", \"top_p\": 0}"), 400, "top_p", "(0, 1]");
        assertError(client.post("/v1/completions", "{\"prompt\": \"x\", \"top_k\": 1.5}"), 400, "top_k", "integer");
        assertError(client.post("/v1/completions", "{\"prompt\": \"x\", \"min_p\": 2}"), 400, "min_p", "[0, 1]");
        assertError(client.post("/v1/completions", "{\"prompt\": \"x\", \"seed\": \"s\"}"), 400, "seed", "integer");
        assertError(client.post("/v1/completions", "{\"prompt\": \"x\", \"stop\": 5}"), 400, "stop", "stop:");
        assertError(client.post("/v1/completions", "{\"prompt\": \"x\", \"stop\": [\"\"]}"), 400, "stop", "empty");
        assertError(client.post("/v1/completions", "{\"prompt\": \"x\", \"stream\": \"yes\"}"), 400, "stream",
                "true or false");
        assertError(client.post("/v1/completions", "{\"prompt\": \"x\", \"model\": 3}"), 400, "model", "model:");
        assertError(client.post("/v1/completions", "{\"prompt\": \"x\", \"n\": 2}"), 400, "n", "only 1");
        assertError(client.post("/v1/chat/completions", "{\"prompt\": \"x\"}"), 400, "messages", "messages: required");
        assertError(client.post("/v1/chat/completions", "{\"messages\": []}"), 400, "messages", "non-empty");
        assertError(client.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}"), 400,
                "messages", "messages[0].content");
        assertError(client.post("/v1/chat/completions", "{\"messages\": [{\"content\": \"hi\"}]}"), 400, "messages",
                "messages[0].role");
        // Past the context (128): the engine's ContextOverflowException message, before any stream starts.
        String longPrompt = "Once upon a time there was a little girl. ".repeat(20);
        ServerClient.Reply overflow = client.post("/v1/completions", greedy(longPrompt, 8, ""));
        assertError(overflow, 400, "prompt", "but the context holds 128");
        assertThat(overflow.json().path("error").path("code").asText()).isEqualTo("context_length_exceeded");
        assertError(client.post("/v1/completions", greedy(longPrompt, 8, ", \"stream\": true")), 400, "prompt",
                "but the context holds 128");
        assertError(client.post("/v1/chat/completions", "{\"messages\": [{\"role\": \"user\", \"content\": "
                + ServerClient.JSON.valueToTree(longPrompt) + "}]}"), 400, "messages", "but the context holds 128");
    }

    @Test
    void unknownPathsAndWrongMethods() throws Exception {
        assertError(client.get("/v1/engines"), 404, null, "unknown path GET /v1/engines");
        assertError(client.post("/v2/completions", "{}"), 404, null, "unknown path");
        ServerClient.Reply get = client.get("/v1/completions");
        assertError(get, 405, null, "use POST");
        assertThat(get.raw().headers().firstValue("Allow")).hasValue("POST");
        assertError(client.post("/v1/models", "{}"), 405, null, "use GET");
        assertError(client.send("DELETE", "/health", null), 405, null, "use GET");
    }

    @Test
    void modelsHealthAndMetrics() throws Exception {
        ServerClient.Reply models = client.get("/v1/models");
        assertThat(models.status()).isEqualTo(200);
        assertThat(models.json().path("object").asText()).isEqualTo("list");
        assertThat(models.json().path("data").path(0).path("id").asText()).isEqualTo("stories260K.gguf");
        assertThat(models.json().path("data").path(0).path("object").asText()).isEqualTo("model");
        ServerClient.Reply health = client.get("/health");
        assertThat(health.status()).isEqualTo(200);
        assertThat(health.json().path("status").asText()).isEqualTo("ok");

        client.post("/v1/completions", greedy("Once", 4, ""));
        ServerClient.Reply metrics = client.get("/metrics");
        assertThat(metrics.status()).isEqualTo(200);
        assertThat(metrics.raw().headers().firstValue("Content-Type").orElse("")).startsWith("text/plain");
        assertThat(metrics.body()).contains("jcascade_http_requests_seconds_count{endpoint=\"/v1/completions\",status=\"200\"}")
                .contains("jcascade_generated_tokens_total").contains("jcascade_prompt_tokens_total")
                .contains("jcascade_time_to_first_token_seconds_count{endpoint=\"/v1/completions\"}")
                .contains("jcascade_generations_active").contains("jcascade_requests_rejected_total");
        double generated = metrics.body().lines().filter(l -> l.startsWith("jcascade_generated_tokens_total "))
                .mapToDouble(l -> Double.parseDouble(l.substring(l.indexOf(' ') + 1))).findFirst().orElseThrow();
        assertThat(generated).isGreaterThanOrEqualTo(4);
    }

    @Test
    void concurrentRequestsGiveTheSequentialGreedyAnswers() throws Exception {
        List<String> prompts = List.of("Once upon a time", "The cat", "Lily was", "One day, a big");
        List<String> sequential = new ArrayList<>();
        for (String p : prompts) {
            sequential.add(client.post("/v1/completions", greedy(p, 20, "")).json().path("choices").path(0)
                    .path("text").asText());
        }
        ExecutorService pool = Executors.newFixedThreadPool(prompts.size());
        try {
            for (int round = 0; round < 2; round++) {
                List<Future<String>> futures = new ArrayList<>();
                for (int i = 0; i < prompts.size(); i++) {
                    String p = prompts.get(i);
                    boolean stream = (i + round) % 2 == 0;
                    futures.add(pool.submit(() -> stream
                            ? client.stream("/v1/completions", greedy(p, 20, ", \"stream\": true")).text()
                            : client.post("/v1/completions", greedy(p, 20, "")).json().path("choices").path(0)
                                    .path("text").asText()));
                }
                for (int i = 0; i < prompts.size(); i++) {
                    assertThat(futures.get(i).get(60, TimeUnit.SECONDS)).as(prompts.get(i)).isEqualTo(sequential.get(i));
                }
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void seededSamplingIsRepeatable() throws Exception {
        String body = "{\"prompt\": \"Once upon a time\", \"max_tokens\": 16, \"temperature\": 1.0, \"top_k\": 0,"
                + " \"top_p\": 1, \"min_p\": 0, \"seed\": 1234}";
        String a = client.post("/v1/completions", body).json().path("choices").path(0).path("text").asText();
        String b = client.post("/v1/completions", body).json().path("choices").path(0).path("text").asText();
        assertThat(a).isEqualTo(b);
    }
}
