package io.jcascade.benchmarks;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

/**
 * Weight matrices for the kernel benchmarks, and the weight bytes a model reads per token.
 *
 * <p>A benchmark matrix is valid data of its type (finite fp16 scales, no NaN or subnormal
 * elements) but not a whole matrix of fresh random numbers: a 1 MiB pattern of whole blocks is
 * tiled over it, which is as fast to fill at 1 GB as at 1 MB and, the matrices being far larger
 * than any cache that matters here, streams the same way.
 */
public final class Weights {

    private static final ValueLayout.OfShort I16_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Weights() {
    }

    /**
     * Byte offsets of the fp16 fields (scales, mins) in one block of a quantized type, after
     * ggml's block structs; every other byte of a block may be anything. A new quantized type
     * needs its line here (if it is not here already) and its name in the benchmark's
     * {@code @Param} list.
     */
    static int[] fp16Fields(GgmlType type) {
        return switch (type) {
            case Q4_0, Q8_0, Q5_0, IQ4_NL -> new int[] {0};          // d, then quants
            case Q4_1, Q5_1, Q8_1 -> new int[] {0, 2};               // d, m
            case Q2_K -> new int[] {80, 82};                          // scales[16], qs[64], d, dmin
            case Q3_K -> new int[] {108};                             // hmask[32], qs[64], scales[12], d
            case Q4_K, Q5_K -> new int[] {0, 2};                      // d, dmin, scales[12], (qh[32],) qs[128]
            case Q6_K -> new int[] {208};                             // ql[128], qh[64], scales[16], d
            default -> throw new IllegalArgumentException("no block layout for " + type + " in Weights.fp16Fields");
        };
    }

    /** A {@code rows x cols} matrix of {@code type} in fresh native memory, 64-byte aligned. */
    public static WeightMatrix random(GgmlType type, int rows, int cols, long seed) {
        long bytes = type.rowBytes(cols) * rows;
        MemorySegment seg = Arena.ofAuto().allocate(bytes, 64);
        MemorySegment pattern = pattern(type, seed);
        for (long off = 0; off < bytes; off += pattern.byteSize()) {
            long n = Math.min(pattern.byteSize(), bytes - off);
            MemorySegment.copy(pattern, 0, seg, off, n);
        }
        return new WeightMatrix(type, seg, rows, cols);
    }

    private static MemorySegment pattern(GgmlType type, long seed) {
        Random rnd = new Random(seed);
        int unit = type.isQuantized() ? type.typeSize() : (int) type.rowBytes(1);
        int units = (1 << 20) / unit;
        MemorySegment p = MemorySegment.ofArray(new byte[units * unit]);
        switch (type) {
            case F32 -> {
                for (int i = 0; i < units; i++) {
                    p.set(F32_LE, 4L * i, (float) rnd.nextGaussian() * 0.05f);
                }
            }
            case F16 -> {
                for (int i = 0; i < units; i++) {
                    p.set(I16_LE, 2L * i, Float.floatToFloat16((float) rnd.nextGaussian() * 0.05f));
                }
            }
            case BF16 -> {
                for (int i = 0; i < units; i++) {
                    p.set(I16_LE, 2L * i, (short) (Float.floatToRawIntBits((float) rnd.nextGaussian() * 0.05f) >>> 16));
                }
            }
            default -> {
                if (!type.isQuantized()) {
                    throw new IllegalArgumentException("no benchmark data for " + type);
                }
                byte[] block = new byte[unit];
                int[] scales = fp16Fields(type);
                for (int b = 0; b < units; b++) {
                    rnd.nextBytes(block);
                    MemorySegment.copy(block, 0, p, ValueLayout.JAVA_BYTE, (long) b * unit, unit);
                    for (int f : scales) {
                        // Scales as real models have them: 1e-4 to 1e-2, fp16 normals, a few negative.
                        float d = (float) (Math.exp(rnd.nextDouble() * Math.log(100)) * 1e-4);
                        p.set(I16_LE, (long) b * unit + f, Float.floatToFloat16(rnd.nextInt(8) == 0 ? -d : d));
                    }
                }
            }
        }
        return p;
    }
}
