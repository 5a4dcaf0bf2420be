package io.jcascade.cli;

import io.jcascade.gguf.GgmlType;
import io.jcascade.gguf.GgufFile;
import io.jcascade.gguf.GgufValue;
import io.jcascade.gguf.GgufWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;

/**
 * Writes a tiny Llama-architecture model (dim 8, one layer, random F32 weights) around the
 * tokenizer of a vocab-only GGUF, so that llama.cpp, which needs weights to open a file, can be
 * asked how it tokenizes with that vocabulary and renders its chat template.
 */
final class TinyGguf {

    private static final int DIM = 8;
    private static final int FFN = 16;
    private static final int HEADS = 2;

    private TinyGguf() {
    }

    /** Copies every {@code tokenizer.*} key of {@code vocab} into a new tiny model at {@code out}. */
    static Path withVocabOf(Path vocab, Path out) throws IOException {
        GgufWriter w = new GgufWriter();
        int vocabSize;
        try (GgufFile src = GgufFile.open(vocab)) {
            for (Map.Entry<String, GgufValue> e : src.metadata().entrySet()) {
                if (e.getKey().startsWith("tokenizer.")) {
                    w.put(e.getKey(), e.getValue());
                }
            }
            vocabSize = src.get("tokenizer.ggml.tokens").orElseThrow().arrayLength();
        }
        w.put("general.architecture", GgufValue.ofString("llama"));
        w.put("general.name", GgufValue.ofString("tiny random test model"));
        w.put("general.file_type", GgufValue.ofUInt32(0));
        w.put("llama.vocab_size", GgufValue.ofUInt32(vocabSize));
        w.put("llama.context_length", GgufValue.ofUInt32(512));
        w.put("llama.embedding_length", GgufValue.ofUInt32(DIM));
        w.put("llama.block_count", GgufValue.ofUInt32(1));
        w.put("llama.feed_forward_length", GgufValue.ofUInt32(FFN));
        w.put("llama.attention.head_count", GgufValue.ofUInt32(HEADS));
        w.put("llama.attention.head_count_kv", GgufValue.ofUInt32(HEADS));
        w.put("llama.rope.dimension_count", GgufValue.ofUInt32(DIM / HEADS));
        w.put("llama.attention.layer_norm_rms_epsilon", GgufValue.ofFloat32(1e-5f));
        Random random = new Random(42);
        // GGUF lists dims innermost first: [columns, rows].
        w.addTensor("token_embd.weight", GgmlType.F32, new long[] {DIM, vocabSize}, random(random, DIM * vocabSize));
        w.addTensor("output_norm.weight", GgmlType.F32, new long[] {DIM}, ones(DIM));
        w.addTensor("output.weight", GgmlType.F32, new long[] {DIM, vocabSize}, random(random, DIM * vocabSize));
        for (String t : new String[] {"attn_q", "attn_k", "attn_v", "attn_output"}) {
            w.addTensor("blk.0." + t + ".weight", GgmlType.F32, new long[] {DIM, DIM}, random(random, DIM * DIM));
        }
        w.addTensor("blk.0.ffn_gate.weight", GgmlType.F32, new long[] {DIM, FFN}, random(random, DIM * FFN));
        w.addTensor("blk.0.ffn_up.weight", GgmlType.F32, new long[] {DIM, FFN}, random(random, DIM * FFN));
        w.addTensor("blk.0.ffn_down.weight", GgmlType.F32, new long[] {FFN, DIM}, random(random, DIM * FFN));
        w.addTensor("blk.0.attn_norm.weight", GgmlType.F32, new long[] {DIM}, ones(DIM));
        w.addTensor("blk.0.ffn_norm.weight", GgmlType.F32, new long[] {DIM}, ones(DIM));
        w.write(out);
        return out;
    }

    private static byte[] random(Random random, int n) {
        ByteBuffer b = ByteBuffer.allocate(n * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            b.putFloat((float) random.nextGaussian() * 0.5f);
        }
        return b.array();
    }

    private static byte[] ones(int n) {
        ByteBuffer b = ByteBuffer.allocate(n * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            b.putFloat(1f);
        }
        return b.array();
    }
}
