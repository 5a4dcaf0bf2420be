package io.jcascade.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.jcascade.engine.sampling.SamplingParams;
import io.jcascade.gguf.GgufFile;
import io.jcascade.gguf.GgufValue;
import io.jcascade.gguf.GgufWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/** The embedding API's promises: thread safety, cancellation, stop strings, clear errors. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ModelApiTest {
    private static final List<String> PROMPTS = List.of("Once upon a time", "The little dog", "Lily wanted to",
            "One day, a big", "The sun", "Tom had a");
    private Model model;

    @BeforeAll
    void open() throws Exception {
        model = Model.load(SharedData.embeddedModel("stories260K.gguf"), ModelOptions.defaults().withThreads(2));
    }

    @AfterAll
    void close() {
        if (model != null) {
            model.close();
        }
    }

    private static GenerationParams greedy(int maxTokens) {
        return GenerationParams.defaults().withMaxTokens(maxTokens).withSampling(SamplingParams.greedy());
    }

    @Test
    void concurrentGenerationsOnOneModelEqualSequentialOnes() throws Exception {
        List<String> sequential = new ArrayList<>();
        for (String p : PROMPTS) {
            sequential.add(model.generate(p, greedy(48)).text());
        }
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<String>> futures = new ArrayList<>();
            for (int round = 0; round < 2; round++) {
                for (String p : PROMPTS) {
                    futures.add(pool.submit(() -> model.generate(p, greedy(48)).text()));
                }
            }
            for (int i = 0; i < futures.size(); i++) {
                assertThat(futures.get(i).get()).isEqualTo(sequential.get(i % PROMPTS.size()));
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void sampledGenerationRepeatsForASeedAndVariesAcrossSeeds() {
        GenerationParams p = GenerationParams.defaults().withMaxTokens(40);
        String a = model.generate("Once upon a time", p.withSampling(new SamplingParams(1.0f, 0, 1f, 0f, 1f, 64, 7)))
                .text();
        String b = model.generate("Once upon a time", p.withSampling(new SamplingParams(1.0f, 0, 1f, 0f, 1f, 64, 7)))
                .text();
        assertThat(a).isEqualTo(b);
        long distinct = java.util.stream.LongStream.range(0, 6)
                .mapToObj(seed -> model.generate("Once upon a time",
                        p.withSampling(new SamplingParams(1.0f, 0, 1f, 0f, 1f, 64, seed))).text())
                .distinct().count();
        assertThat(distinct).isGreaterThan(1);
    }

    @Test
    void cancellingFromTheListenerStopsAfterThatToken() {
        CancelToken cancel = new CancelToken();
        List<GeneratedToken> seen = new ArrayList<>();
        GenerationResult r = model.generate("Once upon a time", greedy(100), t -> {
            seen.add(t);
            if (seen.size() == 5) {
                cancel.cancel();
            }
        }, cancel);
        assertThat(r.finishReason()).isEqualTo(FinishReason.CANCELLED);
        assertThat(r.tokens()).hasSize(6);
        assertThat(seen).hasSize(6);
    }

    @Test
    void stopStringsCutTheTextAndAreNeverStreamed() {
        String full = model.generate("Once upon a time", greedy(64)).text();
        String stop = full.substring(20, 26);
        int expectedEnd = full.indexOf(stop);
        StringBuilder streamed = new StringBuilder();
        GenerationResult r = model.generate("Once upon a time", greedy(64).withStop(List.of(stop)),
                t -> streamed.append(t.text()));
        assertThat(r.finishReason()).isEqualTo(FinishReason.STOP_STRING);
        assertThat(r.text()).isEqualTo(full.substring(0, expectedEnd));
        assertThat(streamed.toString()).isEqualTo(r.text());
    }

    @Test
    void maxTokensAndTheEndOfSequenceEndGeneration() {
        GenerationResult r = model.generate("Once upon a time", greedy(7));
        assertThat(r.tokens()).hasSize(7);
        assertThat(r.finishReason()).isEqualTo(FinishReason.MAX_TOKENS);
        assertThat(model.generate("Once upon a time", greedy(0)).tokens()).isEmpty();
    }

    @Test
    void entropyIsThatOfTheFullDistributionWhateverTheSampling() {
        // Greedy and top-k=1 at a high temperature pick the same tokens; their entropies must agree.
        GenerationResult g = model.generate("The sun", greedy(20));
        GenerationResult k = model.generate("The sun", GenerationParams.defaults().withMaxTokens(20)
                .withSampling(new SamplingParams(5f, 1, 1f, 0f, 1f, 64, 1)));
        assertThat(k.text()).isEqualTo(g.text());
        for (int i = 0; i < g.tokens().size(); i++) {
            assertThat(k.tokens().get(i).entropy()).isEqualTo(g.tokens().get(i).entropy());
            assertThat(g.tokens().get(i).probability()).isEqualTo(g.tokens().get(i).topProbability());
        }
    }

    @Test
    void candidatesSelectedOnTheBackendGenerateWhatTheFullLogitsGenerate() {
        // top-k of all but one token runs through Backend.selectTokens; top-k of the whole
        // vocabulary reads the logits back. min-p 0.05 never keeps the worst token, so both draw
        // from the same survivors: the same text and signals, seed for seed.
        int vocab = model.config().vocabSize();
        for (long seed = 1; seed <= 3; seed++) {
            SamplingParams selected = new SamplingParams(0.9f, vocab - 1, 0.95f, 0.05f, 1.15f, 32, seed);
            SamplingParams full = selected.toBuilder().topK(vocab).build();
            GenerationResult a = model.generate("Lily wanted to", GenerationParams.defaults().withMaxTokens(40)
                    .withSampling(selected));
            GenerationResult b = model.generate("Lily wanted to", GenerationParams.defaults().withMaxTokens(40)
                    .withSampling(full));
            assertThat(a.text()).isEqualTo(b.text());
            assertThat(a.tokens()).isEqualTo(b.tokens());
        }
    }

    @Test
    void promptsGeneratedTogetherGiveWhatEachGivesAlone() {
        // stories260K is F32, so the batched products may round differently; greedy tokens of
        // a 260K model are far apart, and sampled ones draw from a seeded sampler per sequence.
        for (SamplingParams sampling : List.of(SamplingParams.greedy(), new SamplingParams(0.9f, 40, 0.95f, 0.05f,
                1.1f, 64, 4))) {
            GenerationParams p = GenerationParams.defaults().withMaxTokens(30).withSampling(sampling);
            List<String> prompts = List.of("Once upon a time", "The little dog", "Lily", "One day, a big red ball");
            List<GenerationResult> together = model.generateAll(prompts, p.withStop(List.of("ball")), 3);
            for (int i = 0; i < prompts.size(); i++) {
                GenerationResult alone = model.generate(prompts.get(i), p.withStop(List.of("ball")));
                assertThat(together.get(i).text()).as("%s: %s", sampling, prompts.get(i)).isEqualTo(alone.text());
                assertThat(together.get(i).finishReason()).isEqualTo(alone.finishReason());
                assertThat(together.get(i).tokens()).hasSameSizeAs(alone.tokens());
                for (int t = 0; t < alone.tokens().size(); t++) {
                    assertThat(together.get(i).tokens().get(t).entropy())
                            .isCloseTo(alone.tokens().get(t).entropy(), org.assertj.core.data.Offset.offset(
                                    1e-6 + 0.01 * alone.tokens().get(t).entropy()));
                }
            }
        }
        assertThat(model.generateAll(List.of("The sun"), greedy(0), 2).get(0).tokens()).isEmpty();
        assertThat(model.generateAll(List.of(), greedy(5), 2)).isEmpty();
    }

    @Test
    void aPromptPastTheContextNamesBothSizes() throws Exception {
        try (Model small = Model.load(SharedData.embeddedModel("stories260K.gguf"),
                ModelOptions.defaults().withThreads(1).withContextLength(16))) {
            assertThatThrownBy(() -> small.generate("Once upon a time there was a little girl named Lily who",
                    greedy(4)))
                    .isInstanceOf(ContextOverflowException.class)
                    .hasMessageContaining("but the context holds 16");
            GenerationResult r = small.generate("Once upon a time", greedy(100));
            assertThat(r.finishReason()).isEqualTo(FinishReason.CONTEXT_FULL);
            assertThat(r.promptTokens() + r.tokens().size()).isEqualTo(16 + 1);
        }
    }

    @Test
    void anUnknownArchitectureIsNamedWithTheSupportedOnes(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("gpt2.gguf");
        try (GgufFile src = GgufFile.open(SharedData.embeddedModel("stories260K.gguf"))) {
            GgufWriter w = new GgufWriter();
            src.metadata().forEach((k, v) -> w.put(k, k.equals("general.architecture") ? GgufValue.ofString("gpt2") : v));
            src.tensors().forEach(w::addTensor);
            w.write(out);
        }
        assertThatThrownBy(() -> Model.load(out)).isInstanceOf(UnsupportedModelException.class)
                .hasMessageContaining("\"gpt2\"").hasMessageContaining("supported: llama");
    }

    @Test
    void aMissingTensorIsNamed(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("missing.gguf");
        try (GgufFile src = GgufFile.open(SharedData.embeddedModel("stories260K.gguf"))) {
            GgufWriter w = new GgufWriter();
            w.putAll(src.metadata());
            src.tensors().stream().filter(t -> !t.name().equals("blk.3.ffn_up.weight")).forEach(w::addTensor);
            w.write(out);
        }
        assertThatThrownBy(() -> Model.load(out)).isInstanceOf(UnsupportedModelException.class)
                .hasMessageContaining("blk.3.ffn_up.weight");
    }
}
