package io.jcascade.benchmarks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * End-to-end prefill and decode of one GGUF model, by jcascade and by llama.cpp in the same run,
 * on the same file, thread count and token ids. Scores are tokens per second
 * ({@code @OperationsPerInvocation} = tokens per call):
 *
 * <ul>
 * <li>{@code prefill}: a 512-token prompt from an empty cache.
 * <li>{@code decode}: 128 tokens generated greedily after a 128-token prompt (the prompt is
 * processed in an untimed per-call setup), never stopping at end-of-sequence.
 * </ul>
 *
 * <p>{@code model} is a path (relative to the working directory) or a comma-separated list via
 * {@code -p model=a.gguf,b.gguf}; {@code threads} 0 means one per available core, for both
 * engines. How each engine is driven, and what the llama.cpp figures include, is described in
 * {@link Engines}.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
// llama.cpp's binding leaves a native-attached thread behind after close(), so the forked VM
// never exits on its own: let JMH force it after 2 s instead of its default 30 s.
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
    "-Xss8m", "-Djmh.shutdownTimeout=2", "-Djmh.shutdownTimeout.step=1"})
public class EndToEndBenchmark {
    static final int PREFILL_TOKENS = 512;
    static final int DECODE_PROMPT_TOKENS = 128;
    static final int DECODE_TOKENS = 128;
    static final int CONTEXT = 1024;

    @Param({"models/stories260K.gguf"})
    public String model;

    @Param({"jcascade", "llamacpp"})
    public String engine;

    @Param({"0"})
    public int threads;

    Engines.Engine impl;
    int[] prefillPrompt;
    int[] decodePrompt;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        Path path = Path.of(model);
        if (!Files.isRegularFile(path)) {
            throw new IllegalStateException("no model file " + path.toAbsolutePath()
                    + " (run from the repository root, or pass -p model=FILE)");
        }
        int n = threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
        int vocab = Engines.vocabSize(path);
        prefillPrompt = Engines.prompt(PREFILL_TOKENS, vocab, 1);
        decodePrompt = Engines.prompt(DECODE_PROMPT_TOKENS, vocab, 2);
        impl = switch (engine) {
            case "jcascade" -> new Engines.Jcascade(path, n);
            case "llamacpp" -> new Engines.LlamaCpp(path, n, CONTEXT);
            default -> throw new IllegalArgumentException("engine is jcascade or llamacpp, not " + engine);
        };
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        impl.close();
    }

    @Benchmark
    @OperationsPerInvocation(PREFILL_TOKENS)
    public void prefill() {
        impl.prefill(prefillPrompt);
    }

    /** Per call, untimed: the 128-token prompt into a fresh cache, ready for {@link #decode}. */
    @State(Scope.Thread)
    public static class DecodeReady {
        @Setup(Level.Invocation)
        public void prepare(EndToEndBenchmark b) {
            b.impl.startDecode(b.decodePrompt, DECODE_TOKENS);
        }
    }

    @Benchmark
    @OperationsPerInvocation(DECODE_TOKENS)
    public void decode(DecodeReady ready) {
        impl.decode(DECODE_TOKENS);
    }
}
