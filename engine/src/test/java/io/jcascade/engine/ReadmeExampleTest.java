package io.jcascade.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.engine.sampling.SamplingParams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The README's Java example, compiled and run as written (with the model path made absolute). */
class ReadmeExampleTest {

    @Test
    void readmeExampleRuns() throws Exception {
        Path modelPath = SharedData.embeddedModel("stories260K.gguf");
        StringBuilder printed = new StringBuilder();
        // --- README example, with System.out replaced by a buffer ---
        try (Model model = Model.load(modelPath)) {
            GenerationParams params = GenerationParams.defaults()
                    .withMaxTokens(64)
                    .withSampling(SamplingParams.greedy());
            GenerationResult result = model.generate("Once upon a time", params,
                    token -> printed.append(token.text()));
            printed.append(String.format("%n%d tokens, mean entropy %.3f%n", result.tokens().size(),
                    result.meanEntropy()));
            assertThat(result.text()).isNotBlank();
            assertThat(printed.toString()).startsWith(result.text());
            // --- the second README example ---
            List<GenerationResult> answers = model.generateAll(List.of("Once upon a time", "The little dog"), params, 8);
            try (Batcher batcher = model.batcher(8)) {           // for a service: submit from any thread
                GenerationResult r = batcher.submit(model.tokenizer().encode("Lily", true), params,
                        TokenListener.NONE, new CancelToken()).join();
                assertThat(r.text()).isEqualTo(model.generate("Lily", params).text());
            }
            assertThat(answers.get(0).text()).isEqualTo(result.text());
        }
        // The example in the README must be the one tested here.
        String readme = Files.readString(modelPath.getParent().getParent().resolve("README.md"));
        assertThat(readme).contains("try (Model model = Model.load(Path.of(\"models/stories260K.gguf\"))) {")
                .contains(".withSampling(SamplingParams.greedy());")
                .contains("GenerationResult result = model.generate(\"Once upon a time\", params,")
                .contains("List<GenerationResult> answers = model.generateAll(List.of(\"Once upon a time\", \"The little dog\"), params, 8);")
                .contains("GenerationResult r = batcher.submit(model.tokenizer().encode(\"Lily\", true), params,");
    }
}
