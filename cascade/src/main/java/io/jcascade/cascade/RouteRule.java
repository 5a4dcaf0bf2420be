package io.jcascade.cascade;

import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * A pre-generation routing rule: a prompt that meets every condition the rule sets starts the
 * cascade at {@code tier} (skipping the tiers before it). Rules are tried in order; the first
 * that matches wins; no match starts at the first tier.
 *
 * <p>Config form (under {@code "router"}, every key but {@code tier} optional, at least one condition):
 * <pre>{@code
 * "router": [
 *   {"tier": "large", "min_prompt_chars": 12},
 *   {"tier": "frontier", "keywords": ["prove", "explain"]},
 *   {"tier": "large", "regex": "\\d\\d\\*\\d\\d"}]
 * }</pre>
 *
 * @param tier the tier to start at
 * @param minPromptChars match prompts at least this long (0 = no bound)
 * @param maxPromptChars match prompts at most this long (0 = no bound)
 * @param keywords match prompts that contain any of these, ignoring case (empty = no condition)
 * @param regex match prompts in which this pattern is found (null = no condition)
 */
public record RouteRule(String tier, int minPromptChars, int maxPromptChars, List<String> keywords, Pattern regex) {

    public RouteRule {
        keywords = keywords.stream().map(k -> k.toLowerCase(Locale.ROOT)).toList();
    }

    /** Whether {@code prompt} meets every condition of this rule. */
    public boolean matches(String prompt) {
        int len = prompt.length();
        if (minPromptChars > 0 && len < minPromptChars) {
            return false;
        }
        if (maxPromptChars > 0 && len > maxPromptChars) {
            return false;
        }
        if (!keywords.isEmpty()) {
            String lower = prompt.toLowerCase(Locale.ROOT);
            if (keywords.stream().noneMatch(lower::contains)) {
                return false;
            }
        }
        return regex == null || regex.matcher(prompt).find();
    }

    /** A short description for logs, e.g. {@code regex \d\d\*\d\d}. */
    public String describe() {
        StringBuilder b = new StringBuilder();
        if (minPromptChars > 0) {
            b.append("min_prompt_chars ").append(minPromptChars).append(' ');
        }
        if (maxPromptChars > 0) {
            b.append("max_prompt_chars ").append(maxPromptChars).append(' ');
        }
        if (!keywords.isEmpty()) {
            b.append("keywords ").append(keywords).append(' ');
        }
        if (regex != null) {
            b.append("regex ").append(regex.pattern());
        }
        return b.toString().trim();
    }
}
