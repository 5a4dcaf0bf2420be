package io.jcascade.cascade;

import io.jcascade.engine.CancelToken;
import io.jcascade.engine.GenerationParams;
import io.jcascade.engine.GenerationResult;
import io.jcascade.engine.Model;
import io.jcascade.engine.ModelOptions;
import io.jcascade.engine.TokenListener;
import io.jcascade.engine.sampling.SamplingParams;
import java.io.IOException;

/** A {@link LocalGenerator} backed by the engine's {@link Model}; the only class that loads models. */
final class EngineGenerator implements LocalGenerator, AutoCloseable {
    private final Model model;
    private final GenerationParams params;

    private EngineGenerator(Model model, GenerationParams params) {
        this.model = model;
        this.params = params;
    }

    static EngineGenerator load(TierConfig c) throws IOException {
        ModelOptions options = ModelOptions.defaults().withBackend(c.backend()).withThreads(c.threads())
                .withContextLength(c.contextLength());
        SamplingParams sampling = c.temperature() <= 0 ? SamplingParams.greedy()
                : new SamplingParams((float) c.temperature(), c.topK(), (float) c.topP(), (float) c.minP(),
                        (float) c.repeatPenalty(), c.repeatLastN(), c.seed());
        GenerationParams params = GenerationParams.defaults().withMaxTokens(c.maxTokens()).withSampling(sampling)
                .withStop(c.stop());
        return new EngineGenerator(Model.load(c.modelPath(), options), params);
    }

    @Override
    public GenerationResult generate(String prompt, TokenListener listener, CancelToken cancel) {
        return model.generate(prompt, params, listener, cancel);
    }

    @Override
    public void close() {
        model.close();
    }
}
