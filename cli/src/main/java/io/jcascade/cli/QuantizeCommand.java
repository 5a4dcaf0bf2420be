package io.jcascade.cli;

import io.jcascade.gguf.GgmlType;
import io.jcascade.gguf.GgufFile;
import io.jcascade.gguf.GgufTensor;
import io.jcascade.gguf.GgufValue;
import io.jcascade.gguf.GgufWriter;
import io.jcascade.kernels.WeightMatrix;
import io.jcascade.kernels.cpu.ScalarKernels;
import io.jcascade.kernels.quant.QuantPlan;
import io.jcascade.kernels.quant.Quantizer;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.IntStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code jcascade quantize IN.gguf OUT.gguf --type Q4_K_M}: quantizes an F32/F16/BF16 model with
 * ggml's reference algorithms ({@link Quantizer}), choosing each tensor's type as llama-quantize
 * does ({@link QuantPlan}); metadata is copied, {@code general.file_type} and
 * {@code general.quantization_version} set.
 *
 * <pre>{@code
 * ./jcascade quantize models/stories260K.gguf /tmp/stories-q8.gguf --type Q8_0
 * }</pre>
 */
@Command(name = "quantize", mixinStandardHelpOptions = true,
        description = "Quantize an F32/F16/BF16 GGUF model (ggml's reference quantization).")
final class QuantizeCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "IN", description = "input GGUF file (F32/F16/BF16 weights)")
    Path in;

    @Parameters(index = "1", paramLabel = "OUT", description = "output GGUF file")
    Path out;

    @Option(names = "--type", required = true,
            description = "one of: ${COMPLETION-CANDIDATES} (Q3_K = Q3_K_S; Q4_K, Q5_K: the base type everywhere but the output head)")
    QuantPlan.FileType type;

    @Override
    public Integer call() throws Exception {
        PrintWriter err = spec.commandLine().getErr();
        quantize(in, out, type, err, System.console() != null);
        return 0;
    }

    /** Quantizes {@code in} into {@code out}; progress on {@code err}. */
    static void quantize(Path in, Path out, QuantPlan.FileType ftype, PrintWriter err, boolean interactive)
            throws Exception {
        try (GgufFile gguf = GgufFile.open(in)) {
            Map<String, GgmlType> plan = QuantPlan.plan(gguf.tensors(), ftype);
            GgufWriter w = new GgufWriter();
            // Everything but the two keys that describe the quantization, which this file replaces.
            gguf.metadata().forEach((k, v) -> {
                if (!k.equals("general.file_type") && !k.equals("general.quantization_version")) {
                    w.put(k, v);
                }
            });
            w.put("general.file_type", GgufValue.ofUInt32(ftype.id()));
            w.put("general.quantization_version", GgufValue.ofUInt32(2));
            long totalRows = 0;
            for (GgufTensor t : gguf.tensors()) {
                totalRows += t.rowCount();
            }
            ProgressBar bar = new ProgressBar(err, "quantize", (int) Math.min(Integer.MAX_VALUE, totalRows), interactive);
            AtomicLong done = new AtomicLong();
            ScalarKernels decode = new ScalarKernels();
            for (GgufTensor t : gguf.tensors()) {
                GgmlType target = plan.get(t.name());
                if (target == t.type()) {
                    w.addTensor(t.name(), t.type(), t.shape(), out2 -> {
                        ByteBuffer b = t.data().asByteBuffer();
                        while (b.hasRemaining()) {
                            out2.write(b);
                        }
                        bar.update((int) done.addAndGet(t.rowCount()));
                    });
                    continue;
                }
                int cols = Math.toIntExact(t.rowLength());
                int rows = Math.toIntExact(t.rowCount());
                WeightMatrix src = new WeightMatrix(t.type(), t.data(), rows, cols);
                w.addTensor(t.name(), target, t.shape(), out2 -> {
                    // Rows are quantized independently: a chunk of them on all cores, then written
                    // in order, so the file is the same bytes as one row at a time.
                    int rowBytes = Math.toIntExact(target.rowBytes(cols));
                    int chunk = Math.max(1, Math.min(rows, (8 << 20) / rowBytes));
                    byte[] q = new byte[chunk * rowBytes];
                    for (int r0 = 0; r0 < rows; r0 += chunk) {
                        int first = r0;
                        int n = Math.min(chunk, rows - r0);
                        IntStream.range(0, n).parallel().forEach(i -> {
                            float[] x = new float[cols];
                            decode.dequantizeRow(src, first + i, x, 0);
                            Quantizer.quantizeRow(target, x, 0, cols, q, i * rowBytes);
                        });
                        ByteBuffer qb = ByteBuffer.wrap(q, 0, n * rowBytes);
                        while (qb.hasRemaining()) {
                            out2.write(qb);
                        }
                        bar.update((int) done.addAndGet(n));
                    }
                });
            }
            w.write(out);
            bar.update((int) Math.min(Integer.MAX_VALUE, totalRows));
            err.flush();
        }
    }
}
