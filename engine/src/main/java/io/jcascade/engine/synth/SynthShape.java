package io.jcascade.engine.synth;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The hyper-parameters and tensor layout of a synthetic model: the exact shapes of a real model
 * (or a tiny test variant of its architecture with the real vocabulary size), filled later with
 * random weights by {@link SyntheticModel}.
 *
 * <pre>{@code
 * SynthShape s = SynthShape.named("llama3-1b").orElseThrow();
 * System.out.println(s.dim() + " x " + s.layers() + ", vocab " + s.vocab());
 * }</pre>
 *
 * @param name the shape's name ({@code llama3-1b}, {@code phi3-tiny}, ...)
 * @param source the real model the numbers come from (its Hugging Face {@code config.json})
 * @param arch {@code general.architecture}: {@code llama} or {@code phi3}
 * @param dim embedding width
 * @param layers transformer blocks
 * @param heads query heads
 * @param kvHeads key/value heads
 * @param headDim width of one head
 * @param ffn feed-forward hidden width
 * @param vocab vocabulary size
 * @param contextLength {@code context_length}
 * @param ropeBase {@code rope.freq_base}
 * @param ropeDims {@code rope.dimension_count} (less than headDim: partial rotary)
 * @param rmsEps RMSNorm epsilon
 * @param tied no {@code output.weight}: the embedding table is the output head
 * @param fused phi3 layout: {@code attn_qkv} and {@code ffn_up} = gate and up rows
 * @param rope how positions are scaled: {@link RopeScaling#NONE}, {@link RopeScaling#LLAMA3}
 *     ({@code rope_freqs} tensor), {@link RopeScaling#LINEAR} or {@link RopeScaling#PHI3_LONGROPE}
 *     ({@code rope_factors_short/long} tensors)
 * @param ropeFactor the scaling factor ({@code rope_scaling.factor}), 1 for none
 * @param originalContext the context the model was pre-trained at before scaling
 * @param vocabFile name of the vocab file in llama.cpp's {@code models/} (and
 *     {@code shared/tokenizer-vectors/}) that holds this model's real tokenizer
 */
public record SynthShape(String name, String source, String arch, int dim, int layers, int heads, int kvHeads,
        int headDim, int ffn, int vocab, int contextLength, float ropeBase, int ropeDims, float rmsEps, boolean tied,
        boolean fused, RopeScaling rope, float ropeFactor, int originalContext, String vocabFile) {

    /** How a shape scales rope positions. */
    public enum RopeScaling {
        NONE, LINEAR, LLAMA3, PHI3_LONGROPE
    }

    private static final Map<String, SynthShape> SHAPES = new LinkedHashMap<>();

    private static void add(SynthShape s) {
        SHAPES.put(s.name(), s);
    }

    static {
        String bpe = "ggml-vocab-llama-bpe.gguf";
        String spm = "ggml-vocab-llama-spm.gguf";
        String phi3 = "ggml-vocab-phi-3.gguf";
        // Real shapes (numbers from each model's config.json).
        add(new SynthShape("llama3-1b", "meta-llama/Llama-3.2-1B", "llama", 2048, 16, 32, 8, 64, 8192, 128256,
                131072, 500000f, 64, 1e-5f, true, false, RopeScaling.LLAMA3, 32f, 8192, bpe));
        add(new SynthShape("llama3-8b", "meta-llama/Llama-3.1-8B", "llama", 4096, 32, 32, 8, 128, 14336, 128256,
                131072, 500000f, 128, 1e-5f, false, false, RopeScaling.LLAMA3, 8f, 8192, bpe));
        add(new SynthShape("phi3-mini", "microsoft/Phi-3-mini-4k-instruct", "phi3", 3072, 32, 32, 32, 96, 8192,
                32064, 4096, 10000f, 96, 1e-5f, false, true, RopeScaling.NONE, 1f, 4096, phi3));
        add(new SynthShape("tinyllama", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", "llama", 2048, 22, 32, 4, 64, 5632,
                32000, 2048, 10000f, 64, 1e-5f, false, false, RopeScaling.NONE, 1f, 2048, spm));
        add(new SynthShape("mistral-7b", "mistralai/Mistral-7B-v0.1", "llama", 4096, 32, 32, 8, 128, 14336, 32000,
                32768, 10000f, 128, 1e-5f, false, false, RopeScaling.NONE, 1f, 32768, spm));
        // Tiny variants: 2 layers, small width, the real vocabulary and tokenizer, for agreement tests.
        add(new SynthShape("llama3-tiny", "Llama-3.2-1B layout, tiny", "llama", 128, 2, 4, 2, 32, 256, 128256,
                131072, 500000f, 32, 1e-5f, true, false, RopeScaling.LLAMA3, 32f, 8192, bpe));
        add(new SynthShape("llama3-tiny-untied", "Llama-3.1-8B layout, tiny", "llama", 128, 2, 4, 2, 32, 256,
                128256, 131072, 500000f, 32, 1e-5f, false, false, RopeScaling.LLAMA3, 8f, 8192, bpe));
        add(new SynthShape("llama-linear-tiny", "Llama 2 layout with linear rope scaling x4, tiny", "llama", 128, 2,
                4, 4, 32, 256, 32000, 16384, 10000f, 32, 1e-5f, false, false, RopeScaling.LINEAR, 4f, 4096, spm));
        add(new SynthShape("mistral-tiny", "Mistral-7B-v0.1 layout, tiny", "llama", 128, 2, 8, 2, 16, 448, 32000,
                32768, 10000f, 16, 1e-5f, false, false, RopeScaling.NONE, 1f, 32768, spm));
        add(new SynthShape("phi3-tiny", "Phi-3-mini-4k layout, tiny", "phi3", 192, 2, 2, 2, 96, 256, 32064, 4096,
                10000f, 96, 1e-5f, false, true, RopeScaling.NONE, 1f, 4096, phi3));
        add(new SynthShape("phi3-tiny-partial", "Phi-3-mini-128k layout (short/long rope factors), partial rotary, "
                + "tiny", "phi3", 192, 2, 2, 2, 96, 256, 32064, 131072, 10000f, 32, 1e-5f, false, true,
                RopeScaling.PHI3_LONGROPE, 32f, 4096, phi3));
    }

    /** Every shape, in a stable order. */
    public static List<SynthShape> all() {
        return List.copyOf(SHAPES.values());
    }

    /** The shape called {@code name}, if there is one. */
    public static Optional<SynthShape> named(String name) {
        return Optional.ofNullable(SHAPES.get(name));
    }

    public int qDim() {
        return heads * headDim;
    }

    public int kvDim() {
        return kvHeads * headDim;
    }

    /** Parameters (weights) of the model, for sizes and progress. */
    public long parameterCount() {
        long perLayer = 2L * dim + (long) dim * (qDim() + 2L * kvDim()) + (long) qDim() * dim + 3L * dim * ffn;
        return (long) vocab * dim * (tied ? 1 : 2) + dim + layers * perLayer;
    }
}
