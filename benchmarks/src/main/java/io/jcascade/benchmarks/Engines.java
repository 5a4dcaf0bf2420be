package io.jcascade.benchmarks;

import de.kherud.llama.InferenceParameters;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.LogLevel;
import de.kherud.llama.ModelParameters;
import de.kherud.llama.TokenPrompt;
import de.kherud.llama.args.LogFormat;
import io.jcascade.engine.ModelOptions;
import io.jcascade.engine.model.Llama;
import io.jcascade.engine.model.ModelConfig;
import io.jcascade.gguf.GgufFile;
import io.jcascade.kernels.Backend;
import io.jcascade.kernels.Backends;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Random;

/**
 * The two engines the end-to-end benchmark runs on the same GGUF file: jcascade (its forward pass
 * driven directly) and llama.cpp (de.kherud:llama, the JNI build of its server on the CPU).
 */
final class Engines {
    private Engines() {
    }

    /** One engine with one model loaded. */
    interface Engine extends AutoCloseable {
        /** Processes {@code prompt} from an empty cache and produces the logits of its last token. */
        void prefill(int[] prompt);

        /** Processes {@code prompt} (untimed part of a decode run); the cache is then ready to decode after it. */
        void startDecode(int[] prompt, int genTokens);

        /**
         * Generates {@code n} tokens greedily after the prompt of {@link #startDecode}, never
         * stopping at an end-of-sequence token: {@code n} forward passes of one token each.
         */
        void decode(int n);

        @Override
        void close();
    }

    /** {@code n} token ids of a fixed pseudo-random prompt, none below 3 (unk, bos, eos in most vocabularies). */
    static int[] prompt(int n, int vocabSize, long seed) {
        Random r = new Random(seed);
        int hi = Math.min(vocabSize, 128000); // below Llama 3's special tokens
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = 3 + r.nextInt(hi - 3);
        }
        return ids;
    }

    static int vocabSize(Path model) throws IOException {
        try (GgufFile g = GgufFile.open(model)) {
            return ModelConfig.from(g).vocabSize();
        }
    }

    /**
     * jcascade through {@link Llama} directly, because {@code Model.generate} stops at an
     * end-of-sequence token and has no option to ignore it. Each decode step is the forward pass
     * of one token plus an argmax over the logits; the sampler, entropy statistics and detokenizer
     * that {@code Model.generate} adds per token are left out (a few microseconds against
     * milliseconds for a 1B model).
     */
    static final class Jcascade implements Engine {
        final GgufFile gguf;
        final Backend backend;
        final Llama llama;
        final int batch;
        final float[] logits;
        Llama.State state;
        int pos;

        Jcascade(Path model, int threads) throws IOException {
            gguf = GgufFile.open(model);
            backend = Backends.create("cpu", threads);
            llama = Llama.load(gguf, ModelConfig.from(gguf), backend);
            batch = ModelOptions.defaults().batchSize();
            logits = new float[llama.config().vocabSize()];
        }

        @Override
        public void prefill(int[] prompt) {
            Llama.State s = llama.newState(prompt.length + 1, batch);
            llama.forward(s, prompt, prompt.length, 0, logits);
        }

        @Override
        public void startDecode(int[] prompt, int genTokens) {
            state = llama.newState(prompt.length + genTokens, batch);
            llama.forward(state, prompt, prompt.length, 0, logits);
            pos = prompt.length;
        }

        @Override
        public void decode(int n) {
            int[] next = new int[1];
            for (int i = 0; i < n; i++) {
                next[0] = argmax(logits);
                llama.forward(state, next, 1, pos++, logits);
            }
        }

        @Override
        public void close() {
            backend.close();
            gguf.close();
        }
    }

    static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    /**
     * llama.cpp through de.kherud:llama. The binding returns text only, not llama.cpp's own
     * timings, so each figure is the wall time of a {@code complete} call:
     * <ul>
     * <li>prefill: a 1-token completion of the prompt with {@code cache_prompt} off: the prompt's
     * forward pass plus one sampling step and the binding's request overhead (JSON, a task queue;
     * well under a millisecond).
     * <li>decode: {@link #startDecode} runs a 1-token completion of the prompt with
     * {@code cache_prompt} on, so the slot's KV cache holds it; the timed call then sends the same
     * prompt again, which llama.cpp takes from the cache except its last token (it always
     * re-evaluates one to get logits), and generates {@code n} tokens: 1 + (n - 1) = n forward
     * passes of one token, as jcascade's decode does, with {@code ignore_eos} and greedy sampling.
     * </ul>
     */
    static final class LlamaCpp implements Engine {
        static {
            LlamaModel.setLogger(LogFormat.TEXT, (level, msg) -> {
                if (level == LogLevel.ERROR) {
                    System.err.print("llama.cpp: " + msg);
                }
            });
        }

        final LlamaModel model;
        int[] decodePrompt;

        LlamaCpp(Path model, int threads, int contextLength) {
            this.model = new LlamaModel(new ModelParameters().setModel(model.toString()).setCtxSize(contextLength)
                    .setThreads(threads).setThreadsBatch(threads).setBatchSize(512).setUbatchSize(512)
                    .setParallel(1).setGpuLayers(0));
        }

        static InferenceParameters params(int[] prompt, int n, boolean cache) {
            InferenceParameters p = new InferenceParameters("").setNPredict(n).setTemperature(0).setTopK(1)
                    .setRepeatPenalty(1f).setIgnoreEos(true).setSeed(42).setCachePrompt(cache);
            return TokenPrompt.set(p, prompt);
        }

        @Override
        public void prefill(int[] prompt) {
            model.complete(params(prompt, 1, false));
        }

        @Override
        public void startDecode(int[] prompt, int genTokens) {
            decodePrompt = prompt;
            model.complete(params(prompt, 1, true));
        }

        @Override
        public void decode(int n) {
            model.complete(params(decodePrompt, n, true));
        }

        @Override
        public void close() {
            model.close();
        }
    }
}
