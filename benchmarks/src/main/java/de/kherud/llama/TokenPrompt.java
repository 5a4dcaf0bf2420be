package de.kherud.llama;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * Gives llama.cpp a prompt as token ids rather than text (its server accepts a JSON array of ids
 * as the prompt), so that it processes exactly the tokens jcascade does. In the binding's package
 * because its parameter map is package-private; de.kherud:llama 4.2.0 has no public setter for it.
 */
public final class TokenPrompt {
    private TokenPrompt() {
    }

    /** Sets {@code p}'s prompt to the token ids {@code ids}. */
    public static InferenceParameters set(InferenceParameters p, int[] ids) {
        p.parameters.put("prompt", Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(",", "[", "]")));
        return p;
    }
}
