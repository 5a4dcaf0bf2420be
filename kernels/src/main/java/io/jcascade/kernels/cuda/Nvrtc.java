package io.jcascade.kernels.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * CUDA's run-time compiler, bound with FFM like {@link CudaDriver}: compiles the kernels' CUDA C
 * source (embedded in the jar) to PTX for the device at hand, when the prebuilt PTX cannot be
 * used. Optional: a machine with only the driver has no {@code libnvrtc}.
 *
 * <pre>{@code
 * byte[] ptx = Nvrtc.compile(source, "jcascade.cu", 9, 0);
 * }</pre>
 */
final class Nvrtc {

    private static final ValueLayout ADDR = ValueLayout.ADDRESS;
    private static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT;
    private static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG;

    private Nvrtc() {}

    /** Where libnvrtc may be: plain names for the loader's path, then CUDA_HOME and the usual install. */
    private static List<String> candidates() {
        List<String> c = new ArrayList<>();
        String[] sonames = {"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"};
        for (String s : sonames) {
            c.add(s);
        }
        for (String dir : new String[] {System.getenv("CUDA_HOME"), System.getenv("CUDA_PATH"), "/usr/local/cuda"}) {
            if (dir != null) {
                for (String s : sonames) {
                    Path p = Path.of(dir, "lib64", s);
                    if (Files.exists(p)) {
                        c.add(p.toString());
                    }
                }
            }
        }
        return c;
    }

    /**
     * Compiles {@code source} to PTX for compute capability {@code major.minor}.
     *
     * @return the PTX, NUL-terminated, ready for {@code cuModuleLoadData}
     * @throws IllegalStateException when NVRTC is not installed or the source does not compile (with the log)
     */
    static byte[] compile(String source, String name, int major, int minor) {
        SymbolLookup lib = null;
        for (String c : candidates()) {
            try {
                lib = SymbolLookup.libraryLookup(c, Arena.global());
                break;
            } catch (IllegalArgumentException | UnsatisfiedLinkError notHere) {
                // next
            }
        }
        if (lib == null) {
            throw new IllegalStateException("NVRTC (libnvrtc.so) is not installed");
        }
        Linker l = Linker.nativeLinker();
        MethodHandle create = bind(l, lib, "nvrtcCreateProgram", FunctionDescriptor.of(INT, ADDR, ADDR, ADDR, INT,
                ADDR, ADDR));
        MethodHandle compile = bind(l, lib, "nvrtcCompileProgram", FunctionDescriptor.of(INT, ADDR, INT, ADDR));
        MethodHandle ptxSize = bind(l, lib, "nvrtcGetPTXSize", FunctionDescriptor.of(INT, ADDR, ADDR));
        MethodHandle getPtx = bind(l, lib, "nvrtcGetPTX", FunctionDescriptor.of(INT, ADDR, ADDR));
        MethodHandle logSize = bind(l, lib, "nvrtcGetProgramLogSize", FunctionDescriptor.of(INT, ADDR, ADDR));
        MethodHandle getLog = bind(l, lib, "nvrtcGetProgramLog", FunctionDescriptor.of(INT, ADDR, ADDR));
        MethodHandle destroy = bind(l, lib, "nvrtcDestroyProgram", FunctionDescriptor.of(INT, ADDR));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment progp = a.allocate(ADDR);
            check((int) create.invokeExact(progp, a.allocateFrom(source), a.allocateFrom(name), 0,
                    MemorySegment.NULL, MemorySegment.NULL), "nvrtcCreateProgram");
            MemorySegment prog = progp.get(ValueLayout.ADDRESS, 0);
            try {
                String[] opts = {"--gpu-architecture=compute_" + major + minor, "--std=c++17", "-default-device"};
                MemorySegment optv = a.allocate(ADDR, opts.length);
                for (int i = 0; i < opts.length; i++) {
                    optv.setAtIndex(ValueLayout.ADDRESS, i, a.allocateFrom(opts[i]));
                }
                int rc = (int) compile.invokeExact(prog, opts.length, optv);
                if (rc != 0) {
                    MemorySegment n = a.allocate(LONG);
                    check((int) logSize.invokeExact(prog, n), "nvrtcGetProgramLogSize");
                    MemorySegment log = a.allocate(Math.max(1, n.get(LONG, 0)));
                    check((int) getLog.invokeExact(prog, log), "nvrtcGetProgramLog");
                    throw new IllegalStateException("NVRTC could not compile " + name + " (nvrtcResult " + rc + "): "
                            + log.getString(0).strip());
                }
                MemorySegment n = a.allocate(LONG);
                check((int) ptxSize.invokeExact(prog, n), "nvrtcGetPTXSize");
                MemorySegment ptx = a.allocate(n.get(LONG, 0));
                check((int) getPtx.invokeExact(prog, ptx), "nvrtcGetPTX");
                return ptx.toArray(ValueLayout.JAVA_BYTE); // includes the terminating NUL
            } finally {
                int ignored = (int) destroy.invokeExact(progp);
            }
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    private static MethodHandle bind(Linker l, SymbolLookup lib, String name, FunctionDescriptor fd) {
        return l.downcallHandle(lib.find(name).orElseThrow(
                () -> new IllegalStateException("libnvrtc has no " + name)), fd);
    }

    private static void check(int rc, String what) {
        if (rc != 0) {
            throw new IllegalStateException(what + " failed (nvrtcResult " + rc + ")");
        }
    }
}
