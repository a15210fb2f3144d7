#!/usr/bin/env bash
# cli_library.sh — `qkc run` over every format of the standard library
# (the list comes from `qkc info --list`, so a format added to dsl/ is
# checked without touching this file): a GEMV and a GEMM kernel each, with
# K = 2 blocks + 37 and N, M not multiples of any tile, checked against
# the reference by qkc run itself (PASS or exit 1). Prints one line per
# format and kernel.
# Usage: bash tests/cli_library.sh path/to/qkc
set -uo pipefail
QKC=${1:?usage: cli_library.sh path/to/qkc}
cd "$(dirname "$0")/.."
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0

"$QKC" info --list >"$TMP/list" 2>&1 || { echo "FAIL qkc info --list"; cat "$TMP/list"; exit 1; }
while read -r name bpw block bytes file; do
  [ "$name" = format ] && continue
  # vector codebooks read a codebook parameter: its shape from the format's text
  text=$("$QKC" info "$name" | head -1)
  w="$name" book=""
  if [[ $text =~ vq([0-9]+)\ dim\ ([0-9]+)(\ books\ ([0-9]+))? ]]; then
    n=$((1 << BASH_REMATCH[1])) dim=${BASH_REMATCH[2]} books=${BASH_REMATCH[4]:-1}
    w="$name(C)"
    if [ "$books" = 1 ]; then book=", C: f16[$n, $dim]"; else book=", C: f16[$books, $n, $dim]"; fi
  fi
  cat >"$TMP/k.qk" <<QK
import "$file"
kernel gemv(x: f32[K], W: $w[N, K]$book) -> y: f32[N] {
  y[n] = sum(k) x[k] * W[n, k]
}
kernel gemm(x: f32[M, K], W: $w[N, K]$book, b: f32[N]) -> y: f32[M, N] {
  y[m, n] = relu(sum(k) x[m, k] * W[n, k] + b[n])
}
QK
  K=$((2 * block + 37))
  for kern in gemv gemm; do
    dims="N=67,K=$K"
    [ $kern = gemm ] && dims="M=5,$dims"
    if "$QKC" run "$TMP/k.qk" --kernel $kern --dims $dims --reps 3 >"$TMP/out" 2>&1 &&
      grep -q PASS "$TMP/out"; then
      pass=$((pass + 1)); printf 'ok   %-12s %-5s %-12s %s\n' "$name" $kern "$file" "$(grep -o 'rel err [^ ]*' "$TMP/out")"
    else
      fail=$((fail + 1)); echo "FAIL $name $kern"; sed 's/^/     | /' "$TMP/out" | head -20
    fi
  done
done <"$TMP/list"
echo "cli_library: $pass passed, $fail failed"
[ "$pass" -ge 60 ] && [ "$fail" -eq 0 ]
