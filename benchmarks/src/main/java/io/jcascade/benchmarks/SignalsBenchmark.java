package io.jcascade.benchmarks;

import io.jcascade.cascade.Policy;
import io.jcascade.cascade.Signal;
import io.jcascade.cascade.SignalAccumulator;
import io.jcascade.engine.GeneratedToken;
import io.jcascade.engine.GenerationParams;
import io.jcascade.engine.GenerationResult;
import io.jcascade.engine.Model;
import io.jcascade.engine.ModelOptions;
import io.jcascade.engine.sampling.SamplingParams;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The cost of the cascade's signals per token against one decode step of stories260K.
 *
 * <p>{@code signalsPerToken}: one token into a {@link SignalAccumulator} plus the early-exit
 * check, averaged over a 64-token generation (a fresh accumulator each one, as the cascade
 * does), the percentile included once at the end. {@code decodeStep}: a 64-token greedy
 * generation of stories260K from "Once upon a time" divided by 64 (the 5-token prompt is
 * processed in one batch, a small part of the total; one CPU thread). Both are per token, so
 * their ratio is the signals' share of decode time. Run from the repository root:
 *
 * <pre>
 * ./mvnw -q -pl benchmarks -am package -DskipTests
 * java --add-modules=jdk.incubator.vector --enable-native-access=ALL-UNNAMED -jar benchmarks/target/benchmarks.jar SignalsBenchmark
 * </pre>
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class SignalsBenchmark {
    static final int TOKENS = 64;
    static final String PROMPT = "Once upon a time";

    GeneratedToken[] tokens;
    Policy policy;
    Model model;
    GenerationParams params;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        tokens = new GeneratedToken[TOKENS];
        java.util.Random r = new java.util.Random(1);
        for (int i = 0; i < TOKENS; i++) {
            double p = 0.3 + 0.7 * r.nextDouble();
            tokens[i] = new GeneratedToken(i, "x", r.nextDouble(), p, p, (1 - p) * r.nextDouble());
        }
        policy = new Policy(Signal.MAX_ENTROPY, List.of(10.0), 3, true); // never crosses: every token is checked
        Path m = Path.of(System.getProperty("jcascade.model", "models/stories260K.gguf"));
        if (Files.exists(m)) {
            model = Model.load(m, ModelOptions.defaults().withThreads(1).withBackend("cpu"));
            params = GenerationParams.defaults().withMaxTokens(TOKENS).withSampling(SamplingParams.greedy());
            int n = model.generate(PROMPT, params).tokens().size();
            if (n != TOKENS) {
                throw new IllegalStateException("the decode benchmark needs " + TOKENS + " tokens, the model stopped at " + n);
            }
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (model != null) {
            model.close();
        }
    }

    @Benchmark
    @OperationsPerInvocation(TOKENS)
    public double signalsPerToken() {
        SignalAccumulator acc = new SignalAccumulator(3);
        boolean stop = false;
        for (GeneratedToken t : tokens) {
            acc.accept(t);
            stop |= policy.certain(acc, 0);
        }
        return acc.signals().entropyQ90() + (stop ? 1 : 0);
    }

    @Benchmark
    @OperationsPerInvocation(TOKENS)
    public double decodeStep() {
        if (model == null) {
            throw new IllegalStateException("models/stories260K.gguf not found: run from the repository root");
        }
        GenerationResult r = model.generate(PROMPT, params);
        return r.generateNanos();
    }
}
