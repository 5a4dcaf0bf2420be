package io.jcascade.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.TreeSet;
import java.util.function.Consumer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Malformed GGUF input: every case must end in either a {@link GgufFormatException} that names the
 * problem with a sane offset, or a successful parse whose tensors and metadata are usable, and
 * never in any other exception, an {@link OutOfMemoryError} or a hang. Files are made with
 * {@link GgufWriter} and then damaged at fields located by {@link GgufLayout}.
 */
// Backstop for the cases not wrapped in assertTimeoutPreemptively: a hang fails, it does not stall the build.
@Timeout(value = 60, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class MalformedGgufTest {

    private static final Duration BATCH = Duration.ofSeconds(20);

    private static byte[] small;
    private static GgufLayout smallLayout;
    private static byte[] everything;
    private static GgufLayout everythingLayout;

    @TempDir
    Path tmp;

    @BeforeAll
    static void makeFiles() throws IOException {
        small = SampleFiles.small().toBytes();
        smallLayout = GgufLayout.of(small);
        everything = SampleFiles.everything().toBytes();
        everythingLayout = GgufLayout.of(everything);
    }

    // ---- the one rule every case is held to ----

    /** Parses {@code bytes}; returns the format exception, or null after checking the parse is usable. */
    private static GgufFormatException parse(MemorySegment bytes, String label) {
        try (GgufFile f = GgufFile.read(bytes)) {
            exercise(f);
            return null;
        } catch (GgufFormatException e) {
            assertThat(e.getMessage()).as(label).isNotBlank().contains("(at byte offset ");
            assertThat(e.offset()).as(label + ": " + e.getMessage())
                    .matches(o -> o == -1 || (o >= 0 && o <= bytes.byteSize()), "-1 or inside the file");
            return e;
        } catch (Throwable t) {
            // Not AssertionError from exercise(): anything else is a reader bug.
            fail(label + ": expected GgufFormatException or success, got " + t, t);
            return null;
        }
    }

    private static GgufFormatException parse(byte[] bytes, String label) {
        return parse(MemorySegment.ofArray(bytes), label);
    }

    /** A file that parsed must be fully usable: every value printable, every tensor byte in range. */
    private static void exercise(GgufFile f) {
        for (var e : f.metadata().entrySet()) {
            assertThat(e.getValue().toString()).isNotNull();
        }
        for (GgufTensor t : f.tensors()) {
            assertThat(t.data().byteSize()).isEqualTo(t.byteSize());
            if (t.byteSize() > 0) {
                t.data().get(ValueLayout.JAVA_BYTE, t.byteSize() - 1);
            }
        }
        assertThat(GgufInspector.describe(f)).contains("tensors");
    }

    private static void expectError(byte[] bytes, String label, String... messageParts) {
        expectError(MemorySegment.ofArray(bytes), label, messageParts);
    }

    private static void expectError(MemorySegment bytes, String label, String... messageParts) {
        GgufFormatException e = parse(bytes, label);
        assertThat(e).as(label + " should be rejected").isNotNull();
        if (messageParts.length > 0) {
            assertThat(e.getMessage()).as(label).contains(messageParts);
        }
    }

    // ---- byte patching helpers ----

    private static byte[] withLong(byte[] src, int at, long v) {
        byte[] b = src.clone();
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(at, v);
        return b;
    }

    private static byte[] withInt(byte[] src, int at, int v) {
        byte[] b = src.clone();
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(at, v);
        return b;
    }

    private static GgufLayout.Field field(GgufLayout layout, String kind, String owner) {
        return layout.fields.stream().filter(f -> f.kind().equals(kind) && f.owner().equals(owner)).findFirst()
                .orElseThrow(() -> new AssertionError("no field " + kind + " of " + owner));
    }

    /** Hand-built headers, for what the writer refuses to produce. */
    private static final class Raw {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        static Raw header(int version, long tensors, long kvs) {
            return new Raw().u32(GgufFile.MAGIC).u32(version).u64(tensors).u64(kvs);
        }

        Raw u32(int v) {
            return bytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v).array());
        }

        Raw u64(long v) {
            return bytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
        }

        Raw str(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            return u64(b.length).bytes(b);
        }

        Raw bytes(byte[] b) {
            out.writeBytes(b);
            return this;
        }

        Raw zeros(int n) {
            return bytes(new byte[n]);
        }

        byte[] done() {
            return out.toByteArray();
        }
    }

    // ---- truncation ----

    @Test
    void truncationAtEveryByteOfSmallFiles() {
        assertTimeoutPreemptively(BATCH, () -> {
            for (byte[] file : new byte[][] {small, everything}) {
                GgufLayout layout = GgufLayout.of(file);
                for (int len = 0; len < file.length; len++) {
                    GgufFormatException e = parse(MemorySegment.ofArray(file).asSlice(0, len), "prefix " + len);
                    if (len < layout.lastDataEnd()) {
                        assertThat(e).as("prefix of %d bytes must be rejected", len).isNotNull();
                        assertThat(e.getMessage()).containsAnyOf("truncated", "runs past the end", "too short",
                                "ends before", "could hold");
                    }
                }
                // Only the final padding may go: the tensors are all still there.
                for (int len = layout.lastDataEnd(); len <= file.length; len++) {
                    assertThat(parse(MemorySegment.ofArray(file).asSlice(0, len), "prefix " + len)).isNull();
                }
            }
        });
    }

    @Test
    void truncationAtEverySectionBoundaryOfSmallFile() {
        // Named boundaries (also covered byte by byte above), to report which section broke.
        assertTimeoutPreemptively(BATCH, () -> {
            for (GgufLayout.Field f : smallLayout.fields) {
                for (int cut : new int[] {f.offset(), f.offset() + f.length() / 2, f.end() - 1}) {
                    if (cut >= 0 && cut < smallLayout.lastDataEnd()) {
                        expectError(java.util.Arrays.copyOf(small, cut), "cut in " + f + " at " + cut);
                    }
                }
            }
        });
    }

    @Test
    void truncationAtEverySectionBoundaryOfRealModel() throws IOException {
        Path model = SharedData.require("models/stories260K.gguf");
        byte[] bytes = Files.readAllBytes(model);
        GgufLayout layout = GgufLayout.of(bytes);
        TreeSet<Integer> cuts = new TreeSet<>();
        for (GgufLayout.Field f : layout.fields) {
            cuts.add(f.offset());
            cuts.add(f.offset() + 1);
            cuts.add(Math.max(f.offset(), f.end() - 1));
        }
        assertThat(cuts.size()).isGreaterThan(1000);
        assertTimeoutPreemptively(BATCH, () -> {
            MemorySegment all = MemorySegment.ofArray(bytes);
            for (int cut : cuts) {
                if (cut < layout.lastDataEnd()) {
                    expectError(all.asSlice(0, cut), "stories260K cut at " + cut);
                }
            }
        });
    }

    @Test
    void truncatedFilesOnDisk() throws IOException {
        Path model = SharedData.require("models/stories260K.gguf");
        byte[] bytes = Files.readAllBytes(model);
        GgufLayout layout = GgufLayout.of(bytes);
        int[] cuts = {0, 3, 4, 23, 24, field(layout, "header_padding", "data").offset(),
            layout.fields("tensor_data").get(10).offset() + 5, layout.lastDataEnd() - 1};
        for (int cut : cuts) {
            Path p = tmp.resolve("cut" + cut + ".gguf");
            Files.write(p, java.util.Arrays.copyOf(bytes, cut));
            try (GgufFile f = GgufFile.open(p)) {
                fail("cut at " + cut + " parsed: " + f.tensors().size());
            } catch (GgufFormatException e) {
                assertThat(e.offset()).isBetween(-1L, (long) cut);
            }
        }
    }

    // ---- absurd counts and lengths ----

    @Test
    void absurdCounts() {
        assertTimeoutPreemptively(BATCH, () -> {
            int tc = field(smallLayout, "tensor_count", "header").offset();
            int kc = field(smallLayout, "kv_count", "header").offset();
            for (long n : new long[] {1L << 63, -1L, 1L << 40, 1L << 31, 1_000_000}) {
                expectError(withLong(small, tc, n), "tensor count " + n, "tensor count");
                expectError(withLong(small, kc, n), "kv count " + n, "key-value count");
            }
            // Counts that fit the file but are still wrong fail further on, by name.
            expectError(withLong(small, tc, 4), "tensor count 4", "tensor");
            expectError(withLong(small, kc, 8), "kv count 8");
        });
    }

    @Test
    void absurdArrayAndStringLengths() {
        assertTimeoutPreemptively(BATCH, () -> {
            for (GgufLayout layout : new GgufLayout[] {smallLayout, everythingLayout}) {
                byte[] file = layout == smallLayout ? small : everything;
                for (GgufLayout.Field f : layout.fields("array_len")) {
                    for (long n : new long[] {1L << 62, 1L << 31, -1L, Integer.MAX_VALUE}) {
                        expectError(withLong(file, f.offset(), n), "array length " + n + " at " + f,
                                "array", "claims");
                    }
                }
                for (String kind : new String[] {"key_len", "string_len", "tensor_name_len"}) {
                    for (GgufLayout.Field f : layout.fields(kind)) {
                        for (long n : new long[] {1L << 60, 1L << 62, -1L, Integer.MAX_VALUE, file.length}) {
                            expectError(withLong(file, f.offset(), n), kind + " " + n + " at " + f, "string length");
                        }
                    }
                }
            }
        });
    }

    @Test
    void hugeStringArrayInSmallFileFailsFast() {
        // 2^31 strings would be a 8+ GiB String[]; the count must be refused before anything is allocated.
        for (long n : new long[] {1L << 31, (1L << 31) - 17, 1L << 28}) {
            byte[] b = Raw.header(3, 0, 1).str("tokens").u32(9).u32(8).u64(n).str("a").str("b").done();
            assertTimeoutPreemptively(Duration.ofSeconds(2), () -> expectError(b, "string array " + n, "claims"));
            byte[] nested = Raw.header(3, 0, 1).str("nested").u32(9).u32(9).u64(n).u32(8).u64(n).done();
            assertTimeoutPreemptively(Duration.ofSeconds(2), () -> expectError(nested, "nested " + n, "claims"));
        }
    }

    @Test
    void badDimensionCounts() {
        assertTimeoutPreemptively(BATCH, () -> {
            for (GgufLayout.Field f : smallLayout.fields("n_dims")) {
                for (int n : new int[] {0, 5, Integer.MIN_VALUE, -1, Integer.MAX_VALUE}) {
                    expectError(withInt(small, f.offset(), n), "n_dims " + n, "dimensions, expected 1 to 4");
                }
                // 2 instead of 1 or 1 instead of 2: the rest of the infos shift and must still fail cleanly.
                parse(withInt(small, f.offset(), 2), "n_dims 2 at " + f);
                parse(withInt(small, f.offset(), 1), "n_dims 1 at " + f);
            }
        });
    }

    @Test
    void badDimensions() {
        GgufLayout.Field a0 = smallLayout.fields("dim").get(0); // tensor a is [3, 2]
        GgufLayout.Field a1 = smallLayout.fields("dim").get(1);
        expectError(withLong(small, a0.offset(), -5), "negative dim", "out of range");
        expectError(withLong(small, a1.offset(), 1000), "dim makes data run past EOF", "runs past the end");
        expectError(withLong(withLong(small, a0.offset(), 1L << 32), a1.offset(), 1L << 32), "overflowing shape",
                "overflows");
        expectError(withLong(small, a1.offset(), Long.MAX_VALUE), "overflowing bytes");
        GgufLayout.Field b0 = smallLayout.fields("dim").get(2); // tensor b is Q8_0 [32]
        expectError(withLong(small, b0.offset(), 33), "partial Q8_0 block", "not a multiple of the Q8_0 block size");
        // an empty tensor is fine
        assertThat(parse(withLong(small, a1.offset(), 0), "zero rows")).isNull();
    }

    // ---- unknown types ----

    @Test
    void unknownValueTypes() {
        assertTimeoutPreemptively(BATCH, () -> {
            for (byte[] file : new byte[][] {small, everything}) {
                GgufLayout layout = GgufLayout.of(file);
                for (GgufLayout.Field f : layout.fields("value_type")) {
                    for (int t : new int[] {13, 99, -1, Integer.MIN_VALUE}) {
                        expectError(withInt(file, f.offset(), t), "value type " + t + " at " + f, "unknown value type");
                    }
                    for (int t = 0; t <= 12; t++) {
                        parse(withInt(file, f.offset(), t), "value type " + t + " at " + f); // any outcome but a crash
                    }
                }
                for (GgufLayout.Field f : layout.fields("array_type")) {
                    for (int t : new int[] {13, 1000, -7}) {
                        expectError(withInt(file, f.offset(), t), "array type " + t + " at " + f, "unknown element type");
                    }
                    for (int t = 0; t <= 12; t++) {
                        parse(withInt(file, f.offset(), t), "array type " + t + " at " + f);
                    }
                }
            }
        });
    }

    @Test
    void unknownGgmlTypes() {
        for (GgufLayout.Field f : smallLayout.fields("ggml_type")) {
            for (int t : new int[] {4, 5, 31, 33, 36, 40, 63, 64, -1, Integer.MAX_VALUE}) {
                expectError(withInt(small, f.offset(), t), "ggml type " + t + " at " + f, "unknown ggml type");
            }
            for (GgmlType t : GgmlType.values()) {
                parse(withInt(small, f.offset(), t.id()), t + " at " + f); // wrong block size or size: any clean outcome
            }
        }
    }

    // ---- tensor placement ----

    @Test
    void misalignedOverlappingAndOutOfFileTensors() {
        List<GgufLayout.Field> offs = smallLayout.fields("tensor_offset"); // a@0 (24 B), b@32 (34 B), c@96 (10 B)
        for (GgufLayout.Field f : offs) {
            for (long delta : new long[] {1, 4, 16, 31}) {
                long original = ByteBuffer.wrap(small).order(ByteOrder.LITTLE_ENDIAN).getLong(f.offset());
                expectError(withLong(small, f.offset(), original + delta), "misaligned " + f,
                        "not a multiple of the alignment 32");
            }
            expectError(withLong(small, f.offset(), -32), "negative offset " + f, "data offset");
            expectError(withLong(small, f.offset(), 1L << 40), "offset past EOF " + f, "runs past the end");
            expectError(withLong(small, f.offset(), Long.MAX_VALUE - 31), "offset near 2^63 " + f);
        }
        expectError(withLong(small, offs.get(1).offset(), 0), "b over a", "overlaps tensor \"a\"");
        expectError(withLong(small, offs.get(2).offset(), 64), "c inside b", "overlaps tensor \"b\"");
        expectError(withLong(small, offs.get(2).offset(), 128), "c past the end", "runs past the end");
        // Out-of-order but disjoint tensors are legal.
        byte[] swapped = withLong(withLong(small, offs.get(0).offset(), 96), offs.get(2).offset(), 0);
        assertThat(parse(swapped, "swapped offsets")).isNull();
    }

    // ---- duplicates ----

    @Test
    void duplicateKeysAndTensorNames() throws GgufFormatException {
        byte[] keys = new GgufWriter().put("ka", GgufValue.ofInt32(1)).put("kb", GgufValue.ofInt32(2)).toBytes();
        GgufLayout layout = GgufLayout.of(keys);
        byte[] dupKey = keys.clone();
        dupKey[layout.fields("key").get(1).offset() + 1] = 'a';
        expectError(dupKey, "duplicate key", "duplicate metadata key \"ka\"");

        byte[] dupTensor = small.clone();
        dupTensor[field(smallLayout, "tensor_name", "tensor#1").offset()] = 'a';
        expectError(dupTensor, "duplicate tensor", "duplicate tensor name \"a\"");
    }

    // ---- bad values ----

    @Test
    void badBoolBytes() {
        GgufLayout.Field flag = field(smallLayout, "value", "t.flag");
        for (int v : new int[] {2, 0xFF, 0x80}) {
            byte[] b = small.clone();
            b[flag.offset()] = (byte) v;
            expectError(b, "bool " + v, "bool", "expected 0 or 1");
        }
        GgufLayout.Field arr = field(everythingLayout, "array_data", "a.bool");
        byte[] b = everything.clone();
        b[arr.offset() + 1] = 7;
        expectError(b, "bool array", "bool element 1");
    }

    @Test
    void invalidUtf8IsReadNotRejected() throws GgufFormatException {
        byte[] b = small.clone();
        b[field(smallLayout, "string", "general.architecture").offset()] = (byte) 0xC3; // lone lead byte
        assertThat(parse(b, "invalid utf-8")).isNull();
    }

    @Test
    void nestedArraysTooDeep() {
        for (int depth : new int[] {GgufFile.MAX_NESTING + 1, 100, 100_000}) {
            Raw r = Raw.header(3, 0, 1).str("deep").u32(9);
            for (int i = 0; i < depth - 1; i++) {
                r.u32(9).u64(1);
            }
            byte[] b = r.u32(5).u64(0).done();
            assertTimeoutPreemptively(Duration.ofSeconds(5), () -> expectError(b, "depth " + depth, "nests deeper"));
        }
        Raw ok = Raw.header(3, 0, 1).str("deep").u32(9);
        for (int i = 0; i < GgufFile.MAX_NESTING - 1; i++) {
            ok.u32(9).u64(1);
        }
        assertThat(parse(ok.u32(5).u64(0).done(), "deepest allowed")).isNull();
    }

    @Test
    void badAlignment() throws GgufFormatException {
        for (long a : new long[] {0, 3, 48, 1L << 21, 0x8000_0000L, 0xFFFF_FFFFL}) {
            byte[] b = Raw.header(3, 0, 1).str("general.alignment").u32(4).u32((int) a).done();
            expectError(b, "alignment " + a, "general.alignment", "power of two");
        }
        for (long a : new long[] {-1L, 1L << 40, 0}) {
            byte[] b = Raw.header(3, 0, 1).str("general.alignment").u32(10).u64(a).done();
            expectError(b, "uint64 alignment " + a, "general.alignment", "power of two");
        }
        byte[] s = Raw.header(3, 0, 1).str("general.alignment").u32(8).str("32").done();
        expectError(s, "string alignment", "general.alignment", "expected UINT32");
        byte[] f = Raw.header(3, 0, 1).str("general.alignment").u32(6).u32(Float.floatToIntBits(32f)).done();
        expectError(f, "float alignment", "general.alignment");
        // A valid but different alignment than the data was laid out for: offsets are misaligned.
        byte[] w = SampleFiles.small().put("general.alignment", GgufValue.ofUInt32(64)).toBytes();
        GgufLayout.Field v = field(GgufLayout.of(w), "value", "general.alignment");
        expectError(withInt(w, v.offset(), 128), "alignment 128 over 64-laid data", "alignment 128");
        // And the error points at the key, inside the header.
        GgufFormatException e = parse(withInt(w, v.offset(), 3), "alignment 3");
        assertThat(e.offset()).isBetween(24L, (long) v.offset());
    }

    // ---- magic and version ----

    @Test
    void wrongMagicAndVersion() {
        for (String magic : new String[] {"GGUG", "FUGG", "GGML", "\0\0\0\0", "ggUF"}) {
            byte[] b = small.clone();
            System.arraycopy(magic.getBytes(StandardCharsets.ISO_8859_1), 0, b, 0, 4);
            expectError(b, "magic " + magic, "not a GGUF file");
        }
        for (int v : new int[] {0, 1, 4, 0x0300_0000, -1}) {
            GgufFormatException e = parse(withInt(small, 4, v), "version " + v);
            assertThat(e).isNotNull();
            assertThat(e.getMessage()).contains("unsupported GGUF version " + Integer.toUnsignedString(v));
            assertThat(e.offset()).isEqualTo(4);
        }
        expectError(new byte[0], "empty", "too short");
        expectError(new byte[] {'G', 'G', 'U'}, "3 bytes", "too short");
        expectError("GGUF".getBytes(StandardCharsets.US_ASCII), "magic only", "truncated", "version");
    }

    @Test
    void emptyAndTinyFilesOnDisk() throws IOException {
        for (int n : new int[] {0, 1, 4, 8}) {
            Path p = tmp.resolve("tiny" + n + ".gguf");
            Files.write(p, java.util.Arrays.copyOf("GGUF\3\0\0\0".getBytes(StandardCharsets.ISO_8859_1), n));
            try (GgufFile f = GgufFile.open(p)) {
                fail("parsed a " + n + "-byte file");
            } catch (GgufFormatException e) {
                assertThat(e.getMessage()).containsAnyOf("too short", "truncated");
            }
        }
    }

    // ---- fuzz ----

    /**
     * 2,000 seeded mutations of the small file: bit flips, random bytes, and 8-/4-byte overwrites of
     * length, count, type and offset fields with huge or random values. Seeded, so a failure names a
     * reproducible case.
     */
    @Test
    void seededRandomMutations() {
        assertTimeoutPreemptively(Duration.ofSeconds(30), () -> {
            int[] outcomes = fuzz(small, smallLayout, 0x6775_6666L, 2000);
            // The mutations must actually reach deep into the parser, not all die at the magic.
            assertThat(outcomes[0]).as("rejected").isGreaterThan(500);
            assertThat(outcomes[1]).as("parsed").isGreaterThan(50);
        });
        assertTimeoutPreemptively(Duration.ofSeconds(30), () -> fuzz(everything, everythingLayout, 42L, 1000));
    }

    @Test
    void seededMutationsOfRealModelHeader() throws IOException {
        byte[] bytes = Files.readAllBytes(SharedData.require("models/stories260K.gguf"));
        GgufLayout layout = GgufLayout.of(bytes);
        assertTimeoutPreemptively(Duration.ofSeconds(30), () -> fuzz(bytes, layout, 260L, 300));
    }

    private static final long[] HUGE = {1L << 63, -1L, 1L << 62, 1L << 60, 1L << 40, 1L << 32, 1L << 31,
        Integer.MAX_VALUE, 0x7FFF_FFFF_FFFF_FFF0L, 0};

    /** Runs {@code n} mutations of {@code file}; returns {rejected, parsed}. */
    private static int[] fuzz(byte[] file, GgufLayout layout, long seed, int n) {
        Random rnd = new Random(seed);
        List<GgufLayout.Field> wide = new ArrayList<>();
        List<GgufLayout.Field> narrow = new ArrayList<>();
        for (GgufLayout.Field f : layout.fields) {
            if (f.length() == 8 && !f.kind().equals("value")) {
                wide.add(f);
            } else if (f.length() == 4 && !f.kind().equals("value") && !f.kind().equals("magic")) {
                narrow.add(f);
            }
        }
        // The header region, where mutations matter; data bytes are opaque.
        int headerEnd = layout.fields("tensor_data").isEmpty() ? file.length
                : layout.fields("tensor_data").getFirst().offset();
        int[] outcomes = new int[2];
        byte[] b = file.clone();
        for (int i = 0; i < n; i++) {
            System.arraycopy(file, 0, b, 0, headerEnd);
            int kind = rnd.nextInt(6);
            int mutations = 1 + (rnd.nextInt(4) == 0 ? rnd.nextInt(4) : 0);
            StringBuilder what = new StringBuilder("seed " + seed + " #" + i + ":");
            for (int m = 0; m < mutations; m++) {
                switch (kind) {
                    case 0 -> {
                        int at = rnd.nextInt(headerEnd);
                        int bit = rnd.nextInt(8);
                        b[at] ^= (byte) (1 << bit);
                        what.append(" flip ").append(at).append('.').append(bit);
                    }
                    case 1 -> {
                        int at = rnd.nextInt(headerEnd);
                        b[at] = (byte) rnd.nextInt(256);
                        what.append(" byte ").append(at);
                    }
                    case 2, 3 -> {
                        GgufLayout.Field f = wide.get(rnd.nextInt(wide.size()));
                        long v = kind == 2 ? HUGE[rnd.nextInt(HUGE.length)] : rnd.nextLong();
                        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putLong(f.offset(), v);
                        what.append(' ').append(f.kind()).append('@').append(f.offset()).append('=').append(v);
                    }
                    case 4 -> {
                        GgufLayout.Field f = narrow.get(rnd.nextInt(narrow.size()));
                        int v = rnd.nextBoolean() ? rnd.nextInt(16) - 2 : rnd.nextInt();
                        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putInt(f.offset(), v);
                        what.append(' ').append(f.kind()).append('@').append(f.offset()).append('=').append(v);
                    }
                    default -> {
                        // Small nudges to lengths shift every later field by a few bytes.
                        GgufLayout.Field f = wide.get(rnd.nextInt(wide.size()));
                        ByteBuffer buf = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
                        long v = buf.getLong(f.offset()) + rnd.nextInt(9) - 4;
                        buf.putLong(f.offset(), v);
                        what.append(' ').append(f.kind()).append('@').append(f.offset()).append("~").append(v);
                    }
                }
            }
            outcomes[parse(b, what.toString()) != null ? 0 : 1]++;
        }
        return outcomes;
    }

    @Test
    void layoutCoversTheWholeFile() {
        // Guards the tests above: the walker must account for every byte, or boundaries would be wrong.
        for (GgufLayout layout : new GgufLayout[] {smallLayout, everythingLayout}) {
            int pos = 0;
            for (GgufLayout.Field f : layout.fields) {
                assertThat(f.offset()).isEqualTo(pos);
                pos = f.end();
            }
            assertThat(pos).isEqualTo(layout.size);
        }
        Consumer<String> present = k -> assertThat(everythingLayout.fields(k)).as(k).isNotEmpty();
        List.of("magic", "version", "tensor_count", "kv_count", "key_len", "key", "value_type", "value",
                "string_len", "string", "array_type", "array_len", "array_data", "tensor_name_len", "tensor_name",
                "n_dims", "dim", "ggml_type", "tensor_offset", "header_padding", "data_padding", "tensor_data",
                "tail_padding").forEach(present);
    }
}
