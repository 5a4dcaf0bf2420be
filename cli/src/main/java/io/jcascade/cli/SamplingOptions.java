package io.jcascade.cli;

import io.jcascade.engine.sampling.SamplingParams;
import picocli.CommandLine.Option;

/**
 * The sampling flags that {@code generate} and {@code chat} share (a picocli mixin), with
 * llama.cpp's defaults.
 *
 * <pre>{@code
 * @Mixin SamplingOptions sampling;
 * SamplingParams p = sampling.toParams();
 * }</pre>
 */
final class SamplingOptions {
    @Option(names = "--temperature", defaultValue = "0.8", paramLabel = "T",
            description = "sampling temperature; 0 is greedy (default: ${DEFAULT-VALUE})")
    float temperature;

    @Option(names = "--top-k", defaultValue = "40", paramLabel = "K", description = "0 = off (default: ${DEFAULT-VALUE})")
    int topK;

    @Option(names = "--top-p", defaultValue = "0.95", paramLabel = "P", description = "1 = off (default: ${DEFAULT-VALUE})")
    float topP;

    @Option(names = "--min-p", defaultValue = "0.05", paramLabel = "P", description = "0 = off (default: ${DEFAULT-VALUE})")
    float minP;

    @Option(names = "--repeat-penalty", defaultValue = "1.0", paramLabel = "R",
            description = "1 = off (default: ${DEFAULT-VALUE})")
    float repeatPenalty;

    @Option(names = "--repeat-last-n", defaultValue = "64", paramLabel = "N",
            description = "tokens the repetition penalty looks back over (default: ${DEFAULT-VALUE})")
    int repeatLastN;

    @Option(names = "--seed", paramLabel = "S", description = "random seed (default: a fresh one each run)")
    Long seed;

    SamplingParams toParams() {
        return new SamplingParams(temperature, topK, topP, minP, repeatPenalty, repeatLastN,
                seed != null ? seed : System.nanoTime());
    }
}
