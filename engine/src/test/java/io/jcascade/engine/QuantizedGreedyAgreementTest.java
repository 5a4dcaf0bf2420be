package io.jcascade.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.engine.sampling.SamplingParams;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Greedy generation on the real quantized stories260K files (Q8_0 and Q4_0, made by ggml's
 * reference quantizer; ffn_down stays F32 there) should print what llama.cpp prints: jcascade's
 * default 8-bit activation path multiplies these weights as llama.cpp's CPU backend does
 * (activations quantized to Q8_0, integer block sums, one float multiply per block). With the
 * float-activation path ({@code -Djcascade.activations=f32}) 2 of 7 completions agree.
 */
class QuantizedGreedyAgreementTest {

    private static final String[] PROMPTS = {"Once upon a time", "The little dog", "Lily wanted to", "One day, a big",
        "Tom and Sue went to the park. They", "Sara had a red ball.", "The sun"};

    @ParameterizedTest
    @ValueSource(strings = {"derived/stories260K-Q8_0.gguf", "derived/stories260K-Q4_0.gguf"})
    void greedyCompletionsMatchLlamaCpp(String name) throws Exception {
        Path file = SharedData.shared("models/" + name);
        int same = 0, total = 0;
        StringBuilder report = new StringBuilder();
        try (Model model = Model.load(file, ModelOptions.defaults().withThreads(2));
                LlamaCppOracle llamaCpp = new LlamaCppOracle(file, 512)) {
            for (String prompt : PROMPTS) {
                String expected = llamaCpp.greedy(prompt, 128);
                GenerationParams p = GenerationParams.defaults().withMaxTokens(128)
                        .withSampling(SamplingParams.greedy());
                String ours = model.generate(prompt, p).text();
                int prefix = 0;
                while (prefix < Math.min(ours.length(), expected.length())
                        && ours.charAt(prefix) == expected.charAt(prefix)) {
                    prefix++;
                }
                total++;
                if (ours.equals(expected)) {
                    same++;
                } else {
                    report.append("\n  '").append(prompt).append("': first difference at char ").append(prefix)
                            .append(" of ").append(expected.length());
                }
            }
        }
        System.out.printf("%s: %d of %d greedy completions identical to llama.cpp%s%n", name, same, total, report);
        // Exact agreement is the goal; today 5 of 7 (each diverging late, after 60+ characters) on
        // both files. Guard against regressions.
        assertThat(same).as(name + report).isGreaterThanOrEqualTo(5);
    }
}
