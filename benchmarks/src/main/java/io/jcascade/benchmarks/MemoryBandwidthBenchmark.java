package io.jcascade.benchmarks;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
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
 * The machine's read bandwidth as a Java program can reach it: the sum of a large off-heap
 * {@link MemorySegment} of floats (1 GiB by default), read with the Vector API at the preferred
 * width, on 1 thread and on all cores ({@code threads} 0), each thread summing its own contiguous
 * slice. The score is sums per second; the secondary result {@code readGBs} (an
 * {@code @AuxCounters} counter) is 1e9 bytes read per second: the ceiling that the kernels' and the
 * decode's weight streaming are measured against.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class MemoryBandwidthBenchmark {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    @Param({"1024"})
    public int mib;

    @Param({"1", "0"})
    public int threads;

    Arena arena;
    MemorySegment data;
    ExecutorService pool;
    int n;

    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Rates {
        /** Bytes read, in units of 1e9: reported as GB/s. */
        public double readGBs;

        @Setup(Level.Iteration)
        public void reset() {
            readGBs = 0;
        }
    }

    @Setup(Level.Trial)
    public void setUp() {
        n = threads > 0 ? threads : Runtime.getRuntime().availableProcessors();
        arena = Arena.ofShared();
        data = arena.allocate((long) mib << 20, 4096);
        // Touch every page (and give the floats a value) before anything is timed.
        for (long off = 0; off < data.byteSize(); off += 4) {
            data.set(ValueLayout.JAVA_FLOAT_UNALIGNED, off, 1.0f);
        }
        pool = n > 1 ? Executors.newFixedThreadPool(n, r -> {
            Thread t = new Thread(r, "bandwidth");
            t.setDaemon(true);
            return t;
        }) : null;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (pool != null) {
            pool.shutdownNow();
        }
        arena.close();
    }

    /** The sum of the floats in {@code [from, to)} bytes of {@code seg}; both multiples of 4 vectors. */
    static float sum(MemorySegment seg, long from, long to) {
        long step = F.vectorByteSize();
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F);
        FloatVector a3 = FloatVector.zero(F);
        for (long off = from; off < to; off += 4 * step) {
            a0 = a0.add(FloatVector.fromMemorySegment(F, seg, off, LE));
            a1 = a1.add(FloatVector.fromMemorySegment(F, seg, off + step, LE));
            a2 = a2.add(FloatVector.fromMemorySegment(F, seg, off + 2 * step, LE));
            a3 = a3.add(FloatVector.fromMemorySegment(F, seg, off + 3 * step, LE));
        }
        return a0.add(a1).add(a2.add(a3)).reduceLanes(VectorOperators.ADD);
    }

    @Benchmark
    public float read(Rates rates) throws InterruptedException, ExecutionException {
        float total;
        long bytes = data.byteSize();
        if (pool == null) {
            total = sum(data, 0, bytes);
        } else {
            long quantum = 4L * F.vectorByteSize();
            long slice = bytes / n / quantum * quantum;
            List<Future<Float>> parts = new ArrayList<>(n);
            for (int i = 0; i < n; i++) {
                long from = i * slice;
                long to = i == n - 1 ? bytes : from + slice;
                parts.add(pool.submit(() -> sum(data, from, to)));
            }
            total = 0;
            for (Future<Float> f : parts) {
                total += f.get();
            }
        }
        rates.readGBs += bytes * 1e-9;
        return total;
    }
}
