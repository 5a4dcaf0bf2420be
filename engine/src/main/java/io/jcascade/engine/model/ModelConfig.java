package io.jcascade.engine.model;

import io.jcascade.engine.UnsupportedModelException;
import io.jcascade.gguf.GgufFile;
import io.jcascade.gguf.GgufFormatException;
import io.jcascade.gguf.GgufValue;
import java.util.List;

/**
 * The hyper-parameters of a decoder-only transformer, read from GGUF metadata
 * ({@code <arch>.block_count}, {@code <arch>.attention.head_count}, ...).
 *
 * <pre>{@code
 * ModelConfig c = ModelConfig.from(gguf);
 * System.out.println(c.layers() + " layers, " + c.heads() + " heads of " + c.headDim());
 * }</pre>
 *
 * @param architecture {@code general.architecture}
 * @param dim embedding width
 * @param layers number of transformer blocks
 * @param heads query heads
 * @param kvHeads key/value heads (grouped-query attention when fewer than heads)
 * @param headDim width of one head
 * @param ffnDim hidden width of the feed-forward network
 * @param vocabSize number of tokens
 * @param contextLength trained context length
 * @param rmsEps RMSNorm epsilon
 * @param ropeBase RoPE frequency base
 * @param ropeDims how many dimensions of each head rotate
 * @param ropeNeox whether RoPE rotates halves (NeoX) rather than adjacent pairs
 * @param ropeFreqScale multiplier of every RoPE angle: {@code 1 / rope.scaling.factor} for linear
 *     scaling ({@code rope.scaling.type} absent or {@code linear}), 1 without scaling
 * @param ropeOriginalContext {@code rope.scaling.original_context_length}, else the context length:
 *     phi3's short rope factors hold up to here, its long ones beyond
 * @param ropeAttnFactor {@code rope.scaling.attn_factor}, else 1: llama.cpp multiplies the cosines
 *     and sines of every rope rotation by it (ggml's {@code mscale}), so rotated query and key
 *     dimensions grow by this factor and attention scores by its square; Phi-3 128k files carry
 *     LongRoPE's {@code sqrt(1 + ln(ctx / original) / ln(original))} (1.19 for 131072 / 4096)
 */
public record ModelConfig(String architecture, int dim, int layers, int heads, int kvHeads, int headDim, int ffnDim,
        int vocabSize, int contextLength, float rmsEps, float ropeBase, int ropeDims, boolean ropeNeox,
        float ropeFreqScale, int ropeOriginalContext, float ropeAttnFactor) {

    /**
     * Architectures this version runs: {@code llama} (Llama 1/2/3.x, Mistral, TinyLlama, ...) and
     * {@code phi3} (Phi-3, Phi-3.5 mini). See docs/MODELS.md.
     */
    public static final List<String> SUPPORTED_ARCHITECTURES = List.of("llama", "phi3");

    /** A config of an architecture without rope scaling, as earlier versions built it. */
    public ModelConfig(String architecture, int dim, int layers, int heads, int kvHeads, int headDim, int ffnDim,
            int vocabSize, int contextLength, float rmsEps, float ropeBase, int ropeDims, boolean ropeNeox) {
        this(architecture, dim, layers, heads, kvHeads, headDim, ffnDim, vocabSize, contextLength, rmsEps, ropeBase,
                ropeDims, ropeNeox, 1.0f, contextLength, 1.0f);
    }

    /** A config with frequency scaling and no rope magnitude scale ({@code ropeAttnFactor = 1}). */
    public ModelConfig(String architecture, int dim, int layers, int heads, int kvHeads, int headDim, int ffnDim,
            int vocabSize, int contextLength, float rmsEps, float ropeBase, int ropeDims, boolean ropeNeox,
            float ropeFreqScale, int ropeOriginalContext) {
        this(architecture, dim, layers, heads, kvHeads, headDim, ffnDim, vocabSize, contextLength, rmsEps, ropeBase,
                ropeDims, ropeNeox, ropeFreqScale, ropeOriginalContext, 1.0f);
    }

    /** Whether this is llama.cpp's {@code phi3} graph (fused tensors, NeoX rope, query scaled before attention). */
    public boolean isPhi3() {
        return architecture.equals("phi3");
    }

    public int kvDim() {
        return kvHeads * headDim;
    }

    /**
     * Reads the configuration of a supported architecture.
     *
     * @throws UnsupportedModelException for an architecture this version does not run, or inconsistent values
     * @throws GgufFormatException when a required key is missing or mistyped
     */
    public static ModelConfig from(GgufFile gguf) throws UnsupportedModelException, GgufFormatException {
        String arch = gguf.getString("general.architecture");
        if (!SUPPORTED_ARCHITECTURES.contains(arch)) {
            throw new UnsupportedModelException("unsupported model architecture \"" + arch + "\""
                    + (gguf.path() != null ? " in " + gguf.path() : "") + "; supported: "
                    + String.join(", ", SUPPORTED_ARCHITECTURES));
        }
        String p = arch + ".";
        int dim = positive(gguf, p + "embedding_length");
        int layers = positive(gguf, p + "block_count");
        int heads = positive(gguf, p + "attention.head_count");
        int kvHeads = gguf.getInt(p + "attention.head_count_kv", heads);
        int ffn = positive(gguf, p + "feed_forward_length");
        int ctx = positive(gguf, p + "context_length");
        if (dim % heads != 0) {
            throw new UnsupportedModelException("embedding_length " + dim + " is not a multiple of head_count " + heads);
        }
        int headDim = gguf.getInt(p + "attention.key_length", dim / heads);
        if (kvHeads <= 0 || heads % kvHeads != 0) {
            throw new UnsupportedModelException("head_count " + heads + " is not a multiple of head_count_kv " + kvHeads);
        }
        int vocab = gguf.get(p + "vocab_size").map(GgufValue::asInt)
                .orElseGet(() -> gguf.get("tokenizer.ggml.tokens").map(GgufValue::arrayLength).orElse(-1));
        if (vocab <= 0) {
            throw new UnsupportedModelException("the file has neither " + p + "vocab_size nor tokenizer.ggml.tokens");
        }
        float eps = gguf.getFloat(p + "attention.layer_norm_rms_epsilon", 1e-5f);
        float ropeBase = gguf.getFloat(p + "rope.freq_base", 10000f);
        int ropeDims = gguf.getInt(p + "rope.dimension_count", headDim);
        if (ropeDims <= 0 || ropeDims > headDim || ropeDims % 2 != 0) {
            throw new UnsupportedModelException("rope.dimension_count " + ropeDims + " must be even and at most the "
                    + "head width " + headDim);
        }
        if (arch.equals("phi3") && headDim * heads != dim) {
            throw new UnsupportedModelException("phi3 needs head width x head_count = embedding_length, got "
                    + headDim + " x " + heads + " != " + dim);
        }
        // llama.cpp: rope.scaling.type defaults to linear, factor 0 means none; "none" never scales.
        String scaling = gguf.get(p + "rope.scaling.type").map(GgufValue::asString).orElse("linear");
        float factor = gguf.contains(p + "rope.scaling.factor") ? gguf.getFloat(p + "rope.scaling.factor")
                : gguf.getFloat(p + "rope.scale_linear", 0f);
        float freqScale = switch (scaling) {
            case "none" -> 1.0f;
            case "linear" -> factor == 0f ? 1.0f : 1.0f / factor;
            // Phi-3 128k: per-pair factor tensors do the work (rope_factors_short/long), no global scale.
            case "longrope" -> {
                if (!arch.equals("phi3")) {
                    throw new UnsupportedModelException("rope.scaling.type longrope is supported for phi3 only");
                }
                yield 1.0f;
            }
            default -> throw new UnsupportedModelException("rope.scaling.type \"" + scaling + "\" is not supported"
                    + " (supported: none, linear; Llama 3.1 scaling through the rope_freqs tensor; phi3 rope factors)");
        };
        if (!(freqScale > 0f) || Float.isInfinite(freqScale)) {
            throw new UnsupportedModelException("rope.scaling.factor " + factor + " is not a positive number");
        }
        int original = gguf.getInt(p + "rope.scaling.original_context_length", ctx);
        // llama.cpp multiplies every rotated pair by this (ggml's mscale), at any context length and
        // with either of phi3's factor sets (its context parameter yarn_attn_factor, 1 by default,
        // times this key; YaRN's own log term only enters with yarn scaling, refused above).
        float attnFactor = gguf.getFloat(p + "rope.scaling.attn_factor", 1.0f);
        if (!(attnFactor > 0f) || Float.isInfinite(attnFactor)) {
            throw new UnsupportedModelException("rope.scaling.attn_factor " + attnFactor + " is not a positive number");
        }
        return new ModelConfig(arch, dim, layers, heads, kvHeads, headDim, ffn, vocab, ctx, eps, ropeBase, ropeDims,
                arch.equals("phi3"), freqScale, original, attnFactor);
    }

    private static int positive(GgufFile gguf, String key) throws GgufFormatException, UnsupportedModelException {
        int v = gguf.getInt(key);
        if (v <= 0) {
            throw new UnsupportedModelException("metadata " + key + " = " + v + ", expected a positive number");
        }
        return v;
    }
}
