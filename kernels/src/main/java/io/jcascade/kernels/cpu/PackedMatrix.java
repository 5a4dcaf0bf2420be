package io.jcascade.kernels.cpu;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.WeightMatrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * A quantized weight matrix repacked once, at load time, into a layout made for 512-bit vectors
 * (or an F16 one cut into column pieces, last in the list below):
 * one 64-byte load of 32 little-endian shorts holds four 4-bit quants per short, so shifts and
 * masks on the whole vector give four vectors of 32 weight quants in 16-bit lanes, ready to
 * multiply with the activation quants, and scales are kept apart from the quants. The
 * multiplication is {@link PackedDot}'s; the activations are permuted into the same element order
 * once per matmul ({@link Q8Activations#permute}), so nothing is shuffled per row.
 *
 * <p>Types and layouts. Each row is a run of groups (Q4_0: 16 blocks of 32; K-quants: one
 * super-block of 256), each group's bytes together, so a row streams from memory front to back
 * as the file layout does (hardware prefetchers follow one sequential stream per row; scales in
 * a separate region of the row were demand misses). Element indices are within the group:
 * <ul>
 * <li><b>Q4_0</b>, 288 bytes per 16 blocks (18 per block, as the file): 256 bytes of quants (four
 *     64-byte loads), nibble k of short j of load L is {@code (q - 8) & 0xF} (signed 4 bits) of
 *     block {@code j/2}, element {@code 2 (4L + k) + j%2}, so short lanes {@code 2i, 2i+1} hold
 *     block i; then the 16 fp16 scales.
 * <li><b>Q4_K</b>, 148 bytes per super-block (4 more than the file's 144): 128 bytes of quants
 *     (two 64-byte loads), nibble k of short j of load L is the quant (0..15) of element
 *     {@code 32 (4L + j/8) + 4 (j%8) + k}: short j holds the 4 elements of ggml's lane j % 8 of
 *     sub-block 4L + j/8, which keeps ggml's float order (see {@link PackedDot}); then fp16 d,
 *     dmin; then the eight 6-bit scales and the eight 6-bit mins, unpacked to a byte each.
 * <li><b>Q6_K</b>, 210 bytes per super-block (as the file): 128 bytes of low 4 bits (two loads),
 *     nibble k of short j of load L for element {@code 32 (4L + j/8) + 4 (j%8) + k} (as Q4_K:
 *     short j is one ggml lane of one chunk of 32); 64 bytes of high 2 bits (one load), bits
 *     {@code 2v, 2v+1} of short j for the element of nibble {@code v % 4} of load {@code v / 4},
 *     stored as {@code high - 2} in two's complement (shifted up and arithmetically down it is
 *     {@code high - 2}, so {@code q - 32} is one add away);
 *     then the 16 int8 scales and fp16 d as in the file.
 * <li><b>Q4_0, 16 rows interleaved</b> (matrices whose row count divides by 16, which is every
 *     Llama-shape matrix): rows {@code 16G .. 16G+15} are one stream of 288-byte units, unit b
 *     holding block b of all 16 rows: 256 bytes of quants (four 64-byte loads), nibble k of short
 *     j of load L is {@code (q - 8) & 0xF} of row {@code 16G + j/2}, element {@code 2 (4L + k) + j%2}
 *     of the block; then the 16 rows' fp16 scales. Short lanes {@code 2i, 2i+1} belong to row i, so
 *     a block's products pair-sum into one int lane per row and 16 rows advance by one float
 *     multiply-add per block, in lanes: the order of llama.cpp's repacked Q4_0 (one chain per row,
 *     block after block) with no scalar chain. Elements keep their natural order, so the
 *     activations need no permutation, only pairing ({@link Q8Activations#pair}).
 * <li><b>Q4_K, 16 rows interleaved</b> (row counts that divide by 16): rows {@code 16G .. 16G+15}
 *     are one stream of 2368-byte units (148 bytes a row, as the row layout), unit b holding
 *     super-block b of all 16 rows: for each sub-block c of 32 elements a 296-byte chunk: 256
 *     bytes of quants laid out as interleaved Q4_0's, {@code (q - 8) & 0xF} (so the short sums stay
 *     within Q4_0's bounds; the kernel adds back {@code 8 * sum(x)}), the 16 rows' 6-bit scales
 *     and their 6-bit mins, a byte each, then 8 bytes of the 16 rows' fp16 {@code d} and
 *     {@code dmin} (so all chunks are the same size; {@link #q4kD}). Each row's super-block sums
 *     exactly to one int lane, multiplied-added once with {@code d * d_x} (and the mins with
 *     {@code dmin * d_x}): a float order of its own, not ggml's 8 lanes
 *     ({@link ScalarInt8#row(io.jcascade.kernels.WeightMatrix, int, int[], float[], boolean)}),
 *     with no per-lane widening and scale multiply (docs/BENCHMARKS.md has the figures).
 * <li><b>Q8_0, 2 rows interleaved</b> (even row counts): rows {@code 2G, 2G+1} are one stream
 *     of 68-byte units, unit b holding block b of both rows: bytes 0..31 are elements
 *     {@code 4g, 4g+1} (g = 0..7) of row 2G then the same of row 2G+1, bytes 32..63 elements
 *     {@code 4g+2, 4g+3} of both rows, then the two fp16 scales. A 32-byte half widens to 32 short
 *     lanes; the pair sums of the two halves' products added give 16 int lanes: ggml's 8 lanes
 *     (elements 4l .. 4l+3) of each row, so one float multiply-add per block serves both rows in
 *     ggml's own lane order ({@link Q8Activations#halves} lays the activations out to match).
 * <li><b>F16 in column pieces</b> (rows of more than {@value #F16_MAX_ROW_COLS} columns, a multiple
 *     of 32: the FFN down projection): the values are the file's, in another order. Rows go in
 *     groups of {@value #F16_GROUP} (the last group may be shorter); a group is its columns
 *     {@code [0, 2048)} for all its rows (row by row), then {@code [2048, 4096)}, and so on
 *     ({@link #f16PieceOffset}). The kernel takes a group piece by piece, carrying each row's
 *     accumulators, so the weights still stream front to back while only a piece of x, 8 KiB of
 *     floats, shares L1 with them: a whole row of 8192 columns needs 32 KiB of x, which with the
 *     weight stream passes L1's 48 KiB, and x then comes from L2 at half the speed
 *     (docs/BENCHMARKS.md). Each row is summed in ggml_vec_dot_f16's order, as the file layout.
 * </ul>
 *
 * <p>The packed copy lives off the heap ({@link Arena#ofAuto()}: freed when unreachable); the
 * caller may drop the file pages of the original ({@link CpuBackend} does), so a model takes
 * about its file size in memory, not twice.
 */
public final class PackedMatrix {

    private static final ValueLayout.OfShort I16_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Element order of a packed Q4_0 group of 16 blocks: packed position i holds element PERM_Q4_0[i]. */
    static final int[] PERM_Q4_0 = new int[512];
    /** Element order of a packed Q4_K super-block. */
    static final int[] PERM_Q4_K = new int[256];
    /** Element order of a packed Q6_K super-block. */
    static final int[] PERM_Q6_K = new int[256];
    /** Element order of the float path's rows of interleaved Q8_0 (per block of 32). */
    static final int[] PERM_Q8_0 = new int[32];
    /** The natural order, per block of 32: interleaved Q4_0's. */
    private static final int[] NATURAL_32 = new int[32];

    static {
        for (int i = 0; i < 32; i++) {
            NATURAL_32[i] = i;
            // positions 0..15: elements 4g, 4g+1 (the first half's lanes of a row), 16..31: 4g+2, 4g+3
            PERM_Q8_0[i] = 4 * ((i % 16) / 2) + 2 * (i / 16) + i % 2;
        }
        for (int v = 0; v < 16; v++) {
            for (int j = 0; j < 32; j++) {
                PERM_Q4_0[32 * v + j] = 32 * (j / 2) + 2 * v + j % 2;
            }
        }
        // K-quants: vector v = 4l + k of a super-block (load l, nibble k), short lane j holds
        // element 4g + k of chunk m = 4l + j/8 (g = j % 8): a short lane sums the 4 elements of
        // ggml's lane g of chunk m, so int lanes keep ggml's grouping (see PackedDot)
        for (int v = 0; v < 8; v++) {
            for (int j = 0; j < 32; j++) {
                int e = 32 * (4 * (v / 4) + j / 8) + 4 * (j % 8) + v % 4;
                PERM_Q4_K[32 * v + j] = e;
                PERM_Q6_K[32 * v + j] = e;
            }
        }
    }

    final GgmlType type;
    final int rows;
    final int cols;
    final long rowBytes;
    /** Rows interleaved per group: 16 for Q4_0 and Q4_K, 2 for Q8_0 (where the row count allows), else 1. */
    final int interleave;
    final MemorySegment data;

    /** F16 rows of at most this many columns stay in the file layout: their x (16 KiB of floats) fits L1 beside the weights. */
    static final int F16_MAX_ROW_COLS = 4096;
    /** Columns of an F16 piece (a multiple of 32, the kernel's step; 8 KiB of x). */
    static final int F16_PIECE = 2048;
    /** Rows of an F16 group, whose pieces follow one another (whole groups stream sequentially). */
    static final int F16_GROUP = 64;

    /** Rows of a Q4_0 group in the interleaved layout: one 512-bit vector of float lanes. */
    static final int INTERLEAVE = 16;
    /** Rows of a Q8_0 group: two rows' ggml lanes (8 each) fill one 512-bit vector. */
    static final int INTERLEAVE_Q8_0 = 2;

    private PackedMatrix(GgmlType type, int rows, int cols, long rowBytes, int interleave, MemorySegment data) {
        this.type = type;
        this.rows = rows;
        this.cols = cols;
        this.rowBytes = rowBytes;
        this.interleave = interleave;
        this.data = data;
    }

    /** Whether rows are interleaved in groups of {@link #interleave} (row ranges must then be whole groups). */
    boolean interleaved() {
        return interleave > 1;
    }

    /**
     * Rows per interleaved group for a matrix of {@code type} with {@code rows} rows: Q4_0 and Q4_K
     * 16, Q8_0 2, when the rows make whole groups; else 1. The system property
     * {@code jcascade.interleave} = {@code false} keeps Q4_0 row by row (and Q8_0 in the file
     * layout), for comparisons; {@code jcascade.interleave.q4k} = {@code false} keeps Q4_K row by
     * row only, in ggml's float order (bit for bit llama.cpp's AVX2 kernel).
     */
    static int interleaveFor(GgmlType type, int rows) {
        if ("false".equalsIgnoreCase(System.getProperty("jcascade.interleave", "true"))) {
            return 1;
        }
        return switch (type) {
            case Q4_0 -> rows % INTERLEAVE == 0 ? INTERLEAVE : 1;
            case Q4_K -> rows % INTERLEAVE == 0
                    && !"false".equalsIgnoreCase(System.getProperty("jcascade.interleave.q4k", "true")) ? INTERLEAVE : 1;
            case Q8_0 -> rows % INTERLEAVE_Q8_0 == 0 ? INTERLEAVE_Q8_0 : 1;
            default -> 1;
        };
    }

    public GgmlType type() {
        return type;
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    /** Bytes of the packed copy. */
    public long byteSize() {
        return data.byteSize();
    }

    /** Whether {@code type} rows of {@code cols} have a packed layout (Q8_0: in matrices of even row count). */
    static boolean supports(GgmlType type, int cols) {
        return switch (type) {
            case Q4_0 -> cols % 512 == 0 && cols > 0;
            case Q8_0 -> cols % 32 == 0 && cols > 0 && interleaveFor(type, 2) > 1;
            case Q4_K, Q6_K -> cols % 256 == 0 && cols > 0;
            case F16 -> cols > F16_MAX_ROW_COLS && cols % 32 == 0;
            default -> false;
        };
    }

    /**
     * Byte offset of row {@code r}'s piece of F16 columns starting at {@code c} (a multiple of
     * {@link #F16_PIECE}): its {@code min(F16_PIECE, cols - c)} halfs are contiguous there.
     */
    long f16PieceOffset(int r, int c) {
        int g0 = r / F16_GROUP * F16_GROUP;
        int groupRows = Math.min(F16_GROUP, rows - g0);
        int len = Math.min(F16_PIECE, cols - c);
        return g0 * rowBytes + 2L * c * groupRows + 2L * len * (r - g0);
    }

    /**
     * The element order of {@code p}'s layout, per group of its length (see
     * {@link #permutation(GgmlType)}): for interleaved Q8_0 the order its float path's rows are
     * dequantized in, for interleaved Q4_0 and Q4_K the natural order.
     */
    /** {@link #permutation(PackedMatrix)}, or null where it is the natural order. */
    static int[] floatPathOrder(PackedMatrix p) {
        int[] perm = permutation(p);
        return perm == NATURAL_32 ? null : perm;
    }

    static int[] permutation(PackedMatrix p) {
        if (!p.interleaved()) {
            return permutation(p.type);
        }
        return p.type == GgmlType.Q8_0 ? PERM_Q8_0 : NATURAL_32;
    }

    /** The element order within a block group (Q4_0: 512 elements) or super-block (256) of the row layouts. */
    static int[] permutation(GgmlType type) {
        return switch (type) {
            case Q4_0 -> PERM_Q4_0;
            case Q4_K -> PERM_Q4_K;
            case Q6_K -> PERM_Q6_K;
            default -> throw new IllegalArgumentException("no packed layout for " + type);
        };
    }

    static long packedRowBytes(GgmlType type, int cols) {
        return switch (type) {
            case Q4_0 -> 18L * (cols / 32);
            case Q8_0 -> 34L * (cols / 32);
            case Q4_K -> 148L * (cols / 256);
            case Q6_K -> 210L * (cols / 256);
            case F16 -> 2L * cols;
            default -> throw new IllegalArgumentException("no packed layout for " + type);
        };
    }

    /**
     * Repacks rows {@code [r0, r1)} of {@code w} into {@code p}'s segment; rows are independent,
     * so threads may pack disjoint ranges of one matrix.
     */
    static void packRows(WeightMatrix w, PackedMatrix p, int r0, int r1) {
        byte[] q = new byte[256];
        short[] s = new short[128];
        long src = w.rowBytes();
        if (p.interleaved()) {
            int il = p.interleave;
            if (r0 % il != 0 || r1 % il != 0) {
                throw new IllegalArgumentException("rows " + r0 + ".." + r1 + " are not whole groups of " + il);
            }
            for (int g = r0 / il; g < r1 / il; g++) {
                if (p.type == GgmlType.Q8_0) {
                    packQ8_0x2(w.data(), il * g * src, src, p.data, il * g * p.rowBytes, p.cols);
                } else if (p.type == GgmlType.Q4_K) {
                    packQ4Kx16(w.data(), il * g * src, src, p.data, il * g * p.rowBytes, p.cols, s);
                } else {
                    packQ4_0x16(w.data(), il * g * src, src, p.data, il * g * p.rowBytes, p.cols, s);
                }
            }
            return;
        }
        for (int r = r0; r < r1; r++) {
            long in = r * src, out = r * p.rowBytes;
            if (w.type() == GgmlType.F16) {
                for (int c = 0; c < p.cols; c += F16_PIECE) {
                    MemorySegment.copy(w.data(), in + 2L * c, p.data, p.f16PieceOffset(r, c),
                            2L * Math.min(F16_PIECE, p.cols - c));
                }
                continue;
            }
            switch (w.type()) {
                case Q4_0 -> packQ4_0(w.data(), in, p.data, out, p.cols, q, s);
                case Q4_K -> packQ4K(w.data(), in, p.data, out, p.cols, q, s);
                case Q6_K -> packQ6K(w.data(), in, p.data, out, p.cols, q, s);
                default -> throw new IllegalArgumentException("no packed layout for " + w.type());
            }
        }
    }

    /** An empty packed matrix of {@code w}'s type and shape, to fill with {@link #packRows}. */
    static PackedMatrix allocate(WeightMatrix w) {
        if (!supports(w.type(), w.cols())) {
            throw new IllegalArgumentException("no packed layout for " + w.type() + " rows of " + w.cols());
        }
        int interleave = interleaveFor(w.type(), w.rows());
        if (w.type() == GgmlType.Q8_0 && interleave == 1) {
            throw new IllegalArgumentException("Q8_0 is packed only in pairs of rows, not " + w.rows() + " rows");
        }
        long rowBytes = packedRowBytes(w.type(), w.cols());
        MemorySegment data = Arena.ofAuto().allocate(rowBytes * w.rows(), 64);
        return new PackedMatrix(w.type(), w.rows(), w.cols(), rowBytes, interleave, data);
    }

    /** Packs {@code w} on the calling thread. */
    static PackedMatrix pack(WeightMatrix w) {
        PackedMatrix p = allocate(w);
        packRows(w, p, 0, w.rows());
        return p;
    }

    private static int u8(MemorySegment seg, long off) {
        return Byte.toUnsignedInt(seg.get(ValueLayout.JAVA_BYTE, off));
    }

    /** Writes shorts s[0 .. count) as nibble/crumb-packed little-endian shorts at {@code off}. */
    private static void putShorts(MemorySegment seg, long off, short[] s, int count) {
        for (int j = 0; j < count; j++) {
            seg.set(I16_LE, off + 2L * j, s[j]);
        }
    }

    private static void packQ4_0(MemorySegment in, long io, MemorySegment out, long oo, int n, byte[] q, short[] s) {
        int nb = n / 32;
        byte[] g16 = new byte[512];
        for (int g = 0; g < nb / 16; g++) {
            // the 512 quants of blocks 16g .. 16g+15, still plus 8 (0..15), in element order
            for (int bb = 0; bb < 16; bb++) {
                long bo = io + 18L * (16 * g + bb) + 2;
                for (int j = 0; j < 16; j++) {
                    int v = u8(in, bo + j);
                    g16[32 * bb + j] = (byte) (v & 0xF);
                    g16[32 * bb + j + 16] = (byte) (v >> 4);
                }
            }
            java.util.Arrays.fill(s, 0, 128, (short) 0);
            for (int i = 0; i < 512; i++) {
                int v = i / 32, j = i % 32;
                // (q - 8) as signed 4 bits
                s[32 * (v / 4) + j] |= (short) (((g16[PERM_Q4_0[i]] ^ 8) & 0xF) << (4 * (v % 4)));
            }
            putShorts(out, oo + 288L * g, s, 128);
            for (int bb = 0; bb < 16; bb++) {
                out.set(I16_LE, oo + 288L * g + 256 + 2 * bb, in.get(I16_LE, io + 18L * (16 * g + bb)));
            }
        }
    }

    /**
     * Rows {@code 16G .. 16G+15} (file rows at {@code io}, {@code src} bytes apart) into the
     * interleaved layout at {@code oo}: per block, the 16 rows' quants, then their 16 scales.
     */
    private static void packQ4_0x16(MemorySegment in, long io, long src, MemorySegment out, long oo, int n, short[] s) {
        for (int b = 0; b < n / 32; b++) {
            java.util.Arrays.fill(s, 0, 128, (short) 0);
            long unit = oo + 288L * b;
            for (int row = 0; row < INTERLEAVE; row++) {
                long bo = io + row * src + 18L * b;
                for (int e = 0; e < 32; e++) {
                    int v = (u8(in, bo + 2 + e % 16) >> (e < 16 ? 0 : 4)) & 0xF;
                    // element e = 2 (4L + k) + parity sits in nibble k of short 2 row + parity of load L
                    int vk = e / 2, load = vk / 4, k = vk % 4, j = 2 * row + e % 2;
                    s[32 * load + j] |= (short) (((v ^ 8) & 0xF) << (4 * k)); // (q - 8) as signed 4 bits
                }
                out.set(I16_LE, unit + 256 + 2L * row, in.get(I16_LE, bo));
            }
            putShorts(out, unit, s, 128);
        }
    }

    /** Bytes of an interleaved Q4_K unit: 16 rows' super-blocks. */
    static final int Q4K_UNIT = 2368;
    /**
     * An interleaved Q4_K unit: per sub-block c, a 296-byte chunk at {@code 296c}: 256 bytes of
     * quants, the 16 rows' scale bytes at {@code Q4K_SC}, their min bytes after them, then 8 bytes
     * of the unit's 16 fp16 d and 16 fp16 dmin (d of rows 4c .. 4c+3 in chunks 0..3, dmin of rows
     * 4(c-4) .. in chunks 4..7: {@link #q4kD}, {@link #q4kDmin}). Equal chunks keep the kernel's
     * addresses linear in the sub-block index, which C2 needs to hoist the bounds checks out of its
     * loop (with the d and dmin after the 8 chunks: 15.2–15.9 against 16.2–17.0 GB/s per core on
     * 8192x2048).
     */
    static final int Q4K_CHUNK = 296, Q4K_SC = 256, Q4K_HALVES = 288;

    /** Byte offset of row {@code row}'s fp16 d in the interleaved Q4_K unit at {@code unit}. */
    static long q4kD(long unit, int row) {
        return unit + (long) Q4K_CHUNK * (row / 4) + Q4K_HALVES + 2 * (row % 4);
    }

    /** Byte offset of row {@code row}'s fp16 dmin in the interleaved Q4_K unit at {@code unit}. */
    static long q4kDmin(long unit, int row) {
        return q4kD(unit, row) + 4L * Q4K_CHUNK;
    }

    /**
     * Rows {@code 16G .. 16G+15} (file rows at {@code io}, {@code src} bytes apart) into the
     * interleaved Q4_K layout at {@code oo}: per super-block, per sub-block the 16 rows' quants as
     * an interleaved Q4_0 block, then the scales, mins, d and dmin of the 16 rows.
     */
    private static void packQ4Kx16(MemorySegment in, long io, long src, MemorySegment out, long oo, int n, short[] s) {
        for (int b = 0; b < n / 256; b++) {
            long unit = oo + (long) Q4K_UNIT * b;
            for (int c = 0; c < 8; c++) {
                java.util.Arrays.fill(s, 0, 128, (short) 0);
                for (int row = 0; row < INTERLEAVE; row++) {
                    long bo = io + row * src + 144L * b;
                    for (int e = 0; e < 32; e++) {
                        // file: sub-blocks 2j, 2j+1 are the low and high nibbles of bytes 32j .. 32j+31
                        int v = (u8(in, bo + 16 + 32 * (c / 2) + e) >> (4 * (c % 2))) & 0xF;
                        int vk = e / 2, load = vk / 4, k = vk % 4, j = 2 * row + e % 2;
                        s[32 * load + j] |= (short) ((v ^ 8) << (4 * k)); // (q - 8) as signed 4 bits
                    }
                    out.set(ValueLayout.JAVA_BYTE, unit + Q4K_CHUNK * c + Q4K_SC + row, (byte) Int8Dot.kScale(in, bo + 4, c));
                    out.set(ValueLayout.JAVA_BYTE, unit + Q4K_CHUNK * c + Q4K_SC + 16 + row, (byte) Int8Dot.kMin(in, bo + 4, c));
                }
                putShorts(out, unit + (long) Q4K_CHUNK * c, s, 128);
            }
            for (int row = 0; row < INTERLEAVE; row++) {
                long bo = io + row * src + 144L * b;
                out.set(I16_LE, q4kD(unit, row), in.get(I16_LE, bo));
                out.set(I16_LE, q4kDmin(unit, row), in.get(I16_LE, bo + 2));
            }
        }
    }

    /** Byte of interleaved Q8_0 unit holding element {@code e} (0..31) of the group's row {@code h} (0, 1). */
    static int q8Byte(int h, int e) {
        return 32 * ((e % 4) / 2) + 16 * h + 2 * (e / 4) + e % 2;
    }

    /** Rows {@code 2G, 2G+1} (at {@code io}, {@code src} bytes apart) into the interleaved Q8_0 layout at {@code oo}. */
    private static void packQ8_0x2(MemorySegment in, long io, long src, MemorySegment out, long oo, int n) {
        for (int b = 0; b < n / 32; b++) {
            long unit = oo + 68L * b;
            for (int h = 0; h < 2; h++) {
                long bo = io + h * src + 34L * b;
                for (int e = 0; e < 32; e++) {
                    out.set(ValueLayout.JAVA_BYTE, unit + q8Byte(h, e), in.get(ValueLayout.JAVA_BYTE, bo + 2 + e));
                }
                out.set(I16_LE, unit + 64 + 2L * h, in.get(I16_LE, bo));
            }
        }
    }

    private static void packQ4K(MemorySegment in, long io, MemorySegment out, long oo, int n, byte[] q, short[] s) {
        int ns = n / 256;
        for (int b = 0; b < ns; b++) {
            long bo = io + 144L * b;
            for (int c = 0; c < 4; c++) {
                for (int l = 0; l < 32; l++) {
                    int v = u8(in, bo + 16 + 32 * c + l);
                    q[64 * c + l] = (byte) (v & 0xF);
                    q[64 * c + 32 + l] = (byte) (v >> 4);
                }
            }
            java.util.Arrays.fill(s, 0, 64, (short) 0);
            for (int i = 0; i < 256; i++) {
                int v = i / 32, j = i % 32;
                s[32 * (v / 4) + j] |= (short) (q[PERM_Q4_K[i]] << (4 * (v % 4)));
            }
            long po = oo + 148L * b;
            putShorts(out, po, s, 64);
            out.set(I16_LE, po + 128, in.get(I16_LE, bo));
            out.set(I16_LE, po + 130, in.get(I16_LE, bo + 2));
            long so = po + 132;
            for (int i = 0; i < 8; i++) {
                out.set(ValueLayout.JAVA_BYTE, so + i, (byte) Int8Dot.kScale(in, bo + 4, i));
                out.set(ValueLayout.JAVA_BYTE, so + 8 + i, (byte) Int8Dot.kMin(in, bo + 4, i));
            }
        }
    }

    private static void packQ6K(MemorySegment in, long io, MemorySegment out, long oo, int n, byte[] q, short[] s) {
        int ns = n / 256;
        for (int b = 0; b < ns; b++) {
            long bo = io + 210L * b;
            for (int e = 0; e < 256; e++) {
                int h = e / 128, sg = (e % 128) / 32, l = e % 32;
                int ql = u8(in, bo + 64 * h + 32 * (sg % 2) + l);
                int qh = u8(in, bo + 128 + 32 * h + l);
                q[e] = (byte) ((sg < 2 ? ql & 0xF : ql >> 4) | ((qh >> (2 * sg)) & 3) << 4);
            }
            java.util.Arrays.fill(s, 0, 96, (short) 0);
            for (int i = 0; i < 256; i++) {
                int v = i / 32, j = i % 32;
                int qv = q[PERM_Q6_K[i]];
                s[32 * (v / 4) + j] |= (short) ((qv & 0xF) << (4 * (v % 4)));
                s[64 + j] |= (short) (((qv >> 4) ^ 2) << (2 * v)); // crumb - 2, two's complement
            }
            long po = oo + 210L * b;
            putShorts(out, po, s, 96); // low bits, then high bits
            MemorySegment.copy(in, bo + 192, out, po + 192, 18); // the scales and d, as in the file
        }
    }
}
