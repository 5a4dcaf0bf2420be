package io.jcascade.cli.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.jcascade.engine.CancelToken;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Locale;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An OpenAI-compatible HTTP server on the JDK's {@link HttpServer}: {@code POST /v1/completions},
 * {@code POST /v1/chat/completions} (JSON or Server-Sent Events with {@code "stream": true}),
 * {@code GET /v1/models}, {@code GET /health} and {@code GET /metrics} (Prometheus text).
 *
 * <p>At most {@code parallel} generations run at once; up to {@code queue} more requests wait for
 * a slot, and past that the server answers 503 at once. Errors are OpenAI's
 * {@code {"error": {"message", "type", "param", "code"}}}, never a stack trace. The {@code model}
 * key of a request is ignored, as the llama.cpp server does: whatever it names, the loaded model
 * (or the cascade) answers. A streamed generation is cancelled when the client goes away. One line
 * per request goes to the log: method, path, status, prompt and completion tokens, milliseconds.
 *
 * <pre>{@code
 * try (ServerBackend backend = ModelBackend.load(Path.of("models/stories260K.gguf"), ModelOptions.defaults(),
 *              null, ModelBackend.ChatFormat.TEMPLATE);
 *      OpenAiServer server = OpenAiServer.start(backend, OpenAiServer.Options.defaults().withPort(0),
 *              new PrintWriter(System.err, true))) {
 *     System.out.println("listening on " + server.baseUri()); // http://127.0.0.1:PORT/v1
 *     ...
 * }
 * }</pre>
 *
 * <p>{@link #close()} stops accepting connections, lets running requests finish for the grace
 * period, cancels those still running, then closes the backend.
 */
public final class OpenAiServer implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_BODY_BYTES = 8 << 20;

    /**
     * Where and how much to serve.
     *
     * @param host the address to bind, e.g. {@code 127.0.0.1} or {@code 0.0.0.0}
     * @param port the TCP port; 0 picks a free one
     * @param parallel generations that run at once
     * @param queue requests that may wait for a slot before the server answers 503
     * @param shutdownGrace how long {@link #close()} lets running requests finish
     */
    public record Options(String host, int port, int parallel, int queue, Duration shutdownGrace) {
        public Options {
            if (parallel < 1 || queue < 0 || port < 0 || port > 65535) {
                throw new IllegalArgumentException("parallel must be >= 1, queue >= 0, port in 0..65535");
            }
        }

        /** 127.0.0.1:8080, 4 parallel, 16 queued, 5 s grace. */
        public static Options defaults() {
            return new Options("127.0.0.1", 8080, 4, 16, Duration.ofSeconds(5));
        }

        public Options withHost(String h) {
            return new Options(h, port, parallel, queue, shutdownGrace);
        }

        public Options withPort(int p) {
            return new Options(host, p, parallel, queue, shutdownGrace);
        }

        public Options withParallel(int n) {
            return new Options(host, port, n, queue, shutdownGrace);
        }

        public Options withQueue(int n) {
            return new Options(host, port, parallel, n, shutdownGrace);
        }

        public Options withShutdownGrace(Duration d) {
            return new Options(host, port, parallel, queue, d);
        }
    }

    private final ServerBackend backend;
    private final Options options;
    private final PrintWriter log;
    private final HttpServer http;
    private final ExecutorService executor;
    private final Semaphore slots;
    private final AtomicInteger admitted = new AtomicInteger();
    private final AtomicInteger active = new AtomicInteger();
    private final Set<CancelToken> running = ConcurrentHashMap.newKeySet();
    private final ServerMetrics metrics;
    private final long created = System.currentTimeMillis() / 1000;
    private volatile boolean stopping;
    private boolean closed;

    private OpenAiServer(ServerBackend backend, Options options, PrintWriter log) throws IOException {
        this.backend = backend;
        this.options = options;
        this.log = log;
        this.slots = new Semaphore(options.parallel(), true);
        this.metrics = new ServerMetrics(active::get, () -> Math.max(0, admitted.get() - active.get()));
        backend.bindMetrics(metrics.registry());
        this.http = HttpServer.create(new InetSocketAddress(options.host(), options.port()), 64);
        // Handler threads are cheap to have: requests past parallel + queue are refused at once, so
        // at most that many wait; health and metrics never wait behind generations.
        AtomicInteger n = new AtomicInteger();
        this.executor = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "jcascade-http-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        http.setExecutor(executor);
        http.createContext("/", this::handle);
    }

    /** Binds and starts serving {@code backend}; it is closed by {@link #close()}. */
    public static OpenAiServer start(ServerBackend backend, Options options, PrintWriter log) throws IOException {
        OpenAiServer s = new OpenAiServer(backend, options, log);
        s.http.start();
        return s;
    }

    /** The bound port (the real one when {@code port} was 0). */
    public int port() {
        return http.getAddress().getPort();
    }

    /** {@code http://HOST:PORT/v1}, the base URL an OpenAI client (or a cascade's openai tier) needs. */
    public URI baseUri() {
        String host = http.getAddress().getAddress().isAnyLocalAddress() ? "127.0.0.1" : options.host();
        return URI.create("http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port() + "/v1");
    }

    public ServerMetrics metrics() {
        return metrics;
    }

    /** Generations running now. */
    public int activeGenerations() {
        return active.get();
    }

    /** Per-request facts for the log line. */
    private static final class Outcome {
        int status = 500;
        int promptTokens = -1;
        int completionTokens = -1;
        String note = "";
    }

    private void handle(HttpExchange ex) {
        long start = System.nanoTime();
        String method = ex.getRequestMethod();
        String path = ex.getRequestURI().getPath();
        String endpoint = switch (path) {
            case "/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/metrics" -> path;
            default -> "other";
        };
        Outcome outcome = new Outcome();
        try {
            route(ex, method, path, outcome);
        } catch (ApiException e) {
            outcome.status = e.status();
            outcome.note = e.status() >= 500 ? e.getMessage() : "";
            if (e.status() == 503) {
                metrics.rejected();
                ex.getResponseHeaders().set("Retry-After", "1");
            }
            sendError(ex, e);
        } catch (IOException e) {
            outcome.note = "client gone: " + e.getMessage();
        } catch (RuntimeException | Error e) {
            // A bug: the client gets a one-line 500, the log gets the details.
            outcome.status = 500;
            outcome.note = "internal error: " + e;
            sendError(ex, new ApiException(500, "server_error", "internal error: " + e.getClass().getSimpleName()
                    + (e.getMessage() != null ? ": " + e.getMessage() : ""), null, null));
            e.printStackTrace();
        } finally {
            ex.close();
            long nanos = System.nanoTime() - start;
            metrics.request(endpoint, outcome.status, nanos);
            StringBuilder line = new StringBuilder();
            line.append(method).append(' ').append(path).append(' ').append(outcome.status);
            if (outcome.promptTokens >= 0) {
                line.append(" prompt_tokens=").append(outcome.promptTokens);
            }
            if (outcome.completionTokens >= 0) {
                line.append(" completion_tokens=").append(outcome.completionTokens);
            }
            line.append(String.format(Locale.ROOT, " %.1fms", nanos / 1e6));
            if (!outcome.note.isEmpty()) {
                line.append(' ').append(outcome.note);
            }
            synchronized (log) {
                log.println(line);
                log.flush();
            }
        }
    }

    private void route(HttpExchange ex, String method, String path, Outcome outcome) throws IOException {
        switch (path) {
            case "/health" -> {
                allow(ex, method, "GET");
                ObjectNode h = JSON.createObjectNode().put("status", stopping ? "stopping" : "ok")
                        .put("model", backend.name()).put("parallel", options.parallel()).put("active", active.get())
                        .put("queued", Math.max(0, admitted.get() - active.get()));
                sendJson(ex, stopping ? 503 : 200, h);
                outcome.status = stopping ? 503 : 200;
            }
            case "/metrics" -> {
                allow(ex, method, "GET");
                byte[] body = metrics.scrape().getBytes(StandardCharsets.UTF_8);
                ex.getResponseHeaders().set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
                ex.sendResponseHeaders(200, body.length);
                ex.getResponseBody().write(body);
                outcome.status = 200;
            }
            case "/v1/models" -> {
                allow(ex, method, "GET");
                ObjectNode list = JSON.createObjectNode().put("object", "list");
                ArrayNode data = list.putArray("data");
                for (String id : backend.modelIds()) {
                    data.addObject().put("id", id).put("object", "model").put("created", created)
                            .put("owned_by", "jcascade");
                }
                sendJson(ex, 200, list);
                outcome.status = 200;
            }
            case "/v1/completions" -> {
                allow(ex, method, "POST");
                complete(ex, false, outcome);
            }
            case "/v1/chat/completions" -> {
                allow(ex, method, "POST");
                complete(ex, true, outcome);
            }
            default -> throw new ApiException(404, "invalid_request_error",
                    "unknown path " + method + " " + path + "; this server has POST /v1/completions,"
                            + " POST /v1/chat/completions, GET /v1/models, GET /health, GET /metrics", null,
                    "not_found");
        }
    }

    private static void allow(HttpExchange ex, String method, String allowed) {
        if (!method.equals(allowed)) {
            ex.getResponseHeaders().set("Allow", allowed);
            throw new ApiException(405, "invalid_request_error", "method " + method + " not allowed on "
                    + ex.getRequestURI().getPath() + "; use " + allowed, null, "method_not_allowed");
        }
    }

    private JsonNode readBody(HttpExchange ex) throws IOException {
        byte[] body;
        try (InputStream in = ex.getRequestBody()) {
            body = in.readNBytes(MAX_BODY_BYTES + 1);
        }
        if (body.length > MAX_BODY_BYTES) {
            throw new ApiException(413, "invalid_request_error", "the request body is larger than "
                    + (MAX_BODY_BYTES >> 20) + " MiB", null, null);
        }
        try {
            JsonNode root = JSON.readTree(body);
            if (root == null || root.isMissingNode()) {
                throw ApiException.badRequest("the request body is empty; expected a JSON object", null);
            }
            return root;
        } catch (JsonProcessingException e) {
            String where = e.getLocation() != null ? " at line " + e.getLocation().getLineNr() + ", column "
                    + e.getLocation().getColumnNr() : "";
            throw ApiException.badRequest("malformed JSON" + where + ": " + e.getOriginalMessage()
                    .replaceAll("\\s+", " "), null);
        }
    }

    private void complete(HttpExchange ex, boolean chat, Outcome outcome) throws IOException {
        CompletionRequest request = RequestParser.parse(readBody(ex), chat, backend.contextLength());
        if (stopping) {
            throw ApiException.overloaded("the server is shutting down");
        }
        int limit = options.parallel() + options.queue();
        if (admitted.incrementAndGet() > limit) {
            admitted.decrementAndGet();
            throw ApiException.overloaded("the server is busy: " + options.parallel() + " generations running and "
                    + options.queue() + " waiting; retry later");
        }
        CancelToken cancel = new CancelToken();
        try {
            try {
                slots.acquire();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw ApiException.overloaded("the server is shutting down");
            }
            try {
                if (stopping) {
                    throw ApiException.overloaded("the server is shutting down");
                }
                active.incrementAndGet();
                running.add(cancel);
                generate(ex, chat, request, cancel, outcome);
            } finally {
                running.remove(cancel);
                active.decrementAndGet();
                slots.release();
            }
        } finally {
            admitted.decrementAndGet();
        }
    }

    private void generate(HttpExchange ex, boolean chat, CompletionRequest request, CancelToken cancel,
            Outcome outcome) throws IOException {
        String id = (chat ? "chatcmpl-" : "cmpl-") + UUID.randomUUID().toString().replace("-", "").substring(0, 24);
        long now = System.currentTimeMillis() / 1000;
        long start = System.nanoTime();
        long[] firstToken = {-1};
        String endpoint = chat ? "/v1/chat/completions" : "/v1/completions";
        if (!request.stream()) {
            ServerBackend.Answer a = backend.complete(request, text -> {
                if (firstToken[0] < 0) {
                    firstToken[0] = System.nanoTime() - start;
                }
            }, cancel);
            metrics.generation(endpoint, a.promptTokens(), a.completionTokens(), firstToken[0], System.nanoTime() - start);
            outcome.promptTokens = a.promptTokens();
            outcome.completionTokens = a.completionTokens();
            ObjectNode body = JSON.createObjectNode().put("id", id)
                    .put("object", chat ? "chat.completion" : "text_completion").put("created", now)
                    .put("model", a.model());
            ObjectNode choice = body.putArray("choices").addObject().put("index", 0);
            if (chat) {
                choice.putObject("message").put("role", "assistant").put("content", a.text());
            } else {
                choice.put("text", a.text());
            }
            choice.putNull("logprobs");
            choice.put("finish_reason", a.finishReason());
            usage(body.putObject("usage"), a);
            if (a.extension() != null) {
                body.set("jcascade", a.extension());
            }
            sendJson(ex, 200, body);
            outcome.status = 200;
            return;
        }
        Sse sse = new Sse(ex, cancel);
        ServerBackend.Answer a;
        try {
            a = backend.complete(request, text -> {
                if (firstToken[0] < 0) {
                    firstToken[0] = System.nanoTime() - start;
                }
                if (text.isEmpty()) {
                    return;
                }
                if (!sse.started) {
                    sse.start();
                    if (chat) {
                        sse.event(chunk(id, now, backend.name(), chat, null, "assistant", null, null));
                    }
                }
                sse.event(chunk(id, now, backend.name(), chat, text, null, null, null));
            }, cancel);
        } catch (ApiException e) {
            if (!sse.started) {
                throw e;
            }
            outcome.status = 200;
            outcome.note = "error after the stream began: " + e.getMessage();
            sse.event(errorBody(e).toString());
            return;
        }
        outcome.promptTokens = a.promptTokens();
        outcome.completionTokens = a.completionTokens();
        outcome.status = 200;
        if (firstToken[0] < 0) {
            firstToken[0] = System.nanoTime() - start;
        }
        if (!sse.started) {
            // Nothing streamed (a cascade answers all at once, or the text is empty): the answer is one chunk.
            sse.start();
            if (chat) {
                sse.event(chunk(id, now, a.model(), chat, null, "assistant", null, null));
            }
            if (!a.text().isEmpty()) {
                sse.event(chunk(id, now, a.model(), chat, a.text(), null, null, null));
            }
        }
        sse.event(chunk(id, now, a.model(), chat, chat ? null : "", null, a.finishReason(), a.extension()));
        metrics.generation(endpoint, a.promptTokens(), a.completionTokens(), firstToken[0], System.nanoTime() - start);
        if (request.includeUsage()) {
            ObjectNode u = JSON.createObjectNode().put("id", id)
                    .put("object", chat ? "chat.completion.chunk" : "text_completion").put("created", now)
                    .put("model", a.model());
            u.putArray("choices");
            usage(u.putObject("usage"), a);
            sse.event(u.toString());
        }
        sse.done();
        if (sse.gone) {
            outcome.note = "client disconnected, generation cancelled";
        }
    }

    private static String chunk(String id, long created, String model, boolean chat, String text, String role,
            String finishReason, ObjectNode extension) {
        ObjectNode c = JSON.createObjectNode().put("id", id)
                .put("object", chat ? "chat.completion.chunk" : "text_completion").put("created", created)
                .put("model", model);
        ObjectNode choice = c.putArray("choices").addObject().put("index", 0);
        if (chat) {
            ObjectNode delta = choice.putObject("delta");
            if (role != null) {
                delta.put("role", role);
            }
            if (role != null || text != null) {
                delta.put("content", role != null ? "" : text);
            }
        } else {
            choice.put("text", text);
        }
        choice.putNull("logprobs");
        if (finishReason != null) {
            choice.put("finish_reason", finishReason);
        } else {
            choice.putNull("finish_reason");
        }
        if (extension != null && !extension.has("tokens")) {
            // The per-token array is left out of streams (each token already came as a chunk).
            c.set("jcascade", extension);
        } else if (extension != null) {
            ObjectNode summary = extension.deepCopy();
            summary.remove("tokens");
            c.set("jcascade", summary);
        }
        return c.toString();
    }

    private static void usage(ObjectNode u, ServerBackend.Answer a) {
        u.put("prompt_tokens", a.promptTokens()).put("completion_tokens", a.completionTokens())
                .put("total_tokens", a.promptTokens() + a.completionTokens());
    }

    /** Server-Sent Events on one exchange: headers on the first event, a flush per event. */
    private static final class Sse {
        private final HttpExchange ex;
        private final CancelToken cancel;
        private OutputStream out;
        boolean started;
        boolean gone;

        Sse(HttpExchange ex, CancelToken cancel) {
            this.ex = ex;
            this.cancel = cancel;
        }

        void start() {
            started = true;
            try {
                ex.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
                ex.getResponseHeaders().set("Cache-Control", "no-cache");
                ex.sendResponseHeaders(200, 0);
                out = ex.getResponseBody();
            } catch (IOException e) {
                lost();
            }
        }

        void event(String json) {
            write("data: " + json + "\n\n");
        }

        void done() {
            write("data: [DONE]\n\n");
        }

        private void write(String s) {
            if (gone || out == null) {
                return;
            }
            try {
                out.write(s.getBytes(StandardCharsets.UTF_8));
                out.flush();
            } catch (IOException e) {
                lost();
            }
        }

        /** The client went away: stop generating for it. */
        private void lost() {
            gone = true;
            cancel.cancel();
        }
    }

    private static ObjectNode errorBody(ApiException e) {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode err = root.putObject("error").put("message", e.getMessage()).put("type", e.type());
        if (e.param() != null) {
            err.put("param", e.param());
        } else {
            err.putNull("param");
        }
        if (e.code() != null) {
            err.put("code", e.code());
        } else {
            err.putNull("code");
        }
        return root;
    }

    private static void sendError(HttpExchange ex, ApiException e) {
        try {
            sendJson(ex, e.status(), errorBody(e));
        } catch (IOException | RuntimeException ignored) {
            // headers already sent or the client is gone: nothing more to tell it
        }
    }

    private static void sendJson(HttpExchange ex, int status, JsonNode body) throws IOException {
        byte[] bytes = JSON.writeValueAsBytes(body);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, bytes.length);
        ex.getResponseBody().write(bytes);
    }

    /**
     * Stops accepting connections, waits up to the grace period for running requests, cancels
     * generations still running, and closes the backend once none runs.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        stopping = true;
        long graceNanos = options.shutdownGrace().toNanos();
        long deadline = System.nanoTime() + graceNanos;
        // HttpServer.stop closes the listening socket at once, then waits for running exchanges.
        Thread stopper = Thread.ofPlatform().daemon().start(
                () -> http.stop((int) Math.max(1, (graceNanos + 999_999_999L) / 1_000_000_000L)));
        while (admitted.get() > 0 && System.nanoTime() < deadline) {
            sleep(10);
        }
        for (CancelToken c : running) {
            c.cancel();
        }
        long hard = System.nanoTime() + TimeUnit.SECONDS.toNanos(2);
        while (active.get() > 0 && System.nanoTime() < hard) {
            sleep(10);
        }
        try {
            stopper.join(Math.max(1, graceNanos / 1_000_000 + 1000));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        executor.shutdownNow();
        if (active.get() == 0) {
            backend.close();
        } else {
            // Unmapping the weights under a running generation would crash the JVM; it is exiting anyway.
            synchronized (log) {
                log.println("jcascade: " + active.get() + " generations did not stop; the model stays open");
                log.flush();
            }
        }
    }

    private static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
