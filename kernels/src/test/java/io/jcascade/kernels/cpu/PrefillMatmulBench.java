package io.jcascade.kernels.cpu;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;

/**
 * A rough prompt-product timing (not a test, not JMH): {@code matmul} of N tokens with a random
 * matrix of TYPE, repacked as {@link CpuBackend} repacks it, at Llama-3.2-1B's shapes, in GFLOP/s.
 *
 * <pre>{@code
 * java --add-modules jdk.incubator.vector -cp kernels/target/classes:kernels/target/test-classes:gguf-loader/target/classes \
 *     io.jcascade.kernels.cpu.PrefillMatmulBench 2 Q8_0 256
 * }</pre>
 */
public final class PrefillMatmulBench {

    private PrefillMatmulBench() {
    }

    public static void main(String[] args) {
        int threads = Integer.parseInt(args[0]);
        GgmlType type = GgmlType.valueOf(args[1]);
        int n = Integer.parseInt(args[2]);
        int[][] shapes = {{512, 2048}, {2048, 2048}, {8192, 2048}, {2048, 8192}};
        try (PanamaKernels k = new PanamaKernels(threads)) {
            for (int[] shape : shapes) {
                int rows = shape[0], cols = shape[1];
                WeightMatrix w = TestMatrices.random(type, rows, cols, 42, 0);
                PackedMatrix p = k.pack(w); // null where the type has no packed layout here
                float[] x = new float[n * cols];
                java.util.Random rnd = new java.util.Random(1);
                for (int i = 0; i < x.length; i++) {
                    x[i] = (float) rnd.nextGaussian();
                }
                float[] out = new float[n * rows];
                for (int round = 0; round < 3; round++) { // two warm-up rounds
                    long t0 = System.nanoTime();
                    int calls = 0;
                    while (System.nanoTime() - t0 < 1_000_000_000L) {
                        if (p != null) {
                            k.matmul(p, x, 0, cols, out, 0, rows, n);
                        } else {
                            k.matmul(w, x, 0, cols, out, 0, rows, n);
                        }
                        calls++;
                    }
                    double s = (System.nanoTime() - t0) / 1e9 / calls;
                    if (round == 2) {
                        System.out.printf("%s %dx%d, %d tokens, packed %s: %.2f ms, %.1f GFLOP/s%n", type, rows, cols, n,
                                p != null, s * 1e3, 2.0 * rows * cols * n / s / 1e9);
                    }
                }
            }
        }
    }
}
