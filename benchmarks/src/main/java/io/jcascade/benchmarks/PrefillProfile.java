package io.jcascade.benchmarks;

import io.jcascade.engine.model.Llama;
import io.jcascade.engine.model.ModelConfig;
import io.jcascade.gguf.GgufFile;
import io.jcascade.kernels.Backends;
import java.nio.file.Path;
import java.util.Map;

/**
 * Where a prompt's forward pass goes: as {@link DecodeProfile}, for one batch of N prompt tokens
 * (random ids, one forward pass, the engine's batch size unless {@code -Dbatch=} says otherwise),
 * each operation's wall time summed over the layers. Not JMH: for finding what to optimize.
 *
 * <pre>{@code
 * java --add-modules=jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
 *     -cp benchmarks/target/benchmarks.jar io.jcascade.benchmarks.PrefillProfile MODEL.gguf THREADS 512 [ROUNDS]
 * }</pre>
 *
 * Prints the tokens/s of each round and the last round's time per operation.
 */
public final class PrefillProfile {

    private PrefillProfile() {
    }

    public static void main(String[] args) throws Exception {
        Path model = Path.of(args[0]);
        int threads = Integer.parseInt(args[1]);
        int n = Integer.parseInt(args[2]);
        int rounds = args.length > 3 ? Integer.parseInt(args[3]) : 3;
        try (GgufFile gguf = GgufFile.open(model); DecodeProfile.Timed backend = new DecodeProfile.Timed(Backends.create("cpu", threads))) {
            Llama llama = Llama.load(gguf, ModelConfig.from(gguf), backend);
            float[] logits = new float[llama.config().vocabSize()];
            int[] prompt = new int[n];
            java.util.Random rnd = new java.util.Random(1);
            for (int i = 0; i < n; i++) prompt[i] = 1 + rnd.nextInt(30000);
            for (int round = 0; round < rounds; round++) {
                Llama.State s = llama.newState(n + 8, Integer.getInteger("batch", io.jcascade.engine.ModelOptions.defaults().batchSize()));
                backend.totals.clear();
                long start = System.nanoTime();
                llama.forward(s, prompt, n, 0, logits);
                long total = System.nanoTime() - start;
                System.out.printf("round %d: %.1f tokens/s%n", round, n / (total / 1e9));
                if (round < rounds - 1) continue;
                long sum = 0;
                for (Map.Entry<String, long[]> e : backend.totals.entrySet()) {
                    sum += e.getValue()[0];
                    System.out.printf("  %-60s %8.1f ms %5.1f %%  (%d calls)%n", e.getKey(),
                            e.getValue()[0] / 1e6, 100.0 * e.getValue()[0] / total, e.getValue()[1]);
                }
                System.out.printf("  other %8.1f ms%n", (total - sum) / 1e6);
            }
        }
    }
}
