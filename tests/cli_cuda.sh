#!/usr/bin/env bash
# cli_cuda.sh — the CLI's GPU runtime paths that need no GPU: `qkc info
# --targets` (the sm_80/sm_90 presets), `qkc probe --target` and `qkc bench
# --target` failing cleanly without a CUDA driver (forced with QKC_LIBCUDA,
# so the checks hold on GPU machines too), their usage errors, `qkc tune
# --target sm_90` ranking and checking candidates (--model-only) and
# refusing to time them without a driver, and PTX
# served from the on-disk kernel cache (QKC_CACHE_DIR): a second `qkc emit
# --stage=ptx` leaves the cached file alone (same inode) and prints the
# same PTX, while a corrupted file is replaced. `qkc bench --compile`
# reports the cold and cached compile latency. With the stand-in driver
# built next to qkc (libqkc_fake_cuda.so): a failing cuInit is "no CUDA
# driver", a probe on another architecture is refused. Parts needing NVRTC
# say "skipped: ..." without it.
# Usage: bash tests/cli_cuda.sh path/to/qkc
source "$(dirname "$0")/cli-common.sh" "$@"
export QKC_TUNE_DB="$TMP/tune.db" QKC_CACHE_DIR="$TMP/cache"
check() { check_eval "$@"; }
# A clean failure: exit 1 (not a signal), the message on stderr.
clean_fail() { [ $rc -eq 1 ] && grep -q "$1" "$TMP/err"; }

GEMV=examples/q4_gemv.qk
DIMS=N=256,K=512

# ---- qkc info --targets ----
q info --targets
check "info --targets exits 0" '[ $rc -eq 0 ]'
check "info --targets: sm_80 preset (108 SMs, L2 40 MiB)" 'grep -q "^target sm_80: gpu sm_80.* 108 SMs.*L2 40 MiB" "$TMP/out"'
check "info --targets: sm_90 preset (132 SMs, 228 KiB per SM)" 'grep -q "^target sm_90: gpu sm_90.* 132 SMs.*228 KiB per SM" "$TMP/out"'
check "info --targets: CPU presets" 'grep -q "^target host: cpu" "$TMP/out" && grep -q "^target x86-64-v4: cpu" "$TMP/out"'
q info --targets --list
check "info --targets --list: usage error" '[ $rc -eq 2 ]'

# ---- no CUDA driver: probe and bench fail cleanly ----
for lib in /nonexistent/libcuda.so.1 /usr/local/cuda/lib64/stubs/libcuda.so; do
  [ -e "$lib" ] || [ "${lib#/nonexistent}" != "$lib" ] || { echo "skipped: $lib absent"; continue; }
  export QKC_LIBCUDA=$lib
  q probe --target sm_90 --quick
  check "probe --target sm_90, QKC_LIBCUDA=$lib: exit 1, 'no CUDA driver'" 'clean_fail "no CUDA driver"'
  q probe --target sm_80 --json
  check "probe --target sm_80 --json, QKC_LIBCUDA=$lib: exit 1, nothing on stdout" 'clean_fail "no CUDA driver" && [ ! -s "$TMP/out" ]'
  q bench "$GEMV" --kernel gemv --dims "$DIMS" --target sm_90
  check "bench --target sm_90, QKC_LIBCUDA=$lib: exit 1, 'no CUDA driver'" 'clean_fail "no CUDA driver\|NVRTC not found"'
  q bench "$GEMV" --kernel gemv --dims "$DIMS" --target sm_90 --no-check --mode hot
  check "bench --target sm_90 --no-check, QKC_LIBCUDA=$lib: exit 1, 'no CUDA driver'" 'clean_fail "no CUDA driver"'
  unset QKC_LIBCUDA
done
# ---- tune --target: ranked and checked here, timed only on a device ----
T2=examples/tensor_cores.qk
q tune "$GEMV" --kernel gemv --dims "$DIMS" --target sm_90 --model-only --top 3
check "tune --target sm_90 --model-only: exit 0, ranked candidates with registers and a verdict" \
  '[ $rc -eq 0 ] && grep -q "^kernel gemv on sm_90" "$TMP/out" && grep -q "^  1 .*tile_par=.* legal" "$TMP/out"'
q tune "$T2" --kernel w4a16 --dims M=16,N=256,K=512 --target sm_80 --model-only --json
check "tune --target sm_80 --model-only --json: tensor cores, one legal candidate" \
  '[ $rc -eq 0 ] && grep -q "\"legal\": true" "$TMP/out" && grep -q "\"registers\": [1-9]" "$TMP/out"'
QKC_LIBCUDA=/nonexistent/libcuda.so.1 q tune "$GEMV" --kernel gemv --dims "$DIMS" --target sm_90 --top 2
check "tune --target sm_90 without a driver: the list, then exit 1, 'measuring needs a CUDA device'" \
  'clean_fail "measuring needs a CUDA device" && grep -q "legal" "$TMP/out"'
q tune "$GEMV" --kernel gemv --sweep N=256..512 --dims K=512 --target sm_90
check "tune --sweep --target sm_90: usage error" '[ $rc -eq 2 ]'

# ---- a stand-in driver (tests/fake_libcuda.c, built next to qkc) ----
FAKE="$(dirname "$QKC")/libqkc_fake_cuda.so"
if [ -e "$FAKE" ]; then
  QKC_LIBCUDA=$FAKE FAKE_CUDA_INIT=803 q probe --target sm_90 --quick --no-store
  check "probe, cuInit 803: exit 1, 'no CUDA driver (cuInit failed'" 'clean_fail "no CUDA driver (cuInit failed.*803"'
  QKC_LIBCUDA=$FAKE FAKE_CUDA_CC=90 q probe --target sm_80 --quick --no-store
  check "probe --target sm_80 on an sm_90 device: exit 1, refused" 'clean_fail "another architecture.*use --target sm_90"'
  QKC_LIBCUDA=$FAKE FAKE_CUDA_CC=90 q probe --target sm_90 --quick --no-store
  check "probe --target sm_90 on the stand-in sm_90 device: exit 0, its name" '[ $rc -eq 0 ] && grep -q "Fake GPU" "$TMP/out"'
else
  echo "skipped: no stand-in driver ($FAKE)"
fi
check "no probe was stored for a device" '[ ! -e "$QKC_TUNE_DB" ] || ! "$QKC" probe --target sm_90 --show >/dev/null 2>&1'

# ---- usage errors ----
q probe --target x86-64-v3
check "probe --target x86-64-v3: usage error" '[ $rc -eq 2 ] && grep -q "CPU (host) or a GPU" "$TMP/err"'
q probe --target sm_90 --threads 2
check "probe --target sm_90 --threads: usage error" '[ $rc -eq 2 ] && grep -q "does not apply to a GPU" "$TMP/err"'
q probe --target nonsense
check "probe --target nonsense: usage error" '[ $rc -eq 2 ] && grep -q "unknown target" "$TMP/err"'
q probe --target sm_90 --show --quick
check "probe --target sm_90 --show --quick: usage error" '[ $rc -eq 2 ]'

# ---- PTX from the disk cache ----
q emit "$GEMV" --kernel gemv --target sm_90 --stage=ptx
if [ $rc -ne 0 ] && grep -q "NVRTC not found" "$TMP/err"; then
  echo "skipped: PTX and the disk cache (NVRTC not found)"
else
  check "emit --stage=ptx exits 0, PTX with the kernel's entry" '[ $rc -eq 0 ] && grep -q "^\.visible \.entry gemv" "$TMP/out"'
  cp "$TMP/out" "$TMP/ptx1"
  files() { find "$QKC_CACHE_DIR" -type f -name "*.o" | sort; }
  check "one cached object after the first emit" '[ "$(files | wc -l)" -eq 1 ]'
  F=$(files | head -1)
  check "the cached object holds the PTX" '[ -n "$F" ] && grep -aq "\.visible \.entry gemv" "$F"'
  ino=$(stat -c %i "$F" 2>/dev/null)
  q emit "$GEMV" --kernel gemv --target sm_90 --stage=ptx
  check "second emit: the same PTX" '[ $rc -eq 0 ] && cmp -s "$TMP/out" "$TMP/ptx1"'
  check "second emit: served from the cache (file not rewritten)" '[ "$(stat -c %i "$F")" = "$ino" ] && [ "$(files | wc -l)" -eq 1 ]'
  # the negative control: a corrupted object is a miss, compiled and replaced
  printf 'XXXXXXXX' | dd of="$F" bs=1 seek=200 conv=notrunc 2>/dev/null
  q emit "$GEMV" --kernel gemv --target sm_90 --stage=ptx
  check "corrupted object: the same PTX, compiled again" '[ $rc -eq 0 ] && cmp -s "$TMP/out" "$TMP/ptx1"'
  check "corrupted object: the file is replaced" '[ "$(stat -c %i "$F")" != "$ino" ] && [ "$(files | wc -l)" -eq 1 ]'
  q emit "$GEMV" --kernel gemv --target sm_80 --stage=ptx
  check "sm_80: another cached object (.target sm_80)" '[ $rc -eq 0 ] && grep -q "^\.target sm_80" "$TMP/out" && [ "$(files | wc -l)" -eq 2 ]'

  # ---- qkc bench --compile: cold and cached compile latency ----
  q bench "$GEMV" --kernel gemv --dims "$DIMS" --target sm_90 --compile
  check "bench --compile --target sm_90 exits 0" '[ $rc -eq 0 ]'
  check "bench --compile: the compile line" 'grep -Eq "^compile: [0-9.]+ ms cold JIT, [0-9.]+ ms disk-cache hit" "$TMP/out"'
  check "bench --compile: nothing timed" '! grep -q "^hot\|^cold\|^check" "$TMP/out"'
  q bench "$GEMV" --kernel gemv --dims "$DIMS" --target sm_90 --compile --json
  check "bench --compile --json: both latencies" '[ $rc -eq 0 ] && grep -Eq "\"jit_cold_ms\": [0-9.e+-]+" "$TMP/out" && grep -Eq "\"disk_hit_ms\": [0-9.e+-]+" "$TMP/out"'
fi
q bench "$GEMV" --kernel nosuch --dims "$DIMS" --target sm_90 --compile
check "bench --compile, unknown kernel: a message, no crash" '[ $rc -eq 1 -o $rc -eq 2 ] && grep -q "nosuch" "$TMP/err"'
q bench "$GEMV" --kernel gemv --dims N=0x,K=1 --target sm_90 --compile
check "bench --compile, bad dims: usage error" '[ $rc -eq 2 ] && [ -s "$TMP/err" ]'
q bench "$GEMV" --kernel gemv --dims "$DIMS" --compile
check "bench --compile on the host exits 0" '[ $rc -eq 0 ] && grep -q "^compile: " "$TMP/out"'

echo "cli_cuda: $pass passed, $fail failed"
[ $fail -eq 0 ]
