package io.jcascade.engine;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.assertj.core.api.Assertions.assertThat;

import de.kherud.llama.LlamaModel;
import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;
import io.jcascade.kernels.cpu.ScalarKernels;
import io.jcascade.kernels.quant.Quantizer;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Locale;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * jcascade's {@link Quantizer} against ggml's own, called through FFM in the {@code libjllama.so}
 * of the de.kherud binding (llama.cpp build 4916, which exports ggml's C API):
 * {@code ggml_quantize_chunk} without an importance matrix (what llama-quantize runs, and so
 * {@code quantize_row_*_ref}) must write the same bytes as ours, and ggml's
 * {@code dequantize_row_*} must give the same floats as {@link ScalarKernels}, on rows chosen to
 * reach the corners of the algorithms: Gaussian rows, outliers, all-zero and near-zero
 * sub-blocks, one-signed rows, and a row of zeros.
 */
class GgmlQuantizerAgreementTest {

    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle QUANTIZE_CHUNK;
    private static final SymbolLookup LIB;

    static {
        try {
            Class.forName(LlamaModel.class.getName(), true, LlamaModel.class.getClassLoader()); // loads libjllama.so
        } catch (ClassNotFoundException e) {
            throw new IllegalStateException(e);
        }
        LIB = SymbolLookup.loaderLookup();
        // size_t ggml_quantize_chunk(enum ggml_type, const float * src, void * dst, int64_t start,
        //                            int64_t nrows, int64_t n_per_row, const float * imatrix)
        QUANTIZE_CHUNK = LINKER.downcallHandle(LIB.find("ggml_quantize_chunk").orElseThrow(), FunctionDescriptor.of(
                JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS));
    }

    /** {@code rows} rows of {@code cols} floats quantized to {@code type} by ggml itself (no importance matrix). */
    static byte[] ggmlQuantize(GgmlType type, float[] x, int rows, int cols) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocateFrom(ValueLayout.JAVA_FLOAT, x);
            MemorySegment dst = arena.allocate(type.rowBytes(cols) * rows);
            long written = (long) QUANTIZE_CHUNK.invokeExact(type.id(), src, dst, 0L, (long) rows, (long) cols,
                    MemorySegment.NULL);
            if (written != dst.byteSize()) {
                throw new IllegalStateException("ggml_quantize_chunk wrote " + written + " bytes, expected " + dst.byteSize());
            }
            return dst.toArray(ValueLayout.JAVA_BYTE);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private static final int COLS = 1024;
    private static final int ROWS = 48;

    /** Rows with the cases the quantizers branch on. */
    private static float[] rows() {
        Random r = new Random(3);
        float[] x = new float[ROWS * COLS];
        for (int row = 0; row < ROWS; row++) {
            int o = row * COLS;
            for (int i = 0; i < COLS; i++) {
                double v = switch (row % 6) {
                    case 0 -> r.nextGaussian() * 0.02;
                    case 1 -> r.nextGaussian() * 0.02 + (r.nextInt(97) == 0 ? 0.5 : 0); // outliers
                    case 2 -> (i / 16) % 5 == 0 ? 0 : r.nextGaussian(); // all-zero sub-blocks of 16
                    case 3 -> Math.abs(r.nextGaussian()) * 3; // one sign
                    case 4 -> -Math.abs(r.nextGaussian()) * 1e-3 * (1 + i % 7);
                    default -> (i / 32) % 3 == 0 ? r.nextGaussian() * 1e-9 : r.nextGaussian() * 10; // tiny sub-blocks
                };
                x[o + i] = (float) v;
            }
        }
        java.util.Arrays.fill(x, 7 * COLS, 8 * COLS, 0f); // a row of zeros
        return x;
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_0", "Q4_0"})
    void quantizedBytesAndDequantizedValuesEqualGgmls(GgmlType type) throws Throwable {
        float[] x = rows();
        int rowBytes = (int) type.rowBytes(COLS);
        byte[] ours = new byte[ROWS * rowBytes];
        for (int row = 0; row < ROWS; row++) {
            Quantizer.quantizeRow(type, x, row * COLS, COLS, ours, row * rowBytes);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocateFrom(ValueLayout.JAVA_FLOAT, x);
            MemorySegment dst = arena.allocate(ours.length);
            long written = (long) QUANTIZE_CHUNK.invokeExact(type.id(), src, dst, 0L, (long) ROWS, (long) COLS,
                    MemorySegment.NULL);
            assertThat(written).isEqualTo(ours.length);
            byte[] ggml = dst.toArray(ValueLayout.JAVA_BYTE);
            int differing = 0;
            for (int b = 0; b < ggml.length / type.typeSize(); b++) {
                if (!java.util.Arrays.equals(ggml, b * type.typeSize(), (b + 1) * type.typeSize(), ours,
                        b * type.typeSize(), (b + 1) * type.typeSize())) {
                    differing++;
                }
            }
            System.out.printf("%s: %d of %d blocks byte-identical to ggml_quantize_chunk%n", type,
                    ggml.length / type.typeSize() - differing, ggml.length / type.typeSize());
            assertThat(ours).as("%s blocks differing from ggml: %d", type, differing).isEqualTo(ggml);

            // ggml's dequantize_row_<type> of those bytes, against the reference kernels'
            MethodHandle dequantize = LINKER.downcallHandle(
                    LIB.find("dequantize_row_" + type.name().toLowerCase(Locale.ROOT).replace("_k", "_K"))
                            .orElseThrow(),
                    FunctionDescriptor.ofVoid(ADDRESS, ADDRESS, JAVA_LONG));
            MemorySegment y = arena.allocate(ValueLayout.JAVA_FLOAT, (long) ROWS * COLS);
            dequantize.invokeExact(dst, y, (long) ROWS * COLS);
            float[] theirs = y.toArray(ValueLayout.JAVA_FLOAT);
            WeightMatrix w = new WeightMatrix(type, dst, ROWS, COLS);
            float[] row = new float[COLS];
            ScalarKernels ref = new ScalarKernels();
            for (int r = 0; r < ROWS; r++) {
                ref.dequantizeRow(w, r, row, 0);
                for (int i = 0; i < COLS; i++) {
                    assertThat(Float.floatToRawIntBits(row[i])).as("%s row %d element %d: %s vs ggml %s", type, r, i,
                            row[i], theirs[r * COLS + i]).isEqualTo(Float.floatToRawIntBits(theirs[r * COLS + i]));
                }
            }
        }
    }
}
