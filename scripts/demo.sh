#!/usr/bin/env bash
# demo.sh — builds qkc, then compiles a 4-bit GEMV from examples/q4_gemv.qk,
# runs it on random inputs, checks it against the reference interpreter
# and prints the error and the speed; then benchmarks the int8-activation
# GEMV of examples/gemv_int8.qk with row-interleaved weights at 8192x8192,
# weights streamed from DRAM, as a share of this machine's measured DRAM
# bandwidth (`qkc probe` runs first, ~3 s, and is stored) and of a plain
# read of the same bytes in the same run (--baseline read).
#   --no-llvm   a build without LLVM (scripts/setup.sh --no-llvm), and the
#               GEMV on the GPU (--target sm_90) instead of the CPU
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh "$@"
target=()
if [ "${1:-}" = "--no-llvm" ]; then
  target=(--target sm_90)
fi
echo
echo "\$ build/qkc run examples/q4_gemv.qk --kernel gemv --dims N=4096,K=4096 ${target[*]+"${target[*]}"}"
build/qkc run examples/q4_gemv.qk --kernel gemv --dims N=4096,K=4096 ${target[@]+"${target[@]}"}
if [ ${#target[@]} -eq 0 ]; then
  echo
  echo "\$ build/qkc bench examples/gemv_int8.qk --kernel gemv --dims N=8192,K=8192 --mode cold --threads 1 -c repack=1 --baseline read"
  build/qkc bench examples/gemv_int8.qk --kernel gemv --dims N=8192,K=8192 --mode cold --threads 1 -c repack=1 --baseline read
fi
