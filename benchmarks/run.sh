#!/usr/bin/env bash
# Runs the CPU performance suite (bandwidth, matrix-vector kernels, end to end against llama.cpp)
# and prints the tables of docs/BENCHMARKS.md. Run from anywhere; models are resolved from the
# repository root. Usage:
#   benchmarks/run.sh [MODEL.gguf ...]            # default: models/stories260K.gguf
#   QUICK=1 benchmarks/run.sh MODEL.gguf          # short iterations: a smoke test, not figures
#   SUITE='EndToEndBenchmark' benchmarks/run.sh M # only part of the suite (a JMH regex)
# Extra JMH options go in JMH_OPTS, e.g. JMH_OPTS='-p threads=1,0' or JMH_OPTS='-p type=Q4_0,Q4_K'.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
java="$JAVA_HOME/bin/java"
if [ ! -f benchmarks/target/benchmarks.jar ] || [ -n "${REBUILD:-}" ]; then
  ./mvnw -B -q install -DskipTests
fi
models=("$@")
[ ${#models[@]} -eq 0 ] && models=(models/stories260K.gguf)
model_list=$(IFS=,; echo "${models[*]}")
suite="${SUITE:-MemoryBandwidthBenchmark|MatVecBenchmark|EndToEndBenchmark}"
quick=()
[ -n "${QUICK:-}" ] && quick=(-wi 1 -i 2 -w 1s -r 1s)
out="${RESULT:-benchmarks/target/results-$(date +%Y%m%d-%H%M%S).json}"
flags=(--add-modules=jdk.incubator.vector --enable-native-access=ALL-UNNAMED)
log="${out%.json}.log"
rm -f "$out"
echo "JMH output (llama.cpp's logs included) goes to $log; progress and results below."
# shellcheck disable=SC2086
"$java" "${flags[@]}" -jar benchmarks/target/benchmarks.jar "$suite" -p model="$model_list" \
  "${quick[@]}" ${JMH_OPTS:-} -rf json -rff "$out" 2>&1 | tee "$log" \
  | grep --line-buffered -E '^(# Run progress|# Benchmark:|# Parameters|Iteration|Benchmark |[A-Za-z]+Benchmark\.)' || true
[ -s "$out" ] || { echo "no results in $out; see $log" >&2; exit 1; }
echo
echo "# $(date -Iseconds) on $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)," \
  "AVX-512: $(grep -q avx512f /proc/cpuinfo && echo yes || echo no), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# results: $out"
echo
"$java" "${flags[@]}" -cp benchmarks/target/benchmarks.jar io.jcascade.benchmarks.BenchReport "$out"
