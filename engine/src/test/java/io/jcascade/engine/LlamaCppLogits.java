package io.jcascade.engine;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BOOLEAN;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import de.kherud.llama.LlamaModel;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SegmentAllocator;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.nio.file.Path;

/**
 * llama.cpp's raw logits, step by step: its C API ({@code llama_decode}, {@code llama_get_logits_ith}),
 * called through FFM in the {@code libjllama.so} that the de.kherud binding loads (build 4916 exports
 * the whole {@code llama_*} API). The binding itself only offers {@code n_probs}, and in 4.2.0 that
 * aborts the JVM (its JNI code reads a {@code "probs"} key the server no longer writes), so this is
 * the window into llama.cpp's numbers.
 *
 * <p>A sequence is decoded as llama.cpp's server does it: the prompt in one batch (logits of its last
 * token only), then one token per {@code llama_decode}; 2 threads, n_ctx = n_batch = n_ubatch = 512,
 * f16 KV cache (the defaults).
 *
 * <p>The structs are passed by value; {@code llama_model_params} (64 bytes) and
 * {@code llama_context_params} (120 bytes) are larger than 16 bytes, so the x86-64 ABI passes them
 * in memory whatever their fields, and they are declared here as arrays of longs of the right size
 * (read off {@code llama_model_default_params}/{@code llama_context_default_params} in the
 * library). Only the first six 32-bit fields of the context parameters are written: n_ctx,
 * n_batch, n_ubatch, n_seq_max, n_threads, n_threads_batch.
 */
final class LlamaCppLogits implements AutoCloseable {

    private static final Linker LINKER = Linker.nativeLinker();
    private static final MemoryLayout MODEL_PARAMS = longs(8);
    private static final MemoryLayout CONTEXT_PARAMS = longs(15);
    private static final StructLayout BATCH = MemoryLayout.structLayout(JAVA_INT.withName("n_tokens"),
            MemoryLayout.paddingLayout(4), ADDRESS.withName("token"), ADDRESS.withName("embd"),
            ADDRESS.withName("pos"), ADDRESS.withName("n_seq_id"), ADDRESS.withName("seq_id"),
            ADDRESS.withName("logits"));

    private static final MethodHandle MODEL_DEFAULT_PARAMS, MODEL_LOAD, MODEL_FREE, CONTEXT_DEFAULT_PARAMS,
            INIT_FROM_MODEL, FREE, BATCH_GET_ONE, DECODE, GET_LOGITS_ITH, MODEL_GET_VOCAB, VOCAB_N_TOKENS;

    static {
        // The binding's static initializers load libjllama.so; LlamaCppOracle's quiets llama.cpp's logging.
        initialize(LlamaModel.class);
        initialize(LlamaCppOracle.class);
        SymbolLookup lib = SymbolLookup.loaderLookup();
        MODEL_DEFAULT_PARAMS = fn(lib, "llama_model_default_params", FunctionDescriptor.of(MODEL_PARAMS));
        MODEL_LOAD = fn(lib, "llama_model_load_from_file", FunctionDescriptor.of(ADDRESS, ADDRESS, MODEL_PARAMS));
        MODEL_FREE = fn(lib, "llama_model_free", FunctionDescriptor.ofVoid(ADDRESS));
        CONTEXT_DEFAULT_PARAMS = fn(lib, "llama_context_default_params", FunctionDescriptor.of(CONTEXT_PARAMS));
        INIT_FROM_MODEL = fn(lib, "llama_init_from_model", FunctionDescriptor.of(ADDRESS, ADDRESS, CONTEXT_PARAMS));
        FREE = fn(lib, "llama_free", FunctionDescriptor.ofVoid(ADDRESS));
        BATCH_GET_ONE = fn(lib, "llama_batch_get_one", FunctionDescriptor.of(BATCH, ADDRESS, JAVA_INT));
        DECODE = fn(lib, "llama_decode", FunctionDescriptor.of(JAVA_INT, ADDRESS, BATCH));
        GET_LOGITS_ITH = fn(lib, "llama_get_logits_ith", FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_INT));
        MODEL_GET_VOCAB = fn(lib, "llama_model_get_vocab", FunctionDescriptor.of(ADDRESS, ADDRESS));
        VOCAB_N_TOKENS = fn(lib, "llama_vocab_n_tokens", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    }

    private static StructLayout longs(int n) {
        MemoryLayout[] fields = new MemoryLayout[n];
        java.util.Arrays.fill(fields, JAVA_LONG);
        return MemoryLayout.structLayout(fields);
    }

    private static void initialize(Class<?> c) {
        try {
            Class.forName(c.getName(), true, c.getClassLoader());
        } catch (ClassNotFoundException e) {
            throw new IllegalStateException(e);
        }
    }

    private static MethodHandle fn(SymbolLookup lib, String name, FunctionDescriptor d) {
        return LINKER.downcallHandle(lib.find(name).orElseThrow(
                () -> new IllegalStateException(name + " not found in libjllama.so")), d);
    }

    /**
     * A window on llama.cpp's intermediate tensors (its {@code cb_eval} scheduler callback): each
     * graph node whose name {@link #wants} accepts is handed over, as floats, once computed.
     */
    interface TensorTap {
        /** Whether to look at the node called {@code name} (e.g. {@code "attn_norm-0"}). */
        boolean wants(String name);

        /** A computed node: {@code ne} its four dimensions (ne[0] the row length), {@code op} ggml's op id. */
        void seen(String name, int type, int op, long[] ne, float[] data);
    }

    // ggml_tensor (ggml.h of build 4916): type @0, ne[4] @16, nb[4] @48, op @80, data @248, name[64] @256.
    private static final long T_TYPE = 0, T_NE = 16, T_NB = 48, T_OP = 80, T_DATA = 248, T_NAME = 256;
    // llama_context_params: cb_eval @72, cb_eval_user_data @80.
    private static final long P_CB_EVAL = 72;

    private final Arena arena = Arena.ofShared();
    private final MemorySegment model;
    private final int vocabSize;
    private final MemorySegment callback;

    LlamaCppLogits(Path gguf) {
        this(gguf, null);
    }

    LlamaCppLogits(Path gguf, TensorTap tap) {
        try {
            MemorySegment params = (MemorySegment) MODEL_DEFAULT_PARAMS.invokeExact((SegmentAllocator) arena);
            model = (MemorySegment) MODEL_LOAD.invokeExact(arena.allocateFrom(gguf.toString()), params);
            if (model.equals(MemorySegment.NULL)) {
                throw new IllegalStateException("llama.cpp could not load " + gguf);
            }
            vocabSize = (int) VOCAB_N_TOKENS.invokeExact((MemorySegment) MODEL_GET_VOCAB.invokeExact(model));
            callback = tap == null ? MemorySegment.NULL : upcall(tap);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    private MemorySegment upcall(TensorTap tap) throws ReflectiveOperationException {
        MethodHandle target = MethodHandles.lookup().findStatic(LlamaCppLogits.class, "evalCallback",
                MethodType.methodType(boolean.class, TensorTap.class, MemorySegment.class, boolean.class,
                        MemorySegment.class)).bindTo(tap);
        return LINKER.upcallStub(target, FunctionDescriptor.of(JAVA_BOOLEAN, ADDRESS, JAVA_BOOLEAN, ADDRESS), arena);
    }

    /** ggml_backend_sched_eval_callback: asked first whether we want a node, then handed it computed. */
    private static boolean evalCallback(TensorTap tap, MemorySegment tensor, boolean ask, MemorySegment user) {
        MemorySegment t = tensor.reinterpret(336);
        String name = t.getString(T_NAME);
        if (ask) {
            return tap.wants(name);
        }
        int type = t.get(JAVA_INT, T_TYPE);
        long[] ne = new long[4];
        long[] nb = new long[4];
        for (int i = 0; i < 4; i++) {
            ne[i] = t.get(JAVA_LONG, T_NE + 8 * i);
            nb[i] = t.get(JAVA_LONG, T_NB + 8 * i);
        }
        MemorySegment data = t.get(ADDRESS, T_DATA);
        float[] out = null;
        if (type == 0 || type == 1) { // F32 or F16, gathered through the strides (views are not contiguous)
            long n = ne[0] * ne[1] * ne[2] * ne[3];
            out = new float[Math.toIntExact(n)];
            long extent = (ne[0] - 1) * nb[0] + (ne[1] - 1) * nb[1] + (ne[2] - 1) * nb[2] + (ne[3] - 1) * nb[3]
                    + (type == 0 ? 4 : 2);
            MemorySegment d = data.reinterpret(extent);
            int k = 0;
            for (long i3 = 0; i3 < ne[3]; i3++) {
                for (long i2 = 0; i2 < ne[2]; i2++) {
                    for (long i1 = 0; i1 < ne[1]; i1++) {
                        for (long i0 = 0; i0 < ne[0]; i0++) {
                            long off = i0 * nb[0] + i1 * nb[1] + i2 * nb[2] + i3 * nb[3];
                            out[k++] = type == 0 ? d.get(JAVA_FLOAT, off)
                                    : Float.float16ToFloat(d.get(java.lang.foreign.ValueLayout.JAVA_SHORT, off));
                        }
                    }
                }
            }
        }
        tap.seen(name, type, t.get(JAVA_INT, T_OP), ne, out);
        return true;
    }

    int vocabSize() {
        return vocabSize;
    }

    /** One sequence: a fresh llama.cpp context (empty KV cache). */
    Sequence newSequence() {
        return new Sequence();
    }

    final class Sequence implements AutoCloseable {
        private final MemorySegment ctx;

        private Sequence() {
            try {
                MemorySegment p = (MemorySegment) CONTEXT_DEFAULT_PARAMS.invokeExact((SegmentAllocator) arena);
                p.set(JAVA_INT, 0, 512);  // n_ctx
                p.set(JAVA_INT, 4, 512);  // n_batch
                p.set(JAVA_INT, 8, 512);  // n_ubatch
                p.set(JAVA_INT, 12, 1);   // n_seq_max
                p.set(JAVA_INT, 16, 2);   // n_threads
                p.set(JAVA_INT, 20, 2);   // n_threads_batch
                p.set(ADDRESS, P_CB_EVAL, callback);
                ctx = (MemorySegment) INIT_FROM_MODEL.invokeExact(model, p);
            } catch (RuntimeException | Error e) {
                throw e;
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
            if (ctx.equals(MemorySegment.NULL)) {
                throw new IllegalStateException("llama.cpp could not create a context");
            }
        }

        /** Decodes {@code tokens} (continuing the sequence) in one batch; returns the last token's logits. */
        float[] decode(int... tokens) {
            try (Arena call = Arena.ofConfined()) {
                MemorySegment ids = call.allocateFrom(JAVA_INT, tokens);
                MemorySegment batch = (MemorySegment) BATCH_GET_ONE.invokeExact((SegmentAllocator) call,
                        ids, tokens.length);
                int rc = (int) DECODE.invokeExact(ctx, batch);
                if (rc != 0) {
                    throw new IllegalStateException("llama_decode returned " + rc);
                }
                MemorySegment logits = (MemorySegment) GET_LOGITS_ITH.invokeExact(ctx, -1);
                return logits.reinterpret(4L * vocabSize).toArray(JAVA_FLOAT);
            } catch (RuntimeException | Error e) {
                throw e;
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }

        @Override
        public void close() {
            try {
                FREE.invokeExact(ctx);
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }
    }

    @Override
    public void close() {
        try {
            MODEL_FREE.invokeExact(model);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        } finally {
            arena.close();
        }
    }
}
