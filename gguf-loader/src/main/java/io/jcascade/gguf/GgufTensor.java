package io.jcascade.gguf;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A tensor of a GGUF file: its name, type, shape and a zero-copy view of its bytes.
 *
 * <p>The shape is in ggml order: {@code shape[0]} (ne0) is the length of a row, the contiguous
 * dimension. A PyTorch {@code Linear(in, out)} weight is stored as {@code [in, out]}: {@code out}
 * rows of {@code in} elements.
 *
 * <pre>{@code
 * GgufTensor wq = file.tensor("blk.0.attn_q.weight");
 * int cols = (int) wq.shape()[0], rows = (int) wq.shape()[1];
 * MemorySegment bytes = wq.data();   // a slice of the mapped file, no copy
 * }</pre>
 *
 * @param name tensor name
 * @param type element type
 * @param shape dimensions, ne0 first
 * @param offset offset of the data relative to the start of the file's data section
 * @param data the tensor's bytes, a slice of the mapped file
 */
public record GgufTensor(String name, GgmlType type, long[] shape, long offset, MemorySegment data) {

    /** Total number of elements. */
    public long elementCount() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    /** Size in bytes of the data. */
    public long byteSize() {
        return type.rowBytes(shape[0]) * (elementCount() / Math.max(1, shape[0]));
    }

    /** Elements per row (ne0). */
    public long rowLength() {
        return shape[0];
    }

    /** Number of rows: the product of every dimension but the first. */
    public long rowCount() {
        return shape[0] == 0 ? 0 : elementCount() / shape[0];
    }

    @Override
    public String toString() {
        return name + " " + type + " " + Arrays.toString(shape);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GgufTensor t && name.equals(t.name) && type == t.type
                && Arrays.equals(shape, t.shape) && offset == t.offset;
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }
}
