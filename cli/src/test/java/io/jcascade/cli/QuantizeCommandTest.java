package io.jcascade.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.jcascade.gguf.GgmlType;
import io.jcascade.gguf.GgufFile;
import io.jcascade.gguf.GgufTensor;
import io.jcascade.kernels.WeightMatrix;
import io.jcascade.kernels.cpu.ScalarKernels;
import io.jcascade.kernels.quant.QuantPlan;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code jcascade quantize} on stories260K: Q8_0/Q4_0 blocks byte-identical to the shared files
 * made by ggml's reference quantizer, and dequantized weights close to the originals.
 */
class QuantizeCommandTest {

    @TempDir
    Path tmp;

    private static Path root(String rel) {
        Path p = Path.of("..").resolve(rel);
        assumeTrue(Files.exists(p), "missing " + p);
        return p;
    }

    @ParameterizedTest
    @ValueSource(strings = {"Q8_0", "Q4_0"})
    void blocksMatchGgmlReferenceFiles(String type) throws Exception {
        Path in = root("models/stories260K.gguf");
        Path ref = root("../shared/models/derived/stories260K-" + type + ".gguf");
        Path out = tmp.resolve("out.gguf");
        StringWriter log = new StringWriter();
        QuantizeCommand.quantize(in, out, QuantPlan.FileType.valueOf(type), new PrintWriter(log), false);
        int compared = 0, identical = 0;
        StringBuilder diffs = new StringBuilder();
        try (GgufFile ours = GgufFile.open(out); GgufFile theirs = GgufFile.open(ref)) {
            assertThat(ours.getInt("general.file_type")).isEqualTo(QuantPlan.FileType.valueOf(type).id());
            for (GgufTensor t : theirs.tensors()) {
                GgufTensor o = ours.tensor(t.name());
                if (o.type() != t.type()) {
                    diffs.append(t.name()).append(": ours ").append(o.type()).append(", theirs ").append(t.type()).append('\n');
                    continue;
                }
                compared++;
                if (o.data().mismatch(t.data()) == -1) {
                    identical++;
                } else {
                    diffs.append(t.name()).append(" ").append(t.type()).append(" differs at byte ")
                            .append(o.data().mismatch(t.data())).append('\n');
                }
            }
        }
        System.out.printf("%s: %d of %d same-type tensors byte-identical%n%s", type, identical, compared, diffs);
        assertThat(identical).as(diffs.toString()).isEqualTo(compared);
    }

    @ParameterizedTest
    @ValueSource(strings = {"Q8_0", "Q4_0", "Q4_K_M"})
    void dequantizedWeightsStayClose(String type) throws Exception {
        Path in = root("models/stories260K.gguf");
        Path out = tmp.resolve("out.gguf");
        QuantizeCommand.quantize(in, out, QuantPlan.FileType.valueOf(type), new PrintWriter(new StringWriter()), false);
        ScalarKernels k = new ScalarKernels();
        try (GgufFile a = GgufFile.open(in); GgufFile b = GgufFile.open(out)) {
            for (GgufTensor t : a.tensors()) {
                GgufTensor q = b.tensor(t.name());
                int cols = (int) t.rowLength(), rows = (int) t.rowCount();
                WeightMatrix wa = new WeightMatrix(t.type(), t.data(), rows, cols);
                WeightMatrix wb = new WeightMatrix(q.type(), q.data(), rows, cols);
                float[] x = new float[cols], y = new float[cols];
                double err = 0, norm = 0;
                for (int r = 0; r < rows; r++) {
                    k.dequantizeRow(wa, r, x, 0);
                    k.dequantizeRow(wb, r, y, 0);
                    for (int c = 0; c < cols; c++) {
                        err += (x[c] - y[c]) * (double) (x[c] - y[c]);
                        norm += x[c] * (double) x[c];
                    }
                }
                double rel = Math.sqrt(err / Math.max(norm, 1e-30));
                double bound = switch (q.type()) {
                    case F32 -> 0;
                    case Q8_0 -> 0.01;
                    case Q6_K -> 0.03;
                    default -> 0.15; // 4-bit
                };
                assertThat(rel).as("%s %s", t.name(), q.type()).isLessThanOrEqualTo(bound);
            }
        }
    }

    /** A source that already has general.file_type (as F32/F16 conversions do) is re-typed, not rejected. */
    @org.junit.jupiter.api.Test
    void replacesTheSourceFileType() throws Exception {
        Path in = root("models/stories260K.gguf");
        Path typed = tmp.resolve("typed.gguf");
        try (GgufFile a = GgufFile.open(in)) {
            io.jcascade.gguf.GgufWriter w = new io.jcascade.gguf.GgufWriter();
            w.putAll(a.metadata());
            if (!a.metadata().containsKey("general.file_type")) {
                w.put("general.file_type", io.jcascade.gguf.GgufValue.ofUInt32(0));
            }
            for (GgufTensor t : a.tensors()) {
                w.addTensor(t);
            }
            w.write(typed);
        }
        Path out = tmp.resolve("q8.gguf");
        QuantizeCommand.quantize(typed, out, QuantPlan.FileType.Q8_0, new PrintWriter(new StringWriter()), false);
        try (GgufFile b = GgufFile.open(out)) {
            assertThat(b.get("general.file_type").orElseThrow().asInt()).isEqualTo(7);
        }
    }

    /**
     * The command line: {@code quantize IN OUT --type Q3_K / Q3_K_M} on a random llama model with
     * 256-wide rows (so K-quants apply), each tensor gets llama.cpp's type for that file type,
     * and {@code generate} runs on the result.
     */
    @ParameterizedTest
    @ValueSource(strings = {"Q3_K", "Q3_K_M"})
    void q3KFromTheCommandLine(String type) throws Exception {
        Path in = io.jcascade.engine.RandomLlama.write(root("models/stories260K.gguf"), tmp.resolve("f32.gguf"));
        Path out = tmp.resolve(type + ".gguf");
        CliTest.Run r = CliTest.run("quantize", in.toString(), out.toString(), "--type", type);
        assertThat(r.exit()).as(r.err()).isZero();
        boolean medium = type.equals("Q3_K_M");
        try (GgufFile g = GgufFile.open(out)) {
            assertThat(g.getInt("general.file_type")).isEqualTo(medium ? 12 : 11);
            assertThat(g.tensor("output.weight").type()).isEqualTo(GgmlType.Q6_K);
            assertThat(g.tensor("token_embd.weight").type()).isEqualTo(GgmlType.Q3_K);
            assertThat(g.tensor("blk.1.attn_q.weight").type()).isEqualTo(GgmlType.Q3_K);
            assertThat(g.tensor("blk.1.ffn_up.weight").type()).isEqualTo(GgmlType.Q3_K);
            // Q3_K_M: attn_v Q5_K in the first two layers; attn_output and ffn_down (2 layers < 16) Q4_K
            assertThat(g.tensor("blk.1.attn_v.weight").type()).isEqualTo(medium ? GgmlType.Q5_K : GgmlType.Q3_K);
            assertThat(g.tensor("blk.1.attn_output.weight").type()).isEqualTo(medium ? GgmlType.Q4_K : GgmlType.Q3_K);
            assertThat(g.tensor("blk.0.ffn_down.weight").type()).isEqualTo(medium ? GgmlType.Q4_K : GgmlType.Q3_K);
            assertThat(g.tensor("blk.0.attn_norm.weight").type()).isEqualTo(GgmlType.F32);
        }
        CliTest.Run gen = CliTest.run("generate", "--model", out.toString(), "--prompt", "Once upon a time",
                "--max-tokens", "8", "--temperature", "0", "--threads", "2");
        assertThat(gen.exit()).as(gen.err()).isZero();
        assertThat(gen.out()).isNotBlank();
    }
}
