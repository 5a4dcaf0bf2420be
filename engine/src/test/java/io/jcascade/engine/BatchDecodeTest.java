package io.jcascade.engine;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.jcascade.engine.model.Llama;
import io.jcascade.engine.model.ModelConfig;
import io.jcascade.engine.synth.SynthShape;
import io.jcascade.engine.synth.SyntheticModel;
import io.jcascade.gguf.GgmlType;
import io.jcascade.gguf.GgufFile;
import io.jcascade.kernels.Backend;
import io.jcascade.kernels.Backends;
import io.jcascade.kernels.cuda.CudaBackend;
import io.jcascade.kernels.cuda.CudaUnavailableException;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link Llama#decode}: several sequences stepping together give each the logits it gets alone
 * ({@link Llama#forwardOnBackend}, one token at a time), whatever their lengths: to the bit for
 * quantized weights, to float rounding for float ones.
 */
class BatchDecodeTest {

    @TempDir
    static Path dir;

    @ParameterizedTest(name = "{0} {1} on {2}")
    @CsvSource({"llama3-tiny, F32, cpu", "llama3-tiny, Q8_0, cpu", "llama3-tiny, Q4_0, cpu", "phi3-tiny, F16, cpu",
        "mistral-tiny, Q4_0, cpu",
        // the GPU: the few-token products (mmv_*) are the one-token lanes, so quantized weights give
        // the very same logits there too
        "llama3-tiny, F32, cuda", "llama3-tiny, Q8_0, cuda", "llama3-tiny, Q4_0, cuda", "phi3-tiny, F16, cuda",
        "mistral-tiny, Q4_0, cuda"})
    void sequencesDecodedTogetherGetTheLogitsTheyGetAlone(String shape, GgmlType type, String backend)
            throws Exception {
        if (backend.equals("cuda")) {
            CudaUnavailableException why = CudaBackend.unavailability();
            Assumptions.assumeTrue(why == null, () -> "skipped, no GPU here: " + why.getMessage());
        }
        Path file = dir.resolve(shape + "-" + type + ".gguf");
        SyntheticModel m = SyntheticModel.of(SynthShape.named(shape).orElseThrow()).seed(5);
        (type.isQuantized() ? m.encoder(CudaSyntheticAgreementTest.quantizer(type)) : m.type(type)).write(file, b -> { });
        try (GgufFile gguf = GgufFile.open(file); Backend cpu = Backends.create(backend, 2)) {
            ModelConfig c = ModelConfig.from(gguf);
            Llama llama = Llama.load(gguf, c, cpu);
            int vocab = c.vocabSize();
            int[][] prompts = {{1, 50, 60, 70, 80, 90, 100}, {1, 7}, {1, 300, 301, 302, 303}};
            int n = prompts.length;
            int steps = 12;
            // Alone: each prompt, then one token at a time.
            float[][][] alone = new float[n][steps][vocab];
            int[][] tokens = new int[n][steps];
            for (int i = 0; i < n; i++) {
                Llama.State s = llama.newState(64, 4);
                Backend.Tensor logits = llama.forwardOnBackend(s, prompts[i], prompts[i].length, 0);
                for (int t = 0; t < steps; t++) {
                    tokens[i][t] = (37 * i + 11 * t + 3) % vocab; // forced: both runs see the same tokens
                    logits = llama.forwardOnBackend(s, new int[] {tokens[i][t]}, 1, prompts[i].length + t);
                    cpu.read(logits, 0, alone[i][t], 0, vocab);
                }
            }
            // Together: the same prompts, then steps of all three (and of two, once the middle one stops).
            Llama.State[] states = new Llama.State[n];
            for (int i = 0; i < n; i++) {
                states[i] = llama.newState(64, 4);
                llama.forwardOnBackend(states[i], prompts[i], prompts[i].length, 0);
            }
            Llama.Batch batch = llama.newBatch(n);
            float[] got = new float[vocab];
            double worst = 0;
            for (int t = 0; t < steps; t++) {
                boolean two = t >= steps / 2;
                Llama.State[] active = two ? new Llama.State[] {states[0], states[2]} : states;
                int[] seq = two ? new int[] {0, 2} : new int[] {0, 1, 2};
                int[] next = new int[seq.length];
                int[] positions = new int[seq.length];
                for (int j = 0; j < seq.length; j++) {
                    next[j] = tokens[seq[j]][t];
                    positions[j] = prompts[seq[j]].length + t;
                }
                llama.decode(batch, active, next, positions, seq.length);
                for (int j = 0; j < seq.length; j++) {
                    cpu.read(active[j].logits(), 0, got, 0, vocab);
                    float[] want = alone[seq[j]][t];
                    float scale = 0;
                    for (float w : want) {
                        scale = Math.max(scale, Math.abs(w));
                    }
                    for (int v = 0; v < vocab; v++) {
                        worst = Math.max(worst, Math.abs(got[v] - want[v]) / scale);
                    }
                    assertThat(QuantizedPositionAgreementTest.argmax(got)).as("sequence %d step %d", seq[j], t)
                            .isEqualTo(QuantizedPositionAgreementTest.argmax(want));
                }
            }
            // Quantized weights: 8-bit activations and integer block sums whatever the batch, so
            // the very same floats. Float weights sum in another order over several tokens.
            assertThat(worst).as("largest difference, relative to the largest logit")
                    .isLessThanOrEqualTo(type.isQuantized() ? 0 : 2e-3);
            assertThat(cpu.name()).isEqualTo(backend);
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"llama3-tiny"})
    void badStepsAreNamed(String shape) throws Exception {
        Path file = dir.resolve(shape + "-bad.gguf");
        SyntheticModel.of(SynthShape.named(shape).orElseThrow()).seed(5).type(GgmlType.F32).write(file, b -> { });
        try (GgufFile gguf = GgufFile.open(file); Backend cpu = Backends.create("cpu", 1)) {
            Llama llama = Llama.load(gguf, ModelConfig.from(gguf), cpu);
            Llama.State a = llama.newState(8, 1);
            Llama.Batch batch = llama.newBatch(2);
            assertThatThrownBy(() -> llama.decode(batch, new Llama.State[] {a, a}, new int[] {1, 2}, new int[] {0, 1}, 2))
                    .hasMessageContaining("share one state");
            assertThatThrownBy(() -> llama.decode(batch, new Llama.State[] {a}, new int[] {1}, new int[] {8}, 1))
                    .hasMessageContaining("position 8 does not fit its KV cache of 8");
            assertThatThrownBy(() -> llama.decode(batch, new Llama.State[] {a, a, a}, new int[3], new int[3], 3))
                    .hasMessageContaining("3 sequences for a batch of 2");
        }
    }
}
