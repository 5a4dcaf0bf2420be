package io.jcascade.gguf;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class GgufInspectorTest {

    @Test
    void describesStories260K() throws IOException {
        Path path = SharedData.require("models/stories260K.gguf");
        try (GgufFile f = GgufFile.open(path)) {
            String text = GgufInspector.describe(f);
            List<String> lines = text.lines().toList();
            assertThat(lines.getFirst()).isEqualTo("file:          " + path);
            assertThat(lines).contains(
                    "version:       3",
                    "alignment:     32",
                    "data offset:   " + f.dataOffset(),
                    "tensors:       48",
                    "parameters:    292,800 (292.8K)",
                    "tensor bytes:  1,171,200 (1.12 MiB)",
                    "metadata (19 keys):",
                    "tensors (48):");
            assertThat(lines).anySatisfy(l -> assertThat(l)
                    .matches("  general\\.architecture +STRING +\"llama\""));
            assertThat(lines).anySatisfy(l -> assertThat(l)
                    .matches("  llama\\.block_count +UINT32 +5"));
            assertThat(lines).anySatisfy(l -> assertThat(l)
                    .matches("  tokenizer\\.ggml\\.padding_token_id +UINT32 +4294967295"));
            // 512 tokens: the first few, then the length
            assertThat(lines).anySatisfy(l -> assertThat(l).matches(
                    "  tokenizer\\.ggml\\.tokens +ARRAY\\[STRING\\] +\\[\"<unk>\", \"<s>\", \"</s>\", \"<0x00>\", "
                    + "\"<0x01>\", \\.\\.\\. 512 elements\\]"));
            assertThat(lines).anySatisfy(l -> assertThat(l).matches(
                    "  tokenizer\\.ggml\\.scores +ARRAY\\[FLOAT32\\] +\\[.*\\.\\.\\. 512 elements\\]"));
            // tensor table: header, then one row per tensor with name, type, shape, bytes, offset
            int table = lines.indexOf("tensors (48):");
            assertThat(lines.get(table + 1)).matches(" +# +name +type +shape +bytes +offset");
            assertThat(lines.subList(table + 2, lines.size())).hasSize(48);
            assertThat(lines).anySatisfy(l -> assertThat(l)
                    .matches(" +0 +token_embd\\.weight +F32 +\\[64, 512\\] +131072 +0"));
            long ffnDownOffset = f.tensor("blk.4.ffn_down.weight").offset();
            assertThat(lines).anySatisfy(l -> assertThat(l).matches(
                    " +\\d+ +blk\\.4\\.ffn_down\\.weight +F32 +\\[172, 64\\] +44032 +" + ffnDownOffset));
            assertThat(text).endsWith("\n");
        }
    }

    @Test
    void abbreviatesLongStringsAndEscapesControlCharacters() throws IOException {
        String template = "{% for message in messages %}\n{{ message['content'] }}\n{% endfor %}".repeat(20);
        GgufWriter w = new GgufWriter()
                .put("tokenizer.chat_template", GgufValue.ofString(template))
                .put("short", GgufValue.ofString("a\tb\"c"))
                .put("u8s", GgufValue.array(GgufValueType.UINT8, new byte[] {(byte) 200, 1}))
                .put("nested", GgufValue.ofArrays(GgufValue.ofInt32Array(1, 2, 3), GgufValue.ofStringArray()))
                .put("empty", GgufValue.ofStringArray());
        try (GgufFile f = GgufFile.read(w.toBytes())) {
            String text = GgufInspector.describe(f);
            assertThat(text).contains("file:          (in memory)", "tensors:       0", "parameters:    0 (0)");
            String line = text.lines().filter(l -> l.contains("chat_template")).findFirst().orElseThrow();
            assertThat(line).contains("\"{% for message in messages %}\\n{{ message['content'] }}\\n")
                    .endsWith("\"... (" + template.length() + " chars)")
                    .hasSizeLessThan(160);
            assertThat(text).containsPattern("short +STRING +\"a\\\\tb\\\\\"c\"");
            assertThat(text).containsPattern("u8s +ARRAY\\[UINT8\\] +\\[200, 1\\]");
            assertThat(text).containsPattern("nested +ARRAY\\[ARRAY\\] +\\[\\[1, 2, \\.\\.\\. 3 elements\\], \\[\\]\\]");
            assertThat(text).containsPattern("empty +ARRAY\\[STRING\\] +\\[\\]");
        }
    }

    @Test
    void humanUnits() {
        assertThat(GgufInspector.humanCount(999)).isEqualTo("999");
        assertThat(GgufInspector.humanCount(6_738_415_616L)).isEqualTo("6.7B");
        assertThat(GgufInspector.humanBytes(1023)).isEqualTo("1023 B");
        assertThat(GgufInspector.humanBytes(3L << 30)).isEqualTo("3.00 GiB");
    }
}
