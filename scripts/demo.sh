#!/usr/bin/env bash
# demo.sh — builds qkc, then compiles a 4-bit GEMV from examples/q4_gemv.qk,
# runs it on random inputs, checks it against the reference interpreter
# and prints the error and the speed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo
echo "\$ build/qkc run examples/q4_gemv.qk --kernel gemv --dims N=4096,K=4096"
build/qkc run examples/q4_gemv.qk --kernel gemv --dims N=4096,K=4096
