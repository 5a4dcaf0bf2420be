package io.jcascade.cli;

import io.jcascade.engine.ModelOptions;
import io.jcascade.kernels.Backends;
import picocli.CommandLine.Option;

/**
 * How a command loads its model: backend, threads, context (a picocli mixin shared by
 * {@code generate} and {@code chat}).
 *
 * <pre>{@code
 * @Mixin ModelLoadOptions load;
 * try (Model m = Model.load(path, load.toModelOptions())) { ... }
 * }</pre>
 */
final class ModelLoadOptions {
    @Option(names = "--threads", defaultValue = "0", paramLabel = "N",
            description = "CPU threads; 0 = one per core (default: ${DEFAULT-VALUE})")
    int threads;

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "B",
            description = "cpu, cuda or auto (default: ${DEFAULT-VALUE})")
    String backend;

    @Option(names = "--ctx-size", defaultValue = "0", paramLabel = "N",
            description = "context length; 0 = the model's (default: ${DEFAULT-VALUE})")
    int contextLength;

    ModelOptions toModelOptions() {
        if (!Backends.NAMES.contains(backend)) {
            throw new JCascade.CliException("unknown --backend " + backend + "; choose cpu, cuda or auto");
        }
        if (threads < 0 || contextLength < 0) {
            throw new JCascade.CliException("--threads and --ctx-size must be >= 0");
        }
        return ModelOptions.defaults().withBackend(backend).withThreads(threads).withContextLength(contextLength);
    }
}
