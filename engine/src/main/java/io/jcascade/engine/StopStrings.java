package io.jcascade.engine;

import java.util.List;

/**
 * Finds stop strings in growing generated text, and says how much of the text is safe to stream:
 * text that might be the start of a stop string is held back until the next tokens settle it.
 */
final class StopStrings {
    private final List<String> stops;

    StopStrings(List<String> stops) {
        this.stops = stops;
    }

    /** Index of the earliest stop string in {@code text} at or after {@code from} - (longest stop - 1), or -1. */
    int find(CharSequence text, int from) {
        int best = -1;
        String s = text.toString();
        for (String stop : stops) {
            int i = s.indexOf(stop, Math.max(0, from - stop.length() + 1));
            if (i >= 0 && (best < 0 || i < best)) {
                best = i;
            }
        }
        return best;
    }

    /** Length of the prefix of {@code text} that no continuation can turn into part of a stop string. */
    int safeLength(CharSequence text) {
        int n = text.length();
        int hold = 0;
        for (String stop : stops) {
            for (int k = Math.min(stop.length() - 1, n); k > hold; k--) {
                if (endsWith(text, stop, k)) {
                    hold = k;
                    break;
                }
            }
        }
        return n - hold;
    }

    /** Whether text ends with the first k characters of stop. */
    private static boolean endsWith(CharSequence text, String stop, int k) {
        int n = text.length();
        for (int i = 0; i < k; i++) {
            if (text.charAt(n - k + i) != stop.charAt(i)) {
                return false;
            }
        }
        return true;
    }
}
