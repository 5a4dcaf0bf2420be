package io.jcascade.kernels.cpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The thread pool behind {@link PanamaKernels}: coverage, nesting, failures, shutdown. */
class ParallelForTest {

    @ParameterizedTest
    @ValueSource(ints = {1, 2, 3})
    void everyIndexRunsExactlyOnce(int threads) {
        try (PanamaKernels k = new PanamaKernels(threads)) {
            for (int count : new int[] {0, 1, 2, 3, 5, 32, 1000}) {
                for (int rep = 0; rep < 200; rep++) {
                    AtomicIntegerArray hits = new AtomicIntegerArray(Math.max(count, 1));
                    k.parallelFor(count, i -> hits.incrementAndGet(i));
                    for (int i = 0; i < count; i++) {
                        assertThat(hits.get(i)).as("count %d index %d", count, i).isEqualTo(1);
                    }
                }
            }
        }
    }

    @Test
    void workIsSharedWithTheWorkers() {
        try (PanamaKernels k = new PanamaKernels(3)) {
            Set<Thread> seen = ConcurrentHashMap.newKeySet();
            for (int rep = 0; rep < 50 && seen.size() < 2; rep++) {
                k.parallelFor(64, i -> {
                    seen.add(Thread.currentThread());
                    long until = System.nanoTime() + 20_000;
                    while (System.nanoTime() < until) {
                        Thread.onSpinWait();
                    }
                });
            }
            assertThat(seen).hasSizeGreaterThan(1);
        }
    }

    @Test
    void kernelsCalledInsideParallelForRunOnTheirThread() {
        WeightMatrix w = TestMatrices.random(GgmlType.Q8_0, 64, 1024, 5, 0);
        float[] x = TestMatrices.randomVector(1024, 6);
        float[] want = new float[64];
        ScalarKernels.int8Activations().matmul(w, x, 0, 1024, want, 0, 64, 1); // the same 8-bit algorithm as the fast default
        try (PanamaKernels k = new PanamaKernels(2)) {
            float[][] outs = new float[8][64];
            AtomicInteger inner = new AtomicInteger();
            k.parallelFor(8, h -> {
                k.matmul(w, x, 0, 1024, outs[h], 0, 64, 1);
                k.parallelFor(3, j -> inner.incrementAndGet());
            });
            assertThat(inner.get()).isEqualTo(24);
            for (float[] out : outs) {
                for (int r = 0; r < 64; r++) {
                    assertThat(out[r]).isCloseTo(want[r], org.assertj.core.data.Offset.offset(1e-4f));
                }
            }
        }
    }

    @Test
    void aFailureInTheBodyReachesTheCallerAndThePoolKeepsWorking() {
        try (PanamaKernels k = new PanamaKernels(3)) {
            for (int rep = 0; rep < 20; rep++) {
                int bad = rep * 7 % 100;
                assertThatThrownBy(() -> k.parallelFor(100, i -> {
                    if (i == bad) {
                        throw new IllegalStateException("boom " + i);
                    }
                })).isInstanceOf(IllegalStateException.class).hasMessage("boom " + bad);
            }
            AtomicInteger n = new AtomicInteger();
            k.parallelFor(100, i -> n.incrementAndGet());
            assertThat(n.get()).isEqualTo(100);
        }
    }

    @Test
    void closeStopsTheWorkers() {
        PanamaKernels k = new PanamaKernels(3);
        k.parallelFor(10, i -> { });
        assertThat(k.liveWorkerThreads()).isEqualTo(2);
        k.close();
        assertThat(k.liveWorkerThreads()).isZero();
        // After close the kernels still work, on the caller alone.
        AtomicInteger n = new AtomicInteger();
        k.parallelFor(10, i -> n.incrementAndGet());
        assertThat(n.get()).isEqualTo(10);
    }

    @Test
    void twoCallingThreadsAtOnceBothGetCorrectResults() throws Exception {
        // One of them gets the pool, the other computes alone on its own thread (and scratch).
        WeightMatrix w = TestMatrices.random(GgmlType.Q4_0, 96, 512, 8, 1);
        int nTokens = 5;
        float[] x = TestMatrices.randomVector(512 * nTokens, 9);
        float[] want = new float[96 * nTokens];
        ScalarKernels.int8Activations().matmul(w, x, 0, 512, want, 0, 96, nTokens);
        try (PanamaKernels k = new PanamaKernels(2)) {
            java.util.concurrent.Callable<Void> work = () -> {
                for (int rep = 0; rep < 100; rep++) {
                    float[] out = TestMatrices.poisoned(96 * nTokens);
                    k.matmul(w, x, 0, 512, out, 0, 96, nTokens);
                    for (int i = 0; i < out.length; i++) {
                        assertThat(out[i]).isCloseTo(want[i], org.assertj.core.data.Offset.offset(1e-3f));
                    }
                }
                return null;
            };
            java.util.concurrent.ExecutorService ex = java.util.concurrent.Executors.newFixedThreadPool(2);
            try {
                var a = ex.submit(work);
                var b = ex.submit(work);
                a.get();
                b.get();
            } finally {
                ex.shutdown();
            }
        }
    }
}
