package io.jcascade.kernels.quant;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.gguf.GgmlType;
import io.jcascade.gguf.GgufTensor;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@link QuantPlan} against llama.cpp's {@code llama_tensor_get_type} rules, worked out by hand
 * for a 32-layer model (the layer lists below are written out, not computed).
 */
class QuantPlanTest {

    private static final int LAYERS = 32;

    /** A 32-layer llama layout, F16 matrices of 4096 columns; fused phi3 tensors when {@code fused}. */
    private static List<GgufTensor> model(boolean fused) {
        List<GgufTensor> t = new ArrayList<>();
        t.add(tensor("token_embd.weight", 4096, 32000));
        t.add(tensor("output_norm.weight", 4096));
        t.add(tensor("output.weight", 4096, 32000));
        for (int l = 0; l < LAYERS; l++) {
            String b = "blk." + l + ".";
            t.add(tensor(b + "attn_norm.weight", 4096));
            if (fused) {
                t.add(tensor(b + "attn_qkv.weight", 4096, 3 * 4096));
            } else {
                t.add(tensor(b + "attn_q.weight", 4096, 4096));
                t.add(tensor(b + "attn_k.weight", 4096, 1024));
                t.add(tensor(b + "attn_v.weight", 4096, 1024));
            }
            t.add(tensor(b + "attn_output.weight", 4096, 4096));
            t.add(tensor(b + "ffn_norm.weight", 4096));
            t.add(tensor(b + "ffn_gate.weight", 4096, 14336));
            t.add(tensor(b + "ffn_up.weight", 4096, 14336));
            t.add(tensor(b + "ffn_down.weight", 14336, 4096));
        }
        return t;
    }

    private static GgufTensor tensor(String name, long... shape) {
        return new GgufTensor(name, shape.length == 1 ? GgmlType.F32 : GgmlType.F16, shape, 0, MemorySegment.NULL);
    }

    private static GgmlType type(Map<String, GgmlType> plan, int layer, String tensor) {
        return plan.get("blk." + layer + "." + tensor + ".weight");
    }

    @Test
    void q3KSmall() {
        Map<String, GgmlType> plan = QuantPlan.plan(model(false), QuantPlan.FileType.Q3_K_S);
        assertThat(plan.get("output.weight")).isEqualTo(GgmlType.Q6_K);
        assertThat(plan.get("token_embd.weight")).isEqualTo(GgmlType.Q3_K);
        assertThat(plan.get("output_norm.weight")).isEqualTo(GgmlType.F32);
        for (int l = 0; l < LAYERS; l++) {
            for (String t : List.of("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")) {
                assertThat(type(plan, l, t)).as("%d %s", l, t).isEqualTo(GgmlType.Q3_K);
            }
        }
        assertThat(QuantPlan.plan(model(false), QuantPlan.FileType.Q3_K)).isEqualTo(plan);
    }

    @Test
    void q3KMedium() {
        Map<String, GgmlType> plan = QuantPlan.plan(model(false), QuantPlan.FileType.Q3_K_M);
        assertThat(plan.get("output.weight")).isEqualTo(GgmlType.Q6_K);
        for (int l = 0; l < LAYERS; l++) {
            // attn_v: Q5_K for the first two, Q4_K after; ffn_down: Q5_K below 32/16 = 2, Q4_K after
            GgmlType more = l < 2 ? GgmlType.Q5_K : GgmlType.Q4_K;
            assertThat(type(plan, l, "attn_v")).as("attn_v %d", l).isEqualTo(more);
            assertThat(type(plan, l, "ffn_down")).as("ffn_down %d", l).isEqualTo(more);
            assertThat(type(plan, l, "attn_output")).isEqualTo(GgmlType.Q4_K);
            for (String t : List.of("attn_q", "attn_k", "ffn_gate", "ffn_up")) {
                assertThat(type(plan, l, t)).as("%d %s", l, t).isEqualTo(GgmlType.Q3_K);
            }
        }
        Map<String, GgmlType> fused = QuantPlan.plan(model(true), QuantPlan.FileType.Q3_K_M);
        assertThat(type(fused, 5, "attn_qkv")).isEqualTo(GgmlType.Q4_K);
    }

    @Test
    void q3KLarge() {
        Map<String, GgmlType> plan = QuantPlan.plan(model(false), QuantPlan.FileType.Q3_K_L);
        for (int l = 0; l < LAYERS; l++) {
            for (String t : List.of("attn_v", "attn_output", "ffn_down")) {
                assertThat(type(plan, l, t)).as("%d %s", l, t).isEqualTo(GgmlType.Q5_K);
            }
            for (String t : List.of("attn_q", "attn_k", "ffn_gate", "ffn_up")) {
                assertThat(type(plan, l, t)).as("%d %s", l, t).isEqualTo(GgmlType.Q3_K);
            }
        }
        assertThat(type(QuantPlan.plan(model(true), QuantPlan.FileType.Q3_K_L), 0, "attn_qkv"))
                .isEqualTo(GgmlType.Q4_K);
    }

    @Test
    void q4KMedium() {
        Map<String, GgmlType> plan = QuantPlan.plan(model(false), QuantPlan.FileType.Q4_K_M);
        // use_more_bits(i, 32): i < 4, i >= 28, or (i - 4) % 3 == 2
        List<Integer> more = List.of(0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31);
        for (int l = 0; l < LAYERS; l++) {
            GgmlType expected = more.contains(l) ? GgmlType.Q6_K : GgmlType.Q4_K;
            assertThat(type(plan, l, "attn_v")).as("attn_v %d", l).isEqualTo(expected);
            assertThat(type(plan, l, "ffn_down")).as("ffn_down %d", l).isEqualTo(expected);
            assertThat(type(plan, l, "attn_output")).isEqualTo(GgmlType.Q4_K);
        }
        assertThat(type(QuantPlan.plan(model(true), QuantPlan.FileType.Q4_K_M), 0, "attn_qkv"))
                .isEqualTo(GgmlType.Q5_K);
    }
}
