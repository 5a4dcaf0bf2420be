package io.jcascade.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.engine.model.Llama;
import io.jcascade.engine.model.ModelConfig;
import io.jcascade.engine.synth.SynthShape;
import io.jcascade.engine.synth.SyntheticModel;
import io.jcascade.gguf.GgmlType;
import io.jcascade.gguf.GgufFile;
import io.jcascade.kernels.Backend;
import io.jcascade.kernels.cpu.CpuBackend;
import io.jcascade.kernels.cpu.PanamaKernels;
import io.jcascade.kernels.cuda.CudaBackend;
import io.jcascade.kernels.cuda.CudaUnavailableException;
import io.jcascade.kernels.quant.Quantizer;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * End to end on the GPU for the model families: synthetic Llama 3 (tied and untied head), Mistral
 * and Phi-3 (fused projections, partial rotary, long-rope factors) files in float and quantized
 * types give, on the CUDA backend, the greedy tokens and the logits the CPU backend gives.
 *
 * <p>The CPU runs greedy from a fixed prompt (as one batch, the prefill path) and records its
 * logits at every step; the GPU is then fed the same tokens, the prompt as one batch and each
 * generated token one at a time (the decode path), and must pick the same token at every step
 * whose top-2 logit gap exceeds the tolerance (the synthetic models are made decisive, so that is
 * every step in practice) with every logit within the tolerance of the CPU's. Both backends take
 * float activations there. Q8_0 and Q4_0 run a second time with 8-bit activations on both (the
 * default of each for one-token products), the prompt then fed a token at a time so that every
 * product takes that path. The products sum in another order on the GPU, so the logits agree to
 * float rounding, not bit for bit. Each case runs on the GPU twice, the second time with decode
 * steps as CUDA graphs ({@link CudaBackend#useGraphs}), which must give the same logits to the bit:
 * the same kernels run in the same order. Needs no data
 * beside the project (built-in vocabulary), so it runs on a GPU machine from the tree alone.
 * Skips where there is no CUDA driver or device.
 */
class CudaSyntheticAgreementTest {
    private static final int PROMPT = 24;
    private static final int GENERATED = 24;

    @TempDir
    Path dir;

    @BeforeEach
    void needsGpu() {
        CudaUnavailableException why = CudaBackend.unavailability();
        Assumptions.assumeTrue(why == null, () -> "skipped, no GPU here: " + why.getMessage());
    }

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (String shape : List.of("llama3-tiny", "llama3-tiny-untied", "mistral-tiny", "phi3-tiny",
                "phi3-tiny-partial")) {
            for (GgmlType type : List.of(GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0, GgmlType.Q4_0)) {
                out.add(Arguments.of(shape, type, false));
                if (type.isQuantized()) {
                    out.add(Arguments.of(shape, type, true));
                }
            }
        }
        return out.stream();
    }

    @ParameterizedTest(name = "{0} {1}, 8-bit activations {2}")
    @MethodSource("cases")
    void greedyTokensAndLogitsMatchTheCpu(String shapeName, GgmlType type, boolean int8) throws Exception {
        SynthShape shape = SynthShape.named(shapeName).orElseThrow();
        Path file = dir.resolve(shapeName + "-" + type + ".gguf");
        SyntheticModel m = SyntheticModel.of(shape).seed(5);
        (type.isQuantized() ? m.encoder(quantizer(type)) : m.type(type)).write(file, b -> { });

        int[] prompt = new int[PROMPT];
        for (int i = 0; i < PROMPT; i++) {
            prompt[i] = 3 + (int) ((i * 2654435761L) % (shape.vocab() - 3)); // spread over the vocabulary
        }
        try (GgufFile gguf = GgufFile.open(file);
             Backend cpu = new CpuBackend(new PanamaKernels(2, int8));
             CudaBackend gpu = CudaBackend.open(0, int8)) {
            ModelConfig c = ModelConfig.from(gguf);
            List<float[]> want = new ArrayList<>();
            int[] tokens = run(Llama.load(gguf, c, cpu), prompt, null, want, int8);
            List<float[]> got = new ArrayList<>();
            run(Llama.load(gguf, c, gpu), prompt, tokens, got, int8);
            gpu.useGraphs(true);
            if (gpu.graphs()) {
                List<float[]> graphed = new ArrayList<>();
                run(Llama.load(gguf, c, gpu), prompt, tokens, graphed, int8);
                for (int step = 0; step < GENERATED; step++) {
                    assertThat(graphed.get(step)).as("%s %s step %d with CUDA graphs", shapeName, type, step)
                            .containsExactly(got.get(step));
                }
                // every one-token step after the first replays the graph the first one captured
                long steps = (int8 ? PROMPT : 0) + GENERATED - 1;
                assertThat(gpu.graphLaunches()).as("replays, captures").containsExactly(steps - 1, 1L);
            }
            for (int step = 0; step < GENERATED; step++) {
                float[] w = want.get(step);
                float[] g = got.get(step);
                float scale = 0;
                for (float v : w) {
                    scale = Math.max(scale, Math.abs(v));
                }
                // Float sums in another order move a logit by about 1e-4 of the largest; where that
                // tips a rounding to half (the KV cache, the query, the attention weights) the later
                // steps move by up to 1e-3 of it (measured against the scalar kernels, which sum in
                // double). A wrong kernel moves logits by their own size.
                float tol = 2e-3f * Math.max(1f, scale);
                int worst = 0;
                for (int v = 0; v < w.length; v++) {
                    if (Math.abs(g[v] - w[v]) > Math.abs(g[worst] - w[worst])) {
                        worst = v;
                    }
                }
                assertThat(Math.abs(g[worst] - w[worst])).as("%s %s step %d: logit %d is %s on the GPU, %s on the CPU",
                        shapeName, type, step, worst, g[worst], w[worst]).isLessThanOrEqualTo(tol);
                int best = argmax(w);
                if (gap(w, best) > 2 * tol) {
                    assertThat(argmax(g)).as("%s %s greedy token at step %d", shapeName, type, step).isEqualTo(best);
                }
            }
        } finally {
            Files.deleteIfExists(file);
        }
    }

    /**
     * Runs the prompt as one batch (or a token at a time), then {@code GENERATED} single tokens:
     * the given ones, or (when {@code forced} is null) the greedy ones. Records the logits before
     * each generated token.
     */
    private static int[] run(Llama llama, int[] prompt, int[] forced, List<float[]> logitsPerStep,
            boolean tokenByToken) {
        Llama.State state = llama.newState(prompt.length + GENERATED, 64);
        float[] logits = new float[llama.config().vocabSize()];
        if (tokenByToken) {
            for (int i = 0; i < prompt.length; i++) {
                llama.forward(state, new int[] {prompt[i]}, 1, i, logits);
            }
        } else {
            llama.forward(state, prompt, prompt.length, 0, logits);
        }
        int[] tokens = new int[GENERATED];
        for (int i = 0; i < GENERATED; i++) {
            logitsPerStep.add(logits.clone());
            tokens[i] = forced != null ? forced[i] : argmax(logits);
            if (i + 1 < GENERATED) {
                llama.forward(state, new int[] {tokens[i]}, 1, prompt.length + i, logits);
            }
        }
        return tokens;
    }

    static SyntheticModel.RowEncoder quantizer(GgmlType type) {
        return new SyntheticModel.RowEncoder() {
            @Override
            public GgmlType type() {
                return type;
            }

            @Override
            public void encode(float[] row, ByteBuffer out) {
                byte[] bytes = new byte[Math.toIntExact(type.rowBytes(row.length))];
                Quantizer.quantizeRow(type, row, 0, row.length, bytes, 0);
                out.put(bytes);
            }
        };
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    /** The lead of {@code v[best]} over the runner-up. */
    private static float gap(float[] v, int best) {
        float second = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < v.length; i++) {
            if (i != best) {
                second = Math.max(second, v[i]);
            }
        }
        return v[best] - second;
    }
}
