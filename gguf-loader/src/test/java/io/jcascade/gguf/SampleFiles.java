package io.jcascade.gguf;

import java.util.Random;

/** Small valid GGUF files built with {@link GgufWriter}, covering every value type and several tensor types. */
final class SampleFiles {
    private SampleFiles() {}

    /** A writer holding one key of every scalar type, arrays of every element type, nested arrays and 4 tensors. */
    static GgufWriter everything() {
        GgufWriter w = new GgufWriter();
        w.put("general.architecture", GgufValue.ofString("llama"));
        w.put("t.u8", GgufValue.ofUInt8(255));
        w.put("t.i8", GgufValue.ofInt8(-128));
        w.put("t.u16", GgufValue.ofUInt16(65535));
        w.put("t.i16", GgufValue.ofInt16(-32768));
        w.put("t.u32", GgufValue.ofUInt32(4294967295L));
        w.put("t.i32", GgufValue.ofInt32(Integer.MIN_VALUE));
        w.put("t.f32", GgufValue.ofFloat32(1e-5f));
        w.put("t.bool", GgufValue.ofBool(true));
        w.put("t.str", GgufValue.ofString("héllo wörld ▁ 你好 🦙"));
        w.put("t.u64", GgufValue.ofUInt64(-1L));
        w.put("t.i64", GgufValue.ofInt64(Long.MIN_VALUE));
        w.put("t.f64", GgufValue.ofFloat64(Math.PI));
        w.put("t.empty_str", GgufValue.ofString(""));
        w.put("a.u8", GgufValue.array(GgufValueType.UINT8, new byte[] {0, 1, (byte) 255}));
        w.put("a.i8", GgufValue.array(GgufValueType.INT8, new byte[] {-1, 2}));
        w.put("a.u16", GgufValue.array(GgufValueType.UINT16, new short[] {(short) 65535, 7}));
        w.put("a.i16", GgufValue.array(GgufValueType.INT16, new short[] {-5}));
        w.put("a.u32", GgufValue.array(GgufValueType.UINT32, new long[] {0, 4294967295L}));
        w.put("a.i32", GgufValue.ofInt32Array(1, -2, 3));
        w.put("a.f32", GgufValue.ofFloat32Array(0.5f, Float.NaN, -0.0f));
        w.put("a.bool", GgufValue.array(GgufValueType.BOOL, new byte[] {1, 0, 1}));
        w.put("a.str", GgufValue.ofStringArray("a", "", "ü", "<0x0A>"));
        w.put("a.u64", GgufValue.array(GgufValueType.UINT64, new long[] {-1L}));
        w.put("a.i64", GgufValue.array(GgufValueType.INT64, new long[] {Long.MAX_VALUE, 0}));
        w.put("a.f64", GgufValue.array(GgufValueType.FLOAT64, new double[] {1.0, Double.NEGATIVE_INFINITY}));
        w.put("a.empty", GgufValue.array(GgufValueType.FLOAT32, new float[0]));
        w.put("a.empty_str", GgufValue.ofStringArray());
        w.put("a.nested", GgufValue.ofArrays(
                GgufValue.ofInt32Array(1, 2),
                GgufValue.ofStringArray("x", "yz"),
                GgufValue.ofArrays(GgufValue.ofFloat32Array(3f), GgufValue.ofArrays()),
                GgufValue.array(GgufValueType.UINT8, new byte[0])));
        w.put("a.empty_nested", GgufValue.ofArrays());
        Random rnd = new Random(7);
        w.addTensor("f32", GgmlType.F32, new long[] {4, 2}, bytes(rnd, 32));
        w.addTensor("q8", GgmlType.Q8_0, new long[] {64, 2}, bytes(rnd, 2 * 2 * 34));
        w.addTensor("f16", GgmlType.F16, new long[] {3, 1, 1, 2}, bytes(rnd, 12));
        w.addTensor("q4", GgmlType.Q4_0, new long[] {32}, bytes(rnd, 18));
        return w;
    }

    /** A small file with a few KV pairs (a string, an array, scalars) and 3 tensors of different types. */
    static GgufWriter small() {
        GgufWriter w = new GgufWriter();
        w.put("general.architecture", GgufValue.ofString("llama"));
        w.put("llama.block_count", GgufValue.ofUInt32(2));
        w.put("t.flag", GgufValue.ofBool(false));
        w.put("tok", GgufValue.ofStringArray("<s>", "é", ""));
        w.put("scores", GgufValue.ofFloat32Array(0f, -1f, 2f));
        w.put("nest", GgufValue.ofArrays(GgufValue.ofInt32Array(5), GgufValue.ofStringArray("q")));
        w.put("t.f64", GgufValue.ofFloat64(2.5));
        Random rnd = new Random(11);
        w.addTensor("a", GgmlType.F32, new long[] {3, 2}, bytes(rnd, 24));
        w.addTensor("b", GgmlType.Q8_0, new long[] {32}, bytes(rnd, 34));
        w.addTensor("c", GgmlType.F16, new long[] {5}, bytes(rnd, 10));
        return w;
    }

    static byte[] bytes(Random rnd, int n) {
        byte[] b = new byte[n];
        rnd.nextBytes(b);
        return b;
    }
}
