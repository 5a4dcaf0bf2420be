package io.jcascade.kernels;

import java.util.Arrays;

/**
 * What one decoding step needs of a row of logits, so that the logits can stay where they were
 * computed: the {@linkplain #stats() statistics} of {@code softmax(logits)} (entropy, the two most
 * likely tokens, log Z) and the {@code k} best tokens after the repetition penalty, best first,
 * each with its logit before and after the penalty. A sampler draws from these (top-k keeps no
 * more), so only {@code k} candidates cross from a GPU rather than the vocabulary's logits.
 *
 * <p>The order is total: by penalised logit, descending, NaN as -inf and -0.0 below +0.0 (the
 * order of {@link #key}), the lower id first among equals. The penalty is llama.cpp's: a token's
 * logit is divided by it when positive, multiplied when not.
 *
 * <pre>{@code
 * TokenCandidates c = new TokenCandidates();
 * backend.selectTokens(logits, vocabSize, 40, 1.1f, recentIds, recentCount, c);
 * int best = c.id(0);
 * double entropy = c.stats().entropy(), p = c.probability(0);
 * }</pre>
 *
 * <p>Reusable from step to step; not thread-safe.
 */
public final class TokenCandidates {
    private final LogitStats stats = new LogitStats();
    private int count;
    private int[] ids = new int[0];
    private float[] logits = new float[0];
    private float[] penalised = new float[0];
    private long[] keys = new long[0];
    private float[] hostLogits = new float[0];
    private float[] work = new float[0];
    private long[] byId = new long[0];
    private float[] rawCopy = new float[0];
    private float[] penCopy = new float[0];

    /** The statistics of the logits before the penalty. */
    public LogitStats stats() {
        return stats;
    }

    /** How many candidates there are: {@code min(k, n)}. */
    public int count() {
        return count;
    }

    /** The id of the {@code i}-th best candidate. */
    public int id(int i) {
        return ids[checkIndex(i)];
    }

    /** The logit of the {@code i}-th best candidate, before the penalty. */
    public float logit(int i) {
        return logits[checkIndex(i)];
    }

    /** The logit of the {@code i}-th best candidate after the penalty: the one it is ranked and sampled by. */
    public float penalisedLogit(int i) {
        return penalised[checkIndex(i)];
    }

    /** The probability of the {@code i}-th best candidate in {@code softmax(logits)}, before the penalty. */
    public double probability(int i) {
        return stats.probability(logit(i));
    }

    /** The index of token {@code id} among the candidates, or -1. */
    public int indexOf(int id) {
        for (int i = 0; i < count; i++) {
            if (ids[i] == id) {
                return i;
            }
        }
        return -1;
    }

    /**
     * The sort key of the order above: ascending keys are descending logits, then ascending ids.
     * A sampler that sorts candidates itself uses it to rank them exactly as here.
     */
    public static long key(float logit, int id) {
        int bits = Float.floatToIntBits(Float.isNaN(logit) ? Float.NEGATIVE_INFINITY : logit);
        int ascending = bits ^ ((bits >> 31) & 0x7fffffff);
        return (long) ~ascending << 32 | (id & 0xffffffffL);
    }

    /** The penalised logit of a token whose logit is {@code logit}. */
    public static float penalise(float logit, float penalty) {
        return logit <= 0 ? logit * penalty : logit / penalty;
    }

    /**
     * The host reference: fills this from {@code logits[0, n)} on the CPU. {@code penalisedIds[0,
     * penalisedCount)} are the tokens the penalty applies to (a token listed twice is penalised
     * once); penalty 1 leaves every logit as it is.
     *
     * @throws IllegalArgumentException for n outside 1..logits.length, k below 1, an id outside
     *         the vocabulary, or logits that are all NaN
     */
    public TokenCandidates select(float[] logits, int n, int k, float penalty, int[] penalisedIds, int penalisedCount) {
        checkRequest(n, k, penalisedIds, penalisedCount);
        if (n > logits.length) {
            throw new IllegalArgumentException("n " + n + " outside 1.." + logits.length);
        }
        stats.compute(logits, n);
        float[] w = logits;
        if (penalty != 1f && penalisedCount > 0) {
            if (work.length < n) {
                work = new float[n];
            }
            System.arraycopy(logits, 0, work, 0, n);
            for (int i = 0; i < penalisedCount; i++) {
                int id = penalisedIds[i];
                work[id] = penalise(logits[id], penalty); // from the original: a repeated id changes nothing
            }
            w = work;
        }
        int m = Math.min(k, n);
        reset(m);
        bestKeys(w, n, m, keys);
        for (int i = 0; i < m; i++) {
            int id = (int) keys[i];
            ids[i] = id;
            this.logits[i] = logits[id];
            penalised[i] = w[id];
        }
        count = m;
        return this;
    }

    /**
     * The {@code k} best {@link #key}s of {@code logits[0, n)}, sorted (best first), into
     * {@code keys[0, k)}: a bounded max-heap of the worst survivor, O(n log k). For samplers that
     * rank logits themselves.
     */
    public static void bestKeys(float[] logits, int n, int k, long[] keys) {
        for (int i = 0; i < k; i++) {
            keys[i] = key(logits[i], i);
        }
        for (int i = k / 2 - 1; i >= 0; i--) {
            siftDown(keys, i, k);
        }
        for (int i = k; i < n; i++) {
            long c = key(logits[i], i);
            if (c < keys[0]) {
                keys[0] = c;
                siftDown(keys, 0, k);
            }
        }
        Arrays.sort(keys, 0, k);
    }

    /** Checks a request's arguments as every backend must (the default reads the logits back). */
    public static void checkRequest(int n, int k, int[] penalisedIds, int penalisedCount) {
        if (n <= 0) {
            throw new IllegalArgumentException("n must be positive: " + n);
        }
        if (k < 1) {
            throw new IllegalArgumentException("k must be at least 1: " + k);
        }
        if (penalisedCount < 0 || penalisedCount > penalisedIds.length) {
            throw new IllegalArgumentException("penalisedCount " + penalisedCount + " outside 0.." + penalisedIds.length);
        }
        for (int i = 0; i < penalisedCount; i++) {
            if (penalisedIds[i] < 0 || penalisedIds[i] >= n) {
                throw new IllegalArgumentException("penalised token id " + penalisedIds[i] + " outside 0.." + (n - 1));
            }
        }
    }

    /** A host array of at least {@code n} floats for a backend to read the logits into. */
    public float[] hostLogits(int n) {
        if (hostLogits.length < n) {
            hostLogits = new float[n];
        }
        return hostLogits;
    }

    /**
     * For backends that select elsewhere: clears the candidates and makes room for {@code k}; then
     * {@link #add} each (in any order) and {@link #sortBestFirst}, and set {@link #stats()}.
     */
    public void reset(int k) {
        if (ids.length < k) {
            ids = new int[k];
            logits = new float[k];
            penalised = new float[k];
            keys = new long[k];
        }
        count = 0;
    }

    /** Adds a candidate (see {@link #reset}). */
    public void add(int id, float logit, float penalisedLogit) {
        ids[count] = id;
        logits[count] = logit;
        penalised[count] = penalisedLogit;
        count++;
    }

    /** Puts the added candidates (distinct ids) in the order above. */
    public void sortBestFirst() {
        // keys: the order with the id in the low half; byId: id and position, to find each
        // ranked id's logits again. Two sorts of count longs, no allocation.
        if (byId.length < count) {
            byId = new long[keys.length];
            rawCopy = new float[keys.length];
            penCopy = new float[keys.length];
        }
        for (int i = 0; i < count; i++) {
            keys[i] = key(penalised[i], ids[i]);
            byId[i] = (long) ids[i] << 32 | i;
        }
        Arrays.sort(keys, 0, count);
        Arrays.sort(byId, 0, count);
        System.arraycopy(logits, 0, rawCopy, 0, count);
        System.arraycopy(penalised, 0, penCopy, 0, count);
        for (int i = 0; i < count; i++) {
            int id = (int) keys[i];
            int at = Arrays.binarySearch(byId, 0, count, (long) id << 32);
            int from = (int) byId[at < 0 ? -at - 1 : at];
            ids[i] = id;
            logits[i] = rawCopy[from];
            penalised[i] = penCopy[from];
        }
    }

    private int checkIndex(int i) {
        if (i < 0 || i >= count) {
            throw new IndexOutOfBoundsException("candidate " + i + " of " + count);
        }
        return i;
    }

    private static void siftDown(long[] heap, int i, int size) {
        long v = heap[i];
        while (true) {
            int child = 2 * i + 1;
            if (child >= size) {
                break;
            }
            if (child + 1 < size && heap[child + 1] > heap[child]) {
                child++;
            }
            if (heap[child] <= v) {
                break;
            }
            heap[i] = heap[child];
            i = child;
        }
        heap[i] = v;
    }
}
