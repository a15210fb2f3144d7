#!/usr/bin/env bash
# test.sh — builds qkc and runs every test (CUnit suites, the randomized
# differential suite, CLI tests) through ctest. Exits non-zero on failure.
#   --no-llvm   a build without LLVM (scripts/setup.sh --no-llvm): the
#               tests that need no CPU code generation
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests "$@"
ctest --test-dir build --output-on-failure -j2
