package io.jcascade.kernels;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class TokenCandidatesTest {

    /** The reference: every token, penalised once, sorted by (logit descending with NaN as -inf, +0 above -0, id). */
    private static List<Integer> ranked(float[] l, float penalty, int[] penalised) {
        float[] w = l.clone();
        for (int id : penalised) {
            w[id] = l[id] <= 0 ? l[id] * penalty : l[id] / penalty;
        }
        List<Integer> ids = new ArrayList<>();
        for (int i = 0; i < l.length; i++) {
            ids.add(i);
        }
        Comparator<Integer> byLogit = Comparator.comparingDouble(i -> Float.isNaN(w[i]) ? Double.NEGATIVE_INFINITY : w[i]);
        // Double.compare puts -0.0 below 0.0, as the key does.
        ids.sort(byLogit.reversed().thenComparing(Comparator.naturalOrder()));
        return ids;
    }

    private static float[] awkward(Random r, int n) {
        float[] l = new float[n];
        for (int i = 0; i < n; i++) {
            l[i] = (float) r.nextGaussian() * 4;
        }
        for (int i = 0; i < n / 5; i++) {
            l[r.nextInt(n)] = l[r.nextInt(n)];
        }
        l[r.nextInt(n)] = 0f;
        l[r.nextInt(n)] = -0f;
        l[r.nextInt(n)] = Float.NEGATIVE_INFINITY;
        l[r.nextInt(n)] = Float.NaN;
        return l;
    }

    @Test
    void theKBestInOrderWithTheirLogitsBeforeAndAfterThePenalty() {
        Random r = new Random(5);
        TokenCandidates c = new TokenCandidates();
        for (int trial = 0; trial < 300; trial++) {
            int n = 1 + r.nextInt(400);
            int k = 1 + r.nextInt(n + 5); // sometimes more than n
            float[] l = awkward(r, n);
            int[] penalised = r.ints(r.nextInt(10), 0, n).toArray(); // repeats: penalised once
            float penalty = trial % 3 == 0 ? 1f : 0.5f + 2 * r.nextFloat();
            c.select(l, n, k, penalty, penalised, penalised.length);
            List<Integer> expected = ranked(l, penalty, java.util.Arrays.stream(penalised).distinct().toArray());
            assertThat(c.count()).isEqualTo(Math.min(k, n));
            for (int i = 0; i < c.count(); i++) {
                int id = expected.get(i);
                assertThat(c.id(i)).as("trial %d rank %d", trial, i).isEqualTo(id);
                assertThat((Object) c.logit(i)).isEqualTo((Object) l[id]);
                boolean hit = java.util.Arrays.stream(penalised).anyMatch(p -> p == id);
                assertThat((Object) c.penalisedLogit(i)).isEqualTo((Object) (hit ? TokenCandidates.penalise(l[id], penalty) : l[id]));
            }
            assertThat(c.stats().entropy()).isEqualTo(new LogitStats().compute(l, n).entropy());
        }
    }

    @Test
    void candidatesAddedInAnyOrderSortAsSelected() {
        Random r = new Random(8);
        for (int trial = 0; trial < 100; trial++) {
            int n = 50 + r.nextInt(200);
            float[] l = awkward(r, n);
            TokenCandidates selected = new TokenCandidates().select(l, n, 30, 1.3f, new int[] {1, 2, 3}, 3);
            List<Integer> order = new ArrayList<>();
            for (int i = 0; i < selected.count(); i++) {
                order.add(i);
            }
            Collections.shuffle(order, r);
            TokenCandidates added = new TokenCandidates();
            added.reset(selected.count());
            for (int i : order) {
                added.add(selected.id(i), selected.logit(i), selected.penalisedLogit(i));
            }
            added.sortBestFirst();
            for (int i = 0; i < selected.count(); i++) {
                assertThat(added.id(i)).isEqualTo(selected.id(i));
                assertThat((Object) added.logit(i)).isEqualTo((Object) selected.logit(i));
                assertThat((Object) added.penalisedLogit(i)).isEqualTo((Object) selected.penalisedLogit(i));
            }
        }
    }

    @Test
    void probabilitiesAreThoseOfTheLogitsBeforeThePenalty() {
        float[] l = {1f, 3f, 2f};
        TokenCandidates c = new TokenCandidates().select(l, 3, 3, 10f, new int[] {1}, 1);
        assertThat(c.id(0)).isEqualTo(2); // 3 / 10 falls below 2 and 1
        double z = Math.exp(1) + Math.exp(3) + Math.exp(2);
        assertThat(c.probability(0)).isCloseTo(Math.exp(2) / z, org.assertj.core.data.Offset.offset(1e-15));
        assertThat(c.indexOf(1)).isEqualTo(2);
        assertThat(c.indexOf(7)).isEqualTo(-1);
    }

    @Test
    void badRequestsAreNamed() {
        TokenCandidates c = new TokenCandidates();
        float[] l = {1f, 2f};
        assertThatThrownBy(() -> c.select(l, 2, 0, 1f, new int[0], 0)).hasMessageContaining("k must be at least 1");
        assertThatThrownBy(() -> c.select(l, 2, 1, 1.1f, new int[] {5}, 1)).hasMessageContaining("penalised token id 5");
        assertThatThrownBy(() -> c.select(l, 3, 1, 1f, new int[0], 0)).hasMessageContaining("n 3 outside 1..2");
        assertThatThrownBy(() -> c.id(2)).isInstanceOf(IndexOutOfBoundsException.class);
    }
}
