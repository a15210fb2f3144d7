#!/usr/bin/env bash
# cli_run.sh — runs the qkc CLI end to end: every kernel of examples/*.qk
# with small dims (must print PASS), emit stages, info, pack/unpack.
# Usage: bash tests/cli_run.sh path/to/qkc
set -uo pipefail
QKC=${1:?usage: cli_run.sh path/to/qkc}
cd "$(dirname "$0")/.."
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -f "$TMP/out" ] && sed 's/^/     | /' "$TMP/out" | head -20; }

# Small dims, deliberately not multiples of any tile.
small_dim() {
  case $1 in
    M) echo 3 ;; N) echo 37 ;; K) echo 100 ;; B) echo 2 ;; C) echo 3 ;;
    H) echo 9 ;; W) echo 10 ;; O) echo 5 ;; L) echo 12 ;; *) echo 7 ;;
  esac
}

# The kernel's dims, from the "--dims is missing" message of qkc run.
dims_for() {
  local names
  names=$("$QKC" run "$1" --kernel "$2" --dims "" 2>&1 | sed -n 's/.*has dims \(.*\))$/\1/p' | tr -d ' ')
  local out="" d
  IFS=, read -ra ds <<<"$names"
  for d in "${ds[@]}"; do
    [ "$d" = none ] && continue
    out="$out${out:+,}$d=$(small_dim "$d")"
  done
  echo "$out"
}

for f in examples/*.qk; do
  for k in $(sed -n 's/^kernel \([A-Za-z_][A-Za-z_0-9]*\).*/\1/p' "$f"); do
    dims=$(dims_for "$f" "$k")
    if "$QKC" run "$f" --kernel "$k" --dims "$dims" --reps 3 >"$TMP/out" 2>&1 && grep -q PASS "$TMP/out" &&
      ! grep -q FAIL "$TMP/out"; then
      ok "run $f $k --dims $dims"
    else
      bad "run $f $k --dims $dims"
    fi
  done
done

# the row-interleaved layouts that grow (base-3 digits as 2-bit codes, 2:4
# codes stored densely): converted by run, checked on ragged N and K
for k in ternary sparse; do
  for r in 1 4; do
    if "$QKC" run examples/compact_gemv.qk --kernel $k --dims N=37,K=549 --reps 2 -c repack=$r >"$TMP/out" 2>&1 &&
      grep -q PASS "$TMP/out" && ! grep -q FAIL "$TMP/out"; then
      ok "run compact_gemv.qk $k -c repack=$r (N=37, K=549)"
    else
      bad "run compact_gemv.qk $k -c repack=$r (N=37, K=549)"
    fi
  done
done

# sign-magnitude codes (e4m3) on the int8 dot path: with repack on
# AVX-512 VBMI, checked on ragged N and K; x as q8_0 is refused, saying
# what x needs, exit 1 and no crash
if grep -qw avx512vbmi /proc/cpuinfo 2>/dev/null; then
  if "$QKC" run examples/mxfp8_gemv.qk --kernel gemv --dims N=37,K=301 --reps 2 -c repack=1 >"$TMP/out" 2>&1 &&
    grep -q PASS "$TMP/out" && ! grep -q FAIL "$TMP/out"; then
    ok "run mxfp8_gemv.qk gemv -c repack=1 (N=37, K=301)"
  else
    bad "run mxfp8_gemv.qk gemv -c repack=1 (N=37, K=301)"
  fi
else
  echo "skipped: mxfp8_gemv.qk gemv -c repack=1 (the host has no AVX-512 VBMI)"
fi
"$QKC" run examples/mxfp8_gemv.qk --kernel gemv_q8 --dims N=64,K=64 -c repack=1 >"$TMP/out" 2>&1
rc=$?
if [ $rc = 1 ] && grep -q "kernel 'gemv_q8'.*e8m0 block scale" "$TMP/out"; then
  ok "mxfp8 x q8_0 with repack refused, saying what x needs"
else
  bad "mxfp8 x q8_0 with repack refused, saying what x needs (rc $rc)"
fi

# threads and seeds
for t in 1 2 3; do
  if "$QKC" run examples/q4_gemv.qk --kernel gemv --dims N=61,K=333 --threads $t --seed 7 --reps 3 >"$TMP/out" 2>&1 &&
    grep -q "seed 7" "$TMP/out" && grep -q PASS "$TMP/out"; then
    ok "run --threads $t --seed 7"
  else
    bad "run --threads $t --seed 7"
  fi
done

# missing dims name the missing ones
"$QKC" run examples/q4_gemv.qk --kernel gemv --dims N=8 >"$TMP/out" 2>&1
rc=$?
if [ $rc = 1 ] && grep -q -- "--dims is missing K (kernel gemv has dims" "$TMP/out"; then ok "missing dims"; else bad "missing dims (rc $rc)"; fi

# emit
if "$QKC" emit --stage=tir examples/q4_gemv.qk --kernel gemv >"$TMP/out" 2>&1 && grep -qE "(^| )(for|loop) " "$TMP/out"; then
  ok "emit tir shows loops"
else
  bad "emit tir shows loops"
fi
for s in ast kir llvm; do
  if "$QKC" emit --stage=$s examples/q4_gemv.qk >"$TMP/out" 2>&1 && [ -s "$TMP/out" ]; then ok "emit $s"; else bad "emit $s"; fi
done
# A minifloat decoded through a lookup table in every step of an unrolled
# loop: one constant table in the module, not one per lookup (the short
# pass pipeline does not merge them; 26 copies cost mxfp8_e5m2 5%).
printf 'import mx\nkernel g(x: f32[K], W: mxfp8_e5m2[N, K]) -> y: f32[N] {\n  y[n] = sum(k) x[k] * W[n, k]\n}\n' >"$TMP/e5.qk"
if "$QKC" emit --stage=llvm "$TMP/e5.qk" >"$TMP/out" 2>&1 && [ "$(grep -c '^@qkc\.lut' "$TMP/out")" = 1 ]; then
  ok "emit llvm: one constant table for the lookups of one table"
else
  bad "emit llvm: one constant table for the lookups of one table ($(grep -c '^@qkc\.lut' "$TMP/out"))"
fi
if grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
  if "$QKC" emit --stage=asm examples/q4_gemv.qk >"$TMP/out" 2>&1 && grep -q zmm "$TMP/out"; then
    ok "emit asm uses zmm registers"
  else
    bad "emit asm uses zmm registers"
  fi
else
  echo "skip emit asm zmm (no avx512f)"
fi
if [ -d /usr/local/cuda ]; then
  if "$QKC" emit --stage=ptx examples/q4_gemv.qk >"$TMP/out" 2>&1 && grep -q "\.entry" "$TMP/out"; then
    ok "emit ptx has .entry"
  else
    bad "emit ptx has .entry"
  fi
else
  echo "skip emit ptx (no /usr/local/cuda)"
fi
if "$QKC" emit --stage=cuda examples/q4_gemv.qk >"$TMP/out" 2>&1 && grep -q "__global__" "$TMP/out"; then
  ok "emit cuda from a CPU machine"
else
  bad "emit cuda from a CPU machine"
fi

# tensor cores: f16 and q8 activations, 2:4 weights (issue 6)
cat >"$TMP/mma.qk" <<'EOF_QK'
import ggml
import sparse
format q8a { code = int8; block = 32; scale = f32 }
kernel w4a16(x: f16[M, K], W: q4_0[N, K]) -> y: f32[M, N] { y[m, n] = sum(k) x[m, k] * W[n, k] }
kernel w4a8(x: f32[M, K], W: q4_0[N, K]) -> y: f32[M, N] {
  xq[m, k] = quantize(x[m, k], q8a)
  y[m, n] = sum(k) xq[m, k] * W[n, k]
}
kernel sp(x: f16[M, K], W: int4_2of4[N, K]) -> y: f32[M, N] { y[m, n] = sum(k) x[m, k] * W[n, k] }
EOF_QK
for want in "w4a16 mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32" \
            "w4a8 mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32" \
            "sp mma.sp.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32"; do
  set -- $want
  if "$QKC" emit --stage=cuda "$TMP/mma.qk" --kernel "$1" --target sm_90 >"$TMP/out" 2>&1 && grep -qF "$2" "$TMP/out"; then
    ok "emit cuda --target sm_90: $1 uses $2"
  else
    bad "emit cuda --target sm_90: $1 uses $2"
  fi
done

# info
if "$QKC" info examples/q4_gemv.qk >"$TMP/out" 2>&1 && grep -q "void gemv(" "$TMP/out" && grep -q "bits/weight" "$TMP/out"; then
  ok "info"
else
  bad "info"
fi

# pack / unpack
if "$QKC" pack examples/q3_zero.qk --format q3z --rows 5 --cols 130 -o "$TMP/w.bin" >"$TMP/out" 2>&1 &&
  "$QKC" unpack examples/q3_zero.qk --format q3z --rows 5 --cols 130 -i "$TMP/w.bin" -o "$TMP/w.f32" >>"$TMP/out" 2>&1 &&
  [ "$(stat -c %s "$TMP/w.f32")" = $((5 * 130 * 4)) ]; then
  ok "pack/unpack"
else
  bad "pack/unpack"
fi
if "$QKC" pack examples/q3_zero.qk --format q3z --rows 2 --cols 64 --in "$TMP/w.f32" -o "$TMP/x.bin" >"$TMP/out" 2>&1; then
  bad "pack --in with the wrong size must fail"
else
  ok "pack --in with the wrong size fails"
fi

# a vector-codebook format: pack needs --codebook of the right size; other
# formats refuse it; --mse packs and unpacks
cat >"$TMP/vq.qk" <<'QK'
format vq { code = vq4 dim 2; block = 8; scale = f16 per row }
QK
# expect_fail NAME PATTERN CMD...: exit 1, the message matches, no crash
expect_fail() {
  local name=$1 pat=$2
  shift 2
  "$@" >"$TMP/out" 2>&1
  local rc=$?
  if [ $rc -eq 1 ] && grep -q "$pat" "$TMP/out"; then ok "$name"; else bad "$name (rc $rc)"; fi
}
expect_fail "pack vq without --codebook" "give it with --codebook" \
  "$QKC" pack "$TMP/vq.qk" --format vq --rows 2 --cols 16 -o "$TMP/v.bin"
head -c 10 /dev/zero >"$TMP/short.bin"
expect_fail "pack vq with a short codebook" "the codebook needs 64 bytes, got 10" \
  "$QKC" pack "$TMP/vq.qk" --format vq --rows 2 --cols 16 --codebook "$TMP/short.bin" -o "$TMP/v.bin"
expect_fail "pack vq with a missing codebook file" "cannot read" \
  "$QKC" pack "$TMP/vq.qk" --format vq --rows 2 --cols 16 --codebook "$TMP/none.bin" -o "$TMP/v.bin"
expect_fail "pack --codebook on a format without one" "has no codebook" \
  "$QKC" pack examples/q3_zero.qk --format q3z --rows 2 --cols 16 --codebook "$TMP/short.bin" -o "$TMP/v.bin"
head -c 64 /dev/urandom >"$TMP/book.bin"
if "$QKC" pack "$TMP/vq.qk" --format vq --rows 2 --cols 16 --codebook "$TMP/book.bin" -o "$TMP/v.bin" >"$TMP/out" 2>&1 &&
  "$QKC" unpack "$TMP/vq.qk" --format vq --rows 2 --cols 16 --codebook "$TMP/book.bin" -i "$TMP/v.bin" -o "$TMP/v.f32" >>"$TMP/out" 2>&1 &&
  "$QKC" pack examples/q3_zero.qk --format q3z --rows 5 --cols 130 --mse -o "$TMP/m.bin" >>"$TMP/out" 2>&1; then
  ok "pack/unpack with --codebook, pack --mse"
else
  bad "pack/unpack with --codebook, pack --mse"
fi

# ---- --config: row-interleaved weights converted by qkc run; a bad value is a usage error ----
"$QKC" run examples/gemv_int8.qk --kernel gemv --dims N=45,K=300 --reps 3 -c repack=1 >"$TMP/out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "PASS" "$TMP/out"; then ok "run -c repack=1: PASS"; else bad "run -c repack=1: PASS (rc $rc)"; fi
"$QKC" run examples/gemv_int8.qk --kernel gemv --dims N=45,K=300 -c repack=99 >"$TMP/out" 2>&1
rc=$?
if [ $rc -eq 2 ] && grep -q "repack=99 is out of range" "$TMP/out"; then ok "run -c repack=99: exit 2"; else
  bad "run -c repack=99: exit 2 (rc $rc)"
fi
"$QKC" run examples/q3_zero.qk --kernel gemv3 --dims N=45,K=300 -c repack=1 >"$TMP/out" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "repack=[0-9]*: the statement is not one sum.*nor of f32 work: only codes of 1, 2 or 4 bits" "$TMP/out"; then
  ok "run -c repack=1 on an f32 GEMV of a format without the f32 form: refused with the reason"
else
  bad "run -c repack=1 on an f32 GEMV of a format without the f32 form: refused with the reason (rc $rc)"
fi
# q4_0 times f32 x: the layout's f32 form, checked against the reference
"$QKC" run examples/q4_gemv.qk --kernel gemv --dims N=45,K=300 --reps 3 -c repack=1 >"$TMP/out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q PASS "$TMP/out" && grep "config:" "$TMP/out" | grep -q "repack=1"; then
  ok "run -c repack=1 on an f32 GEMV of q4_0 (the f32 form): PASS"
else
  bad "run -c repack=1 on an f32 GEMV of q4_0 (the f32 form): PASS (rc $rc)"
fi

# ---- --layout: a bad value is a usage error in every command that takes it; f32 x keeps its layout
# where its format has no f32 form ----
for c in run bench emit; do
  extra="--dims N=45,K=300"; [ $c = emit ] && extra="--stage=tir"
  "$QKC" $c examples/gemv_int8.qk --kernel gemv $extra --layout packed >"$TMP/out" 2>&1
  rc=$?
  if [ $rc -eq 2 ] && grep -q "layout takes 'own'" "$TMP/out"; then ok "$c --layout packed: exit 2"; else
    bad "$c --layout packed: exit 2 (rc $rc)"
  fi
done
"$QKC" run examples/q3_zero.qk --kernel gemv3 --dims N=45,K=300 --reps 3 --layout any >"$TMP/out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q PASS "$TMP/out" && grep "config:" "$TMP/out" | grep -qv "repack"; then
  ok "run --layout any on an f32 GEMV without the f32 form: its own layout, PASS"
else
  bad "run --layout any on an f32 GEMV without the f32 form: its own layout, PASS (rc $rc)"
fi
"$QKC" run examples/q4_gemv.qk --kernel gemv --dims N=45,K=300 --reps 3 --layout any >"$TMP/out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q PASS "$TMP/out" && grep "config:" "$TMP/out" | grep -q "repack"; then
  ok "run --layout any on an f32 GEMV of q4_0: row-interleaved (the f32 form), PASS"
else
  bad "run --layout any on an f32 GEMV of q4_0: row-interleaved (the f32 form), PASS (rc $rc)"
fi

# ---- emit --config: the configuration shows in the tiled IR; a bad one is an error, no crash ----
"$QKC" emit --stage=tir examples/gemv_int8.qk --kernel gemv -c "repack=1 tile_par=8" >"$TMP/out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "config: .*tile_par=8.*repack=1" "$TMP/out" && grep -q "sums" "$TMP/out"; then
  ok "emit -c repack=1: the config line and the sums phase"
else
  bad "emit -c repack=1: the config line and the sums phase (rc $rc)"
fi
"$QKC" emit --stage=tir examples/gemv_int8.qk --kernel gemv -c "frob=1" >"$TMP/out" 2>&1
rc=$?
if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "unknown key 'frob'" "$TMP/out"; then ok "emit -c frob=1: error"; else
  bad "emit -c frob=1: error (rc $rc)"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
