package io.jcascade.cascade;

/**
 * One model a cascade can ask: a local GGUF model or a remote API. A tier never throws for a
 * failed call: it returns a {@link TierOutput} with an error instead.
 *
 * <pre>{@code
 * Tier small = LocalTier.load(TierConfig.local("small", Path.of("models/arith-small.gguf"), 0.0001));
 * TierOutput out = small.call("37+485=", acc -> false);
 * System.out.println(out.completion() + " " + out.signals().meanEntropy());
 * }</pre>
 */
public interface Tier extends AutoCloseable {

    /** This tier's config. */
    TierConfig config();

    /** The tier's name. */
    default String name() {
        return config().name();
    }

    /**
     * Answers {@code prompt}.
     *
     * @param stopWhen for local tiers: called after every token with the signals so far; when it
     *     returns true the generation is cancelled (early exit). Remote tiers ignore it.
     */
    TierOutput call(String prompt, EarlyExit stopWhen);

    /** Releases the tier's model or HTTP client. */
    @Override
    void close();

    /**
     * Decides, token by token, whether a local generation can stop because escalation is certain.
     *
     * <pre>{@code
     * EarlyExit never = acc -> false;
     * }</pre>
     */
    @FunctionalInterface
    interface EarlyExit {
        /** Whether to stop now, given the signals of the tokens so far. */
        boolean stop(SignalAccumulator soFar);

        /** Never stops early. */
        EarlyExit NEVER = acc -> false;
    }
}
