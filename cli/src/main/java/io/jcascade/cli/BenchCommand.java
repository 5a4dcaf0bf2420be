package io.jcascade.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.jcascade.cli.JCascade.CliException;
import io.jcascade.engine.ModelOptions;
import io.jcascade.engine.model.Llama;
import io.jcascade.engine.model.ModelConfig;
import io.jcascade.gguf.GgufFile;
import io.jcascade.gguf.GgufTensor;
import io.jcascade.kernels.Backend;
import io.jcascade.kernels.Backends;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalDouble;
import java.util.Random;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code jcascade bench}: prefill and decode speed of a model, as {@code llama-bench} reports it.
 *
 * <p>One run processes a prompt of {@code --prompt-tokens} token ids from an empty cache (prefill),
 * then generates {@code --gen-tokens} tokens greedily after it, one forward pass each (decode),
 * never stopping at an end-of-sequence token. The prompt is fixed pseudo-random token ids (no
 * tokenizer, no text), so the figures do not depend on what the model would say. An untimed
 * warm-up run comes first (it lets the JIT compile the kernels), then {@code --repetitions} timed
 * runs; the figures are their mean and standard deviation.
 *
 * <p>Beside them it prints the decode ceiling: the backend's {@link Backend#measureBandwidth()
 * measured bandwidth} (the CPU's read bandwidth on all threads, a GPU's device copy bandwidth)
 * divided by the weight bytes one token reads ({@link Llama#weightBytesPerToken}), and decode's
 * share of it. {@code --no-bandwidth} skips that measurement. {@code --kernels} adds each weight
 * shape's product timed alone ({@link KernelBench}), with the bandwidth a one-token product reached.
 * {@code --sequences N} decodes N sequences together ({@link Llama#decode}); the decode figure is
 * then tokens/s over all of them, and the ceiling is one of steps (each reads the weights once).
 *
 * <pre>
 * ./jcascade bench --model models/stories260K.gguf --threads 2
 * ./jcascade bench --model model.gguf --prompt-tokens 512 --gen-tokens 128 --json
 * ./jcascade bench --model model.gguf --backend cuda --kernels
 * ./jcascade bench --model model.gguf --sequences 8
 * </pre>
 */
@Command(name = "bench", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Measure prefill and decode speed (tokens/s) of a model, like llama-bench.")
final class BenchCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, paramLabel = "FILE", description = "GGUF model file")
    Path model;

    @Option(names = "--threads", defaultValue = "0", paramLabel = "N",
            description = "CPU threads; 0 = one per core (default: ${DEFAULT-VALUE})")
    int threads;

    @Option(names = "--prompt-tokens", defaultValue = "512", paramLabel = "N",
            description = "prompt length for the prefill figure (default: ${DEFAULT-VALUE})")
    int promptTokens;

    @Option(names = "--gen-tokens", defaultValue = "128", paramLabel = "N",
            description = "tokens generated after the prompt for the decode figure (default: ${DEFAULT-VALUE})")
    int genTokens;

    @Option(names = "--repetitions", defaultValue = "3", paramLabel = "N",
            description = "timed runs after the warm-up run (default: ${DEFAULT-VALUE})")
    int repetitions;

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "B",
            description = "cpu, cuda or auto (default: ${DEFAULT-VALUE})")
    String backend;

    @Option(names = "--json", description = "print one JSON line instead of the table")
    boolean json;

    @Option(names = "--bandwidth", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "measure the backend's memory bandwidth after the runs and report decode against the "
                    + "ceiling it sets (default: on; --no-bandwidth skips it)")
    boolean bandwidth;

    @Option(names = "--kernels", description = "also time each weight shape's product alone (one token, and a "
            + "prompt of --prompt-tokens up to 512), with the bandwidth each one-token product reached")
    boolean kernels;

    @Option(names = "--sequences", defaultValue = "1", paramLabel = "N",
            description = "decode N sequences together (Llama.decode: one step reads the weights once for all); "
                    + "the decode figure is then tokens/s over all of them (default: ${DEFAULT-VALUE})")
    int sequences;

    @Override
    public Integer call() throws Exception {
        if (sequences < 1) {
            throw new CliException("--sequences must be at least 1");
        }
        if (promptTokens < 1 || genTokens < 1) {
            throw new CliException("--prompt-tokens and --gen-tokens must be at least 1");
        }
        if (threads < 0) {
            throw new CliException("--threads must be >= 0");
        }
        if (repetitions < 1) {
            throw new CliException("--repetitions must be at least 1");
        }
        if (!Backends.NAMES.contains(backend)) {
            throw new CliException("unknown --backend " + backend + "; choose cpu, cuda or auto");
        }
        ModelOptions options = ModelOptions.defaults().withBackend(backend).withThreads(threads);
        int nThreads = options.resolvedThreads();
        try (GgufFile gguf = GgufFile.open(model)) {
            ModelConfig config = ModelConfig.from(gguf);
            if (promptTokens + genTokens > config.contextLength()) {
                throw new CliException("--prompt-tokens + --gen-tokens = " + (promptTokens + genTokens)
                        + " exceeds the model's context of " + config.contextLength());
            }
            try (Backend b = Backends.create(backend, nThreads)) {
                Llama llama = Llama.load(gguf, config, b);
                int[] prompt = prompt(promptTokens, config.vocabSize());
                run(llama, prompt, options.batchSize()); // warm-up, not reported
                double[] prefill = new double[repetitions];
                double[] decode = new double[repetitions];
                for (int i = 0; i < repetitions; i++) {
                    long[] nanos = run(llama, prompt, options.batchSize());
                    prefill[i] = promptTokens / (nanos[0] / 1e9);
                    decode[i] = (double) genTokens * sequences / (nanos[1] / 1e9);
                }
                OptionalDouble bytesPerSecond = bandwidth ? b.measureBandwidth() : OptionalDouble.empty();
                List<KernelBench.Result> products = new ArrayList<>();
                double[] selection = new double[SELECTION_K.length];
                if (kernels) {
                    for (KernelBench.Shape shape : KernelBench.shapes(gguf)) {
                        products.add(KernelBench.time(b, shape, Math.min(promptTokens, 512)));
                    }
                    for (int i = 0; i < SELECTION_K.length; i++) {
                        selection[i] = KernelBench.timeSelection(b, config.vocabSize(), SELECTION_K[i],
                                SELECTION_PENALTY[i]);
                    }
                }
                report(b.name(), nThreads, prefill, decode, gguf, bytesPerSecond, products, config.vocabSize(),
                        selection);
            }
        }
        return 0;
    }

    /** The selections {@code --kernels} times: greedy, and llama.cpp's default top-k with a penalty. */
    private static final int[] SELECTION_K = {1, 40};
    private static final float[] SELECTION_PENALTY = {1f, 1.1f};

    /**
     * One run: the prompt from an empty cache, then {@code genTokens} greedy tokens; the two times
     * in ns. With several sequences, each gets the prompt (the first one's prefill is timed), then
     * they decode together.
     */
    private long[] run(Llama llama, int[] prompt, int batchSize) {
        if (sequences > 1) {
            return runTogether(llama, prompt, batchSize);
        }
        Llama.State state = llama.newState(prompt.length + genTokens, batchSize);
        long start = System.nanoTime();
        // The greedy token is found where the logits are (on a GPU, one int crosses the bus).
        int[] next = {llama.forwardGreedy(state, prompt, prompt.length, 0)};
        long prefilled = System.nanoTime();
        for (int i = 0; i < genTokens; i++) {
            // Greedy, and whatever the token is (end-of-sequence included) it goes on.
            next[0] = llama.forwardGreedy(state, next, 1, prompt.length + i);
        }
        long end = System.nanoTime();
        return new long[] {prefilled - start, end - prefilled};
    }

    private long[] runTogether(Llama llama, int[] prompt, int batchSize) {
        Llama.State[] states = new Llama.State[sequences];
        int[] next = new int[sequences];
        int[] positions = new int[sequences];
        long start = System.nanoTime();
        long prefilled = 0;
        for (int i = 0; i < sequences; i++) {
            states[i] = llama.newState(prompt.length + genTokens, batchSize);
            next[i] = llama.forwardGreedy(states[i], prompt, prompt.length, 0);
            if (i == 0) {
                prefilled = System.nanoTime();
            }
        }
        Llama.Batch batch = llama.newBatch(sequences);
        Backend b = llama.backend();
        int vocab = llama.config().vocabSize();
        long decodeStart = System.nanoTime();
        for (int t = 0; t < genTokens; t++) {
            Arrays.fill(positions, prompt.length + t);
            llama.decode(batch, states, next, positions, sequences);
            for (int i = 0; i < sequences; i++) {
                next[i] = b.argmax(states[i].logits(), vocab);
            }
        }
        long end = System.nanoTime();
        return new long[] {prefilled - start, end - decodeStart};
    }

    private void report(String backendName, int nThreads, double[] prefill, double[] decode, GgufFile gguf,
            OptionalDouble bytesPerSecond, List<KernelBench.Result> products, int vocab, double[] selection)
            throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        long weightBytes = Llama.weightBytesPerToken(gguf);
        if (json) {
            ObjectNode o = new ObjectMapper().createObjectNode();
            o.put("prefill_tokens_per_s", round(mean(prefill)));
            o.put("decode_tokens_per_s", round(mean(decode)));
            o.put("prompt_tokens", promptTokens);
            o.put("gen_tokens", genTokens);
            if (sequences > 1) {
                o.put("sequences", sequences);
                o.put("decode_steps_per_s", round(mean(decode) / sequences));
            }
            o.put("threads", nThreads);
            o.put("backend", backendName);
            o.put("weight_bytes_per_token", weightBytes);
            if (bytesPerSecond.isPresent()) {
                double ceiling = bytesPerSecond.getAsDouble() / weightBytes;
                o.put("bandwidth_gb_per_s", round(bytesPerSecond.getAsDouble() / 1e9));
                o.put("decode_ceiling_tokens_per_s", round(ceiling));
                // a step reads the weights once, whatever the number of sequences
                o.put("decode_share_of_ceiling", Math.round(mean(decode) / sequences / ceiling * 1000) / 1000.0);
            }
            if (kernels) {
                ArrayNode list = o.putArray("kernels");
                for (KernelBench.Result r : products) {
                    ObjectNode k = list.addObject();
                    k.put("type", r.shape().type().name());
                    k.put("rows", r.shape().rows());
                    k.put("cols", r.shape().cols());
                    k.put("count", r.shape().count());
                    k.put("weight_bytes", r.shape().bytes());
                    k.put("decode_us", round(r.decodeMillis() * 1e3));
                    k.put("decode_gb_per_s", round(r.decodeBytesPerSecond() / 1e9));
                    if (bytesPerSecond.isPresent()) {
                        k.put("decode_share_of_bandwidth",
                                Math.round(r.decodeBytesPerSecond() / bytesPerSecond.getAsDouble() * 1000) / 1000.0);
                    }
                    k.put("prefill_tokens", r.prefillTokens());
                    k.put("prefill_us", round(r.prefillMillis() * 1e3));
                    k.put("prefill_gflop_per_s", round(r.prefillFlopsPerSecond() / 1e9));
                }
                ArrayNode sel = o.putArray("selection");
                for (int i = 0; i < SELECTION_K.length; i++) {
                    ObjectNode s = sel.addObject();
                    s.put("vocab", vocab);
                    s.put("k", SELECTION_K[i]);
                    s.put("penalty", SELECTION_PENALTY[i]);
                    s.put("us", round(selection[i] * 1e3));
                }
            }
            out.println(new ObjectMapper().writeValueAsString(o));
        } else {
            long bytes = 0;
            for (GgufTensor t : gguf.tensors()) {
                bytes += t.byteSize();
            }
            out.printf("model: %s (%.1f MiB)  backend: %s  threads: %d%n", model, bytes / 1048576.0, backendName,
                    nThreads);
            out.printf("%-8s %10s  %s%n", "test", "tokens/s", "(mean ± sd of " + repetitions
                    + " runs after 1 warm-up run)");
            out.printf("%-8s %10.2f ± %.2f%n", "pp" + promptTokens, mean(prefill), sd(prefill));
            out.printf("%-8s %10.2f ± %.2f%s%n", "tg" + genTokens + (sequences > 1 ? " x" + sequences : ""),
                    mean(decode), sd(decode), sequences > 1 ? String.format("  (%d sequences together: %.2f steps/s)",
                            sequences, mean(decode) / sequences) : "");
            if (bytesPerSecond.isPresent()) {
                double ceiling = bytesPerSecond.getAsDouble() / weightBytes;
                out.printf("decode ceiling %.2f %s/s = %.1f GB/s %s ÷ %.3f GB of weights per token; tg%d at %.0f %% of it%n",
                        ceiling, sequences > 1 ? "steps" : "tokens", bytesPerSecond.getAsDouble() / 1e9,
                        backendName.equals("cpu") ? "read on " + nThreads + " threads" : "device copy",
                        weightBytes / 1e9, genTokens, 100 * mean(decode) / sequences / ceiling);
            }
            if (kernels) {
                out.printf("%nproducts alone (decode: 1 token; prefill: %d tokens)%n",
                        products.isEmpty() ? 0 : products.get(0).prefillTokens());
                out.printf("%-7s %15s %5s %10s %9s %9s %11s %10s%n", "type", "rows x cols", "count", "decode µs",
                        "GB/s", "of bw", "prefill ms", "GFLOP/s");
                for (KernelBench.Result r : products) {
                    out.printf("%-7s %15s %5d %10.1f %9.1f %9s %11.3f %10.1f%n", r.shape().type(),
                            r.shape().rows() + " x " + r.shape().cols(), r.shape().count(), r.decodeMillis() * 1e3,
                            r.decodeBytesPerSecond() / 1e9,
                            bytesPerSecond.isPresent()
                                    ? String.format("%.0f %%", 100 * r.decodeBytesPerSecond() / bytesPerSecond.getAsDouble())
                                    : "-",
                            r.prefillMillis(), r.prefillFlopsPerSecond() / 1e9);
                }
                out.printf("%ntoken selection over %d logits (Backend.selectTokens: statistics + k best)%n", vocab);
                for (int i = 0; i < SELECTION_K.length; i++) {
                    out.printf("k %4d  %-28s %10.1f µs%n", SELECTION_K[i], SELECTION_PENALTY[i] == 1f ? "no penalty"
                            : String.format("penalty %.1f on 64 tokens", SELECTION_PENALTY[i]), selection[i] * 1e3);
                }
            }
        }
        out.flush();
    }

    /** Fixed pseudo-random token ids, none below 3 (unk, bos, eos in most vocabularies) nor among Llama 3's special tokens. */
    static int[] prompt(int n, int vocabSize) {
        Random r = new Random(1);
        int hi = Math.min(vocabSize, 128000);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = hi > 3 ? 3 + r.nextInt(hi - 3) : r.nextInt(vocabSize);
        }
        return ids;
    }

    private static double mean(double[] v) {
        return Arrays.stream(v).average().orElse(0);
    }

    private static double sd(double[] v) {
        if (v.length < 2) {
            return 0;
        }
        double m = mean(v);
        return Math.sqrt(Arrays.stream(v).map(x -> (x - m) * (x - m)).sum() / (v.length - 1));
    }

    private static double round(double v) {
        return Math.round(v * 100) / 100.0;
    }
}
