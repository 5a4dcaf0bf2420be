package io.jcascade.engine;

import io.jcascade.engine.model.Llama;
import io.jcascade.engine.tokenizer.Tokenizer;
import io.jcascade.kernels.Backend;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * Continuous batching for a service: generations submitted from any thread decode together on
 * one worker thread, up to {@code maxSequences} at a time, each step running one token of every
 * active generation through the model at once ({@link Llama#decode}), so the weights are read
 * once a step for all of them. A generation joins at the next step after its prompt is
 * processed and leaves when it ends; the others go on. Each gets what {@link Model#generate}
 * gives it alone (to the bit for quantized weights, to float rounding for float ones), streamed
 * to its listener from the worker thread, and its cancel token is honoured between steps.
 *
 * <pre>{@code
 * try (Model model = Model.load(path); Batcher batcher = model.batcher(8)) {
 *     CompletableFuture<GenerationResult> a = batcher.submit(idsA, params, TokenListener.NONE, new CancelToken());
 *     CompletableFuture<GenerationResult> b = batcher.submit(idsB, params, token -> send(token), cancel);
 *     System.out.println(a.join().text());
 * }
 * }</pre>
 *
 * <p>Closing it (or the model, which closes its batchers) fails the generations still pending or
 * running with an {@link IllegalStateException}.
 */
public final class Batcher implements AutoCloseable {
    private final Backend backend;
    private final Llama llama;
    private final Tokenizer tokenizer;
    private final int contextLength;
    private final int batchSize;
    private final int maxSequences;
    private final BlockingQueue<Request> pending = new LinkedBlockingQueue<>();
    private final Thread worker;
    private volatile boolean closed;
    private volatile long steps;
    private volatile long tokens;
    private volatile int largestStep;

    /**
     * What the worker has done so far: decoding steps, the tokens they ran (a step runs one per
     * active generation), and the most generations a step ran together.
     *
     * <pre>{@code
     * Batcher.Stats s = batcher.stats();
     * double meanBatch = (double) s.tokens() / s.steps();
     * }</pre>
     */
    public record Stats(long steps, long tokens, int largestStep) {
    }

    private record Request(Generation generation, CompletableFuture<GenerationResult> done) {
    }

    /** Run once the worker has stopped (the model forgets this batcher). */
    private volatile Runnable onClose = () -> { };

    Batcher(Backend backend, Llama llama, Tokenizer tokenizer, int contextLength, int batchSize, int maxSequences) {
        if (maxSequences < 1) {
            throw new IllegalArgumentException("maxSequences must be at least 1: " + maxSequences);
        }
        this.backend = backend;
        this.llama = llama;
        this.tokenizer = tokenizer;
        this.contextLength = contextLength;
        this.batchSize = batchSize;
        this.maxSequences = maxSequences;
        this.worker = Thread.ofPlatform().daemon().name("jcascade-batcher").start(this::run);
    }

    /** The steps so far (see {@link Stats}). */
    public Stats stats() {
        return new Stats(steps, tokens, largestStep);
    }

    /** How many generations decode together at most. */
    public int maxSequences() {
        return maxSequences;
    }

    /**
     * Queues a generation of {@code prompt}; the future completes with its result, or
     * exceptionally with what went wrong (its listener's exception, say). Bad prompts are
     * refused here, on the caller's thread.
     *
     * @throws IllegalArgumentException if the prompt is empty
     * @throws ContextOverflowException if it leaves no room in the context for a token
     * @throws IllegalStateException if the batcher is closed
     */
    public CompletableFuture<GenerationResult> submit(int[] prompt, GenerationParams params, TokenListener listener,
            CancelToken cancel) {
        if (closed) {
            throw new IllegalStateException("the batcher is closed");
        }
        Generation g = new Generation(backend, llama, tokenizer, contextLength, batchSize, prompt, params, listener,
                cancel);
        CompletableFuture<GenerationResult> done = new CompletableFuture<>();
        if (g.empty()) {
            done.complete(g.result());
            return done;
        }
        Request r = new Request(g, done);
        pending.add(r);
        if (closed && pending.remove(r)) { // closed meanwhile: the worker may have drained the queue already
            done.completeExceptionally(new IllegalStateException("the batcher is closed"));
        }
        return done;
    }

    /**
     * {@link #submit} and wait: the result, or what the generation threw, unwrapped, as
     * {@link Model#generate} would throw it on this thread.
     *
     * <pre>{@code
     * GenerationResult r = batcher.generate(ids, params, token -> send(token.text()), cancel);
     * }</pre>
     */
    public GenerationResult generate(int[] prompt, GenerationParams params, TokenListener listener,
            CancelToken cancel) {
        return join(submit(prompt, params, listener, cancel));
    }

    /** The future's result, rethrowing the generation's own exception rather than a CompletionException. */
    static GenerationResult join(CompletableFuture<GenerationResult> done) {
        try {
            return done.join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            if (e.getCause() instanceof Error err) {
                throw err;
            }
            throw e;
        }
    }

    private void run() {
        List<Request> active = new ArrayList<>();
        Llama.Batch batch = llama.newBatch(maxSequences);
        Llama.State[] states = new Llama.State[maxSequences];
        int[] next = new int[maxSequences];
        int[] positions = new int[maxSequences];
        int[] one = new int[1];
        try {
            while (!closed) {
                if (active.isEmpty()) {
                    admit(pending.take(), active);
                }
                for (Request r; active.size() < maxSequences && (r = pending.poll()) != null; ) {
                    admit(r, active);
                }
                // Each picks its token (streamed to its listener); the finished leave.
                for (Iterator<Request> it = active.iterator(); it.hasNext(); ) {
                    Request r = it.next();
                    try {
                        if (!r.generation.step()) {
                            r.done.complete(r.generation.result());
                            it.remove();
                        }
                    } catch (RuntimeException | Error e) {
                        r.done.completeExceptionally(e);
                        it.remove();
                    }
                }
                int n = active.size();
                if (n == 0) {
                    continue;
                }
                try {
                    if (n == 1) { // alone: the one-token path (a GPU replays its decode graph)
                        Generation g = active.get(0).generation;
                        one[0] = g.token();
                        llama.forwardOnBackend(g.state, one, 1, g.position());
                    } else {
                        for (int i = 0; i < n; i++) {
                            Generation g = active.get(i).generation;
                            states[i] = g.state;
                            next[i] = g.token();
                            positions[i] = g.position();
                        }
                        llama.decode(batch, states, next, positions, n);
                    }
                    for (Request r : active) {
                        r.generation.logitsReady();
                        r.generation.advance();
                    }
                    steps++;
                    tokens += n;
                    largestStep = Math.max(largestStep, n);
                } catch (RuntimeException | Error e) {
                    for (Request r : active) {
                        r.done.completeExceptionally(e);
                    }
                    active.clear();
                }
            }
        } catch (InterruptedException e) {
            // closing
        } finally {
            IllegalStateException why = new IllegalStateException("the batcher was closed before the generation ended");
            for (Request r : active) {
                r.done.completeExceptionally(why);
            }
            for (Request r; (r = pending.poll()) != null; ) {
                r.done.completeExceptionally(why);
            }
        }
    }

    /** The prompt through the model; the generation joins the next step. */
    private void admit(Request r, List<Request> active) {
        try {
            int[] prompt = r.generation.prompt();
            llama.forwardOnBackend(r.generation.state, prompt, prompt.length, 0);
            r.generation.logitsReady();
            active.add(r);
        } catch (RuntimeException | Error e) {
            r.done.completeExceptionally(e);
        }
    }

    void onClose(Runnable r) {
        onClose = r;
    }

    /** Stops the worker; generations not finished fail with an {@link IllegalStateException}. */
    @Override
    public void close() {
        closed = true;
        worker.interrupt();
        try {
            worker.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        onClose.run();
    }
}
