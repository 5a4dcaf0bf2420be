package io.jcascade.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.engine.model.Llama;
import io.jcascade.engine.model.ModelConfig;
import io.jcascade.engine.synth.SynthShape;
import io.jcascade.engine.synth.SyntheticModel;
import io.jcascade.gguf.GgmlType;
import io.jcascade.gguf.GgufFile;
import io.jcascade.kernels.cuda.CudaBackend;
import io.jcascade.kernels.cuda.CudaUnavailableException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two generations decoding at once on one CUDA backend with graphs on (as the server runs them):
 * a recorded step holds one thread's operations, so each generation gets the logits it gets alone,
 * to the bit. Skips where there is no CUDA driver or device.
 */
class CudaGraphThreadsTest {
    private static final int STEPS = 40;

    @TempDir
    Path dir;

    @BeforeEach
    void needsGpu() {
        CudaUnavailableException why = CudaBackend.unavailability();
        Assumptions.assumeTrue(why == null, () -> "skipped, no GPU here: " + why.getMessage());
    }

    @Test
    void interleavedGenerationsGetTheirOwnLogits() throws Exception {
        Path file = dir.resolve("llama3-tiny.gguf");
        SyntheticModel.of(SynthShape.named("llama3-tiny").orElseThrow()).seed(9).type(GgmlType.F32).write(file, b -> { });
        try (GgufFile gguf = GgufFile.open(file); CudaBackend gpu = CudaBackend.open(0, true)) {
            ModelConfig c = ModelConfig.from(gguf);
            Llama llama = Llama.load(gguf, c, gpu);
            int[][] tokens = {sequence(3, c.vocabSize()), sequence(7, c.vocabSize())};
            List<float[]> aloneA = decode(llama, tokens[0]);
            List<float[]> aloneB = decode(llama, tokens[1]);
            gpu.useGraphs(true);
            Assumptions.assumeTrue(gpu.graphs(), "this driver has no graph API");
            ExecutorService pool = Executors.newFixedThreadPool(2);
            try {
                Future<List<float[]>> a = pool.submit(() -> decode(llama, tokens[0]));
                Future<List<float[]>> b = pool.submit(() -> decode(llama, tokens[1]));
                List<float[]> gotA = a.get();
                List<float[]> gotB = b.get();
                for (int i = 0; i < STEPS; i++) {
                    assertThat(gotA.get(i)).as("generation A, step %d", i).containsExactly(aloneA.get(i));
                    assertThat(gotB.get(i)).as("generation B, step %d", i).containsExactly(aloneB.get(i));
                }
            } finally {
                pool.shutdownNow();
            }
        }
    }

    /** Teacher-forced decode, a token at a time; the logits after each. */
    private static List<float[]> decode(Llama llama, int[] tokens) {
        Llama.State s = llama.newState(STEPS, 1);
        float[] logits = new float[llama.config().vocabSize()];
        List<float[]> out = new ArrayList<>();
        for (int i = 0; i < STEPS; i++) {
            llama.forward(s, new int[] {tokens[i]}, 1, i, logits);
            out.add(logits.clone());
        }
        return out;
    }

    private static int[] sequence(int seed, int vocab) {
        int[] t = new int[STEPS];
        for (int i = 0; i < STEPS; i++) {
            t[i] = 3 + (int) (((i + 1L) * seed * 2654435761L) % (vocab - 3));
        }
        return t;
    }
}
