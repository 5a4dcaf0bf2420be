#!/usr/bin/env bash
# Compiles every .cu next to this script with nvcc, for the Maven profile "nvcc" (kernels/pom.xml):
#   <out>/<name>.ptx            PTX for compute_80 (Ampere and newer JIT it; loaded on any sm_80+)
#   <out>/<name>.sm_90a.cubin   SASS for sm_90a (H100/H200 load it without a JIT)
#   <report>/<name>.ptxas.txt   ptxas -v resource usage (registers, shared memory, spills) for sm_80 and sm_90a
# Fails (and so fails the build) when any .cu does not compile.
# Usage: build-kernels.sh NVCC OUT_DIR REPORT_DIR
set -euo pipefail
nvcc=$1 out=$2 report=$3
src=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out" "$report"
shopt -s nullglob
files=("$src"/*.cu)
[ ${#files[@]} -gt 0 ] || { echo "build-kernels: no .cu files in $src" >&2; exit 1; }
common=(-std=c++17 -O3 -lineinfo)  # no --use_fast_math: the numerics follow the CPU
for cu in "${files[@]}"; do
  name=$(basename "$cu" .cu)
  "$nvcc" "${common[@]}" -arch=compute_80 -ptx -o "$out/$name.ptx" "$cu"
  "$nvcc" "${common[@]}" -arch=sm_90a -cubin -Xptxas -v -o "$out/$name.sm_90a.cubin" "$cu" 2> "$report/$name.sm_90a.ptxas.txt" \
    || { cat "$report/$name.sm_90a.ptxas.txt" >&2; exit 1; }
  # A cubin for sm_80 only for its resource report (Ampere runs the PTX above).
  "$nvcc" "${common[@]}" -arch=sm_80 -cubin -Xptxas -v -o "$report/$name.sm_80.cubin" "$cu" 2> "$report/$name.sm_80.ptxas.txt" \
    || { cat "$report/$name.sm_80.ptxas.txt" >&2; exit 1; }
  echo "build-kernels: $name.cu -> $name.ptx, $name.sm_90a.cubin (ptxas report: $report/$name.*.ptxas.txt)"
done
