#!/usr/bin/env bash
# cli_bench.sh — `qkc bench`: the check line, the timing table, the
# --json schema (grep-based), the baselines, --overhead, the probe stored
# in the tuning database, and bad inputs (a message and a non-zero exit
# status, never a crash). No timed assertions: only that figures appear.
# The tuning database and the kernel cache live in a temporary directory.
# Usage: bash tests/cli_bench.sh path/to/qkc
source "$(dirname "$0")/cli-common.sh" "$@"
export QKC_TUNE_DB="$TMP/tune.db" QKC_CACHE_DIR="$TMP/cache"

# Runs qkc with the remaining args: stdout in $TMP/out (stderr appended
# unless Q_SPLIT=1, then in $TMP/err), exit status in $rc.
q() {
  if [ "${Q_SPLIT:-0}" = 1 ]; then
    "$QKC" "$@" >"$TMP/out" 2>"$TMP/err"
  else
    "$QKC" "$@" >"$TMP/out" 2>&1
  fi
  rc=$?
}
G="examples/q4_gemv.qk --kernel gemv"

# ---- a small bench: the probe is measured once and stored ----
q bench $G --dims N=300,K=320 --reps 3 --mode both --threads 1
if [ $rc -eq 0 ] && grep -q "^check: .*PASS" "$TMP/out" && grep -q "GB/s" "$TMP/out" &&
  grep -q "^cold " "$TMP/out" && grep -q "^hot " "$TMP/out" && grep -q "^config: .*(" "$TMP/out"; then
  ok "bench N=300,K=320: PASS, config, cold and hot rows"
else
  bad "bench N=300,K=320: PASS, config, cold and hot rows (rc $rc)"
fi
if grep -q "^probe: none stored for this machine: measured now" "$TMP/out"; then ok "first run measures the probe"; else bad "first run measures the probe"; fi
q bench $G --dims N=300,K=320 --reps 3 --mode hot --threads 1
if [ $rc -eq 0 ] && ! grep -q "measured now" "$TMP/out" && grep -q "^probe: read GB/s" "$TMP/out" &&
  grep -q "^hot .*% " "$TMP/out"; then
  ok "second run uses the stored probe, ratios shown"
else
  bad "second run uses the stored probe, ratios shown (rc $rc)"
fi

# ---- --json: one object on stdout with the documented keys ----
Q_SPLIT=1 q bench $G --dims N=300,K=320 --reps 3 --threads 1 --json --overhead --baseline ref
if [ $rc -eq 0 ] && [ "$(wc -l <"$TMP/out")" -eq 1 ] && [ "$(head -c 1 "$TMP/out")" = "{" ]; then
  ok "--json: one line, one object"
else
  bad "--json: one line, one object (rc $rc)"
fi
missing=""
for k in kernel file dims target fingerprint config config_origin check shape rel_err pass probe dram_gbps \
  int8_gops f32_gflops runs mode threads reps median_s min_s weight_bytes weight_bytes_own input_bytes gbps_weights \
  gbps_weights_own gbps_inputs \
  gops ratio_bw ratio_bw_level ratio_int8_peak ratio_f32_peak baseline speedup overhead launch_us direct_us \
  diff_us jit_cold_ms disk_hit_ms; do
  grep -q "\"$k\": " "$TMP/out" || missing="$missing $k"
done
if [ -z "$missing" ]; then ok "--json has every documented key"; else bad "--json is missing:$missing"; fi
if grep -q '"pass": true' "$TMP/out" && grep -q '"mode": "cold"' "$TMP/out" && grep -q '"mode": "hot"' "$TMP/out" &&
  grep -q '"dims": {"K": 320, "N": 300}' "$TMP/out" && grep -q '"kind": "ref"' "$TMP/out"; then
  ok "--json: check.pass true, both modes, dims, ref baseline"
else
  bad "--json: check.pass true, both modes, dims, ref baseline"
fi
if ! grep -Eq ': -?(nan|inf)' "$TMP/out"; then ok "--json has no nan/inf"; else bad "--json has no nan/inf"; fi

# ---- baselines and overheads in text ----
q bench $G --dims N=300,K=320 --reps 3 --threads 1 --mode hot --baseline ref
if [ $rc -eq 0 ] && grep -q "speed-up [0-9.]*x" "$TMP/out"; then ok "--baseline ref: speed-up"; else bad "--baseline ref: speed-up (rc $rc)"; fi
q bench $G --dims N=300,K=320 --reps 3 --threads 1 --mode hot --overhead
if [ $rc -eq 0 ] && grep -q "^overhead: launch [0-9.]* us" "$TMP/out" &&
  grep -q "direct call [0-9.]* us" "$TMP/out" && grep -q "ms disk-cache hit" "$TMP/out"; then
  ok "--overhead: launch, direct call, compile latency"
else
  bad "--overhead: launch, direct call, compile latency (rc $rc)"
fi
q bench examples/q8_gemm_relu.qk --dims M=5,N=40,K=64 --reps 3 --threads 1 --mode hot --baseline sgemm
if [ $rc -eq 0 ] && grep -q "baseline sgemm (.*GFLOP/s\|sgemm baseline skipped: libopenblas not found" "$TMP/out"; then
  ok "--baseline sgemm: a figure or the skipped line"
else
  bad "--baseline sgemm: a figure or the skipped line (rc $rc)"
fi
# --baseline read: a same-run read of the weights' bytes after each cold
# repetition, one line per cold row (none after hot rows); a tensor too
# small to split says skipped
q bench $G --dims N=300,K=320 --reps 3 --threads 1,2 --mode both --baseline read
if [ $rc -eq 0 ] && [ "$(grep -c "^      baseline read (the same bytes, cold, [12] threads*, .* GB/s; kernel / read = [0-9.]*%" "$TMP/out")" = 2 ] &&
  [ "$(grep -c "baseline read" "$TMP/out")" = 2 ]; then
  ok "--baseline read: a line per cold row"
else
  bad "--baseline read: a line per cold row (rc $rc)"
fi
Q_SPLIT=1 q bench $G --dims N=300,K=320 --reps 3 --threads 1 --mode both --json --baseline read
if [ $rc -eq 0 ] && grep -q '"mode": "cold".*"read_gbps": [0-9.e+-]*, "ratio_read": [0-9.e+-]*}' "$TMP/out" &&
  grep -q '"mode": "hot".*"read_gbps": null, "ratio_read": null}' "$TMP/out" && grep -q '"kind": "read"' "$TMP/out"; then
  ok "--baseline read --json: read_gbps and ratio_read in the cold run, null in the hot one"
else
  bad "--baseline read --json: read_gbps and ratio_read in the cold run, null in the hot one (rc $rc)"
fi
# expect_skip NAME MESSAGE ARGS...: bench ARGS exits 0 and says MESSAGE
expect_skip() {
  local name=$1 msg=$2
  shift 2
  q bench "$@"
  if [ $rc -eq 0 ] && grep -qF "$msg" "$TMP/out"; then ok "$name: skipped with the reason"; else bad "$name: skipped with the reason (rc $rc)"; fi
}
expect_skip "--baseline read --mode hot" "baseline read skipped: it runs after cold repetitions only (--mode hot)" \
  $G --dims N=300,K=320 --reps 3 --threads 1 --mode hot --baseline read
expect_skip "--baseline read on 54 bytes of weights" "baseline read skipped: the weights hold fewer than 512 bytes per thread" \
  $G --dims N=3,K=32 --reps 3 --threads 1 --mode cold --baseline read
expect_skip "--baseline sgemm on a GEMV" "sgemm baseline skipped: the kernel's dims are not M, N, K" \
  $G --dims N=300,K=320 --reps 3 --threads 1 --mode hot --baseline sgemm

# ---- a shape too big for the reference is checked on a reduced one ----
q bench $G --dims N=4200,K=4100 --reps 2 --threads 1 --mode hot
if [ $rc -eq 0 ] && grep -q "^check: .* at K=999,N=999 (reduced from K=4100,N=4200.*PASS" "$TMP/out"; then
  ok "big shape: checked at K=999,N=999"
else
  bad "big shape: checked at K=999,N=999 (rc $rc)"
fi
q bench $G --dims N=300,K=320 --reps 2 --threads 1 --mode hot --no-check --config "unroll=2"
if [ $rc -eq 0 ] && ! grep -q "^check:" "$TMP/out" && grep -q "^config: .*unroll=2.*(explicit)" "$TMP/out"; then
  ok "--no-check, --config: no check line, explicit config"
else
  bad "--no-check, --config: no check line, explicit config (rc $rc)"
fi

# ---- bad inputs: a message, a non-zero status below 128 ----
expect_err() { # name, grep pattern, args...
  local name=$1 pat=$2
  shift 2
  q bench "$@"
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q -- "$pat" "$TMP/out"; then ok "$name -> exit $rc"; else bad "$name (rc $rc)"; fi
}
expect_err "unknown kernel" "no kernel 'nope'" examples/q4_gemv.qk --kernel nope --dims N=3,K=3
expect_err "several kernels, no --kernel" "kernel NAME is required" examples/activations.qk --dims M=1,N=1,K=1
expect_err "--threads 0x" "threads" $G --dims N=3,K=3 --threads 0x
expect_err "--threads -1" "threads" $G --dims N=3,K=3 --threads -1
expect_err "--threads 1,,2" "threads" $G --dims N=3,K=3 --threads 1,,2
expect_err "--mode warm" "mode must be one of" $G --dims N=3,K=3 --mode warm
expect_err "--baseline blas" "baseline must be one of" $G --dims N=3,K=3 --baseline blas
expect_err "--reps 0" "reps" $G --dims N=3,K=3 --reps 0
expect_err "--config bogus=1" "bogus" $G --dims N=3,K=3 --config bogus=1
expect_err "--config tile_par=x" "tile_par" $G --dims N=3,K=3 --config tile_par=x
expect_err "missing --dims" "K is missing" $G
expect_err "unknown dim" "no dimension 'Q'\|bad item 'Q=3'" $G --dims Q=3,N=3,K=3
expect_err "bad dim value" "not a dimension value\|bad item" $G --dims N=3,K=x
expect_err "missing file" "cannot read" no_such_file.qk --dims N=3
expect_err "unknown target" "unknown target" $G --dims N=3,K=3 --target nope
# row-interleaved weights: refused with the rule that fails, or a bad value
expect_err "repack on an f32 kernel without the f32 form" "repack=8: the statement is not one sum.*nor of f32 work" \
  examples/q3_zero.qk --kernel gemv3 --dims N=3,K=3 -c repack=8
expect_err "repack=99" "repack=99 is out of range" examples/gemv_int8.qk --kernel gemv --dims N=3,K=3 -c repack=99
expect_err "repack=5" "repack=5: rows per group are 4, 8 or 16" examples/gemv_int8.qk --kernel gemv \
  --dims N=3,K=3 -c repack=5
expect_err "prefetch=100" "prefetch=100: bytes ahead are a multiple of 64" examples/gemv_int8.qk --kernel gemv \
  --dims N=3,K=3 -c "repack=4 prefetch=100"
expect_err "prefetch without repack" "software prefetch applies to row-interleaved weights" \
  examples/gemv_int8.qk --kernel gemv --dims N=3,K=3 -c prefetch=1024

# ---- row-interleaved weights: bench converts its weights, the check passes ----
q bench examples/gemv_int8.qk --kernel gemv --dims N=45,K=300 --reps 2 --mode hot --threads 1 -c "repack=4"
if [ $rc -eq 0 ] && grep -q "^check: .*PASS" "$TMP/out" && grep -q "^config: .*repack=4 prefetch=4096" "$TMP/out"; then
  ok "bench -c repack=4: the weights converted, PASS, prefetch=4096 (the default with repack) in its configuration"
else
  bad "bench -c repack=4: the weights converted, PASS, prefetch=4096 in its configuration (rc $rc)"
fi
q bench examples/gemv_int8.qk --kernel gemv --dims N=45,K=300 --reps 2 --mode hot --threads 1 -c "repack=4 prefetch=0"
if [ $rc -eq 0 ] && grep -q "^check: .*PASS" "$TMP/out" && grep -q "^config: .*repack=4 prefetch=0" "$TMP/out"; then
  ok "bench -c 'repack=4 prefetch=0': PASS, prefetch=0 (none) kept in its configuration"
else
  bad "bench -c 'repack=4 prefetch=0': PASS, prefetch=0 kept in its configuration (rc $rc)"
fi
q bench examples/gemv_int8.qk --kernel gemv --dims N=45,K=300 --reps 2 --mode hot --threads 1 -c "repack=4 prefetch=1024"
if [ $rc -eq 0 ] && grep -q "^check: .*PASS" "$TMP/out" && grep -q "^config: .*prefetch=1024" "$TMP/out"; then
  ok "bench -c 'repack=4 prefetch=1024': PASS, the key in its configuration"
else
  bad "bench -c 'repack=4 prefetch=1024': PASS, the key in its configuration (rc $rc)"
fi
# base-3 codes grow in the layout (2 bits a digit): both byte counts, the
# own layout's 32 x 2 blocks x 54 bytes, the layout's 32 x 2 x (2 + 64),
# each with xq's 16 blocks x 34 bytes
cat >"$TMP/t1.qk" <<EOF
import "$PWD/dsl/ggml.qk"
kernel g(W: tq1_0[N, K], xq: q8_0[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * xq[k] }
EOF
Q_SPLIT=1 q bench "$TMP/t1.qk" --dims N=32,K=512 --reps 2 --mode hot --threads 1 -c "repack=4" --json
if [ $rc -eq 0 ] && grep -q '"pass": true' "$TMP/out" && grep -q '"weight_bytes": 4768, "weight_bytes_own": 4000' \
  "$TMP/out" && grep -q "in the formats' own; GB/s W counts the bytes read, x 0.839" "$TMP/err"; then
  ok "bench -c repack=4 of base-3 codes: PASS, the bytes read and the own layout's"
else
  bad "bench -c repack=4 of base-3 codes: PASS, the bytes read and the own layout's (rc $rc: $(head -c 300 "$TMP/out"))"
fi

# ---- a vector codebook beyond its packed tile (64K weights): the weights
# repeat the tile (an exhaustive quantizer would take minutes), the check
# decodes them all against the reference; lanes within a codeword load it ----
cat >"$TMP/vq.qk" <<EOF
import "$PWD/dsl/codebook.qk"
kernel g(W: aqlm_1x16(C)[N, K], C: f16[65536, 8], x: f32[K]) -> y: f32[N] {
  y[n] = sum(k) W[n, k] * x[k]
}
kernel g2(W: aqlm_2x8(C)[N, K], C: f16[2, 256, 8], x: f32[K]) -> y: f32[N] {
  y[n] = sum(k) W[n, k] * x[k]
}
EOF
for k in g g2; do
  q bench "$TMP/vq.qk" --kernel $k --dims N=301,K=1000 --reps 2 --mode hot --threads 1 -c lanes=8
  if [ $rc -eq 0 ] && grep -q "^check: .*PASS" "$TMP/out" && grep -q "^hot " "$TMP/out"; then
    ok "bench $k (vector codebook, 301 x 1000): PASS"
  else
    bad "bench $k (vector codebook, 301 x 1000): PASS (rc $rc)"
  fi
done

q bench --help
if [ $rc -eq 0 ] && grep -q "cold:" "$TMP/out" && grep -q "hot:" "$TMP/out" &&
  grep -q "qkc bench examples/q4_gemv.qk --kernel gemv --dims N=8192,K=8192 --threads 1,2" "$TMP/out"; then
  ok "--help: details and example"
else
  bad "--help: details and example (rc $rc)"
fi

echo "cli_bench: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
