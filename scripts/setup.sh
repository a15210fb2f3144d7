#!/usr/bin/env bash
# setup.sh — installs what qkc needs to build (only what is missing) and
# builds it into build/. Idempotent: a second run only rebuilds.
# Works on a bare Debian 12 image, as root or through sudo.
#   --tests   also what the tests use: qemu-user and the aarch64 cross
#             compiler (AArch64 kernels run under qemu-aarch64)
#   --no-llvm installs nothing and builds with -DQKC_WITH_LLVM=OFF: GPU
#             targets and the reference interpreter only, for a machine
#             with CUDA, cmake and gcc but no LLVM 19 or package registry
#             (CMake says what else it left out: SQLite, CUnit, re2c)
set -euo pipefail
cd "$(dirname "$0")/.."

TESTS=0 LLVM=ON
for arg in "$@"; do
  case "$arg" in
    --tests) TESTS=1 ;;
    --no-llvm) LLVM=OFF ;;
    *) echo "setup: unknown option $arg (--tests, --no-llvm)" >&2; exit 2 ;;
  esac
done

PKGS=(cmake make gcc libc6-dev llvm-19-dev libffi-dev re2c libcunit1-dev libsqlite3-dev pkg-config)
if [ $TESTS = 1 ]; then
  PKGS+=(qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
fi
if [ $LLVM = OFF ]; then
  PKGS=()
fi

missing=()
for p in "${PKGS[@]+"${PKGS[@]}"}"; do
  if ! dpkg -s "$p" >/dev/null 2>&1; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
      SUDO="sudo"
    else
      echo "setup: need root (or sudo) to install: ${missing[*]}" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
elif [ $LLVM = OFF ]; then
  echo "setup: --no-llvm: installing nothing"
else
  echo "setup: all packages present"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQKC_WITH_LLVM=$LLVM
cmake --build build -j"$(nproc)"
