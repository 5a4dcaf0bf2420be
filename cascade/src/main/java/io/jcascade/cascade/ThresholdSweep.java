package io.jcascade.cascade;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Evaluates a two-tier cascade at many thresholds from signals recorded once: for each prompt,
 * the small tier's signal and whether each tier's answer is right. The rule is the policy's:
 * escalate when the signal crosses the threshold ({@link Signal#escalates}); the cascade's
 * answer is the small one when not escalated, the large one otherwise.
 *
 * <pre>{@code
 * List<ThresholdSweep.Row> rows = ...; // one per prompt, from an always-escalate run
 * ThresholdSweep sweep = new ThresholdSweep(Signal.MEAN_ENTROPY, rows);
 * ThresholdSweep.Point p = sweep.at(0.15);
 * System.out.println(p.accuracy() + " at " + p.escalationRate() + " escalated");
 * }</pre>
 */
public final class ThresholdSweep {

    /**
     * One prompt.
     *
     * @param signal the small tier's signal value
     * @param smallCorrect whether the small tier's answer is right
     * @param largeCorrect whether the large tier's answer is right
     */
    public record Row(double signal, boolean smallCorrect, boolean largeCorrect) {}

    /**
     * The cascade at one threshold.
     *
     * @param threshold the threshold
     * @param escalationRate the fraction of prompts escalated
     * @param accuracy the cascade's accuracy
     */
    public record Point(double threshold, double escalationRate, double accuracy) {}

    private final Signal signal;
    private final List<Row> rows;

    public ThresholdSweep(Signal signal, List<Row> rows) {
        this.signal = signal;
        this.rows = List.copyOf(rows);
    }

    /** The cascade at {@code threshold}. */
    public Point at(double threshold) {
        int escalated = 0;
        int right = 0;
        for (Row r : rows) {
            boolean up = signal.escalates(r.signal(), threshold);
            escalated += up ? 1 : 0;
            right += (up ? r.largeCorrect() : r.smallCorrect()) ? 1 : 0;
        }
        int n = Math.max(1, rows.size());
        return new Point(threshold, (double) escalated / n, (double) right / n);
    }

    /** The smallest-escalation threshold whose accuracy reaches {@code target}, from the recorded values; NaN if none. */
    public Point cheapestReaching(double target) {
        double[] values = rows.stream().mapToDouble(Row::signal).distinct().toArray();
        Arrays.sort(values);
        Point best = null;
        List<Double> candidates = new ArrayList<>();
        for (double v : values) {
            candidates.add(v);
        }
        candidates.add(signal.higherIsConfident() ? Double.NEGATIVE_INFINITY : Double.POSITIVE_INFINITY);
        for (double t : candidates) {
            Point p = at(t);
            if (p.accuracy() >= target && (best == null || p.escalationRate() < best.escalationRate())) {
                best = p;
            }
        }
        return best != null ? best : new Point(Double.NaN, Double.NaN, Double.NaN);
    }
}
