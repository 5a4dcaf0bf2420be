package io.jcascade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/** A small HTTP client for the server tests: JSON posts and Server-Sent Events, with timeouts. */
final class ServerClient implements AutoCloseable {
    static final ObjectMapper JSON = new ObjectMapper();

    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();
    private final String root;

    ServerClient(int port) {
        this.root = "http://127.0.0.1:" + port;
    }

    record Reply(int status, JsonNode json, String body, HttpResponse<String> raw) {}

    /** Parsed SSE stream: the JSON of every data line before [DONE], and whether [DONE] came. */
    record Stream(int status, List<JsonNode> events, boolean done, String body) {
        /** The concatenated text deltas (chat: delta.content, completions: text). */
        String text() {
            StringBuilder sb = new StringBuilder();
            for (JsonNode e : events) {
                JsonNode c = e.path("choices").path(0);
                JsonNode t = c.has("delta") ? c.path("delta").path("content") : c.path("text");
                if (t.isTextual()) {
                    sb.append(t.asText());
                }
            }
            return sb.toString();
        }

        JsonNode last() {
            return events.getLast();
        }
    }

    Reply post(String path, String body) throws Exception {
        return send("POST", path, body);
    }

    Reply get(String path) throws Exception {
        return send("GET", path, null);
    }

    Reply send(String method, String path, String body) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(root + path)).timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json");
        b.method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
        JsonNode json = null;
        if (r.headers().firstValue("Content-Type").orElse("").startsWith("application/json")) {
            json = JSON.readTree(r.body());
        }
        return new Reply(r.statusCode(), json, r.body(), r);
    }

    Stream stream(String path, String body) throws Exception {
        Reply r = post(path, body);
        List<JsonNode> events = new ArrayList<>();
        boolean done = false;
        if (r.status() == 200) {
            for (String block : r.body().split("\n\n")) {
                if (block.isBlank()) {
                    continue;
                }
                if (!block.startsWith("data: ")) {
                    throw new AssertionError("not an SSE data line: " + block);
                }
                String data = block.substring("data: ".length());
                if (data.equals("[DONE]")) {
                    done = true;
                } else if (done) {
                    throw new AssertionError("data after [DONE]: " + data);
                } else {
                    events.add(JSON.readTree(data));
                }
            }
        }
        return new Stream(r.status(), events, done, r.body());
    }

    @Override
    public void close() {
        http.close();
    }
}
