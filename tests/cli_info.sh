#!/usr/bin/env bash
# cli_info.sh — `qkc info` on standard-library formats, FILE.qk:NAME,
# --list and errors. Expected sizes come from the external definitions
# (../shared/FORMATS.md: ggml block structs, OCP MX, NVFP4, AQLM), not from
# qkc's output.
# Usage: bash tests/cli_info.sh path/to/qkc
set -uo pipefail
QKC=${1:?usage: cli_info.sh path/to/qkc}
cd "$(dirname "$0")/.."
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -f "$TMP/out" ] && sed 's/^/     | /' "$TMP/out" | head -30; }

# Runs qkc with the remaining args; output (stdout + stderr) in $TMP/out,
# exit status in $rc.
q() { "$QKC" "$@" >"$TMP/out" 2>&1; rc=$?; }

# name block bytes-per-block bits/weight (from the definitions)
expected() {
  cat <<'EOF'
q4_0 32 18 4.5
q4_1 32 20 5
q5_0 32 22 5.5
q5_1 32 24 6
q8_0 32 34 8.5
iq4_nl 32 18 4.5
tq2_0 256 66 2.0625
tq1_0 256 54 1.6875
mxfp4 32 17 4.25
q2_K 256 84 2.625
q4_K 256 144 4.5
q5_K 256 176 5.5
mxfp4_e2m1 32 17 4.25
mxfp6_e3m2 32 25 6.25
mxfp6_e2m3 32 25 6.25
mxfp8_e4m3 32 33 8.25
mxfp8_e5m2 32 33 8.25
mxint8 32 33 8.25
nvfp4 16 9 4.5
nvfp4_ggml 64 36 4.5
nf4 64 34 4.25
aqlm_1x16 8 2 2
aqlm_2x8 8 2 2
e8_grid 32 10 2.5
bitnet_b158 128 32 2
act_i8_row 128 128 8
act_i8_b32 32 36 9
int4_2of4 32 14 3.5
int8_2of4 32 22 5.5
xnor 64 8 1
act_bin_row 64 8 1
act_sign 64 8 1
EOF
}
# Canonical layouts put each field on a fresh byte: e8_grid = f16 scale (2)
# + 4 x 8-bit indices (4) + 4 x 7 sign bits (28 bits -> 4) = 10 bytes;
# int4_2of4 = 2 + 16 x 4 bits (8) + 16 x 2-bit indices (4) = 14 bytes.

# ---- --list contains every format of dsl/*.qk, with its sizes ----
q info --list
if [ $rc -eq 0 ]; then ok "info --list exits 0"; else bad "info --list exits 0 (rc $rc)"; fi
cp "$TMP/out" "$TMP/list"
for n in $(sed -n 's/^format \([A-Za-z_][A-Za-z_0-9]*\).*/\1/p' dsl/*.qk); do
  if grep -q "^$n " "$TMP/list"; then ok "--list has $n"; else bad "--list has $n"; fi
done
while read -r name block bytes bpw; do
  # columns: format bits/weight block bytes file
  if awk -v n="$name" -v b="$bpw" -v bl="$block" -v by="$bytes" \
    '$1 == n && ($2 - b) < 1e-9 && (b - $2) < 1e-9 && $3 == bl && $4 == by { f = 1 } END { exit !f }' "$TMP/list"; then
    ok "--list $name: block $block, $bytes bytes, $bpw bits/weight"
  else
    cp "$TMP/list" "$TMP/out"
    bad "--list $name: block $block, $bytes bytes, $bpw bits/weight"
  fi
done < <(expected)

# ---- one library format in detail ----
# name dims expected-total-bytes (rows * (row header + blocks * bytes) + tensor header)
while read -r name dims total; do
  q info "$name" --dims "$dims"
  if [ $rc -eq 0 ] && grep -q "^format $name " "$TMP/out" && grep -q "bits/weight" "$TMP/out" &&
    grep -q "^fields" "$TMP/out" && grep -q "^layout" "$TMP/out" && grep -q "= $total bytes" "$TMP/out"; then
    ok "info $name --dims $dims: $total bytes"
  else
    bad "info $name --dims $dims: $total bytes"
  fi
done <<'EOF'
q4_0 N=10,K=64 360
q4_K N=3,K=512 864
q2_K B=2,N=3,K=256 504
tq1_0 N=1,K=300 108
nvfp4 N=2,K=32 40
aqlm_1x16 N=5,K=16 30
mxint8 N=7,K=33 462
EOF
# q4_0: 10 rows x 2 blocks x 18; q4_K: 3 x 2 x 144; q2_K: 6 rows x 84;
# tq1_0: K=300 -> 2 blocks x 54; nvfp4: 4-byte f32 tensor scale + 2 x 2 x 9;
# aqlm_1x16: 5 rows x (2-byte f16 row scale + 2 blocks x 2 bytes);
# mxint8: 7 rows x 2 blocks x 33.

q info q4_0
if [ $rc -eq 0 ] && grep -q "= 9437184 bytes" "$TMP/out"; then ok "info q4_0: default shape 4096 x 4096"; else bad "info q4_0: default shape 4096 x 4096"; fi

# the row-interleaved layout: its size where it grows (N = 40 rows pad to
# 48: tq1_0 48 x 2 blocks x 66, int4_2of4 48 x 4 x 18), or why there is none
# (nf4's f32 table values are integers times 2^-27 spanning 2^28: four
# bytes; e4m3's NaN codes have no integer, but its magnitudes do, with
# the sign on x; e5m2's infinities have none)
while read -r name dims want; do
  q info "$name" --dims "$dims"
  if [ $rc -eq 0 ] && grep "^row-interleaved layout" "$TMP/out" | grep -qF "$want"; then
    ok "info $name: row-interleaved layout: $want"
  else
    bad "info $name: row-interleaved layout: $want"
  fi
done <<'EOF'
tq1_0 N=40,K=512 6336 bytes for 48 rows, 2.062 bits/weight (base-3 digits as 2-bit codes; the format's own: 5184)
int4_2of4 N=40,K=128 3456 bytes for 48 rows, 4.5 bits/weight (N:M codes stored densely
q4_0 N=40,K=128 the format's size (rows a multiple of R)
nf4 N=40,K=128 the format's size (rows a multiple of R)
mxfp8_e4m3 N=40,K=128 the format's size (rows a multiple of R); sign-magnitude codes: read with repack=16
mxfp8_e5m2 N=40,K=128 none: no integer image
aqlm_2x8 N=40,K=128 none: no integer image
EOF

# the layout's f32 form (f32 work times the weights, -c repack=R): which
# formats have it (codes of 1, 2 or 4 bits: a lookup of 2^w values, with a
# min or a zero field too), or why not; and the integer image's bytes
while read -r name want; do
  q info "$name"
  if [ $rc -eq 0 ] && grep "^row-interleaved layout, f32 work" "$TMP/out" | grep -qF "$want"; then
    ok "info $name: f32 form: $want"
  else
    bad "info $name: f32 form: $want"
  fi
done <<'EOF'
nf4 the format's size; a shift and a lookup of 16 f32 values
q4_1 the format's size; a shift and a lookup of 16 f32 values
tq2_0 the format's size; a shift and a lookup of 4 f32 values
xnor the format's size; a shift and a lookup of 2 f32 values
q8_0 none: only codes of 1, 2 or 4 bits in one part have an f32 form
q4_K none: sub-block scales and mins have no f32 form
aqlm_2x8 none: codebook and N:M codes have no f32 form
EOF
for nb in "nf4 4 bytes" "mxfp6_e3m2 2 bytes" "q4_0 1 byte"; do
  set -- $nb
  q info "$1"
  if [ $rc -eq 0 ] && grep -q "^integer image: $2 $3 a code" "$TMP/out"; then ok "info $1: integer image of $2 $3"; else
    bad "info $1: integer image of $2 $3"
  fi
done

# the q4_K layout table has the pieces of the DSL text, explicit
q info q4_K
if [ $rc -eq 0 ] && grep -q "layout (explicit)" "$TMP/out" && [ "$(grep -c "subscale" "$TMP/out")" -ge 3 ]; then
  ok "info q4_K: explicit layout pieces"
else
  bad "info q4_K: explicit layout pieces"
fi

# a VQ format reports its codebook: 1 x 65536 x 8 f16
q info aqlm_1x16
if [ $rc -eq 0 ] && grep -q "524288 elements" "$TMP/out"; then ok "info aqlm_1x16: codebook size"; else bad "info aqlm_1x16: codebook size"; fi
q info aqlm_2x8
if [ $rc -eq 0 ] && grep -q "codebook (a kernel parameter): \\[2, 256, 8\\] f16 = 4096 elements" "$TMP/out"; then
  ok "info aqlm_2x8: the codebook's shape with its books"
else
  bad "info aqlm_2x8: the codebook's shape with its books"
fi

# ---- FILE.qk:NAME ----
q info examples/custom_format.qk:sp5 --dims N=2,K=64
if [ $rc -eq 0 ] && grep -q "^format sp5 " "$TMP/out" && grep -q "bits/weight: 3.75" "$TMP/out" &&
  grep -q "= 60 bytes" "$TMP/out"; then
  ok "info examples/custom_format.qk:sp5"
else
  bad "info examples/custom_format.qk:sp5"
fi
q info examples/q4_gemv.qk:q4_0
if [ $rc -eq 0 ] && grep -q "^format q4_0 " "$TMP/out"; then ok "info FILE:imported format"; else bad "info FILE:imported format"; fi
q info examples/q4_gemv.qk:nope
if [ $rc -eq 1 ] && grep -q "no format 'nope'" "$TMP/out" && grep -q "q4_0" "$TMP/out"; then
  ok "info FILE:unknown -> exit 1, lists the file's formats"
else
  bad "info FILE:unknown -> exit 1, lists the file's formats (rc $rc)"
fi

# ---- the program form still works ----
q info examples/q4_gemv.qk
if [ $rc -eq 0 ] && grep -q "^formats" "$TMP/out" && grep -q "^kernels (1)" "$TMP/out"; then
  ok "info FILE.qk"
else
  bad "info FILE.qk (rc $rc)"
fi

# ---- errors ----
q info no_such_format
if [ $rc -eq 1 ] && grep -q "unknown format 'no_such_format'" "$TMP/out" && grep -q "q4_0" "$TMP/out" &&
  grep -q "nvfp4" "$TMP/out"; then
  ok "unknown format -> exit 1, lists the library"
else
  bad "unknown format -> exit 1, lists the library (rc $rc)"
fi
q info
if [ $rc -eq 2 ]; then ok "info without arguments -> usage, exit 2"; else bad "info without arguments -> exit 2 (rc $rc)"; fi
q info --list q4_0
if [ $rc -eq 2 ]; then ok "--list with a name -> usage, exit 2"; else bad "--list with a name -> exit 2 (rc $rc)"; fi
q info q4_0 --dims N=4096,K=x
if [ $rc -eq 1 ] && grep -q "dims" "$TMP/out"; then ok "bad --dims -> exit 1"; else bad "bad --dims -> exit 1 (rc $rc)"; fi
q info --help
if [ $rc -eq 0 ] && grep -q -- "--list" "$TMP/out" && grep -q -- "--dims" "$TMP/out"; then ok "info --help"; else bad "info --help"; fi

# ---- $QKC_DSL_PATH extends the library ----
mkdir -p "$TMP/lib"
printf '# extra\nformat extra_u3 { code = uint3; block = 16; scale = f32 }\n' >"$TMP/lib/extra.qk"
QKC_DSL_PATH="$TMP/lib" "$QKC" info --list >"$TMP/out" 2>&1
# uint3 x 16 = 6 bytes + f32 = 10 bytes per 16 -> 5 bits/weight
if awk '$1 == "extra_u3" && $2 == 5 && $3 == 16 && $4 == 10 { f = 1 } END { exit !f }' "$TMP/out" &&
  grep -q "^q4_0 " "$TMP/out"; then
  ok "QKC_DSL_PATH adds formats to --list"
else
  bad "QKC_DSL_PATH adds formats to --list"
fi
QKC_DSL_PATH="$TMP/lib" "$QKC" info extra_u3 >"$TMP/out" 2>&1
if [ $? -eq 0 ] && grep -q "^format extra_u3 " "$TMP/out"; then ok "info on a QKC_DSL_PATH format"; else bad "info on a QKC_DSL_PATH format"; fi

echo "cli_info: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
