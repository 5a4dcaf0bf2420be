package io.jcascade.cascade;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;

/** An API stand-in on 127.0.0.1 that plays a script of replies and faults, then answers normally. */
final class LoopbackServer implements AutoCloseable {
    enum Fault { OK, SLOW, RATE_LIMITED, SERVER_ERROR, DROP, MALFORMED, UNAUTHORIZED_ECHO }

    record Request(String path, Map<String, List<String>> headers, String body) {
        String header(String name) {
            for (var e : headers.entrySet()) {
                if (e.getKey().equalsIgnoreCase(name)) {
                    return e.getValue().get(0);
                }
            }
            return null;
        }
    }

    final HttpServer server;
    final boolean anthropic;
    final ConcurrentLinkedQueue<Fault> script = new ConcurrentLinkedQueue<>();
    final List<Request> requests = new CopyOnWriteArrayList<>();
    volatile Fault whenScriptEnds = Fault.OK;
    volatile String answer = "42";
    volatile long slowMs = 2500;
    volatile String retryAfter = "0";

    LoopbackServer(boolean anthropic) throws IOException {
        this.anthropic = anthropic;
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.setExecutor(Executors.newFixedThreadPool(4));
        server.createContext("/", this::handle);
        server.start();
    }

    String baseUrl() {
        return "http://127.0.0.1:" + server.getAddress().getPort() + "/v1";
    }

    LoopbackServer play(Fault... faults) {
        script.addAll(List.of(faults));
        return this;
    }

    private void handle(HttpExchange ex) throws IOException {
        String body = new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
        requests.add(new Request(ex.getRequestURI().getPath(), Map.copyOf(ex.getRequestHeaders()), body));
        Fault f = script.poll();
        if (f == null) {
            f = whenScriptEnds;
        }
        switch (f) {
            case OK -> send(ex, 200, anthropic
                    ? "{\"id\":\"msg_1\",\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"" + answer
                            + "\"}],\"usage\":{\"input_tokens\":12,\"output_tokens\":3}}"
                    : "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\""
                            + answer + "\"}}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3}}");
            case SLOW -> {
                try {
                    Thread.sleep(slowMs);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                send(ex, 200, "{}");
            }
            case RATE_LIMITED -> {
                ex.getResponseHeaders().add("Retry-After", retryAfter);
                send(ex, 429, "{\"error\":\"rate limited\"}");
            }
            case SERVER_ERROR -> send(ex, 500, "{\"error\":\"boom\"}");
            case DROP -> {
                // Promise 1000 bytes, send 10, hang up: the client sees the connection drop mid-reply.
                ex.sendResponseHeaders(200, 1000);
                OutputStream out = ex.getResponseBody();
                out.write("{\"choices\"".getBytes(StandardCharsets.UTF_8));
                out.flush();
                ex.getHttpContext().getServer();
                ex.close();
            }
            case MALFORMED -> send(ex, 200, "{\"choices\": [ {\"message\": ");
            case UNAUTHORIZED_ECHO -> {
                String auth = ex.getRequestHeaders().getFirst(anthropic ? "x-api-key" : "Authorization");
                send(ex, 401, "{\"error\":\"bad key " + auth + "\"}");
            }
        }
    }

    private static void send(HttpExchange ex, int status, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().add("Content-Type", "application/json");
        ex.sendResponseHeaders(status, b.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(b);
        }
    }

    @Override
    public void close() {
        server.stop(0);
        ((java.util.concurrent.ExecutorService) server.getExecutor()).shutdownNow();
    }
}
