#!/usr/bin/env bash
# cli_gpu.sh — GPU targets through the CLI, in every build (with or
# without LLVM): `qkc emit --stage=cuda|ptx --target sm_80|sm_90` works
# without a GPU, and `qkc run --target sm_90` either runs on a device or
# says "no CUDA driver" / "no CUDA device" with exit 1, never a crash. In
# a build without LLVM (-DQKC_WITH_LLVM=OFF) CPU targets say so, also with
# exit 1: run, emit --stage=llvm|asm and build.
# Usage: bash tests/cli_gpu.sh path/to/qkc
source "$(dirname "$0")/cli-common.sh" "$@"
export QKC_TUNE_DB=
check() { check_run "$@"; }

K=examples/q4_gemv.qk
check "emit --stage=cuda for sm_90" 0 "__global__" "$QKC" emit --stage=cuda "$K" --target sm_90
"$QKC" emit --stage=ptx "$K" --target sm_80 >"$TMP/out" 2>&1
if grep -q "NVRTC not found" "$TMP/out"; then
  echo "skipped: emit --stage=ptx (NVRTC not found)"
else
  check "emit --stage=ptx for sm_80" 0 "\.target sm_80" "$QKC" emit --stage=ptx "$K" --target sm_80
fi

# A launch: runs where there is a device, else a clear error.
"$QKC" run "$K" --kernel gemv --dims N=100,K=300 --target sm_90 >"$TMP/out" 2>&1
rc=$?
if [ $rc = 0 ] && grep -q "PASS" "$TMP/out"; then
  ok "run --target sm_90 on this machine's GPU matches the reference"
elif [ $rc = 1 ] && grep -qE "no CUDA driver|no CUDA device|NVRTC not found" "$TMP/out"; then
  ok "run --target sm_90 without a driver or device: a clear error, exit 1"
else
  echo "     (exit $rc)" >>"$TMP/out"
  bad "run --target sm_90: runs and passes, or says why not"
fi
check "run --target sm_90 with QKC_LIBCUDA pointing nowhere: no CUDA driver" 1 "no CUDA driver" \
  env QKC_LIBCUDA="$TMP/none/libcuda.so.1" "$QKC" run "$K" --kernel gemv --dims N=64,K=64 --target sm_90

# examples/tensor_cores.qk: the three tensor-core lowerings its comment names.
T=examples/tensor_cores.qk
check "tensor_cores.qk w4a16: mma.sync m16n8k16 f16" 0 "mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.f16" \
  "$QKC" emit --stage=cuda "$T" --kernel w4a16 --target sm_90
check "tensor_cores.qk w4a8: mma.sync m16n8k32 s8" 0 "mma\.sync\.aligned\.m16n8k32\.row\.col\.s32\.s8" \
  "$QKC" emit --stage=cuda "$T" --kernel w4a8 --target sm_80
check "tensor_cores.qk sparse: mma.sp" 0 "mma\.sp\.sync\.aligned\.m16n8k32" \
  "$QKC" emit --stage=cuda "$T" --kernel sparse --target sm_90

# A build without LLVM: every CPU path says so.
"$QKC" run "$K" --kernel gemv --dims N=64,K=64 >"$TMP/out" 2>&1
if grep -q "built without LLVM" "$TMP/out"; then
  NO_LLVM="qkc was built without LLVM"
  check "no LLVM: run on the host" 1 "$NO_LLVM: CPU code generation is unavailable; use a GPU target" \
    "$QKC" run "$K" --kernel gemv --dims N=64,K=64
  check "no LLVM: emit --stage=llvm" 1 "$NO_LLVM" "$QKC" emit --stage=llvm "$K"
  check "no LLVM: emit --stage=asm for x86-64-v3" 1 "$NO_LLVM" "$QKC" emit --stage=asm "$K" --target x86-64-v3
  check "no LLVM: emit --stage=tir still works" 0 "func gemv" "$QKC" emit --stage=tir "$K"
  check "no LLVM: build for the host" 1 "$NO_LLVM: ahead-of-time builds" "$QKC" build "$K" -o "$TMP/k.a"
  check "no LLVM: build for sm_90" 1 "$NO_LLVM: ahead-of-time builds" "$QKC" build "$K" --target sm_90 -o "$TMP/k.a"
  [ ! -e "$TMP/k.a" ] && ok "no LLVM: build wrote nothing" || bad "no LLVM: build wrote nothing"
else
  echo "skipped: the checks of a build without LLVM (this qkc has LLVM)"
fi

echo "cli_gpu: $pass passed, $fail failed"
[ "$fail" = 0 ]
