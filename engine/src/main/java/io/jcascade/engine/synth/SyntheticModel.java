package io.jcascade.engine.synth;

import io.jcascade.gguf.GgmlType;
import io.jcascade.gguf.GgufFile;
import io.jcascade.gguf.GgufValue;
import io.jcascade.gguf.GgufWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SplittableRandom;
import java.util.function.LongConsumer;
import java.util.stream.IntStream;

/**
 * Writes a GGUF model with random weights and the exact tensor names, shapes and metadata of a
 * {@link SynthShape}, that both jcascade and llama.cpp load: for agreement tests on real model
 * families and for benchmarks at real sizes without downloading weights.
 *
 * <pre>{@code
 * SyntheticModel.of(SynthShape.named("phi3-tiny").orElseThrow())
 *         .type(GgmlType.F16)
 *         .seed(7)
 *         .vocab(Path.of("shared/tokenizer-vectors/ggml-vocab-phi-3.gguf"))
 *         .write(Path.of("phi3-tiny-f16.gguf"), bytes -> {});
 * }</pre>
 *
 * <p><b>Weights.</b> Every row is drawn from its own generator seeded by (seed, tensor, row), so a
 * file is the same for a seed whatever the type, and tensors stream through
 * {@link GgufWriter.DataSource} a row at a time: an 8B F16 file (16 GB) never sits in memory.
 * Matrices are uniform with standard deviation {@code 1/sqrt(fan-in)} (activations stay of order
 * one through the layers), norm weights are {@code 1 ± 0.1}, and the output head (or the tied
 * embedding table) has standard deviation {@code 16/sqrt(dim)}, so logits spread with a standard
 * deviation near 16: greedy decoding is decisive, with clear gaps between the top logits, which
 * agreement tests need. 1-D tensors (norms, rope factors) are F32 as llama.cpp writes them.
 *
 * <p><b>Tokenizer.</b> With {@link #vocab(Path)} every {@code tokenizer.*} key of that GGUF (a
 * llama.cpp vocab file or any model with the same tokenizer) is copied, so both engines tokenize
 * with the real tokenizer; its size must equal the shape's. Without it the file gets a minimal
 * built-in SentencePiece vocabulary of the shape's size: {@code <unk> <s> </s>}, the 256 byte
 * tokens {@code <0x00>..<0xFF>} and filler pieces — every text encodes (as bytes), nothing
 * linguistic.
 *
 * <p><b>Types.</b> {@link #type} takes F32, F16 and BF16. Quantized output plugs in through
 * {@link RowEncoder}: a quantizer that encodes one float row into its block bytes is all
 * {@code write} needs ({@link #encoder(RowEncoder)}).
 */
public final class SyntheticModel {

    /**
     * Encodes one row of floats into the bytes of a tensor type (a quantizer for quantized types).
     * Rows are encoded on several threads at once, so an encoder keeps no state between calls.
     */
    public interface RowEncoder {
        GgmlType type();

        /** Appends the encoding of {@code row} to {@code out} (which has room for one row). */
        void encode(float[] row, ByteBuffer out);
    }

    private final SynthShape shape;
    private RowEncoder encoder = plain(GgmlType.F32);
    private long seed = 42;
    private Path vocab;

    private SyntheticModel(SynthShape shape) {
        this.shape = Objects.requireNonNull(shape);
    }

    /** A generator for {@code shape}, F32, seed 42, built-in vocabulary. */
    public static SyntheticModel of(SynthShape shape) {
        return new SyntheticModel(shape);
    }

    /** F32, F16 or BF16 matrices. */
    public SyntheticModel type(GgmlType type) {
        return encoder(plain(type));
    }

    /** Any row encoder, e.g. a quantizer. */
    public SyntheticModel encoder(RowEncoder encoder) {
        this.encoder = Objects.requireNonNull(encoder);
        return this;
    }

    public SyntheticModel seed(long seed) {
        this.seed = seed;
        return this;
    }

    /** A GGUF whose {@code tokenizer.*} metadata to copy, or null for the built-in vocabulary. */
    public SyntheticModel vocab(Path vocabFile) {
        this.vocab = vocabFile;
        return this;
    }

    /** The encoder of {@code type}: F32, F16 or BF16. */
    public static RowEncoder plain(GgmlType type) {
        return switch (type) {
            case F32 -> new Plain(type, (v, out) -> out.putFloat(v));
            case F16 -> new Plain(type, (v, out) -> out.putShort(Float.floatToFloat16(v)));
            case BF16 -> new Plain(type, (v, out) -> {
                int bits = Float.floatToRawIntBits(v);
                out.putShort((short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16)); // round to nearest even
            });
            default -> throw new IllegalArgumentException("synthetic models are F32, F16 or BF16 for now, not "
                    + type + " (quantized types come with the quantizer)");
        };
    }

    private interface ElementWriter {
        void put(float v, ByteBuffer out);
    }

    private record Plain(GgmlType type, ElementWriter element) implements RowEncoder {
        @Override
        public void encode(float[] row, ByteBuffer out) {
            for (float v : row) {
                element.put(v, out);
            }
        }
    }

    /** The writer with all metadata and tensors added (data not yet produced). */
    public GgufWriter writer(LongConsumer bytesWritten) throws IOException {
        SynthShape s = shape;
        GgufWriter w = new GgufWriter();
        String a = s.arch();
        w.put("general.architecture", GgufValue.ofString(a));
        w.put("general.name", GgufValue.ofString("synthetic " + s.name()));
        w.put("general.file_type", GgufValue.ofUInt32(fileType(encoder.type())));
        w.put(a + ".context_length", GgufValue.ofUInt32(s.contextLength()));
        w.put(a + ".embedding_length", GgufValue.ofUInt32(s.dim()));
        w.put(a + ".block_count", GgufValue.ofUInt32(s.layers()));
        w.put(a + ".feed_forward_length", GgufValue.ofUInt32(s.ffn()));
        w.put(a + ".attention.head_count", GgufValue.ofUInt32(s.heads()));
        w.put(a + ".attention.head_count_kv", GgufValue.ofUInt32(s.kvHeads()));
        if (s.headDim() * s.heads() != s.dim()) {
            w.put(a + ".attention.key_length", GgufValue.ofUInt32(s.headDim()));
            w.put(a + ".attention.value_length", GgufValue.ofUInt32(s.headDim()));
        }
        w.put(a + ".attention.layer_norm_rms_epsilon", GgufValue.ofFloat32(s.rmsEps()));
        w.put(a + ".rope.freq_base", GgufValue.ofFloat32(s.ropeBase()));
        w.put(a + ".rope.dimension_count", GgufValue.ofUInt32(s.ropeDims()));
        w.put(a + ".vocab_size", GgufValue.ofUInt32(s.vocab()));
        if (a.equals("phi3")) {
            // Phi-3 mini's sliding_window (llama.cpp build 4916 refuses phi3 files without the key).
            w.put(a + ".attention.sliding_window", GgufValue.ofUInt32(2047));
        }
        switch (s.rope()) {
            case LINEAR -> {
                w.put(a + ".rope.scaling.type", GgufValue.ofString("linear"));
                w.put(a + ".rope.scaling.factor", GgufValue.ofFloat32(s.ropeFactor()));
            }
            case PHI3_LONGROPE -> {
                w.put(a + ".rope.scaling.original_context_length", GgufValue.ofUInt32(s.originalContext()));
                w.put(a + ".rope.scaling.attn_factor", GgufValue.ofFloat32(longRopeAttnFactor(s)));
            }
            case NONE -> {
                if (a.equals("phi3")) {
                    w.put(a + ".rope.scaling.original_context_length", GgufValue.ofUInt32(s.originalContext()));
                }
            }
            case LLAMA3 -> { }
        }
        putTokenizer(w);

        // Tensors, in llama.cpp's order: embedding, then the output norm and head, rope factors, blocks.
        int t = 0;
        float outStd = 16f / (float) Math.sqrt(s.dim());
        matrix(w, t++, "token_embd.weight", s.dim(), s.vocab(), s.tied() ? outStd : 1f, bytesWritten);
        vector(w, t++, "output_norm.weight", norm(s.dim(), t), bytesWritten);
        if (!s.tied()) {
            matrix(w, t++, "output.weight", s.dim(), s.vocab(), outStd, bytesWritten);
        }
        if (s.rope() == SynthShape.RopeScaling.LLAMA3) {
            vector(w, t++, "rope_freqs.weight", llama3RopeFactors(s), bytesWritten);
        } else if (s.rope() == SynthShape.RopeScaling.PHI3_LONGROPE) {
            vector(w, t++, "rope_factors_long.weight", longRopeFactors(s.ropeDims() / 2, s.ropeFactor(), true),
                    bytesWritten);
            vector(w, t++, "rope_factors_short.weight", longRopeFactors(s.ropeDims() / 2, s.ropeFactor(), false),
                    bytesWritten);
        }
        float inStd = 1f / (float) Math.sqrt(s.dim());
        for (int l = 0; l < s.layers(); l++) {
            String b = "blk." + l + ".";
            vector(w, t++, b + "attn_norm.weight", norm(s.dim(), t), bytesWritten);
            if (s.fused()) {
                matrix(w, t++, b + "attn_qkv.weight", s.dim(), s.qDim() + 2 * s.kvDim(), inStd, bytesWritten);
            } else {
                matrix(w, t++, b + "attn_q.weight", s.dim(), s.qDim(), inStd, bytesWritten);
                matrix(w, t++, b + "attn_k.weight", s.dim(), s.kvDim(), inStd, bytesWritten);
                matrix(w, t++, b + "attn_v.weight", s.dim(), s.kvDim(), inStd, bytesWritten);
            }
            matrix(w, t++, b + "attn_output.weight", s.qDim(), s.dim(), 1f / (float) Math.sqrt(s.qDim()),
                    bytesWritten);
            vector(w, t++, b + "ffn_norm.weight", norm(s.dim(), t), bytesWritten);
            if (s.fused()) {
                matrix(w, t++, b + "ffn_up.weight", s.dim(), 2 * s.ffn(), inStd, bytesWritten);
            } else {
                matrix(w, t++, b + "ffn_gate.weight", s.dim(), s.ffn(), inStd, bytesWritten);
                matrix(w, t++, b + "ffn_up.weight", s.dim(), s.ffn(), inStd, bytesWritten);
            }
            matrix(w, t++, b + "ffn_down.weight", s.ffn(), s.dim(), 1f / (float) Math.sqrt(s.ffn()), bytesWritten);
        }
        return w;
    }

    /** Writes the model to {@code out}; {@code bytesWritten} hears of the tensor bytes as they go. */
    public void write(Path out, LongConsumer bytesWritten) throws IOException {
        writer(bytesWritten).write(out);
    }

    private static long fileType(GgmlType type) {
        return switch (type) {
            case F32 -> 0;
            case F16 -> 1;
            case Q4_0 -> 2;
            case Q8_0 -> 7;
            case BF16 -> 32;
            default -> 0; // llama.cpp only reports it; tensors carry their own types
        };
    }

    private void putTokenizer(GgufWriter w) throws IOException {
        if (vocab == null) {
            builtInVocabulary(shape.vocab()).forEach(w::put);
            return;
        }
        try (GgufFile v = GgufFile.open(vocab)) {
            int n = v.get("tokenizer.ggml.tokens").map(GgufValue::arrayLength).orElse(-1);
            if (n != shape.vocab()) {
                throw new IllegalArgumentException(vocab + " has " + n + " tokens, the shape " + shape.name()
                        + " needs " + shape.vocab());
            }
            for (Map.Entry<String, GgufValue> e : v.metadata().entrySet()) {
                if (e.getKey().startsWith("tokenizer.")) {
                    w.put(e.getKey(), e.getValue());
                }
            }
        }
    }

    /**
     * A minimal SentencePiece ({@code llama}) vocabulary of {@code size} tokens that llama.cpp
     * accepts: unknown, BOS, EOS, the 256 byte tokens, then filler pieces {@code ▁w<i>}.
     */
    public static Map<String, GgufValue> builtInVocabulary(int size) {
        if (size < 259 + 1) {
            throw new IllegalArgumentException("a vocabulary needs at least 260 tokens, not " + size);
        }
        String[] tokens = new String[size];
        float[] scores = new float[size];
        int[] types = new int[size];
        tokens[0] = "<unk>";
        types[0] = 2;
        tokens[1] = "<s>";
        types[1] = 3;
        tokens[2] = "</s>";
        types[2] = 3;
        for (int i = 0; i < 256; i++) {
            tokens[3 + i] = String.format("<0x%02X>", i);
            types[3 + i] = 6;
        }
        for (int i = 259; i < size; i++) {
            tokens[i] = "\u2581w" + (i - 259);
            scores[i] = -(i - 259);
            types[i] = 1;
        }
        Map<String, GgufValue> m = new java.util.LinkedHashMap<>();
        m.put("tokenizer.ggml.model", GgufValue.ofString("llama"));
        m.put("tokenizer.ggml.tokens", GgufValue.ofStringArray(tokens));
        m.put("tokenizer.ggml.scores", GgufValue.ofFloat32Array(scores));
        m.put("tokenizer.ggml.token_type", GgufValue.ofInt32Array(types));
        m.put("tokenizer.ggml.bos_token_id", GgufValue.ofUInt32(1));
        m.put("tokenizer.ggml.eos_token_id", GgufValue.ofUInt32(2));
        m.put("tokenizer.ggml.unknown_token_id", GgufValue.ofUInt32(0));
        m.put("tokenizer.ggml.add_bos_token", GgufValue.ofBool(true));
        return m;
    }

    /** Llama 3.1 rope factors as llama.cpp's converter computes them from rope_scaling (low 1, high 4). */
    static float[] llama3RopeFactors(SynthShape s) {
        int n = s.ropeDims() / 2;
        float[] f = new float[n];
        double factor = s.ropeFactor();
        double lowFreqWavelen = s.originalContext() / 1.0;
        double highFreqWavelen = s.originalContext() / 4.0;
        for (int i = 0; i < n; i++) {
            double freq = 1.0 / Math.pow(s.ropeBase(), (2.0 * i) / s.ropeDims());
            double wavelen = 2 * Math.PI / freq;
            if (wavelen < highFreqWavelen) {
                f[i] = 1f;
            } else if (wavelen > lowFreqWavelen) {
                f[i] = (float) factor;
            } else {
                double smooth = (s.originalContext() / wavelen - 1.0) / (4.0 - 1.0);
                f[i] = (float) (1 / ((1 - smooth) / factor + smooth));
            }
        }
        return f;
    }

    /**
     * LongRoPE's magnitude scale as llama.cpp's converter writes it for Phi-3 128k
     * ({@code rope.scaling.attn_factor}): {@code sqrt(1 + ln(scale) / ln(original))} with
     * {@code scale = context / original}; 1.1902 for 131072 / 4096.
     */
    static float longRopeAttnFactor(SynthShape s) {
        double scale = (double) s.contextLength() / s.originalContext();
        return scale > 1 ? (float) Math.sqrt(1 + Math.log(scale) / Math.log(s.originalContext())) : 1f;
    }

    /** Phi-3-style LongRoPE factors: short ones near 1, long ones rising to about the factor. */
    static float[] longRopeFactors(int n, float factor, boolean longFactors) {
        float[] f = new float[n];
        for (int i = 0; i < n; i++) {
            double x = (double) i / Math.max(1, n - 1);
            f[i] = longFactors ? (float) (1 + (factor - 1) * x * x) : (float) (1 + 0.5 * x * x * x);
        }
        return f;
    }

    private float[] norm(int n, int tensorIndex) {
        SplittableRandom r = new SplittableRandom(mix(seed, tensorIndex, -1));
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (1 + 0.1 * (2 * r.nextDouble() - 1));
        }
        return v;
    }

    private static void vector(GgufWriter w, int index, String name, float[] values, LongConsumer progress) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            b.putFloat(v);
        }
        w.addTensor(name, GgmlType.F32, new long[] {values.length}, b.array());
    }

    /** A {@code rows x cols} matrix (GGUF shape [cols, rows]) streamed a chunk of rows at a time. */
    private void matrix(GgufWriter w, int index, String name, int cols, int rows, float std, LongConsumer progress) {
        RowEncoder enc = encoder;
        long rowBytes = enc.type().rowBytes(cols);
        float half = std * (float) Math.sqrt(3); // uniform on [-half, half] has this standard deviation
        long tensorSeed = mix(seed, index, 0);
        w.addTensor(name, enc.type(), new long[] {cols, rows}, (WritableByteChannel out) -> {
            int rowsPerChunk = (int) Math.max(1, Math.min(rows, (8 << 20) / rowBytes));
            ByteBuffer buf = ByteBuffer.allocate((int) (rowsPerChunk * rowBytes)).order(ByteOrder.LITTLE_ENDIAN);
            for (int r0 = 0; r0 < rows; r0 += rowsPerChunk) {
                int first = r0;
                int n = Math.min(rowsPerChunk, rows - r0);
                buf.clear();
                // Each row has its own seed, so rows are made on all cores and the bytes do not
                // depend on how many there are.
                IntStream.range(first, first + n).parallel().forEach(r -> {
                    SplittableRandom rnd = new SplittableRandom(tensorSeed ^ (r * 0x9E3779B97F4A7C15L));
                    float[] row = new float[cols];
                    for (int c = 0; c < cols; c++) {
                        row[c] = (float) (2 * rnd.nextDouble() - 1) * half;
                    }
                    enc.encode(row, buf.slice((int) ((r - first) * rowBytes), (int) rowBytes).order(ByteOrder.LITTLE_ENDIAN));
                });
                buf.position((int) (n * rowBytes));
                buf.flip();
                long bytes = buf.remaining();
                while (buf.hasRemaining()) {
                    out.write(buf);
                }
                progress.accept(bytes);
            }
        });
    }

    private static long mix(long seed, int tensor, int salt) {
        long z = seed * 0x9E3779B97F4A7C15L + tensor * 0xBF58476D1CE4E5B9L + salt;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** The tensor bytes {@code write} will produce (for a progress total). */
    public long tensorBytes() throws IOException {
        long total = 0;
        for (GgufWriter.TensorEntry e : writer(b -> { }).tensors()) {
            total += e.byteSize();
        }
        return total;
    }

    /** Tensor names of the shape, in file order (for docs and tests). */
    public List<String> tensorNames() throws IOException {
        List<String> names = new ArrayList<>();
        writer(b -> { }).tensors().forEach(e -> names.add(e.name()));
        return names;
    }
}
