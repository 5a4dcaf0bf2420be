package io.jcascade.kernels.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * The few CUDA driver API functions the backend uses, bound with the FFM API (no JNI library and
 * no third-party binding: {@code libcuda} is looked up by name when this class is first used, and
 * a machine without it gets a {@link CudaUnavailableException}, never a linkage error).
 *
 * <p>Why FFM and not LWJGL's {@code lwjgl-cuda}: LWJGL would add two jars plus a native JNI
 * library per platform ({@code lwjgl-natives-*}) to reach about twenty C functions that FFM calls
 * directly, and its {@code CU} class binds hundreds of symbols at class initialisation; here each
 * symbol is looked up alone, by the exact versioned name ({@code cuMemAlloc_v2}, ...) that every
 * driver since CUDA 11 exports, and the project already runs with {@code --enable-native-access}.
 *
 * <pre>{@code
 * CudaDriver cu = CudaDriver.get();          // throws CudaUnavailableException without a driver
 * int devices = cu.deviceCount();
 * }</pre>
 */
final class CudaDriver {

    static final ValueLayout.OfLong PTR = ValueLayout.JAVA_LONG; // CUdeviceptr (unsigned long long)
    private static final ValueLayout ADDR = ValueLayout.ADDRESS;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG;

    /** Attribute ids of {@code cuDeviceGetAttribute}. */
    static final int ATTR_CC_MAJOR = 75;
    static final int ATTR_CC_MINOR = 76;
    static final int ATTR_SM_COUNT = 16;

    private static volatile Object instance; // a CudaDriver or the CudaUnavailableException to rethrow

    private final MethodHandle cuInit;
    private final MethodHandle cuDriverGetVersion;
    private final MethodHandle cuDeviceGetCount;
    private final MethodHandle cuDeviceGet;
    private final MethodHandle cuDeviceGetName;
    private final MethodHandle cuDeviceGetAttribute;
    private final MethodHandle cuDeviceTotalMem;
    private final MethodHandle cuDevicePrimaryCtxRetain;
    private final MethodHandle cuDevicePrimaryCtxRelease;
    private final MethodHandle cuCtxSetCurrent;
    private final MethodHandle cuModuleLoadData;
    private final MethodHandle cuModuleUnload;
    private final MethodHandle cuModuleGetFunction;
    private final MethodHandle cuLaunchKernel;
    private final MethodHandle cuMemAlloc;
    private final MethodHandle cuMemFree;
    private final MethodHandle cuMemcpyHtoD;
    private final MethodHandle cuMemcpyHtoDAsync;
    private final MethodHandle cuMemcpyDtoHAsync;
    private final MethodHandle cuMemcpyDtoDAsync;
    private final MethodHandle cuMemsetD32Async;
    private final MethodHandle cuStreamCreate;
    private final MethodHandle cuStreamSynchronize;
    private final MethodHandle cuStreamDestroy;
    private final MethodHandle cuEventCreate;
    private final MethodHandle cuEventRecord;
    private final MethodHandle cuEventSynchronize;
    private final MethodHandle cuEventElapsedTime;
    private final MethodHandle cuEventDestroy;
    private final MethodHandle cuGetErrorName;
    // CUDA graphs (driver 12.0+); null where the driver lacks them, and then graphs stay off.
    private final MethodHandle cuStreamBeginCapture;
    private final MethodHandle cuStreamEndCapture;
    private final MethodHandle cuGraphInstantiate;
    private final MethodHandle cuGraphExecUpdate;
    private final MethodHandle cuGraphLaunch;
    private final MethodHandle cuGraphExecDestroy;
    private final MethodHandle cuGraphDestroy;

    private CudaDriver(SymbolLookup lib) {
        Linker l = Linker.nativeLinker();
        cuInit = bind(l, lib, FunctionDescriptor.of(INT, INT), "cuInit");
        cuDriverGetVersion = bind(l, lib, FunctionDescriptor.of(INT, ADDR), "cuDriverGetVersion");
        cuDeviceGetCount = bind(l, lib, FunctionDescriptor.of(INT, ADDR), "cuDeviceGetCount");
        cuDeviceGet = bind(l, lib, FunctionDescriptor.of(INT, ADDR, INT), "cuDeviceGet");
        cuDeviceGetName = bind(l, lib, FunctionDescriptor.of(INT, ADDR, INT, INT), "cuDeviceGetName");
        cuDeviceGetAttribute = bind(l, lib, FunctionDescriptor.of(INT, ADDR, INT, INT), "cuDeviceGetAttribute");
        cuDeviceTotalMem = bind(l, lib, FunctionDescriptor.of(INT, ADDR, INT), "cuDeviceTotalMem_v2");
        cuDevicePrimaryCtxRetain = bind(l, lib, FunctionDescriptor.of(INT, ADDR, INT), "cuDevicePrimaryCtxRetain");
        cuDevicePrimaryCtxRelease = bind(l, lib, FunctionDescriptor.of(INT, INT), "cuDevicePrimaryCtxRelease_v2",
                "cuDevicePrimaryCtxRelease");
        cuCtxSetCurrent = bind(l, lib, FunctionDescriptor.of(INT, ADDR), "cuCtxSetCurrent");
        cuModuleLoadData = bind(l, lib, FunctionDescriptor.of(INT, ADDR, ADDR), "cuModuleLoadData");
        cuModuleUnload = bind(l, lib, FunctionDescriptor.of(INT, ADDR), "cuModuleUnload");
        cuModuleGetFunction = bind(l, lib, FunctionDescriptor.of(INT, ADDR, ADDR, ADDR), "cuModuleGetFunction");
        cuLaunchKernel = bind(l, lib, FunctionDescriptor.of(INT, ADDR, INT, INT, INT, INT, INT, INT, INT, ADDR, ADDR,
                ADDR), "cuLaunchKernel");
        cuMemAlloc = bind(l, lib, FunctionDescriptor.of(INT, ADDR, LONG), "cuMemAlloc_v2");
        cuMemFree = bind(l, lib, FunctionDescriptor.of(INT, PTR), "cuMemFree_v2");
        cuMemcpyHtoD = bind(l, lib, FunctionDescriptor.of(INT, PTR, ADDR, LONG), "cuMemcpyHtoD_v2");
        cuMemcpyHtoDAsync = bind(l, lib, FunctionDescriptor.of(INT, PTR, ADDR, LONG, ADDR), "cuMemcpyHtoDAsync_v2");
        cuMemcpyDtoHAsync = bind(l, lib, FunctionDescriptor.of(INT, ADDR, PTR, LONG, ADDR), "cuMemcpyDtoHAsync_v2");
        cuMemcpyDtoDAsync = bind(l, lib, FunctionDescriptor.of(INT, PTR, PTR, LONG, ADDR), "cuMemcpyDtoDAsync_v2");
        cuMemsetD32Async = bind(l, lib, FunctionDescriptor.of(INT, PTR, INT, LONG, ADDR), "cuMemsetD32Async");
        cuStreamCreate = bind(l, lib, FunctionDescriptor.of(INT, ADDR, INT), "cuStreamCreate");
        cuStreamSynchronize = bind(l, lib, FunctionDescriptor.of(INT, ADDR), "cuStreamSynchronize");
        cuStreamDestroy = bind(l, lib, FunctionDescriptor.of(INT, ADDR), "cuStreamDestroy_v2");
        cuEventCreate = bind(l, lib, FunctionDescriptor.of(INT, ADDR, INT), "cuEventCreate");
        cuEventRecord = bind(l, lib, FunctionDescriptor.of(INT, ADDR, ADDR), "cuEventRecord");
        cuEventSynchronize = bind(l, lib, FunctionDescriptor.of(INT, ADDR), "cuEventSynchronize");
        cuEventElapsedTime = bind(l, lib, FunctionDescriptor.of(INT, ADDR, ADDR, ADDR), "cuEventElapsedTime_v2",
                "cuEventElapsedTime");
        cuEventDestroy = bind(l, lib, FunctionDescriptor.of(INT, ADDR), "cuEventDestroy_v2");
        cuGetErrorName = bind(l, lib, FunctionDescriptor.of(INT, INT, ADDR), "cuGetErrorName");
        cuStreamBeginCapture = bindOptional(l, lib, FunctionDescriptor.of(INT, ADDR, INT), "cuStreamBeginCapture_v2");
        cuStreamEndCapture = bindOptional(l, lib, FunctionDescriptor.of(INT, ADDR, ADDR), "cuStreamEndCapture");
        cuGraphInstantiate = bindOptional(l, lib, FunctionDescriptor.of(INT, ADDR, ADDR, LONG),
                "cuGraphInstantiateWithFlags");
        cuGraphExecUpdate = bindOptional(l, lib, FunctionDescriptor.of(INT, ADDR, ADDR, ADDR), "cuGraphExecUpdate_v2");
        cuGraphLaunch = bindOptional(l, lib, FunctionDescriptor.of(INT, ADDR, ADDR), "cuGraphLaunch");
        cuGraphExecDestroy = bindOptional(l, lib, FunctionDescriptor.of(INT, ADDR), "cuGraphExecDestroy");
        cuGraphDestroy = bindOptional(l, lib, FunctionDescriptor.of(INT, ADDR), "cuGraphDestroy");
    }

    private static MethodHandle bindOptional(Linker linker, SymbolLookup lib, FunctionDescriptor fd, String name) {
        return lib.find(name).map(sym -> linker.downcallHandle(sym, fd)).orElse(null);
    }

    /** Whether this driver has what {@link CudaBackend}'s decode graphs use (stream capture, exec update). */
    boolean hasGraphs() {
        return cuStreamBeginCapture != null && cuStreamEndCapture != null && cuGraphInstantiate != null
                && cuGraphExecUpdate != null && cuGraphLaunch != null && cuGraphExecDestroy != null
                && cuGraphDestroy != null;
    }

    /** Starts capturing {@code stream} into a graph; relaxed mode (other threads' calls are not checked). */
    void streamBeginCapture(MemorySegment stream) {
        try {
            check((int) cuStreamBeginCapture.invokeExact(stream, 2 /* CU_STREAM_CAPTURE_MODE_RELAXED */),
                    "cuStreamBeginCapture");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Ends the capture of {@code stream}: the graph of everything queued on it since the capture began. */
    MemorySegment streamEndCapture(MemorySegment stream) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDR);
            check((int) cuStreamEndCapture.invokeExact(stream, p), "cuStreamEndCapture");
            return p.get(ValueLayout.ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    MemorySegment graphInstantiate(MemorySegment graph) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDR);
            check((int) cuGraphInstantiate.invokeExact(p, graph, 0L), "cuGraphInstantiateWithFlags");
            return p.get(ValueLayout.ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Updates {@code exec} in place to run {@code graph} (the same kernels in the same order, with
     * other arguments or grids); false when the driver refuses because the topology differs.
     */
    boolean graphExecUpdate(MemorySegment exec, MemorySegment graph) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment info = a.allocate(24, 8); // CUgraphExecUpdateResultInfo: result, errorNode, errorFromNode
            int rc = (int) cuGraphExecUpdate.invokeExact(exec, graph, info);
            return rc == 0;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void graphLaunch(MemorySegment exec, MemorySegment stream) {
        try {
            check((int) cuGraphLaunch.invokeExact(exec, stream), "cuGraphLaunch");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void graphExecDestroy(MemorySegment exec) {
        try {
            check((int) cuGraphExecDestroy.invokeExact(exec), "cuGraphExecDestroy");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void graphDestroy(MemorySegment graph) {
        try {
            check((int) cuGraphDestroy.invokeExact(graph), "cuGraphDestroy");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * The driver, initialised ({@code cuInit(0)} done) and with at least one device.
     *
     * @throws CudaUnavailableException when {@code libcuda} cannot be loaded, lacks a function,
     *     fails to initialise, or sees no device
     */
    static CudaDriver get() {
        Object o = instance;
        if (o == null) {
            synchronized (CudaDriver.class) {
                o = instance;
                if (o == null) {
                    o = load();
                    instance = o;
                }
            }
        }
        if (o instanceof CudaUnavailableException e) {
            throw new CudaUnavailableException(e.kind(), e.getMessage()); // a fresh stack trace each time
        }
        return (CudaDriver) o;
    }

    private static Object load() {
        SymbolLookup lib = null;
        String[] names = System.getProperty("os.name", "").startsWith("Windows")
                ? new String[] {"nvcuda"}
                : new String[] {"libcuda.so.1", "libcuda.so"};
        for (String name : names) {
            try {
                lib = SymbolLookup.libraryLookup(name, Arena.global());
                break;
            } catch (IllegalArgumentException | UnsatisfiedLinkError notHere) {
                // try the next name
            }
        }
        if (lib == null) {
            return new CudaUnavailableException(CudaUnavailableException.Kind.NO_DRIVER,
                    "no CUDA driver on this machine (" + names[0] + " not found)");
        }
        CudaDriver d;
        try {
            d = new CudaDriver(lib);
        } catch (IllegalStateException missing) {
            return new CudaUnavailableException(CudaUnavailableException.Kind.NO_DRIVER,
                    "the CUDA driver is too old: " + missing.getMessage());
        }
        int rc = d.init();
        if (rc == 100) { // CUDA_ERROR_NO_DEVICE
            return new CudaUnavailableException(CudaUnavailableException.Kind.NO_DEVICE, "no CUDA device found");
        }
        if (rc != 0) {
            return new CudaUnavailableException(CudaUnavailableException.Kind.NO_DEVICE,
                    "the CUDA driver did not initialise: " + d.errorName(rc));
        }
        if (d.deviceCount() == 0) {
            return new CudaUnavailableException(CudaUnavailableException.Kind.NO_DEVICE, "no CUDA device found");
        }
        return d;
    }

    private static MethodHandle bind(Linker linker, SymbolLookup lib, FunctionDescriptor fd, String... names) {
        for (String n : names) {
            Optional<MemorySegment> sym = lib.find(n);
            if (sym.isPresent()) {
                return linker.downcallHandle(sym.get(), fd);
            }
        }
        throw new IllegalStateException("it has no " + names[0]);
    }

    // ---- calls; each returns or checks the CUresult ------------------------------------------

    private int init() {
        try {
            return (int) cuInit.invokeExact(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    int deviceCount() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(INT);
            check((int) cuDeviceGetCount.invokeExact(n), "cuDeviceGetCount");
            return n.get(INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    int driverVersion() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(INT);
            check((int) cuDriverGetVersion.invokeExact(n), "cuDriverGetVersion");
            return n.get(INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    int device(int ordinal) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(INT);
            check((int) cuDeviceGet.invokeExact(n, ordinal), "cuDeviceGet(" + ordinal + ")");
            return n.get(INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    String deviceName(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(256);
            check((int) cuDeviceGetName.invokeExact(buf, 256, device), "cuDeviceGetName");
            return buf.getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    int attribute(int device, int attribute) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(INT);
            check((int) cuDeviceGetAttribute.invokeExact(n, attribute, device), "cuDeviceGetAttribute");
            return n.get(INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    long totalMemory(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(LONG);
            check((int) cuDeviceTotalMem.invokeExact(n, device), "cuDeviceTotalMem");
            return n.get(LONG, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    MemorySegment primaryContextRetain(int device) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDR);
            check((int) cuDevicePrimaryCtxRetain.invokeExact(p, device), "cuDevicePrimaryCtxRetain");
            return p.get(ValueLayout.ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void primaryContextRelease(int device) {
        try {
            check((int) cuDevicePrimaryCtxRelease.invokeExact(device), "cuDevicePrimaryCtxRelease");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void setCurrent(MemorySegment ctx) {
        try {
            check((int) cuCtxSetCurrent.invokeExact(ctx), "cuCtxSetCurrent");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Loads PTX (NUL-terminated) or a cubin; returns the CUresult and the module through {@code out}. */
    int moduleLoadData(MemorySegment image, MemorySegment[] out) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDR);
            int rc = (int) cuModuleLoadData.invokeExact(p, image);
            out[0] = rc == 0 ? p.get(ValueLayout.ADDRESS, 0) : MemorySegment.NULL;
            return rc;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void moduleUnload(MemorySegment module) {
        try {
            check((int) cuModuleUnload.invokeExact(module), "cuModuleUnload");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    MemorySegment function(MemorySegment module, String name) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDR);
            check((int) cuModuleGetFunction.invokeExact(p, module, a.allocateFrom(name)),
                    "cuModuleGetFunction(" + name + ")");
            return p.get(ValueLayout.ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void launch(MemorySegment f, int gx, int gy, int gz, int bx, int by, int bz, int sharedBytes,
            MemorySegment stream, MemorySegment params, String name) {
        try {
            check((int) cuLaunchKernel.invokeExact(f, gx, gy, gz, bx, by, bz, sharedBytes, stream, params,
                    MemorySegment.NULL), "cuLaunchKernel(" + name + ")");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    long memAlloc(long bytes) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(PTR);
            check((int) cuMemAlloc.invokeExact(p, bytes), "cuMemAlloc(" + bytes + " bytes)");
            return p.get(PTR, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void memFree(long ptr) {
        try {
            check((int) cuMemFree.invokeExact(ptr), "cuMemFree");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void copyHtoD(long dst, MemorySegment src, long bytes) {
        try {
            check((int) cuMemcpyHtoD.invokeExact(dst, src, bytes), "cuMemcpyHtoD");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void copyHtoDAsync(long dst, MemorySegment src, long bytes, MemorySegment stream) {
        try {
            check((int) cuMemcpyHtoDAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyHtoDAsync");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void copyDtoHAsync(MemorySegment dst, long src, long bytes, MemorySegment stream) {
        try {
            check((int) cuMemcpyDtoHAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyDtoHAsync");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void copyDtoDAsync(long dst, long src, long bytes, MemorySegment stream) {
        try {
            check((int) cuMemcpyDtoDAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyDtoDAsync");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void memsetD32Async(long dst, int value, long count, MemorySegment stream) {
        try {
            check((int) cuMemsetD32Async.invokeExact(dst, value, count, stream), "cuMemsetD32Async");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    MemorySegment streamCreate() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDR);
            check((int) cuStreamCreate.invokeExact(p, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate");
            return p.get(ValueLayout.ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void streamSynchronize(MemorySegment stream) {
        try {
            check((int) cuStreamSynchronize.invokeExact(stream), "cuStreamSynchronize");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void streamDestroy(MemorySegment stream) {
        try {
            check((int) cuStreamDestroy.invokeExact(stream), "cuStreamDestroy");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    MemorySegment eventCreate() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDR);
            check((int) cuEventCreate.invokeExact(p, 0), "cuEventCreate");
            return p.get(ValueLayout.ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void eventRecord(MemorySegment event, MemorySegment stream) {
        try {
            check((int) cuEventRecord.invokeExact(event, stream), "cuEventRecord");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void eventSynchronize(MemorySegment event) {
        try {
            check((int) cuEventSynchronize.invokeExact(event), "cuEventSynchronize");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    float eventElapsedMillis(MemorySegment start, MemorySegment end) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ms = a.allocate(ValueLayout.JAVA_FLOAT);
            check((int) cuEventElapsedTime.invokeExact(ms, start, end), "cuEventElapsedTime");
            return ms.get(ValueLayout.JAVA_FLOAT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void eventDestroy(MemorySegment event) {
        try {
            check((int) cuEventDestroy.invokeExact(event), "cuEventDestroy");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The CUresult's name, e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}, or its number. */
    String errorName(int rc) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment p = a.allocate(ADDR);
            int r = (int) cuGetErrorName.invokeExact(rc, p);
            MemorySegment s = p.get(ValueLayout.ADDRESS, 0);
            if (r != 0 || s.equals(MemorySegment.NULL)) {
                return "CUresult " + rc;
            }
            return s.reinterpret(256).getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void check(int rc, String what) {
        if (rc != 0) {
            throw new CudaException(what + " failed: " + errorName(rc) + " (" + rc + ")", rc);
        }
    }

    static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new IllegalStateException(t);
    }
}
