package io.jcascade.cli;

import io.jcascade.engine.synth.SynthShape;
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

    @Option(names = "--type", defaultValue = "F32", description = "F32, F16 or BF16 (default ${DEFAULT-VALUE})")
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
        SynthShape s = SynthShape.named(shape).orElseThrow(() -> new IllegalArgumentException(
                "unknown shape \"" + shape + "\"; known: "
                        + String.join(", ", SynthShape.all().stream().map(SynthShape::name).toList())));
        GgmlType t;
        try {
            t = GgmlType.valueOf(type.toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown --type " + type + "; use F32, F16 or BF16");
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
        m.write(out, bytes -> bar.update((int) Math.min(mib, done.addAndGet(bytes) >> 20)));
        bar.update(mib);
        spec.commandLine().getOut().printf("wrote %s: %s %s, %,d parameters (%s)%n", out, s.name(), t,
                s.parameterCount(), s.source());
        spec.commandLine().getOut().flush();
        return 0;
    }
}
