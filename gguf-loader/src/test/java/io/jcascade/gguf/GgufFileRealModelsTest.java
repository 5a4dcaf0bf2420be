package io.jcascade.gguf;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** Header facts of the shared models, as listed in shared/models/PROVENANCE.md. */
class GgufFileRealModelsTest {

    private static Map<GgmlType, Long> typeCounts(GgufFile f) {
        return f.tensors().stream().collect(Collectors.groupingBy(GgufTensor::type, TreeMap::new,
                Collectors.counting()));
    }

    /** Tensor data must be zero-copy slices of the file mapping. */
    private static void assertSlicesOfMapping(GgufFile f) {
        MemorySegment file = f.segment();
        assertThat(file.isNative()).isTrue();
        long end = 0;
        for (GgufTensor t : f.tensors()) {
            MemorySegment d = t.data();
            assertThat(d.isNative()).as(t.name()).isTrue();
            assertThat(d.address()).isEqualTo(file.address() + f.dataOffset() + t.offset());
            assertThat(d.address() + d.byteSize()).isLessThanOrEqualTo(file.address() + file.byteSize());
            assertThat(d.byteSize()).isEqualTo(t.byteSize());
            assertThat(t.offset() % f.alignment()).isZero();
            end = Math.max(end, f.dataOffset() + t.offset() + t.byteSize());
        }
        // PROVENANCE: no trailing bytes beyond the final alignment padding
        assertThat(file.byteSize() - end).isBetween(0L, (long) f.alignment() - 1);
    }

    @Test
    void stories260K() throws IOException {
        try (GgufFile f = GgufFile.open(SharedData.require("models/stories260K.gguf"))) {
            assertThat(f.version()).isEqualTo(3);
            assertThat(f.alignment()).isEqualTo(32);
            assertThat(f.tensors()).hasSize(48);
            assertThat(f.metadata()).hasSize(19);
            assertThat(f.getString("general.architecture")).isEqualTo("llama");
            assertThat(f.getString("tokenizer.ggml.model")).isEqualTo("llama");
            assertThat(f.getInt("llama.block_count")).isEqualTo(5);
            assertThat(f.getInt("llama.embedding_length")).isEqualTo(64);
            assertThat(f.getInt("llama.feed_forward_length")).isEqualTo(172);
            assertThat(f.getInt("llama.attention.head_count")).isEqualTo(8);
            assertThat(f.getInt("llama.attention.head_count_kv")).isEqualTo(4);
            assertThat(f.getInt("llama.context_length")).isEqualTo(2048);
            assertThat(f.getFloat("llama.attention.layer_norm_rms_epsilon")).isEqualTo(1e-5f);
            assertThat(f.get("tokenizer.ggml.padding_token_id").orElseThrow().asLong()).isEqualTo(4294967295L);
            assertThat(f.contains("llama.rope.freq_base")).isFalse();
            assertThat(f.metadata().get("tokenizer.ggml.tokens").asStringArray()).hasSize(512);
            assertThat(f.metadata().get("tokenizer.ggml.scores").asFloatArray()).hasSize(512);
            GgufTensor embd = f.tensor("token_embd.weight");
            assertThat(embd.type()).isEqualTo(GgmlType.F32);
            assertThat(embd.shape()).containsExactly(64, 512);
            assertThat(f.tensor("blk.0.attn_k.weight").shape()).containsExactly(64, 32);
            assertThat(f.tensor("blk.4.ffn_down.weight").shape()).containsExactly(172, 64);
            assertThat(f.tensor("output_norm.weight").shape()).containsExactly(64);
            assertThat(typeCounts(f)).containsExactly(Map.entry(GgmlType.F32, 48L));
            assertThat(f.tensors().stream().mapToLong(GgufTensor::elementCount).sum()).isEqualTo(292_800);
            assertSlicesOfMapping(f);
        }
    }

    @Test
    void llama2TinyRandom() throws IOException {
        try (GgufFile f = GgufFile.open(SharedData.require("models/llama-2-tiny-random.gguf"))) {
            assertThat(f.version()).isEqualTo(3);
            assertThat(f.tensors()).hasSize(12);
            assertThat(f.metadata()).hasSize(18);
            assertThat(f.getString("general.name")).isEqualTo("LLaMA v2");
            assertThat(f.getInt("general.file_type")).isEqualTo(1);
            assertThat(f.metadata().get("tokenizer.ggml.tokens").arrayLength()).isEqualTo(32000);
            assertThat(typeCounts(f)).containsExactly(Map.entry(GgmlType.F32, 3L), Map.entry(GgmlType.F16, 9L));
            assertThat(f.tensor("token_embd.weight").type()).isEqualTo(GgmlType.F16);
            assertThat(f.tensor("token_embd.weight").shape()).containsExactly(8, 32000);
            assertThat(f.tensor("token_embd.weight").byteSize()).isEqualTo(8L * 32000 * 2);
            assertThat(f.tensor("blk.0.ffn_down.weight").shape()).containsExactly(32, 8);
            assertThat(f.tensor("output_norm.weight").type()).isEqualTo(GgmlType.F32);
            assertSlicesOfMapping(f);
        }
    }

    @Test
    void derivedQuantizedModels() throws IOException {
        for (String[] c : new String[][] {{"Q8_0", "7"}, {"Q4_0", "2"}}) {
            GgmlType q = GgmlType.valueOf(c[0]);
            try (GgufFile f = GgufFile.open(SharedData.require("models/derived/stories260K-" + c[0] + ".gguf"))) {
                assertThat(f.version()).isEqualTo(3);
                assertThat(f.tensors()).hasSize(48);
                assertThat(f.metadata()).hasSize(21);
                assertThat(f.getInt("general.file_type")).isEqualTo(Integer.parseInt(c[1]));
                assertThat(f.getInt("general.quantization_version")).isEqualTo(2);
                assertThat(typeCounts(f)).containsExactly(Map.entry(GgmlType.F32, 16L), Map.entry(q, 32L));
                GgufTensor embd = f.tensor("token_embd.weight");
                assertThat(embd.type()).isEqualTo(q);
                assertThat(embd.shape()).containsExactly(64, 512);
                assertThat(embd.byteSize()).isEqualTo(512L * q.rowBytes(64));
                assertThat(f.tensor("blk.0.ffn_down.weight").type()).isEqualTo(GgmlType.F32);
                assertSlicesOfMapping(f);
            }
        }
    }

    @Test
    void vocabOnlyFilesHaveNoTensors() throws IOException {
        try (GgufFile f = GgufFile.open(SharedData.require("tokenizer-vectors/ggml-vocab-llama-spm.gguf"))) {
            assertThat(f.version()).isEqualTo(3);
            assertThat(f.tensors()).isEmpty();
            assertThat(f.metadata().get("tokenizer.ggml.tokens").arrayLength()).isEqualTo(32000);
            assertThat(f.getInt("llama.block_count")).isEqualTo(32);
        }
        try (GgufFile f = GgufFile.open(SharedData.require("tokenizer-vectors/ggml-vocab-llama-bpe.gguf"))) {
            assertThat(f.getString("tokenizer.ggml.pre")).isEqualTo("llama-bpe");
            assertThat(f.metadata().get("tokenizer.ggml.tokens").arrayLength()).isEqualTo(128_256);
            assertThat(f.metadata().get("tokenizer.ggml.merges").arrayLength()).isEqualTo(280_147);
        }
    }

    @Test
    void arithModelsAreF32Llama() throws IOException {
        for (String name : new String[] {"arith-small", "arith-large"}) {
            try (GgufFile f = GgufFile.open(SharedData.require("models/" + name + ".gguf"))) {
                assertThat(f.version()).isEqualTo(3);
                assertThat(f.getString("general.architecture")).isEqualTo("llama");
                assertThat(typeCounts(f).keySet()).containsExactly(GgmlType.F32);
                assertSlicesOfMapping(f);
            }
        }
    }
}
