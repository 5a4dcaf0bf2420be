package io.jcascade.gguf;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufWriterTest {

    @TempDir
    Path tmp;

    @Test
    void everyValueTypeRoundTrips() throws IOException {
        GgufWriter w = SampleFiles.everything();
        try (GgufFile f = GgufFile.read(w.toBytes())) {
            assertThat(f.version()).isEqualTo(3);
            assertThat(f.metadata()).containsExactlyEntriesOf(w.metadata());
            // Spot-check decoded Java values, not just equality with what was put.
            assertThat(f.metadata().get("t.u32").asLong()).isEqualTo(4294967295L);
            assertThat(f.metadata().get("t.u8").asInt()).isEqualTo(255);
            assertThat(f.metadata().get("t.i16").asInt()).isEqualTo(-32768);
            assertThat(f.metadata().get("t.str").asString()).isEqualTo("héllo wörld ▁ 你好 🦙");
            assertThat(f.metadata().get("a.str").asStringArray()).containsExactly("a", "", "ü", "<0x0A>");
            assertThat(f.metadata().get("a.f32").asFloatArray()[1]).isNaN();
            assertThat(f.metadata().get("a.empty").arrayLength()).isZero();
            GgufValue[] nested = (GgufValue[]) f.metadata().get("a.nested").value();
            assertThat(nested).hasSize(4);
            assertThat(nested[1].asStringArray()).containsExactly("x", "yz");
            assertThat(((GgufValue[]) nested[2].value())[1].arrayLength()).isZero();
        }
    }

    @Test
    void tensorsRoundTripAlignedWithZeroPadding() throws IOException {
        GgufWriter w = SampleFiles.everything();
        byte[] bytes = w.toBytes();
        assertThat(bytes.length).isEqualTo(w.fileSize()).isEqualTo((int) w.fileSize() / 32 * 32);
        try (GgufFile f = GgufFile.read(bytes)) {
            assertThat(f.alignment()).isEqualTo(32);
            assertThat(f.dataOffset() % 32).isZero();
            assertThat(f.tensors()).extracting(GgufTensor::name).containsExactly("f32", "q8", "f16", "q4");
            for (GgufWriter.TensorEntry e : w.tensors()) {
                GgufTensor t = f.tensor(e.name());
                assertThat(t.type()).isEqualTo(e.type());
                assertThat(t.shape()).isEqualTo(e.shape());
                assertThat(t.offset()).isEqualTo(e.offset()).matches(o -> o % 32 == 0);
                assertThat(t.byteSize()).isEqualTo(e.byteSize());
            }
            assertThat(f.tensor("q8").data().toArray(ValueLayout.JAVA_BYTE)).hasSize(136);
            // padding between the end of one tensor and the next is zeros
            long endF32 = f.dataOffset() + 32;
            long q8 = f.dataOffset() + f.tensor("q8").offset();
            for (long p = endF32; p < q8; p++) {
                assertThat(bytes[(int) p]).isZero();
            }
        }
    }

    @Test
    void tensorBytesAreExactlyWhatWasGiven() throws IOException {
        byte[] data = new byte[4 * 2 * 4];
        for (int i = 0; i < data.length; i++) {
            data[i] = (byte) (i * 7 + 1);
        }
        GgufWriter w = new GgufWriter().addTensor("x", GgmlType.F32, new long[] {4, 2}, data);
        try (GgufFile f = GgufFile.read(w.toBytes())) {
            assertThat(f.tensor("x").data().toArray(ValueLayout.JAVA_BYTE)).isEqualTo(data);
        }
    }

    @Test
    void honoursCustomAlignment() throws IOException {
        GgufWriter w = new GgufWriter().put("general.alignment", GgufValue.ofUInt32(256));
        w.addTensor("a", GgmlType.F32, new long[] {3}, new byte[12]);
        w.addTensor("b", GgmlType.F32, new long[] {1}, new byte[4]);
        byte[] bytes = w.toBytes();
        assertThat(bytes.length % 256).isZero();
        try (GgufFile f = GgufFile.read(bytes)) {
            assertThat(f.alignment()).isEqualTo(256);
            assertThat(f.dataOffset() % 256).isZero();
            assertThat(f.tensor("b").offset()).isEqualTo(256);
        }
    }

    @Test
    void writesVersion2() throws IOException {
        byte[] bytes = SampleFiles.small().version(2).toBytes();
        assertThat(ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getInt(4)).isEqualTo(2);
        try (GgufFile f = GgufFile.read(bytes)) {
            assertThat(f.version()).isEqualTo(2);
            assertThat(f.tensors()).hasSize(3);
        }
        assertThatThrownBy(() -> new GgufWriter().version(1)).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void fileWithoutTensorsEndsAfterHeader() throws IOException {
        byte[] bytes = new GgufWriter().put("k", GgufValue.ofString("v")).toBytes();
        assertThat(bytes).hasSize(4 + 4 + 8 + 8 + (8 + 1) + 4 + (8 + 1));
        try (GgufFile f = GgufFile.read(bytes)) {
            assertThat(f.tensors()).isEmpty();
            assertThat(f.getString("k")).isEqualTo("v");
        }
        assertThat(GgufFile.read(new GgufWriter().toBytes()).metadata()).isEmpty();
    }

    @Test
    void writeToPathStreamsTheSameBytes() throws IOException {
        GgufWriter w = SampleFiles.everything();
        Path p = tmp.resolve("x.gguf");
        Files.write(p, new byte[] {1, 2, 3}); // replaced, not appended to
        w.write(p);
        assertThat(Files.readAllBytes(p)).isEqualTo(w.toBytes());
        assertThat(Files.exists(tmp.resolve("x.gguf.tmp"))).isFalse();
        try (GgufFile f = GgufFile.open(p)) {
            assertThat(f.metadata()).containsExactlyEntriesOf(w.metadata());
        }
    }

    @Test
    void dataSourceStreamsAndIsChecked() throws IOException {
        GgufWriter w = new GgufWriter();
        w.addTensor("s", GgmlType.F32, new long[] {2, 3}, out -> {
            for (int i = 0; i < 6; i++) {
                out.write(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(0, i));
            }
        });
        try (GgufFile f = GgufFile.read(w.toBytes())) {
            MemorySegment d = f.tensor("s").data();
            assertThat(d.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, 5)).isEqualTo(5f);
        }
        GgufWriter shortWrite = new GgufWriter().addTensor("s", GgmlType.F32, new long[] {2}, out -> out.write(
                ByteBuffer.allocate(4)));
        assertThatThrownBy(shortWrite::toBytes).isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("wrote 4 bytes, expected 8");
        Path p = tmp.resolve("bad.gguf");
        assertThatThrownBy(() -> shortWrite.write(p)).isInstanceOf(IllegalStateException.class);
        assertThat(Files.exists(p)).isFalse();
        assertThat(Files.exists(tmp.resolve("bad.gguf.tmp"))).isFalse();
    }

    @Test
    void acceptsNativeSegments() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(34 * 4);
            seg.fill((byte) 3);
            byte[] bytes = new GgufWriter().addTensor("q", GgmlType.Q8_0, new long[] {64, 2}, seg).toBytes();
            try (GgufFile f = GgufFile.read(bytes)) {
                assertThat(f.tensor("q").data().mismatch(seg)).isEqualTo(-1);
            }
        }
    }

    @Test
    void rejectsBadTensors() {
        GgufWriter w = new GgufWriter().addTensor("x", GgmlType.F32, new long[] {1}, new byte[4]);
        assertThatThrownBy(() -> w.addTensor("x", GgmlType.F32, new long[] {1}, new byte[4]))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("duplicate tensor name \"x\"");
        assertThatThrownBy(() -> w.addTensor("q", GgmlType.Q4_0, new long[] {33, 2}, new byte[0]))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not a multiple of the Q4_0 block size 32");
        assertThatThrownBy(() -> w.addTensor("q", GgmlType.Q4_0, new long[] {64, 2}, new byte[71]))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("takes 72 bytes but 71 were given");
        assertThatThrownBy(() -> w.addTensor("d", GgmlType.F32, new long[0], new byte[0]))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("0 dimensions");
        assertThatThrownBy(() -> w.addTensor("d", GgmlType.F32, new long[] {1, 1, 1, 1, 1}, new byte[4]))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("5 dimensions");
        assertThatThrownBy(() -> w.addTensor("d", GgmlType.F32, new long[] {2, -1}, new byte[0]))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("negative");
        assertThatThrownBy(() -> w.addTensor("d", GgmlType.F32, new long[] {1L << 40, 1L << 40}, new byte[0]))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("too many elements");
        assertThat(w.tensors()).hasSize(1);
    }

    @Test
    void rejectsBadMetadata() {
        GgufWriter w = new GgufWriter().put("k", GgufValue.ofInt32(1));
        assertThatThrownBy(() -> w.put("k", GgufValue.ofInt32(2)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("duplicate metadata key \"k\"");
        assertThatThrownBy(() -> w.put("u", GgufValue.of(GgufValueType.UINT32, 5)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("Long from 0 to 2^32-1");
        assertThatThrownBy(() -> w.put("u", GgufValue.ofUInt8(256)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("UINT8");
        assertThatThrownBy(() -> w.put("u", GgufValue.of(GgufValueType.FLOAT32, 1.0)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("Float");
        assertThatThrownBy(() -> w.put("a", GgufValue.array(GgufValueType.UINT32, new int[] {1})))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("must hold a long[]");
        assertThatThrownBy(() -> w.put("a", GgufValue.array(GgufValueType.BOOL, new byte[] {2})))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("bool element 0");
        assertThatThrownBy(() -> w.put("a", GgufValue.ofArrays(GgufValue.ofInt32(1))))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("not an array");
        GgufValue deep = GgufValue.ofInt32Array(1);
        for (int i = 0; i < GgufFile.MAX_NESTING; i++) {
            deep = GgufValue.ofArrays(deep);
        }
        GgufValue tooDeep = deep;
        assertThatThrownBy(() -> w.put("deep", tooDeep))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("nests deeper than");
        for (long bad : new long[] {0, 3, 1L << 21}) {
            assertThatThrownBy(() -> w.put("general.alignment", GgufValue.ofUInt32(bad)))
                    .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("power of two");
        }
        assertThatThrownBy(() -> w.put("general.alignment", GgufValue.ofString("32")))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("must be UINT32");
        assertThat(w.metadata()).isEqualTo(Map.of("k", GgufValue.ofInt32(1)));
    }

    @Test
    void deepestAllowedNestingReadsBack() throws IOException {
        GgufValue deep = GgufValue.ofInt32Array(1);
        for (int i = 0; i < GgufFile.MAX_NESTING - 1; i++) {
            deep = GgufValue.ofArrays(deep);
        }
        byte[] bytes = new GgufWriter().put("deep", deep).toBytes();
        assertThat(GgufFile.read(bytes).metadata().get("deep")).isEqualTo(deep);
    }

    @Test
    void tensorsListShowsOffsets() {
        GgufWriter w = SampleFiles.small();
        assertThat(w.tensors()).extracting(GgufWriter.TensorEntry::offset).containsExactly(0L, 32L, 96L);
        assertThat(Arrays.stream(w.tensors().get(0).shape()).boxed()).containsExactly(3L, 2L);
    }
}
