package io.jcascade.kernels.cpu;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fast {@link CpuKernels}: Vector API loops over weights read in place from their
 * {@link MemorySegment} (usually a mapped GGUF file), split over a fixed pool of threads.
 *
 * <p>Matmul splits rows over the threads in chunks handed out from an atomic counter, so a thread
 * that starts late (or shares its core) takes fewer. For one token each row is dequantized in
 * registers and multiplied in the same pass (decode is memory bound: the weights are read exactly
 * once). For several tokens, four rows at a time are dequantized into a per-thread scratch buffer
 * and multiplied with up to {@value #TOKEN_BLOCK} tokens ({@link #tokenBlock}) in 4x4 register tiles (16 accumulators,
 * 8 loads per 16 FMAs), so the weights are streamed once per block of tokens instead
 * of once per token, and the tokens' activations once per four rows. Interleaved Q4_0 and Q4_K
 * ({@link PackedMatrix}) go 16 rows at a time instead: dequantized column by column once per
 * matmul ({@link PackedDot#dequantizeGroupColumns}), then 16x8 tiles (per column one load of the
 * 16 rows and 8 multiply-adds with broadcast activations).
 *
 * <p>Quantized weights (Q8_0, Q4_0 and the K-quants) multiply, by default, activations quantized
 * to 8 bits as llama.cpp does ({@link Q8Activations}, {@link Int8Dot}): once per matmul each
 * token's activation row is quantized to Q8_0 or Q8_K blocks. A single token (or a batch of up to
 * {@value #EXACT_BATCH}) multiplies rows with integer dot products and sums them in the float order
 * of ggml's x86 kernels ({@link Int8Dot}, {@link ScalarInt8#row}): bit for bit llama.cpp's
 * results. A longer batch dequantizes the quantized activations once and goes through the float
 * 4x4 tiles (same products, sums rounded in another order). {@code new PanamaKernels(threads, false)} or the system
 * property {@code -Djcascade.activations=f32} select the float path instead (weights dequantized
 * and multiplied with the float activations).
 *
 * <p>The kernels are meant to be driven by one thread at a time. A kernel called while the pool is
 * busy (from inside {@link #parallelFor}, or concurrently from another thread) still works: it
 * runs on its calling thread alone.
 *
 * <pre>{@code
 * try (CpuKernels k = new PanamaKernels(4)) {
 *     k.matmul(w, x, 0, w.cols(), out, 0, w.rows(), 1);
 * }
 * }</pre>
 */
public final class PanamaKernels implements CpuKernels {

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Float> F512 = FloatVector.SPECIES_512;
    private static final VectorSpecies<Float> F8 = FloatVector.SPECIES_256;
    private static final int L = F.length();
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    /** Shorts with as many lanes as {@link #F}, for F16/BF16 rows. */
    private static final VectorSpecies<Short> SH =
            VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    /** Bytes for Q8_0 quants: as many lanes as F, but at least the 64-bit minimum shape. */
    private static final VectorSpecies<Byte> BQ8 =
            VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(64, F.vectorBitSize() / 4)));
    private static final int Q8_PARTS = BQ8.length() / L;
    /** The 16 quant bytes of a Q4_0 block in one vector. */
    private static final VectorSpecies<Byte> B128 = ByteVector.SPECIES_128;
    private static final int Q4_PARTS = 16 / Math.max(1, L);
    /** Block kernels assume a block of 32 covers whole vectors; wider machines use scalar code. */
    private static final boolean VECTOR_BLOCKS = L >= 4 && L <= 16;

    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    /** Q8_0 block: fp16 d, int8 qs[32]. Q4_0 block: fp16 d, uint8 qs[16]. */
    private static final int Q8_BYTES = 34;
    private static final int Q4_BYTES = 18;

    /** The most tokens multiplied with one dequantized row before moving on ({@link #tokenBlock}). */
    static final int TOKEN_BLOCK = 64;

    /**
     * Tokens per block for rows of {@code cols}: their x rows take at most 1 MiB, so they stay in
     * L2 while the rows pass (2048 columns: 64 tokens, 8192: 32; 64 tokens of 8192 columns ran
     * 15-20 % slower, and so did 32 of 2048).
     */
    static int tokenBlock(int cols) {
        return Math.max(8, Math.min(TOKEN_BLOCK, (1 << 18) / cols) & ~3);
    }
    /** Below this many multiply-adds a matmul runs on the caller; waking workers costs more. */
    private static final long MIN_PARALLEL_WORK = 1 << 15;

    private final int threads;
    private final WorkerPool pool;
    private final float[][] scratch;
    private final ThreadLocal<float[]> inlineScratch = new ThreadLocal<>();
    private final MatmulJob matmulJob = new MatmulJob();
    private final MultiJob multiJob = new MultiJob();
    private final ThreadLocal<MultiJob> inlineMultiJob = ThreadLocal.withInitial(MultiJob::new);
    private final ForJob forJob = new ForJob();
    /** Whether quantized weights multiply 8-bit activations (llama.cpp's way). */
    private final boolean int8;
    /**
     * Batches of up to this many tokens multiply quantized weights with the same integer kernels
     * as a single token, so their results are bit for bit llama.cpp's; longer ones go through the
     * float tiles (faster for prompts, sums rounded in another order).
     */
    static final int EXACT_BATCH = 16;
    /** Quantized activations of the matmul in progress on each calling thread, reused. */
    private final ThreadLocal<Q8Activations> q8 = ThreadLocal.withInitial(Q8Activations::new);
    /** The float path's K-quant row (dequantized, then multiplied), per thread. */
    private static final ThreadLocal<float[]> K_ROW = new ThreadLocal<>();

    /**
     * Kernels on {@code threads} threads, the caller being one of them; quantized weights multiply
     * 8-bit activations unless the system property {@code jcascade.activations} is {@code f32}.
     */
    public PanamaKernels(int threads) {
        this(threads, !"f32".equalsIgnoreCase(System.getProperty("jcascade.activations", "q8")));
    }

    /**
     * Kernels on {@code threads} threads; {@code int8Activations} chooses llama.cpp's 8-bit
     * activation path for quantized weights (true) or the float path (false).
     */
    public PanamaKernels(int threads, boolean int8Activations) {
        this.int8 = int8Activations;
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        this.threads = threads;
        this.pool = new WorkerPool(threads);
        this.scratch = new float[threads][];
    }

    @Override
    public int threads() {
        return threads;
    }

    /** Whether quantized weights multiply 8-bit quantized activations. */
    public boolean usesInt8Activations() {
        return int8;
    }

    @Override
    public void close() {
        pool.close();
    }

    /** Worker threads still alive (the caller not counted); for tests. */
    int liveWorkerThreads() {
        return pool.liveWorkers();
    }

    // ---------------------------------------------------------------------------------------------
    // matmul

    @Override
    public void matmul(WeightMatrix w, float[] x, int xOffset, int xStride, float[] out, int outOffset, int outStride,
            int nTokens) {
        checkSupported(w.type());
        int rows = w.rows();
        int cols = w.cols();
        if (nTokens <= 0 || rows == 0) {
            return;
        }
        // Fail on the caller with a clear message rather than in a worker.
        Objects.checkFromIndexSize(xOffset, (long) (nTokens - 1) * xStride + cols, x.length);
        Objects.checkFromIndexSize(outOffset, (long) (nTokens - 1) * outStride + rows, out.length);
        Q8Activations xq = null;
        if (int8 && (w.type() == GgmlType.F16 || w.type() == GgmlType.BF16) && nTokens <= EXACT_BATCH) {
            // llama.cpp multiplies half-precision weights with activations rounded to the same type
            x = roundedActivations(w.type(), x, xOffset, xStride, cols, nTokens);
            xOffset = 0;
            xStride = cols;
        }
        if (int8 && w.type().isQuantized()) {
            if (nTokens > EXACT_BATCH) {
                // Long batches: the 8-bit activations back as floats, multiplied in the float 4x4
                // tiles below. Without 8-bit dot instructions the float tile does ~4x fewer vector
                // operations per weight than integer dots; the products are those of the integer
                // path (exact floats for Q8_0/Q4_0), only the float rounding of the sums differs.
                // Short batches (chat turns, the tests against llama.cpp) take the integer dots row
                // by row (the row stays in L1 across the tokens): llama.cpp's numbers.
                x = quantizedFloats(w.type(), x, xOffset, xStride, cols, nTokens, null);
                xOffset = 0;
                xStride = cols;
            } else {
                xq = q8.get();
                xq.quantize(w.type(), x, xOffset, xStride, cols, nTokens);
            }
        }
        if ((long) rows * cols * nTokens >= MIN_PARALLEL_WORK && threads > 1) {
            if (pool.tryAcquire()) {
                MatmulJob j = matmulJob;
                try {
                    pool.run(j.set(w, null, x, xOffset, xStride, out, outOffset, outStride, nTokens, threads, xq));
                } finally {
                    j.clear();
                    pool.release();
                }
                return;
            }
        }
        if (xq != null) {
            matmulRowsInt8(w, xq, out, outOffset, outStride, nTokens, 0, rows);
            return;
        }
        float[] s = inlineScratch.get();
        if (nTokens > 1 && (s == null || s.length < 4 * cols)) {
            s = new float[4 * cols];
            inlineScratch.set(s);
        }
        matmulRows(w, null, x, xOffset, xStride, out, outOffset, outStride, nTokens, 0, rows, s);
    }

    /**
     * {@code w} repacked for these kernels' 8-bit dot products ({@link PackedMatrix}; Q4_0, Q4_K and
     * Q6_K on 512-bit machines), packed on the kernels' threads (pages of a read-only file mapping
     * are released as they are packed); null where the file layout is
     * what they multiply best (other types and machines, the float activation path, 1-row
     * weights), or when the system property {@code jcascade.repack} is {@code false}.
     */
    @Override
    public PackedMatrix pack(WeightMatrix w) {
        // F16 rows too wide for L1 are cut into column pieces on any machine, on either activation path
        boolean f16 = w.type() == GgmlType.F16;
        if ((!f16 && (!int8 || !Int8Dot.WIDE)) || w.rows() < 2 || !PackedMatrix.supports(w.type(), w.cols())
                // llama.cpp sums Q4_0 in its repacked order only for matrices of 8k rows (ScalarInt8.row)
                || (w.type() == GgmlType.Q4_0 && w.rows() % 8 != 0)
                // Q8_0 has only the two-row interleaved layout
                || (w.type() == GgmlType.Q8_0 && PackedMatrix.interleaveFor(w.type(), w.rows()) == 1)
                || "false".equalsIgnoreCase(System.getProperty("jcascade.repack", "true"))) {
            return null;
        }
        PackedMatrix p = PackedMatrix.allocate(w);
        int rows = w.rows();
        int chunk = 256;
        // A read-only file mapping's pages are dropped from the process as soon as they are packed
        // (madvise DONTNEED; the file is not read again), so packing never holds both copies of a
        // whole tensor at once: the process keeps about the file's size, not twice.
        boolean release = w.data().isMapped() && w.data().isReadOnly();
        parallelFor((rows + chunk - 1) / chunk, i -> {
            int r0 = i * chunk, r1 = Math.min(rows, (i + 1) * chunk);
            PackedMatrix.packRows(w, p, r0, r1);
            if (release) {
                try {
                    w.data().asSlice(r0 * w.rowBytes(), (r1 - r0) * w.rowBytes()).unload();
                } catch (RuntimeException e) {
                    // not droppable here: the pages stay mapped, which costs memory only
                }
            }
        });
        return p;
    }

    @Override
    public void dequantizeRow(PackedMatrix w, int row, float[] out, int outOffset) {
        Objects.checkIndex(row, w.rows());
        Objects.checkFromIndexSize(outOffset, w.cols(), out.length);
        PackedDot.dequantizeRow(w, row, out, outOffset);
    }

    /** As {@link #matmul(WeightMatrix, float[], int, int, float[], int, int, int)}, on a packed matrix. */
    @Override
    public void matmul(PackedMatrix w, float[] x, int xOffset, int xStride, float[] out, int outOffset, int outStride,
            int nTokens) {
        int rows = w.rows();
        int cols = w.cols();
        if (nTokens <= 0 || rows == 0) {
            return;
        }
        Objects.checkFromIndexSize(xOffset, (long) (nTokens - 1) * xStride + cols, x.length);
        Objects.checkFromIndexSize(outOffset, (long) (nTokens - 1) * outStride + rows, out.length);
        Q8Activations xq = null;
        if (w.type() == GgmlType.F16) {
            // column pieces: the file layout's float paths, activations rounded as there
            if (int8 && nTokens <= EXACT_BATCH) {
                x = roundedActivations(GgmlType.F16, x, xOffset, xStride, cols, nTokens);
                xOffset = 0;
                xStride = cols;
            }
        } else if (nTokens > EXACT_BATCH) {
            // past EXACT_BATCH tokens the float tiles (interleaved Q4_0 and Q4_K: 16 rows dequantized
            // column by column, then 16-row tiles; faster than their integer kernels from 17 tokens):
            // as the file layout, the 8-bit activations as floats, here in the packed element order,
            // against rows dequantized in that order
            x = quantizedFloats(w.type(), x, xOffset, xStride, cols, nTokens, PackedMatrix.floatPathOrder(w));
            xOffset = 0;
            xStride = cols;
        } else {
            xq = q8.get();
            xq.quantize(w.type(), x, xOffset, xStride, cols, nTokens);
            if (w.interleaved()) {
                xq.interleaved(w.type(), nTokens);
            } else {
                xq.permute(PackedMatrix.permutation(w), nTokens);
            }
        }
        if ((long) rows * cols * nTokens >= MIN_PARALLEL_WORK && threads > 1) {
            if (pool.tryAcquire()) {
                MatmulJob j = matmulJob;
                try {
                    pool.run(j.set(null, w, x, xOffset, xStride, out, outOffset, outStride, nTokens, threads, xq));
                } finally {
                    j.clear();
                    pool.release();
                }
                return;
            }
        }
        if (xq != null) {
            matmulRowsPacked(w, xq, out, outOffset, outStride, nTokens, 0, rows);
            return;
        }
        float[] s = inlineScratch.get();
        if (s == null || s.length < floatRows(w) * cols) {
            s = new float[floatRows(w) * cols];
            inlineScratch.set(s);
        }
        matmulRows(null, w, x, xOffset, xStride, out, outOffset, outStride, nTokens, 0, rows, s);
    }

    /**
     * One token ({@code x[xOffset ..)}) times several matrices with the same columns, as one job on
     * the threads: {@code outs[i][r] = W_i[r] . x}, with one activation quantization and one
     * dispatch instead of one per matrix (a decode step's attention projections, or gate and up).
     * With {@code swiglu} (two matrices, gate and up) {@code outs[0][r]} then becomes
     * {@code silu(gate[r] . x) * (up[r] . x)}, computed by {@link #swiglu}'s formula on each chunk
     * of rows as soon as both products are there. Each matrix is {@code packed[i]} when that is not
     * null, else {@code ws[i]}. Each row is computed by the same code as in separate {@link #matmul}
     * calls (and {@link #swiglu}); matrices of different types or layouts are simply multiplied one
     * by one.
     */
    public void matvecs(WeightMatrix[] ws, PackedMatrix[] packed, float[] x, int xOffset, float[][] outs,
            boolean swiglu) {
        int m = ws.length;
        GgmlType type = ws[0].type();
        boolean isPacked = packed != null && packed[0] != null;
        boolean same = m <= 16 && (!swiglu || (m == 2 && ws[0].rows() == ws[1].rows()));
        for (int i = 0; i < m && same; i++) {
            same = ws[i].type() == type && ws[i].cols() == ws[0].cols()
                    && (isPacked ? packed[i] != null && packed[i].interleave == packed[0].interleave
                            && packed[i].type() != GgmlType.F16 // its own kernel, through matmul
                            : packed == null || packed[i] == null);
        }
        if (!same || (type.isQuantized() && !int8)) {
            for (int i = 0; i < m; i++) {
                if (packed != null && packed[i] != null) {
                    matmul(packed[i], x, xOffset, ws[i].cols(), outs[i], 0, ws[i].rows(), 1);
                } else {
                    matmul(ws[i], x, xOffset, ws[i].cols(), outs[i], 0, ws[i].rows(), 1);
                }
            }
            if (swiglu) {
                swiglu(outs[0], 0, outs[1], 0, outs[0], 0, ws[0].rows());
            }
            return;
        }
        int cols = ws[0].cols();
        Objects.checkFromIndexSize(xOffset, cols, x.length);
        for (int i = 0; i < m; i++) {
            checkSupported(ws[i].type());
            Objects.checkFromIndexSize(0, ws[i].rows(), outs[i].length);
        }
        if (int8 && (type == GgmlType.F16 || type == GgmlType.BF16)) {
            x = roundedActivations(type, x, xOffset, cols, cols, 1); // as matmul
            xOffset = 0;
        }
        Q8Activations xq = null;
        if (type.isQuantized()) {
            xq = q8.get();
            xq.quantize(type, x, xOffset, cols, cols, 1);
            if (isPacked && packed[0].interleaved()) {
                xq.interleaved(type, 1);
            } else if (isPacked) {
                xq.permute(PackedMatrix.permutation(type), 1);
            }
        }
        long work = 0;
        for (int i = 0; i < (swiglu ? 2 : m); i++) {
            work += (long) ws[i].rows() * cols;
        }
        if (work >= MIN_PARALLEL_WORK && threads > 1 && pool.tryAcquire()) {
            MultiJob j = multiJob; // ours while we hold the pool
            try {
                pool.run(j.set(ws, isPacked ? packed : null, x, xOffset, outs, swiglu, xq, threads));
            } finally {
                j.clear();
                pool.release();
            }
        } else {
            // on this thread alone (one thread, little work, or the pool busy with another caller's job)
            MultiJob j = inlineMultiJob.get();
            j.set(ws, isPacked ? packed : null, x, xOffset, outs, swiglu, xq, 1).run(0);
            j.clear();
        }
    }

    /** The job of {@link #matvecs}: chunks of a virtual row range over all the matrices (with swiglu, over gate rows). */
    private final class MultiJob implements WorkerPool.Job {
        private WeightMatrix[] ws;
        private PackedMatrix[] ps;
        private float[] x;
        private float[][] outs;
        private Q8Activations xq;
        private boolean swiglu;
        private int xOffset, total, chunk;
        private final int[] starts = new int[16];
        private final AtomicInteger next = new AtomicInteger();

        MultiJob set(WeightMatrix[] ws, PackedMatrix[] ps, float[] x, int xOffset, float[][] outs, boolean swiglu,
                Q8Activations xq, int threads) {
            this.ws = ws;
            this.ps = ps;
            this.x = x;
            this.xOffset = xOffset;
            this.outs = outs;
            this.swiglu = swiglu;
            this.xq = xq;
            int t = 0;
            for (int i = 0; i < (swiglu ? 1 : ws.length); i++) {
                starts[i] = t;
                t += ws[i].rows();
            }
            this.total = t;
            int c = Math.max(1, (t + 8 * threads - 1) / (8 * threads));
            // interleaved rows go a group at a time (every matrix's rows are whole groups, so are the chunks)
            this.chunk = ps != null ? roundUp(c, ps[0].interleave) : c;
            next.set(0);
            return this;
        }

        void clear() {
            ws = null;
            ps = null;
            x = null;
            outs = null;
            xq = null;
        }

        @Override
        public void run(int participant) {
            int r0;
            while ((r0 = next.getAndAdd(chunk)) < total) {
                int r1 = Math.min(total, r0 + chunk);
                if (swiglu) {
                    rows(0, r0, r1);
                    rows(1, r0, r1);
                    float[] g = outs[0], u = outs[1];
                    for (int r = r0; r < r1; r++) {
                        g[r] = GgmlMath.swiglu(g[r], u[r], r, total);
                    }
                    continue;
                }
                for (int i = 0; i < ws.length; i++) {
                    int a = Math.max(r0, starts[i]) - starts[i];
                    int b = Math.min(r1, starts[i] + ws[i].rows()) - starts[i];
                    if (a < b) {
                        rows(i, a, b);
                    }
                }
            }
        }

        private void rows(int i, int a, int b) {
            if (ps != null) {
                matmulRowsPacked(ps[i], xq, outs[i], 0, 0, 1, a, b);
            } else if (xq != null) {
                matmulRowsInt8(ws[i], xq, outs[i], 0, 0, 1, a, b);
            } else {
                matmulRows(ws[i], null, x, xOffset, ws[i].cols(), outs[i], 0, 0, 1, a, b, null);
            }
        }
    }

    private static int roundUp(int n, int multiple) {
        return (n + multiple - 1) / multiple * multiple;
    }

    /**
     * Rows {@code [r0, r1)} of a packed matrix on 8-bit activations (permuted, or paired for an
     * interleaved matrix, whose row ranges are whole groups), one row or group after another.
     */
    private static void matmulRowsPacked(PackedMatrix w, Q8Activations xq, float[] out, int outOffset, int outStride,
            int nTokens, int r0, int r1) {
        if (w.interleaved()) {
            int il = w.interleave;
            for (int g = r0 / il; g < r1 / il; g++) {
                // a group's rows stay in L1/L2 while every token passes
                for (int t = 0; t < nTokens; t++) {
                    PackedDot.group(w, g, xq, t, out, outOffset + t * outStride + il * g);
                }
            }
            return;
        }
        for (int r = r0; r < r1; r++) {
            for (int t = 0; t < nTokens; t++) {
                out[outOffset + t * outStride + r] = PackedDot.dot(w, r, xq, t);
            }
        }
    }

    private final ThreadLocal<float[]> promptActivations = ThreadLocal.withInitial(() -> new float[0]);

    /**
     * A prompt's activations quantized to 8 bits and back as floats
     * ({@link Q8Activations#quantizedFloats}, in the element order {@code perm} where not null),
     * the tokens split over the threads: one pass, where quantizing a 256-token batch on one
     * thread took about as long as a 512x2048 product of it.
     */
    private float[] quantizedFloats(GgmlType type, float[] x, int xOffset, int xStride, int cols, int nTokens,
            int[] perm) {
        float[] out = promptActivations.get();
        if (out.length < cols * nTokens) {
            out = new float[cols * nTokens];
            promptActivations.set(out);
        }
        float[] dst = out;
        int parts = Math.min(nTokens, 4 * threads);
        parallelFor(parts, i -> Q8Activations.quantizedFloats(type, x, xOffset, xStride, cols, i * nTokens / parts,
                (i + 1) * nTokens / parts, perm, dst));
        return out;
    }

    private final ThreadLocal<float[]> rounded = ThreadLocal.withInitial(() -> new float[0]);

    /** The activation rows rounded to f16 or bf16 (to nearest even, as ggml converts), packed. */
    private float[] roundedActivations(GgmlType type, float[] x, int xOffset, int xStride, int cols, int nTokens) {
        float[] r = rounded.get();
        if (r.length < cols * nTokens) {
            r = new float[cols * nTokens];
            rounded.set(r);
        }
        for (int t = 0; t < nTokens; t++) {
            for (int i = 0; i < cols; i++) {
                float v = x[xOffset + t * xStride + i];
                r[t * cols + i] = type == GgmlType.F16 ? Float.float16ToFloat(Float.floatToFloat16(v)) : toBf16(v);
            }
        }
        return r;
    }

    /** ggml's fp32 to bf16: round to nearest even (NaN kept quiet), back as a float. */
    static float toBf16(float v) {
        int u = Float.floatToRawIntBits(v);
        if ((u & 0x7fffffff) > 0x7f800000) {
            return Float.intBitsToFloat(((u >>> 16) | 64) << 16);
        }
        return Float.intBitsToFloat(((u + (0x7fff + ((u >>> 16) & 1))) >>> 16) << 16);
    }

    private float[] scratchFor(int participant, int size) {
        float[] s = scratch[participant];
        if (s == null || s.length < size) {
            s = new float[size]; // grows once to the widest matrix, then reused
            scratch[participant] = s;
        }
        return s;
    }

    /**
     * Rows {@code [r0, r1)} on 8-bit activations, one row after another; used for single tokens
     * (batches go the float tile way on the dequantized activations), but correct for any count.
     */
    private static void matmulRowsInt8(WeightMatrix w, Q8Activations xq, float[] out, int outOffset, int outStride,
            int nTokens, int r0, int r1) {
        GgmlType type = w.type();
        MemorySegment seg = w.data();
        int cols = w.cols();
        long rowBytes = w.rowBytes();
        boolean wide = Int8Dot.wide(type);
        boolean repacked = w.rows() % 8 == 0; // see ScalarInt8.row: llama.cpp repacks such Q4_0 matrices
        for (int r = r0; r < r1; r++) {
            for (int t = 0; t < nTokens; t++) {
                out[outOffset + t * outStride + r] = wide
                        ? Int8Dot.dotWide(type, seg, r * rowBytes, cols, xq, t, repacked)
                        : Int8Dot.dot(type, seg, r * rowBytes, cols, xq, t, repacked);
            }
        }
    }

    /** Rows {@code [r0, r1)} for all tokens, of {@code w} or, where not null, of {@code p} (x then in its order). */
    private static void matmulRows(WeightMatrix w, PackedMatrix p, float[] x, int xOffset, int xStride, float[] out,
            int outOffset, int outStride, int nTokens, int r0, int r1, float[] row) {
        if (p != null) {
            matmulRowsPackedFloat(p, x, xOffset, xStride, out, outOffset, outStride, nTokens, r0, r1, row);
            return;
        }
        GgmlType type = w.type();
        MemorySegment seg = w.data();
        int cols = w.cols();
        long rowBytes = w.rowBytes();
        if (nTokens == 1) {
            if (type == GgmlType.F16) {
                // converted a row at a time by a loop C2 vectorizes (vcvtph2ps), then a float dot
                // product from L1: same values and the same summation order as dotF16
                float[] buf = rowBuffer(F16_CHUNK);
                for (int r = r0; r < r1; r++) {
                    out[outOffset + r] = dotF16Chunked(seg, r * rowBytes, x, xOffset, cols, buf);
                }
                return;
            }
            for (int r = r0; r < r1; r++) {
                out[outOffset + r] = dotRow(type, seg, r * rowBytes, x, xOffset, cols);
            }
            return;
        }
        if ((type == GgmlType.F16 || type == GgmlType.BF16) && nTokens <= EXACT_BATCH) {
            // llama.cpp's order for half-precision batches: tinyBLAS (8 lanes) where 8 divides the
            // row, else its vec_dot as for one token
            boolean bf = type == GgmlType.BF16;
            for (int r = r0; r < r1; r++) {
                for (int t = 0; t < nTokens; t++) {
                    int xt = xOffset + t * xStride;
                    long o = r * rowBytes;
                    out[outOffset + t * outStride + r] = cols % 8 == 0
                            ? (bf ? dotBF16Lanes8(seg, o, x, xt, cols) : dotF16Lanes8(seg, o, x, xt, cols))
                            : (bf ? dotBF16(seg, o, x, xt, cols) : dotF16(seg, o, x, xt, cols));
                }
            }
            return;
        }
        if (type == GgmlType.F32 && nTokens <= EXACT_BATCH) {
            // llama.cpp's order for F32 batches: tinyBLAS (8 lanes) where 8 divides the row, else
            // ggml_vec_dot_f32 token by token, as for one token
            for (int r = r0; r < r1; r++) {
                for (int t = 0; t < nTokens; t++) {
                    out[outOffset + t * outStride + r] = cols % 8 == 0
                            ? dotF32Lanes8(seg, r * rowBytes, x, xOffset + t * xStride, cols)
                            : dotF32(seg, r * rowBytes, x, xOffset + t * xStride, cols);
                }
            }
            return;
        }
        // Prompt batch. Token blocks outer so that the block's x rows stay in L2 while every row of
        // the chunk passes; within a block, 4 dequantized rows (scratch) against 4 tokens at a time.
        int block = tokenBlock(cols);
        for (int t0 = 0; t0 < nTokens; t0 += block) {
            int t1 = Math.min(nTokens, t0 + block);
            int r = r0;
            for (; r + 4 <= r1; r += 4) {
                for (int k = 0; k < 4; k++) {
                    dequantize(type, seg, (r + k) * rowBytes, cols, row, k * cols);
                }
                int t = t0;
                for (; t + 4 <= t1; t += 4) {
                    tile4x4(row, cols, x, xOffset + t * xStride, xStride, out, outOffset + t * outStride + r,
                            outStride);
                }
                for (; t < t1; t++) {
                    // one token against the 4 rows: the same 1-by-4 kernel with the roles swapped
                    dot4(x, xOffset + t * xStride, cols, row, 0, cols, 2 * cols, 3 * cols, out,
                            outOffset + t * outStride + r, 1);
                }
            }
            for (; r < r1; r++) {
                dequantize(type, seg, r * rowBytes, cols, row, 0);
                int t = t0;
                for (; t + 4 <= t1; t += 4) {
                    int xo = xOffset + t * xStride;
                    dot4(row, 0, cols, x, xo, xo + xStride, xo + 2 * xStride, xo + 3 * xStride, out,
                            outOffset + t * outStride + r, outStride);
                }
                for (; t < t1; t++) {
                    out[outOffset + t * outStride + r] = dotArrays(row, 0, x, xOffset + t * xStride, cols);
                }
            }
        }
    }

    /**
     * Rows of scratch the float path of {@code p} needs: 4 dequantized rows, or for interleaved
     * Q4_0 and Q4_K the whole group of 16 column by column (a row alone is 4 bytes of every 64).
     */
    private static int floatRows(PackedMatrix p) {
        return groupDequantized(p) ? PackedMatrix.INTERLEAVE : 4;
    }

    private static boolean groupDequantized(PackedMatrix p) {
        return p.interleaved() && p.type() != GgmlType.Q8_0;
    }

    /** As the prompt-batch part of {@link #matmulRows}, for packed rows dequantized in packed order. */
    private static void matmulRowsPackedFloat(PackedMatrix p, float[] x, int xOffset, int xStride, float[] out,
            int outOffset, int outStride, int nTokens, int r0, int r1, float[] row) {
        int cols = p.cols();
        if (p.type() == GgmlType.F16 && nTokens <= EXACT_BATCH) {
            matmulRowsF16Pieces(p, x, xOffset, xStride, out, outOffset, outStride, nTokens, r0, r1, row);
            return;
        }
        if (groupDequantized(p)) {
            // row ranges are whole groups: each group dequantized once for all the tokens (16 rows
            // of floats stay in L2), column by column, then 16-row tiles of 8 tokens
            for (int g = r0 / PackedMatrix.INTERLEAVE; g < r1 / PackedMatrix.INTERLEAVE; g++) {
                PackedDot.dequantizeGroupColumns(p, g, row);
                int o = outOffset + PackedMatrix.INTERLEAVE * g;
                int t = 0;
                for (; t + 8 <= nTokens; t += 8) {
                    tile16x8(row, cols, x, xOffset + t * xStride, xStride, out, o + t * outStride, outStride);
                }
                for (; t < nTokens; t++) {
                    tile16x1(row, cols, x, xOffset + t * xStride, out, o + t * outStride);
                }
            }
            return;
        }
        int block = tokenBlock(cols);
        for (int t0 = 0; t0 < nTokens; t0 += block) {
            int t1 = Math.min(nTokens, t0 + block);
            int r = r0;
            for (; r + 4 <= r1; r += 4) {
                for (int k = 0; k < 4; k++) {
                    PackedDot.dequantizePacked(p, r + k, row, k * cols);
                }
                int t = t0;
                for (; t + 4 <= t1; t += 4) {
                    tile4x4(row, cols, x, xOffset + t * xStride, xStride, out, outOffset + t * outStride + r,
                            outStride);
                }
                for (; t < t1; t++) {
                    dot4(x, xOffset + t * xStride, cols, row, 0, cols, 2 * cols, 3 * cols, out,
                            outOffset + t * outStride + r, 1);
                }
            }
            for (; r < r1; r++) {
                PackedDot.dequantizePacked(p, r, row, 0);
                for (int t = t0; t < t1; t++) {
                    out[outOffset + t * outStride + r] = dotArrays(row, 0, x, xOffset + t * xStride, cols);
                }
            }
        }
    }

    /** One matmul at a time, its arguments in fields so that a call allocates nothing. */
    private final class MatmulJob implements WorkerPool.Job {
        private WeightMatrix w;
        private PackedMatrix p;
        private float[] x;
        private float[] out;
        private int xOffset, xStride, outOffset, outStride, nTokens, rows, chunk;
        private Q8Activations xq;
        private final AtomicInteger next = new AtomicInteger();

        MatmulJob set(WeightMatrix w, PackedMatrix p, float[] x, int xOffset, int xStride, float[] out, int outOffset,
                int outStride, int nTokens, int threads, Q8Activations xq) {
            this.w = w;
            this.p = p;
            this.xq = xq;
            this.x = x;
            this.xOffset = xOffset;
            this.xStride = xStride;
            this.out = out;
            this.outOffset = outOffset;
            this.outStride = outStride;
            this.nTokens = nTokens;
            this.rows = p != null ? p.rows() : w.rows();
            // About 8 chunks per thread: enough to even out a late or descheduled thread.
            int c = Math.max(1, (rows + 8 * threads - 1) / (8 * threads));
            // Batches work in groups of 4 rows; keep chunks whole groups so no row goes the slow way.
            // Interleaved rows are computed a group at a time (integer path and float path alike).
            // F16 pieces: one token goes a group of rows at a time (its pieces stream in order)
            this.chunk = p != null && p.type() == GgmlType.F16 && nTokens == 1 ? roundUp(c, PackedMatrix.F16_GROUP)
                    : p != null && xq != null ? roundUp(c, p.interleave)
                    : nTokens > 1 && xq == null ? roundUp((c + 3) & ~3, p != null ? p.interleave : 1) : c;
            next.set(0);
            return this;
        }

        void clear() {
            w = null;
            p = null;
            x = null;
            out = null;
            xq = null;
        }

        @Override
        public void run(int participant) {
            if (xq != null) {
                int r0;
                while ((r0 = next.getAndAdd(chunk)) < rows) {
                    if (p != null) {
                        matmulRowsPacked(p, xq, out, outOffset, outStride, nTokens, r0, Math.min(rows, r0 + chunk));
                    } else {
                        matmulRowsInt8(w, xq, out, outOffset, outStride, nTokens, r0, Math.min(rows, r0 + chunk));
                    }
                }
                return;
            }
            int cols = p != null ? p.cols() : w.cols();
            float[] row = nTokens > 1 || p != null ? scratchFor(participant, (p != null ? floatRows(p) : 4) * cols) : null;
            int r0;
            while ((r0 = next.getAndAdd(chunk)) < rows) {
                matmulRows(w, p, x, xOffset, xStride, out, outOffset, outStride, nTokens, r0,
                        Math.min(rows, r0 + chunk), row);
            }
        }
    }

    private static void checkSupported(GgmlType type) {
        switch (type) {
            case F32, F16, BF16, Q8_0, Q4_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> { }
            default -> throw new UnsupportedOperationException("weight type " + type + " is not supported by the CPU kernels");
        }
    }

    /** Dot product of the row at {@code off} (in {@code type}'s layout) with {@code x[xo .. xo+n)}. */
    private static float dotRow(GgmlType type, MemorySegment seg, long off, float[] x, int xo, int n) {
        return switch (type) {
            case F32 -> dotF32(seg, off, x, xo, n);
            case F16 -> dotF16(seg, off, x, xo, n);
            case BF16 -> dotBF16(seg, off, x, xo, n);
            case Q8_0 -> VECTOR_BLOCKS ? dotQ8(seg, off, x, xo, n) : dotScalar(type, seg, off, x, xo, n);
            case Q4_0 -> VECTOR_BLOCKS ? dotQ4(seg, off, x, xo, n) : dotScalar(type, seg, off, x, xo, n);
            case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> dotK(type, seg, off, x, xo, n);
            default -> throw new UnsupportedOperationException("weight type " + type + " is not supported");
        };
    }

    /** Float path for K-quants: the row dequantized into a per-thread buffer, then a float dot product. */
    private static float dotK(GgmlType type, MemorySegment seg, long off, float[] x, int xo, int n) {
        float[] row = rowBuffer(n);
        Int8Dot.dequantizeK(type, seg, off, n, row, 0);
        return dotArrays(row, 0, x, xo, n);
    }

    /** Halfs converted per chunk by {@link #dotF16Chunked}: the chunk stays in L1 between conversion and use. */
    private static final int F16_CHUNK = 512;

    /**
     * F16 row . x as {@link #dotF16} sums it (ggml_vec_dot_f16's order), with the halfs converted
     * {@value #F16_CHUNK} at a time by {@link #halfsToFloats} (a loop C2 vectorizes) into
     * {@code buf}, where the products read them from L1.
     */
    private static float dotF16Chunked(MemorySegment seg, long off, float[] x, int xo, int n, float[] buf) {
        FloatVector a0 = FloatVector.zero(F8), a1 = FloatVector.zero(F8), a2 = FloatVector.zero(F8),
                a3 = FloatVector.zero(F8);
        int full = n & ~31;
        for (int c = 0; c < full; c += F16_CHUNK) {
            int len = Math.min(F16_CHUNK, full - c);
            halfsToFloats(seg, off + 2L * c, buf, 0, len);
            for (int i = 0; i < len; i += 32) {
                int xi = xo + c + i;
                a0 = FloatVector.fromArray(F8, buf, i).fma(FloatVector.fromArray(F8, x, xi), a0);
                a1 = FloatVector.fromArray(F8, buf, i + 8).fma(FloatVector.fromArray(F8, x, xi + 8), a1);
                a2 = FloatVector.fromArray(F8, buf, i + 16).fma(FloatVector.fromArray(F8, x, xi + 16), a2);
                a3 = FloatVector.fromArray(F8, buf, i + 24).fma(FloatVector.fromArray(F8, x, xi + 24), a3);
            }
        }
        double s = 0;
        if (full > 0) {
            s = reduce4x8(a0, a1, a2, a3);
        }
        for (int i = full; i < n; i++) {
            s += (double) (Float.float16ToFloat(seg.get(I16_LE, off + 2L * i)) * x[xo + i]);
        }
        return (float) s;
    }

    /**
     * Rows {@code [r0, r1)} of F16 weights in column pieces ({@link PackedMatrix}) for up to
     * {@link #EXACT_BATCH} tokens, each row summed as the file layout sums it: one token as
     * {@link #dotF16Chunked} (ggml_vec_dot_f16's order), several as {@link #dotF16Lanes8}
     * (tinyBLAS's; the columns divide by 32). One token goes a group of rows at a time, piece by
     * piece over the group's rows, each row's four accumulators kept in {@code scratch} between
     * pieces (layout: {@code scratch[0, 512)} the converted halfs, then 32 floats a row of the
     * group); several tokens convert each row once into {@code scratch} and take every token there.
     */
    private static void matmulRowsF16Pieces(PackedMatrix p, float[] x, int xOffset, int xStride, float[] out,
            int outOffset, int outStride, int nTokens, int r0, int r1, float[] scratch) {
        int cols = p.cols();
        MemorySegment seg = p.data;
        if (nTokens > 1) {
            for (int r = r0; r < r1; r++) {
                PackedDot.dequantizePacked(p, r, scratch, 0);
                for (int t = 0; t < nTokens; t++) {
                    out[outOffset + t * outStride + r] = dotLanes8(scratch, x, xOffset + t * xStride, cols);
                }
            }
            return;
        }
        int accBase = F16_CHUNK;
        for (int g0 = r0 / PackedMatrix.F16_GROUP * PackedMatrix.F16_GROUP; g0 < r1; g0 += PackedMatrix.F16_GROUP) {
            int a = Math.max(r0, g0), b = Math.min(r1, g0 + PackedMatrix.F16_GROUP);
            for (int c = 0; c < cols; c += PackedMatrix.F16_PIECE) {
                int len = Math.min(PackedMatrix.F16_PIECE, cols - c);
                boolean first = c == 0, last = c + len == cols;
                for (int r = a; r < b; r++) {
                    int ao = accBase + 32 * (r - g0);
                    FloatVector a0, a1, a2, a3;
                    if (first) {
                        a0 = FloatVector.zero(F8);
                        a1 = a0;
                        a2 = a0;
                        a3 = a0;
                    } else {
                        a0 = FloatVector.fromArray(F8, scratch, ao);
                        a1 = FloatVector.fromArray(F8, scratch, ao + 8);
                        a2 = FloatVector.fromArray(F8, scratch, ao + 16);
                        a3 = FloatVector.fromArray(F8, scratch, ao + 24);
                    }
                    long off = p.f16PieceOffset(r, c);
                    for (int k = 0; k < len; k += F16_CHUNK) {
                        int n = Math.min(F16_CHUNK, len - k);
                        packedHalfsToFloats(seg, off + 2L * k, scratch, 0, n);
                        for (int i = 0; i < n; i += 32) {
                            int xi = xOffset + c + k + i;
                            a0 = FloatVector.fromArray(F8, scratch, i).fma(FloatVector.fromArray(F8, x, xi), a0);
                            a1 = FloatVector.fromArray(F8, scratch, i + 8).fma(FloatVector.fromArray(F8, x, xi + 8), a1);
                            a2 = FloatVector.fromArray(F8, scratch, i + 16).fma(FloatVector.fromArray(F8, x, xi + 16), a2);
                            a3 = FloatVector.fromArray(F8, scratch, i + 24).fma(FloatVector.fromArray(F8, x, xi + 24), a3);
                        }
                    }
                    if (last) {
                        out[outOffset + r] = reduce4x8(a0, a1, a2, a3);
                    } else {
                        a0.intoArray(scratch, ao);
                        a1.intoArray(scratch, ao + 8);
                        a2.intoArray(scratch, ao + 16);
                        a3.intoArray(scratch, ao + 24);
                    }
                }
            }
        }
    }

    /** {@code w[0, n) . x[xo ..)} as {@link #dotF16Lanes8} sums it (n a multiple of 8), on floats. */
    private static float dotLanes8(float[] w, float[] x, int xo, int n) {
        FloatVector acc = FloatVector.zero(F8);
        for (int i = 0; i < n; i += 8) {
            acc = FloatVector.fromArray(F8, w, i).fma(FloatVector.fromArray(F8, x, xo + i), acc);
        }
        return Int8Dot.hsum8(acc);
    }

    /** This thread's buffer of at least n floats for one dequantized row. */
    private static float[] rowBuffer(int n) {
        float[] row = K_ROW.get();
        if (row == null || row.length < n) {
            row = new float[n]; // grows once to the widest row, then reused
            K_ROW.set(row);
        }
        return row;
    }

    /**
     * n little-endian IEEE halfs at {@code off} to floats. A plain counted loop of
     * {@link Float#float16ToFloat} over a memory segment, which C2's auto-vectorizer turns into
     * 16-lane hardware conversions (vcvtph2ps): several times faster than {@link #halfToFloat}'s
     * bit manipulation, which the Vector API (no half-float lanes) needs.
     */
    static void halfsToFloats(MemorySegment seg, long off, float[] out, int oo, int n) {
        for (int i = 0; i < n; i++) {
            out[oo + i] = Float.float16ToFloat(seg.get(I16_LE, off + 2L * i));
        }
    }

    /**
     * {@link #halfsToFloats} for {@link PackedMatrix} copies only. The same loop twice on purpose:
     * C2 profiles the segment's class per method, and file mappings and packed copies are two
     * classes; one loop seeing both, after a prompt had run through the packed copies, made every
     * file-layout F16 product of the decode steps after it about 1.5x slower (docs/BENCHMARKS.md).
     */
    static void packedHalfsToFloats(MemorySegment seg, long off, float[] out, int oo, int n) {
        for (int i = 0; i < n; i++) {
            out[oo + i] = Float.float16ToFloat(seg.get(I16_LE, off + 2L * i));
        }
    }

    /**
     * F32 row: n little-endian floats, summed as ggml_vec_dot_f32 on AVX2 (what llama.cpp runs for a
     * single token): four accumulators of 8 lanes over steps of 32, reduced (a0+a2) + (a1+a3), the 8
     * lanes as ((l0+l4) + (l1+l5)) + ((l2+l6) + (l3+l7)), then the last n mod 32 products added one
     * by one (rounded product, rounded sum).
     */
    /** F32 row as tinyBLAS sums it (n a multiple of 8): lane j takes i = j mod 8 by fused multiply-add, then hsum8. */
    private static float dotF32Lanes8(MemorySegment seg, long off, float[] x, int xo, int n) {
        FloatVector acc = FloatVector.zero(F8);
        for (int i = 0; i < n; i += 8) {
            acc = FloatVector.fromMemorySegment(F8, seg, off + 4L * i, LE).fma(FloatVector.fromArray(F8, x, xo + i), acc);
        }
        return Int8Dot.hsum8(acc);
    }

    private static float dotF32(MemorySegment seg, long off, float[] x, int xo, int n) {
        FloatVector a0 = FloatVector.zero(F8), a1 = FloatVector.zero(F8), a2 = FloatVector.zero(F8),
                a3 = FloatVector.zero(F8);
        int i = 0;
        for (; i <= n - 32; i += 32) {
            long o = off + 4L * i;
            a0 = FloatVector.fromMemorySegment(F8, seg, o, LE).fma(FloatVector.fromArray(F8, x, xo + i), a0);
            a1 = FloatVector.fromMemorySegment(F8, seg, o + 32, LE).fma(FloatVector.fromArray(F8, x, xo + i + 8), a1);
            a2 = FloatVector.fromMemorySegment(F8, seg, o + 64, LE).fma(FloatVector.fromArray(F8, x, xo + i + 16), a2);
            a3 = FloatVector.fromMemorySegment(F8, seg, o + 96, LE).fma(FloatVector.fromArray(F8, x, xo + i + 24), a3);
        }
        float s = reduce4x8(a0, a1, a2, a3);
        for (; i < n; i++) {
            s += seg.get(F32_LE, off + 4L * i) * x[xo + i];
        }
        return s;
    }

    /**
     * F16 row: n little-endian IEEE halfs, summed as ggml_vec_dot_f16 on AVX2 (one token): four
     * accumulators of 8 lanes over steps of 32 by fused multiply-add, reduced (a0+a2) + (a1+a3),
     * the lanes as ((l0+l4) + (l1+l5)) + ((l2+l6) + (l3+l7)), the rest added in double.
     */
    private static float dotF16(MemorySegment seg, long off, float[] x, int xo, int n) {
        FloatVector a0 = FloatVector.zero(F8), a1 = FloatVector.zero(F8), a2 = FloatVector.zero(F8),
                a3 = FloatVector.zero(F8);
        int i = 0;
        for (; i <= n - 32; i += 32) {
            long o = off + 2L * i;
            a0 = half8(seg, o).fma(FloatVector.fromArray(F8, x, xo + i), a0);
            a1 = half8(seg, o + 16).fma(FloatVector.fromArray(F8, x, xo + i + 8), a1);
            a2 = half8(seg, o + 32).fma(FloatVector.fromArray(F8, x, xo + i + 16), a2);
            a3 = half8(seg, o + 48).fma(FloatVector.fromArray(F8, x, xo + i + 24), a3);
        }
        double s = 0;
        if (i > 0) {
            s = reduce4x8(a0, a1, a2, a3);
        }
        for (; i < n; i++) {
            s += (double) (Float.float16ToFloat(seg.get(I16_LE, off + 2L * i)) * x[xo + i]);
        }
        return (float) s;
    }

    /**
     * ggml's reduction of four 8-lane accumulators, as {@link GgmlMath#reduce4x8}: a copy in this
     * class on purpose, since C2 does not always inline a vector-taking method of another class
     * into these loops, and a call that is not inlined boxes its vectors (a measured 40 % slower
     * Q8_0 kernel when Int8Dot borrowed PackedDot's pair sums).
     */
    private static float reduce4x8(FloatVector a0, FloatVector a1, FloatVector a2, FloatVector a3) {
        FloatVector r = a0.add(a2).add(a1.add(a3));
        float t0 = r.lane(0) + r.lane(4), t1 = r.lane(1) + r.lane(5), t2 = r.lane(2) + r.lane(6), t3 = r.lane(3) + r.lane(7);
        return (t0 + t1) + (t2 + t3);
    }

    /** F16 row as tinyBLAS sums it (n a multiple of 8): lane j takes i = j mod 8 by fused multiply-add, then hsum8. */
    private static float dotF16Lanes8(MemorySegment seg, long off, float[] x, int xo, int n) {
        FloatVector acc = FloatVector.zero(F8);
        for (int i = 0; i < n; i += 8) {
            acc = half8(seg, off + 2L * i).fma(FloatVector.fromArray(F8, x, xo + i), acc);
        }
        return Int8Dot.hsum8(acc);
    }

    /** 8 halfs at {@code off} as 8 float lanes (see {@link #halfToFloat}). */
    private static FloatVector half8(MemorySegment seg, long off) {
        IntVector v = (IntVector) ShortVector.fromMemorySegment(ShortVector.SPECIES_128, seg, off, LE)
                .convertShape(VectorOperators.S2I, IntVector.SPECIES_256, 0);
        IntVector em = v.and(0x7FFF);
        IntVector bits = em.lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts();
        bits = bits.lanewise(VectorOperators.OR, 0x7F800000, em.compare(VectorOperators.GE, 0x7C00));
        return bits.or(v.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
    }

    /**
     * BF16 row: n little-endian shorts, each the upper half of a float32; summed as
     * ggml_vec_dot_bf16 on AVX2: four accumulators of 8 lanes over steps of 32, reduced
     * (c1+c3) + (c2+c4), the lanes as hsum8, added to a double, the rest in double.
     */
    private static float dotBF16(MemorySegment seg, long off, float[] x, int xo, int n) {
        FloatVector c1 = FloatVector.zero(F8), c2 = FloatVector.zero(F8), c3 = FloatVector.zero(F8),
                c4 = FloatVector.zero(F8);
        int i = 0;
        for (; i <= n - 32; i += 32) {
            long o = off + 2L * i;
            c1 = bf8(seg, o).fma(FloatVector.fromArray(F8, x, xo + i), c1);
            c2 = bf8(seg, o + 16).fma(FloatVector.fromArray(F8, x, xo + i + 8), c2);
            c3 = bf8(seg, o + 32).fma(FloatVector.fromArray(F8, x, xo + i + 16), c3);
            c4 = bf8(seg, o + 48).fma(FloatVector.fromArray(F8, x, xo + i + 24), c4);
        }
        double s = 0;
        if (i > 0) {
            s = Int8Dot.hsum8(c1.add(c3).add(c2.add(c4)));
        }
        for (; i < n; i++) {
            s += (double) (Float.intBitsToFloat(seg.get(I16_LE, off + 2L * i) << 16) * x[xo + i]);
        }
        return (float) s;
    }

    /** BF16 row as tinyBLAS sums it (n a multiple of 8): lane j takes i = j mod 8 by fused multiply-add, then hsum8. */
    private static float dotBF16Lanes8(MemorySegment seg, long off, float[] x, int xo, int n) {
        FloatVector acc = FloatVector.zero(F8);
        for (int i = 0; i < n; i += 8) {
            acc = bf8(seg, off + 2L * i).fma(FloatVector.fromArray(F8, x, xo + i), acc);
        }
        return Int8Dot.hsum8(acc);
    }

    private static FloatVector bf8(MemorySegment seg, long off) {
        return ((IntVector) ShortVector.fromMemorySegment(ShortVector.SPECIES_128, seg, off, LE)
                .convertShape(VectorOperators.S2I, IntVector.SPECIES_256, 0)).lanewise(VectorOperators.LSHL, 16)
                .reinterpretAsFloats();
    }

    /**
     * Q8_0 row: n/32 blocks of 34 bytes, {@code fp16 d; int8 qs[32]}, element j = d * qs[j].
     * Per block the 32 int8 are widened to floats, multiplied with x, and the block sum scaled by d.
     */
    private static float dotQ8(MemorySegment seg, long off, float[] x, int xo, int n) {
        // Two accumulators: the per-block scale FMA is a dependency chain otherwise.
        FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F);
        int nb = n / 32;
        int b = 0;
        for (; b + 2 <= nb; b += 2) {
            long bo = off + (long) Q8_BYTES * b;
            acc0 = blockQ8(seg, bo, x, xo + 32 * b).fma(scale(seg, bo), acc0);
            acc1 = blockQ8(seg, bo + Q8_BYTES, x, xo + 32 * b + 32).fma(scale(seg, bo + Q8_BYTES), acc1);
        }
        if (b < nb) {
            long bo = off + (long) Q8_BYTES * b;
            acc0 = blockQ8(seg, bo, x, xo + 32 * b).fma(scale(seg, bo), acc0);
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    /** The block's fp16 scale d (its first two bytes), in every lane. */
    private static FloatVector scale(MemorySegment seg, long bo) {
        return FloatVector.broadcast(F, Float.float16ToFloat(seg.get(I16_LE, bo)));
    }

    /** Unscaled lane sums of qs[j] * x[xb + j] for one Q8_0 block at {@code bo}. */
    private static FloatVector blockQ8(MemorySegment seg, long bo, float[] x, int xb) {
        FloatVector s = FloatVector.zero(F);
        for (int k = 0; k < 32; k += BQ8.length()) {
            ByteVector q = ByteVector.fromMemorySegment(BQ8, seg, bo + 2 + k, LE);
            for (int p = 0; p < Q8_PARTS; p++) {
                FloatVector qf = (FloatVector) q.convertShape(VectorOperators.B2F, F, p);
                s = qf.fma(FloatVector.fromArray(F, x, xb + k + p * L), s);
            }
        }
        return s;
    }

    /**
     * Q4_0 row: n/32 blocks of 18 bytes, {@code fp16 d; uint8 qs[16]}; element j (j < 16) is
     * d * ((qs[j] & 0xF) - 8) and element j + 16 is d * ((qs[j] >> 4) - 8).
     */
    private static float dotQ4(MemorySegment seg, long off, float[] x, int xo, int n) {
        FloatVector acc0 = FloatVector.zero(F), acc1 = FloatVector.zero(F);
        int nb = n / 32;
        int b = 0;
        for (; b + 2 <= nb; b += 2) {
            long bo = off + (long) Q4_BYTES * b;
            acc0 = blockQ4(seg, bo, x, xo + 32 * b).fma(scale(seg, bo), acc0);
            acc1 = blockQ4(seg, bo + Q4_BYTES, x, xo + 32 * b + 32).fma(scale(seg, bo + Q4_BYTES), acc1);
        }
        if (b < nb) {
            long bo = off + (long) Q4_BYTES * b;
            acc0 = blockQ4(seg, bo, x, xo + 32 * b).fma(scale(seg, bo), acc0);
        }
        return acc0.add(acc1).reduceLanes(VectorOperators.ADD);
    }

    /** Unscaled lane sums of (nibble - 8) * x for one Q4_0 block at {@code bo}. */
    private static FloatVector blockQ4(MemorySegment seg, long bo, float[] x, int xb) {
        ByteVector q = ByteVector.fromMemorySegment(B128, seg, bo + 2, LE);
        ByteVector lo = q.and((byte) 0x0F).sub((byte) 8);
        ByteVector hi = q.lanewise(VectorOperators.LSHR, 4).and((byte) 0x0F).sub((byte) 8);
        FloatVector s = FloatVector.zero(F);
        for (int p = 0; p < Q4_PARTS; p++) {
            s = ((FloatVector) lo.convertShape(VectorOperators.B2F, F, p)).fma(FloatVector.fromArray(F, x, xb + p * L), s);
        }
        for (int p = 0; p < Q4_PARTS; p++) {
            s = ((FloatVector) hi.convertShape(VectorOperators.B2F, F, p))
                    .fma(FloatVector.fromArray(F, x, xb + 16 + p * L), s);
        }
        return s;
    }

    /** For vector shapes the block kernels do not handle: dequantize a block at a time. */
    private static float dotScalar(GgmlType type, MemorySegment seg, long off, float[] x, int xo, int n) {
        float[] tmp = new float[32];
        float s = 0;
        for (int b = 0; b < n / 32; b++) {
            dequantizeScalar(type, seg, off + (long) type.typeSize() * b, 32, tmp, 0);
            for (int j = 0; j < 32; j++) {
                s += tmp[j] * x[xo + 32 * b + j];
            }
        }
        return s;
    }

    /**
     * IEEE half to float on whole vectors. Shifting the 15 magnitude bits into a float's exponent and
     * mantissa and multiplying by 2^112 rebiases the exponent (15 to 127) and turns half subnormals
     * into float normals exactly; halfs with the all-ones exponent (inf, NaN) land at or above 2^16
     * and get the float all-ones exponent, which keeps the NaN payload.
     */
    static FloatVector halfToFloat(ShortVector h) {
        IntVector v = (IntVector) h.convertShape(VectorOperators.S2I, I, 0);
        IntVector em = v.and(0x7FFF);
        IntVector sign = v.and(0x8000).lanewise(VectorOperators.LSHL, 16);
        IntVector bits = em.lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts();
        VectorMask<Integer> infNan = em.compare(VectorOperators.GE, 0x7C00);
        bits = bits.lanewise(VectorOperators.OR, 0x7F800000, infNan);
        return bits.or(sign).reinterpretAsFloats();
    }

    /** BF16 is the upper half of a float32: shift it back into place. */
    static FloatVector bf16ToFloat(ShortVector h) {
        return ((IntVector) h.convertShape(VectorOperators.S2I, I, 0)).lanewise(VectorOperators.LSHL, 16)
                .reinterpretAsFloats();
    }

    /**
     * Four dot products of one row {@code w[wo .. wo+n)} with four rows of {@code x} (starting at
     * x0..x3), written to {@code out[o + k * os]}: one load of w feeds four FMAs.
     */
    private static void dot4(float[] w, int wo, int n, float[] x, int x0, int x1, int x2, int x3, float[] out, int o,
            int os) {
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F), a2 = FloatVector.zero(F),
                a3 = FloatVector.zero(F);
        int i = 0;
        for (; i <= n - L; i += L) {
            FloatVector wv = FloatVector.fromArray(F, w, wo + i);
            a0 = wv.fma(FloatVector.fromArray(F, x, x0 + i), a0);
            a1 = wv.fma(FloatVector.fromArray(F, x, x1 + i), a1);
            a2 = wv.fma(FloatVector.fromArray(F, x, x2 + i), a2);
            a3 = wv.fma(FloatVector.fromArray(F, x, x3 + i), a3);
        }
        float s0 = a0.reduceLanes(VectorOperators.ADD);
        float s1 = a1.reduceLanes(VectorOperators.ADD);
        float s2 = a2.reduceLanes(VectorOperators.ADD);
        float s3 = a3.reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            float wi = w[wo + i];
            s0 += wi * x[x0 + i];
            s1 += wi * x[x1 + i];
            s2 += wi * x[x2 + i];
            s3 += wi * x[x3 + i];
        }
        out[o] = s0;
        out[o + os] = s1;
        out[o + 2 * os] = s2;
        out[o + 3 * os] = s3;
    }

    /**
     * 16 rows stored column by column ({@code w[16 j + i]}: row i, column j; 512-bit vectors) times
     * 8 tokens: per column one load of the 16 rows and 8 multiply-adds with each token's element
     * broadcast, even and odd columns in separate accumulators (16 chains); row i of token t to
     * {@code out[o + t * os + i]}.
     */
    private static void tile16x8(float[] w, int n, float[] x, int xo, int xs, float[] out, int o, int os) {
        FloatVector e0 = FloatVector.zero(F512), e1 = FloatVector.zero(F512), e2 = FloatVector.zero(F512),
                e3 = FloatVector.zero(F512), e4 = FloatVector.zero(F512), e5 = FloatVector.zero(F512),
                e6 = FloatVector.zero(F512), e7 = FloatVector.zero(F512);
        FloatVector d0 = FloatVector.zero(F512), d1 = FloatVector.zero(F512), d2 = FloatVector.zero(F512),
                d3 = FloatVector.zero(F512), d4 = FloatVector.zero(F512), d5 = FloatVector.zero(F512),
                d6 = FloatVector.zero(F512), d7 = FloatVector.zero(F512);
        for (int j = 0; j < n; j += 2) {
            FloatVector a = FloatVector.fromArray(F512, w, 16 * j), b = FloatVector.fromArray(F512, w, 16 * j + 16);
            int xj = xo + j;
            e0 = a.fma(FloatVector.broadcast(F512, x[xj]), e0);
            e1 = a.fma(FloatVector.broadcast(F512, x[xj + xs]), e1);
            e2 = a.fma(FloatVector.broadcast(F512, x[xj + 2 * xs]), e2);
            e3 = a.fma(FloatVector.broadcast(F512, x[xj + 3 * xs]), e3);
            e4 = a.fma(FloatVector.broadcast(F512, x[xj + 4 * xs]), e4);
            e5 = a.fma(FloatVector.broadcast(F512, x[xj + 5 * xs]), e5);
            e6 = a.fma(FloatVector.broadcast(F512, x[xj + 6 * xs]), e6);
            e7 = a.fma(FloatVector.broadcast(F512, x[xj + 7 * xs]), e7);
            d0 = b.fma(FloatVector.broadcast(F512, x[xj + 1]), d0);
            d1 = b.fma(FloatVector.broadcast(F512, x[xj + 1 + xs]), d1);
            d2 = b.fma(FloatVector.broadcast(F512, x[xj + 1 + 2 * xs]), d2);
            d3 = b.fma(FloatVector.broadcast(F512, x[xj + 1 + 3 * xs]), d3);
            d4 = b.fma(FloatVector.broadcast(F512, x[xj + 1 + 4 * xs]), d4);
            d5 = b.fma(FloatVector.broadcast(F512, x[xj + 1 + 5 * xs]), d5);
            d6 = b.fma(FloatVector.broadcast(F512, x[xj + 1 + 6 * xs]), d6);
            d7 = b.fma(FloatVector.broadcast(F512, x[xj + 1 + 7 * xs]), d7);
        }
        e0.add(d0).intoArray(out, o);
        e1.add(d1).intoArray(out, o + os);
        e2.add(d2).intoArray(out, o + 2 * os);
        e3.add(d3).intoArray(out, o + 3 * os);
        e4.add(d4).intoArray(out, o + 4 * os);
        e5.add(d5).intoArray(out, o + 5 * os);
        e6.add(d6).intoArray(out, o + 6 * os);
        e7.add(d7).intoArray(out, o + 7 * os);
    }

    /** As {@link #tile16x8} for one token. */
    private static void tile16x1(float[] w, int n, float[] x, int xo, float[] out, int o) {
        FloatVector e = FloatVector.zero(F512), d = FloatVector.zero(F512);
        for (int j = 0; j < n; j += 2) {
            e = FloatVector.fromArray(F512, w, 16 * j).fma(FloatVector.broadcast(F512, x[xo + j]), e);
            d = FloatVector.fromArray(F512, w, 16 * j + 16).fma(FloatVector.broadcast(F512, x[xo + j + 1]), d);
        }
        e.add(d).intoArray(out, o);
    }

    /**
     * A 4x4 register tile: rows {@code w[k*n ..]} (k < 4, dequantized) against the 4 tokens at
     * {@code x[xo + t*xs ..]}; 8 loads feed 16 FMAs, so the loop is bound by FMA throughput rather
     * than by loads. Writes {@code out[o + t*os + k]}.
     */
    private static void tile4x4(float[] w, int n, float[] x, int xo, int xs, float[] out, int o, int os) {
        FloatVector a00 = FloatVector.zero(F), a01 = FloatVector.zero(F), a02 = FloatVector.zero(F),
                a03 = FloatVector.zero(F);
        FloatVector a10 = FloatVector.zero(F), a11 = FloatVector.zero(F), a12 = FloatVector.zero(F),
                a13 = FloatVector.zero(F);
        FloatVector a20 = FloatVector.zero(F), a21 = FloatVector.zero(F), a22 = FloatVector.zero(F),
                a23 = FloatVector.zero(F);
        FloatVector a30 = FloatVector.zero(F), a31 = FloatVector.zero(F), a32 = FloatVector.zero(F),
                a33 = FloatVector.zero(F);
        int x0 = xo, x1 = xo + xs, x2 = xo + 2 * xs, x3 = xo + 3 * xs;
        int i = 0;
        for (; i <= n - L; i += L) {
            FloatVector v0 = FloatVector.fromArray(F, x, x0 + i);
            FloatVector v1 = FloatVector.fromArray(F, x, x1 + i);
            FloatVector v2 = FloatVector.fromArray(F, x, x2 + i);
            FloatVector v3 = FloatVector.fromArray(F, x, x3 + i);
            FloatVector w0 = FloatVector.fromArray(F, w, i);
            a00 = w0.fma(v0, a00);
            a01 = w0.fma(v1, a01);
            a02 = w0.fma(v2, a02);
            a03 = w0.fma(v3, a03);
            FloatVector w1 = FloatVector.fromArray(F, w, n + i);
            a10 = w1.fma(v0, a10);
            a11 = w1.fma(v1, a11);
            a12 = w1.fma(v2, a12);
            a13 = w1.fma(v3, a13);
            FloatVector w2 = FloatVector.fromArray(F, w, 2 * n + i);
            a20 = w2.fma(v0, a20);
            a21 = w2.fma(v1, a21);
            a22 = w2.fma(v2, a22);
            a23 = w2.fma(v3, a23);
            FloatVector w3 = FloatVector.fromArray(F, w, 3 * n + i);
            a30 = w3.fma(v0, a30);
            a31 = w3.fma(v1, a31);
            a32 = w3.fma(v2, a32);
            a33 = w3.fma(v3, a33);
        }
        out[o + 0 * os + 0] = tail(a00.reduceLanes(VectorOperators.ADD), w, 0 * n, x, x0, i, n);
        out[o + 1 * os + 0] = tail(a01.reduceLanes(VectorOperators.ADD), w, 0 * n, x, x1, i, n);
        out[o + 2 * os + 0] = tail(a02.reduceLanes(VectorOperators.ADD), w, 0 * n, x, x2, i, n);
        out[o + 3 * os + 0] = tail(a03.reduceLanes(VectorOperators.ADD), w, 0 * n, x, x3, i, n);
        out[o + 0 * os + 1] = tail(a10.reduceLanes(VectorOperators.ADD), w, 1 * n, x, x0, i, n);
        out[o + 1 * os + 1] = tail(a11.reduceLanes(VectorOperators.ADD), w, 1 * n, x, x1, i, n);
        out[o + 2 * os + 1] = tail(a12.reduceLanes(VectorOperators.ADD), w, 1 * n, x, x2, i, n);
        out[o + 3 * os + 1] = tail(a13.reduceLanes(VectorOperators.ADD), w, 1 * n, x, x3, i, n);
        out[o + 0 * os + 2] = tail(a20.reduceLanes(VectorOperators.ADD), w, 2 * n, x, x0, i, n);
        out[o + 1 * os + 2] = tail(a21.reduceLanes(VectorOperators.ADD), w, 2 * n, x, x1, i, n);
        out[o + 2 * os + 2] = tail(a22.reduceLanes(VectorOperators.ADD), w, 2 * n, x, x2, i, n);
        out[o + 3 * os + 2] = tail(a23.reduceLanes(VectorOperators.ADD), w, 2 * n, x, x3, i, n);
        out[o + 0 * os + 3] = tail(a30.reduceLanes(VectorOperators.ADD), w, 3 * n, x, x0, i, n);
        out[o + 1 * os + 3] = tail(a31.reduceLanes(VectorOperators.ADD), w, 3 * n, x, x1, i, n);
        out[o + 2 * os + 3] = tail(a32.reduceLanes(VectorOperators.ADD), w, 3 * n, x, x2, i, n);
        out[o + 3 * os + 3] = tail(a33.reduceLanes(VectorOperators.ADD), w, 3 * n, x, x3, i, n);
    }

    /** {@code acc} plus the scalar tail {@code j in [from, n)} of a dot product, for widths that are not whole vectors. */
    private static float tail(float acc, float[] w, int wo, float[] x, int xo, int from, int n) {
        for (int j = from; j < n; j++) {
            acc += w[wo + j] * x[xo + j];
        }
        return acc;
    }

    // ---------------------------------------------------------------------------------------------
    // dequantization

    @Override
    public void dequantizeRow(WeightMatrix w, int row, float[] out, int outOffset) {
        checkSupported(w.type());
        Objects.checkIndex(row, w.rows());
        Objects.checkFromIndexSize(outOffset, w.cols(), out.length);
        dequantize(w.type(), w.data(), row * w.rowBytes(), w.cols(), out, outOffset);
    }

    /** n elements of the row at byte {@code off} into {@code out[oo ..)}. */
    private static void dequantize(GgmlType type, MemorySegment seg, long off, int n, float[] out, int oo) {
        // One small method per type: C2 intrinsifies Vector API code reliably only when it inlines it.
        switch (type) {
            case F32 -> MemorySegment.copy(seg, F32_LE, off, out, oo, n);
            case F16 -> dequantizeF16(seg, off, n, out, oo);
            case BF16 -> dequantizeBF16(seg, off, n, out, oo);
            case Q8_0 -> {
                if (VECTOR_BLOCKS) {
                    dequantizeQ8(seg, off, n, out, oo);
                } else {
                    dequantizeScalar(type, seg, off, n, out, oo);
                }
            }
            case Q4_0 -> {
                if (VECTOR_BLOCKS) {
                    dequantizeQ4(seg, off, n, out, oo);
                } else {
                    dequantizeScalar(type, seg, off, n, out, oo);
                }
            }
            case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> Int8Dot.dequantizeK(type, seg, off, n, out, oo);
            default -> throw new UnsupportedOperationException("weight type " + type + " is not supported");
        }
    }

    /** F16 row: n little-endian IEEE halfs. */
    private static void dequantizeF16(MemorySegment seg, long off, int n, float[] out, int oo) {
        halfsToFloats(seg, off, out, oo, n);
    }

    /** BF16 row: n little-endian upper halves of float32s. */
    private static void dequantizeBF16(MemorySegment seg, long off, int n, float[] out, int oo) {
        int i = 0;
        for (; i <= n - L; i += L) {
            bf16ToFloat(ShortVector.fromMemorySegment(SH, seg, off + 2L * i, LE)).intoArray(out, oo + i);
        }
        for (; i < n; i++) {
            out[oo + i] = Float.intBitsToFloat(seg.get(I16_LE, off + 2L * i) << 16);
        }
    }

    /** Q8_0 row: blocks of {@code fp16 d; int8 qs[32]}, element j = d * qs[j]. */
    private static void dequantizeQ8(MemorySegment seg, long off, int n, float[] out, int oo) {
        for (int b = 0; b < n / 32; b++) {
            long bo = off + (long) Q8_BYTES * b;
            FloatVector d = FloatVector.broadcast(F, Float.float16ToFloat(seg.get(I16_LE, bo)));
            for (int k = 0; k < 32; k += BQ8.length()) {
                ByteVector q = ByteVector.fromMemorySegment(BQ8, seg, bo + 2 + k, LE);
                for (int p = 0; p < Q8_PARTS; p++) {
                    ((FloatVector) q.convertShape(VectorOperators.B2F, F, p)).mul(d)
                            .intoArray(out, oo + 32 * b + k + p * L);
                }
            }
        }
    }

    /** Q4_0 row: blocks of {@code fp16 d; uint8 qs[16]}, low nibbles elements 0..15, high 16..31, minus 8. */
    private static void dequantizeQ4(MemorySegment seg, long off, int n, float[] out, int oo) {
        for (int b = 0; b < n / 32; b++) {
            long bo = off + (long) Q4_BYTES * b;
            FloatVector d = FloatVector.broadcast(F, Float.float16ToFloat(seg.get(I16_LE, bo)));
            ByteVector q = ByteVector.fromMemorySegment(B128, seg, bo + 2, LE);
            ByteVector lo = q.and((byte) 0x0F).sub((byte) 8);
            ByteVector hi = q.lanewise(VectorOperators.LSHR, 4).and((byte) 0x0F).sub((byte) 8);
            for (int p = 0; p < Q4_PARTS; p++) {
                ((FloatVector) lo.convertShape(VectorOperators.B2F, F, p)).mul(d).intoArray(out, oo + 32 * b + p * L);
                ((FloatVector) hi.convertShape(VectorOperators.B2F, F, p)).mul(d)
                        .intoArray(out, oo + 32 * b + 16 + p * L);
            }
        }
    }

    /** Block-at-a-time scalar dequantization for Q8_0/Q4_0, used where the vector shape does not fit. */
    private static void dequantizeScalar(GgmlType type, MemorySegment seg, long off, int n, float[] out, int oo) {
        int bs = type.typeSize();
        for (int b = 0; b < n / 32; b++) {
            long bo = off + (long) bs * b;
            float d = Float.float16ToFloat(seg.get(I16_LE, bo));
            for (int j = 0; j < (type == GgmlType.Q8_0 ? 32 : 16); j++) {
                byte q = seg.get(ValueLayout.JAVA_BYTE, bo + 2 + j);
                if (type == GgmlType.Q8_0) {
                    out[oo + 32 * b + j] = d * q;
                } else {
                    out[oo + 32 * b + j] = d * ((q & 0x0F) - 8);
                    out[oo + 32 * b + j + 16] = d * (((q >> 4) & 0x0F) - 8);
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // element-wise kernels

    @Override
    public void rmsNorm(float[] x, int xOffset, float[] weight, float[] out, int outOffset, int n, float eps) {
        // As llama.cpp: squares in float, summed in double, mean rounded to float, then
        // (x * scale) * weight in float. Kept scalar for the sum so it matches the reference exactly.
        double sum = 0;
        for (int i = 0; i < n; i++) {
            float v = x[xOffset + i];
            sum += (double) (v * v);
        }
        float mean = (float) (sum / n);
        float scale = 1.0f / (float) Math.sqrt(mean + eps);
        int i = 0;
        for (; i <= n - L; i += L) {
            FloatVector.fromArray(F, x, xOffset + i).mul(scale).mul(FloatVector.fromArray(F, weight, i))
                    .intoArray(out, outOffset + i);
        }
        for (; i < n; i++) {
            out[outOffset + i] = x[xOffset + i] * scale * weight[i];
        }
    }

    @Override
    public void rope(float[] x, int offset, int nHeads, int headDim, int ropeDims, int pos, float freqBase,
            float[] freqFactors, boolean neox, float freqScale, float mscale) {
        // Pairs outer, heads inner: each cos/sin is used for every head. The table of a position
        // is computed once and reused by the other rope calls of the step (q and k of every layer
        // share it), since the C library's cos/sin are calls out of Java.
        float[] cs = ROPE_TABLES.get().table(pos, ropeDims, freqBase, freqFactors, freqScale, mscale);
        int half = ropeDims / 2;
        for (int i = 0; i < half; i++) {
            float cos = cs[2 * i];
            float sin = cs[2 * i + 1];
            // normal: pair (2i, 2i+1); NeoX: pair (i, i + ropeDims/2)
            int i0 = neox ? i : 2 * i;
            int i1 = neox ? i + half : 2 * i + 1;
            for (int h = 0, base = offset; h < nHeads; h++, base += headDim) {
                float v0 = x[base + i0];
                float v1 = x[base + i1];
                // as ggml's compiled rope (first product of each line fused): bit for bit its result
                x[base + i0] = Math.fma(v0, cos, -(v1 * sin));
                x[base + i1] = Math.fma(v0, sin, v1 * cos);
            }
        }
    }

    private static final ThreadLocal<RopeTables> ROPE_TABLES = ThreadLocal.withInitial(RopeTables::new);

    /**
     * The last 64 positions' rope tables of this thread (direct-mapped by position), each
     * {@code cos, sin} per pair as ggml's rope cache computes them: theta_0 = pos,
     * theta_{i+1} = theta_i * theta_scale in float (the exponent -2/dims is a float too), divided
     * by the pair's frequency factor, times freqScale; cos and sin from the C library
     * ({@link GgmlMath#cosf}), times the magnitude scale.
     */
    private static final class RopeTables {
        private final int[] pos = new int[64];
        private final float[][] tables = new float[64][];
        private final float[] base = new float[64], scale = new float[64], mag = new float[64];
        private final Object[] factors = new Object[64];

        float[] table(int p, int dims, float freqBase, float[] freqFactors, float freqScale, float mscale) {
            int slot = p & 63;
            float[] t = tables[slot];
            if (t != null && pos[slot] == p && t.length == dims && base[slot] == freqBase && scale[slot] == freqScale
                    && mag[slot] == mscale && factors[slot] == freqFactors) {
                return t;
            }
            if (t == null || t.length != dims) {
                t = new float[dims];
                tables[slot] = t;
            }
            float thetaScale = (float) Math.pow(freqBase, (double) (-2.0f / dims));
            float theta = (float) p;
            for (int i = 0; i < dims / 2; i++) {
                float angle = freqScale * (freqFactors != null ? theta / freqFactors[i] : theta);
                t[2 * i] = GgmlMath.cosf(angle) * mscale;
                t[2 * i + 1] = GgmlMath.sinf(angle) * mscale;
                theta *= thetaScale;
            }
            pos[slot] = p;
            base[slot] = freqBase;
            scale[slot] = freqScale;
            mag[slot] = mscale;
            factors[slot] = freqFactors;
            return t;
        }
    }

    @Override
    public void softmax(float[] x, int offset, int n) {
        float max = Float.NEGATIVE_INFINITY;
        int i = 0;
        if (n >= L) {
            FloatVector m = FloatVector.broadcast(F, Float.NEGATIVE_INFINITY);
            for (; i <= n - L; i += L) {
                m = m.max(FloatVector.fromArray(F, x, offset + i));
            }
            max = m.reduceLanes(VectorOperators.MAX);
        }
        for (; i < n; i++) {
            max = Math.max(max, x[offset + i]);
        }
        // exp stays scalar (Math.exp) so results match the reference bit for bit.
        double sum = 0;
        for (i = 0; i < n; i++) {
            float e = (float) Math.exp(x[offset + i] - max);
            x[offset + i] = e;
            sum += e;
        }
        float inv = (float) (1.0 / sum);
        i = 0;
        for (; i <= n - L; i += L) {
            FloatVector.fromArray(F, x, offset + i).mul(inv).intoArray(x, offset + i);
        }
        for (; i < n; i++) {
            x[offset + i] *= inv;
        }
    }

    @Override
    public void swiglu(float[] gate, int gateOffset, float[] up, int upOffset, float[] out, int outOffset, int n) {
        for (int i = 0; i < n; i++) {
            out[outOffset + i] = GgmlMath.swiglu(gate[gateOffset + i], up[upOffset + i], i, n);
        }
    }

    @Override
    public float dot(float[] a, int aOffset, float[] b, int bOffset, int n) {
        return dotArrays(a, aOffset, b, bOffset, n);
    }

    private static float dotArrays(float[] a, int aOffset, float[] b, int bOffset, int n) {
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
        int i = 0;
        for (; i <= n - 2 * L; i += 2 * L) {
            a0 = FloatVector.fromArray(F, a, aOffset + i).fma(FloatVector.fromArray(F, b, bOffset + i), a0);
            a1 = FloatVector.fromArray(F, a, aOffset + i + L).fma(FloatVector.fromArray(F, b, bOffset + i + L), a1);
        }
        for (; i <= n - L; i += L) {
            a0 = FloatVector.fromArray(F, a, aOffset + i).fma(FloatVector.fromArray(F, b, bOffset + i), a0);
        }
        float s = a0.add(a1).reduceLanes(VectorOperators.ADD);
        for (; i < n; i++) {
            s += a[aOffset + i] * b[bOffset + i];
        }
        return s;
    }

    @Override
    public void axpy(float alpha, float[] x, int xOffset, float[] y, int yOffset, int n) {
        int i = 0;
        FloatVector a = FloatVector.broadcast(F, alpha);
        for (; i <= n - L; i += L) {
            FloatVector.fromArray(F, x, xOffset + i).fma(a, FloatVector.fromArray(F, y, yOffset + i))
                    .intoArray(y, yOffset + i);
        }
        for (; i < n; i++) {
            y[yOffset + i] = Math.fma(alpha, x[xOffset + i], y[yOffset + i]);
        }
    }

    @Override
    public void add(float[] x, int xOffset, float[] y, int yOffset, int n) {
        int i = 0;
        for (; i <= n - L; i += L) {
            FloatVector.fromArray(F, x, xOffset + i).add(FloatVector.fromArray(F, y, yOffset + i))
                    .intoArray(y, yOffset + i);
        }
        for (; i < n; i++) {
            y[yOffset + i] += x[xOffset + i];
        }
    }

    // ---------------------------------------------------------------------------------------------
    // parallelFor

    @Override
    public void parallelFor(int count, IntConsumer body) {
        if (count <= 0) {
            return;
        }
        if (count > 1 && threads > 1) {
            if (pool.tryAcquire()) {
                ForJob j = forJob;
                try {
                    pool.run(j.set(count, body, threads));
                } finally {
                    j.body = null;
                    pool.release();
                }
                return;
            }
        }
        for (int i = 0; i < count; i++) {
            body.accept(i);
        }
    }

    private static final class ForJob implements WorkerPool.Job {
        private IntConsumer body;
        private int count, chunk;
        private final AtomicInteger next = new AtomicInteger();

        ForJob set(int count, IntConsumer body, int threads) {
            this.body = body;
            this.count = count;
            this.chunk = Math.max(1, count / (8 * threads));
            next.set(0);
            return this;
        }

        @Override
        public void run(int participant) {
            int i0;
            while ((i0 = next.getAndAdd(chunk)) < count) {
                int i1 = Math.min(count, i0 + chunk);
                for (int i = i0; i < i1; i++) {
                    body.accept(i);
                }
            }
        }
    }
}
