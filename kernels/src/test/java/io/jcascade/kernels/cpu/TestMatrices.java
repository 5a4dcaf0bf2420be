package io.jcascade.kernels.cpu;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;

/** Builders of random but valid weight matrices in ggml's layouts, and other test helpers. */
final class TestMatrices {

    private static final ValueLayout.OfShort I16_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private TestMatrices() {
    }

    /**
     * A random {@code rows x cols} matrix of {@code type} in native memory, starting {@code skew}
     * bytes into its allocation so that the kernels see unaligned data, as they do in a GGUF file.
     */
    static WeightMatrix random(GgmlType type, int rows, int cols, long seed, int skew) {
        Random rnd = new Random(seed);
        long bytes = type.rowBytes(cols) * rows;
        MemorySegment seg = Arena.ofAuto().allocate(bytes + skew + 64, 64).asSlice(skew, bytes);
        switch (type) {
            case F32 -> {
                for (long i = 0; i < (long) rows * cols; i++) {
                    seg.set(F32_LE, 4 * i, (float) rnd.nextGaussian() * 0.05f);
                }
            }
            case F16 -> {
                for (long i = 0; i < (long) rows * cols; i++) {
                    seg.set(I16_LE, 2 * i, Float.floatToFloat16((float) rnd.nextGaussian() * 0.05f));
                }
            }
            case BF16 -> {
                for (long i = 0; i < (long) rows * cols; i++) {
                    int bits = Float.floatToRawIntBits((float) rnd.nextGaussian() * 0.05f);
                    seg.set(I16_LE, 2 * i, (short) (bits >>> 16));
                }
            }
            case Q8_0, Q4_0 -> {
                int bs = type.typeSize();
                long blocks = (long) rows * cols / 32;
                byte[] qs = new byte[bs - 2];
                for (long b = 0; b < blocks; b++) {
                    // Scales as real models have them: a few 1e-4 to 1e-2, all fp16 normals.
                    float d = (float) (Math.exp(rnd.nextDouble() * Math.log(100)) * 1e-4);
                    if (rnd.nextInt(8) == 0) {
                        d = -d;
                    }
                    seg.set(I16_LE, b * bs, Float.floatToFloat16(d));
                    rnd.nextBytes(qs);
                    MemorySegment.copy(qs, 0, seg, ValueLayout.JAVA_BYTE, b * bs + 2, qs.length);
                }
            }
            case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K -> {
                // Random quants, scales and mins; the fp16 super-block scales set to sane values.
                int bs = type.typeSize();
                long blocks = (long) rows * cols / 256;
                byte[] raw = new byte[bs];
                for (long b = 0; b < blocks; b++) {
                    rnd.nextBytes(raw);
                    MemorySegment.copy(raw, 0, seg, ValueLayout.JAVA_BYTE, b * bs, bs);
                    float d = (float) (Math.exp(rnd.nextDouble() * Math.log(100)) * 1e-5);
                    float dmin = (float) (Math.exp(rnd.nextDouble() * Math.log(100)) * 1e-5);
                    long dOff = switch (type) {
                        case Q2_K -> 80;
                        case Q3_K -> 108;
                        case Q6_K -> 208;
                        default -> 0;
                    };
                    seg.set(I16_LE, b * bs + dOff, Float.floatToFloat16(d));
                    if (type != GgmlType.Q6_K && type != GgmlType.Q3_K) {
                        seg.set(I16_LE, b * bs + dOff + 2, Float.floatToFloat16(dmin));
                    }
                }
            }
            default -> throw new IllegalArgumentException(type.toString());
        }
        return new WeightMatrix(type, seg, rows, cols);
    }

    /** Uniform values in [-1, 1). */
    static float[] randomVector(int n, long seed) {
        Random rnd = new Random(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = rnd.nextFloat() * 2 - 1;
        }
        return v;
    }

    /** An array of NaN, so that any element a kernel should write and does not shows up. */
    static float[] poisoned(int n) {
        float[] v = new float[n];
        Arrays.fill(v, Float.NaN);
        return v;
    }

    /** A matrix from raw bytes, for hand-built blocks. */
    static WeightMatrix of(GgmlType type, int rows, int cols, byte[] bytes) {
        MemorySegment seg = Arena.ofAuto().allocate(bytes.length + 1).asSlice(1, bytes.length);
        MemorySegment.copy(bytes, 0, seg, ValueLayout.JAVA_BYTE, 0, bytes.length);
        return new WeightMatrix(type, seg, rows, cols);
    }
}
