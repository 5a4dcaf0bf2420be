package io.jcascade.cascade;

import io.jcascade.engine.CancelToken;
import io.jcascade.engine.FinishReason;
import io.jcascade.engine.GeneratedToken;
import io.jcascade.engine.GenerationResult;
import io.jcascade.engine.TokenListener;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;

/** A scripted local generator: each prompt maps to a list of tokens; honours cancellation like the engine. */
final class FakeGenerator implements LocalGenerator {
    final Function<String, List<GeneratedToken>> script;
    final AtomicInteger calls = new AtomicInteger();
    final AtomicInteger tokensGenerated = new AtomicInteger();

    FakeGenerator(Function<String, List<GeneratedToken>> script) {
        this.script = script;
    }

    /** Every prompt gets the same completion with the given per-token entropies (probability = top = 1 - h/2). */
    static FakeGenerator constant(String text, double... entropies) {
        return new FakeGenerator(p -> tokens(text, entropies));
    }

    static FakeGenerator of(Map<String, List<GeneratedToken>> answers) {
        return new FakeGenerator(answers::get);
    }

    /** One token per character of {@code text} plus an end-of-sequence token; entropies.length must be text.length()+1. */
    static List<GeneratedToken> tokens(String text, double... entropies) {
        List<GeneratedToken> out = new ArrayList<>();
        for (int i = 0; i < entropies.length; i++) {
            String t = i < text.length() ? String.valueOf(text.charAt(i)) : "";
            double p = Math.max(0.01, 1 - entropies[i] / 2);
            out.add(new GeneratedToken(i, t, entropies[i], p, p, Math.min(1 - p, p)));
        }
        return out;
    }

    @Override
    public GenerationResult generate(String prompt, TokenListener listener, CancelToken cancel) {
        calls.incrementAndGet();
        List<GeneratedToken> all = script.apply(prompt);
        List<GeneratedToken> done = new ArrayList<>();
        StringBuilder text = new StringBuilder();
        FinishReason reason = FinishReason.END_OF_SEQUENCE;
        for (GeneratedToken t : all) {
            done.add(t);
            tokensGenerated.incrementAndGet();
            text.append(t.text());
            listener.onToken(t);
            if (cancel.isCancelled() && done.size() < all.size()) {
                reason = FinishReason.CANCELLED;
                break;
            }
        }
        return new GenerationResult(text.toString(), done, prompt.length() + 1, 1000, 1000, reason);
    }
}
