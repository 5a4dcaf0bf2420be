package io.jcascade.kernels.cpu;

import java.util.Random;

/**
 * A rough attention timing (not a test, not JMH): Llama-3.2-1B's attention shape (32 query heads,
 * 8 KV heads, 64 columns) over a cache of random halfs, 16 layers' worth per line.
 *
 * <ul>
 *   <li>{@code decode CTX}: one token at position CTX - 1 ({@link CpuBackend#attentionRows});</li>
 *   <li>{@code prompt N}: a batch of N tokens from position 0, through {@link BatchAttention}, or
 *       {@code rows N} through the row-at-a-time loop.</li>
 * </ul>
 *
 * <pre>{@code
 * java --add-modules jdk.incubator.vector -cp kernels/target/classes:kernels/target/test-classes:gguf-loader/target/classes \
 *     io.jcascade.kernels.cpu.AttentionBench 2 decode 2048
 * }</pre>
 */
public final class AttentionBench {

    private AttentionBench() {
    }

    public static void main(String[] args) {
        int threads = Integer.parseInt(args[0]);
        String mode = args[1];
        int n = Integer.parseInt(args[2]);
        int heads = 32, kvHeads = 8, dim = 64, layers = 16;
        boolean decode = mode.equals("decode");
        int tokens = decode ? 1 : n, positions = n;
        Random rnd = new Random(1);
        float[] q = new float[tokens * heads * dim], out = new float[q.length];
        float[] keys = new float[positions * kvHeads * dim], values = new float[keys.length];
        for (int i = 0; i < q.length; i++) {
            q[i] = (float) rnd.nextGaussian();
        }
        for (int i = 0; i < keys.length; i++) {
            keys[i] = Float.float16ToFloat(Float.floatToFloat16((float) rnd.nextGaussian()));
            values[i] = Float.float16ToFloat(Float.floatToFloat16((float) rnd.nextGaussian()));
        }
        try (PanamaKernels kernels = new PanamaKernels(threads)) {
            CpuBackend backend = new CpuBackend(kernels);
            for (int round = 0; round < 6; round++) {
                long t0 = System.nanoTime();
                int reps = 5;
                for (int r = 0; r < reps; r++) {
                    for (int l = 0; l < layers; l++) {
                        if (mode.equals("prompt")) {
                            BatchAttention.run(kernels, q, keys, values, out, heads, kvHeads, dim, 0, tokens, 1f, 0.125f);
                        } else {
                            backend.attentionRows(q, keys, values, out, heads, kvHeads, dim, positions - tokens, tokens, 1f,
                                    0.125f);
                        }
                    }
                }
                if (round >= 3) {
                    System.out.printf("%s %d, %d threads: %.2f ms for %d layers%n", mode, n, threads,
                            (System.nanoTime() - t0) / 1e6 / reps, layers);
                }
            }
        }
    }
}
