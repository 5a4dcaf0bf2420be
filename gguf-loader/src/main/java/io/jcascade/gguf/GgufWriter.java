package io.jcascade.gguf;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Builds a GGUF file (version 3 by default, or 2): metadata of every value type, tensor infos
 * and tensor data, each tensor's data aligned to {@code general.alignment} (32 unless that key is
 * set) and padded with zeros.
 *
 * <p>Tensors are written in the order they were added, each at the next aligned offset, and the
 * file ends padded to the alignment; a file without tensors ends right after its header. That is
 * the layout llama.cpp writes. Writing to
 * a {@link Path} streams tensor data straight from its source to the file, so files larger than
 * the heap can be written; only the header is built in memory. Inputs are checked when they are
 * added and the writer refuses anything {@link GgufFile} would reject, so what it writes reads back.
 *
 * <pre>{@code
 * GgufWriter w = new GgufWriter();
 * w.put("general.architecture", GgufValue.ofString("llama"));
 * w.put("llama.block_count", GgufValue.ofUInt32(5));
 * w.addTensor("x", GgmlType.F32, new long[] {4, 2}, new byte[4 * 2 * 4]);
 * w.write(Path.of("out.gguf"));
 * }</pre>
 */
public final class GgufWriter {

    /**
     * Writes one tensor's bytes when the file is written, for data produced on the fly.
     *
     * <pre>{@code
     * w.addTensor("blk.0.ffn_up.weight", GgmlType.Q8_0, shape, out -> {
     *     for (int row = 0; row < rows; row++) out.write(quantizeRow(row));   // a ByteBuffer per row
     * });
     * }</pre>
     */
    @FunctionalInterface
    public interface DataSource {
        /** Writes exactly the tensor's byte size to {@code out}. */
        void writeTo(WritableByteChannel out) throws IOException;
    }

    /** A tensor as the writer will lay it out. */
    public record TensorEntry(String name, GgmlType type, long[] shape, long byteSize, long offset) {
        public TensorEntry {
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }
    }

    private static final int CHUNK = 16 << 20;
    private static final byte[] ZEROS = new byte[4096];

    private int version = 3;
    private final LinkedHashMap<String, GgufValue> metadata = new LinkedHashMap<>();
    private final List<Pending> tensors = new ArrayList<>();
    private final Map<String, Pending> tensorsByName = new LinkedHashMap<>();

    private record Pending(String name, GgmlType type, long[] shape, long byteSize, DataSource source) {}

    /** A writer for a GGUF v3 file with no metadata and no tensors. */
    public GgufWriter() {}

    /** Chooses the GGUF version to write, 2 or 3 (they share one layout). */
    public GgufWriter version(int version) {
        if (version != 2 && version != 3) {
            throw new IllegalArgumentException("can write GGUF version 2 or 3, not " + version);
        }
        this.version = version;
        return this;
    }

    public int version() {
        return version;
    }

    /**
     * Adds a metadata key-value pair; keys keep the order they were added in.
     *
     * @throws IllegalArgumentException if the key is already set, or the value's Java type does not
     *     match its GGUF type (see {@link GgufValue}), or arrays nest too deep, or
     *     {@code general.alignment} is not a power of two up to 1 MiB
     */
    public GgufWriter put(String key, GgufValue value) {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(value, "value");
        if (metadata.containsKey(key)) {
            throw new IllegalArgumentException("duplicate metadata key \"" + key + "\"");
        }
        checkValue(key, value, 0);
        if (key.equals("general.alignment")) {
            checkAlignment(value);
        }
        metadata.put(key, value);
        return this;
    }

    /** Adds every pair of {@code values}, in its iteration order. */
    public GgufWriter putAll(Map<String, GgufValue> values) {
        values.forEach(this::put);
        return this;
    }

    /** Metadata added so far, in order. */
    public Map<String, GgufValue> metadata() {
        return Collections.unmodifiableMap(metadata);
    }

    /** The alignment tensor data will use: {@code general.alignment} if set, else 32. */
    public int alignment() {
        GgufValue a = metadata.get("general.alignment");
        return a == null ? GgufFile.DEFAULT_ALIGNMENT : (int) a.asLong();
    }

    /**
     * Adds a tensor whose bytes are in {@code data}. The segment is not copied: it must stay
     * readable until the file is written.
     *
     * @throws IllegalArgumentException if the name is taken, the shape is not 1 to 4 non-negative
     *     dimensions with rows a whole number of blocks, or {@code data} has the wrong size
     */
    public GgufWriter addTensor(String name, GgmlType type, long[] shape, MemorySegment data) {
        Objects.requireNonNull(data, "data");
        long size = checkTensor(name, type, shape);
        if (data.byteSize() != size) {
            throw new IllegalArgumentException("tensor \"" + name + "\" " + type + " " + Arrays.toString(shape)
                    + " takes " + size + " bytes but " + data.byteSize() + " were given");
        }
        return add(name, type, shape, size, out -> writeSegment(out, data));
    }

    /** Adds a tensor whose bytes are in {@code data} (not copied: do not change it before writing). */
    public GgufWriter addTensor(String name, GgmlType type, long[] shape, byte[] data) {
        return addTensor(name, type, shape, MemorySegment.ofArray(Objects.requireNonNull(data, "data")));
    }

    /** Adds a tensor read from another file, keeping its name, type, shape and bytes. */
    public GgufWriter addTensor(GgufTensor tensor) {
        return addTensor(tensor.name(), tensor.type(), tensor.shape(), tensor.data());
    }

    /**
     * Adds a tensor whose bytes {@code source} produces when the file is written, so a quantizer
     * can convert one tensor at a time. The writer checks it writes exactly the tensor's size.
     */
    public GgufWriter addTensor(String name, GgmlType type, long[] shape, DataSource source) {
        Objects.requireNonNull(source, "source");
        return add(name, type, shape, checkTensor(name, type, shape), source);
    }

    private GgufWriter add(String name, GgmlType type, long[] shape, long size, DataSource source) {
        Pending p = new Pending(name, type, shape.clone(), size, source);
        tensors.add(p);
        tensorsByName.put(name, p);
        return this;
    }

    /** The tensors added so far with the offsets (relative to the data section) they will get. */
    public List<TensorEntry> tensors() {
        List<TensorEntry> out = new ArrayList<>(tensors.size());
        long offset = 0;
        int align = alignment();
        for (Pending p : tensors) {
            out.add(new TensorEntry(p.name, p.type, p.shape, p.byteSize, offset));
            offset = GgufFile.alignUp(offset + p.byteSize, align);
        }
        return out;
    }

    /** Size in bytes of the file {@link #write} would produce. */
    public long fileSize() {
        int align = alignment();
        long size = header().length;
        if (tensors.isEmpty()) {
            return size;
        }
        size = GgufFile.alignUp(size, align);
        for (Pending p : tensors) {
            size = GgufFile.alignUp(size + p.byteSize, align);
        }
        return size;
    }

    /**
     * Writes the file, streaming tensor data. It goes to a temporary file beside {@code path}
     * that replaces {@code path} only once complete, so a failed write leaves no partial model.
     */
    public void write(Path path) throws IOException {
        Path abs = path.toAbsolutePath();
        Path tmp = abs.resolveSibling(abs.getFileName() + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            writeTo(ch);
            ch.force(false);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(tmp);
            throw e;
        }
        try {
            Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (java.nio.file.AtomicMoveNotSupportedException e) {
            Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Writes the whole file to {@code out}, tensor data streamed from its sources. */
    public void writeTo(WritableByteChannel out) throws IOException {
        int align = alignment();
        byte[] header = header();
        writeFully(out, ByteBuffer.wrap(header));
        long pos = header.length;
        if (tensors.isEmpty()) {
            return;
        }
        pos = pad(out, pos, align);
        for (Pending p : tensors) {
            CountingChannel counting = new CountingChannel(out);
            p.source.writeTo(counting);
            if (counting.count != p.byteSize) {
                throw new IllegalStateException("data source of tensor \"" + p.name + "\" wrote " + counting.count
                        + " bytes, expected " + p.byteSize);
            }
            pos = pad(out, pos + p.byteSize, align);
        }
    }

    /**
     * The whole file as a byte array, for tests and small files.
     *
     * @throws IllegalStateException if the file would not fit in an array
     */
    public byte[] toBytes() {
        long size = fileSize();
        if (size > Integer.MAX_VALUE - 16) {
            throw new IllegalStateException("a " + size + "-byte file does not fit in a byte array; write it to a Path");
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream((int) size);
        try {
            writeTo(Channels.newChannel(bytes));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return bytes.toByteArray();
    }

    // ---- header encoding ----

    private byte[] header() {
        Out o = new Out();
        o.i32(GgufFile.MAGIC);
        o.i32(version);
        o.i64(tensors.size());
        o.i64(metadata.size());
        metadata.forEach((key, value) -> {
            o.string(key);
            o.i32(value.type().id());
            o.value(value);
        });
        for (TensorEntry t : tensors()) {
            o.string(t.name());
            o.i32(t.shape.length);
            for (long d : t.shape) {
                o.i64(d);
            }
            o.i32(t.type().id());
            o.i64(t.offset());
        }
        return o.toByteArray();
    }

    /** A growable little-endian buffer. */
    private static final class Out {
        private ByteBuffer buf = ByteBuffer.allocate(1024).order(ByteOrder.LITTLE_ENDIAN);

        private void ensure(long n) {
            if (buf.remaining() < n) {
                long want = Math.max((long) buf.capacity() * 2, buf.position() + n);
                if (want > Integer.MAX_VALUE - 16) {
                    throw new IllegalStateException("GGUF header over 2 GiB");
                }
                ByteBuffer bigger = ByteBuffer.allocate((int) want).order(ByteOrder.LITTLE_ENDIAN);
                buf.flip();
                bigger.put(buf);
                buf = bigger;
            }
        }

        void i8(int v) {
            ensure(1);
            buf.put((byte) v);
        }

        void i16(int v) {
            ensure(2);
            buf.putShort((short) v);
        }

        void i32(int v) {
            ensure(4);
            buf.putInt(v);
        }

        void i64(long v) {
            ensure(8);
            buf.putLong(v);
        }

        void string(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            i64(b.length);
            ensure(b.length);
            buf.put(b);
        }

        void value(GgufValue v) {
            Object x = v.value();
            switch (v.type()) {
                case UINT8, INT8, BOOL -> i8(x instanceof Boolean b ? (b ? 1 : 0) : ((Number) x).intValue());
                case UINT16, INT16 -> i16(((Number) x).intValue());
                case UINT32, INT32 -> i32(((Number) x).intValue());
                case UINT64, INT64 -> i64(((Number) x).longValue());
                case FLOAT32 -> i32(Float.floatToRawIntBits((Float) x));
                case FLOAT64 -> i64(Double.doubleToRawLongBits((Double) x));
                case STRING -> string((String) x);
                case ARRAY -> array(v);
            }
        }

        void array(GgufValue v) {
            Object a = v.value();
            i32(v.elementType().id());
            i64(java.lang.reflect.Array.getLength(a));
            switch (a) {
                case byte[] b -> { ensure(b.length); buf.put(b); }
                case short[] s -> { for (short e : s) i16(e); }
                case int[] ints -> { for (int e : ints) i32(e); }
                case long[] l -> {
                    boolean narrow = v.elementType() == GgufValueType.UINT32;
                    for (long e : l) {
                        if (narrow) i32((int) e); else i64(e);
                    }
                }
                case float[] f -> { for (float e : f) i32(Float.floatToRawIntBits(e)); }
                case double[] d -> { for (double e : d) i64(Double.doubleToRawLongBits(e)); }
                case String[] s -> { for (String e : s) string(e); }
                case GgufValue[] nested -> { for (GgufValue e : nested) array(e); }
                default -> throw new AssertionError(a.getClass());
            }
        }

        byte[] toByteArray() {
            return Arrays.copyOf(buf.array(), buf.position());
        }
    }

    // ---- validation ----

    private long checkTensor(String name, GgmlType type, long[] shape) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(shape, "shape");
        if (tensorsByName.containsKey(name)) {
            throw new IllegalArgumentException("duplicate tensor name \"" + name + "\"");
        }
        if (shape.length < 1 || shape.length > GgufFile.MAX_DIMS) {
            throw new IllegalArgumentException("tensor \"" + name + "\" has " + shape.length
                    + " dimensions, expected 1 to " + GgufFile.MAX_DIMS);
        }
        long rows = 1;
        for (int d = 0; d < shape.length; d++) {
            if (shape[d] < 0) {
                throw new IllegalArgumentException("tensor \"" + name + "\" dimension " + d + " is negative: "
                        + shape[d]);
            }
            if (d > 0) {
                try {
                    rows = Math.multiplyExact(rows, shape[d]);
                } catch (ArithmeticException e) {
                    throw new IllegalArgumentException("tensor \"" + name + "\" shape " + Arrays.toString(shape)
                            + " has too many elements");
                }
            }
        }
        if (shape[0] % type.blockSize() != 0) {
            throw new IllegalArgumentException("tensor \"" + name + "\" has rows of " + shape[0]
                    + " elements, not a multiple of the " + type + " block size " + type.blockSize());
        }
        try {
            Math.multiplyExact(shape[0], rows);
            return Math.multiplyExact(type.rowBytes(shape[0]), rows);
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("tensor \"" + name + "\" shape " + Arrays.toString(shape)
                    + " has too many elements");
        }
    }

    private static void checkAlignment(GgufValue value) {
        GgufValueType t = value.type();
        if (t != GgufValueType.UINT32 && t != GgufValueType.INT32 && t != GgufValueType.UINT64) {
            throw new IllegalArgumentException("general.alignment must be UINT32, not " + value.describeType());
        }
        long a = value.asLong();
        if (a <= 0 || a > GgufFile.MAX_ALIGNMENT || (a & (a - 1)) != 0) {
            throw new IllegalArgumentException("general.alignment " + a + " is not a power of two up to "
                    + GgufFile.MAX_ALIGNMENT);
        }
    }

    private static void checkValue(String key, GgufValue v, int depth) {
        Object x = v.value();
        GgufValueType t = v.type();
        if (t != GgufValueType.ARRAY) {
            checkScalar(key, t, x);
            return;
        }
        if (depth >= GgufFile.MAX_NESTING) {
            throw new IllegalArgumentException("array \"" + key + "\" nests deeper than " + GgufFile.MAX_NESTING
                    + " levels, which readers refuse");
        }
        GgufValueType et = v.elementType();
        Class<?> want = switch (et) {
            case UINT8, INT8, BOOL -> byte[].class;
            case UINT16, INT16 -> short[].class;
            case INT32 -> int[].class;
            case UINT32, UINT64, INT64 -> long[].class;
            case FLOAT32 -> float[].class;
            case FLOAT64 -> double[].class;
            case STRING -> String[].class;
            case ARRAY -> GgufValue[].class;
        };
        if (x.getClass() != want) {
            throw new IllegalArgumentException("array \"" + key + "\" of " + et + " must hold a "
                    + want.getSimpleName() + ", not a " + x.getClass().getSimpleName());
        }
        switch (x) {
            case byte[] b when et == GgufValueType.BOOL -> {
                for (int i = 0; i < b.length; i++) {
                    if (b[i] != 0 && b[i] != 1) {
                        throw new IllegalArgumentException("bool element " + i + " of array \"" + key + "\" is " + b[i]);
                    }
                }
            }
            case long[] l when et == GgufValueType.UINT32 -> {
                for (int i = 0; i < l.length; i++) {
                    if (l[i] < 0 || l[i] > 0xFFFF_FFFFL) {
                        throw new IllegalArgumentException("element " + i + " of UINT32 array \"" + key + "\" is "
                                + l[i] + ", out of range");
                    }
                }
            }
            case String[] s -> {
                for (int i = 0; i < s.length; i++) {
                    Objects.requireNonNull(s[i], () -> "element of string array \"" + key + "\" is null");
                }
            }
            case GgufValue[] nested -> {
                for (int i = 0; i < nested.length; i++) {
                    GgufValue e = Objects.requireNonNull(nested[i], "nested array element is null");
                    if (e.type() != GgufValueType.ARRAY) {
                        throw new IllegalArgumentException("element " + i + " of array of arrays \"" + key
                                + "\" is a " + e.describeType() + ", not an array");
                    }
                    checkValue(key + "[" + i + "]", e, depth + 1);
                }
            }
            default -> { }
        }
    }

    private static void checkScalar(String key, GgufValueType t, Object x) {
        boolean ok = switch (t) {
            case UINT8 -> isInt(x) && inRange(x, 0, 0xFF);
            case INT8 -> isInt(x) && inRange(x, Byte.MIN_VALUE, Byte.MAX_VALUE);
            case UINT16 -> isInt(x) && inRange(x, 0, 0xFFFF);
            case INT16 -> isInt(x) && inRange(x, Short.MIN_VALUE, Short.MAX_VALUE);
            case UINT32 -> x instanceof Long && inRange(x, 0, 0xFFFF_FFFFL);
            case INT32 -> x instanceof Integer;
            case UINT64, INT64 -> x instanceof Long;
            case FLOAT32 -> x instanceof Float;
            case FLOAT64 -> x instanceof Double;
            case BOOL -> x instanceof Boolean;
            case STRING -> x instanceof String;
            case ARRAY -> throw new AssertionError();
        };
        if (!ok) {
            throw new IllegalArgumentException("metadata \"" + key + "\" of type " + t + " cannot hold the "
                    + x.getClass().getSimpleName() + " " + x + " (" + t + " values are " + javaTypeOf(t) + ")");
        }
    }

    private static String javaTypeOf(GgufValueType t) {
        return switch (t) {
            case UINT8, INT8, UINT16, INT16, INT32 -> "Integer in range";
            case UINT32 -> "Long from 0 to 2^32-1";
            case UINT64, INT64 -> "Long";
            case FLOAT32 -> "Float";
            case FLOAT64 -> "Double";
            case BOOL -> "Boolean";
            case STRING -> "String";
            case ARRAY -> "arrays";
        };
    }

    private static boolean isInt(Object x) {
        return x instanceof Integer;
    }

    private static boolean inRange(Object x, long lo, long hi) {
        long v = ((Number) x).longValue();
        return v >= lo && v <= hi;
    }

    // ---- output ----

    private static void writeSegment(WritableByteChannel out, MemorySegment data) throws IOException {
        // asByteBuffer is limited to 2 GiB, and smaller writes keep the page cache flowing.
        for (long off = 0; off < data.byteSize(); off += CHUNK) {
            long n = Math.min(CHUNK, data.byteSize() - off);
            writeFully(out, data.asSlice(off, n).asByteBuffer());
        }
    }

    private static long pad(WritableByteChannel out, long pos, int align) throws IOException {
        long target = GgufFile.alignUp(pos, align);
        long n = target - pos;
        while (n > 0) {
            int k = (int) Math.min(n, ZEROS.length);
            writeFully(out, ByteBuffer.wrap(ZEROS, 0, k));
            n -= k;
        }
        return target;
    }

    private static void writeFully(WritableByteChannel out, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            out.write(b);
        }
    }

    /** Counts what a data source writes, so a short or long write is caught. */
    private static final class CountingChannel implements WritableByteChannel {
        private final WritableByteChannel out;
        long count;

        CountingChannel(WritableByteChannel out) {
            this.out = out;
        }

        @Override
        public int write(ByteBuffer src) throws IOException {
            int n = out.write(src);
            count += n;
            return n;
        }

        @Override
        public boolean isOpen() {
            return out.isOpen();
        }

        @Override
        public void close() {
            // The writer owns the underlying channel.
        }
    }
}
