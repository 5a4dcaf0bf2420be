package io.jcascade.gguf;

import java.util.Arrays;
import java.util.Objects;

/**
 * One metadata value of a GGUF file.
 *
 * <p>Scalars hold a boxed Java value: unsigned and signed integers of up to 32 bits as
 * {@link Integer} (UINT32 as its signed bit pattern is avoided: it is widened to {@link Long}),
 * 64-bit integers as {@link Long}, FLOAT32 as {@link Float}, FLOAT64 as {@link Double}, BOOL as
 * {@link Boolean} and STRING as {@link String}. Arrays hold a primitive Java array matching the
 * element type ({@code byte[]} for UINT8/INT8/BOOL, {@code short[]}, {@code int[]}, {@code long[]}
 * for UINT32/INT64/UINT64, {@code float[]}, {@code double[]}, {@code String[]}) or, for arrays of
 * arrays, a {@code GgufValue[]}.
 *
 * <pre>{@code
 * int layers = file.metadata().get("llama.block_count").asInt();
 * String[] tokens = file.metadata().get("tokenizer.ggml.tokens").asStringArray();
 * }</pre>
 *
 * @param type the value's type
 * @param elementType for arrays, the type of the elements; otherwise null
 * @param value the decoded value as described above
 */
public record GgufValue(GgufValueType type, GgufValueType elementType, Object value) {

    public GgufValue {
        Objects.requireNonNull(type);
        Objects.requireNonNull(value);
        if ((type == GgufValueType.ARRAY) != (elementType != null)) {
            throw new IllegalArgumentException("elementType is set exactly for arrays");
        }
    }

    public static GgufValue of(GgufValueType type, Object value) {
        return new GgufValue(type, null, value);
    }

    public static GgufValue array(GgufValueType elementType, Object array) {
        return new GgufValue(GgufValueType.ARRAY, elementType, array);
    }

    public static GgufValue ofString(String s) {
        return of(GgufValueType.STRING, s);
    }

    public static GgufValue ofUInt32(long v) {
        return of(GgufValueType.UINT32, v);
    }

    public static GgufValue ofInt32(int v) {
        return of(GgufValueType.INT32, v);
    }

    public static GgufValue ofFloat32(float v) {
        return of(GgufValueType.FLOAT32, v);
    }

    public static GgufValue ofBool(boolean v) {
        return of(GgufValueType.BOOL, v);
    }

    public static GgufValue ofUInt8(int v) {
        return of(GgufValueType.UINT8, v);
    }

    public static GgufValue ofInt8(int v) {
        return of(GgufValueType.INT8, v);
    }

    public static GgufValue ofUInt16(int v) {
        return of(GgufValueType.UINT16, v);
    }

    public static GgufValue ofInt16(int v) {
        return of(GgufValueType.INT16, v);
    }

    /** A UINT64; values above {@link Long#MAX_VALUE} are given as their signed bit pattern. */
    public static GgufValue ofUInt64(long v) {
        return of(GgufValueType.UINT64, v);
    }

    public static GgufValue ofInt64(long v) {
        return of(GgufValueType.INT64, v);
    }

    public static GgufValue ofFloat64(double v) {
        return of(GgufValueType.FLOAT64, v);
    }

    public static GgufValue ofStringArray(String... values) {
        return array(GgufValueType.STRING, values);
    }

    public static GgufValue ofInt32Array(int... values) {
        return array(GgufValueType.INT32, values);
    }

    public static GgufValue ofFloat32Array(float... values) {
        return array(GgufValueType.FLOAT32, values);
    }

    /** An array whose elements are themselves arrays (of any, possibly differing, element types). */
    public static GgufValue ofArrays(GgufValue... arrays) {
        return array(GgufValueType.ARRAY, arrays);
    }

    /** This value as a long, for any integer type. */
    public long asLong() {
        if (value instanceof Number n && !(value instanceof Float) && !(value instanceof Double)) {
            return n.longValue();
        }
        throw mismatch("an integer");
    }

    /**
     * This value as an int, for any integer type whose value fits.
     *
     * @throws IllegalStateException if it is not an integer or does not fit in an int
     */
    public int asInt() {
        long v = asLong();
        if (v != (int) v) {
            throw new IllegalStateException("value " + v + " does not fit in an int");
        }
        return (int) v;
    }

    /** This value as a float, for FLOAT32, FLOAT64 and integer types. */
    public float asFloat() {
        if (value instanceof Number n) {
            return n.floatValue();
        }
        throw mismatch("a number");
    }

    public double asDouble() {
        if (value instanceof Number n) {
            return n.doubleValue();
        }
        throw mismatch("a number");
    }

    public boolean asBool() {
        if (value instanceof Boolean b) {
            return b;
        }
        throw mismatch("a bool");
    }

    public String asString() {
        if (value instanceof String s) {
            return s;
        }
        throw mismatch("a string");
    }

    public String[] asStringArray() {
        if (value instanceof String[] a) {
            return a;
        }
        throw mismatch("an array of strings");
    }

    /** An array of FLOAT32 (or FLOAT64, narrowed) as floats. */
    public float[] asFloatArray() {
        if (value instanceof float[] a) {
            return a;
        }
        if (value instanceof double[] d) {
            float[] a = new float[d.length];
            for (int i = 0; i < d.length; i++) {
                a[i] = (float) d[i];
            }
            return a;
        }
        throw mismatch("an array of floats");
    }

    /** An array of any integer type of up to 32 bits as ints (unsigned 8/16-bit values zero-extended). */
    public int[] asIntArray() {
        if (value instanceof int[] a) {
            return a;
        }
        if (value instanceof byte[] b) {
            int[] a = new int[b.length];
            boolean unsigned = elementType == GgufValueType.UINT8 || elementType == GgufValueType.BOOL;
            for (int i = 0; i < b.length; i++) {
                a[i] = unsigned ? Byte.toUnsignedInt(b[i]) : b[i];
            }
            return a;
        }
        if (value instanceof short[] s) {
            int[] a = new int[s.length];
            boolean unsigned = elementType == GgufValueType.UINT16;
            for (int i = 0; i < s.length; i++) {
                a[i] = unsigned ? Short.toUnsignedInt(s[i]) : s[i];
            }
            return a;
        }
        if (value instanceof long[] l) {
            int[] a = new int[l.length];
            for (int i = 0; i < l.length; i++) {
                if (l[i] != (int) l[i]) {
                    throw new IllegalStateException("array element " + i + " = " + l[i] + " does not fit in an int");
                }
                a[i] = (int) l[i];
            }
            return a;
        }
        throw mismatch("an array of integers");
    }

    /** Number of elements of an array value. */
    public int arrayLength() {
        if (type != GgufValueType.ARRAY) {
            throw mismatch("an array");
        }
        return java.lang.reflect.Array.getLength(value);
    }

    private IllegalStateException mismatch(String wanted) {
        return new IllegalStateException("metadata value of type " + describeType() + " is not " + wanted);
    }

    /** The type as a GGUF tool would print it, e.g. {@code UINT32} or {@code ARRAY[STRING]}. */
    public String describeType() {
        return type == GgufValueType.ARRAY ? "ARRAY[" + elementType + "]" : type.toString();
    }

    @Override
    public String toString() {
        if (type != GgufValueType.ARRAY) {
            return type == GgufValueType.STRING ? '"' + (String) value + '"' : String.valueOf(value);
        }
        int n = arrayLength();
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < Math.min(n, 8); i++) {
            if (i > 0) {
                sb.append(", ");
            }
            Object e = java.lang.reflect.Array.get(value, i);
            sb.append(e instanceof String s ? '"' + s + '"' : String.valueOf(e));
        }
        if (n > 8) {
            sb.append(", ... (").append(n).append(" elements)");
        }
        return sb.append(']').toString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof GgufValue v && type == v.type && elementType == v.elementType
                && Objects.deepEquals(new Object[] {value}, new Object[] {v.value});
    }

    @Override
    public int hashCode() {
        return Objects.hash(type, elementType, Arrays.deepHashCode(new Object[] {value}));
    }
}
