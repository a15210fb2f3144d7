#!/usr/bin/env bash
# test.sh — builds qkc and runs every test (CUnit suites, the randomized
# differential suite, CLI tests) through ctest. Exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
ctest --test-dir build --output-on-failure -j2
