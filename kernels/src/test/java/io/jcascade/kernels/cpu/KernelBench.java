package io.jcascade.kernels.cpu;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;

/**
 * A rough matmul throughput check (not a test, not JMH): a 4096x4096 matrix of each type, decode
 * (1 token) and a prompt batch, timed over about a second after a warm-up.
 *
 * <pre>{@code
 * java --add-modules jdk.incubator.vector -cp kernels/target/classes:kernels/target/test-classes:gguf-loader/target/classes \
 *     io.jcascade.kernels.cpu.KernelBench 2 4096 32
 * }</pre>
 */
public final class KernelBench {

    private KernelBench() {
    }

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : Runtime.getRuntime().availableProcessors();
        int dim = args.length > 1 ? Integer.parseInt(args[1]) : 4096;
        int batch = args.length > 2 ? Integer.parseInt(args[2]) : 32;
        GgmlType[] types = args.length > 3
                ? java.util.Arrays.stream(args[3].split(",")).map(GgmlType::valueOf).toArray(GgmlType[]::new)
                : new GgmlType[] {GgmlType.Q4_0, GgmlType.Q8_0, GgmlType.F16, GgmlType.BF16, GgmlType.F32};
        try (PanamaKernels k = new PanamaKernels(threads)) {
            System.out.printf("threads=%d dim=%d lanes=%d%n", threads, dim, PanamaKernels.F.length());
            // Fork-join overhead: an empty parallelFor over one index per thread.
            for (int rep = 0; rep < 2; rep++) {
                long n = 0;
                long start = System.nanoTime();
                while (System.nanoTime() - start < 500_000_000L) {
                    k.parallelFor(threads, i -> { });
                    n++;
                }
                System.out.printf("empty parallelFor: %.2f us/call%n", (System.nanoTime() - start) / 1e3 / n);
            }
            for (GgmlType type : types) {
                WeightMatrix w = TestMatrices.random(type, dim, dim, 42, 0);
                float[] x = TestMatrices.randomVector(dim * batch, 1);
                float[] out = new float[dim * batch];
                for (int nTokens : new int[] {1, batch}) {
                    long iters = 0;
                    long start = System.nanoTime();
                    long warm = start + 500_000_000L;
                    while (System.nanoTime() < warm) {
                        k.matmul(w, x, 0, dim, out, 0, dim, nTokens);
                    }
                    start = System.nanoTime();
                    long end = start + 1_000_000_000L;
                    long now;
                    do {
                        k.matmul(w, x, 0, dim, out, 0, dim, nTokens);
                        iters++;
                    } while ((now = System.nanoTime()) < end);
                    double sec = (now - start) / 1e9 / iters;
                    double gbs = w.rowBytes() * (double) dim / sec / 1e9;
                    double gflops = 2.0 * dim * dim * nTokens / sec / 1e9;
                    System.out.printf("%-5s tokens=%3d  %8.3f ms/matmul  %6.2f GB/s weights  %7.2f GFLOP/s%n", type,
                            nTokens, sec * 1e3, gbs, gflops);
                }
            }
        }
    }
}
