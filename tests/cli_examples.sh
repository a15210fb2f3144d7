#!/usr/bin/env bash
# cli_examples.sh — runs examples/host-jit and examples/host-aot as built in
# qkc's own build tree (example_host_jit, example_host_aot next to qkc):
# host-jit twice, the second start loading its kernel from the disk cache
# (no cache file rewritten); host-aot once, printing exactly host-jit's
# numbers; and `ldd` of host-aot naming no LLVM, libffi, SQLite or libqkc.
# host-aot-gemv (example_host_aot_gemv: one kernel built with and without
# qkc_add_kernels' LAYOUT any) on ragged shapes: its two builds agree with
# each other and with an f32 product, and only the LAYOUT any header
# declares the repacker.
# tests/cli_install.sh does the same against an installed qkc.
# Usage: bash tests/cli_examples.sh path/to/qkc
set -uo pipefail
QKC=${1:?usage: cli_examples.sh path/to/qkc}
BUILD=$(cd "$(dirname "$QKC")" && pwd)
cd "$(dirname "$0")/.." || exit 1
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -f "$TMP/out" ] && sed 's/^/     | /' "$TMP/out" | head -20; }

JIT=$BUILD/example_host_jit
AOT=$BUILD/example_host_aot
GEMV=$BUILD/example_host_aot_gemv
for exe in "$JIT" "$AOT" "$GEMV"; do
  if [ ! -x "$exe" ]; then
    echo "FAIL $exe is missing (configure with -DQKC_BUILD_EXAMPLES=ON and build)"
    exit 1
  fi
done

# The cache's files with their inode numbers: a miss rewrites a file
# (a new file renamed into place), a hit only reads it.
cache_state() { (cd "$1" 2>/dev/null && find . -type f -name '*.o' -printf '%p %i %s\n' | sort); }

# 24 numbers, one per line (B = 3 inputs x O = 8 outputs).
well_formed() { [ "$(grep -cE '^-?[0-9][0-9.e+-]*$' "$1")" = 24 ] && [ "$(wc -l <"$1")" = 24 ]; }

export QKC_CACHE_DIR=$TMP/cache
if "$JIT" >"$TMP/jit1" 2>"$TMP/out" && well_formed "$TMP/jit1" && [ -n "$(cache_state "$QKC_CACHE_DIR")" ]; then
  ok "host-jit, first start: 24 outputs, kernel stored in the disk cache"
else
  bad "host-jit, first start: 24 outputs, kernel stored in the disk cache"
fi
cache_state "$QKC_CACHE_DIR" >"$TMP/cache1"

if "$JIT" >"$TMP/jit2" 2>"$TMP/out" && cmp -s "$TMP/jit1" "$TMP/jit2"; then
  ok "host-jit, second start: same outputs"
else
  bad "host-jit, second start: same outputs"
fi
cache_state "$QKC_CACHE_DIR" >"$TMP/cache2"
if [ -s "$TMP/cache1" ] && cmp -s "$TMP/cache1" "$TMP/cache2"; then
  ok "host-jit, second start: kernel loaded from the disk cache (no file rewritten)"
else
  diff "$TMP/cache1" "$TMP/cache2" >"$TMP/out"
  bad "host-jit, second start: kernel loaded from the disk cache (no file rewritten)"
fi

if "$AOT" >"$TMP/aot" 2>"$TMP/out" && cmp -s "$TMP/jit1" "$TMP/aot"; then
  ok "host-aot prints exactly host-jit's outputs"
else
  diff "$TMP/jit1" "$TMP/aot" | head -8 >>"$TMP/out"
  bad "host-aot prints exactly host-jit's outputs"
fi

# Only the C library's parts and the loader may be linked dynamically.
ldd "$AOT" >"$TMP/ldd" 2>&1
others=$(awk '{print $1}' "$TMP/ldd" |
  grep -vE '^(linux-vdso\.so|linux-gate\.so|libc\.so|libm\.so|libpthread\.so|libdl\.so|librt\.so|/lib.*/ld-linux|ld-linux)' || true)
if grep -q 'libc\.so' "$TMP/ldd" && [ -z "$others" ]; then
  ok "ldd host-aot: libc/libm/loader only (no libLLVM, libffi, libqkc)"
else
  cp "$TMP/ldd" "$TMP/out"
  bad "ldd host-aot: libc/libm/loader only (no libLLVM, libffi, libqkc)"
fi

# host-aot-gemv checks its own results (exit status 1 and FAILED when a
# row is off); shapes that fill no tile, and one that spans several.
for shape in "1 1 1" "37 165 2" "300 1000 2" "1000 4133 2"; do
  # shellcheck disable=SC2086 # the shape is three arguments
  if "$GEMV" $shape >"$TMP/out" 2>&1 && grep -q ': ok$' "$TMP/out"; then
    ok "host-aot-gemv $shape: LAYOUT any and own agree, both match the f32 product"
  else
    bad "host-aot-gemv $shape: LAYOUT any and own agree, both match the f32 product"
  fi
done
if "$GEMV" 0 5 >"$TMP/out" 2>&1; then
  bad "host-aot-gemv 0 5: usage error"
elif grep -q '^usage: host_aot_gemv' "$TMP/out"; then
  ok "host-aot-gemv 0 5: usage error"
else
  bad "host-aot-gemv 0 5: usage error"
fi
if grep -q 'gemv_any_gemv_W_repack(' "$BUILD/gemv_any.h" && ! grep -q '_repack' "$BUILD/gemv_own.h"; then
  ok "qkc_add_kernels LAYOUT any: its header declares the repacker, the default one does not"
else
  grep -n 'repack' "$BUILD/gemv_any.h" "$BUILD/gemv_own.h" >"$TMP/out" 2>&1
  bad "qkc_add_kernels LAYOUT any: its header declares the repacker, the default one does not"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
