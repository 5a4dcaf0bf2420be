package io.jcascade.kernels.cpu;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;

/**
 * A fixed set of worker threads that run the same {@link Job} together with the calling thread,
 * for the fork-join pattern of the kernels: one call, every participant that shows up pulls work,
 * the caller returns when the work is done.
 *
 * <p>Why not an {@code ExecutorService}: a decode step issues a few hundred small matmuls, each a
 * few tens of microseconds; submitting tasks allocates and queues per call, and a parked thread
 * takes tens of microseconds to wake. Here a call is a volatile generation bump, workers spin a
 * short while after each job (the next matmul usually follows within microseconds) before parking,
 * and nothing is allocated per call.
 *
 * <p>The caller never waits for a worker that has not started: a worker joins a job by
 * registering in {@code state} while the job is open; when the caller has run out of work to take
 * it closes the job and waits only for the workers that registered. On a loaded machine (more
 * threads than free cores) a descheduled worker therefore costs nothing instead of a time slice.
 * Jobs must be written for that: work is pulled (e.g. from an atomic counter) until none is left,
 * so whatever subset of participants runs, all of it gets done.
 *
 * <p>One job at a time: {@link #tryAcquire} returns false when the pool is already running one (a
 * kernel called from inside {@code parallelFor}, or from a second thread), and the caller then does
 * the work alone. Not reentrant on purpose. The job object is only filled in after the pool is
 * acquired, so a nested call cannot clobber the arguments of the job that is running.
 *
 * <pre>{@code
 * try (WorkerPool pool = new WorkerPool(4)) {
 *     if (pool.tryAcquire()) {
 *         try {
 *             pool.run(participant -> System.out.println("hello from " + participant));
 *         } finally {
 *             pool.release();
 *         }
 *     }
 * }
 * }</pre>
 */
final class WorkerPool implements AutoCloseable {

    /**
     * Work pulled by the participants of one call: the caller always runs it (as participant 0),
     * each worker at most once; it must take work until none is left.
     */
    @FunctionalInterface
    interface Job {
        void run(int participant);
    }

    /** How long an idle thread spins before parking; short, since the machine may be shared. */
    private static final long SPIN_NANOS = Long.getLong("jcascade.kernels.spinMicros", 100) * 1000L;

    /** In {@link #state}: set when the current job takes no more workers. Low bits: workers in it. */
    private static final int CLOSED = 1 << 30;

    private final int participants;
    private final Worker[] workers;
    private final AtomicBoolean busy = new AtomicBoolean();
    private final AtomicInteger state = new AtomicInteger(CLOSED);

    // Written by the caller before opening the state, read by workers after registering.
    private Job job;
    /** Bumped per call, only to wake workers; membership is decided by {@link #state}. */
    private volatile int generation;
    private volatile boolean shutdown;
    private volatile Thread caller;
    private volatile boolean callerParked;
    private volatile Throwable failure;

    WorkerPool(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        }
        this.participants = threads;
        this.workers = new Worker[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = new Worker(i + 1);
            workers[i].start();
        }
    }

    /** Number of participants, the caller included. */
    int participants() {
        return participants;
    }

    /**
     * Claims the pool for one {@link #run}; false if it is busy (another job is running, perhaps
     * the one whose body is calling) or closed. The caller then sets up its job, calls
     * {@link #run}, and calls {@link #release} (in a finally block).
     */
    boolean tryAcquire() {
        return !shutdown && busy.compareAndSet(false, true);
    }

    /** Gives the pool back. */
    void release() {
        busy.set(false);
    }

    /**
     * Runs {@code job} on the caller and on every worker that joins in time, and returns when all
     * who joined have finished. Requires a successful {@link #tryAcquire} first; the caller
     * releases afterwards. A failure in any participant is rethrown here, after all have finished.
     */
    void run(Job job) {
        if (workers.length == 0) {
            job.run(0);
            return;
        }
        this.failure = null;
        this.caller = Thread.currentThread();
        this.job = job;
        state.set(0); // open, nobody registered: publishes job
        generation++;
        for (Worker w : workers) {
            if (w.parked) {
                LockSupport.unpark(w);
            }
        }
        Throwable mine = null;
        try {
            job.run(0);
        } catch (Throwable t) {
            mine = t;
        }
        // No work left to take: close to newcomers, then wait for those already in.
        int s = state.getAndUpdate(v -> v | CLOSED);
        if ((s & ~CLOSED) != 0) {
            awaitRegistered();
        }
        this.job = null;
        Throwable t = mine != null ? mine : failure;
        if (t != null) {
            if (t instanceof RuntimeException re) {
                throw re;
            }
            if (t instanceof Error e) {
                throw e;
            }
            throw new IllegalStateException("kernel worker failed", t);
        }
    }

    private void awaitRegistered() {
        long start = System.nanoTime();
        while (state.get() != CLOSED) {
            if (System.nanoTime() - start < SPIN_NANOS) {
                Thread.onSpinWait();
            } else {
                // Dekker-style handshake with the last worker out: flag, re-check, park.
                callerParked = true;
                if (state.get() != CLOSED) {
                    LockSupport.park(this);
                }
                callerParked = false;
            }
        }
    }

    /** Joins the open job, if there is one. */
    private boolean register() {
        int s;
        do {
            s = state.get();
            if ((s & CLOSED) != 0) {
                return false;
            }
        } while (!state.compareAndSet(s, s + 1));
        return true;
    }

    /** Worker threads still alive; for tests. */
    int liveWorkers() {
        int n = 0;
        for (Worker w : workers) {
            n += w.isAlive() ? 1 : 0;
        }
        return n;
    }

    @Override
    public void close() {
        if (shutdown) {
            return;
        }
        shutdown = true;
        generation++;
        for (Worker w : workers) {
            LockSupport.unpark(w);
        }
        for (Worker w : workers) {
            try {
                w.join(1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private final class Worker extends Thread {
        private final int index;
        volatile boolean parked;

        Worker(int index) {
            super("jcascade-kernels-" + index);
            this.index = index;
            setDaemon(true);
        }

        @Override
        public void run() {
            // Not "generation": a thread may first run after the first job was published.
            int seen = 0;
            while (true) {
                int g;
                long start = System.nanoTime();
                while ((g = generation) == seen) {
                    if (System.nanoTime() - start < SPIN_NANOS) {
                        Thread.onSpinWait();
                    } else {
                        parked = true;
                        if (generation == seen) {
                            LockSupport.park(WorkerPool.this);
                        }
                        parked = false;
                    }
                }
                seen = g;
                if (shutdown) {
                    return;
                }
                if (!register()) {
                    continue; // that job finished without us
                }
                try {
                    job.run(index);
                } catch (Throwable t) {
                    if (failure == null) {
                        failure = t;
                    }
                }
                if (state.decrementAndGet() == CLOSED && callerParked) {
                    LockSupport.unpark(caller);
                }
            }
        }
    }
}
