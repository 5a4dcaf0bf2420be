package io.jcascade.engine;

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
 * A random F32 llama model whose widths are multiples of 256 (K-quant super-blocks), for
 * quantizer tests: {@link QuantizedPositionAgreementTest} and the cli's quantize tests.
 */
public final class RandomLlama {

    private static final int DIM = 256, FFN = 768, LAYERS = 2, HEADS = 4;

    private RandomLlama() {
    }

    /**
     * A random llama model (dim 256, ffn 768, 2 layers, 4 heads of 64) around the tokenizer of
     * {@code vocabFrom}. Scales keep the residual stream near unit size and make the logits spread
     * (std about 3) so that greedy choices are decisive.
     */
    public static Path write(Path vocabFrom, Path out) throws IOException {
        GgufWriter w = new GgufWriter();
        int vocab;
        try (GgufFile src = GgufFile.open(vocabFrom)) {
            for (Map.Entry<String, GgufValue> e : src.metadata().entrySet()) {
                if (e.getKey().startsWith("tokenizer.")) {
                    w.put(e.getKey(), e.getValue());
                }
            }
            vocab = src.get("tokenizer.ggml.tokens").orElseThrow().arrayLength();
        }
        w.put("general.architecture", GgufValue.ofString("llama"));
        w.put("general.name", GgufValue.ofString("random K-quant test model"));
        w.put("general.file_type", GgufValue.ofUInt32(0));
        w.put("llama.vocab_size", GgufValue.ofUInt32(vocab));
        w.put("llama.context_length", GgufValue.ofUInt32(512));
        w.put("llama.embedding_length", GgufValue.ofUInt32(DIM));
        w.put("llama.block_count", GgufValue.ofUInt32(LAYERS));
        w.put("llama.feed_forward_length", GgufValue.ofUInt32(FFN));
        w.put("llama.attention.head_count", GgufValue.ofUInt32(HEADS));
        w.put("llama.attention.head_count_kv", GgufValue.ofUInt32(HEADS));
        w.put("llama.rope.dimension_count", GgufValue.ofUInt32(DIM / HEADS));
        w.put("llama.attention.layer_norm_rms_epsilon", GgufValue.ofFloat32(1e-5f));
        Random r = new Random(260);
        double s = 1 / Math.sqrt(DIM);
        w.addTensor("token_embd.weight", GgmlType.F32, new long[] {DIM, vocab}, gaussian(r, DIM * vocab, 1));
        for (int l = 0; l < LAYERS; l++) {
            String b = "blk." + l + ".";
            w.addTensor(b + "attn_norm.weight", GgmlType.F32, new long[] {DIM}, gaussian(r, DIM, 0.1, 1));
            w.addTensor(b + "attn_q.weight", GgmlType.F32, new long[] {DIM, DIM}, gaussian(r, DIM * DIM, 2 * s));
            w.addTensor(b + "attn_k.weight", GgmlType.F32, new long[] {DIM, DIM}, gaussian(r, DIM * DIM, 2 * s));
            w.addTensor(b + "attn_v.weight", GgmlType.F32, new long[] {DIM, DIM}, gaussian(r, DIM * DIM, s));
            w.addTensor(b + "attn_output.weight", GgmlType.F32, new long[] {DIM, DIM}, gaussian(r, DIM * DIM, s));
            w.addTensor(b + "ffn_norm.weight", GgmlType.F32, new long[] {DIM}, gaussian(r, DIM, 0.1, 1));
            w.addTensor(b + "ffn_gate.weight", GgmlType.F32, new long[] {DIM, FFN}, gaussian(r, DIM * FFN, s));
            w.addTensor(b + "ffn_up.weight", GgmlType.F32, new long[] {DIM, FFN}, gaussian(r, DIM * FFN, s));
            w.addTensor(b + "ffn_down.weight", GgmlType.F32, new long[] {FFN, DIM},
                    gaussian(r, DIM * FFN, 1 / Math.sqrt(FFN)));
        }
        w.addTensor("output_norm.weight", GgmlType.F32, new long[] {DIM}, gaussian(r, DIM, 0.1, 1));
        w.addTensor("output.weight", GgmlType.F32, new long[] {DIM, vocab}, gaussian(r, DIM * vocab, 3 * s));
        w.write(out);
        return out;
    }

    private static byte[] gaussian(Random r, int n, double std) {
        return gaussian(r, n, std, 0);
    }

    private static byte[] gaussian(Random r, int n, double std, double mean) {
        ByteBuffer b = ByteBuffer.allocate(n * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < n; i++) {
            b.putFloat((float) (mean + std * r.nextGaussian()));
        }
        return b.array();
    }

}
