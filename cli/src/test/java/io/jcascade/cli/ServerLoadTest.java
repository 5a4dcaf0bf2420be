package io.jcascade.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.jcascade.cli.server.CompletionRequest;
import io.jcascade.cli.server.OpenAiServer;
import io.jcascade.cli.server.ServerBackend;
import io.jcascade.engine.CancelToken;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Overload, client disconnects and shutdown, with a backend whose pace the test controls. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ServerLoadTest {

    /** Emits "x" every {@code pauseMs} until {@code tokens}, cancellation or {@code release}. */
    static final class PacedBackend implements ServerBackend {
        final CountDownLatch release = new CountDownLatch(1);
        final AtomicInteger started = new AtomicInteger();
        final AtomicBoolean cancelled = new AtomicBoolean();
        final AtomicBoolean closed = new AtomicBoolean();
        final int tokens;
        final long pauseMs;
        final boolean waitForRelease;

        PacedBackend(int tokens, long pauseMs, boolean waitForRelease) {
            this.tokens = tokens;
            this.pauseMs = pauseMs;
            this.waitForRelease = waitForRelease;
        }

        @Override
        public String name() {
            return "paced";
        }

        @Override
        public List<String> modelIds() {
            return List.of("paced");
        }

        @Override
        public int contextLength() {
            return 100_000;
        }

        @Override
        public Answer complete(CompletionRequest request, TokenSink sink, CancelToken cancel) {
            started.incrementAndGet();
            if (waitForRelease) {
                try {
                    release.await(30, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            int n = 0;
            StringBuilder text = new StringBuilder();
            while (n < tokens && !cancel.isCancelled()) {
                sink.onToken("x");
                text.append('x');
                n++;
                try {
                    Thread.sleep(pauseMs);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
            if (cancel.isCancelled()) {
                cancelled.set(true);
            }
            return new Answer("paced", text.toString(), 1, n, n == tokens ? "length" : "stop", null);
        }

        @Override
        public void close() {
            closed.set(true);
        }
    }

    @Test
    void pastParallelPlusQueueTheServerAnswers503() throws Exception {
        PacedBackend backend = new PacedBackend(1, 0, true);
        StringWriter log = new StringWriter();
        OpenAiServer server = OpenAiServer.start(backend, OpenAiServer.Options.defaults().withPort(0).withParallel(1)
                .withQueue(1), new PrintWriter(log, true));
        ExecutorService pool = Executors.newFixedThreadPool(2);
        try (ServerClient client = new ServerClient(server.port())) {
            String body = "{\"prompt\": \"hi\"}";
            Future<ServerClient.Reply> running = pool.submit(() -> client.post("/v1/completions", body));
            Future<ServerClient.Reply> queued = pool.submit(() -> client.post("/v1/completions", body));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (System.nanoTime() < deadline) {
                ServerClient.Reply h = client.get("/health");
                if (h.json().path("active").asInt() == 1 && h.json().path("queued").asInt() == 1) {
                    break;
                }
                Thread.sleep(10);
            }
            ServerClient.Reply health = client.get("/health");
            assertThat(health.status()).as("health answers while the slots are full").isEqualTo(200);
            assertThat(health.json().path("queued").asInt()).isEqualTo(1);

            ServerClient.Reply rejected = client.post("/v1/completions", body);
            ServerTest.assertError(rejected, 503, null, "busy");
            assertThat(rejected.json().path("error").path("code").asText()).isEqualTo("overloaded");
            assertThat(rejected.raw().headers().firstValue("Retry-After")).hasValue("1");
            ServerTest.assertError(client.post("/v1/chat/completions",
                    "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream\": true}"), 503, null, "busy");

            backend.release.countDown();
            assertThat(running.get(20, TimeUnit.SECONDS).status()).isEqualTo(200);
            assertThat(queued.get(20, TimeUnit.SECONDS).status()).isEqualTo(200);
            assertThat(backend.started.get()).isEqualTo(2);
            assertThat(client.get("/metrics").body()).contains("jcascade_requests_rejected_total 2.0");
            assertThat(log.toString()).contains("POST /v1/completions 503");
        } finally {
            pool.shutdownNow();
            server.close();
        }
        assertThat(backend.closed).isTrue();
    }

    @Test
    void aClientThatGoesAwayCancelsItsStreamedGeneration() throws Exception {
        PacedBackend backend = new PacedBackend(3000, 5, false);
        OpenAiServer server = OpenAiServer.start(backend, OpenAiServer.Options.defaults().withPort(0),
                new PrintWriter(new StringWriter(), true));
        try (ServerClient client = new ServerClient(server.port())) {
            String body = "{\"prompt\": \"hi\", \"stream\": true}";
            try (Socket socket = new Socket("127.0.0.1", server.port())) {
                OutputStream out = socket.getOutputStream();
                out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        + "Content-Length: " + body.length() + "\r\n\r\n" + body).getBytes(StandardCharsets.US_ASCII));
                out.flush();
                BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(),
                        StandardCharsets.UTF_8));
                String line;
                int events = 0;
                while ((line = in.readLine()) != null && events < 3) {
                    if (line.startsWith("data: ")) {
                        events++;
                    }
                }
                assertThat(events).isEqualTo(3);
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (!backend.cancelled.get() && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertThat(backend.cancelled).as("cancelled well before its 3000 tokens (15 s)").isTrue();
            assertThat(client.get("/health").json().path("active").asInt()).isZero();
        } finally {
            server.close();
        }
    }

    @Test
    void closeLetsRunningRequestsFinishThenCancelsAndClosesTheBackend() throws Exception {
        PacedBackend backend = new PacedBackend(20, 10, false); // 200 ms, inside the grace period
        OpenAiServer server = OpenAiServer.start(backend, OpenAiServer.Options.defaults().withPort(0)
                .withShutdownGrace(Duration.ofSeconds(3)), new PrintWriter(new StringWriter(), true));
        int port = server.port();
        ExecutorService pool = Executors.newSingleThreadExecutor();
        try (ServerClient client = new ServerClient(port)) {
            Future<ServerClient.Reply> running = pool.submit(() -> client.post("/v1/completions", "{\"prompt\": \"hi\"}"));
            while (backend.started.get() == 0) {
                Thread.sleep(5);
            }
            server.close();
            ServerClient.Reply r = running.get(10, TimeUnit.SECONDS);
            assertThat(r.status()).isEqualTo(200);
            assertThat(r.json().path("choices").path(0).path("text").asText()).isEqualTo("x".repeat(20));
            assertThat(backend.cancelled).isFalse();
            assertThat(backend.closed).isTrue();
            assertThatThrownBy(() -> client.get("/health")).isInstanceOf(java.io.IOException.class);
        } finally {
            pool.shutdownNow();
        }

        PacedBackend endless = new PacedBackend(100_000, 5, false);
        OpenAiServer second = OpenAiServer.start(endless, OpenAiServer.Options.defaults().withPort(0)
                .withShutdownGrace(Duration.ofMillis(300)), new PrintWriter(new StringWriter(), true));
        ExecutorService pool2 = Executors.newSingleThreadExecutor();
        try (ServerClient client = new ServerClient(second.port())) {
            Future<ServerClient.Stream> running = pool2.submit(() -> client.stream("/v1/completions",
                    "{\"prompt\": \"hi\", \"stream\": true}"));
            while (endless.started.get() == 0) {
                Thread.sleep(5);
            }
            long t0 = System.nanoTime();
            second.close();
            assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0)).isLessThan(5000);
            assertThat(endless.cancelled).as("cancelled after the grace period").isTrue();
            assertThat(endless.closed).isTrue();
            try {
                running.get(10, TimeUnit.SECONDS);
            } catch (java.util.concurrent.ExecutionException e) {
                // the connection was closed under the stream: either ending is fine
            }
        } finally {
            pool2.shutdownNow();
        }
    }
}
