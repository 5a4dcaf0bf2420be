package io.jcascade.cli;

import io.jcascade.cli.JCascade.CliException;
import io.jcascade.engine.synth.SynthShape;
import io.jcascade.kernels.quant.QuantPlan;
import io.jcascade.engine.synth.SyntheticModel;
import io.jcascade.gguf.GgmlType;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicLong;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/**
 * {@code jcascade synth --shape NAME --type F16 OUT.gguf}: a model with random weights and the
 * exact tensor shapes of a real one (see {@link SynthShape#all()}), streamed to disk.
 *
 * <pre>
 * jcascade synth --shape phi3-tiny --vocab ../shared/tokenizer-vectors/ggml-vocab-phi-3.gguf phi3-tiny.gguf
 * jcascade synth --shape llama3-8b --type F16 --seed 7 llama3-8b-random.gguf
 * </pre>
 */
@Command(name = "synth", mixinStandardHelpOptions = true,
        description = "Write a GGUF model with random weights and a real model's shapes (for tests and benchmarks).")
final class SynthCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--shape", required = true, description = "one of: ${COMPLETION-CANDIDATES}",
            completionCandidates = ShapeNames.class)
    String shape;

    @Option(names = "--type", defaultValue = "F32", description = "F32, F16, BF16, or a quantized file type: Q8_0, Q4_0, "
            + "Q3_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K, Q5_K, Q6_K, Q4_K_M (default ${DEFAULT-VALUE})")
    String type;

    @Option(names = "--seed", defaultValue = "42", description = "random seed (default ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--vocab", description = "GGUF whose tokenizer.* metadata to copy (a llama.cpp vocab file); "
            + "without it a minimal built-in SentencePiece byte vocabulary of the right size")
    Path vocab;

    @Parameters(paramLabel = "OUT.gguf", description = "output file")
    Path out;

    static final class ShapeNames implements Iterable<String> {
        @Override
        public java.util.Iterator<String> iterator() {
            return SynthShape.all().stream().map(SynthShape::name).iterator();
        }
    }

    @Override
    public Integer call() throws Exception {
        SynthShape s = SynthShape.named(shape).orElseThrow(() -> new CliException(
                "unknown shape \"" + shape + "\"; known: "
                        + String.join(", ", SynthShape.all().stream().map(SynthShape::name).toList())));
        String upper = type.toUpperCase(java.util.Locale.ROOT);
        QuantPlan.FileType quantized = null;
        GgmlType t;
        if (upper.equals("F32") || upper.equals("F16") || upper.equals("BF16")) {
            t = GgmlType.valueOf(upper);
        } else {
            try {
                quantized = QuantPlan.FileType.valueOf(upper);
            } catch (IllegalArgumentException e) {
                throw new CliException("unknown --type " + type + "; use F32, F16, BF16, Q8_0, Q4_0, Q3_K, Q3_K_S, "
                        + "Q3_K_M, Q3_K_L, Q4_K, Q5_K, Q6_K or Q4_K_M");
            }
            // Quantized files are made as llama.cpp users make them: F16 weights, then the quantizer.
            t = GgmlType.F16;
        }
        SyntheticModel m = SyntheticModel.of(s).type(t).seed(seed).vocab(vocab);
        PrintWriter err = spec.commandLine().getErr();
        if (vocab == null) {
            err.println("note: no --vocab, writing a built-in byte-level SentencePiece vocabulary of " + s.vocab()
                    + " tokens (the real one is " + s.vocabFile() + ")");
        }
        long total = m.tensorBytes();
        int mib = (int) Math.max(1, total >> 20);
        ProgressBar bar = new ProgressBar(err, "synth " + s.name() + " (MiB)", mib,
                System.console() != null && System.console().isTerminal());
        AtomicLong done = new AtomicLong();
        Path target = quantized == null ? out : out.resolveSibling(out.getFileName() + ".f16.tmp");
        try {
            m.write(target, bytes -> bar.update((int) Math.min(mib, done.addAndGet(bytes) >> 20)));
            bar.update(mib);
            if (quantized != null) {
                QuantizeCommand.quantize(target, out, quantized, err,
                        System.console() != null && System.console().isTerminal());
            }
        } finally {
            if (quantized != null) {
                java.nio.file.Files.deleteIfExists(target);
            }
        }
        spec.commandLine().getOut().printf("wrote %s: %s %s, %,d parameters (%s)%n", out, s.name(),
                quantized != null ? quantized : t, s.parameterCount(), s.source());
        spec.commandLine().getOut().flush();
        return 0;
    }
}
