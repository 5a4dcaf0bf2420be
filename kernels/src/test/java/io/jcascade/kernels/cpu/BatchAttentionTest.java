package io.jcascade.kernels.cpu;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Random;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link BatchAttention} against {@link CpuBackend#attentionRows} (the row-at-a-time loop that
 * follows llama.cpp's graph) bit for bit, and against a double-precision softmax attention within
 * the rounding of the half-precision probabilities; its vector helpers against their scalar
 * definitions.
 */
class BatchAttentionTest {

    private static PanamaKernels kernels;
    private static CpuBackend backend;

    @BeforeAll
    static void start() {
        kernels = new PanamaKernels(3);
        backend = new CpuBackend(kernels);
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    @Test
    void vectorExpIsTheScalarExpLaneByLane() {
        Random rnd = new Random(7);
        int lanes = FloatVector.SPECIES_PREFERRED.length();
        float[] x = new float[lanes * 4096];
        for (int i = 0; i < x.length; i++) {
            x[i] = switch (i % 6) {
                case 0 -> (float) (rnd.nextDouble() * 40 - 30);      // softmax's usual range
                case 1 -> (float) (rnd.nextDouble() * -200);          // |n| > 126 and > 192
                case 2 -> (float) (rnd.nextDouble() * 200 - 100);
                case 3 -> -Float.MIN_VALUE * rnd.nextInt(1000);
                case 4 -> (float) (-87.3 - rnd.nextDouble() * 50);    // the two-step scaling, subnormal results
                default -> new float[] {0f, -0f, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY, Float.NaN,
                        88.7f, -103.9f, -126.5f * 0.6931f}[rnd.nextInt(8)];
            };
        }
        for (int i = 0; i < x.length; i += lanes) {
            FloatVector e = GgmlMath.expf(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, x, i));
            for (int l = 0; l < lanes; l++) {
                float want = GgmlMath.expf(x[i + l]);
                assertThat(Float.floatToIntBits(e.lane(l))).as("exp(%s)", x[i + l]).isEqualTo(Float.floatToIntBits(want));
            }
        }
    }

    @Test
    void halfRoundingMatchesTheJdkConversion() {
        int lanes = BatchAttention.L;
        float[] x = new float[lanes];
        // every 241st float in [0, 65504], plus the boundaries of the subnormal and normal ranges
        long checked = 0;
        int top = Float.floatToIntBits(65504f);
        for (int bits = 0; bits <= top; bits += lanes * 241) {
            for (int l = 0; l < lanes; l++) {
                x[l] = Float.intBitsToFloat(Math.min(top, bits + 241 * l));
            }
            check(x);
            checked += lanes;
        }
        float[] edges = {0x1p-14f, Math.nextDown(0x1p-14f), Math.nextUp(0x1p-14f), 0x1p-24f, 0x1p-25f,
                Math.nextUp(0x1p-25f), 0x1.8p-24f, 0x1.ffcp-15f, 1f, Math.nextDown(1f), 0.5f, 65504f, Math.nextUp(65504f), 0f};
        for (int i = 0; i < edges.length; i += lanes) {
            java.util.Arrays.fill(x, 0f);
            System.arraycopy(edges, i, x, 0, Math.min(lanes, edges.length - i));
            check(x);
        }
        assertThat(checked).isGreaterThan(400_000);
    }

    private static void check(float[] x) {
        float[] got = new float[x.length];
        BatchAttention.toHalfNonNegative(FloatVector.fromArray(FloatVector.SPECIES_PREFERRED, x, 0)).intoArray(got, 0);
        for (int l = 0; l < x.length; l++) {
            float want = Float.float16ToFloat(Float.floatToFloat16(x[l]));
            assertThat(Float.floatToIntBits(got[l])).as("half(%s)", x[l]).isEqualTo(Float.floatToIntBits(want));
        }
    }

    @ParameterizedTest(name = "heads {0}/{1}, dim {2}, start {3}, tokens {4}")
    @CsvSource({
        "32, 8, 64, 0, 512",   // Llama-3.2-1B's prompt shape
        "4, 1, 64, 0, 2",
        "4, 2, 64, 0, 3",
        "4, 4, 128, 0, 17",
        "8, 2, 96, 5, 16",     // Phi-3's head size
        "8, 8, 96, 37, 15",
        "2, 1, 32, 1, 33",
        "6, 3, 160, 70, 40",
        "4, 1, 64, 250, 7",
    })
    void batchIsTheRowLoopBitForBit(int heads, int kvHeads, int dim, int start, int tokens) {
        org.junit.jupiter.api.Assumptions.assumeTrue(BatchAttention.supports(dim), "head size " + dim + " takes the row loop here");
        Case c = new Case(heads, kvHeads, dim, start, tokens, new Random(heads * 31L + dim * 7L + start + tokens));
        float[] want = new float[tokens * heads * dim];
        float[] got = new float[want.length];
        java.util.Arrays.fill(got, Float.NaN); // every output must be written
        backend.attentionRows(c.q, c.keys, c.values, want, heads, kvHeads, dim, start, tokens, c.qScale, c.kqScale);
        BatchAttention.run(kernels, c.q, c.keys, c.values, got, heads, kvHeads, dim, start, tokens, c.qScale, c.kqScale);
        for (int i = 0; i < want.length; i++) {
            assertThat(Float.floatToIntBits(got[i])).as("output %d (token %d)", i, i / (heads * dim))
                    .isEqualTo(Float.floatToIntBits(want[i]));
        }
        // and both near softmax attention in double (probabilities rounded to half: ~1e-3 relative)
        double[] exact = c.exact();
        for (int i = 0; i < want.length; i++) {
            assertThat((double) got[i]).as("output %d", i).isCloseTo(exact[i], org.assertj.core.data.Offset.offset(4e-3));
        }
    }

    @Test
    void anInfiniteValueATokenDoesNotSeeLeavesItsOutputFinite() {
        int heads = 2, kvHeads = 1, dim = 32, tokens = 20;
        Case c = new Case(heads, kvHeads, dim, 0, tokens, new Random(3));
        int last = tokens - 1;
        c.values[last * kvHeads * dim + 3] = Float.POSITIVE_INFINITY; // only the last token sees it
        float[] want = new float[tokens * heads * dim];
        float[] got = new float[want.length];
        backend.attentionRows(c.q, c.keys, c.values, want, heads, kvHeads, dim, 0, tokens, c.qScale, c.kqScale);
        BatchAttention.run(kernels, c.q, c.keys, c.values, got, heads, kvHeads, dim, 0, tokens, c.qScale, c.kqScale);
        for (int i = 0; i < want.length; i++) {
            assertThat(Float.floatToIntBits(got[i])).as("output %d", i).isEqualTo(Float.floatToIntBits(want[i]));
        }
        assertThat(got[(last - 1) * heads * dim + 3]).isFinite();
        assertThat(got[last * heads * dim + 3]).isInfinite();
    }

    @ParameterizedTest(name = "heads {0}/{1}, dim {2}, start {3}, tokens {4}")
    @CsvSource({"32, 8, 64, 300, 1", "8, 2, 96, 130, 1", "4, 4, 64, 0, 1", "8, 2, 64, 40, 5", "6, 2, 48, 260, 3"})
    void queryHeadsSharingATaskGiveTheSameBits(int heads, int kvHeads, int dim, int start, int tokens) {
        Case c = new Case(heads, kvHeads, dim, start, tokens, new Random(start * 3L + dim + tokens));
        float[] alone = new float[tokens * heads * dim], shared = new float[alone.length];
        java.util.Arrays.fill(shared, Float.NaN);
        backend.attentionRows(c.q, c.keys, c.values, alone, heads, kvHeads, dim, start, tokens, c.qScale, c.kqScale,
                Integer.MAX_VALUE);
        backend.attentionRows(c.q, c.keys, c.values, shared, heads, kvHeads, dim, start, tokens, c.qScale, c.kqScale, 0);
        for (int i = 0; i < alone.length; i++) {
            assertThat(Float.floatToIntBits(shared[i])).as("output %d", i).isEqualTo(Float.floatToIntBits(alone[i]));
        }
        double[] exact = c.exact();
        for (int i = 0; i < alone.length; i++) {
            assertThat((double) alone[i]).as("output %d", i).isCloseTo(exact[i], org.assertj.core.data.Offset.offset(4e-3));
        }
    }

    /** Random queries and a cache of halfs holding {@code start + tokens} positions. */
    private static final class Case {
        final int heads, kvHeads, dim, start, tokens;
        final float[] q, keys, values;
        final float qScale = 1f, kqScale;

        Case(int heads, int kvHeads, int dim, int start, int tokens, Random rnd) {
            this.heads = heads;
            this.kvHeads = kvHeads;
            this.dim = dim;
            this.start = start;
            this.tokens = tokens;
            this.kqScale = (float) (1 / Math.sqrt(dim));
            q = new float[tokens * heads * dim];
            int positions = start + tokens;
            keys = new float[(positions + 3) * kvHeads * dim]; // room past the end: must not be read
            values = new float[keys.length];
            for (int i = 0; i < q.length; i++) {
                q[i] = (float) (rnd.nextGaussian() * 2);
            }
            for (int i = 0; i < keys.length; i++) {
                boolean past = i >= positions * kvHeads * dim;
                keys[i] = past ? Float.NaN : half((float) rnd.nextGaussian() * 2);
                values[i] = past ? Float.NaN : half((float) rnd.nextGaussian());
            }
        }

        double[] exact() {
            int kvDim = kvHeads * dim;
            double[] out = new double[tokens * heads * dim];
            for (int t = 0; t < tokens; t++) {
                int len = start + t + 1;
                for (int h = 0; h < heads; h++) {
                    int kv = h / (heads / kvHeads) * dim, qo = (t * heads + h) * dim;
                    double[] s = new double[len];
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int p = 0; p < len; p++) {
                        for (int d = 0; d < dim; d++) {
                            s[p] += (double) half(q[qo + d]) * keys[p * kvDim + kv + d];
                        }
                        s[p] *= kqScale;
                        max = Math.max(max, s[p]);
                    }
                    for (int p = 0; p < len; p++) {
                        s[p] = Math.exp(s[p] - max);
                        sum += s[p];
                    }
                    for (int p = 0; p < len; p++) {
                        for (int d = 0; d < dim; d++) {
                            out[qo + d] += s[p] / sum * values[p * kvDim + kv + d];
                        }
                    }
                }
            }
            return out;
        }
    }

    private static float half(float x) {
        return Float.float16ToFloat(Float.floatToFloat16(x));
    }
}
