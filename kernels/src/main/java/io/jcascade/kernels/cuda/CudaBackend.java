package io.jcascade.kernels.cuda;

import io.jcascade.gguf.GgmlType;
import io.jcascade.kernels.Backend;
import io.jcascade.kernels.TokenCandidates;
import io.jcascade.kernels.WeightMatrix;
import io.jcascade.kernels.cpu.ScalarKernels;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Cleaner;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * The CUDA backend: the whole forward pass on one NVIDIA GPU, through the CUDA driver API called
 * with FFM ({@link CudaDriver}). Weights are uploaded once in their ggml block layout (F32, F16,
 * BF16, Q8_0, Q4_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K; never dequantized; norms, being vectors, as
 * float32), activations and the KV cache live in plain device allocations ({@code cuMemAlloc}, no
 * managed memory), every kernel runs in order on one stream, and only token ids go in and logits
 * (or, with {@link #selectTokens}, a step's statistics and its k candidates) come out.
 *
 * <p>Numerics follow {@link io.jcascade.kernels.cpu.CpuBackend}: an f16 KV cache with the query
 * and the attention weights rounded to half, RMSNorm and softmax summed in double, RoPE's angle
 * stepped by float multiplication. Sums run in a different order, so results agree to float32
 * rounding, not bit for bit.
 *
 * <p>The kernels come from {@code jcascade.cu}, prebuilt by nvcc into the jar (a cubin for
 * sm_90a and PTX for compute_80 and newer), or compiled at start-up by NVRTC from the embedded
 * source when the driver refuses the prebuilt ones (a driver older than the nvcc of the build)
 * or the jar was built without nvcc. The system property {@code jcascade.cuda.kernels}
 * ({@code auto}, {@code cubin}, {@code ptx}, {@code nvrtc}) forces one of them.
 *
 * <p>Device: property {@code jcascade.cuda.device} or environment {@code JCASCADE_CUDA_DEVICE}
 * (an ordinal, default 0). All methods are synchronized: several generations may share the
 * backend from several threads; their kernels queue on the one stream.
 *
 * <pre>{@code
 * try (CudaBackend gpu = CudaBackend.open()) {        // CudaUnavailableException without a GPU
 *     Backend.Weight w = gpu.weight(WeightMatrix.of(gguf.tensor("output.weight")));
 *     ...
 *     gpu.selectTokens(logits, vocab, 40, 1f, new int[0], 0, candidates); // 40 candidates, the entropy
 *     int greedy = gpu.argmax(logits, vocab);
 * }
 * }</pre>
 */
public final class CudaBackend implements Backend {

    /** Kernel module name: {@code jcascade.cu} and what nvcc made of it. */
    static final String MODULE = "jcascade";
    private static final String RESOURCE_DIR = "/io/jcascade/kernels/cuda/";
    private static final Cleaner CLEANER = Cleaner.create();

    // Launch geometry; must match the #defines in jcascade.cu.
    private static final int MM_WARPS = 4;
    private static final int MM_TOKENS = 8;
    private static final int MV_WARPS = 8;
    private static final int MMQ_WARPS = 4;
    private static final int MMQ_TILE = 64;
    /**
     * Whether one-token products take the decode kernels ({@code matvec_*}, wide loads, a lane per
     * chunk) where the type has one; {@code -Djcascade.cuda.matvec=false} keeps the tiled
     * {@code matmul_*} kernels for them, for comparisons.
     */
    static final boolean MATVEC = !"false".equalsIgnoreCase(System.getProperty("jcascade.cuda.matvec", "true"));
    /**
     * Whether prompt products of Q8_0, Q4_0, Q4_K and Q6_K weights run on the tensor cores
     * ({@code mmq_*}: int8 mma on activations quantized to 8 bits) where activations are 8-bit;
     * {@code -Djcascade.cuda.mma=false} keeps the float {@code matmul_*} kernels for them.
     */
    static final boolean MMA = !"false".equalsIgnoreCase(System.getProperty("jcascade.cuda.mma", "true"));
    private static final int ATT_CHUNK = 128;
    private static final int ATT_THREADS = 128;
    private static final int ATT_MAX_HEAD_DIM = 512;
    private static final int ATT_FUSED_MAX = 1024;

    private final CudaDriver cu;
    private final int ordinal;
    private final int device;
    private final String deviceName;
    private final int ccMajor;
    private final int ccMinor;
    private final MemorySegment context;
    private final MemorySegment stream;
    private final MemorySegment module;
    private final String kernelSource;
    private final Map<String, MemorySegment> functions = new HashMap<>();
    private final Arena arena = Arena.ofShared();
    private final MemorySegment argSlots;   // launch parameter values, 8 bytes each
    private final MemorySegment argPointers; // void*[] pointing at the slots
    private final MemorySegment startEvent;
    private final MemorySegment stopEvent;
    /** The backend whose context this thread last made current (contexts are per thread in CUDA). */
    private static final ThreadLocal<CudaBackend> CURRENT = new ThreadLocal<>();

    /** Every live device allocation, freed at close; tensors that became unreachable are freed on the next allocation. */
    private final Set<Long> allocations = new HashSet<>();
    private final ConcurrentLinkedQueue<Long> unreachable = new ConcurrentLinkedQueue<>();
    private final Map<float[], Long> ropeFactors = new IdentityHashMap<>();
    private final ScratchBuffer tokensDev = new ScratchBuffer();
    private final ScratchBuffer scores = new ScratchBuffer();
    private final ScratchBuffer partial = new ScratchBuffer();
    private final ScratchBuffer choice = new ScratchBuffer();
    private final ScratchBuffer penalisedLogits = new ScratchBuffer();
    private final ScratchBuffer penalisedTokens = new ScratchBuffer();
    private final TokenCandidates greedyChoice = new TokenCandidates();
    /** Activations quantized to Q8_0 blocks for the 8-bit kernels of Q8_0 and Q4_0 (int8 q, float d, int s). */
    private final ScratchBuffer activations8 = new ScratchBuffer();
    /** The same in Q8_K, for the 8-bit kernels of Q4_K and Q6_K (int8 q, float d per 256, int s per 32). */
    private final ScratchBuffer activationsK = new ScratchBuffer();
    /** Operations entered so far; {@link #quantizedOp} says which one left {@link #activations8} as it is. */
    private long ops;
    /**
     * {@link #activations8} holds the 8-bit quantization of {@code quantizedTokens} rows of
     * {@code quantizedCols} floats at {@code quantizedFrom}, written by operation {@code quantizedOp}
     * (an {@link #rmsNorm} or an {@link #attention}). Only the very next operation may use it:
     * nothing ran in between.
     */
    private long quantizedFrom;
    private int quantizedCols;
    private int quantizedTokens;
    private long quantizedOp = -1;
    /**
     * One-token attention over up to this many positions runs as one kernel ({@code attn_decode});
     * longer, or set to 0 (tests compare the two), as scores, softmax and values split in chunks.
     */
    int fusedAttentionMax = ATT_FUSED_MAX;
    /** Whether products of quantized weights take 8-bit activations ({@code *_q8} and {@code mmq_*} kernels) where a kernel exists. */
    private final boolean int8Activations;
    /**
     * Decode steps as CUDA graphs (see {@link #useGraphs}): whether they are on, whether a step is
     * being captured now, the instantiated graph of the last step, and device memory that a step
     * outgrew while it was captured (freed once the graph has run).
     */
    private boolean graphs;
    /** A decode step is being recorded ({@link #stepOps}), to be replayed or captured when it ends. */
    private boolean capturing;
    private MemorySegment graphExec;
    /** The stream operations of the step being recorded, and those of the graph in {@link #graphExec}. */
    private final List<StepOp> stepOps = new ArrayList<>();
    private List<StepOp> graphOps = List.of();
    /** The step's token and position, written to the device ({@code ids}, {@link #stepPosition}) before each graph launch. */
    private int stepToken;
    private int stepPos;
    /** The thread whose step is being recorded: another thread's call ends the recording first. */
    private Thread recordingThread;
    private long stepIds;
    private long stepPosition;
    private long graphReplays;
    private long graphCaptures;
    private final List<Long> freeAfterCapture = new ArrayList<>();
    private MemorySegment hostStaging;
    private boolean closed;

    /** One stream operation of a recorded decode step: a kernel launch or a device-to-device copy. */
    private sealed interface StepOp permits LaunchOp, CopyOp {}

    /** A launch; {@code args} are the boxed Long / Integer / Float arguments, compared by value. */
    private record LaunchOp(String name, int gx, int gy, int gz, int block, List<Object> args) implements StepOp {}

    private record CopyOp(long dst, long src, long bytes) implements StepOp {}

    /** The most tokens a product takes through the decode kernels' lanes ({@code mmv_*}); more go to {@code mmq_*}. */
    static final int MMV_MAX_TOKENS = 8;
    /** The most candidates {@link #selectTokens} selects on the device (one block's radix select). */
    public static final int MAX_DEVICE_CANDIDATES = 1024;
    private static final int[] NO_IDS = new int[0];

    private CudaBackend(CudaDriver cu, int ordinal, boolean int8Activations) {
        this.cu = cu;
        this.int8Activations = int8Activations;
        this.graphs = Boolean.getBoolean("jcascade.cuda.graphs") && cu.hasGraphs();
        this.ordinal = ordinal;
        this.device = cu.device(ordinal);
        this.deviceName = cu.deviceName(device);
        this.ccMajor = cu.attribute(device, CudaDriver.ATTR_CC_MAJOR);
        this.ccMinor = cu.attribute(device, CudaDriver.ATTR_CC_MINOR);
        if (ccMajor < 8) {
            throw new CudaUnavailableException(CudaUnavailableException.Kind.NO_DEVICE, "CUDA device " + ordinal
                    + " (" + deviceName + ") has compute capability " + ccMajor + "." + ccMinor
                    + "; jcascade's kernels need 8.0 (Ampere) or newer");
        }
        this.context = cu.primaryContextRetain(device);
        boolean ok = false;
        try {
            cu.setCurrent(context);
            CURRENT.set(this);
            this.kernelSource = resourceText(MODULE + ".cu");
            this.module = loadModule();
            this.stream = cu.streamCreate();
            this.startEvent = cu.eventCreate();
            this.stopEvent = cu.eventCreate();
            this.argSlots = arena.allocate(8L * 16, 8);
            this.argPointers = arena.allocate(ValueLayout.ADDRESS, 16);
            for (int i = 0; i < 16; i++) {
                argPointers.setAtIndex(ValueLayout.ADDRESS, i, argSlots.asSlice(8L * i, 8));
            }
            ok = true;
        } finally {
            if (!ok) {
                cu.primaryContextRelease(device);
            }
        }
    }

    /**
     * Opens the device named by {@code jcascade.cuda.device} / {@code JCASCADE_CUDA_DEVICE} (default 0).
     *
     * @throws CudaUnavailableException with a one-line reason when there is no driver, no such
     *     device, or no kernels that it can load
     */
    public static CudaBackend open() {
        String sel = System.getProperty("jcascade.cuda.device", System.getenv("JCASCADE_CUDA_DEVICE"));
        int ordinal;
        try {
            ordinal = sel == null || sel.isBlank() ? 0 : Integer.parseInt(sel.strip());
        } catch (NumberFormatException e) {
            throw new CudaUnavailableException(CudaUnavailableException.Kind.NO_DEVICE,
                    "jcascade.cuda.device / JCASCADE_CUDA_DEVICE must be a device number, not \"" + sel + "\"");
        }
        return open(ordinal);
    }

    /**
     * Opens CUDA device {@code ordinal}; see {@link #open()}. Products of quantized weights take
     * 8-bit activations where a kernel exists ({@link #open(int, boolean)}), as the CPU's, unless
     * the system property {@code jcascade.activations} is {@code f32}.
     */
    public static CudaBackend open(int ordinal) {
        return open(ordinal, !"f32".equalsIgnoreCase(System.getProperty("jcascade.activations", "q8")));
    }

    /**
     * Opens CUDA device {@code ordinal}, choosing how products of quantized weights take their
     * activations: quantized to 8-bit blocks (true; integer dot products, the CPU's and llama.cpp's
     * default: Q8_0 blocks for Q8_0/Q4_0 weights, Q8_K for Q4_K/Q6_K; one token of those four types,
     * and prompts of those four on the tensor cores) or as floats (false; what every other product
     * takes).
     *
     * <pre>{@code
     * try (CudaBackend gpu = CudaBackend.open(0, false)) { ... } // float activations throughout
     * }</pre>
     */
    public static CudaBackend open(int ordinal, boolean int8Activations) {
        CudaDriver cu = CudaDriver.get();
        int count = cu.deviceCount();
        if (ordinal < 0 || ordinal >= count) {
            throw new CudaUnavailableException(CudaUnavailableException.Kind.NO_DEVICE, "CUDA device " + ordinal
                    + " does not exist (this machine has " + count + ")");
        }
        return new CudaBackend(cu, ordinal, int8Activations);
    }

    /**
     * Why the CUDA backend cannot be opened here, without opening it (it loads the driver, no
     * context): {@code null} when a driver and a device are present.
     */
    public static CudaUnavailableException unavailability() {
        try {
            CudaDriver.get();
            return null;
        } catch (CudaUnavailableException e) {
            return e;
        }
    }

    @Override
    public String name() {
        return "cuda";
    }

    /** The device, e.g. {@code NVIDIA H100 80GB HBM3 (device 0, sm_90)}. */
    public String deviceDescription() {
        return deviceName + " (device " + ordinal + ", sm_" + ccMajor + ccMinor + ")";
    }

    // ---- kernel image ------------------------------------------------------------------------

    private MemorySegment loadModule() {
        String mode = System.getProperty("jcascade.cuda.kernels", "auto");
        List<String> refused = new ArrayList<>();
        MemorySegment[] out = new MemorySegment[1];
        if (mode.equals("auto") || mode.equals("cubin")) {
            String cubin = MODULE + ".sm_" + ccMajor + ccMinor + "a.cubin";
            byte[] image = resourceBytes(cubin);
            if (image == null) {
                refused.add(cubin + ": not in this build");
            } else if (tryLoad(image, cubin, out, refused)) {
                return out[0];
            }
        }
        if (mode.equals("auto") || mode.equals("ptx")) {
            String ptx = MODULE + ".ptx";
            byte[] image = resourceBytes(ptx);
            if (image == null) {
                refused.add(ptx + ": not in this build (built without nvcc)");
            } else if (tryLoad(nulTerminated(image), ptx, out, refused)) {
                return out[0];
            }
        }
        if (mode.equals("auto") || mode.equals("nvrtc")) {
            try {
                byte[] ptx = Nvrtc.compile(kernelSource, MODULE + ".cu", ccMajor, ccMinor);
                if (tryLoad(ptx, "NVRTC's PTX", out, refused)) {
                    return out[0];
                }
            } catch (IllegalStateException e) {
                refused.add("run-time compilation: " + e.getMessage());
            }
        }
        throw new CudaUnavailableException(CudaUnavailableException.Kind.NO_KERNELS,
                "no CUDA kernels could be loaded for " + deviceName + " (sm_" + ccMajor + ccMinor + ", driver "
                        + versionString(cu.driverVersion()) + "): " + String.join("; ", refused));
    }

    private boolean tryLoad(byte[] image, String what, MemorySegment[] out, List<String> refused) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment seg = a.allocate(image.length, 16);
            MemorySegment.copy(image, 0, seg, ValueLayout.JAVA_BYTE, 0, image.length);
            int rc = cu.moduleLoadData(seg, out);
            if (rc == 0) {
                return true;
            }
            refused.add(what + ": " + cu.errorName(rc));
            return false;
        }
    }

    private static String versionString(int v) {
        return v / 1000 + "." + (v % 1000) / 10;
    }

    private static byte[] nulTerminated(byte[] b) {
        byte[] r = java.util.Arrays.copyOf(b, b.length + 1);
        return r;
    }

    static byte[] resourceBytes(String name) {
        try (InputStream in = CudaBackend.class.getResourceAsStream(RESOURCE_DIR + name)) {
            return in == null ? null : in.readAllBytes();
        } catch (IOException e) {
            return null;
        }
    }

    private static String resourceText(String name) {
        byte[] b = resourceBytes(name);
        return b == null ? "" : new String(b, StandardCharsets.UTF_8);
    }

    private MemorySegment fn(String name) {
        return functions.computeIfAbsent(name, n -> cu.function(module, n));
    }

    /**
     * Launches {@code name} on the stream; {@code args} are {@code Long} (device pointers, 64-bit
     * integers), {@code Integer} or {@code Float}, in the kernel's parameter order.
     */
    private void launch(String name, int gx, int gy, int gz, int block, Object... args) {
        if (gx == 0 || gy == 0 || gz == 0) {
            return;
        }
        if (capturing) {
            stepOps.add(new LaunchOp(name, gx, gy, gz, block, List.of(args)));
            return;
        }
        issue(name, gx, gy, gz, block, args);
    }

    private void issue(String name, int gx, int gy, int gz, int block, Object... args) {
        for (int i = 0; i < args.length; i++) {
            long off = 8L * i;
            switch (args[i]) {
                case Long v -> argSlots.set(ValueLayout.JAVA_LONG, off, v);
                case Integer v -> argSlots.set(ValueLayout.JAVA_INT, off, v);
                case Float v -> argSlots.set(ValueLayout.JAVA_FLOAT, off, v);
                default -> throw new IllegalArgumentException("kernel argument " + args[i]);
            }
        }
        cu.launch(fn(name), gx, gy, gz, block, 1, 1, 0, stream, argPointers, name);
    }

    // ---- memory ------------------------------------------------------------------------------

    private void enter() {
        if (closed) {
            throw new IllegalStateException("the CUDA backend is closed");
        }
        ops++;
        if (CURRENT.get() != this) {
            cu.setCurrent(context);
            CURRENT.set(this);
        }
        if (capturing && Thread.currentThread() != recordingThread) {
            endCapture(); // a step holds one generation's operations: its token and position are one
        }
    }

    /** {@link #enter()} for a call that the host waits on or that is not a kernel: ends a decode step's capture first. */
    private void enterHost() {
        enter();
        endCapture();
    }

    /**
     * Turns decode graphs on or off (default: the system property {@code jcascade.cuda.graphs},
     * off). With graphs on, a one-token {@link #embed} begins the recording of a decode step (its
     * launches and copies are kept, not issued) and the next call the host waits on
     * ({@link #read}, {@link #selectTokens}, ...) ends it. The step's token and position go to
     * device memory, where its kernels read them, so consecutive steps (up to 1024 positions, the
     * one-kernel attention) record the very same operations: the graph held from the first is
     * launched again as it is, one {@code cuGraphLaunch} a token and no driver call per kernel. A
     * step that differs (another length, a buffer that grew) is captured into a new graph
     * ({@code cuGraphExecUpdate} in place where it can). {@link #graphLaunches} counts both.
     * Ignored where the driver has no graph API.
     *
     * <pre>{@code
     * gpu.useGraphs(true);
     * }</pre>
     */
    public synchronized void useGraphs(boolean on) {
        enterHost();
        graphs = on && cu.hasGraphs();
    }

    /** Whether decode steps run as CUDA graphs here ({@link #useGraphs}). */
    public synchronized boolean graphs() {
        return graphs;
    }

    /** A decode step begins (a one-token embed): its operations are recorded from here on. */
    private void beginCapture(int token) {
        capturing = true;
        recordingThread = Thread.currentThread();
        stepOps.clear();
        stepToken = token;
        stepPos = 0;
    }

    /**
     * Ends the recording of a decode step, if one is going, and runs the step as one graph launch:
     * the held graph again if the step's operations are the very ones it was made of (a decode
     * step's kernels read its token and position from device memory, so consecutive steps match),
     * else a graph captured from them now (updated in place of the old one where it can be).
     */
    private void endCapture() {
        if (!capturing) {
            return;
        }
        capturing = false;
        if (graphExec == null || !stepOps.equals(graphOps)) {
            captureStep();
        } else {
            graphReplays++;
        }
        cu.memsetD32Async(stepIds, stepToken, 1, stream);
        cu.memsetD32Async(stepPosition, stepPos, 1, stream);
        cu.graphLaunch(graphExec, stream);
        if (!freeAfterCapture.isEmpty()) {
            cu.streamSynchronize(stream);
            for (long p : freeAfterCapture) {
                free(p);
            }
            freeAfterCapture.clear();
        }
    }

    /** Captures the recorded step into a CUDA graph and makes it the one {@link #graphExec} runs. */
    private void captureStep() {
        MemorySegment graph;
        try {
            cu.streamBeginCapture(stream);
            for (StepOp op : stepOps) {
                switch (op) {
                    case LaunchOp l -> issue(l.name(), l.gx(), l.gy(), l.gz(), l.block(), l.args().toArray());
                    case CopyOp c -> cu.copyDtoDAsync(c.dst(), c.src(), c.bytes(), stream);
                }
            }
            graph = cu.streamEndCapture(stream);
        } catch (CudaException e) {
            graphs = false;
            throw new IllegalStateException("the CUDA graph capture of a decode step failed (" + e.getMessage()
                    + "); graphs are now off for this backend (-Djcascade.cuda.graphs=false keeps them off)", e);
        }
        try {
            if (graphExec == null || !cu.graphExecUpdate(graphExec, graph)) {
                if (graphExec != null) {
                    cu.graphExecDestroy(graphExec);
                    graphExec = null;
                }
                graphExec = cu.graphInstantiate(graph);
            }
        } finally {
            cu.graphDestroy(graph);
        }
        graphOps = List.copyOf(stepOps);
        graphCaptures++;
    }

    /**
     * Decode steps run as a replay of the held graph, and as a newly captured one, since this
     * backend was opened (diagnostics: with graphs on, consecutive decode steps should replay).
     */
    public synchronized long[] graphLaunches() {
        return new long[] {graphReplays, graphCaptures};
    }

    private long alloc(long bytes) {
        if (!capturing) { // cuMemFree synchronizes, which a capture forbids
            freeUnreachable();
        }
        long p = cu.memAlloc(Math.max(bytes, 4));
        allocations.add(p);
        return p;
    }

    private void free(long p) {
        if (allocations.remove(p)) {
            cu.memFree(p);
        }
    }

    private void freeUnreachable() {
        Long p;
        while ((p = unreachable.poll()) != null) {
            free(p);
        }
    }

    /** A device buffer that grows to the largest size asked of it. */
    private final class ScratchBuffer {
        long ptr;
        long bytes;

        long atLeast(long need) {
            if (need > bytes) {
                if (ptr != 0 && capturing) {
                    freeAfterCapture.add(ptr); // the step's captured kernels read it; no sync in a capture
                } else if (ptr != 0) {
                    cu.streamSynchronize(stream); // queued kernels may still read the old buffer
                    free(ptr);
                }
                bytes = Math.max(need, bytes * 2);
                ptr = alloc(bytes);
            }
            return ptr;
        }
    }

    private MemorySegment staging(long bytes) {
        if (hostStaging == null || hostStaging.byteSize() < bytes) {
            hostStaging = arena.allocate(Math.max(bytes, 4096), 64);
        }
        return hostStaging;
    }

    static final class CudaTensor implements Tensor {
        final long ptr;
        final int size;
        final CudaBackend owner;

        CudaTensor(long ptr, int size, CudaBackend owner) {
            this.ptr = ptr;
            this.size = size;
            this.owner = owner;
        }

        @Override
        public int size() {
            return size;
        }
    }

    static final class CudaWeight implements Weight {
        final long ptr;
        final GgmlType type;
        final int rows;
        final int cols;
        final long rowBytes;

        CudaWeight(long ptr, GgmlType type, int rows, int cols, long rowBytes) {
            this.ptr = ptr;
            this.type = type;
            this.rows = rows;
            this.cols = cols;
            this.rowBytes = rowBytes;
        }

        @Override
        public int rows() {
            return rows;
        }

        @Override
        public int cols() {
            return cols;
        }
    }

    static final class CudaKvCache implements KvCache {
        final long keys;   // half, [layer][pos][kvDim]
        final long values;
        final int layers;
        final int capacity;
        final int kvDim;

        CudaKvCache(long keys, long values, int layers, int capacity, int kvDim) {
            this.keys = keys;
            this.values = values;
            this.layers = layers;
            this.capacity = capacity;
            this.kvDim = kvDim;
        }

        @Override
        public int capacity() {
            return capacity;
        }

        long layerOffset(int layer) {
            return (long) layer * capacity * kvDim * 2;
        }
    }

    private <T> T track(T handle, long... ptrs) {
        for (long p : ptrs) {
            CLEANER.register(handle, () -> unreachable.add(p));
        }
        return handle;
    }

    /**
     * The name ending of the {@code matmul_*} and {@code embed_*} kernels of {@code type} in
     * {@code jcascade.cu} (launched by name); null for a type without kernels.
     */
    static String kernelSuffix(GgmlType type) {
        return switch (type) {
            case F32 -> "f32";
            case F16 -> "f16";
            case BF16 -> "bf16";
            case Q8_0 -> "q8_0";
            case Q4_0 -> "q4_0";
            case Q4_K -> "q4_k";
            case Q5_K -> "q5_k";
            case Q6_K -> "q6_k";
            case Q3_K -> "q3_k";
            case Q2_K -> "q2_k";
            default -> null;
        };
    }

    /** Whether products of quantized weights take 8-bit activations here where a kernel exists ({@link #open(int, boolean)}). */
    public boolean int8Activations() {
        return int8Activations;
    }

    /**
     * Whether a one-token product of {@code type} takes 8-bit activations on this backend; else
     * float ones. Tests pick their reference by it.
     */
    public boolean decodesWithInt8(GgmlType type) {
        return MATVEC && int8Activations && matvecQ8Suffix(type) != null;
    }

    /**
     * Whether a product of {@code type} over {@code nTokens} tokens takes 8-bit activations on this
     * backend (one token: {@link #decodesWithInt8}; a prompt: Q8_0, Q4_0, Q4_K and Q6_K on the
     * tensor cores);
     * else float ones. Tests pick their reference by it:
     *
     * <pre>{@code
     * CpuKernels ref = gpu.multipliesWithInt8(w.type(), n) ? ScalarKernels.int8Activations() : new ScalarKernels();
     * }</pre>
     */
    public boolean multipliesWithInt8(GgmlType type, int nTokens) {
        if (nTokens == 1) {
            return decodesWithInt8(type);
        }
        return MMA && int8Activations && mmqSuffix(type) != null;
    }

    /** The name ending of the tensor-core prompt kernel {@code mmq_*} of {@code type}; null where it has none. */
    static String mmqSuffix(GgmlType type) {
        return switch (type) {
            case Q8_0, Q4_0, Q4_K, Q6_K -> kernelSuffix(type);
            default -> null;
        };
    }

    /** The decode kernels' name ending for {@code type} on the 8-bit activation path; null where it has none. */
    static String matvecQ8Suffix(GgmlType type) {
        return switch (type) {
            case Q8_0, Q4_0, Q4_K, Q6_K -> kernelSuffix(type) + "_q8";
            default -> null;
        };
    }

    /** The decode kernels' name ending for {@code type} on this backend's activation path. */
    private String decodeSuffix(GgmlType type) {
        String q8 = int8Activations ? matvecQ8Suffix(type) : null;
        return q8 != null ? q8 : matvecSuffix(type);
    }

    /**
     * The activations the decode kernel {@code suffix} of {@code type} reads: {@code x} itself, or
     * for an 8-bit kernel {@code x} quantized ({@link #quantizedFor}).
     */
    private long decodeInput(String suffix, GgmlType type, CudaTensor x, int cols) {
        return suffix.endsWith("_q8") ? quantizedFor(type, x, cols, 1) : x.ptr;
    }

    /** Whether {@code type}'s 8-bit kernels take Q8_K activations (else Q8_0 ones). */
    private static boolean takesQ8K(GgmlType type) {
        return type == GgmlType.Q4_K || type == GgmlType.Q6_K;
    }

    /**
     * {@code nTokens} rows of {@code x} in the 8-bit layout {@code type}'s kernels read: Q8_K
     * ({@code quantize_q8k}, in a buffer of its own: {@code q[n][cols] | d[n][cols/256] |
     * s[n][cols/32]}) for the K-quants, else Q8_0 ({@link #quantized}).
     */
    private long quantizedFor(GgmlType type, CudaTensor x, int cols, int nTokens) {
        if (!takesQ8K(type)) {
            return quantized(x, cols, nTokens);
        }
        long act = activationsK.atLeast((long) nTokens * (cols + 4L * (cols / 256) + 4L * (cols / 32)));
        launch("quantize_q8k", ceilDiv(cols / 256, MV_WARPS), nTokens, 1, MV_WARPS * 32, x.ptr, cols, act);
        return act;
    }

    /**
     * {@code nTokens} rows of {@code x} in the 8-bit activation layout ({@code quantize_q8}:
     * {@code q[n][cols] | d[n][cols/32] | s[n][cols/32]}), quantized now unless the operation just
     * before this one (an {@link #rmsNorm} or {@link #attention} into {@code x}) left them in
     * {@link #activations8}.
     */
    private long quantized(CudaTensor x, int cols, int nTokens) {
        long act = activations8.atLeast((long) nTokens * (cols + 8L * (cols / 32)));
        if (quantizedOp == ops - 1 && quantizedFrom == x.ptr && quantizedCols == cols && quantizedTokens == nTokens) {
            return act;
        }
        launch("quantize_q8", ceilDiv(cols / 32, MV_WARPS), nTokens, 1, MV_WARPS * 32, x.ptr, cols, act);
        return act;
    }

    /** Records that this operation left the quantization of {@code nTokens} rows of {@code x} in {@link #activations8}. */
    private void markQuantized(CudaTensor x, int cols, int nTokens) {
        quantizedFrom = x.ptr;
        quantizedCols = cols;
        quantizedTokens = nTokens;
        quantizedOp = ops;
    }

    /**
     * A product of several tokens' 8-bit activations: {@code out = W act} for {@code act} from
     * {@link #quantized}. Up to {@link #MMV_MAX_TOKENS} tokens (sequences decoded together) with
     * the decode kernels' lanes ({@code mmv_*}: each token's output is the one it gets alone);
     * more, a prompt, on the tensor cores ({@code mmq_*}).
     */
    private void mmq(CudaWeight m, long act, CudaTensor out, int nTokens) {
        checkRange(out, 0, nTokens * m.rows);
        if (nTokens <= MMV_MAX_TOKENS && MATVEC) {
            launch("mmv_" + mmqSuffix(m.type), ceilDiv(m.rows, MV_WARPS), 1, 1, MV_WARPS * 32,
                    m.ptr, m.rowBytes, m.rows, m.cols, act, out.ptr, nTokens);
            return;
        }
        launch("mmq_" + mmqSuffix(m.type), ceilDiv(nTokens, MMQ_TILE), ceilDiv(m.rows, MMQ_TILE), 1, MMQ_WARPS * 32,
                m.ptr, m.rowBytes, m.rows, m.cols, act, out.ptr, nTokens);
    }

    /** The name ending of the decode kernel {@code matvec_*} of {@code type}; null where it has none. */
    static String matvecSuffix(GgmlType type) {
        return switch (type) {
            case Q8_0, Q4_0, Q4_K, Q6_K -> kernelSuffix(type);
            default -> null;
        };
    }

    @Override
    public synchronized Weight weight(WeightMatrix matrix) {
        enterHost();
        if (matrix.rows() == 1) {
            // A norm's weights: dequantized once to float32, as the CPU backend does.
            float[] v = new float[matrix.cols()];
            new ScalarKernels().dequantizeRow(matrix, 0, v, 0);
            long p = alloc(4L * v.length);
            MemorySegment host = staging(4L * v.length);
            MemorySegment.copy(v, 0, host, ValueLayout.JAVA_FLOAT, 0, v.length);
            cu.copyHtoD(p, host, 4L * v.length);
            return track(new CudaWeight(p, GgmlType.F32, 1, matrix.cols(), 4L * matrix.cols()), p);
        }
        if (kernelSuffix(matrix.type()) == null) {
            throw new UnsupportedOperationException("the CUDA backend does not run " + matrix.type()
                    + " weights yet (supported: F32, F16, BF16, Q8_0, Q4_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
        }
        long bytes = matrix.rowBytes() * matrix.rows();
        long p = alloc(bytes);
        MemorySegment src = matrix.data().asSlice(0, bytes);
        if (src.isNative()) {
            cu.copyHtoD(p, src, bytes);
        } else {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment tmp = a.allocate(bytes, 64);
                tmp.copyFrom(src);
                cu.copyHtoD(p, tmp, bytes);
            }
        }
        return track(new CudaWeight(p, matrix.type(), matrix.rows(), matrix.cols(), matrix.rowBytes()), p);
    }

    @Override
    public synchronized Tensor tensor(int size) {
        enterHost();
        long p = alloc(4L * size);
        cu.memsetD32Async(p, 0, Math.max(size, 1), stream); // zeroed, like the CPU's new float[]
        return track(new CudaTensor(p, size, this), p);
    }

    @Override
    public synchronized KvCache kvCache(int layers, int capacity, int kvDim) {
        enterHost();
        long halves = Math.multiplyExact(Math.multiplyExact((long) layers, capacity), kvDim);
        long keys = alloc(2 * halves + 4); // + 4: the memset below works in 32-bit words
        long values = alloc(2 * halves + 4);
        cu.memsetD32Async(keys, 0, (halves + 1) / 2, stream);
        cu.memsetD32Async(values, 0, (halves + 1) / 2, stream);
        return track(new CudaKvCache(keys, values, layers, capacity, kvDim), keys, values);
    }

    @Override
    public synchronized void read(Tensor src, int srcOffset, float[] dst, int dstOffset, int length) {
        enterHost();
        CudaTensor t = tensor(src);
        checkRange(t, srcOffset, length);
        MemorySegment host = staging(4L * length);
        cu.copyDtoHAsync(host, t.ptr + 4L * srcOffset, 4L * length, stream);
        cu.streamSynchronize(stream);
        MemorySegment.copy(host, ValueLayout.JAVA_FLOAT, 0, dst, dstOffset, length);
    }

    /** Copies {@code src[0..length)} from the host into the tensor at {@code dstOffset} (for tests and tools). */
    public synchronized void write(float[] src, int srcOffset, Tensor dst, int dstOffset, int length) {
        enterHost();
        CudaTensor t = tensor(dst);
        checkRange(t, dstOffset, length);
        MemorySegment host = staging(4L * length);
        MemorySegment.copy(src, srcOffset, host, ValueLayout.JAVA_FLOAT, 0, length);
        cu.copyHtoDAsync(t.ptr + 4L * dstOffset, host, 4L * length, stream);
        cu.streamSynchronize(stream);
    }

    /** Fills the first {@code length} floats of the tensor with {@code value} (tests poison outputs with NaN). */
    public synchronized void fill(Tensor dst, int length, float value) {
        enterHost();
        CudaTensor t = tensor(dst);
        checkRange(t, 0, length);
        cu.memsetD32Async(t.ptr, Float.floatToRawIntBits(value), length, stream);
    }

    @Override
    public synchronized void embed(Weight table, int[] tokens, int n, Tensor out) {
        enter();
        CudaWeight w = weight(table);
        CudaTensor o = tensor(out);
        checkRange(o, 0, n * w.cols);
        MemorySegment host = staging(4L * n);
        for (int t = 0; t < n; t++) {
            if (tokens[t] < 0 || tokens[t] >= w.rows) {
                throw new IllegalArgumentException("token id " + tokens[t] + " is outside the vocabulary of " + w.rows);
            }
            host.setAtIndex(ValueLayout.JAVA_INT, t, tokens[t]);
        }
        long ids = tokensDev.atLeast(4L * n);
        if (n != 1 || capturing) {
            endCapture();
        }
        if (n == 1 && graphs) {
            // A decode step begins (see useGraphs): the token goes to the device just before the
            // step's graph runs; the embedding reads it from there.
            if (stepPosition == 0) {
                stepPosition = alloc(4);
            }
            stepIds = ids;
            beginCapture(tokens[0]);
        } else {
            cu.copyHtoDAsync(ids, host, 4L * n, stream); // pageable: the host buffer is free again on return
        }
        launch("embed_" + kernelSuffix(w.type), ceilDiv(w.cols, 256), n, 1, 256,
                w.ptr, w.rowBytes, w.cols, ids, o.ptr);
    }

    @Override
    public synchronized void rmsNorm(Tensor x, Weight norm, Tensor out, int nTokens, float eps) {
        enter();
        CudaWeight w = weight(norm);
        CudaTensor xs = tensor(x);
        CudaTensor os = tensor(out);
        checkRange(xs, 0, nTokens * w.cols);
        checkRange(os, 0, nTokens * w.cols);
        if (int8Activations && (MATVEC || MMA) && w.cols % 32 == 0) {
            // The product after a norm takes its input in 8 bits (Q8_0/Q4_0 weights): quantize it
            // here, in the same pass, and let that product skip quantize_q8 (see quantized()).
            long act = activations8.atLeast((long) nTokens * (w.cols + 8L * (w.cols / 32)));
            launch("rms_norm_q8", nTokens, 1, 1, 256, xs.ptr, w.ptr, os.ptr, w.cols, eps, act);
            markQuantized(os, w.cols, nTokens);
            return;
        }
        launch("rms_norm", nTokens, 1, 1, 256, xs.ptr, w.ptr, os.ptr, w.cols, eps);
    }

    @Override
    public synchronized void matmul(Weight w, Tensor x, Tensor out, int nTokens) {
        enter();
        CudaWeight m = weight(w);
        CudaTensor xs = tensor(x);
        CudaTensor os = tensor(out);
        checkRange(xs, 0, nTokens * m.cols);
        checkRange(os, 0, nTokens * m.rows);
        String matvec = decodeSuffix(m.type);
        if (nTokens == 1 && MATVEC && matvec != null) {
            // Rows are whole blocks (cols % 32, % 256 for K-quants) and start 16-aligned, as the
            // 16-byte loads of matvec_q4_k need: cuMemAlloc aligns to 256 and rows are 144 n bytes.
            long in = decodeInput(matvec, m.type, xs, m.cols);
            launch("matvec_" + matvec, ceilDiv(m.rows, MV_WARPS), 1, 1, MV_WARPS * 32, m.ptr, m.rowBytes, m.rows,
                    m.cols, in, os.ptr, 0);
            return;
        }
        if (nTokens > 1 && multipliesWithInt8(m.type, nTokens)) {
            // the 4-byte fragment loads need cols % 32 == 0, which every Q8_0/Q4_0 row has
            mmq(m, quantizedFor(m.type, xs, m.cols, nTokens), os, nTokens);
            return;
        }
        launch("matmul_" + kernelSuffix(m.type), ceilDiv(m.rows, MM_WARPS), ceilDiv(nTokens, MM_TOKENS), 1,
                MM_WARPS * 32, m.ptr, m.rowBytes, m.rows, m.cols, xs.ptr, os.ptr, nTokens);
    }

    @Override
    public synchronized void rope(Tensor x, int nHeads, int headDim, Rope rope, int startPos, int nTokens) {
        enter();
        CudaTensor xs = tensor(x);
        checkRange(xs, 0, nTokens * nHeads * headDim);
        launchRope(xs.ptr, nHeads, 0L, 0, headDim, rope, startPos, nTokens);
    }

    /** {@code rope_qk} on {@code nq} heads at {@code q} and {@code nk} heads at {@code k} (0: none). */
    private void launchRope(long q, int nq, long k, int nk, int headDim, Rope rope, int startPos, int nTokens) {
        long total = (long) nTokens * (nq + nk) * (rope.dims() / 2);
        launch("rope_qk", Math.toIntExact(ceilDiv(total, 256)), 1, 1, 256, q, nq, k, nk, headDim, rope.dims(), startPos,
                nTokens, ropeThetaScale(rope), ropeFactorsOnDevice(rope), rope.neox() ? 1 : 0, rope.freqScale(),
                rope.attnFactor());
    }

    /** theta_i = pos * base^(-2i/dims), stepped by this factor as the CPU does. */
    private static float ropeThetaScale(Rope rope) {
        return (float) Math.pow(rope.freqBase(), (double) (-2.0f / rope.dims()));
    }

    /** The device copy of the rope's frequency factors (uploaded once), or 0 where it has none. */
    private long ropeFactorsOnDevice(Rope rope) {
        if (rope.freqFactors() == null) {
            return 0;
        }
        return ropeFactors.computeIfAbsent(rope.freqFactors(), f -> {
            long p = alloc(4L * f.length);
            MemorySegment host = staging(4L * f.length);
            MemorySegment.copy(f, 0, host, ValueLayout.JAVA_FLOAT, 0, f.length);
            cu.copyHtoD(p, host, 4L * f.length);
            return p;
        });
    }

    @Override
    public synchronized void attention(Tensor q, Tensor k, Tensor v, KvCache cache, int layer, Tensor out,
            int nHeads, int nKvHeads, int headDim, int startPos, int nTokens, float qScale, float kqScale) {
        attention(q, k, v, cache, layer, out, nHeads, nKvHeads, headDim, null, startPos, nTokens, qScale, kqScale);
    }

    /** One token over up to 1024 positions: RoPE inside {@code attn_decode}; else {@code rope_qk}, then attention. */
    @Override
    public synchronized void ropeAndAttention(Tensor q, Tensor k, Tensor v, KvCache cache, int layer, Tensor out,
            int nHeads, int nKvHeads, int headDim, Rope rope, int startPos, int nTokens, float qScale, float kqScale) {
        if (!oneKernelAttention(startPos, nTokens)) {
            Backend.super.ropeAndAttention(q, k, v, cache, layer, out, nHeads, nKvHeads, headDim, rope, startPos, nTokens,
                    qScale, kqScale);
            return;
        }
        attention(q, k, v, cache, layer, out, nHeads, nKvHeads, headDim, rope, startPos, nTokens, qScale, kqScale);
    }

    private boolean oneKernelAttention(int startPos, int nTokens) {
        return nTokens == 1 && startPos + 1 <= Math.min(fusedAttentionMax, ATT_FUSED_MAX);
    }

    /** {@code attn_decode} for one token: q, k, v and out are device addresses (a row of a batch, say). */
    private void launchAttnDecode(long q, long k, long v, long keys, long values, long out, int nHeads, int nKvHeads,
            int headDim, int startPos, long posDev, float qScale, float kqScale, long act, Rope rope) {
        launch("attn_decode", nHeads, 1, 1, 256, q, k, v, keys, values, out, nHeads, nKvHeads, headDim, startPos,
                qScale, kqScale, act, posDev, rope == null ? 0 : rope.dims(), rope == null ? 0f : ropeThetaScale(rope),
                rope == null ? 0L : ropeFactorsOnDevice(rope), rope != null && rope.neox() ? 1 : 0,
                rope == null ? 1f : rope.freqScale(), rope == null ? 1f : rope.attnFactor());
    }

    /**
     * Sequences decoding together: {@code attn_decode} on each row where it is (no copies), while
     * every position is within the one-kernel attention's reach; else the default's copies into
     * the chunked kernels. The output's quantization is left to the next product.
     */
    @Override
    public synchronized void ropeAndAttentionRows(Tensor q, Tensor k, Tensor v, KvCache[] caches, int[] positions,
            int n, int layer, Tensor out, int nHeads, int nKvHeads, int headDim, Rope rope, float qScale,
            float kqScale, RowScratch scratch) {
        boolean oneKernel = headDim <= ATT_MAX_HEAD_DIM;
        for (int i = 0; i < n; i++) {
            oneKernel &= oneKernelAttention(positions[i], 1) && positions[i] < ((CudaKvCache) caches[i]).capacity;
        }
        if (!oneKernel) {
            Backend.super.ropeAndAttentionRows(q, k, v, caches, positions, n, layer, out, nHeads, nKvHeads, headDim,
                    rope, qScale, kqScale, scratch);
            return;
        }
        enter();
        int qDim = nHeads * headDim;
        int kvDim = nKvHeads * headDim;
        CudaTensor qs = tensor(q);
        CudaTensor ks = tensor(k);
        CudaTensor vs = tensor(v);
        CudaTensor os = tensor(out);
        checkRange(qs, 0, n * qDim);
        checkRange(ks, 0, n * kvDim);
        checkRange(vs, 0, n * kvDim);
        checkRange(os, 0, n * qDim);
        for (int i = 0; i < n; i++) {
            CudaKvCache c = (CudaKvCache) caches[i];
            launchAttnDecode(qs.ptr + 4L * i * qDim, ks.ptr + 4L * i * kvDim, vs.ptr + 4L * i * kvDim,
                    c.keys + c.layerOffset(layer), c.values + c.layerOffset(layer), os.ptr + 4L * i * qDim, nHeads,
                    nKvHeads, headDim, positions[i], 0L, qScale, kqScale, 0L, rope);
        }
    }

    /** Attention; {@code rope} non-null only where {@link #oneKernelAttention} holds (the kernel rotates q and k). */
    private void attention(Tensor q, Tensor k, Tensor v, KvCache cache, int layer, Tensor out, int nHeads,
            int nKvHeads, int headDim, Rope rope, int startPos, int nTokens, float qScale, float kqScale) {
        enter();
        if (rope != null && !oneKernelAttention(startPos, nTokens)) {
            throw new IllegalStateException("RoPE inside attention is for one token over up to "
                    + ATT_FUSED_MAX + " positions");
        }
        CudaKvCache c = (CudaKvCache) cache;
        int kvDim = nKvHeads * headDim;
        if (startPos + nTokens > c.capacity) {
            throw new IllegalStateException("KV cache holds " + c.capacity + " positions, asked to fill up to "
                    + (startPos + nTokens));
        }
        if (headDim > ATT_MAX_HEAD_DIM) {
            throw new UnsupportedOperationException("the CUDA attention kernel handles heads of up to "
                    + ATT_MAX_HEAD_DIM + " dimensions, not " + headDim);
        }
        CudaTensor qs = tensor(q);
        CudaTensor ks = tensor(k);
        CudaTensor vs = tensor(v);
        CudaTensor os = tensor(out);
        checkRange(qs, 0, nTokens * nHeads * headDim);
        checkRange(ks, 0, nTokens * kvDim);
        checkRange(vs, 0, nTokens * kvDim);
        checkRange(os, 0, nTokens * nHeads * headDim);
        long keys = c.keys + c.layerOffset(layer);
        long values = c.values + c.layerOffset(layer);
        int maxLen = startPos + nTokens;
        int cols = nHeads * headDim;
        // The output projection takes its input in 8 bits (Q8_0/Q4_0): the kernel that writes the
        // output quantizes it too, a warp's 32 outputs being one block (see quantized()).
        long act = int8Activations && (MATVEC || MMA) && headDim % 32 == 0
                ? activations8.atLeast((long) nTokens * (cols + 8L * (cols / 32))) : 0L;
        if (oneKernelAttention(startPos, nTokens)) {
            // In a recorded decode step the position is read from the device (stepPosition), so
            // that the next step's operations are the same and its graph can be replayed.
            long posDev = capturing ? stepPosition : 0L;
            if (capturing) {
                stepPos = startPos;
            }
            launchAttnDecode(qs.ptr, ks.ptr, vs.ptr, keys, values, os.ptr, nHeads, nKvHeads, headDim,
                    capturing ? 0 : startPos, posDev, qScale, kqScale, act, rope);
            if (act != 0) {
                markQuantized(os, cols, nTokens);
            }
            return;
        }
        long n = (long) nTokens * kvDim;
        launch("kv_store", Math.toIntExact(ceilDiv(n, 256)), 1, 1, 256, ks.ptr, vs.ptr, keys, values, kvDim,
                startPos, nTokens);
        int chunks = ceilDiv(maxLen, ATT_CHUNK);
        long sc = scores.atLeast(4L * nTokens * nHeads * maxLen);
        launch("attn_scores", chunks, nHeads, nTokens, ATT_THREADS, qs.ptr, keys, sc, nHeads, nKvHeads, headDim,
                startPos, nTokens, qScale, kqScale);
        launch("attn_softmax", nHeads, nTokens, 1, 256, sc, nHeads, startPos, nTokens);
        long part = chunks > 1 ? partial.atLeast(4L * nTokens * nHeads * chunks * headDim) : 0L;
        launch("attn_values", chunks, nHeads, nTokens, ATT_THREADS, sc, values, part, os.ptr, nHeads, nKvHeads,
                headDim, startPos, nTokens, chunks == 1 ? act : 0L);
        if (chunks > 1) {
            launch("attn_reduce", nHeads, nTokens, 1, Math.min(headDim, 256) + 31 & ~31, part, os.ptr, nHeads,
                    headDim, chunks, act);
        }
        if (act != 0) {
            markQuantized(os, cols, nTokens);
        }
    }

    /** One token with a decode kernel: {@code y += W x} in the product's own store ({@code matvec_*} with add); else the two steps. */
    @Override
    public synchronized void matmulAdd(Weight w, Tensor x, Tensor tmp, Tensor y, int nTokens) {
        enter();
        CudaWeight m = weight(w);
        String matvec = decodeSuffix(m.type);
        if (nTokens > 1 && multipliesWithInt8(m.type, nTokens)) {
            // a prompt: the product on the tensor cores (taking the attention's quants), then the add
            CudaTensor xs = tensor(x);
            CudaTensor ts = tensor(tmp);
            CudaTensor ys = tensor(y);
            checkRange(xs, 0, nTokens * m.cols);
            checkRange(ys, 0, nTokens * m.rows);
            mmq(m, quantizedFor(m.type, xs, m.cols, nTokens), ts, nTokens);
            long n = (long) nTokens * m.rows;
            launch("add", Math.toIntExact(ceilDiv(n, 256)), 1, 1, 256, ts.ptr, ys.ptr, n);
            return;
        }
        if (nTokens != 1 || !MATVEC || matvec == null) {
            Backend.super.matmulAdd(w, x, tmp, y, nTokens);
            return;
        }
        CudaTensor xs = tensor(x);
        CudaTensor ys = tensor(y);
        checkRange(xs, 0, m.cols);
        checkRange(ys, 0, m.rows);
        long in = decodeInput(matvec, m.type, xs, m.cols);
        launch("matvec_" + matvec, ceilDiv(m.rows, MV_WARPS), 1, 1, MV_WARPS * 32, m.ptr, m.rowBytes, m.rows, m.cols,
                in, ys.ptr, 1);
    }

    /** The query and key heads in one launch ({@code rope_qk}). */
    @Override
    public synchronized void ropeQk(Tensor q, int nHeads, Tensor k, int nKvHeads, int headDim, Rope rope, int startPos,
            int nTokens) {
        enter();
        CudaTensor qs = tensor(q);
        CudaTensor ks = tensor(k);
        checkRange(qs, 0, nTokens * nHeads * headDim);
        checkRange(ks, 0, nTokens * nKvHeads * headDim);
        launchRope(qs.ptr, nHeads, ks.ptr, nKvHeads, headDim, rope, startPos, nTokens);
    }

    /** One token, one type: the three products in one launch ({@code matvec3_*}); a prompt of Q8_0/Q4_0: one quantization, three tensor-core products; else three products. */
    @Override
    public synchronized void matmulQkv(Weight wq, Weight wk, Weight wv, Tensor x, Tensor q, Tensor k, Tensor v,
            int nTokens) {
        enter();
        CudaWeight a = weight(wq);
        CudaWeight b = weight(wk);
        CudaWeight c = weight(wv);
        String matvec = decodeSuffix(a.type);
        if (nTokens > 1 && multipliesWithInt8(a.type, nTokens) && multipliesWithInt8(b.type, nTokens)
                && multipliesWithInt8(c.type, nTokens) && b.cols == a.cols && c.cols == a.cols
                && takesQ8K(b.type) == takesQ8K(a.type) && takesQ8K(c.type) == takesQ8K(a.type)) {
            CudaTensor xs = tensor(x);
            checkRange(xs, 0, nTokens * a.cols);
            long act = quantizedFor(a.type, xs, a.cols, nTokens);
            mmq(a, act, tensor(q), nTokens);
            mmq(b, act, tensor(k), nTokens);
            mmq(c, act, tensor(v), nTokens);
            return;
        }
        if (nTokens != 1 || !MATVEC || matvec == null || b.type != a.type || c.type != a.type || b.cols != a.cols
                || c.cols != a.cols) {
            Backend.super.matmulQkv(wq, wk, wv, x, q, k, v, nTokens);
            return;
        }
        CudaTensor xs = tensor(x);
        CudaTensor qs = tensor(q);
        CudaTensor ks = tensor(k);
        CudaTensor vs = tensor(v);
        checkRange(xs, 0, a.cols);
        checkRange(qs, 0, a.rows);
        checkRange(ks, 0, b.rows);
        checkRange(vs, 0, c.rows);
        long in = decodeInput(matvec, a.type, xs, a.cols);
        launch("matvec3_" + matvec, ceilDiv(a.rows + b.rows + c.rows, MV_WARPS), 1, 1, MV_WARPS * 32, a.ptr, b.ptr,
                c.ptr, a.rowBytes, a.rows, b.rows, c.rows, a.cols, in, qs.ptr, ks.ptr, vs.ptr);
    }

    /**
     * One token, one type: gate, up and SwiGLU in one launch ({@code matvec_swiglu_*}), which leaves
     * {@code upOut} unwritten (it is scratch); else the two products and {@link #swiglu}.
     */
    @Override
    public synchronized void ffnGateUp(Weight gate, Weight up, Tensor x, Tensor out, Tensor upOut, int nTokens) {
        enter();
        CudaWeight g = weight(gate);
        CudaWeight u = weight(up);
        String matvec = decodeSuffix(g.type);
        if (nTokens > 1 && multipliesWithInt8(g.type, nTokens) && multipliesWithInt8(u.type, nTokens)
                && u.rows == g.rows && u.cols == g.cols && takesQ8K(u.type) == takesQ8K(g.type)) {
            CudaTensor xs = tensor(x);
            CudaTensor os = tensor(out);
            CudaTensor us = tensor(upOut);
            checkRange(xs, 0, nTokens * g.cols);
            long act = quantizedFor(g.type, xs, g.cols, nTokens);
            mmq(g, act, os, nTokens);
            mmq(u, act, us, nTokens);
            long n = (long) nTokens * g.rows;
            launch("swiglu", Math.toIntExact(ceilDiv(n, 256)), 1, 1, 256, os.ptr, us.ptr, os.ptr, n);
            return;
        }
        if (nTokens != 1 || !MATVEC || matvec == null || u.type != g.type || u.rows != g.rows || u.cols != g.cols) {
            Backend.super.ffnGateUp(gate, up, x, out, upOut, nTokens);
            return;
        }
        CudaTensor xs = tensor(x);
        CudaTensor os = tensor(out);
        checkRange(xs, 0, g.cols);
        checkRange(os, 0, g.rows);
        long in = decodeInput(matvec, g.type, xs, g.cols);
        launch("matvec_swiglu_" + matvec, ceilDiv(g.rows, MV_WARPS), 1, 1, MV_WARPS * 32, g.ptr, u.ptr, g.rowBytes,
                g.rows, g.cols, in, os.ptr);
    }

    @Override
    public synchronized void swiglu(Tensor gate, Tensor up, Tensor out, int n) {
        enter();
        CudaTensor g = tensor(gate);
        CudaTensor u = tensor(up);
        CudaTensor o = tensor(out);
        checkRange(g, 0, n);
        checkRange(u, 0, n);
        checkRange(o, 0, n);
        launch("swiglu", ceilDiv(n, 256), 1, 1, 256, g.ptr, u.ptr, o.ptr, (long) n);
    }

    @Override
    public synchronized void add(Tensor x, Tensor y, int n) {
        enter();
        CudaTensor xs = tensor(x);
        CudaTensor ys = tensor(y);
        checkRange(xs, 0, n);
        checkRange(ys, 0, n);
        launch("add", ceilDiv(n, 256), 1, 1, 256, xs.ptr, ys.ptr, (long) n);
    }

    @Override
    public synchronized void copy(Tensor src, int srcOffset, Tensor dst, int dstOffset, int length) {
        enter();
        CudaTensor s = tensor(src);
        CudaTensor d = tensor(dst);
        checkRange(s, srcOffset, length);
        checkRange(d, dstOffset, length);
        if (length == 0) {
            return;
        }
        if (capturing) {
            stepOps.add(new CopyOp(d.ptr + 4L * dstOffset, s.ptr + 4L * srcOffset, 4L * length));
        } else {
            cu.copyDtoDAsync(d.ptr + 4L * dstOffset, s.ptr + 4L * srcOffset, 4L * length, stream);
        }
    }

    /** On the device ({@code select_tokens} with k = 1): 76 bytes cross the bus, not the logits. */
    @Override
    public synchronized int argmax(Tensor x, int n) {
        selectTokens(x, n, 1, 1f, NO_IDS, 0, greedyChoice);
        return greedyChoice.id(0);
    }

    /**
     * On the device for up to {@link #MAX_DEVICE_CANDIDATES} candidates ({@code penalise} on a
     * copy of the logits when a penalty applies, then {@code select_tokens}): the step's
     * statistics and k candidates cross the bus (64 + 12k bytes), not the logits. More candidates
     * read the logits back and select on the host.
     */
    @Override
    public synchronized void selectTokens(Tensor logits, int n, int k, float penalty, int[] penalisedIds,
            int penalisedCount, TokenCandidates out) {
        TokenCandidates.checkRequest(n, k, penalisedIds, penalisedCount);
        int m = Math.min(k, n);
        if (m > MAX_DEVICE_CANDIDATES) {
            Backend.super.selectTokens(logits, n, k, penalty, penalisedIds, penalisedCount, out);
            return;
        }
        enterHost();
        CudaTensor l = tensor(logits);
        checkRange(l, 0, n);
        long resultBytes = 64 + 12L * m;
        MemorySegment host = staging(Math.max(resultBytes, 4L * penalisedCount));
        long pen = l.ptr;
        if (penalty != 1f && penalisedCount > 0) {
            pen = penalisedLogits.atLeast(4L * n);
            long ids = penalisedTokens.atLeast(4L * penalisedCount);
            MemorySegment.copy(penalisedIds, 0, host, ValueLayout.JAVA_INT, 0, penalisedCount);
            cu.copyHtoDAsync(ids, host, 4L * penalisedCount, stream); // pageable: host is free again on return
            cu.copyDtoDAsync(pen, l.ptr, 4L * n, stream);
            launch("penalise", ceilDiv(penalisedCount, 256), 1, 1, 256, l.ptr, pen, ids, penalisedCount, penalty);
        }
        long res = choice.atLeast(resultBytes);
        launch("select_tokens", 1, 1, 1, 1024, l.ptr, pen, n, m, res);
        cu.copyDtoHAsync(host, res, resultBytes, stream);
        cu.streamSynchronize(stream);
        int id1 = host.get(ValueLayout.JAVA_INT, 0);
        if (id1 < 0) {
            throw new IllegalArgumentException("all logits are NaN");
        }
        out.stats().set(host.get(ValueLayout.JAVA_DOUBLE, 16), host.get(ValueLayout.JAVA_DOUBLE, 24),
                host.get(ValueLayout.JAVA_DOUBLE, 32), id1, host.get(ValueLayout.JAVA_DOUBLE, 40),
                host.get(ValueLayout.JAVA_INT, 4), host.get(ValueLayout.JAVA_DOUBLE, 48));
        out.reset(m);
        for (int i = 0; i < m; i++) {
            long at = 64 + 12L * i;
            out.add(host.get(ValueLayout.JAVA_INT, at), host.get(ValueLayout.JAVA_FLOAT, at + 4),
                    host.get(ValueLayout.JAVA_FLOAT, at + 8));
        }
        out.sortBestFirst();
    }

    /**
     * The device's copy bandwidth: a 512 MiB device-to-device copy timed with events, counted as
     * the bytes read plus the bytes written (so it compares with a decode step that only reads),
     * best of five after one untimed copy.
     */
    @Override
    public synchronized OptionalDouble measureBandwidth() {
        enterHost();
        long bytes = 512L << 20;
        long src = alloc(bytes);
        long dst = alloc(bytes);
        try {
            cu.memsetD32Async(src, 0x3f800000, bytes / 4, stream);
            cu.copyDtoDAsync(dst, src, bytes, stream);
            float best = Float.MAX_VALUE;
            for (int i = 0; i < 5; i++) {
                cu.eventRecord(startEvent, stream);
                cu.copyDtoDAsync(dst, src, bytes, stream);
                cu.eventRecord(stopEvent, stream);
                cu.eventSynchronize(stopEvent);
                best = Math.min(best, cu.eventElapsedMillis(startEvent, stopEvent));
            }
            return OptionalDouble.of(2.0 * bytes / (best * 1e-3));
        } finally {
            free(src);
            free(dst);
        }
    }

    /** Waits for everything queued so far; surfaces an asynchronous kernel fault as a {@link CudaException}. */
    public synchronized void synchronize() {
        enterHost();
        cu.streamSynchronize(stream);
    }

    /** Runs {@code work} (backend calls) and returns the device time it took in milliseconds, measured with events. */
    @Override
    public float timeMillis(Runnable work) {
        synchronized (this) {
            enterHost();
            cu.eventRecord(startEvent, stream);
        }
        work.run();
        synchronized (this) {
            enterHost();
            cu.eventRecord(stopEvent, stream);
            cu.eventSynchronize(stopEvent);
            return cu.eventElapsedMillis(startEvent, stopEvent);
        }
    }

    private CudaTensor tensor(Tensor t) {
        if (!(t instanceof CudaTensor c) || c.owner != this) {
            throw new IllegalArgumentException("tensor does not belong to this CUDA backend");
        }
        return c;
    }

    private static CudaWeight weight(Weight w) {
        if (!(w instanceof CudaWeight c)) {
            throw new IllegalArgumentException("weight does not belong to a CUDA backend");
        }
        return c;
    }

    private static void checkRange(CudaTensor t, int offset, int length) {
        if (offset < 0 || length < 0 || (long) offset + length > t.size) {
            throw new IndexOutOfBoundsException("floats [" + offset + ", " + ((long) offset + length)
                    + ") of a tensor of " + t.size);
        }
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    private static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        cu.setCurrent(context);
        CURRENT.remove();
        try {
            endCapture();
            cu.streamSynchronize(stream);
        } finally {
            closed = true;
            if (graphExec != null) {
                cu.graphExecDestroy(graphExec);
            }
            for (long p : allocations) {
                cu.memFree(p);
            }
            allocations.clear();
            unreachable.clear();
            cu.eventDestroy(startEvent);
            cu.eventDestroy(stopEvent);
            cu.streamDestroy(stream);
            cu.moduleUnload(module);
            cu.primaryContextRelease(device);
            arena.close();
        }
    }
}
