package io.jcascade.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.engine.sampling.SamplingParams;
import io.jcascade.kernels.cuda.CudaBackend;
import io.jcascade.kernels.cuda.CudaUnavailableException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * End to end on the GPU: greedy generation with {@code --backend cuda} gives the same tokens as the
 * CPU backend on the committed models, with prompts run as one batch (prefill) and one token at a
 * time (decode), and entropies that agree. Skips where there is no CUDA driver or device.
 */
class CudaGreedyAgreementTest {

    @BeforeEach
    void needsGpu() {
        CudaUnavailableException why = CudaBackend.unavailability();
        Assumptions.assumeTrue(why == null, () -> "skipped, no GPU here: " + why.getMessage());
    }

    private static void assertSameGreedy(Path file, List<String> prompts, int maxTokens, int batchSize)
            throws Exception {
        GenerationParams params = GenerationParams.defaults().withMaxTokens(maxTokens)
                .withSampling(SamplingParams.greedy());
        try (Model cpu = Model.load(file, ModelOptions.defaults().withBackend("cpu").withThreads(2)
                        .withBatchSize(batchSize));
             Model gpu = Model.load(file, ModelOptions.defaults().withBackend("cuda").withBatchSize(batchSize))) {
            for (String prompt : prompts) {
                GenerationResult want = cpu.generate(prompt, params);
                GenerationResult got = gpu.generate(prompt, params);
                assertThat(got.text()).as("greedy text for %s (batch %d)", prompt, batchSize).isEqualTo(want.text());
                assertThat(got.tokens()).hasSameSizeAs(want.tokens());
                for (int i = 0; i < want.tokens().size(); i++) {
                    assertThat(got.tokens().get(i).id()).isEqualTo(want.tokens().get(i).id());
                    assertThat(got.tokens().get(i).entropy()).as("entropy of token %d for %s", i, prompt)
                            .isCloseTo(want.tokens().get(i).entropy(), org.assertj.core.data.Offset.offset(1e-3));
                }
            }
        }
    }

    @ParameterizedTest(name = "batch {0}")
    @ValueSource(ints = {1, 64})
    void storiesGreedyMatchesTheCpu(int batch) throws Exception {
        assertSameGreedy(SharedData.embeddedModel("stories260K.gguf"),
                List.of("Once upon a time", "hi", "The little dog ran to the park and saw a big red ball. He"), 120,
                batch);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"arith-small.gguf", "arith-large.gguf"})
    void arithGreedyMatchesTheCpu(String name) throws Exception {
        Path file = SharedData.embeddedModel(name);
        List<String> prompts = new ArrayList<>();
        Pattern p = Pattern.compile("\"prompt\":\\s*\"([^\"]*)\"");
        Path demo = file.resolveSibling("arith-demo.jsonl");
        for (String line : Files.readAllLines(demo)) {
            Matcher m = p.matcher(line);
            if (m.find()) {
                prompts.add(m.group(1));
            }
        }
        assertThat(prompts).isNotEmpty();
        assertSameGreedy(file, prompts, 8, 64);
    }

    @Test
    void theCliNameCudaLoadsTheGpu() throws Exception {
        try (Model gpu = Model.load(SharedData.embeddedModel("stories260K.gguf"),
                ModelOptions.defaults().withBackend("cuda"))) {
            assertThat(gpu.generate("hi", GenerationParams.defaults().withMaxTokens(4)
                    .withSampling(SamplingParams.greedy())).tokens()).isNotEmpty();
        }
    }
}
