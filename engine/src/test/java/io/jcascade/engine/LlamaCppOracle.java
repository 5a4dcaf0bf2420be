package io.jcascade.engine;

import de.kherud.llama.InferenceParameters;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.LogLevel;
import de.kherud.llama.ModelParameters;
import de.kherud.llama.args.LogFormat;
import java.nio.file.Path;

/**
 * llama.cpp itself (the de.kherud:llama JNI build), opened on the same GGUF file as jcascade:
 * the reference every agreement test compares with.
 */
public final class LlamaCppOracle implements AutoCloseable {
    static {
        // llama.cpp logs every load at length; keep only its errors.
        LlamaModel.setLogger(LogFormat.TEXT, (level, msg) -> {
            if (level == LogLevel.ERROR) {
                System.err.print("llama.cpp: " + msg);
            }
        });
    }

    private final LlamaModel model;

    public LlamaCppOracle(Path gguf, int contextLength) {
        this.model = new LlamaModel(new ModelParameters().setModel(gguf.toString()).setCtxSize(contextLength)
                .setThreads(2).setThreadsBatch(2).setBatchSize(512).setGpuLayers(0));
    }

    /** Greedy completion of {@code prompt} (BOS added, as jcascade does), at most {@code maxTokens} tokens. */
    public String greedy(String prompt, int maxTokens) {
        InferenceParameters p = new InferenceParameters(prompt).setTemperature(0).setTopK(1).setRepeatPenalty(1f)
                .setNPredict(maxTokens).setSeed(42).setCachePrompt(false);
        return model.complete(p);
    }

    /** llama.cpp's detokenization of {@code ids} (pieces concatenated). */
    public String decode(int[] ids) {
        return model.decode(ids);
    }

    /** llama.cpp's tokenization (adds BOS when the model asks for it). */
    public int[] encode(String text) {
        return model.encode(text);
    }

    @Override
    public void close() {
        model.close();
    }
}
