#!/usr/bin/env bash
# demo.sh — builds qkc, then compiles a 4-bit GEMV from examples/q4_gemv.qk,
# runs it on random inputs, checks it against the reference interpreter
# and prints the error and the speed.
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
