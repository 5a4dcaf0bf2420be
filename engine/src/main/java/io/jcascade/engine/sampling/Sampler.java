package io.jcascade.engine.sampling;

import io.jcascade.kernels.TokenCandidates;
import java.util.Arrays;
import java.util.Objects;
import java.util.SplittableRandom;

/**
 * Picks the next token from a logit vector, in llama.cpp's default order: repetition penalty,
 * top-k, top-p, min-p, temperature, then a draw from the softmax. With temperature 0 (or top-k 1)
 * it is argmax over the penalised logits, lowest id on ties.
 *
 * <p>A sampler owns its random generator, seeded from {@link SamplingParams#seed()}, so the same
 * seed and the same logits give the same tokens. Scratch buffers are kept between calls, so a
 * steady generation loop allocates nothing. Not thread-safe: one sampler per sequence.
 *
 * <pre>{@code
 * Sampler sampler = new Sampler(SamplingParams.builder().temperature(0.7f).seed(1).build(), vocabSize);
 * int[] context = new int[maxTokens];
 * int length = 0;
 * while (...) {
 *     float[] logits = model.forward(...);
 *     int next = sampler.sample(logits, context, length);
 *     context[length++] = next;
 * }
 * }</pre>
 */
public final class Sampler {

    private static final int[] NO_HISTORY = new int[0];

    private final SamplingParams params;
    /** The logit count {@link #sample(float[], int[], int)} uses; 0 when not fixed at construction. */
    private final int vocabSize;
    private SplittableRandom random;

    private float[] work = new float[0];
    /** Candidates packed as (descending logit, ascending id) so that sorting longs orders them. */
    private long[] keys = new long[0];
    private double[] weights = new double[0];
    /** Per-id generation stamps: marks ids already penalised in this call without clearing a set. */
    private int[] seen = new int[0];
    private int stamp;

    /** A sampler that is told the vocabulary size on each call. */
    public Sampler(SamplingParams params) {
        this.params = Objects.requireNonNull(params);
        this.vocabSize = 0;
        this.random = new SplittableRandom(params.seed());
    }

    /** A sampler for logit vectors of {@code vocabSize} entries, with its buffers allocated up front. */
    public Sampler(SamplingParams params, int vocabSize) {
        if (vocabSize <= 0) {
            throw new IllegalArgumentException("vocabSize must be positive: " + vocabSize);
        }
        this.params = Objects.requireNonNull(params);
        this.vocabSize = vocabSize;
        this.random = new SplittableRandom(params.seed());
        ensureCapacity(vocabSize);
    }

    public SamplingParams params() {
        return params;
    }

    /** Restarts the random sequence as if newly constructed with {@code seed}. */
    public void reseed(long seed) {
        random = new SplittableRandom(seed);
    }

    /**
     * Samples over the vocabulary size given at construction.
     *
     * @throws IllegalStateException if the sampler was built without a vocabulary size
     */
    public int sample(float[] logits, int[] history, int historyLength) {
        if (vocabSize == 0) {
            throw new IllegalStateException("no vocabulary size given at construction");
        }
        return sample(logits, vocabSize, history, historyLength);
    }

    /** Samples without a repetition history. */
    public int sample(float[] logits, int vocabSize) {
        return sample(logits, vocabSize, NO_HISTORY, 0);
    }

    /**
     * Samples a token id in {@code [0, vocabSize)}. {@code logits} is left unchanged.
     *
     * @param logits the model's logits; only the first {@code vocabSize} are read
     * @param history the tokens so far (prompt and generated); the penalty looks at the last
     *        {@code repeatLastN} of {@code history[0, historyLength)}
     */
    public int sample(float[] logits, int vocabSize, int[] history, int historyLength) {
        float[] w = penalised(logits, vocabSize, history, historyLength);
        if (params.isGreedy()) {
            return argmax(w, vocabSize);
        }
        return draw(filter(w, vocabSize));
    }

    /** A draw from the survivors keys[0, m), whose logits are in work. */
    private int draw(int m) {
        double total = softmaxWeights(work, m);
        double u = random.nextDouble() * total;
        double cumulative = 0;
        for (int i = 0; i < m; i++) {
            cumulative += weights[i];
            if (u < cumulative) {
                return (int) keys[i];
            }
        }
        return (int) keys[m - 1]; // u landed on the rounding slack at the top end
    }

    /**
     * How many of the best tokens a draw over a vocabulary of {@code vocabSize} can pick from: 1
     * when greedy, top-k when it keeps fewer than all, else {@code vocabSize} (top-k off: every
     * token may survive). Below {@code vocabSize}, {@link #sample(TokenCandidates)} over that many
     * candidates draws exactly what {@link #sample(float[], int, int[], int)} draws over the logits.
     *
     * <pre>{@code
     * int k = sampler.candidatesNeeded(vocab);   // 1 greedy, 40 at llama.cpp's defaults
     * if (k < vocab) {
     *     int n = sampler.penalisedTokens(history, length, recent);
     *     backend.selectTokens(logits, vocab, k, params.repetitionPenalty(), recent, n, candidates);
     *     int next = sampler.sample(candidates);
     * }
     * }</pre>
     */
    public int candidatesNeeded(int vocabSize) {
        if (params.isGreedy()) {
            return 1;
        }
        int k = params.topK();
        return k > 0 && k < vocabSize ? k : vocabSize;
    }

    /**
     * The distinct tokens among the last {@code repeatLastN} of {@code history[0,
     * historyLength)} that the repetition penalty lowers, into {@code out} (room for {@code
     * repeatLastN}, or historyLength when it is -1); returns how many (0 when the penalty is 1).
     *
     * <pre>{@code
     * int n = sampler.penalisedTokens(new int[] {9, 1, 2, 1}, 4, out); // repeatLastN 3: out = {1, 2}, n = 2
     * }</pre>
     */
    public int penalisedTokens(int[] history, int historyLength, int[] out) {
        Objects.checkFromToIndex(0, historyLength, history.length);
        int lastN = params.repeatLastN() < 0 ? historyLength : Math.min(params.repeatLastN(), historyLength);
        if (params.repetitionPenalty() == 1f || lastN == 0) {
            return 0;
        }
        newStamp(0);
        int count = 0;
        for (int i = historyLength - lastN; i < historyLength; i++) {
            int id = history[i];
            if (id < 0) {
                continue;
            }
            if (id >= seen.length) {
                seen = Arrays.copyOf(seen, Math.max(id + 1, seen.length * 2));
            }
            if (seen[id] != stamp) {
                seen[id] = stamp;
                out[count++] = id;
            }
        }
        return count;
    }

    /**
     * Samples from candidates a backend selected ({@link io.jcascade.kernels.Backend#selectTokens})
     * with {@link #candidatesNeeded} as k, this sampler's penalty and {@link #penalisedTokens}:
     * the same token as {@link #sample(float[], int, int[], int)} over the logits they came from,
     * with the same random draws.
     *
     * <pre>{@code
     * backend.selectTokens(logits, vocab, sampler.candidatesNeeded(vocab), penalty, recent, n, candidates);
     * int next = sampler.sample(candidates);
     * }</pre>
     *
     * @throws IllegalArgumentException if there are fewer candidates than the sampling needs
     */
    public int sample(TokenCandidates candidates) {
        int m = candidates.count();
        if (params.isGreedy()) {
            return candidates.id(0);
        }
        if (params.topK() <= 0 || m < params.topK()) {
            throw new IllegalArgumentException(m + " candidates for top-k " + params.topK()
                    + ": give candidatesNeeded() of them, or sample over the logits");
        }
        m = params.topK();
        int ids = 0;
        for (int i = 0; i < m; i++) {
            ids = Math.max(ids, candidates.id(i) + 1);
        }
        ensureCapacity(ids);
        for (int i = 0; i < m; i++) {
            int id = candidates.id(i);
            work[id] = candidates.penalisedLogit(i);
            keys[i] = key(work[id], id);
        }
        return draw(cut(work, m, work[(int) keys[0]]));
    }

    /**
     * The exact distribution {@link #sample} draws from, as a fresh array of {@code vocabSize}
     * probabilities (0 for filtered-out tokens; one-hot when greedy). For inspection and tests;
     * it allocates.
     */
    public double[] probabilities(float[] logits, int vocabSize, int[] history, int historyLength) {
        float[] w = penalised(logits, vocabSize, history, historyLength);
        double[] p = new double[vocabSize];
        if (params.isGreedy()) {
            p[argmax(w, vocabSize)] = 1;
            return p;
        }
        int m = filter(w, vocabSize);
        double total = softmaxWeights(w, m);
        for (int i = 0; i < m; i++) {
            p[(int) keys[i]] = weights[i] / total;
        }
        return p;
    }

    /**
     * Applies the repetition penalty in place, llama.cpp style: each distinct token among the last
     * {@code repeatLastN} of history gets its logit divided by the penalty if positive, multiplied
     * if not (so the penalty always lowers it), once no matter how often it occurred.
     */
    public void applyRepetitionPenalty(float[] logits, int vocabSize, int[] history, int historyLength) {
        float penalty = params.repetitionPenalty();
        int lastN = params.repeatLastN() < 0 ? historyLength : Math.min(params.repeatLastN(), historyLength);
        if (penalty == 1f || lastN == 0) {
            return;
        }
        newStamp(vocabSize);
        for (int i = historyLength - lastN; i < historyLength; i++) {
            int id = history[i];
            if (id < 0 || id >= vocabSize || seen[id] == stamp) {
                continue;
            }
            seen[id] = stamp;
            float l = logits[id];
            logits[id] = l <= 0 ? l * penalty : l / penalty;
        }
    }

    /** Starts a new generation of {@link #seen} stamps, with room for ids below {@code size}. */
    private void newStamp(int size) {
        if (seen.length < size) {
            seen = new int[Math.max(size, seen.length * 2)];
            stamp = 0;
        }
        if (++stamp == 0) { // wrapped: old stamps could collide
            Arrays.fill(seen, 0);
            stamp = 1;
        }
    }

    private float[] penalised(float[] logits, int n, int[] history, int historyLength) {
        if (n <= 0 || n > logits.length) {
            throw new IllegalArgumentException("vocabSize " + n + " outside 1.." + logits.length);
        }
        Objects.checkFromToIndex(0, historyLength, history.length);
        ensureCapacity(n);
        System.arraycopy(logits, 0, work, 0, n);
        applyRepetitionPenalty(work, n, history, historyLength);
        return work;
    }

    private void ensureCapacity(int n) {
        if (work.length < n) {
            work = new float[n];
            keys = new long[n];
            weights = new double[n];
        }
    }

    /** Lowest index of the largest value, NaN counted as -inf: the first in {@link TokenCandidates}' order. */
    static int argmax(float[] a, int n) {
        int best = 0;
        float max = Float.isNaN(a[0]) ? Float.NEGATIVE_INFINITY : a[0];
        for (int i = 1; i < n; i++) {
            if (a[i] > max) {
                max = a[i];
                best = i;
            }
        }
        return best;
    }

    private static long key(float logit, int id) {
        return TokenCandidates.key(logit, id);
    }

    /**
     * Runs top-k, top-p and min-p over {@code w} and leaves the survivors in {@code keys[0, m)};
     * returns m (always at least 1). The survivors are sorted best-first whenever a filter needed
     * the order.
     */
    private int filter(float[] w, int n) {
        int m;
        boolean sorted;
        int k = params.topK();
        if (k > 0 && k < n) {
            TokenCandidates.bestKeys(w, n, k, keys);
            m = k;
            sorted = true;
        } else {
            for (int i = 0; i < n; i++) {
                keys[i] = key(w[i], i);
            }
            m = n;
            sorted = params.topP() < 1f;
            if (sorted) {
                Arrays.sort(keys, 0, n);
            }
        }
        return cut(w, m, sorted ? w[(int) keys[0]] : w[argmax(w, n)]);
    }

    /**
     * Top-p and min-p over the survivors in keys[0, m) (sorted best-first whenever top-p is on),
     * whose logits are w[id] and the largest max; returns how many are left, at least 1.
     */
    private int cut(float[] w, int m, float max) {
        if (params.topP() < 1f) {
            double total = 0;
            for (int i = 0; i < m; i++) {
                total += Math.exp(w[(int) keys[i]] - max);
            }
            double target = params.topP() * total;
            double cumulative = 0;
            for (int i = 0; i < m; i++) {
                cumulative += Math.exp(w[(int) keys[i]] - max);
                if (cumulative >= target) {
                    m = i + 1;
                    break;
                }
            }
        }

        if (params.minP() > 0f) {
            // p_i >= minP * p_max  <=>  logit_i >= max + ln(minP), no normalisation needed.
            double threshold = max + Math.log(params.minP());
            int kept = 0;
            for (int i = 0; i < m; i++) {
                if (w[(int) keys[i]] >= threshold) {
                    keys[kept++] = keys[i];
                }
            }
            m = Math.max(kept, 1);
        }
        return m;
    }

    /** Unnormalised softmax of the survivors at the sampling temperature, into weights[0, m); returns the sum. */
    private double softmaxWeights(float[] w, int m) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < m; i++) {
            max = Math.max(max, w[(int) keys[i]]);
        }
        double invT = 1.0 / params.temperature();
        double total = 0;
        for (int i = 0; i < m; i++) {
            double x = (w[(int) keys[i]] - max) * invT;
            double e = Double.isNaN(x) ? 0 : Math.exp(x);
            weights[i] = e;
            total += e;
        }
        if (!(total > 0)) {
            // Every survivor is -inf: no preference left, fall back to uniform.
            Arrays.fill(weights, 0, m, 1.0);
            total = m;
        }
        return total;
    }
}
