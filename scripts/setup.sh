#!/usr/bin/env bash
# setup.sh — installs what qkc needs to build (only what is missing) and
# builds it into build/. Idempotent: a second run only rebuilds.
# Works on a bare Debian 12 image, as root or through sudo.
#   --tests   also what the tests use: qemu-user and the aarch64 cross
#             compiler (AArch64 kernels run under qemu-aarch64)
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(cmake make gcc libc6-dev llvm-19-dev libffi-dev re2c libcunit1-dev libsqlite3-dev pkg-config)
if [ "${1:-}" = "--tests" ]; then
  PKGS+=(qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
fi

missing=()
for p in "${PKGS[@]}"; do
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
else
  echo "setup: all packages present"
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"
