package io.jcascade.engine;

/**
 * How to load a model: which backend, how many threads, how much context.
 *
 * <pre>{@code
 * ModelOptions opts = ModelOptions.defaults().withThreads(4).withContextLength(2048);
 * try (Model m = Model.load(Path.of("models/stories260K.gguf"), opts)) { ... }
 * }</pre>
 *
 * @param backend {@code cpu} or {@code auto} (picks the best available; the CPU in this version)
 * @param threads worker threads for the CPU kernels; 0 means one per available core
 * @param contextLength largest sequence (prompt plus generated tokens) a generation may reach;
 *     0 means the model's trained context. The KV cache of each generation is sized to what it
 *     needs up to this bound.
 * @param batchSize prompt tokens processed together in one forward pass
 */
public record ModelOptions(String backend, int threads, int contextLength, int batchSize) {

    public ModelOptions {
        if (threads < 0 || contextLength < 0 || batchSize <= 0) {
            throw new IllegalArgumentException("threads and contextLength must be >= 0, batchSize > 0");
        }
        if (!backend.equals("cpu") && !backend.equals("auto") && !backend.equals("cuda")) {
            throw new IllegalArgumentException("unknown backend \"" + backend + "\"; choose cpu, cuda or auto");
        }
    }

    public static ModelOptions defaults() {
        return new ModelOptions("auto", 0, 0, 256);
    }

    public ModelOptions withBackend(String b) {
        return new ModelOptions(b, threads, contextLength, batchSize);
    }

    public ModelOptions withThreads(int t) {
        return new ModelOptions(backend, t, contextLength, batchSize);
    }

    public ModelOptions withContextLength(int n) {
        return new ModelOptions(backend, threads, n, batchSize);
    }

    public ModelOptions withBatchSize(int n) {
        return new ModelOptions(backend, threads, contextLength, n);
    }

    /** The thread count with 0 resolved to the number of available cores. */
    public int resolvedThreads() {
        return threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
    }
}
