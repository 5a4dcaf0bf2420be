package io.jcascade.engine;

import static java.lang.foreign.ValueLayout.ADDRESS;
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

    private final Arena arena = Arena.ofShared();
    private final MemorySegment model;
    private final int vocabSize;

    LlamaCppLogits(Path gguf) {
        try {
            MemorySegment params = (MemorySegment) MODEL_DEFAULT_PARAMS.invokeExact((SegmentAllocator) arena);
            model = (MemorySegment) MODEL_LOAD.invokeExact(arena.allocateFrom(gguf.toString()), params);
            if (model.equals(MemorySegment.NULL)) {
                throw new IllegalStateException("llama.cpp could not load " + gguf);
            }
            vocabSize = (int) VOCAB_N_TOKENS.invokeExact((MemorySegment) MODEL_GET_VOCAB.invokeExact(model));
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
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
