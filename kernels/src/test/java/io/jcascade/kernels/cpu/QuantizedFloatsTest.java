package io.jcascade.kernels.cpu;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.gguf.GgmlType;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link Q8Activations#quantizedFloats} (the prompt path's one-pass, vectorized quantization)
 * against {@link Q8Activations#quantize} then {@link Q8Activations#dequantize} or
 * {@link Q8Activations#dequantizePermuted}, bit for bit, on rows with all-zero blocks, exact
 * halves after scaling (rounding ties), NaN and infinite elements, and ties for the largest
 * magnitude.
 */
class QuantizedFloatsTest {

    @ParameterizedTest(name = "{0}, order {1}, tokens {2}")
    @CsvSource({
        "Q8_0, natural, 5", "Q4_0, natural, 3", "Q8_0, Q8_0, 4", "Q4_0, Q4_0, 2",
        "Q4_K, natural, 3", "Q6_K, natural, 2", "Q4_K, Q4_K, 3", "Q6_K, Q6_K, 2",
    })
    void matchesQuantizeThenDequantize(GgmlType type, String order, int tokens) {
        int n = 1024, stride = n + 7;
        Random rnd = new Random(type.ordinal() * 13L + tokens);
        float[] x = new float[3 + tokens * stride];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (rnd.nextGaussian() * Math.exp(rnd.nextGaussian() * 3));
        }
        // token 0: a zero block of 256, exact ties after scaling, the largest magnitude twice with both signs
        java.util.Arrays.fill(x, 3, 3 + 256, 0f);
        for (int j = 256; j < 288; j++) {
            x[3 + j] = (j % 2 == 0 ? 1f : -1f) * (j - 256) / 2f; // amax 15.5: q = x * 127/15.5 hits .5 cases
        }
        x[3 + 300] = -40f;
        x[3 + 310] = 40f;
        // token 1: a NaN and an infinity in separate blocks
        if (tokens > 1) {
            x[3 + stride + 40] = Float.NaN;
            x[3 + stride + 600] = Float.POSITIVE_INFINITY;
        }
        int[] perm = switch (order) {
            case "natural" -> null;
            case "Q8_0" -> PackedMatrix.PERM_Q8_0;
            default -> PackedMatrix.permutation(type);
        };
        Q8Activations a = new Q8Activations();
        a.quantize(type, x, 3, stride, n, tokens);
        float[] want = perm == null ? a.dequantize(tokens) : a.dequantizePermuted(perm, tokens);
        float[] got = new float[n * tokens];
        java.util.Arrays.fill(got, -7f);
        Q8Activations.quantizedFloats(type, x, 3, stride, n, 0, 1, perm, got);
        Q8Activations.quantizedFloats(type, x, 3, stride, n, 1, tokens, perm, got);
        for (int i = 0; i < n * tokens; i++) {
            assertThat(Float.floatToIntBits(got[i])).as("element %d of token %d", i % n, i / n)
                    .isEqualTo(Float.floatToIntBits(want[i]));
        }
    }
}
