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
 * The Llama-family forward pass, written once against {@link Backend} so that the same code runs
 * on every backend. It runs llama.cpp's {@code llama} architecture (Llama 1/2/3.x, Mistral,
 * TinyLlama, ...) and its {@code phi3} architecture (Phi-3/3.5 mini).
 *
 * <p><b>Why one class for both.</b> Phi-3 is a Llama block with three differences, and none of
 * them is a different computation: (1) its file fuses tensors ({@code attn_qkv} = q, k, v rows;
 * {@code ffn_up} = gate rows, then up rows), which {@link #load} splits into zero-copy row views,
 * so the forward pass still sees q, k, v, gate and up; (2) NeoX rope, possibly partial
 * ({@link ModelConfig#ropeNeox()}, {@link ModelConfig#ropeDims()}); (3) llama.cpp scales the
 * query by {@code 1/sqrt(headDim)} before attention rather than the scores after it, which is
 * the {@code qScale}/{@code kqScale} pair passed to {@link Backend#attention}. Keeping one
 * forward pass means a fix or an optimisation reaches both families. An architecture whose
 * block computes something else (biases, parallel attention/ffn, other norms) gets its own class.
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
    private final float qScale;
    private final float kqScale;
    private final int defaultContextLength;

    private Llama(ModelConfig config, Backend backend, Weight tokenEmbedding, Layer[] layers, Weight outputNorm,
            Weight output, float[] ropeFactors, int defaultContextLength) {
        this.config = config;
        this.backend = backend;
        this.tokenEmbedding = tokenEmbedding;
        this.layers = layers;
        this.outputNorm = outputNorm;
        this.output = output;
        this.rope = new Backend.Rope(config.ropeDims(), config.ropeBase(), ropeFactors, config.ropeNeox(),
                config.ropeFreqScale(), config.ropeAttnFactor());
        // As llama.cpp: 1.0f / sqrtf(head width), applied to the scores (llama) or the query (phi3).
        float scale = 1.0f / (float) Math.sqrt(config.headDim());
        this.qScale = config.isPhi3() ? scale : 1.0f;
        this.kqScale = config.isPhi3() ? 1.0f : scale;
        this.defaultContextLength = defaultContextLength;
    }

    /**
     * The context a model runs at when none is asked for: its trained context length, or for a
     * phi3 file with long rope factors ({@code rope_factors_long}, Phi-3 128k) its original
     * context length, where the short factors hold. A longer context is asked for at
     * {@link #load(GgufFile, ModelConfig, Backend, int) load}, which then picks the long factors.
     */
    public int defaultContextLength() {
        return defaultContextLength;
    }

    /** The rope this model applies (frequency factors, scaling, mode), for tests and backends. */
    public Backend.Rope rope() {
        return rope;
    }

    public ModelConfig config() {
        return config;
    }

    public Backend backend() {
        return backend;
    }

    /**
     * Weight bytes one decode step reads from {@code gguf}: every tensor but the token embedding
     * (of which it reads one row, not counted), plus the whole embedding when it doubles as the
     * output head (no {@code output.weight}). The KV cache and activations are not counted. A
     * backend's {@link Backend#measureBandwidth() bandwidth} divided by this is the ceiling of
     * decode's tokens/s.
     *
     * <pre>{@code
     * double ceiling = bytesPerSecond / Llama.weightBytesPerToken(gguf);
     * }</pre>
     */
    public static long weightBytesPerToken(GgufFile gguf) {
        long total = 0;
        for (GgufTensor t : gguf.tensors()) {
            if (!t.name().equals("token_embd.weight")) {
                total += t.byteSize();
            }
        }
        if (gguf.findTensor("output.weight").isEmpty()) {
            total += gguf.findTensor("token_embd.weight").map(GgufTensor::byteSize).orElse(0L);
        }
        return total;
    }

    /**
     * Binds the tensors of a Llama GGUF file to the backend, checking every name and shape first.
     *
     * @throws UnsupportedModelException if a tensor is missing or has the wrong shape or an unsupported type
     */
    public static Llama load(GgufFile gguf, ModelConfig c, Backend backend)
            throws UnsupportedModelException, GgufFormatException {
        return load(gguf, c, backend, 0);
    }

    /**
     * Binds the tensors of a {@code llama} or {@code phi3} GGUF file to the backend, checking
     * every name and shape first.
     *
     * <pre>{@code
     * ModelConfig c = ModelConfig.from(gguf);
     * Llama model = Llama.load(gguf, c, backend, 4096);
     * }</pre>
     *
     * @param contextLength the context the model will run at, or 0 for its {@link #defaultContextLength()};
     *     it picks phi3's short or long rope factors as llama.cpp picks them by its context size per
     *     sequence: the long ones when it exceeds {@code rope.scaling.original_context_length}
     * @throws UnsupportedModelException if a tensor is missing or has the wrong shape or an unsupported type
     */
    public static Llama load(GgufFile gguf, ModelConfig c, Backend backend, int contextLength)
            throws UnsupportedModelException, GgufFormatException {
        Weight embd = weight(gguf, backend, "token_embd.weight", c.vocabSize(), c.dim());
        int qDim = c.heads() * c.headDim();
        Layer[] layers = new Layer[c.layers()];
        for (int i = 0; i < c.layers(); i++) {
            String b = "blk." + i + ".";
            Weight wq, wk, wv, gate, up;
            if (c.isPhi3() && gguf.findTensor(b + "attn_qkv.weight").isPresent()) {
                // Fused: rows [0, qDim) are q, then kvDim rows of k, then kvDim rows of v.
                WeightMatrix qkv = matrix(gguf, b + "attn_qkv.weight", qDim + 2 * c.kvDim(), c.dim());
                wq = bind(backend, b + "attn_qkv.weight", rows(qkv, 0, qDim));
                wk = bind(backend, b + "attn_qkv.weight", rows(qkv, qDim, c.kvDim()));
                wv = bind(backend, b + "attn_qkv.weight", rows(qkv, qDim + c.kvDim(), c.kvDim()));
            } else {
                wq = weight(gguf, backend, b + "attn_q.weight", qDim, c.dim());
                wk = weight(gguf, backend, b + "attn_k.weight", c.kvDim(), c.dim());
                wv = weight(gguf, backend, b + "attn_v.weight", c.kvDim(), c.dim());
            }
            if (c.isPhi3() && gguf.findTensor(b + "ffn_gate.weight").isEmpty()) {
                // Fused SwiGLU input, as llama.cpp's build_ffn(LLM_FFN_SWIGLU) splits it: the first
                // half of the rows goes through silu (the gate), the second half is the up projection.
                WeightMatrix gateUp = matrix(gguf, b + "ffn_up.weight", 2 * c.ffnDim(), c.dim());
                gate = bind(backend, b + "ffn_up.weight", rows(gateUp, 0, c.ffnDim()));
                up = bind(backend, b + "ffn_up.weight", rows(gateUp, c.ffnDim(), c.ffnDim()));
            } else {
                gate = weight(gguf, backend, b + "ffn_gate.weight", c.ffnDim(), c.dim());
                up = weight(gguf, backend, b + "ffn_up.weight", c.ffnDim(), c.dim());
            }
            layers[i] = new Layer(
                    weight(gguf, backend, b + "attn_norm.weight", 1, c.dim()),
                    wq, wk, wv,
                    weight(gguf, backend, b + "attn_output.weight", c.dim(), qDim),
                    weight(gguf, backend, b + "ffn_norm.weight", 1, c.dim()),
                    gate, up,
                    weight(gguf, backend, b + "ffn_down.weight", c.dim(), c.ffnDim()));
        }
        Weight norm = weight(gguf, backend, "output_norm.weight", 1, c.dim());
        // Files with tied embeddings have no output.weight: the embedding table doubles as the output head.
        Weight out = gguf.findTensor("output.weight").isPresent()
                ? weight(gguf, backend, "output.weight", c.vocabSize(), c.dim())
                : embd;

        // Rope frequency factors, as llama.cpp's get_rope_factors picks them: rope_freqs (Llama 3.1
        // scaling) if present, else phi3's long factors when the context exceeds the original
        // one, else its short factors. The magnitude scale (rope.scaling.attn_factor) applies with
        // either set, as in llama.cpp.
        int defaultContext = c.contextLength();
        float[] factors = vector(gguf, "rope_freqs.weight", c.ropeDims() / 2);
        if (factors == null) {
            if (gguf.findTensor("rope_factors_long.weight").isPresent()) {
                defaultContext = Math.min(defaultContext, c.ropeOriginalContext());
                int context = contextLength > 0 ? contextLength : defaultContext;
                if (context > c.ropeOriginalContext()) {
                    factors = vector(gguf, "rope_factors_long.weight", c.ropeDims() / 2);
                }
            }
            if (factors == null) {
                factors = vector(gguf, "rope_factors_short.weight", c.ropeDims() / 2);
            }
        }
        return new Llama(c, backend, embd, layers, norm, out, factors, defaultContext);
    }

    private static WeightMatrix matrix(GgufFile gguf, String name, int rows, int cols) throws UnsupportedModelException {
        GgufTensor t = tensor(gguf, name, rows, cols);
        return WeightMatrix.of(t);
    }

    /** Rows {@code [first, first + count)} of {@code m}, sharing its bytes. */
    private static WeightMatrix rows(WeightMatrix m, int first, int count) {
        return new WeightMatrix(m.type(), m.data().asSlice(first * m.rowBytes(), count * m.rowBytes()), count,
                m.cols());
    }

    private static Weight bind(Backend backend, String name, WeightMatrix m) throws UnsupportedModelException {
        try {
            return backend.weight(m);
        } catch (UnsupportedOperationException e) {
            throw new UnsupportedModelException("tensor \"" + name + "\": " + e.getMessage());
        }
    }

    /** A 1-D F32/F16/BF16 tensor of {@code length} as floats, or null if the file has none. */
    private static float[] vector(GgufFile gguf, String name, int length) throws UnsupportedModelException {
        if (gguf.findTensor(name).isEmpty()) {
            return null;
        }
        GgufTensor t = tensor(gguf, name, 1, length);
        var seg = t.data();
        var f32 = java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
        var i16 = java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(java.nio.ByteOrder.LITTLE_ENDIAN);
        float[] v = new float[length];
        for (int i = 0; i < length; i++) {
            v[i] = switch (t.type()) {
                case F32 -> seg.getAtIndex(f32, i);
                case F16 -> Float.float16ToFloat(seg.getAtIndex(i16, i));
                case BF16 -> Float.intBitsToFloat(seg.getAtIndex(i16, i) << 16);
                default -> throw new UnsupportedModelException("tensor \"" + name + "\" is " + t.type()
                        + ", expected F32, F16 or BF16");
            };
        }
        return v;
    }

    private static Weight weight(GgufFile gguf, Backend backend, String name, int rows, int cols)
            throws UnsupportedModelException {
        return bind(backend, name, WeightMatrix.of(tensor(gguf, name, rows, cols)));
    }

    private static GgufTensor tensor(GgufFile gguf, String name, int rows, int cols) throws UnsupportedModelException {
        Optional<GgufTensor> found = gguf.findTensor(name);
        if (found.isEmpty()) {
            throw new UnsupportedModelException("tensor \"" + name + "\" is missing from the model file");
        }
        GgufTensor t = found.get();
        if (t.rowLength() != cols || t.rowCount() != rows) {
            throw new UnsupportedModelException("tensor \"" + name + "\" has shape " + Arrays.toString(t.shape())
                    + ", expected [" + cols + (rows > 1 ? ", " + rows : "") + "] from the model's hyper-parameters");
        }
        return t;
    }

    /** The activations of {@code rows} tokens through a layer, each tensor token-major. */
    private final class Buffers {
        final Tensor x;      // residual stream, [rows][dim]
        final Tensor xb;     // normed input / block output, [rows][max(dim, heads * headDim)]
        final Tensor q;      // [rows][heads * headDim]
        final Tensor k;      // [rows][kvDim]
        final Tensor v;      // [rows][kvDim]
        final Tensor att;    // attention output, [rows][heads * headDim]
        final Tensor hb;     // ffn gate, then silu(gate) * up, [rows][ffnDim]
        final Tensor hb2;    // ffn up, [rows][ffnDim]

        Buffers(int rows) {
            ModelConfig c = config;
            int qDim = c.heads() * c.headDim();
            this.x = backend.tensor(rows * c.dim());
            this.xb = backend.tensor(rows * Math.max(c.dim(), qDim));
            this.q = backend.tensor(rows * qDim);
            this.k = backend.tensor(rows * c.kvDim());
            this.v = backend.tensor(rows * c.kvDim());
            this.att = backend.tensor(rows * qDim);
            this.hb = backend.tensor(rows * c.ffnDim());
            this.hb2 = backend.tensor(rows * c.ffnDim());
        }
    }

    /**
     * Activations for up to {@code maxSequences} sequences that decode together, one token each a
     * step ({@link #decode}): every product's rows are the sequences, so a step reads each weight
     * once for all of them. Each sequence keeps its own {@link State} (its KV cache and logits).
     * Not thread-safe.
     *
     * <pre>{@code
     * Llama.Batch batch = model.newBatch(8);
     * model.decode(batch, states, tokens, positions, n);   // n <= 8
     * }</pre>
     */
    public final class Batch {
        final int maxSequences;
        final Buffers a;
        final Tensor logits;            // [maxSequences][vocab]
        final Backend.RowScratch scratch;  // one sequence's row, for attention over its own cache
        final Backend.KvCache[] caches;

        Batch(int maxSequences) {
            ModelConfig c = config;
            int qDim = c.heads() * c.headDim();
            this.maxSequences = maxSequences;
            this.a = new Buffers(maxSequences);
            this.logits = backend.tensor(maxSequences * c.vocabSize());
            this.scratch = new Backend.RowScratch(backend.tensor(qDim), backend.tensor(c.kvDim()),
                    backend.tensor(c.kvDim()), backend.tensor(qDim));
            this.caches = new Backend.KvCache[maxSequences];
        }

        /** How many sequences a step may take. */
        public int maxSequences() {
            return maxSequences;
        }
    }

    /**
     * Activations for {@code maxSequences} sequences decoding together.
     *
     * <pre>{@code
     * Llama.Batch batch = model.newBatch(4);
     * }</pre>
     */
    public Batch newBatch(int maxSequences) {
        if (maxSequences <= 0) {
            throw new IllegalArgumentException("maxSequences must be positive: " + maxSequences);
        }
        return new Batch(maxSequences);
    }

    /**
     * One decoding step of {@code n} sequences together: sequence i runs token {@code tokens[i]}
     * at position {@code positions[i]} of its state {@code states[i]} (a state at most once), and
     * its logits are left in that state, where {@link #forwardOnBackend} leaves them. The
     * products run over the n tokens at once; attention runs per sequence, over its own cache.
     * The logits equal those of n one-token {@link #forwardOnBackend} calls to float rounding (the
     * products sum in another order over several tokens than over one).
     *
     * <pre>{@code
     * Llama.Batch batch = model.newBatch(8);
     * model.decode(batch, states, next, positions, active);
     * backend.selectTokens(states[0].logits(), vocab, 40, 1f, new int[0], 0, candidates);
     * }</pre>
     */
    public void decode(Batch b, State[] states, int[] tokens, int[] positions, int n) {
        if (n < 1 || n > b.maxSequences) {
            throw new IllegalArgumentException(n + " sequences for a batch of " + b.maxSequences);
        }
        for (int i = 0; i < n; i++) {
            if (positions[i] < 0 || positions[i] >= states[i].capacity()) {
                throw new IllegalArgumentException("sequence " + i + ": position " + positions[i]
                        + " does not fit its KV cache of " + states[i].capacity());
            }
            for (int j = 0; j < i; j++) {
                if (states[j] == states[i]) {
                    throw new IllegalArgumentException("sequences " + j + " and " + i + " share one state");
                }
            }
        }
        ModelConfig c = config;
        Buffers a = b.a;
        for (int i = 0; i < n; i++) {
            b.caches[i] = states[i].cache;
        }
        layers(a, tokens, n, false, (l, rows) -> backend.ropeAndAttentionRows(a.q, a.k, a.v, b.caches, positions, rows,
                l, a.att, c.heads(), c.kvHeads(), c.headDim(), rope, qScale, kqScale, b.scratch));
        backend.rmsNorm(a.x, outputNorm, a.xb, n, c.rmsEps());
        backend.matmul(output, a.xb, b.logits, n);
        for (int i = 0; i < n; i++) {
            backend.copyRow(b.logits, i, states[i].logits, c.vocabSize());
        }
    }

    /**
     * Per-generation state: the KV cache for {@code capacity} positions and scratch buffers for
     * batches of up to {@code maxBatch} tokens. Not thread-safe; one per concurrent generation.
     */
    public final class State {
        final Backend.KvCache cache;
        final int maxBatch;
        final Buffers a;      // the batch's activations
        final Tensor last;    // last token's residual, [dim]
        final Tensor logits;  // [vocab]

        State(int capacity, int maxBatch) {
            ModelConfig c = config;
            this.cache = backend.kvCache(c.layers(), capacity, c.kvDim());
            this.maxBatch = maxBatch;
            this.a = new Buffers(maxBatch);
            this.last = backend.tensor(c.dim());
            this.logits = backend.tensor(c.vocabSize());
        }

        /** The logits the last forward pass left here, on the backend. */
        public Tensor logits() {
            return logits;
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
        logitsOfLast(s, tokens, n, startPos);
        backend.read(s.logits, 0, logits, 0, config.vocabSize());
    }

    /**
     * As {@link #forward}, but returns the greedy next token (the largest logit, the lowest id
     * among equals) and leaves the logits on the backend: on a GPU one int crosses the bus, not
     * the vocabulary's logits. For benchmarks and greedy decoding that needs no signals.
     *
     * <pre>{@code
     * int next = model.forwardGreedy(state, prompt, prompt.length, 0);
     * next = model.forwardGreedy(state, new int[] {next}, 1, prompt.length);
     * }</pre>
     */
    public int forwardGreedy(State s, int[] tokens, int n, int startPos) {
        logitsOfLast(s, tokens, n, startPos);
        return backend.argmax(s.logits, config.vocabSize());
    }

    /**
     * As {@link #forward}, but leaves the logits on the backend and returns them there, for
     * {@link Backend#selectTokens} to choose from where they are.
     *
     * <pre>{@code
     * Backend.Tensor logits = model.forwardOnBackend(state, prompt, prompt.length, 0);
     * backend.selectTokens(logits, vocabSize, 40, 1f, new int[0], 0, candidates);
     * }</pre>
     */
    public Tensor forwardOnBackend(State s, int[] tokens, int n, int startPos) {
        logitsOfLast(s, tokens, n, startPos);
        return s.logits;
    }

    /** Runs the tokens through the model and leaves the last one's logits in {@code s.logits}. */
    private void logitsOfLast(State s, int[] tokens, int n, int startPos) {
        if (startPos + n > s.capacity()) {
            throw new IllegalArgumentException("positions up to " + (startPos + n) + " do not fit the KV cache of "
                    + s.capacity());
        }
        int done = 0;
        int[] chunk = tokens;
        int lastRow = 0;
        while (done < n) {
            int b = Math.min(s.maxBatch, n - done);
            if (done > 0) {
                chunk = Arrays.copyOfRange(tokens, done, done + b);
            }
            lastRow = forwardBatch(s, chunk, b, startPos + done, done + b == n);
            done += b;
        }
        ModelConfig c = config;
        if (lastRow == 0) {
            backend.rmsNorm(s.a.x, outputNorm, s.last, 1, c.rmsEps()); // the first row: no copy needed
        } else {
            backend.copyRow(s.a.x, lastRow, s.last, c.dim());
            backend.rmsNorm(s.last, outputNorm, s.last, 1, c.rmsEps());
        }
        backend.matmul(output, s.last, s.logits, 1);
    }

    /**
     * One batch of {@code n} consecutive tokens of one sequence, from position {@code pos},
     * through every layer (see {@link #layers}); returns the row of {@code s.a.x} that holds the
     * last token.
     */
    private int forwardBatch(State s, int[] tokens, int n, int pos, boolean last) {
        ModelConfig c = config;
        Buffers a = s.a;
        return layers(a, tokens, n, last, (l, rows) -> backend.ropeAndAttention(a.q, a.k, a.v, s.cache, l, a.att,
                c.heads(), c.kvHeads(), c.headDim(), rope, pos, rows, qScale, kqScale));
    }

    /** One layer's attention: rows of a.q, a.k, a.v (RoPE still to apply) into a.att, the cache written. */
    private interface Attention {
        void run(int layer, int rows);
    }

    /**
     * The embeddings of {@code tokens[0..n)} through every layer into {@code a.x}, with
     * {@code attention} for the attention itself. {@code last}: only the last token's output is
     * needed, so the last layer's feed-forward block runs on it alone (as llama.cpp); returns the
     * row of {@code a.x} that holds the last token.
     */
    private int layers(Buffers a, int[] tokens, int n, boolean last, Attention attention) {
        ModelConfig c = config;
        int dim = c.dim();
        backend.embed(tokenEmbedding, tokens, n, a.x);
        for (int l = 0; l < layers.length; l++) {
            Layer L = layers[l];
            // Attention block.
            backend.rmsNorm(a.x, L.attnNorm(), a.xb, n, c.rmsEps());
            backend.matmulQkv(L.wq(), L.wk(), L.wv(), a.xb, a.q, a.k, a.v, n);
            attention.run(l, n);
            backend.matmulAdd(L.wo(), a.att, a.xb, a.x, n); // x += wo . att
            if (last && l == layers.length - 1 && n > 1) {
                backend.copyRow(a.x, n - 1, a.x, dim);
                n = 1;
            }
            // Feed-forward block (SwiGLU).
            backend.rmsNorm(a.x, L.ffnNorm(), a.xb, n, c.rmsEps());
            backend.ffnGateUp(L.gate(), L.up(), a.xb, a.hb, a.hb2, n); // hb = silu(gate . x) * (up . x)
            backend.matmulAdd(L.down(), a.hb, a.xb, a.x, n); // x += down . hb
        }
        return n - 1;
    }
}
