package io.jcascade.engine;

import io.jcascade.engine.sampling.SamplingParams;
import java.util.List;

/**
 * What to generate: how many tokens at most, how to sample them, where to stop.
 *
 * <pre>{@code
 * GenerationParams p = GenerationParams.defaults()
 *         .withMaxTokens(128)
 *         .withSampling(SamplingParams.greedy())
 *         .withStop(List.of("\n\n"));
 * }</pre>
 *
 * @param maxTokens most tokens to generate (the end-of-sequence token counts as one)
 * @param sampling sampling settings; greedy when the temperature is 0
 * @param stop strings that end the generation; the result's text ends before the first one found
 * @param addSpecial whether to add the model's special tokens (BOS) to the prompt, as llama.cpp does
 */
public record GenerationParams(int maxTokens, SamplingParams sampling, List<String> stop, boolean addSpecial) {

    public GenerationParams {
        if (maxTokens < 0) {
            throw new IllegalArgumentException("maxTokens must be >= 0, got " + maxTokens);
        }
        stop = List.copyOf(stop);
        for (String s : stop) {
            if (s.isEmpty()) {
                throw new IllegalArgumentException("a stop string must not be empty");
            }
        }
    }

    /** 256 tokens, llama.cpp's default sampling, no stop strings, BOS added. */
    public static GenerationParams defaults() {
        return new GenerationParams(256, SamplingParams.defaults(), List.of(), true);
    }

    public GenerationParams withMaxTokens(int n) {
        return new GenerationParams(n, sampling, stop, addSpecial);
    }

    public GenerationParams withSampling(SamplingParams s) {
        return new GenerationParams(maxTokens, s, stop, addSpecial);
    }

    public GenerationParams withStop(List<String> s) {
        return new GenerationParams(maxTokens, sampling, s, addSpecial);
    }

    public GenerationParams withAddSpecial(boolean b) {
        return new GenerationParams(maxTokens, sampling, stop, b);
    }
}
