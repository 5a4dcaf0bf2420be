package io.jcascade.gguf;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A GGUF file (versions 2 and 3), memory-mapped: metadata is decoded on open, tensor data stays
 * in the mapping and is handed out as {@link MemorySegment} slices, never copied onto the heap.
 *
 * <p>The file is treated as untrusted input. Every count, length, type id, dimension and offset is
 * checked against what the file can hold before anything is allocated, so a malformed file gives
 * a {@link GgufFormatException} naming the problem and its byte offset, never an
 * {@link OutOfMemoryError}, a hang or an index error from deep inside.
 *
 * <pre>{@code
 * try (GgufFile gguf = GgufFile.open(Path.of("models/stories260K.gguf"))) {
 *     String arch = gguf.getString("general.architecture");          // "llama"
 *     GgufTensor embd = gguf.tensor("token_embd.weight");
 *     System.out.println(embd.type() + " " + java.util.Arrays.toString(embd.shape()));
 * }
 * }</pre>
 */
public final class GgufFile implements AutoCloseable {

    /** "GGUF" read as a little-endian uint32. */
    public static final int MAGIC = 0x46554747;
    public static final int DEFAULT_ALIGNMENT = 32;
    /** ggml's GGML_MAX_DIMS. */
    public static final int MAX_DIMS = 4;

    private static final ValueLayout.OfByte U8 = ValueLayout.JAVA_BYTE;
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    /** Arrays of arrays nest at most this deep; deeper files are rejected rather than recursed into. */
    public static final int MAX_NESTING = 8;
    /** The largest {@code general.alignment} accepted (1 MiB). */
    public static final int MAX_ALIGNMENT = 1 << 20;

    private final Path path;
    private final Arena arena;
    private final MemorySegment segment;
    private final int version;
    private final Map<String, GgufValue> metadata;
    private final List<GgufTensor> tensors;
    private final Map<String, GgufTensor> tensorsByName;
    private final int alignment;
    private final long dataOffset;

    private GgufFile(Path path, Arena arena, MemorySegment segment) throws GgufFormatException {
        this.path = path;
        this.arena = arena;
        this.segment = segment;
        Reader r = new Reader(segment);
        if (segment.byteSize() < 4) {
            throw new GgufFormatException("file is " + segment.byteSize() + " bytes, too short for the GGUF magic", 0);
        }
        int magic = r.i32("magic");
        if (magic != MAGIC) {
            throw new GgufFormatException(String.format(
                    "not a GGUF file: magic is 0x%08x, expected 0x%08x (\"GGUF\")", magic, MAGIC), 0);
        }
        long versionAt = r.pos;
        this.version = r.i32("version");
        if (version != 2 && version != 3) {
            throw new GgufFormatException("unsupported GGUF version " + Integer.toUnsignedString(version)
                    + " (supported: 2, 3)", versionAt);
        }
        long countsAt = r.pos;
        long tensorCount = r.i64("tensor count");
        long kvCount = r.i64("metadata key-value count");
        // Each tensor info takes at least 8 (name) + 4 (n_dims) + 4 (type) + 8 (offset) bytes, each key-value 8 + 4 + 1.
        if (tensorCount < 0 || tensorCount > r.remaining() / 24) {
            throw new GgufFormatException("tensor count " + Long.toUnsignedString(tensorCount)
                    + " is more than the file's " + segment.byteSize() + " bytes could hold", countsAt);
        }
        if (kvCount < 0 || kvCount > r.remaining() / 13) {
            throw new GgufFormatException("metadata key-value count " + Long.toUnsignedString(kvCount)
                    + " is more than the file's " + segment.byteSize() + " bytes could hold", countsAt + 8);
        }

        LinkedHashMap<String, GgufValue> kv = new LinkedHashMap<>();
        long alignAt = -1;
        for (long i = 0; i < kvCount; i++) {
            long keyAt = r.pos;
            String key = r.string("metadata key #" + i);
            if (kv.containsKey(key)) {
                throw new GgufFormatException("duplicate metadata key \"" + key + "\"", keyAt);
            }
            long typeAt = r.pos;
            int typeId = r.i32("type of metadata key \"" + key + "\"");
            GgufValueType type = GgufValueType.fromIdOrNull(typeId);
            if (type == null) {
                throw new GgufFormatException("metadata key \"" + key + "\" has unknown value type "
                        + Integer.toUnsignedString(typeId), typeAt);
            }
            if (key.equals("general.alignment")) {
                alignAt = keyAt;
            }
            kv.put(key, r.value(type, key, 0));
        }
        this.metadata = Collections.unmodifiableMap(kv);

        GgufValue align = kv.get("general.alignment");
        if (align != null) {
            if (align.type() != GgufValueType.UINT32 && align.type() != GgufValueType.INT32
                    && align.type() != GgufValueType.UINT64) {
                throw new GgufFormatException("general.alignment has type " + align.describeType() + ", expected UINT32", alignAt);
            }
            long a = align.asLong();
            if (a <= 0 || a > MAX_ALIGNMENT || (a & (a - 1)) != 0) {
                throw new GgufFormatException("general.alignment " + (align.type() == GgufValueType.UINT64
                        ? Long.toUnsignedString(a) : Long.toString(a)) + " is not a power of two up to 1 MiB", alignAt);
            }
            this.alignment = (int) a;
        } else {
            this.alignment = DEFAULT_ALIGNMENT;
        }

        record Info(String name, GgmlType type, long[] shape, long offset, long bytes, long at) {}
        // The count is only bounded by the file size, which for a corrupt multi-GB model still allows
        // hundreds of millions; grow with what actually parses instead of trusting it up front.
        List<Info> infos = new ArrayList<>((int) Math.min(tensorCount, 1024));
        Map<String, Boolean> seen = new LinkedHashMap<>();
        for (long i = 0; i < tensorCount; i++) {
            long at = r.pos;
            String name = r.string("name of tensor #" + i);
            if (seen.put(name, Boolean.TRUE) != null) {
                throw new GgufFormatException("duplicate tensor name \"" + name + "\"", at);
            }
            long dimsAt = r.pos;
            int nDims = r.i32("dimension count of tensor \"" + name + "\"");
            if (nDims < 1 || nDims > MAX_DIMS) {
                throw new GgufFormatException("tensor \"" + name + "\" has " + Integer.toUnsignedString(nDims)
                        + " dimensions, expected 1 to " + MAX_DIMS, dimsAt);
            }
            long[] shape = new long[nDims];
            long elements = 1;
            for (int d = 0; d < nDims; d++) {
                long dimAt = r.pos;
                shape[d] = r.i64("dimension " + d + " of tensor \"" + name + "\"");
                if (shape[d] < 0) {
                    throw new GgufFormatException("tensor \"" + name + "\" dimension " + d + " is "
                            + Long.toUnsignedString(shape[d]) + ", out of range", dimAt);
                }
                try {
                    elements = Math.multiplyExact(elements, shape[d]);
                } catch (ArithmeticException e) {
                    throw new GgufFormatException("tensor \"" + name + "\" has a shape whose element count overflows",
                            dimAt);
                }
            }
            long typeAt = r.pos;
            int typeId = r.i32("type of tensor \"" + name + "\"");
            GgmlType type = GgmlType.fromIdOrNull(typeId);
            if (type == null) {
                throw new GgufFormatException("tensor \"" + name + "\" has unknown ggml type "
                        + Integer.toUnsignedString(typeId), typeAt);
            }
            if (shape[0] % type.blockSize() != 0) {
                throw new GgufFormatException("tensor \"" + name + "\" has rows of " + shape[0] + " elements, not a "
                        + "multiple of the " + type + " block size " + type.blockSize(), dimsAt);
            }
            long offAt = r.pos;
            long offset = r.i64("data offset of tensor \"" + name + "\"");
            if (offset < 0 || offset % alignment != 0) {
                throw new GgufFormatException("tensor \"" + name + "\" data offset " + Long.toUnsignedString(offset)
                        + " is not a multiple of the alignment " + alignment, offAt);
            }
            long bytes;
            try {
                bytes = Math.multiplyExact(shape[0] / type.blockSize(), (long) type.typeSize());
                bytes = Math.multiplyExact(bytes, shape[0] == 0 ? 0 : elements / shape[0]);
            } catch (ArithmeticException e) {
                throw new GgufFormatException("tensor \"" + name + "\" byte size overflows", dimsAt);
            }
            infos.add(new Info(name, type, shape, offset, bytes, at));
        }

        long afterInfos = r.pos;
        this.dataOffset = alignUp(afterInfos, alignment);
        if (tensorCount > 0 && dataOffset > segment.byteSize()) {
            throw new GgufFormatException("file ends before the tensor data section, which starts at " + dataOffset,
                    segment.byteSize());
        }
        long dataBytes = Math.max(0, segment.byteSize() - dataOffset);

        // Tensors must lie inside the data section and must not overlap one another.
        List<Info> byOffset = new ArrayList<>(infos);
        byOffset.sort(Comparator.comparingLong(Info::offset));
        long end = 0;
        String previous = null;
        for (Info info : byOffset) {
            if (info.offset > dataBytes || info.bytes > dataBytes - info.offset) {
                throw new GgufFormatException("tensor \"" + info.name + "\" data [" + info.offset + ", "
                        + (info.offset + info.bytes) + ") of the data section runs past the end of the file (data "
                        + "section holds " + dataBytes + " bytes)", info.at);
            }
            if (info.offset < end) {
                throw new GgufFormatException("tensor \"" + info.name + "\" data at " + info.offset
                        + " overlaps tensor \"" + previous + "\" which ends at " + end, info.at);
            }
            end = info.offset + info.bytes;
            previous = info.name;
        }

        List<GgufTensor> list = new ArrayList<>(infos.size());
        Map<String, GgufTensor> byName = new LinkedHashMap<>();
        for (Info info : infos) {
            MemorySegment data = segment.asSlice(dataOffset + info.offset, info.bytes);
            GgufTensor t = new GgufTensor(info.name, info.type, info.shape, info.offset, data);
            list.add(t);
            byName.put(info.name, t);
        }
        this.tensors = Collections.unmodifiableList(list);
        this.tensorsByName = Collections.unmodifiableMap(byName);
    }

    /**
     * Maps and parses the file at {@code path}. The mapping lives until {@link #close()}.
     *
     * @throws NoSuchFileException if there is no such file
     * @throws GgufFormatException if the file is not well-formed GGUF
     */
    public static GgufFile open(Path path) throws IOException {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            // An empty file cannot be mapped; a zero-length heap segment fails the same checks.
            MemorySegment seg = ch.size() == 0 ? MemorySegment.ofArray(new byte[0])
                    : ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            return new GgufFile(path, arena, seg);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    /**
     * Parses GGUF bytes already in memory (tests, files embedded as resources). The segment must
     * outlive this object; {@link #close()} does not free it.
     */
    public static GgufFile read(MemorySegment bytes) throws GgufFormatException {
        return new GgufFile(null, null, bytes);
    }

    /** Parses GGUF bytes held in a heap array. */
    public static GgufFile read(byte[] bytes) throws GgufFormatException {
        return read(MemorySegment.ofArray(bytes));
    }

    /** The file this was opened from, or null when read from memory. */
    public Path path() {
        return path;
    }

    public int version() {
        return version;
    }

    /** All metadata, in file order. */
    public Map<String, GgufValue> metadata() {
        return metadata;
    }

    /** All tensors, in file order. */
    public List<GgufTensor> tensors() {
        return tensors;
    }

    public Optional<GgufValue> get(String key) {
        return Optional.ofNullable(metadata.get(key));
    }

    public boolean contains(String key) {
        return metadata.containsKey(key);
    }

    /**
     * A required string value.
     *
     * @throws GgufFormatException if the key is missing or not a string
     */
    public String getString(String key) throws GgufFormatException {
        return require(key, GgufValueType.STRING).asString();
    }

    /** A required integer value of any integer type that fits in an int. */
    public int getInt(String key) throws GgufFormatException {
        GgufValue v = require(key, null);
        try {
            return v.asInt();
        } catch (IllegalStateException e) {
            throw new GgufFormatException("metadata key \"" + key + "\": " + e.getMessage(), -1);
        }
    }

    /** An integer value, or {@code fallback} when absent. */
    public int getInt(String key, int fallback) throws GgufFormatException {
        return contains(key) ? getInt(key) : fallback;
    }

    /** A required number, as a float. */
    public float getFloat(String key) throws GgufFormatException {
        GgufValue v = require(key, null);
        try {
            return v.asFloat();
        } catch (IllegalStateException e) {
            throw new GgufFormatException("metadata key \"" + key + "\": " + e.getMessage(), -1);
        }
    }

    public float getFloat(String key, float fallback) throws GgufFormatException {
        return contains(key) ? getFloat(key) : fallback;
    }

    public boolean getBool(String key, boolean fallback) throws GgufFormatException {
        if (!contains(key)) {
            return fallback;
        }
        GgufValue v = require(key, GgufValueType.BOOL);
        return v.asBool();
    }

    private GgufValue require(String key, GgufValueType type) throws GgufFormatException {
        GgufValue v = metadata.get(key);
        if (v == null) {
            throw new GgufFormatException("required metadata key \"" + key + "\" is missing", -1);
        }
        if (type != null && v.type() != type) {
            throw new GgufFormatException("metadata key \"" + key + "\" has type " + v.describeType()
                    + ", expected " + type, -1);
        }
        return v;
    }

    /**
     * The tensor with the given name.
     *
     * @throws GgufFormatException if the file has no such tensor
     */
    public GgufTensor tensor(String name) throws GgufFormatException {
        GgufTensor t = tensorsByName.get(name);
        if (t == null) {
            throw new GgufFormatException("required tensor \"" + name + "\" is missing", -1);
        }
        return t;
    }

    public Optional<GgufTensor> findTensor(String name) {
        return Optional.ofNullable(tensorsByName.get(name));
    }

    public int alignment() {
        return alignment;
    }

    /**
     * Absolute file offset of the tensor data section: the end of the header rounded up to the
     * alignment. For a file without tensors, which need not be padded, it may lie past the end.
     */
    public long dataOffset() {
        return dataOffset;
    }

    /** The whole mapped file. */
    public MemorySegment segment() {
        return segment;
    }

    /** Unmaps the file; tensor segments become inaccessible. */
    @Override
    public void close() {
        if (arena != null) {
            arena.close();
        }
    }

    static long alignUp(long x, long alignment) {
        return (x + alignment - 1) / alignment * alignment;
    }

    /** A bounds-checked little-endian cursor over the header. */
    private static final class Reader {
        private final MemorySegment seg;
        long pos;

        Reader(MemorySegment seg) {
            this.seg = seg;
        }

        long remaining() {
            return seg.byteSize() - pos;
        }

        private void need(long n, String what) throws GgufFormatException {
            if (n < 0 || n > remaining()) {
                throw new GgufFormatException("file truncated: " + what + " needs " + Long.toUnsignedString(n)
                        + " bytes but only " + remaining() + " remain", pos);
            }
        }

        int i32(String what) throws GgufFormatException {
            need(4, what);
            int v = seg.get(I32, pos);
            pos += 4;
            return v;
        }

        long i64(String what) throws GgufFormatException {
            need(8, what);
            long v = seg.get(I64, pos);
            pos += 8;
            return v;
        }

        String string(String what) throws GgufFormatException {
            long at = pos;
            long len = i64("length of " + what);
            if (len < 0 || len > remaining()) {
                throw new GgufFormatException("string length " + Long.toUnsignedString(len) + " of " + what
                        + " runs past the end of the file (" + remaining() + " bytes remain)", at);
            }
            if (len > Integer.MAX_VALUE - 16) {
                throw new GgufFormatException("string length " + len + " of " + what + " is too large", at);
            }
            if (len == 0) {
                // Runs of zero bytes parse as empty strings; share one so they cost no memory.
                return "";
            }
            byte[] bytes = seg.asSlice(pos, len).toArray(U8);
            pos += len;
            try {
                return StandardCharsets.UTF_8.newDecoder()
                        .onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT)
                        .decode(java.nio.ByteBuffer.wrap(bytes)).toString();
            } catch (CharacterCodingException e) {
                // Some vocabularies hold byte sequences that are not valid UTF-8 on their own; keep them readable.
                return new String(bytes, StandardCharsets.UTF_8);
            }
        }

        GgufValue value(GgufValueType type, String key, int depth) throws GgufFormatException {
            String what = "value of \"" + key + "\"";
            return switch (type) {
                case UINT8, INT8 -> { need(1, what); byte b = seg.get(U8, pos++); yield GgufValue.of(type,
                        type == GgufValueType.UINT8 ? (Object) Byte.toUnsignedInt(b) : (Object) (int) b); }
                case BOOL -> {
                    need(1, what);
                    byte b = seg.get(U8, pos);
                    if (b != 0 && b != 1) {
                        throw new GgufFormatException("bool " + what + " is " + b + ", expected 0 or 1", pos);
                    }
                    pos++;
                    yield GgufValue.of(type, b == 1);
                }
                case UINT16 -> { need(2, what); int v = Short.toUnsignedInt(seg.get(I16, pos)); pos += 2;
                        yield GgufValue.of(type, v); }
                case INT16 -> { need(2, what); int v = seg.get(I16, pos); pos += 2; yield GgufValue.of(type, v); }
                case UINT32 -> GgufValue.of(type, Integer.toUnsignedLong(i32(what)));
                case INT32 -> GgufValue.of(type, i32(what));
                case FLOAT32 -> { need(4, what); float v = seg.get(F32, pos); pos += 4; yield GgufValue.of(type, v); }
                case UINT64, INT64 -> GgufValue.of(type, i64(what));
                case FLOAT64 -> { need(8, what); double v = seg.get(F64, pos); pos += 8; yield GgufValue.of(type, v); }
                case STRING -> GgufValue.of(type, string(what));
                case ARRAY -> array(key, depth);
            };
        }

        private GgufValue array(String key, int depth) throws GgufFormatException {
            long at = pos;
            if (depth >= MAX_NESTING) {
                throw new GgufFormatException("array \"" + key + "\" nests deeper than " + MAX_NESTING + " levels", at);
            }
            int typeId = i32("element type of array \"" + key + "\"");
            GgufValueType et = GgufValueType.fromIdOrNull(typeId);
            if (et == null) {
                throw new GgufFormatException("array \"" + key + "\" has unknown element type "
                        + Integer.toUnsignedString(typeId), at);
            }
            long countAt = pos;
            long n = i64("length of array \"" + key + "\"");
            if (n < 0 || n > remaining() / et.minBytes() || n > Integer.MAX_VALUE - 16) {
                throw new GgufFormatException("array \"" + key + "\" claims " + Long.toUnsignedString(n) + " " + et
                        + " elements, more than the " + remaining() + " remaining bytes could hold", countAt);
            }
            int count = (int) n;
            String what = "array \"" + key + "\"";
            switch (et) {
                case UINT8, INT8 -> {
                    need(count, what);
                    byte[] a = seg.asSlice(pos, count).toArray(U8);
                    pos += count;
                    return GgufValue.array(et, a);
                }
                case BOOL -> {
                    need(count, what);
                    byte[] a = seg.asSlice(pos, count).toArray(U8);
                    for (int i = 0; i < count; i++) {
                        if (a[i] != 0 && a[i] != 1) {
                            throw new GgufFormatException("bool element " + i + " of " + what + " is " + a[i], pos + i);
                        }
                    }
                    pos += count;
                    return GgufValue.array(et, a);
                }
                case UINT16, INT16 -> {
                    need(2L * count, what);
                    short[] a = seg.asSlice(pos, 2L * count).toArray(I16);
                    pos += 2L * count;
                    return GgufValue.array(et, a);
                }
                case INT32 -> {
                    need(4L * count, what);
                    int[] a = seg.asSlice(pos, 4L * count).toArray(I32);
                    pos += 4L * count;
                    return GgufValue.array(et, a);
                }
                case UINT32 -> {
                    need(4L * count, what);
                    long[] a = new long[count];
                    for (int i = 0; i < count; i++) {
                        a[i] = Integer.toUnsignedLong(seg.get(I32, pos + 4L * i));
                    }
                    pos += 4L * count;
                    return GgufValue.array(et, a);
                }
                case UINT64, INT64 -> {
                    need(8L * count, what);
                    long[] a = seg.asSlice(pos, 8L * count).toArray(I64);
                    pos += 8L * count;
                    return GgufValue.array(et, a);
                }
                case FLOAT32 -> {
                    need(4L * count, what);
                    float[] a = seg.asSlice(pos, 4L * count).toArray(F32);
                    pos += 4L * count;
                    return GgufValue.array(et, a);
                }
                case FLOAT64 -> {
                    need(8L * count, what);
                    double[] a = seg.asSlice(pos, 8L * count).toArray(F64);
                    pos += 8L * count;
                    return GgufValue.array(et, a);
                }
                case STRING -> {
                    // Each element takes 8+ bytes of file but a String costs far more heap, so a corrupt
                    // count must not size the array up front: grow it as elements actually parse.
                    String[] a = new String[Math.min(count, 4096)];
                    for (int i = 0; i < count; i++) {
                        if (i == a.length) {
                            a = java.util.Arrays.copyOf(a, (int) Math.min(count, 2L * a.length));
                        }
                        a[i] = string("element " + i + " of " + what);
                    }
                    return GgufValue.array(et, a);
                }
                case ARRAY -> {
                    GgufValue[] a = new GgufValue[Math.min(count, 4096)];
                    for (int i = 0; i < count; i++) {
                        if (i == a.length) {
                            a = java.util.Arrays.copyOf(a, (int) Math.min(count, 2L * a.length));
                        }
                        a[i] = array(key + "[" + i + "]", depth + 1);
                    }
                    return GgufValue.array(et, a);
                }
                default -> throw new AssertionError(et);
            }
        }
    }
}
