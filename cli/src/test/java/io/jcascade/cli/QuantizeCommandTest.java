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
}
