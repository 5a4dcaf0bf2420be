package io.jcascade.cascade;

import java.util.function.LongSupplier;

/**
 * A circuit breaker for one remote tier: closed while calls succeed; open after
 * {@code failureThreshold} consecutive failed requests, refusing calls at once; half-open after
 * {@code cooldownMs}, letting one trial request through, which closes it on success and opens it
 * again on failure. Thread-safe.
 *
 * <pre>{@code
 * CircuitBreaker b = new CircuitBreaker(5, 30_000);
 * if (b.tryAcquire()) {
 *     boolean ok = callTheApi();
 *     if (ok) b.onSuccess(); else b.onFailure();
 * }
 * }</pre>
 */
public final class CircuitBreaker {
    /** The breaker's state. */
    public enum State { CLOSED, OPEN, HALF_OPEN }

    private final int failureThreshold;
    private final long cooldownNanos;
    private final LongSupplier clock;
    private State state = State.CLOSED;
    private int consecutiveFailures;
    private long openedAt;
    private boolean trialInFlight;

    public CircuitBreaker(int failureThreshold, long cooldownMs) {
        this(failureThreshold, cooldownMs, System::nanoTime);
    }

    CircuitBreaker(int failureThreshold, long cooldownMs, LongSupplier nanoClock) {
        if (failureThreshold < 1) {
            throw new IllegalArgumentException("failureThreshold must be >= 1");
        }
        this.failureThreshold = failureThreshold;
        this.cooldownNanos = cooldownMs * 1_000_000L;
        this.clock = nanoClock;
    }

    /** Whether a request may go out now (moves an open breaker whose cool-down is over to half-open). */
    public synchronized boolean tryAcquire() {
        if (state == State.OPEN && clock.getAsLong() - openedAt >= cooldownNanos) {
            state = State.HALF_OPEN;
            trialInFlight = false;
        }
        return switch (state) {
            case CLOSED -> true;
            case OPEN -> false;
            case HALF_OPEN -> {
                if (trialInFlight) {
                    yield false;
                }
                trialInFlight = true;
                yield true;
            }
        };
    }

    /** Records a successful request: closes the breaker. */
    public synchronized void onSuccess() {
        state = State.CLOSED;
        consecutiveFailures = 0;
        trialInFlight = false;
    }

    /** Records a failed request (after its retries): may open the breaker. */
    public synchronized void onFailure() {
        consecutiveFailures++;
        trialInFlight = false;
        if (state == State.HALF_OPEN || consecutiveFailures >= failureThreshold) {
            state = State.OPEN;
            openedAt = clock.getAsLong();
        }
    }

    /** The current state (an open breaker past its cool-down reads as open until the next {@link #tryAcquire()}). */
    public synchronized State state() {
        return state;
    }

    /** Consecutive failed requests so far. */
    public synchronized int consecutiveFailures() {
        return consecutiveFailures;
    }
}
