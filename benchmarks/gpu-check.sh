#!/usr/bin/env bash
# The GPU checks (issues #5 and #6) as one prepared run, for a machine with an NVIDIA GPU and the
# CUDA driver but no JDK and no Maven.
#
# Here, with JDK 25 (JAVA_HOME) and the project's Maven wrapper:
#   benchmarks/gpu-check.sh prepare
# builds the project (with nvcc's PTX and cubin in the jar where nvcc is on the PATH), packs
# .device/ with ../shared/tools/device-kit.sh (a jlinked JDK and the runtime jars), leaves out the
# jars a GPU run never loads (llama.cpp's JNI build, JMH), adds what the tests need (the kernels'
# and the engine's test classes and AssertJ, in .device/test/) and writes it all to .device.tgz
# (about 45 MB), small enough to travel with the tree to the GPU machine.
#
# There, from the repository root with .device.tgz carried along (it is unpacked on first use):
#   OUT=/some/dir benchmarks/gpu-check.sh [STAGE...]     (default: info tests bench-1b)
# Stages:
#   info      nvidia-smi, and the device as jcascade opens it
#   tests     CudaKernelsTest, CudaGreedyAgreementTest, CudaSyntheticAgreementTest, CudaGraphThreadsTest and
#             BatchDecodeTest (JUnit
#             console; XML reports in $OUT/junit): every kernel against the CPU, end-to-end agreement
#   bench-1b  synthesizes llama3-1b in Q4_0, Q8_0 and Q4_K_M and runs
#             jcascade bench --backend cuda --json --kernels on each (512-token prompt, 128 generated
#             tokens; each weight shape's product timed alone, with the bandwidth it reached), then
#             again with decode steps as CUDA graphs (-Djcascade.cuda.graphs=true), and (1b only) for
#             Q4_0 and Q8_0 with float activations and no tensor cores: the kernels the 8-bit ones
#             replaced; and 8 sequences decoded together (--sequences 8: mmv_*)
#   bench-8b  the same for llama3-8b (each file is written, measured and deleted in turn)
# Every stage writes $OUT/<stage>.log as it goes and bench lines to $OUT/bench.jsonl, so a run cut
# short still brings back what it did. Timeouts per stage: GPU_CHECK_TIMEOUT (seconds, default 280).
set -uo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"

if [ "${1:-}" = prepare ]; then
  set -e
  ./mvnw -B -q install -DskipTests
  # device-kit's modules, and java.xml for the JUnit console's XML reports.
  MODULES=java.base,jdk.incubator.vector,java.net.http,jdk.httpserver,java.logging,jdk.unsupported,java.management,jdk.management,jdk.crypto.ec,java.xml \
    bash ../shared/tools/device-kit.sh
  # Not loaded by the CLI or the CUDA tests: llama.cpp's JNI build (the CPU oracle) and JMH.
  rm -f .device/lib/llama-*.jar .device/lib/jmh-*.jar .device/lib/jopt-simple-*.jar \
        .device/lib/commons-math3-*.jar .device/lib/benchmarks.jar .device/lib/*-tests.jar
  # The JDK's symbol tables (5 MB of libjvm.so) are not needed to run it.
  find .device/jdk -name '*.so' -exec strip --strip-unneeded {} +
  mkdir -p .device/test
  cp -r kernels/target/test-classes .device/test/kernels
  cp -r engine/target/test-classes .device/test/engine
  assertj=$(find ~/.m2/repository/org/assertj/assertj-core -name 'assertj-core-*.jar' | sort -V | tail -1)
  cp "$assertj" .device/test/
  .device/jdk/bin/java -version 2>&1 | head -1
  tar -czf .device.tgz .device
  bytes=$(stat -c %s .device.tgz)
  echo "gpu-check: .device.tgz is $((bytes >> 20)) MiB; carry it, and run OUT=DIR benchmarks/gpu-check.sh there"
  [ "$bytes" -lt $((60 << 20)) ] || { echo "gpu-check: .device.tgz must stay under 60 MiB to travel" >&2; exit 1; }
  exit 0
fi

OUT=${OUT:-$top/gpu-check-out}
mkdir -p "$OUT"
[ -x .device/jdk/bin/java ] || [ ! -f .device.tgz ] || tar -xzf .device.tgz
[ -x .device/jdk/bin/java ] || { echo "gpu-check: no .device/jdk; run 'benchmarks/gpu-check.sh prepare' where the JDK is" >&2; exit 1; }
export JAVA_HOME=$top/.device/jdk PATH=$top/.device/jdk/bin:$PATH
limit=${GPU_CHECK_TIMEOUT:-280}
cp=$(ls .device/lib/*.jar | tr '\n' ':')
jflags=(--add-modules=jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC -Xss8m)
jcascade() { java "${jflags[@]}" ${JFLAGS_EXTRA:-} -cp "$cp" io.jcascade.cli.JCascade "$@"; }
stamp() { echo "== $(date -u +%H:%M:%S) $*"; }

info() {
  nvidia-smi || true
  nvidia-smi --query-gpu=name,memory.total,clocks.max.memory,driver_version --format=csv || true
  jcascade bench --model models/stories260K.gguf --backend cuda --prompt-tokens 16 --gen-tokens 16 \
    --repetitions 1 --json
}

tests() {
  local tcp=".device/test/kernels:.device/test/engine:$(ls .device/test/*.jar | tr '\n' ':')$cp"
  java "${jflags[@]}" -Djcascade.root="$top" -jar .device/junit.jar execute --disable-banner \
    --details=tree --class-path "$tcp" --reports-dir "$OUT/junit" \
    --select-class io.jcascade.kernels.cuda.CudaKernelsTest \
    --select-class io.jcascade.engine.CudaGreedyAgreementTest \
    --select-class io.jcascade.engine.CudaSyntheticAgreementTest \
    --select-class io.jcascade.engine.CudaGraphThreadsTest \
    --select-class io.jcascade.engine.BatchDecodeTest
}

bench_shape() {
  local shape=$1 dir=${GPU_CHECK_MODELS:-/tmp/gpu-check-models}
  mkdir -p "$dir"
  for type in Q4_0 Q8_0 Q4_K_M; do
    local f="$dir/$shape-$type.gguf"
    stamp "synth $shape $type"
    [ -f "$f" ] || jcascade synth --shape "$shape" --type "$type" "$f" 2>&1 | tail -1
    stamp "bench $shape $type"
    jcascade bench --model "$f" --backend cuda --prompt-tokens 512 --gen-tokens 128 --json --kernels \
      | sed "s|^{|{\"model\":\"$shape-$type\",|" | tee -a "$OUT/bench.jsonl"
    stamp "bench $shape $type, decode as CUDA graphs"
    JFLAGS_EXTRA=-Djcascade.cuda.graphs=true jcascade bench --model "$f" --backend cuda --prompt-tokens 512 \
      --gen-tokens 128 --json --no-bandwidth \
      | sed "s|^{|{\"model\":\"$shape-$type\",\"graphs\":true,|" | tee -a "$OUT/bench.jsonl"
    stamp "bench $shape $type, 8 sequences decoded together"
    jcascade bench --model "$f" --backend cuda --prompt-tokens 128 --gen-tokens 64 --json --no-bandwidth \
      --repetitions 1 --sequences 8 \
      | sed "s|^{|{\"model\":\"$shape-$type\",|" | tee -a "$OUT/bench.jsonl"
    if [ "$type" != Q4_K_M ] && [ "$shape" = llama3-1b ]; then
      stamp "bench $shape $type, float activations and no tensor cores (the before of the 8-bit kernels)"
      JFLAGS_EXTRA="-Djcascade.activations=f32 -Djcascade.cuda.mma=false" jcascade bench --model "$f" \
        --backend cuda --prompt-tokens 512 --gen-tokens 128 --json --no-bandwidth --repetitions 1 \
        | sed "s|^{|{\"model\":\"$shape-$type\",\"activations\":\"f32\",|" | tee -a "$OUT/bench.jsonl"
    fi
    rm -f "$f"
  done
}

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(info tests bench-1b)
for s in "${stages[@]}"; do
  case $s in
    info) fn=info ;;
    tests) fn=tests ;;
    bench-1b) fn="bench_shape llama3-1b" ;;
    bench-8b) fn="bench_shape llama3-8b" ;;
    *) echo "gpu-check: unknown stage $s (info, tests, bench-1b, bench-8b)" >&2; exit 2 ;;
  esac
  stamp "stage $s" | tee -a "$OUT/$s.log"
  # shellcheck disable=SC2086
  ( export -f jcascade stamp info tests bench_shape 2>/dev/null; export cp top OUT; \
    timeout "$limit" bash -c "$(declare -p jflags); $fn" ) >>"$OUT/$s.log" 2>&1
  rc=$?
  tail -5 "$OUT/$s.log"
  stamp "stage $s exit $rc" | tee -a "$OUT/$s.log"
done
