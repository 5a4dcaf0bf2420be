package io.jcascade.kernels.cpu;

/**
 * The float arithmetic of llama.cpp's x86 CPU kernels that jcascade reproduces bit for bit, so
 * that activations quantized to 8 bits round the same way on both sides (one ulp of difference
 * can move a value across a rounding boundary and shift a logit by ~0.1).
 *
 * <ul>
 *   <li>{@link #expf}: ggml's vectorized {@code exp} for 8-wide AVX2 ({@code ggml_v_expf}), the
 *       range reduction and degree-5 polynomial of Arm's optimized-routines {@code expf}
 *       (within 1.5 ulp of the true value), which its softmax and SiLU use for every full chunk
 *       of 8 elements (the rest go through libm's {@code expf}, which {@code Math.exp} rounded
 *       to float matches).</li>
 *   <li>{@link #hsum8}: the horizontal sum of 8 float lanes ({@code hsum_float_8}).</li>
 *   <li>{@link #cosf}, {@link #sinf}: the C library's own single-precision cosine and sine, which
 *       ggml's rope calls. glibc's differ from the correctly rounded result in about 1 % of
 *       arguments (its double-precision polynomials stop short of correct rounding), so they are
 *       called through the FFM API where the platform has them, and {@code Math.cos}/{@code sin}
 *       rounded to float are the fallback.</li>
 * </ul>
 *
 * <pre>{@code
 * float e = GgmlMath.expf(-1.5f);              // ggml_v_expf(-1.5f), lane by lane
 * float s = GgmlMath.hsum8(new float[8], 0);   // 0
 * }</pre>
 */
public final class GgmlMath {

    private GgmlMath() {
    }

    private static final java.lang.invoke.MethodHandle COSF = libm("cosf"), SINF = libm("sinf");

    private static java.lang.invoke.MethodHandle libm(String name) {
        try {
            java.lang.foreign.Linker linker = java.lang.foreign.Linker.nativeLinker();
            return linker.defaultLookup().find(name)
                    .map(f -> linker.downcallHandle(f, java.lang.foreign.FunctionDescriptor.of(
                            java.lang.foreign.ValueLayout.JAVA_FLOAT, java.lang.foreign.ValueLayout.JAVA_FLOAT)))
                    .orElse(null);
        } catch (RuntimeException | Error e) { // no native access: the Math fallback
            return null;
        }
    }

    /** The C library's {@code cosf(x)} (what ggml's rope calls), else {@code (float) Math.cos(x)}. */
    public static float cosf(float x) {
        if (COSF != null) {
            try {
                return (float) COSF.invokeExact(x);
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }
        return (float) Math.cos(x);
    }

    /** The C library's {@code sinf(x)}, else {@code (float) Math.sin(x)}. */
    public static float sinf(float x) {
        if (SINF != null) {
            try {
                return (float) SINF.invokeExact(x);
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }
        return (float) Math.sin(x);
    }

    private static final float SHIFT = 0x1.8p23f;          // 1.5 * 2^23: rounds n to an integer
    private static final float INV_LN2 = 0x1.715476p+0f;
    private static final float LN2_HI = 0x1.62e4p-1f, LN2_LO = 0x1.7f7d1cp-20f;
    private static final float C0 = 0x1.ffffecp-1f, C1 = 0x1.fffdb6p-2f, C2 = 0x1.555e66p-3f, C3 = 0x1.573e2ep-5f,
            C4 = 0x1.0e4020p-7f;

    /**
     * ggml_v_expf for one lane: {@code exp(x) = 2^n * (1 + p(b))} with {@code n = round(x / ln 2)},
     * {@code b = x - n ln 2} (two-part ln 2), p a degree-5 polynomial; |n| > 126 is scaled in two
     * steps and |n| > 192 saturates to 0 or infinity.
     */
    public static float expf(float x) {
        float z = Math.fma(x, INV_LN2, SHIFT);
        float n = z - SHIFT;
        float b = Math.fma(-n, LN2_LO, Math.fma(-n, LN2_HI, x));
        int e = Float.floatToRawIntBits(z) << 23;
        float k = Float.intBitsToFloat(e + Float.floatToRawIntBits(1f));
        float u = b * b;
        float j = Math.fma(Math.fma(Math.fma(C4, b, C3), u, Math.fma(C2, b, C1)), u, C0 * b);
        float an = Math.abs(n);
        if (!(an > 126)) {
            return Math.fma(j, k, k);
        }
        int g = n <= 0 ? 0x82000000 : 0;
        float s1 = Float.intBitsToFloat(g + 0x7f000000);
        if (an > 192) {
            return s1 * s1;
        }
        float s2 = Float.intBitsToFloat(e - g);
        return Math.fma(s2, j, s2) * s1;
    }

    /** Int lanes as many as the preferred float species' (a constant, so that C2 intrinsifies the casts). */
    private static final jdk.incubator.vector.VectorSpecies<Integer> INT_LANES =
            jdk.incubator.vector.VectorSpecies.of(int.class, jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.vectorShape());

    /**
     * {@link #expf} lane by lane, in the same operations (so bit for bit the same): the three
     * ranges of {@code |n|} computed for every lane and blended. Vectors of the preferred species.
     */
    static jdk.incubator.vector.FloatVector expf(jdk.incubator.vector.FloatVector x) {
        if (x.species() != jdk.incubator.vector.FloatVector.SPECIES_PREFERRED) {
            throw new IllegalArgumentException("expf takes vectors of the preferred species");
        }
        var z = x.fma(INV_LN2, SHIFT);
        var n = z.sub(SHIFT);
        var neg = n.neg();
        var b = neg.fma(x.broadcast(LN2_LO), neg.fma(x.broadcast(LN2_HI), x));
        var e = ((jdk.incubator.vector.IntVector) z.viewAsIntegralLanes())
                .lanewise(jdk.incubator.vector.VectorOperators.LSHL, 23);
        var k = (jdk.incubator.vector.FloatVector) e.add(Float.floatToRawIntBits(1f)).viewAsFloatingLanes();
        var u = b.mul(b);
        var j = b.fma(C4, C3).fma(u, b.fma(C2, C1)).fma(u, b.mul(C0));
        var an = n.abs();
        var near = j.fma(k, k);
        var large = an.compare(jdk.incubator.vector.VectorOperators.GT, 126f);
        if (!large.anyTrue()) {
            return near;
        }
        var g = jdk.incubator.vector.IntVector.zero(INT_LANES)
                .blend(0x82000000, n.compare(jdk.incubator.vector.VectorOperators.LE, 0f).cast(INT_LANES));
        var s1 = (jdk.incubator.vector.FloatVector) g.add(0x7f000000).viewAsFloatingLanes();
        var s2 = (jdk.incubator.vector.FloatVector) e.sub(g).viewAsFloatingLanes();
        var mid = s2.fma(j, s2).mul(s1);
        var far = s1.mul(s1);
        return near.blend(mid, large).blend(far, an.compare(jdk.incubator.vector.VectorOperators.GT, 192f));
    }

    /**
     * Element i of ggml's SwiGLU over a row of n: {@code silu(g) * u}, with silu {@code g / (1 + e)}
     * where e is {@link #expf} for the elements of full chunks of 8 (ggml_vec_silu_f32's vector
     * part) and libm's expf ({@code Math.exp} rounded) for the last {@code n % 8}.
     */
    static float swiglu(float g, float u, int i, int n) {
        float e = i < n - n % 8 ? expf(-g) : (float) Math.exp(-g);
        return g / (1.0f + e) * u;
    }

    /** ggml's hsum_float_8 of {@code a[o .. o+8)}: halves added, then lanes (0+2) and (1+3), then those. */
    public static float hsum8(float[] a, int o) {
        float h0 = a[o + 4] + a[o], h1 = a[o + 5] + a[o + 1], h2 = a[o + 6] + a[o + 2], h3 = a[o + 7] + a[o + 3];
        return (h0 + h2) + (h1 + h3);
    }

    /**
     * A dot product as ggml's 8-wide f16 kernels (tinyBLAS) sum it: lane j accumulates
     * {@code a[i] * b[i]} for i = j mod 8 by fused multiply-adds in order, then {@link #hsum8};
     * elements past the last full 8 (which ggml's shapes never have) are added after.
     * {@code lanes} is scratch of at least 8.
     */
    public static float dot8(float[] a, int ao, float[] b, int bo, int n, float[] lanes) {
        jdk.incubator.vector.FloatVector acc = jdk.incubator.vector.FloatVector.zero(F8);
        int i = 0;
        for (; i + 8 <= n; i += 8) {
            acc = jdk.incubator.vector.FloatVector.fromArray(F8, a, ao + i)
                    .fma(jdk.incubator.vector.FloatVector.fromArray(F8, b, bo + i), acc);
        }
        float s = Int8Dot.hsum8(acc);
        for (; i < n; i++) {
            s = Math.fma(a[ao + i], b[bo + i], s);
        }
        return s;
    }


    /**
     * A dot product of f16 values (held as floats) as ggml's {@code ggml_vec_dot_f16} sums it on
     * AVX2: four accumulators of 8 lanes over steps of 32 (lane j of accumulator r takes element
     * 32s + 8r + j by fused multiply-add), reduced as {@code (a0+a2) + (a1+a3)}, then the 8 lanes
     * as {@code ((l0+l4) + (l1+l5)) + ((l2+l6) + (l3+l7))}; the elements past the last step of 32
     * added in double, and the total rounded to float once. {@code acc} is scratch of 32.
     */
    public static float dotF16(float[] a, int ao, float[] b, int bo, int n, float[] acc) {
        int np = n & ~31;
        double sum = 0;
        if (np > 0) {
            // the four accumulators are four 8-lane vectors: the same fused multiply-adds, lane by lane
            jdk.incubator.vector.FloatVector a0 = jdk.incubator.vector.FloatVector.zero(F8), a1 = a0, a2 = a0, a3 = a0;
            for (int i = 0; i < np; i += 32) {
                a0 = v(a, ao + i).fma(v(b, bo + i), a0);
                a1 = v(a, ao + i + 8).fma(v(b, bo + i + 8), a1);
                a2 = v(a, ao + i + 16).fma(v(b, bo + i + 16), a2);
                a3 = v(a, ao + i + 24).fma(v(b, bo + i + 24), a3);
            }
            sum = reduce4x8(a0, a1, a2, a3);
        }
        for (int i = np; i < n; i++) {
            sum += (double) (a[ao + i] * b[bo + i]);
        }
        return (float) sum;
    }

    private static final jdk.incubator.vector.VectorSpecies<Float> F8 = jdk.incubator.vector.FloatVector.SPECIES_256;

    /**
     * ggml's reduction of four 8-lane accumulators (GGML_F32x8_REDUCE, used by its f32 and f16 dot
     * products): (a0+a2) + (a1+a3) lane by lane, then the lanes as ((l0+l4) + (l1+l5)) + ((l2+l6) + (l3+l7)).
     */
    static float reduce4x8(jdk.incubator.vector.FloatVector a0, jdk.incubator.vector.FloatVector a1,
            jdk.incubator.vector.FloatVector a2, jdk.incubator.vector.FloatVector a3) {
        jdk.incubator.vector.FloatVector r = a0.add(a2).add(a1.add(a3));
        float t0 = r.lane(0) + r.lane(4), t1 = r.lane(1) + r.lane(5), t2 = r.lane(2) + r.lane(6), t3 = r.lane(3) + r.lane(7);
        return (t0 + t1) + (t2 + t3);
    }

    private static jdk.incubator.vector.FloatVector v(float[] x, int o) {
        return jdk.incubator.vector.FloatVector.fromArray(F8, x, o);
    }
}
