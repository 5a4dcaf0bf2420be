package io.jcascade.engine.sampling;

/**
 * How to pick the next token from the logits. Each filter has an "off" value, so the record also
 * describes plain greedy decoding and plain softmax sampling.
 *
 * <pre>{@code
 * SamplingParams greedy = SamplingParams.greedy();
 * SamplingParams creative = SamplingParams.builder().temperature(0.8f).topK(40).topP(0.95f)
 *         .minP(0.05f).repetitionPenalty(1.1f).seed(42).build();
 * }</pre>
 *
 * @param temperature logits are divided by it before the draw; 0 (or less than 0) means greedy argmax
 * @param topK keep only the k most likely tokens; 0 = off
 * @param topP keep the smallest set of most likely tokens whose probability reaches p; 1 = off
 * @param minP drop tokens whose probability is below minP times the top token's; 0 = off
 * @param repetitionPenalty llama.cpp's repeat penalty on recently seen tokens; 1 = off
 * @param repeatLastN how many recent tokens the penalty looks at; 0 = none, -1 = all given
 * @param seed seed of the sampler's random generator
 */
public record SamplingParams(float temperature, int topK, float topP, float minP, float repetitionPenalty,
        int repeatLastN, long seed) {

    public SamplingParams {
        if (Float.isNaN(temperature)) {
            throw new IllegalArgumentException("temperature is NaN");
        }
        if (topK < 0) {
            throw new IllegalArgumentException("topK must be >= 0 (0 = off): " + topK);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("topP must be in (0, 1] (1 = off): " + topP);
        }
        if (!(minP >= 0 && minP <= 1)) {
            throw new IllegalArgumentException("minP must be in [0, 1] (0 = off): " + minP);
        }
        if (!(repetitionPenalty > 0) || Float.isInfinite(repetitionPenalty)) {
            throw new IllegalArgumentException("repetitionPenalty must be positive (1 = off): " + repetitionPenalty);
        }
        if (repeatLastN < -1) {
            throw new IllegalArgumentException("repeatLastN must be >= -1: " + repeatLastN);
        }
    }

    /** Argmax decoding, no penalty. */
    public static SamplingParams greedy() {
        return builder().temperature(0).build();
    }

    /** llama.cpp's command-line defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no penalty. */
    public static SamplingParams defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Whether sampling reduces to argmax. */
    public boolean isGreedy() {
        return temperature <= 0 || topK == 1;
    }

    /** A builder starting from these values. */
    public Builder toBuilder() {
        return new Builder().temperature(temperature).topK(topK).topP(topP).minP(minP)
                .repetitionPenalty(repetitionPenalty).repeatLastN(repeatLastN).seed(seed);
    }

    /** Builder with llama.cpp's defaults preset. */
    public static final class Builder {
        private float temperature = 0.8f;
        private int topK = 40;
        private float topP = 0.95f;
        private float minP = 0.05f;
        private float repetitionPenalty = 1f;
        private int repeatLastN = 64;
        private long seed = 0;

        private Builder() {
        }

        public Builder temperature(float v) {
            temperature = v;
            return this;
        }

        public Builder topK(int v) {
            topK = v;
            return this;
        }

        public Builder topP(float v) {
            topP = v;
            return this;
        }

        public Builder minP(float v) {
            minP = v;
            return this;
        }

        public Builder repetitionPenalty(float v) {
            repetitionPenalty = v;
            return this;
        }

        public Builder repeatLastN(int v) {
            repeatLastN = v;
            return this;
        }

        public Builder seed(long v) {
            seed = v;
            return this;
        }

        public SamplingParams build() {
            return new SamplingParams(temperature, topK, topP, minP, repetitionPenalty, repeatLastN, seed);
        }
    }
}
