package io.jcascade.kernels.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The read bandwidth the kernels' threads reach together: the ceiling of a decode step, which
 * streams every weight once per token. It sums a buffer far larger than the caches, split over
 * {@link CpuKernels#parallelFor} in 1 MiB chunks (so the threads read as the matmuls do, each a
 * run of contiguous chunks), with the Vector API at the machine's width, and keeps the best of a
 * few passes. The same measurement as the JMH {@code MemoryBandwidthBenchmark}, made quick
 * enough (about half a second) for {@code jcascade bench} to print beside its figures.
 *
 * <pre>{@code
 * double bytesPerSecond = ReadBandwidth.measure(CpuKernels.create(2), 512L << 20);
 * }</pre>
 */
final class ReadBandwidth {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final long CHUNK = 1L << 20;
    private static final int PASSES = 8;

    private ReadBandwidth() {}

    /** Bytes per second read by all of {@code kernels}' threads over a fresh buffer of {@code bytes} (a multiple of 1 MiB). */
    static double measure(CpuKernels kernels, long bytes) {
        if (bytes < CHUNK || bytes % CHUNK != 0) {
            throw new IllegalArgumentException("bytes must be a positive multiple of 1 MiB: " + bytes);
        }
        int chunks = Math.toIntExact(bytes / CHUNK);
        float[] sums = new float[chunks];
        double best = 0;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment data = arena.allocate(bytes, 4096);
            // Touch every page on the threads that will read it, before anything is timed.
            kernels.parallelFor(chunks, i -> data.asSlice(i * CHUNK, CHUNK).fill((byte) 0x3f));
            for (int pass = 0; pass < PASSES; pass++) {
                long start = System.nanoTime();
                kernels.parallelFor(chunks, i -> sums[i] = sum(data, i * CHUNK, CHUNK));
                long nanos = System.nanoTime() - start;
                best = Math.max(best, bytes / (nanos * 1e-9));
            }
        }
        float total = 0;
        for (float s : sums) {
            total += s;
        }
        if (!Float.isFinite(total)) { // uses the sums, so no pass can be optimised away
            throw new IllegalStateException("bandwidth buffer summed to " + total);
        }
        return best;
    }

    /** Sum of the floats in {@code [from, from + length)} bytes; length a multiple of 4 vectors. */
    private static float sum(MemorySegment seg, long from, long length) {
        long step = F.vectorByteSize();
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F);
        FloatVector a3 = FloatVector.zero(F);
        for (long off = from, end = from + length; off < end; off += 4 * step) {
            a0 = a0.add(FloatVector.fromMemorySegment(F, seg, off, ByteOrder.LITTLE_ENDIAN));
            a1 = a1.add(FloatVector.fromMemorySegment(F, seg, off + step, ByteOrder.LITTLE_ENDIAN));
            a2 = a2.add(FloatVector.fromMemorySegment(F, seg, off + 2 * step, ByteOrder.LITTLE_ENDIAN));
            a3 = a3.add(FloatVector.fromMemorySegment(F, seg, off + 3 * step, ByteOrder.LITTLE_ENDIAN));
        }
        return a0.add(a1).add(a2.add(a3)).reduceLanes(VectorOperators.ADD);
    }
}
