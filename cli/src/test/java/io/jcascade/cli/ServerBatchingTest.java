package io.jcascade.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.cli.server.ModelBackend;
import io.jcascade.cli.server.OpenAiServer;
import io.jcascade.engine.GenerationParams;
import io.jcascade.engine.Model;
import io.jcascade.engine.ModelOptions;
import io.jcascade.engine.sampling.SamplingParams;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * {@code serve --sequences N}: concurrent requests decode together ({@link io.jcascade.engine.Batcher})
 * and each gets the completion it gets alone, streamed or not.
 */
class ServerBatchingTest {

    /** A meter's value in the Prometheus text. */
    private static double meter(String text, String name) {
        return text.lines().filter(l -> l.startsWith(name + " ") || l.startsWith(name + "{")).findFirst()
                .map(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1))).orElseThrow(
                        () -> new AssertionError(name + " not in /metrics:\n" + text));
    }

    @Test
    void concurrentRequestsDecodedTogetherGetTheirOwnCompletions() throws Exception {
        List<String> prompts = List.of("Once upon a time", "The little dog", "Lily wanted to", "One day, a big",
                "The sun", "Tom had a");
        List<String> alone = new ArrayList<>();
        try (Model m = Model.load(CascadeCommandTest.repo("models/stories260K.gguf"),
                ModelOptions.defaults().withThreads(1).withContextLength(128))) {
            for (String p : prompts) {
                alone.add(m.generate(p, GenerationParams.defaults().withMaxTokens(20)
                        .withSampling(SamplingParams.greedy())).text());
            }
        }
        ModelBackend backend = ModelBackend.load(CascadeCommandTest.repo("models/stories260K.gguf"),
                ModelOptions.defaults().withThreads(1).withContextLength(128), null, ModelBackend.ChatFormat.TEMPLATE,
                4);
        StringWriter log = new StringWriter();
        try (OpenAiServer server = OpenAiServer.start(backend, OpenAiServer.Options.defaults().withPort(0)
                .withParallel(4).withQueue(8).withShutdownGrace(Duration.ofSeconds(2)), new PrintWriter(log, true));
                ServerClient client = new ServerClient(server.port())) {
            ExecutorService pool = Executors.newFixedThreadPool(prompts.size());
            List<Future<String>> texts = new ArrayList<>();
            for (int i = 0; i < prompts.size(); i++) {
                String body = ServerTest.greedy(prompts.get(i), 20, i % 2 == 0 ? "" : ", \"stream\": true");
                boolean stream = i % 2 == 1;
                texts.add(pool.submit(() -> stream ? client.stream("/v1/completions", body).text()
                        : client.post("/v1/completions", body).json().path("choices").path(0).path("text").asText()));
            }
            for (int i = 0; i < prompts.size(); i++) {
                assertThat(texts.get(i).get()).as(prompts.get(i)).isEqualTo(alone.get(i));
            }
            pool.shutdown();
            String metrics = client.get("/metrics").body();
            double steps = meter(metrics, "jcascade_batch_steps_total");
            double tokens = meter(metrics, "jcascade_batch_tokens_total");
            assertThat(steps).isPositive();
            assertThat(tokens).isGreaterThanOrEqualTo(steps); // and 6 x 20 tokens in all, each after its first
            assertThat(tokens).isEqualTo(6 * 19);
            assertThat(meter(metrics, "jcascade_batch_largest")).isBetween(1.0, 4.0);
        }
    }
}
