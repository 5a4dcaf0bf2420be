package io.jcascade.engine;

/**
 * One generated token as it streams out.
 *
 * <pre>{@code
 * model.generate(prompt, params, tok -> System.out.print(tok.text()));
 * }</pre>
 *
 * @param id token id
 * @param text the text this token releases to the stream: its own characters, or an empty string
 *     while a multi-byte character or a possible stop string is still incomplete (the held-back
 *     text comes out with a later token)
 * @param entropy natural-log entropy of the model's next-token distribution at this step, over
 *     the full softmax at temperature 1, whatever the sampling settings
 * @param probability the probability of this token in that same distribution
 * @param topProbability the highest probability in that distribution
 * @param secondProbability the second-highest probability in that distribution
 */
public record GeneratedToken(int id, String text, double entropy, double probability, double topProbability,
        double secondProbability) {}
