package io.jcascade.kernels.quant;

import io.jcascade.gguf.GgmlType;
import io.jcascade.gguf.GgufTensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Which type each tensor of a model gets when quantizing to a file type, following llama.cpp's
 * {@code llama_tensor_get_type} for the types jcascade writes: 1-D tensors and tensors that are
 * not F32/F16/BF16 stay as they are; {@code output.weight} goes to Q6_K (Q8_0 when its rows are
 * not a multiple of 256) unless the file type is Q8_0. The mixes:
 *
 * <ul>
 * <li>Q4_K_M: half of the {@code attn_v} and {@code ffn_down} tensors (llama.cpp's
 *     {@code use_more_bits}: the first and last eighth of the layers and every third in between)
 *     Q6_K, a fused {@code attn_qkv} Q5_K.</li>
 * <li>Q3_K_M: {@code attn_v} Q5_K in the first two layers, Q4_K after; {@code attn_output},
 *     {@code attn_qkv} Q4_K; {@code ffn_down} Q5_K in the first sixteenth of the layers, Q4_K
 *     after (llama.cpp keeps Q3_K there only for Falcon, which jcascade does not run).</li>
 * <li>Q3_K_L: {@code attn_v}, {@code attn_output}, {@code ffn_down} Q5_K; {@code attn_qkv} Q4_K.</li>
 * <li>Q3_K_S (and Q3_K), Q4_K, Q5_K, Q6_K, Q8_0, Q4_0: the base type everywhere else.</li>
 * </ul>
 *
 * <p>Rows that are not a multiple of the chosen type's block fall back to Q8_0 (llama.cpp takes
 * IQ4_NL for Q3_K, Q5_0/Q5_1 for Q4_K/Q5_K, which jcascade's kernels do not run) or, when not a
 * multiple of 32 either, keep their type. Not modelled: llama.cpp's rules for mixture-of-experts
 * models, Falcon, and 70B models (whose {@code attn_v} gets Q5_K instead of Q3_K/Q4_K).
 *
 * <pre>{@code
 * Map<String, GgmlType> types = QuantPlan.plan(gguf.tensors(), QuantPlan.FileType.Q4_K_M);
 * }</pre>
 */
public final class QuantPlan {

    /** The file types {@code jcascade quantize} writes, with ggml's {@code general.file_type} ids. */
    public enum FileType {
        Q8_0(GgmlType.Q8_0, 7),
        Q4_0(GgmlType.Q4_0, 2),
        /** Q3_K everywhere but the output head; the same plan and file type id as Q3_K_S. */
        Q3_K(GgmlType.Q3_K, 11),
        /** llama.cpp's Q3_K_S: as Q3_K. */
        Q3_K_S(GgmlType.Q3_K, 11),
        /** llama.cpp's Q3_K_M: Q3_K with Q4_K/Q5_K for attn_v, attn_output, attn_qkv and ffn_down. */
        Q3_K_M(GgmlType.Q3_K, 12),
        /** llama.cpp's Q3_K_L: Q3_K with Q5_K for attn_v, attn_output and ffn_down. */
        Q3_K_L(GgmlType.Q3_K, 13),
        /** All Q4_K (llama.cpp's {@code --pure}); file type id of Q4_K_S. */
        Q4_K(GgmlType.Q4_K, 14),
        /** All Q5_K; file type id of Q5_K_S. */
        Q5_K(GgmlType.Q5_K, 16),
        Q6_K(GgmlType.Q6_K, 18),
        Q4_K_M(GgmlType.Q4_K, 15);

        private final GgmlType base;
        private final int id;

        FileType(GgmlType base, int id) {
            this.base = base;
            this.id = id;
        }

        /** The type most tensors get. */
        public GgmlType base() {
            return base;
        }

        /** ggml's {@code llama_ftype} id, for {@code general.file_type}. */
        public int id() {
            return id;
        }
    }

    private QuantPlan() {
    }

    /** llama.cpp's use_more_bits: first and last eighth of the layers, and every third one between. */
    static boolean useMoreBits(int i, int n) {
        return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
    }

    /** The target type of every tensor, by name, in file order. */
    public static Map<String, GgmlType> plan(List<GgufTensor> tensors, FileType ftype) {
        int nAttnV = 0, nFfnDown = 0;
        for (GgufTensor t : tensors) {
            if (t.name().contains("attn_v.weight")) {
                nAttnV++;
            }
            if (t.name().contains("ffn_down")) {
                nFfnDown++;
            }
        }
        int iAttnV = 0, iFfnDown = 0;
        Map<String, GgmlType> out = new LinkedHashMap<>();
        for (GgufTensor t : tensors) {
            GgmlType src = t.type();
            boolean floatSrc = src == GgmlType.F32 || src == GgmlType.F16 || src == GgmlType.BF16;
            boolean quantize = floatSrc && t.shape().length >= 2 && t.rowCount() > 1 && t.name().endsWith("weight");
            GgmlType type = ftype.base();
            String name = t.name();
            if (name.equals("output.weight")) {
                if (t.rowLength() % 256 != 0) {
                    type = GgmlType.Q8_0;
                } else if (ftype != FileType.Q8_0) {
                    type = GgmlType.Q6_K;
                }
            } else if (name.contains("attn_v.weight")) {
                if (ftype == FileType.Q3_K_M) {
                    type = iAttnV < 2 ? GgmlType.Q5_K : GgmlType.Q4_K;
                } else if (ftype == FileType.Q3_K_L) {
                    type = GgmlType.Q5_K;
                } else if (ftype == FileType.Q4_K_M && useMoreBits(iAttnV, nAttnV)) {
                    type = GgmlType.Q6_K;
                }
                iAttnV++;
            } else if (name.contains("ffn_down")) {
                if (ftype == FileType.Q3_K_M) {
                    type = iFfnDown < nFfnDown / 16 ? GgmlType.Q5_K : GgmlType.Q4_K;
                } else if (ftype == FileType.Q3_K_L) {
                    type = GgmlType.Q5_K;
                } else if (ftype == FileType.Q4_K_M && useMoreBits(iFfnDown, nFfnDown)) {
                    type = GgmlType.Q6_K;
                }
                iFfnDown++;
            } else if (name.contains("attn_output.weight")) {
                if (ftype == FileType.Q3_K_M) {
                    type = GgmlType.Q4_K;
                } else if (ftype == FileType.Q3_K_L) {
                    type = GgmlType.Q5_K;
                }
            } else if (name.contains("attn_qkv.weight")) {
                if (ftype == FileType.Q3_K_M || ftype == FileType.Q3_K_L) {
                    type = GgmlType.Q4_K;
                } else if (ftype == FileType.Q4_K_M) {
                    type = GgmlType.Q5_K;
                }
            }
            if (!quantize) {
                out.put(name, src);
                continue;
            }
            if (t.rowLength() % type.blockSize() != 0) {
                type = t.rowLength() % 32 == 0 ? GgmlType.Q8_0 : src;
            }
            out.put(name, type);
        }
        return out;
    }
}
