package io.jcascade.kernels.quant;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;
import io.jcascade.kernels.cpu.ScalarKernels;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Round trips through {@link Quantizer} and the reference dequantization stay within each type's error. */
class QuantizerTest {

    @ParameterizedTest
    @CsvSource({"Q8_0, 0.01", "Q4_0, 0.12", "Q2_K, 0.40", "Q3_K, 0.20", "Q4_K, 0.10", "Q5_K, 0.05", "Q6_K, 0.025"})
    void roundTripErrorIsSmall(GgmlType type, double bound) {
        int n = 4096;
        Random rnd = new Random(42);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (rnd.nextGaussian() * 0.02 + (i % 97 == 0 ? 0.1 : 0));
        }
        byte[] q = new byte[(int) type.rowBytes(n)];
        Quantizer.quantizeRow(type, x, 0, n, q, 0);
        MemorySegment seg = Arena.ofAuto().allocate(q.length);
        MemorySegment.copy(q, 0, seg, ValueLayout.JAVA_BYTE, 0, q.length);
        float[] y = new float[n];
        new ScalarKernels().dequantizeRow(new WeightMatrix(type, seg, 1, n), 0, y, 0);
        double err = 0, norm = 0;
        for (int i = 0; i < n; i++) {
            err += (x[i] - y[i]) * (double) (x[i] - y[i]);
            norm += x[i] * (double) x[i];
        }
        double rel = Math.sqrt(err / norm);
        System.out.printf("%s relative RMS error %.4f%n", type, rel);
        assertThat(rel).isLessThan(bound);
    }
}
