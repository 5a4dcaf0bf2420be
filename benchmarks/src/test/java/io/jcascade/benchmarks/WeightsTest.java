package io.jcascade.benchmarks;

import static org.assertj.core.api.Assertions.assertThat;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;
import io.jcascade.kernels.cpu.CpuKernels;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The benchmark data is valid: what the kernels see is finite. */
class WeightsTest {

    @ParameterizedTest
    @EnumSource(names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"})
    void randomMatricesDequantizeToFiniteNonZeroValues(GgmlType type) {
        WeightMatrix w = Weights.random(type, 16, 512, 7);
        float[] row = new float[w.cols()];
        try (CpuKernels k = CpuKernels.create(1)) {
            for (int r = 0; r < w.rows(); r++) {
                k.dequantizeRow(w, r, row, 0);
                double sumSq = 0;
                for (float v : row) {
                    assertThat(Float.isFinite(v)).as("%s row %d", type, r).isTrue();
                    sumSq += v * v;
                }
                assertThat(sumSq).isPositive();
            }
        }
    }

    @ParameterizedTest
    @EnumSource(names = {"Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL"})
    void blockLayoutsKnownForTypesTheKernelsWillGain(GgmlType type) {
        for (int off : Weights.fp16Fields(type)) {
            assertThat(off).isBetween(0, type.typeSize() - 2);
        }
        assertThat(Weights.random(type, 2, 256, 1).data().byteSize()).isEqualTo(2 * type.rowBytes(256));
    }
}
