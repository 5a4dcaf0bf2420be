package io.jcascade.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jcascade.cli.JCascade.CliException;

/**
 * Reads one line of a JSONL dataset: a JSON object with a {@code "prompt"} string. A bad line
 * becomes a {@link CliException} that says what is wrong, so batch commands can report it with
 * its line number and go on.
 */
final class JsonlPrompts {
    private JsonlPrompts() {}

    static ObjectNode parse(ObjectMapper json, String line) {
        JsonNode node;
        try {
            node = json.readTree(line);
        } catch (JsonProcessingException e) {
            throw new CliException("not valid JSON: " + e.getOriginalMessage());
        }
        if (!(node instanceof ObjectNode obj)) {
            throw new CliException("expected a JSON object, got " + node.getNodeType().toString().toLowerCase());
        }
        JsonNode prompt = obj.get("prompt");
        if (prompt == null || !prompt.isTextual()) {
            throw new CliException("no \"prompt\" string");
        }
        return obj;
    }
}
