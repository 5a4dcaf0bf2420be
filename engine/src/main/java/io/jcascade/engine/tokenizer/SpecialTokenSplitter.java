package io.jcascade.engine.tokenizer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.IntStream;

/**
 * Cuts the text of special tokens out of an input before the model's own tokenization runs, as
 * llama.cpp's {@code tokenizer_st_partition} does: longest token text first, so that
 * {@code <|eot_id|>} is not eaten by a shorter token that it contains.
 *
 * <p>Control and unknown tokens are only matched when the caller asks for special parsing;
 * user-defined tokens always are.
 */
final class SpecialTokenSplitter {

    /** A stretch of input: raw text {@code [start, end)} when {@code token < 0}, else a special token. */
    record Fragment(int start, int end, int token) {
    }

    private final String[] texts;
    private final TokenType[] types;
    private final int[] candidates;

    SpecialTokenSplitter(String[] texts, TokenType[] types) {
        this.texts = texts;
        this.types = types;
        this.candidates = IntStream.range(0, texts.length)
                .filter(i -> (types[i] == TokenType.CONTROL || types[i] == TokenType.USER_DEFINED
                        || types[i] == TokenType.UNKNOWN) && !texts[i].isEmpty())
                .boxed()
                .sorted(Comparator.comparingInt((Integer id) -> -texts[id].length()).thenComparingInt(id -> id))
                .mapToInt(Integer::intValue)
                .toArray();
    }

    List<Fragment> split(String text, boolean parseSpecial) {
        List<Fragment> frags = new ArrayList<>();
        if (text.isEmpty()) {
            return frags;
        }
        frags.add(new Fragment(0, text.length(), -1));
        for (int id : candidates) {
            if (!parseSpecial && types[id] != TokenType.USER_DEFINED) {
                continue;
            }
            String s = texts[id];
            List<Fragment> next = null;
            for (int i = 0; i < frags.size(); i++) {
                Fragment f = frags.get(i);
                int at = f.token < 0 ? indexOf(text, s, f.start, f.end) : -1;
                if (at < 0) {
                    if (next != null) {
                        next.add(f);
                    }
                    continue;
                }
                if (next == null) {
                    next = new ArrayList<>(frags.subList(0, i));
                }
                int pos = f.start;
                while (at >= 0) {
                    if (at > pos) {
                        next.add(new Fragment(pos, at, -1));
                    }
                    next.add(new Fragment(at, at + s.length(), id));
                    pos = at + s.length();
                    at = indexOf(text, s, pos, f.end);
                }
                if (pos < f.end) {
                    next.add(new Fragment(pos, f.end, -1));
                }
            }
            if (next != null) {
                frags = next;
            }
        }
        return frags;
    }

    private static int indexOf(String text, String s, int from, int end) {
        int at = text.indexOf(s, from);
        return at >= 0 && at + s.length() <= end ? at : -1;
    }
}
