package io.jcascade.kernels.cpu;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;

/**
 * A rough single-token matmul throughput check of packed against file-layout weights (not a test,
 * not JMH; for trying kernel variants quickly): enough copies of a rows x cols matrix to stream
 * from memory, alternating packed and file layout runs of about a second.
 *
 * <pre>{@code
 * java --add-modules jdk.incubator.vector -cp kernels/target/classes:kernels/target/test-classes:gguf-loader/target/classes \
 *     io.jcascade.kernels.cpu.PackedBench THREADS ROWS COLS TYPE[,TYPE..] [REPEATS] [MiB of copies, default 256]
 * }</pre>
 */
public final class PackedBench {

    private PackedBench() {
    }

    public static void main(String[] args) {
        int threads = Integer.parseInt(args[0]);
        int rows = Integer.parseInt(args[1]);
        int cols = Integer.parseInt(args[2]);
        int repeats = args.length > 4 ? Integer.parseInt(args[4]) : 3;
        try (PanamaKernels k = new PanamaKernels(threads, true)) {
            for (String tn : args[3].split(",")) {
                GgmlType type = GgmlType.valueOf(tn);
                long bytes = type.rowBytes(cols) * rows;
                long mib = args.length > 5 ? Long.parseLong(args[5]) : 256;
                int n = (int) Math.max(1, (mib << 20) / bytes);
                WeightMatrix[] w = new WeightMatrix[n];
                PackedMatrix[] p = new PackedMatrix[n];
                for (int i = 0; i < n; i++) {
                    w[i] = TestMatrices.random(type, rows, cols, 42 + i % 4, 0);
                    p[i] = PackedMatrix.supports(type, cols) ? PackedMatrix.pack(w[i]) : null;
                }
                float[] x = TestMatrices.randomVector(cols, 1);
                float[] out = new float[rows];
                for (int rep = 0; rep < repeats; rep++) {
                    for (int layout = p[0] == null ? 1 : 0; layout < 2; layout++) {
                        int calls = 0;
                        java.lang.management.ThreadMXBean mx = java.lang.management.ManagementFactory.getThreadMXBean();
                        long cpu0 = mx.getCurrentThreadCpuTime();
                        long start = System.nanoTime();
                        while (System.nanoTime() - start < 1_000_000_000L) {
                            int i = calls % n;
                            if (layout == 0) {
                                k.matmul(p[i], x, 0, cols, out, 0, rows, 1);
                            } else {
                                k.matmul(w[i], x, 0, cols, out, 0, rows, 1);
                            }
                            calls++;
                        }
                        double s = (System.nanoTime() - start) / 1e9;
                        double cpu = (mx.getCurrentThreadCpuTime() - cpu0) / 1e9;
                        long b = layout == 0 ? p[0].byteSize() : bytes;
                        // per CPU second of the calling thread: with threads=1, what a core does when it runs
                        System.out.printf("%s %dx%d threads=%d %-6s %8.1f matvec/s %6.2f GB/s wall, %6.2f GB/s per caller CPU s%n",
                                type, rows, cols, threads, layout == 0 ? "packed" : "file", calls / s,
                                calls * (double) b / s / 1e9, calls * (double) b / cpu / 1e9);
                    }
                }
            }
        }
    }
}
