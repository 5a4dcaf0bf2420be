package io.jcascade.cli;

import java.io.PrintWriter;

/**
 * A progress bar on stderr for long jobs: redrawn in place on a terminal, a line every 10 %
 * otherwise (so CI logs and redirected stderr stay readable).
 */
final class ProgressBar {
    private static final int WIDTH = 30;
    private final PrintWriter err;
    private final String label;
    private final int total;
    private final boolean interactive;
    private final long start = System.nanoTime();
    private int lastDecile = -1;
    private long lastDraw;

    ProgressBar(PrintWriter err, String label, int total, boolean interactive) {
        this.err = err;
        this.label = label;
        this.total = total;
        this.interactive = interactive;
    }

    void update(int done) {
        long now = System.nanoTime();
        if (interactive) {
            if (done < total && now - lastDraw < 100_000_000L) {
                return;
            }
            lastDraw = now;
            err.print("\r" + render(done, now));
            if (done >= total) {
                err.println();
            }
            err.flush();
        } else {
            int decile = total == 0 ? 10 : done * 10 / total;
            if (decile != lastDecile) {
                lastDecile = decile;
                err.println(render(done, now));
                err.flush();
            }
        }
    }

    private String render(int done, long now) {
        double seconds = (now - start) / 1e9;
        double rate = seconds > 0 ? done / seconds : 0;
        int filled = total == 0 ? WIDTH : (int) ((long) done * WIDTH / total);
        String eta = rate > 0 && done < total ? String.format(" ETA %.0fs", (total - done) / rate) : "";
        return String.format("%s [%s%s] %d/%d %.1f/s%s", label, "#".repeat(filled), ".".repeat(WIDTH - filled),
                done, total, rate, eta);
    }
}
