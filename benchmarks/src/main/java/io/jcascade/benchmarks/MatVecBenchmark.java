package io.jcascade.benchmarks;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;
import io.jcascade.kernels.cpu.CpuKernels;
import io.jcascade.kernels.cpu.PackedMatrix;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * One decode-step matrix-vector product ({@code CpuKernels.matmul} with one token) for each weight
 * type, at the shapes of a Llama-3.2-1B layer: {@code rows x cols} is out x in, so 2048x2048 is
 * attn_q/attn_output, 8192x2048 ffn_gate/ffn_up, 2048x8192 ffn_down, 128256x2048 the output head.
 *
 * <p>The score is matmuls per second; the secondary results {@code weightGBs} (weight bytes
 * streamed, 1e9 bytes per second) and {@code gflops} (2 x rows x cols flops per matmul) are JMH
 * {@code @AuxCounters}, counted per call and divided by the measured time by JMH itself, so they
 * come out next to the score in the same run. Compare weightGBs with
 * {@link MemoryBandwidthBenchmark} at the same thread count. {@code threads} 0 means one per
 * available core. A new weight type is one more name in the {@code type} list (the kernels must
 * support it; {@link Weights#fp16Fields} knows the K-quant block layouts already).
 *
 * <p>In a decode step no weight matrix is still in cache when it is used again (the whole model
 * passes in between), so the benchmark cycles through enough copies of the matrix to fill at
 * least {@code coldMiB} MiB (default 256, far beyond any L3), one copy per call: the figures are
 * for weights streamed from memory. {@code -p coldMiB=0} measures one matrix over and over, from
 * cache where it fits.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class MatVecBenchmark {

    @Param({"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q3_K", "Q4_K", "Q5_K", "Q6_K"})
    public String type;

    @Param({"2048x2048", "8192x2048", "2048x8192", "128256x2048"})
    public String shape;

    @Param({"1", "0"})
    public int threads;

    @Param({"256"})
    public int coldMiB;

    /**
     * {@code file}: the weights in ggml's block layout, as mapped from the file; {@code packed}:
     * repacked as {@code CpuBackend} binds them ({@code CpuKernels.pack}; types and machines
     * without a packed layout fall back to the file layout). GB/s count the packed bytes.
     */
    @Param({"packed", "file"})
    public String layout;

    WeightMatrix[] copies;
    PackedMatrix[] packed;
    int next;
    CpuKernels kernels;
    float[] x;
    float[] out;
    double bytesPerCall;
    double flopsPerCall;

    /** Secondary results, per second: JMH divides these per-call sums by the iteration's time. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Rates {
        /** Weight bytes streamed, in units of 1e9 bytes: reported as GB/s. */
        public double weightGBs;
        /** Floating-point operations, in units of 1e9: reported as GFLOP/s. */
        public double gflops;

        @Setup(Level.Iteration)
        public void reset() {
            weightGBs = 0;
            gflops = 0;
        }
    }

    @Setup(Level.Trial)
    public void setUp() {
        String[] rc = shape.split("x");
        int rows = Integer.parseInt(rc[0]);
        int cols = Integer.parseInt(rc[1]);
        GgmlType t = GgmlType.valueOf(type);
        long bytes = t.rowBytes(cols) * rows;
        int n = (int) Math.max(1, ((long) coldMiB << 20) / bytes + ((((long) coldMiB << 20) % bytes) != 0 ? 1 : 0));
        copies = new WeightMatrix[n];
        for (int i = 0; i < n; i++) {
            copies[i] = Weights.random(t, rows, cols, 42);
        }
        kernels = CpuKernels.create(threads > 0 ? threads : Runtime.getRuntime().availableProcessors());
        x = new float[cols];
        java.util.Random r = new java.util.Random(1);
        for (int i = 0; i < cols; i++) {
            x[i] = r.nextFloat() * 2 - 1;
        }
        out = new float[rows];
        if ("packed".equals(layout)) {
            packed = new PackedMatrix[n];
            for (int i = 0; i < n; i++) {
                packed[i] = kernels.pack(copies[i]);
                if (packed[i] == null) {
                    packed = null;
                    break;
                }
                bytes = packed[i].byteSize();
                copies[i] = null; // keep only the packed copies in memory
            }
        }
        bytesPerCall = (double) bytes;
        flopsPerCall = 2.0 * rows * cols;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        kernels.close();
    }

    @Benchmark
    public float matvec(Rates rates) {
        int i = next;
        next = next + 1 == copies.length ? 0 : next + 1;
        if (packed != null) {
            PackedMatrix p = packed[i];
            kernels.matmul(p, x, 0, p.cols(), out, 0, p.rows(), 1);
        } else {
            WeightMatrix w = copies[i];
            kernels.matmul(w, x, 0, w.cols(), out, 0, w.rows(), 1);
        }
        rates.weightGBs += bytesPerCall * 1e-9;
        rates.gflops += flopsPerCall * 1e-9;
        return out[0];
    }
}
