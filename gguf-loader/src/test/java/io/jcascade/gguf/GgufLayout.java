package io.jcascade.gguf;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * The byte layout of a valid GGUF file, field by field, walked independently of {@link GgufFile}
 * so malformed-input tests can truncate at, or overwrite, any particular field.
 */
final class GgufLayout {

    /** One field: what it is ({@code kind}), which key or tensor it belongs to, where it lies. */
    record Field(String kind, String owner, int offset, int length) {
        int end() {
            return offset + length;
        }
    }

    final List<Field> fields = new ArrayList<>();
    final int size;
    private final ByteBuffer b;
    private int pos;
    private String owner = "header";

    private GgufLayout(byte[] bytes, int alignment) {
        this.size = bytes.length;
        this.b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        field("magic", 4);
        field("version", 4);
        long tensors = u64("tensor_count");
        long kvs = u64("kv_count");
        for (int i = 0; i < kvs; i++) {
            owner = "kv#" + i;
            String key = string("key");
            owner = key;
            value(u32("value_type"));
        }
        List<long[]> data = new ArrayList<>();
        for (int i = 0; i < tensors; i++) {
            owner = "tensor#" + i;
            owner = string("tensor_name");
            int nDims = u32("n_dims");
            long[] shape = new long[nDims];
            for (int d = 0; d < nDims; d++) {
                shape[d] = u64("dim");
            }
            GgmlType type = GgmlType.fromId(u32("ggml_type"));
            long offset = u64("tensor_offset");
            long rows = 1;
            for (int d = 1; d < nDims; d++) {
                rows *= shape[d];
            }
            data.add(new long[] {offset, type.rowBytes(shape[0]) * rows});
        }
        owner = "data";
        if (tensors == 0) {
            return;
        }
        int dataOffset = (int) GgufFile.alignUp(pos, alignment);
        field("header_padding", dataOffset - pos);
        for (int i = 0; i < data.size(); i++) {
            owner = "tensor#" + i;
            int start = (int) (dataOffset + data.get(i)[0]);
            if (start > pos) {
                field("data_padding", start - pos);
            }
            field("tensor_data", (int) data.get(i)[1]);
        }
        owner = "data";
        field("tail_padding", size - pos);
    }

    /** Walks {@code bytes}, a valid file whose tensors are stored in info order. */
    static GgufLayout of(byte[] bytes) throws GgufFormatException {
        return new GgufLayout(bytes, GgufFile.read(bytes).alignment());
    }

    List<Field> fields(String kind) {
        return fields.stream().filter(f -> f.kind.equals(kind)).toList();
    }

    /** End of the last tensor's data, or of the header for a file without tensors. */
    int lastDataEnd() {
        List<Field> data = fields("tensor_data");
        return data.isEmpty() ? fields.getLast().end() : data.getLast().end();
    }

    private void field(String kind, int length) {
        fields.add(new Field(kind, owner, pos, length));
        pos += length;
    }

    private int u32(String kind) {
        int v = b.getInt(pos);
        field(kind, 4);
        return v;
    }

    private long u64(String kind) {
        long v = b.getLong(pos);
        field(kind, 8);
        return v;
    }

    private String string(String kind) {
        int n = (int) u64(kind + "_len");
        String s = new String(b.array(), pos, n, java.nio.charset.StandardCharsets.UTF_8);
        field(kind, n);
        return s;
    }

    // Enum ordinals equal GGUF type ids.
    private void value(int typeId) {
        GgufValueType t = GgufValueType.values()[typeId];
        switch (t) {
            case STRING -> string("string");
            case ARRAY -> {
                int et = u32("array_type");
                long n = u64("array_len");
                GgufValueType e = GgufValueType.values()[et];
                if (e == GgufValueType.STRING || e == GgufValueType.ARRAY) {
                    for (long i = 0; i < n; i++) {
                        value(et);
                    }
                } else {
                    field("array_data", (int) (n * e.minBytes()));
                }
            }
            default -> field("value", t.minBytes());
        }
    }
}
