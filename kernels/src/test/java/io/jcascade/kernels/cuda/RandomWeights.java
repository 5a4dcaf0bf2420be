package io.jcascade.kernels.cuda;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Random;

/**
 * Random weight matrices in ggml's block layouts for the kernel tests: random quants (every bit
 * pattern is valid) with finite fp16 scales of the magnitudes real models have.
 */
final class RandomWeights {
    private static final ValueLayout.OfShort I16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private RandomWeights() {}

    /** A random matrix in ggml's layout, at an odd offset of native memory as a GGUF slice may be. */
    static WeightMatrix matrix(Random rnd, GgmlType type, int rows, int cols) {
        long bytes = type.rowBytes(cols) * rows;
        MemorySegment seg = Arena.ofAuto().allocate(bytes + 64, 64).asSlice(32, bytes);
        long n = (long) rows * cols;
        switch (type) {
            case F32 -> {
                for (long i = 0; i < n; i++) {
                    seg.set(F32_LE, 4 * i, (float) rnd.nextGaussian() * 0.05f);
                }
            }
            case F16 -> {
                for (long i = 0; i < n; i++) {
                    seg.set(I16_LE, 2 * i, Float.floatToFloat16((float) rnd.nextGaussian() * 0.05f));
                }
            }
            case BF16 -> {
                for (long i = 0; i < n; i++) {
                    seg.set(I16_LE, 2 * i, (short) (Float.floatToRawIntBits((float) rnd.nextGaussian() * 0.05f) >>> 16));
                }
            }
            case Q8_0, Q4_0 -> {
                int bs = type.typeSize();
                byte[] qs = new byte[bs - 2];
                for (long b = 0; b < n / 32; b++) {
                    float d = (float) (Math.exp(rnd.nextDouble() * Math.log(100)) * 1e-4) * (rnd.nextInt(8) == 0 ? -1 : 1);
                    seg.set(I16_LE, b * bs, Float.floatToFloat16(d));
                    rnd.nextBytes(qs);
                    MemorySegment.copy(qs, 0, seg, ValueLayout.JAVA_BYTE, b * bs + 2, qs.length);
                }
            }
            case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> {
                // Random quants, scales and mins (every bit pattern is a valid one), then finite
                // fp16 super-block scales where the layout keeps them (random bytes could be NaN).
                int bs = type.typeSize();
                byte[] block = new byte[bs];
                for (long b = 0; b < n / 256; b++) {
                    rnd.nextBytes(block);
                    MemorySegment.copy(block, 0, seg, ValueLayout.JAVA_BYTE, b * bs, bs);
                    for (int at : kQuantScaleOffsets(type)) {
                        float d = (float) (Math.exp(rnd.nextDouble() * Math.log(100)) * 1e-5) * (rnd.nextInt(8) == 0 ? -1 : 1);
                        seg.set(I16_LE, b * bs + at, Float.floatToFloat16(d));
                    }
                }
            }
            default -> throw new IllegalArgumentException(type.toString());
        }
        return new WeightMatrix(type, seg, rows, cols);
    }

    /** Byte offsets of the fp16 scales in a K-quant super-block: d (and dmin, for the types with mins). */
    static int[] kQuantScaleOffsets(GgmlType type) {
        return switch (type) {
            case Q2_K -> new int[] {80, 82};    // scales[16], qs[64], d, dmin
            case Q3_K -> new int[] {108};       // hmask[32], qs[64], scales[12], d
            case Q4_K, Q5_K -> new int[] {0, 2}; // d, dmin, scales[12], (qh[32],) qs[128]
            case Q6_K -> new int[] {208};       // ql[128], qh[64], scales[16], d
            default -> throw new IllegalArgumentException(type.toString());
        };
    }
}
