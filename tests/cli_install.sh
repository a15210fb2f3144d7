#!/usr/bin/env bash
# cli_install.sh — qkc as a host application sees it: `cmake --install`
# of this build tree into a temporary prefix, then examples/host-jit and
# examples/host-aot configured and built as separate CMake projects with
# find_package(qkc) against that prefix and run (same outputs; the AOT one
# links no LLVM, libffi or libqkc; editing its .qk rebuilds it),
# examples/host-aot-gemv the same way (qkc_add_kernels' LAYOUT any; a bad
# LAYOUT stops the configure with a message), the
# static library through find_package(qkc COMPONENTS static), pkg-config's
# qkc and qkc_rt, and the installed qkc finding its standard formats in
# <prefix>/share/qkc/dsl, also with the source tree hidden (a private
# mount namespace; skipped where unshare is not allowed) and after moving
# the prefix.
# Usage: bash tests/cli_install.sh path/to/qkc   (the qkc of a build tree)
set -uo pipefail
QKC=${1:?usage: cli_install.sh path/to/qkc}
BUILD=$(cd "$(dirname "$QKC")" && pwd)
cd "$(dirname "$0")/.." || exit 1
SRC=$PWD
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -f "$TMP/out" ] && sed 's/^/     | /' "$TMP/out" | tail -20; }
# check NAME CMD...: ok when CMD succeeds; its output in $TMP/out.
check() {
  local name=$1
  shift
  if "$@" >"$TMP/out" 2>&1; then ok "$name"; else bad "$name"; fi
}

for tool in cmake pkg-config cc; do
  if ! command -v $tool >/dev/null; then
    echo "skipped: $tool is not installed"
    exit 0
  fi
done
if [ ! -f "$BUILD/cmake_install.cmake" ]; then
  echo "FAIL $BUILD is not a CMake build tree"
  exit 1
fi

PREFIX=$TMP/prefix
check "cmake --install into a prefix" cmake --install "$BUILD" --prefix "$PREFIX"
LIBDIR=$(dirname "$(find "$PREFIX" -name qkcConfig.cmake | head -1)")
LIBDIR=${LIBDIR%/cmake/qkc}
missing=""
for f in bin/qkc include/qkc.h include/qkc_aot.h share/qkc/dsl/ggml.qk; do
  [ -e "$PREFIX/$f" ] || missing="$missing $f"
done
for f in libqkc.so libqkc.a libqkc_rt.a libqkc_rt.so cmake/qkc/qkcConfig.cmake cmake/qkc/qkcConfigVersion.cmake \
  cmake/qkc/qkcKernels.cmake pkgconfig/qkc.pc pkgconfig/qkc_rt.pc; do
  [ -e "$LIBDIR/$f" ] || missing="$missing ${LIBDIR#"$PREFIX"/}/$f"
done
echo "missing:$missing" >"$TMP/out"
if [ -d "$LIBDIR" ] && [ -z "$missing" ]; then ok "installed files"; else bad "installed files"; fi
VERSION=$(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")$/\1/p' "$LIBDIR/cmake/qkc/qkcConfigVersion.cmake")

# ---- the examples as separate projects ----
cp -r examples/host-jit examples/host-aot examples/host-aot-gemv examples/common "$TMP/"
project() { # NAME: configure and build $TMP/NAME in $TMP/NAME-build
  cmake -S "$TMP/$1" -B "$TMP/$1-build" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_BUILD_TYPE=Release &&
    cmake --build "$TMP/$1-build"
}
check "host-jit: find_package(qkc) and build" project host-jit
check "host-aot: find_package(qkc), qkc_add_kernels and build" project host-aot
check "host-aot-gemv: qkc_add_kernels with LAYOUT any and build" project host-aot-gemv

cd "$TMP" || exit 1 # run away from the source tree
export QKC_CACHE_DIR=$TMP/cache
"$TMP/host-jit-build/host_jit" >"$TMP/jit1" 2>"$TMP/out"
"$TMP/host-jit-build/host_jit" >"$TMP/jit2" 2>>"$TMP/out"
if [ "$(wc -l <"$TMP/jit1")" = 24 ] && cmp -s "$TMP/jit1" "$TMP/jit2"; then
  ok "host-jit runs: 24 outputs, the same on the second start (disk cache)"
else
  bad "host-jit runs: 24 outputs, the same on the second start (disk cache)"
fi
"$TMP/host-aot-build/host_aot" >"$TMP/aot" 2>"$TMP/out"
if [ "$(wc -l <"$TMP/jit1")" = 24 ] && cmp -s "$TMP/jit1" "$TMP/aot"; then
  ok "host-aot prints exactly host-jit's outputs"
else
  diff "$TMP/jit1" "$TMP/aot" | head -8 >>"$TMP/out"
  bad "host-aot prints exactly host-jit's outputs"
fi
ldd "$TMP/host-aot-build/host_aot" >"$TMP/out" 2>&1
if grep -q 'libc\.so' "$TMP/out" && ! grep -qE 'libLLVM|libffi|libqkc|libsqlite|libstdc' "$TMP/out"; then
  ok "ldd host-aot: no libLLVM, libffi, libqkc"
else
  bad "ldd host-aot: no libLLVM, libffi, libqkc"
fi

# The program checks its two builds against each other and an f32 product.
if "$TMP/host-aot-gemv-build/host_aot_gemv" 37 165 2 >"$TMP/out" 2>&1 && grep -q ': ok$' "$TMP/out" &&
  grep -q 'gemv_any_gemv_W_repack(' "$TMP/host-aot-gemv-build/gemv_any.h"; then
  ok "host-aot-gemv runs: LAYOUT any and own agree, both match the f32 product"
else
  bad "host-aot-gemv runs: LAYOUT any and own agree, both match the f32 product"
fi
sed -i 's/LAYOUT any/LAYOUT rows/' "$TMP/host-aot-gemv/CMakeLists.txt"
if cmake -S "$TMP/host-aot-gemv" -B "$TMP/bad-layout-build" -DCMAKE_PREFIX_PATH="$PREFIX" >"$TMP/out" 2>&1; then
  bad "qkc_add_kernels LAYOUT rows: the configure fails"
elif grep -q "LAYOUT is own or any, not 'rows'" "$TMP/out"; then
  ok "qkc_add_kernels LAYOUT rows: the configure fails"
else
  bad "qkc_add_kernels LAYOUT rows: the configure fails"
fi

# An edited kernel source reruns `qkc build` (and nothing when unchanged).
touch "$TMP/host-aot/mlp.qk"
cmake --build "$TMP/host-aot-build" >"$TMP/out" 2>&1
rebuilt=$(grep -c 'qkc build mlp_kernels' "$TMP/out")
cmake --build "$TMP/host-aot-build" >>"$TMP/out" 2>&1
if [ "$rebuilt" = 1 ] && [ "$(grep -c 'qkc build mlp_kernels' "$TMP/out")" = 1 ]; then
  ok "qkc_add_kernels: an edited .qk rebuilds the kernels, an unchanged one does not"
else
  bad "qkc_add_kernels: an edited .qk rebuilds the kernels, an unchanged one does not"
fi

# ---- the static library, on request ----
mkdir -p "$TMP/static"
cat >"$TMP/static/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.20)
project(qkc_static_user LANGUAGES C)
find_package(qkc REQUIRED COMPONENTS static)
add_executable(user user.c)
target_link_libraries(user PRIVATE qkc::qkc_static)
EOF
cat >"$TMP/static/user.c" <<'EOF'
#include <qkc.h>
#include <stdio.h>
int main(void)
{
    qkc_ctx *ctx = NULL;
    qkc_program *prog = NULL;
    int st = qkc_ctx_create(NULL, &ctx);
    if (st == QKC_OK)
        st = qkc_program_create(ctx, "import ggml\n", "user.qk", &prog);
    printf("%s %s\n", qkc_version(), qkc_strerror(st));
    qkc_program_destroy(prog);
    qkc_ctx_destroy(ctx);
    return st;
}
EOF
check "find_package(qkc COMPONENTS static): qkc::qkc_static links" project static
"$TMP/static-build/user" >"$TMP/out" 2>&1
if [ "$(cat "$TMP/out")" = "$VERSION ok" ]; then ok "static user runs"; else bad "static user runs"; fi

# ---- pkg-config ----
export PKG_CONFIG_PATH=$LIBDIR/pkgconfig
check "pkg-config --cflags --libs qkc qkc_rt" pkg-config --cflags --libs qkc qkc_rt
if grep -q -- "-I$PREFIX/include" "$TMP/out" && grep -q -- "-L$LIBDIR " "$TMP/out" &&
  grep -q -- "-lqkc " "$TMP/out" && grep -q -- "$LIBDIR/libqkc_rt.a" "$TMP/out"; then
  ok "pkg-config names the prefix's include dir and libraries"
else
  bad "pkg-config names the prefix's include dir and libraries"
fi
cat >"$TMP/rt.c" <<'EOF'
#include <qkc_aot.h>
#include <stdio.h>
int main(void)
{
    qkc_rt_pool *pool = qkc_rt_pool_new(2);
    printf("%s %d\n", qkc_rt_version(), qkc_rt_pool_threads(pool));
    qkc_rt_pool_free(pool);
    return 0;
}
EOF
cat >"$TMP/jit.c" <<'EOF'
#include <qkc.h>
#include <stdio.h>
int main(void)
{
    printf("%s\n", qkc_version());
    return 0;
}
EOF
# shellcheck disable=SC2046 # pkg-config's words are separate arguments
check "cc with pkg-config qkc_rt" cc -o "$TMP/rt" "$TMP/rt.c" $(pkg-config --cflags --libs qkc_rt)
"$TMP/rt" >"$TMP/out" 2>&1
if [ "$(cat "$TMP/out")" = "$VERSION 2" ]; then ok "qkc_rt program runs"; else bad "qkc_rt program runs"; fi
# shellcheck disable=SC2046
check "cc with pkg-config qkc" cc -o "$TMP/jit" "$TMP/jit.c" $(pkg-config --cflags --libs qkc)
LD_LIBRARY_PATH=$LIBDIR "$TMP/jit" >"$TMP/out" 2>&1
if [ "$(cat "$TMP/out")" = "$VERSION" ]; then ok "libqkc program runs"; else bad "libqkc program runs"; fi

# ---- the installed qkc and its standard formats ----
cat >"$TMP/uses_dsl.qk" <<'EOF'
import ggml
kernel gemv(x: f32[K], W: q4_0[N, K]) -> y: f32[N] {
  y[n] = sum(k) x[k] * W[n, k]
}
EOF
# `qkc info FORMAT` says which file defines a standard format.
installed_dsl() { grep -q "defined at $1/share/qkc/dsl/ggml.qk" "$TMP/out"; }
check "installed qkc check of a file importing ggml" "$PREFIX/bin/qkc" check "$TMP/uses_dsl.qk"
"$PREFIX/bin/qkc" info q4_0 >"$TMP/out" 2>&1
if installed_dsl "$PREFIX"; then ok "installed qkc reads <prefix>/share/qkc/dsl"; else bad "installed qkc reads <prefix>/share/qkc/dsl"; fi

if unshare -rm true 2>/dev/null; then
  # A private mount namespace where an empty tmpfs hides the source tree.
  # shellcheck disable=SC2016 # expanded by the inner sh
  unshare -rm sh -c 'mount -t tmpfs none "$1" && "$2/bin/qkc" check "$3" && "$2/bin/qkc" info q4_0' \
    sh "$SRC" "$PREFIX" "$TMP/uses_dsl.qk" >"$TMP/out" 2>&1
  if installed_dsl "$PREFIX"; then
    ok "installed qkc without the source tree: finds its formats"
  else
    bad "installed qkc without the source tree: finds its formats"
  fi
else
  echo "skipped: hiding the source tree (unshare -rm is not allowed here)"
fi
mv "$PREFIX" "$TMP/moved"
"$TMP/moved/bin/qkc" info q4_0 >"$TMP/out" 2>&1
if installed_dsl "$TMP/moved"; then ok "a moved prefix: qkc still finds its formats"; else bad "a moved prefix: qkc still finds its formats"; fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
