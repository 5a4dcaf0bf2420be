package io.jcascade.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.jcascade.engine.sampling.SamplingParams;
import io.jcascade.engine.synth.SynthShape;
import io.jcascade.engine.synth.SyntheticModel;
import io.jcascade.gguf.GgmlType;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link Batcher}: generations submitted from several threads decode together and get what they get alone. */
class BatcherTest {

    @TempDir
    static Path dir;

    private static Model quantizedModel() throws Exception {
        Path file = dir.resolve("llama3-tiny-q8_0.gguf");
        if (!file.toFile().exists()) {
            SyntheticModel.of(SynthShape.named("llama3-tiny").orElseThrow()).seed(21)
                    .encoder(CudaSyntheticAgreementTest.quantizer(GgmlType.Q8_0)).write(file, b -> { });
        }
        return Model.load(file, ModelOptions.defaults().withThreads(2).withBackend("cpu"));
    }

    private static int[] prompt(int i) {
        int[] p = new int[3 + i % 4];
        for (int j = 0; j < p.length; j++) {
            p[j] = 1000 + 97 * i + 13 * j;
        }
        return p;
    }

    @Test
    void generationsSubmittedTogetherDecodeTogetherAndGetWhatTheyGetAlone() throws Exception {
        try (Model model = quantizedModel(); Batcher batcher = model.batcher(3)) {
            List<GenerationParams> params = List.of(
                    GenerationParams.defaults().withMaxTokens(12).withSampling(SamplingParams.greedy()),
                    GenerationParams.defaults().withMaxTokens(20).withSampling(SamplingParams.defaults().toBuilder()
                            .seed(5).repetitionPenalty(1.2f).build()),
                    GenerationParams.defaults().withMaxTokens(7).withSampling(SamplingParams.greedy()));
            int n = 7; // more than the batch: some wait for a place
            List<CompletableFuture<GenerationResult>> together = new ArrayList<>();
            for (int i = 0; i < n; i++) { // queued while the worker processes the first prompt
                together.add(batcher.submit(prompt(i), params.get(i % 3), TokenListener.NONE, new CancelToken()));
            }
            for (int i = 0; i < n; i++) {
                GenerationResult alone = model.generate(prompt(i), params.get(i % 3), TokenListener.NONE,
                        new CancelToken());
                GenerationResult got = together.get(i).join();
                // Q8_0: the very same logits, so the same tokens, signals and text
                assertThat(got.tokens()).as("generation %d", i).isEqualTo(alone.tokens());
                assertThat(got.text()).isEqualTo(alone.text());
                assertThat(got.finishReason()).isEqualTo(alone.finishReason());
            }
            Batcher.Stats stats = batcher.stats();
            assertThat(stats.largestStep()).isEqualTo(3);
            assertThat(stats.tokens()).isGreaterThan(stats.steps()); // steps ran several tokens at once
        }
    }

    @Test
    void aCancelledOrFailingGenerationLeavesTheOthersAlone() throws Exception {
        try (Model model = quantizedModel(); Batcher batcher = model.batcher(4)) {
            GenerationParams p = GenerationParams.defaults().withMaxTokens(16).withSampling(SamplingParams.greedy());
            CancelToken cancel = new CancelToken();
            int[] seen = {0};
            CompletableFuture<GenerationResult> cancelled = batcher.submit(prompt(1), p, t -> {
                if (++seen[0] == 3) {
                    cancel.cancel();
                }
            }, cancel);
            CompletableFuture<GenerationResult> failing = batcher.submit(prompt(2), p, t -> {
                throw new IllegalStateException("the client went away");
            }, new CancelToken());
            CompletableFuture<GenerationResult> fine = batcher.submit(prompt(3), p, TokenListener.NONE,
                    new CancelToken());
            assertThat(cancelled.join().finishReason()).isEqualTo(FinishReason.CANCELLED);
            // as generate: cancelled in the third token's listener, the fourth token ends it
            CancelToken alone = new CancelToken();
            int[] seenAlone = {0};
            GenerationResult reference = model.generate(prompt(1), p, t -> {
                if (++seenAlone[0] == 3) {
                    alone.cancel();
                }
            }, alone);
            assertThat(reference.tokens()).hasSize(4);
            assertThat(cancelled.join().tokens()).isEqualTo(reference.tokens());
            assertThatThrownBy(failing::join).isInstanceOf(CompletionException.class)
                    .hasRootCauseMessage("the client went away");
            assertThat(fine.join().tokens()).isEqualTo(
                    model.generate(prompt(3), p, TokenListener.NONE, new CancelToken()).tokens());
            assertThatThrownBy(() -> batcher.submit(new int[0], p, TokenListener.NONE, new CancelToken()))
                    .hasMessageContaining("the prompt is empty");
        }
    }

    @Test
    void closingFailsWhatIsLeftAndRefusesMore() throws Exception {
        try (Model model = quantizedModel()) {
            Batcher batcher = model.batcher(2);
            GenerationParams p = GenerationParams.defaults().withMaxTokens(100_000).withSampling(SamplingParams.greedy());
            List<CompletableFuture<GenerationResult>> running = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                running.add(batcher.submit(prompt(i), p, TokenListener.NONE, new CancelToken()));
            }
            Thread.sleep(200);
            batcher.close();
            for (CompletableFuture<GenerationResult> f : running) {
                assertThatThrownBy(f::join).hasRootCauseInstanceOf(IllegalStateException.class)
                        .hasRootCauseMessage("the batcher was closed before the generation ended");
            }
            assertThatThrownBy(() -> batcher.submit(prompt(0), p, TokenListener.NONE, new CancelToken()))
                    .hasMessage("the batcher is closed");
        }
        // closing the model closes its batchers first
        Model model = quantizedModel();
        Batcher open = model.batcher(2);
        CompletableFuture<GenerationResult> running = open.submit(prompt(1), GenerationParams.defaults()
                .withMaxTokens(100_000).withSampling(SamplingParams.greedy()), TokenListener.NONE, new CancelToken());
        model.close();
        assertThatThrownBy(running::join).hasRootCauseInstanceOf(IllegalStateException.class);
        assertThatThrownBy(() -> open.submit(prompt(0), GenerationParams.defaults(), TokenListener.NONE,
                new CancelToken())).hasMessage("the batcher is closed");
    }
}
