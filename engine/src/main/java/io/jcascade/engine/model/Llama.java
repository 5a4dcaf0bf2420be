package io.jcascade.engine.model;

import io.jcascade.engine.UnsupportedModelException;
import io.jcascade.gguf.GgufFile;
import io.jcascade.gguf.GgufFormatException;
import io.jcascade.gguf.GgufTensor;
import io.jcascade.kernels.Backend;
import io.jcascade.kernels.Backend.Tensor;
import io.jcascade.kernels.Backend.Weight;
import io.jcascade.kernels.WeightMatrix;
import java.util.Arrays;
import java.util.Optional;

/**
 * The Llama forward pass (Llama 1/2/3, Mistral, TinyLlama and every model that llama.cpp files
 * under {@code general.architecture = llama}), written once against {@link Backend} so that the
 * same code runs on every backend.
 *
 * <pre>
 * x = embed(tokens)
 * for each layer:
 *     h = rmsnorm(x) ; q, k, v = Wq h, Wk h, Wv h ; rope(q, k)
 *     x += Wo · attention(q, k, v)             (causal, grouped-query, KV cache)
 *     h = rmsnorm(x) ; x += Wdown · (silu(Wgate h) * Wup h)
 * logits = Wout · rmsnorm(x[last])
 * </pre>
 *
 * <p>The weights are immutable and shared; each generation owns a {@link State} (KV cache and
 * scratch), so several threads can generate from one model at once.
 *
 * <pre>{@code
 * Llama llama = Llama.load(gguf, ModelConfig.from(gguf), backend);
 * Llama.State state = llama.newState(256, 64);
 * float[] logits = new float[llama.config().vocabSize()];
 * llama.forward(state, promptIds, promptIds.length, 0, logits);
 * }</pre>
 */
public final class Llama {

    /** The weights of one transformer block. */
    record Layer(Weight attnNorm, Weight wq, Weight wk, Weight wv, Weight wo,
                 Weight ffnNorm, Weight gate, Weight up, Weight down) {}

    private final ModelConfig config;
    private final Backend backend;
    private final Weight tokenEmbedding;
    private final Layer[] layers;
    private final Weight outputNorm;
    private final Weight output;
    private final Backend.Rope rope;

    private Llama(ModelConfig config, Backend backend, Weight tokenEmbedding, Layer[] layers, Weight outputNorm,
            Weight output) {
        this.config = config;
        this.backend = backend;
        this.tokenEmbedding = tokenEmbedding;
        this.layers = layers;
        this.outputNorm = outputNorm;
        this.output = output;
        this.rope = new Backend.Rope(config.ropeDims(), config.ropeBase(), null, config.ropeNeox());
    }

    public ModelConfig config() {
        return config;
    }

    public Backend backend() {
        return backend;
    }

    /**
     * Binds the tensors of a Llama GGUF file to the backend, checking every name and shape first.
     *
     * @throws UnsupportedModelException if a tensor is missing or has the wrong shape or an unsupported type
     */
    public static Llama load(GgufFile gguf, ModelConfig c, Backend backend)
            throws UnsupportedModelException, GgufFormatException {
        Weight embd = weight(gguf, backend, "token_embd.weight", c.vocabSize(), c.dim());
        Layer[] layers = new Layer[c.layers()];
        for (int i = 0; i < c.layers(); i++) {
            String b = "blk." + i + ".";
            layers[i] = new Layer(
                    weight(gguf, backend, b + "attn_norm.weight", 1, c.dim()),
                    weight(gguf, backend, b + "attn_q.weight", c.heads() * c.headDim(), c.dim()),
                    weight(gguf, backend, b + "attn_k.weight", c.kvDim(), c.dim()),
                    weight(gguf, backend, b + "attn_v.weight", c.kvDim(), c.dim()),
                    weight(gguf, backend, b + "attn_output.weight", c.dim(), c.heads() * c.headDim()),
                    weight(gguf, backend, b + "ffn_norm.weight", 1, c.dim()),
                    weight(gguf, backend, b + "ffn_gate.weight", c.ffnDim(), c.dim()),
                    weight(gguf, backend, b + "ffn_up.weight", c.ffnDim(), c.dim()),
                    weight(gguf, backend, b + "ffn_down.weight", c.dim(), c.ffnDim()));
        }
        Weight norm = weight(gguf, backend, "output_norm.weight", 1, c.dim());
        // Files with tied embeddings have no output.weight: the embedding table doubles as the output head.
        Weight out = gguf.findTensor("output.weight").isPresent()
                ? weight(gguf, backend, "output.weight", c.vocabSize(), c.dim())
                : embd;
        return new Llama(c, backend, embd, layers, norm, out);
    }

    private static Weight weight(GgufFile gguf, Backend backend, String name, int rows, int cols)
            throws UnsupportedModelException {
        Optional<GgufTensor> found = gguf.findTensor(name);
        if (found.isEmpty()) {
            throw new UnsupportedModelException("tensor \"" + name + "\" is missing from the model file");
        }
        GgufTensor t = found.get();
        if (t.rowLength() != cols || t.rowCount() != rows) {
            throw new UnsupportedModelException("tensor \"" + name + "\" has shape " + Arrays.toString(t.shape())
                    + ", expected [" + cols + (rows > 1 ? ", " + rows : "") + "] from the model's hyper-parameters");
        }
        try {
            return backend.weight(WeightMatrix.of(t));
        } catch (UnsupportedOperationException e) {
            throw new UnsupportedModelException("tensor \"" + name + "\": " + e.getMessage());
        }
    }

    /**
     * Per-generation state: the KV cache for {@code capacity} positions and scratch buffers for
     * batches of up to {@code maxBatch} tokens. Not thread-safe; one per concurrent generation.
     */
    public final class State {
        final Backend.KvCache cache;
        final int maxBatch;
        final Tensor x;      // residual stream, [batch][dim]
        final Tensor xb;     // normed input / block output, [batch][dim]
        final Tensor q;      // [batch][heads * headDim]
        final Tensor k;      // [batch][kvDim]
        final Tensor v;      // [batch][kvDim]
        final Tensor att;    // attention output, [batch][heads * headDim]
        final Tensor hb;     // ffn gate, then silu(gate) * up, [batch][ffnDim]
        final Tensor hb2;    // ffn up, [batch][ffnDim]
        final Tensor last;   // last token's residual, [dim]
        final Tensor logits; // [vocab]

        State(int capacity, int maxBatch) {
            ModelConfig c = config;
            int qDim = c.heads() * c.headDim();
            this.cache = backend.kvCache(c.layers(), capacity, c.kvDim());
            this.maxBatch = maxBatch;
            this.x = backend.tensor(maxBatch * c.dim());
            this.xb = backend.tensor(maxBatch * Math.max(c.dim(), qDim));
            this.q = backend.tensor(maxBatch * qDim);
            this.k = backend.tensor(maxBatch * c.kvDim());
            this.v = backend.tensor(maxBatch * c.kvDim());
            this.att = backend.tensor(maxBatch * qDim);
            this.hb = backend.tensor(maxBatch * c.ffnDim());
            this.hb2 = backend.tensor(maxBatch * c.ffnDim());
            this.last = backend.tensor(c.dim());
            this.logits = backend.tensor(c.vocabSize());
        }

        /** Positions the KV cache can hold. */
        public int capacity() {
            return cache.capacity();
        }
    }

    /** A fresh state for a sequence of up to {@code capacity} positions, processing prompts {@code maxBatch} at a time. */
    public State newState(int capacity, int maxBatch) {
        if (capacity <= 0 || maxBatch <= 0) {
            throw new IllegalArgumentException("capacity and maxBatch must be positive");
        }
        return new State(capacity, Math.min(maxBatch, capacity));
    }

    /**
     * Runs {@code n} tokens at positions {@code startPos..startPos+n-1} through the model, in
     * batches of the state's size, and writes the logits of the last one into {@code logits}.
     */
    public void forward(State s, int[] tokens, int n, int startPos, float[] logits) {
        if (startPos + n > s.capacity()) {
            throw new IllegalArgumentException("positions up to " + (startPos + n) + " do not fit the KV cache of "
                    + s.capacity());
        }
        int done = 0;
        int[] chunk = tokens;
        while (done < n) {
            int b = Math.min(s.maxBatch, n - done);
            if (done > 0) {
                chunk = Arrays.copyOfRange(tokens, done, done + b);
            }
            forwardBatch(s, chunk, b, startPos + done);
            done += b;
        }
        ModelConfig c = config;
        backend.copyRow(s.x, lastRowOfLastBatch(n, s.maxBatch), s.last, c.dim());
        backend.rmsNorm(s.last, outputNorm, s.last, 1, c.rmsEps());
        backend.matmul(output, s.last, s.logits, 1);
        backend.read(s.logits, 0, logits, 0, c.vocabSize());
    }

    private static int lastRowOfLastBatch(int n, int maxBatch) {
        int rem = n % maxBatch;
        return (rem == 0 ? maxBatch : rem) - 1;
    }

    /** One batch of {@code n} tokens through every layer; the residual stream ends in {@code s.x}. */
    private void forwardBatch(State s, int[] tokens, int n, int pos) {
        ModelConfig c = config;
        int dim = c.dim();
        backend.embed(tokenEmbedding, tokens, n, s.x);
        for (int l = 0; l < layers.length; l++) {
            Layer L = layers[l];
            // Attention block.
            backend.rmsNorm(s.x, L.attnNorm(), s.xb, n, c.rmsEps());
            backend.matmul(L.wq(), s.xb, s.q, n);
            backend.matmul(L.wk(), s.xb, s.k, n);
            backend.matmul(L.wv(), s.xb, s.v, n);
            backend.rope(s.q, c.heads(), c.headDim(), rope, pos, n);
            backend.rope(s.k, c.kvHeads(), c.headDim(), rope, pos, n);
            backend.attention(s.q, s.k, s.v, s.cache, l, s.att, c.heads(), c.kvHeads(), c.headDim(), pos, n);
            backend.matmul(L.wo(), s.att, s.xb, n);
            backend.add(s.xb, s.x, n * dim);
            // Feed-forward block (SwiGLU).
            backend.rmsNorm(s.x, L.ffnNorm(), s.xb, n, c.rmsEps());
            backend.matmul(L.gate(), s.xb, s.hb, n);
            backend.matmul(L.up(), s.xb, s.hb2, n);
            backend.swiglu(s.hb, s.hb2, s.hb, n * c.ffnDim());
            backend.matmul(L.down(), s.hb, s.xb, n);
            backend.add(s.xb, s.x, n * dim);
        }
    }
}
