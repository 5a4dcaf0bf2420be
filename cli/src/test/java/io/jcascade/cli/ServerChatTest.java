package io.jcascade.cli;

import io.jcascade.engine.TinyGguf;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.jcascade.cli.server.ModelBackend;
import io.jcascade.cli.server.OpenAiServer;
import io.jcascade.engine.CancelToken;
import io.jcascade.engine.GenerationParams;
import io.jcascade.engine.GenerationResult;
import io.jcascade.engine.Model;
import io.jcascade.engine.ModelOptions;
import io.jcascade.engine.TokenListener;
import io.jcascade.engine.chat.ChatMessage;
import io.jcascade.engine.chat.ChatTemplate;
import io.jcascade.engine.sampling.SamplingParams;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Chat completions rendered through a real chat template: the tiny random model with the Llama 3 vocab. */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ServerChatTest {

    @Test
    void chatIsRenderedWithTheModelsTemplate(@TempDir Path dir) throws Exception {
        String shared = System.getProperty("jcascade.shared");
        assumeTrue(shared != null, "jcascade.shared not set");
        Path vocab = Path.of(shared, "tokenizer-vectors", "ggml-vocab-llama-bpe.gguf");
        assumeTrue(Files.isRegularFile(vocab), "missing " + vocab);
        Path tiny = TinyGguf.withVocabOf(vocab, dir.resolve("tiny-llama3.gguf"));
        List<ChatMessage> chat = List.of(ChatMessage.system("Be brief."), ChatMessage.user("Hello there"));
        GenerationResult expected;
        int promptTokens;
        try (Model m = Model.load(tiny, ModelOptions.defaults().withThreads(1))) {
            ChatTemplate t = m.chatTemplate().orElseThrow();
            int[] ids = ChatTemplate.encode(m.tokenizer(), t.render(chat, true));
            promptTokens = ids.length;
            expected = m.generate(ids, GenerationParams.defaults().withMaxTokens(12)
                    .withSampling(SamplingParams.greedy()), TokenListener.NONE, new CancelToken());
        }
        ModelBackend backend = ModelBackend.load(tiny, ModelOptions.defaults().withThreads(1), "tiny",
                ModelBackend.ChatFormat.TEMPLATE);
        assertThat(backend.chatDescription()).isEqualTo("the model's chat template");
        try (OpenAiServer server = OpenAiServer.start(backend, OpenAiServer.Options.defaults().withPort(0),
                new PrintWriter(new StringWriter(), true)); ServerClient client = new ServerClient(server.port())) {
            String body = "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
                    + " {\"role\": \"user\", \"content\": \"Hello there\"}], \"max_tokens\": 12, \"temperature\": 0";
            JsonNode j = client.post("/v1/chat/completions", body + "}").json();
            assertThat(j.path("model").asText()).isEqualTo("tiny");
            assertThat(j.path("choices").path(0).path("message").path("content").asText()).isEqualTo(expected.text());
            assertThat(j.path("usage").path("prompt_tokens").asInt()).isEqualTo(promptTokens);
            assertThat(j.path("usage").path("completion_tokens").asInt()).isEqualTo(expected.tokens().size());
            ServerClient.Stream s = client.stream("/v1/chat/completions", body + ", \"stream\": true}");
            assertThat(s.done()).isTrue();
            assertThat(s.text()).isEqualTo(expected.text());
        }
    }
}
