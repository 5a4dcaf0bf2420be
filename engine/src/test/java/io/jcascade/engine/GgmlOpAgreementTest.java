package io.jcascade.engine;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.engine.model.ModelConfig;
import io.jcascade.gguf.GgufFile;
import io.jcascade.kernels.WeightMatrix;
import io.jcascade.kernels.cpu.CpuKernels;
import io.jcascade.kernels.cpu.GgmlMath;
import io.jcascade.kernels.quant.QuantPlan;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Each operation of jcascade's CPU kernels against the very tensors llama.cpp computed: llama.cpp
 * decodes an 11-token prompt and 12 single tokens with its scheduler callback handing over every
 * graph node ({@link LlamaCppLogits.TensorTap}); jcascade's kernel for each node is run on
 * llama.cpp's own inputs of that node and must give its output <em>bit for bit</em> — matrix
 * products of every weight type (one token, and the prompt batch), RMSNorm, rope, SwiGLU, and
 * the attention's scores, softmax and weighted values ({@link GgmlMath}, as {@code CpuBackend}
 * computes them). Equal bits are what keeps 8-bit activation rounding, and so the logits, equal
 * ({@link QuantizedPositionAgreementTest} checks the whole forward pass).
 */
class GgmlOpAgreementTest {

    private record Node(String name, int op, long[] ne, float[] data) {
    }

    private static final int MUL_MAT = 27, ROPE = 45;

    @TempDir
    static Path dir;
    private static Path f32;

    @BeforeAll
    static void randomModel() throws Exception {
        f32 = QuantizedPositionAgreementTest.randomModel(SharedData.embeddedModel("stories260K.gguf"),
                dir.resolve("random-f32.gguf"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"stories260K-Q8_0", "stories260K-Q4_0", "F32", "F16", "BF16", "Q2_K", "Q4_K_M", "Q5_K", "Q3_K_M"})
    void everyOpIsBitIdentical(String model) throws Exception {
        Path file = switch (model) {
            case "stories260K-Q8_0", "stories260K-Q4_0" -> SharedData.shared("models/derived/" + model + ".gguf");
            case "F32" -> f32;
            case "F16", "BF16" -> QuantizedPositionAgreementTest.halfPrecision(f32, dir.resolve(model + ".gguf"),
                    io.jcascade.gguf.GgmlType.valueOf(model));
            case "Q2_K" -> QuantizedPositionAgreementTest.ggmlQuantized(f32, dir.resolve(model + ".gguf"),
                    io.jcascade.gguf.GgmlType.Q2_K);
            default -> QuantizedPositionAgreementTest.quantize(f32, dir.resolve(model + ".gguf"),
                    QuantPlan.FileType.valueOf(model));
        };
        Map<String, int[]> differ = compare(file);
        StringBuilder report = new StringBuilder();
        differ.forEach((op, c) -> report.append(String.format("%n  %-34s %6d of %6d values differ", op, c[1], c[0])));
        System.out.printf("%s:%s%n", model, report);
        differ.forEach((op, c) -> assertThat(c[0]).as(op + " compared nothing").isPositive());
        differ.forEach((op, c) -> assertThat(c[1]).as(model + ": " + op + report).isZero());
    }

    /** Per op: {values compared, values whose bits differ}. */
    private static Map<String, int[]> compare(Path file) throws Exception {
        List<Node> nodes = new ArrayList<>();
        Map<String, int[]> differ = new TreeMap<>();
        try (GgufFile gguf = GgufFile.open(file); CpuKernels k = CpuKernels.create(2);
                LlamaCppLogits llamaCpp = new LlamaCppLogits(file, new LlamaCppLogits.TensorTap() {
                    @Override
                    public boolean wants(String name) {
                        return true;
                    }

                    @Override
                    public void seen(String name, int type, int op, long[] ne, float[] data) {
                        nodes.add(new Node(name, op, ne, data));
                    }
                });
                LlamaCppLogits.Sequence seq = llamaCpp.newSequence()) {
            ModelConfig c = ModelConfig.from(gguf);
            int[] prompt = {1, 400, 500, 300, 200, 100, 50, 25, 12, 6, 3};
            seq.decode(prompt);
            for (int layer = 0; layer < c.layers(); layer++) {
                String l = "-" + layer, b = "blk." + layer + ".";
                batch(differ, k, gguf, b + "attn_q.weight", get(nodes, "attn_norm" + l, -1), get(nodes, "Qcur" + l, MUL_MAT));
                batch(differ, k, gguf, b + "ffn_gate.weight", get(nodes, "ffn_norm" + l, -1), get(nodes, "ffn_gate" + l, -1));
                batch(differ, k, gguf, b + "ffn_down.weight", get(nodes, "ffn_gate_par" + l, -1), get(nodes, "ffn_out" + l, -1));
            }
            int pos = prompt.length;
            for (int step = 0; step < 12; step++, pos++) {
                nodes.clear();
                seq.decode(7 + 13 * step);
                for (int layer = 0; layer < c.layers(); layer++) {
                    decodeLayer(differ, k, gguf, c, nodes, layer, pos);
                }
                matmul(differ, k, gguf, "output.weight", get(nodes, "result_norm", -1), get(nodes, "result_output", -1));
            }
        }
        return differ;
    }

    private static void decodeLayer(Map<String, int[]> differ, CpuKernels k, GgufFile gguf, ModelConfig c,
            List<Node> nodes, int layer, int pos) {
        String l = "-" + layer, b = "blk." + layer + ".";
        float[] in = layer == 0 ? get(nodes, "inp_embd", -1) : get(nodes, "l_out-" + (layer - 1), -1);
        float[] normed = new float[c.dim()];
        float[] attnNorm = get(nodes, "attn_norm" + l, -1);
        k.rmsNorm(in, 0, vector(gguf, b + "attn_norm.weight"), normed, 0, c.dim(), c.rmsEps());
        count(differ, "rms_norm", normed, attnNorm);
        matmul(differ, k, gguf, b + "attn_q.weight", attnNorm, get(nodes, "Qcur" + l, MUL_MAT));
        matmul(differ, k, gguf, b + "attn_k.weight", attnNorm, get(nodes, "Kcur" + l, MUL_MAT));
        matmul(differ, k, gguf, b + "attn_v.weight", attnNorm, get(nodes, "Vcur" + l, MUL_MAT));
        float[] q = get(nodes, "Qcur" + l, MUL_MAT).clone();
        k.rope(q, 0, c.heads(), c.headDim(), c.ropeDims(), pos, c.ropeBase(), null, c.ropeNeox());
        float[] roped = get(nodes, "Qcur" + l, ROPE);
        count(differ, "rope", q, roped);
        attention(differ, c, nodes, layer, roped, pos + 1);
        matmul(differ, k, gguf, b + "attn_output.weight", get(nodes, "kqv_out" + l, -1),
                after(nodes, "kqv_out" + l, MUL_MAT).data);
        float[] ffnNorm = get(nodes, "ffn_norm" + l, -1);
        k.rmsNorm(get(nodes, "ffn_inp" + l, -1), 0, vector(gguf, b + "ffn_norm.weight"), normed, 0, c.dim(), c.rmsEps());
        count(differ, "rms_norm", normed, ffnNorm);
        float[] gate = get(nodes, "ffn_gate" + l, -1), up = get(nodes, "ffn_up" + l, -1);
        matmul(differ, k, gguf, b + "ffn_gate.weight", ffnNorm, gate);
        matmul(differ, k, gguf, b + "ffn_up.weight", ffnNorm, up);
        float[] par = new float[gate.length];
        k.swiglu(gate, 0, up, 0, par, 0, gate.length);
        count(differ, "swiglu", par, get(nodes, "ffn_gate_par" + l, -1));
        matmul(differ, k, gguf, b + "ffn_down.weight", get(nodes, "ffn_gate_par" + l, -1), get(nodes, "ffn_out" + l, -1));
    }

    /**
     * The attention of one decode step from llama.cpp's roped query and its f16 caches: scores
     * (ggml_vec_dot_f16 of the f16 query), softmax (ggml_v_expf), weighted values (f16 weights).
     */
    private static void attention(Map<String, int[]> differ, ModelConfig c, List<Node> nodes, int layer, float[] q,
            int len) {
        String l = "-" + layer;
        Node keys = after(nodes, "cache_v_l" + layer + " (view) (copy of Vcur" + l + " (transposed))", 35,
                "cache_k_l" + layer + " (view)");
        Node values = after(nodes, "cache_v_l" + layer + " (view) (copy of Vcur" + l + " (transposed))", 35,
                "cache_v_l" + layer + " (view)");
        Node kq = after(nodes, "Qcur" + l + " (permuted)", MUL_MAT);
        Node softmax = after(nodes, "Qcur" + l + " (permuted)", 43);
        Node kqv = after(nodes, kq.name, MUL_MAT);
        int hd = c.headDim(), nkv = (int) keys.ne[1], group = c.heads() / c.kvHeads();
        float[] acc = new float[32];
        float[] scores = new float[c.heads() * nkv], p = new float[c.heads() * nkv], out = new float[c.heads() * hd];
        float[] qh = new float[hd], row = new float[nkv], ph = new float[nkv];
        float scale = 1f / (float) Math.sqrt(hd);
        for (int h = 0; h < c.heads(); h++) {
            int kvh = h / group;
            for (int d = 0; d < hd; d++) {
                qh[d] = Float.float16ToFloat(Float.floatToFloat16(q[h * hd + d]));
            }
            for (int s = 0; s < nkv; s++) {
                scores[h * nkv + s] = GgmlMath.dotF16(qh, 0, keys.data, (kvh * nkv + s) * hd, hd, acc);
            }
            float max = Float.NEGATIVE_INFINITY;
            for (int s = 0; s < len; s++) {
                max = Math.max(max, kq.data[h * nkv + s] * scale);
            }
            double sum = 0;
            for (int s0 = 0; s0 < nkv; s0 += 8) {
                for (int s = s0; s < s0 + 8; s++) {
                    p[h * nkv + s] = s < len ? GgmlMath.expf(kq.data[h * nkv + s] * scale - max) : 0f;
                }
                sum += GgmlMath.hsum8(p, h * nkv + s0);
            }
            float inv = (float) (1.0 / sum);
            for (int s = 0; s < nkv; s++) {
                p[h * nkv + s] *= inv;
                ph[s] = Float.float16ToFloat(Float.floatToFloat16(softmax.data[h * nkv + s]));
            }
            for (int d = 0; d < hd; d++) {
                System.arraycopy(values.data, (kvh * hd + d) * nkv, row, 0, nkv);
                out[h * hd + d] = GgmlMath.dotF16(row, 0, ph, 0, nkv, acc);
            }
        }
        count(differ, "attention scores", scores, kq.data);
        count(differ, "attention softmax", p, softmax.data);
        count(differ, "attention values", out, kqv.data);
    }

    private static void matmul(Map<String, int[]> differ, CpuKernels k, GgufFile gguf, String name, float[] x,
            float[] ref) {
        WeightMatrix m = WeightMatrix.of(gguf.findTensor(name).orElseThrow());
        float[] out = new float[m.rows()];
        k.matmul(m, x, 0, m.cols(), out, 0, m.rows(), 1);
        count(differ, "matmul " + m.type(), out, ref);
    }

    /** A prompt-batch product (the last layer keeps only the last token: its rows say how many). */
    private static void batch(Map<String, int[]> differ, CpuKernels k, GgufFile gguf, String name, float[] x,
            float[] ref) {
        WeightMatrix m = WeightMatrix.of(gguf.findTensor(name).orElseThrow());
        int tokens = x.length / m.cols();
        float[] out = new float[m.rows() * tokens];
        k.matmul(m, x, 0, m.cols(), out, 0, m.rows(), tokens);
        count(differ, "batch matmul " + m.type(), out, ref);
    }

    private static void count(Map<String, int[]> differ, String op, float[] ours, float[] ref) {
        assertThat(ours).as(op).hasSameSizeAs(ref);
        int[] c = differ.computeIfAbsent(op, x -> new int[2]);
        for (int i = 0; i < ours.length; i++) {
            c[0]++;
            if (Float.floatToRawIntBits(ours[i]) != Float.floatToRawIntBits(ref[i])) {
                c[1]++;
            }
        }
    }

    private static float[] vector(GgufFile gguf, String name) {
        return gguf.findTensor(name).orElseThrow().data().toArray(ValueLayout.JAVA_FLOAT_UNALIGNED);
    }

    private static float[] get(List<Node> nodes, String name, int op) {
        for (Node n : nodes) {
            if (n.name.equals(name) && (op < 0 || n.op == op)) {
                return n.data;
            }
        }
        throw new IllegalStateException("llama.cpp's graph has no node " + name);
    }

    /** The first node after the one called {@code name} with op {@code op} (and name {@code withName}, if given). */
    private static Node after(List<Node> nodes, String name, int op, String withName) {
        int i = 0;
        while (!nodes.get(i).name.equals(name)) {
            i++;
        }
        for (i++; i < nodes.size(); i++) {
            Node n = nodes.get(i);
            if (n.op == op && (withName == null || n.name.equals(withName))) {
                return n;
            }
        }
        throw new IllegalStateException("no op " + op + " after " + name);
    }

    private static Node after(List<Node> nodes, String name, int op) {
        return after(nodes, name, op, null);
    }
}
