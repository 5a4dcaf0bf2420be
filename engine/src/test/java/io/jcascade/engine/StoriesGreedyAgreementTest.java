package io.jcascade.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.engine.sampling.SamplingParams;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Greedy generation on the embedded stories260K model must print exactly what llama.cpp prints
 * for the same file and prompt.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class StoriesGreedyAgreementTest {
    private Path file;
    private Model model;
    private LlamaCppOracle llamaCpp;

    @BeforeAll
    void open() throws Exception {
        file = SharedData.embeddedModel("stories260K.gguf");
        model = Model.load(file, ModelOptions.defaults().withThreads(2));
        llamaCpp = new LlamaCppOracle(file, 512);
    }

    @AfterAll
    void close() {
        if (model != null) {
            model.close();
        }
        if (llamaCpp != null) {
            llamaCpp.close();
        }
    }

    private String ours(String prompt, int maxTokens) {
        GenerationParams p = GenerationParams.defaults().withMaxTokens(maxTokens).withSampling(SamplingParams.greedy());
        return model.generate(prompt, p).text();
    }

    @ParameterizedTest
    @ValueSource(strings = {"Once upon a time", "The little dog", "Lily wanted to", "One day, a big",
        "Tom and Sue went to the park. They", "Sara had a red ball.", "The sun"})
    void greedyCompletionMatchesLlamaCpp(String prompt) {
        String expected = llamaCpp.greedy(prompt, 128);
        assertThat(ours(prompt, 128)).isEqualTo(expected);
    }

    @Test
    void streamedTokensConcatenateToTheResult() {
        StringBuilder streamed = new StringBuilder();
        GenerationParams p = GenerationParams.defaults().withMaxTokens(64).withSampling(SamplingParams.greedy());
        GenerationResult r = model.generate("Once upon a time", p, t -> streamed.append(t.text()));
        assertThat(streamed.toString()).isEqualTo(r.text());
        assertThat(r.tokens()).isNotEmpty().allSatisfy(t -> assertThat(t.entropy()).isFinite().isNotNegative());
    }
}
