package io.jcascade.kernels;

import io.jcascade.gguf.GgmlType;
import io.jcascade.gguf.GgufTensor;
import java.lang.foreign.MemorySegment;

/**
 * A weight matrix in ggml's layout: {@code rows} rows of {@code cols} elements, each row a run of
 * {@code cols / type.blockSize()} blocks of {@code type.typeSize()} bytes, rows back to back.
 * A 1-D tensor (a norm's weights) is one row.
 *
 * <pre>{@code
 * WeightMatrix wq = WeightMatrix.of(gguf.tensor("blk.0.attn_q.weight"));
 * kernels.matmul(wq, x, 0, wq.cols(), out, 0, wq.rows(), 1);
 * }</pre>
 *
 * @param type element type
 * @param data the bytes, usually a slice of a mapped GGUF file
 * @param rows number of rows (output features)
 * @param cols elements per row (input features, ne0)
 */
public record WeightMatrix(GgmlType type, MemorySegment data, int rows, int cols) {

    public WeightMatrix {
        long need = type.rowBytes(cols) * rows;
        if (data.byteSize() < need) {
            throw new IllegalArgumentException("a " + rows + "x" + cols + " " + type + " matrix needs " + need
                    + " bytes, the segment has " + data.byteSize());
        }
    }

    /** Views a GGUF tensor of up to 2 dimensions (or more, with the upper ones flattened into rows). */
    public static WeightMatrix of(GgufTensor t) {
        return new WeightMatrix(t.type(), t.data(), Math.toIntExact(t.rowCount()), Math.toIntExact(t.rowLength()));
    }

    /** Bytes of one row. */
    public long rowBytes() {
        return type.rowBytes(cols);
    }
}
