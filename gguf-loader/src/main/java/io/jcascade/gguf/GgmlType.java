package io.jcascade.gguf;

/**
 * The tensor element types of ggml, with their on-disk ids and block geometry.
 *
 * <p>Quantized types store {@link #blockSize()} consecutive elements of a row in one block of
 * {@link #typeSize()} bytes; a row of {@code n} elements ({@code n} a multiple of the block size)
 * takes {@code n / blockSize * typeSize} bytes. Ids and sizes follow ggml's {@code ggml_type}
 * table; ids that ggml retired are absent.
 *
 * <pre>{@code
 * GgmlType t = GgmlType.fromId(8);          // Q8_0
 * long bytes = t.rowBytes(4096);            // 4096 / 32 * 34 = 4352
 * }</pre>
 */
public enum GgmlType {
    F32(0, 1, 4),
    F16(1, 1, 2),
    Q4_0(2, 32, 18),
    Q4_1(3, 32, 20),
    Q5_0(6, 32, 22),
    Q5_1(7, 32, 24),
    Q8_0(8, 32, 34),
    Q8_1(9, 32, 36),
    Q2_K(10, 256, 84),
    Q3_K(11, 256, 110),
    Q4_K(12, 256, 144),
    Q5_K(13, 256, 176),
    Q6_K(14, 256, 210),
    Q8_K(15, 256, 292),
    IQ2_XXS(16, 256, 66),
    IQ2_XS(17, 256, 74),
    IQ3_XXS(18, 256, 98),
    IQ1_S(19, 256, 50),
    IQ4_NL(20, 32, 18),
    IQ3_S(21, 256, 110),
    IQ2_S(22, 256, 82),
    IQ4_XS(23, 256, 136),
    I8(24, 1, 1),
    I16(25, 1, 2),
    I32(26, 1, 4),
    I64(27, 1, 8),
    F64(28, 1, 8),
    IQ1_M(29, 256, 56),
    BF16(30, 1, 2),
    TQ1_0(34, 256, 54),
    TQ2_0(35, 256, 66),
    MXFP4(39, 32, 17);

    private static final GgmlType[] BY_ID = new GgmlType[64];

    static {
        for (GgmlType t : values()) {
            BY_ID[t.id] = t;
        }
    }

    private final int id;
    private final int blockSize;
    private final int typeSize;

    GgmlType(int id, int blockSize, int typeSize) {
        this.id = id;
        this.blockSize = blockSize;
        this.typeSize = typeSize;
    }

    /** The id that GGUF files store for this type. */
    public int id() {
        return id;
    }

    /** Elements per block (1 for plain types). */
    public int blockSize() {
        return blockSize;
    }

    /** Bytes per block. */
    public int typeSize() {
        return typeSize;
    }

    /** Whether elements are grouped in blocks with shared scales. */
    public boolean isQuantized() {
        return blockSize > 1;
    }

    /**
     * Bytes taken by a row of {@code elements} elements.
     *
     * @throws IllegalArgumentException if {@code elements} is not a multiple of the block size
     */
    public long rowBytes(long elements) {
        if (elements % blockSize != 0) {
            throw new IllegalArgumentException(
                    "a row of " + elements + " elements is not a whole number of " + this + " blocks of " + blockSize);
        }
        return elements / blockSize * typeSize;
    }

    /**
     * The type with the given GGUF id.
     *
     * @throws IllegalArgumentException if ggml has no such type
     */
    public static GgmlType fromId(int id) {
        GgmlType t = id >= 0 && id < BY_ID.length ? BY_ID[id] : null;
        if (t == null) {
            throw new IllegalArgumentException("unknown ggml tensor type id " + id);
        }
        return t;
    }

    /** Like {@link #fromId} but returns null for unknown ids. */
    static GgmlType fromIdOrNull(int id) {
        return id >= 0 && id < BY_ID.length ? BY_ID[id] : null;
    }
}
