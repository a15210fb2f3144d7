#!/usr/bin/env bash
# cli_diag.sh — the qkc CLI's user-facing errors: diagnostics with
# file:line:col and a caret, --help of every command, usage errors (exit 2).
# Usage: bash tests/cli_diag.sh path/to/qkc
set -uo pipefail
QKC=${1:?usage: cli_diag.sh path/to/qkc}
cd "$(dirname "$0")/.."
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -f "$TMP/out" ] && sed 's/^/     | /' "$TMP/out" | head -20; }

# expect CODE NAME CMD... : runs CMD, output in $TMP/out, checks the exit code
expect() {
  local want=$1 name=$2
  shift 2
  "$@" >"$TMP/out" 2>&1
  local rc=$?
  if [ $rc = "$want" ]; then return 0; fi
  echo "     (exit $rc, expected $want)" >>"$TMP/out"
  return 1
}

# a malformed program
printf 'kernel bad(x: f32[N]) -> y: f32[N] {\n  y[i] = x[i] +* 2\n}\n' >"$TMP/bad.qk"
if expect 1 check "$QKC" check "$TMP/bad.qk" && grep -qE "bad\.qk:[0-9]+:[0-9]+: error:" "$TMP/out" &&
  grep -qE "^ *\^" "$TMP/out"; then
  ok "malformed program: file:line:col: error: and a caret"
else
  bad "malformed program: file:line:col: error: and a caret"
fi
if expect 1 run "$QKC" run "$TMP/bad.qk" --kernel bad --dims N=4 && grep -q "error:" "$TMP/out"; then
  ok "run of a malformed program exits 1"
else
  bad "run of a malformed program exits 1"
fi
if expect 0 check "$QKC" check examples/q4_gemv.qk && [ ! -s "$TMP/out" ]; then
  ok "check prints nothing on success"
else
  bad "check prints nothing on success"
fi
if expect 0 check-v "$QKC" check -v examples/q4_gemv.qk && grep -q "ok" "$TMP/out"; then ok "check -v"; else bad "check -v"; fi
if expect 1 missing "$QKC" check "$TMP/nonexistent.qk" && grep -q "nonexistent.qk" "$TMP/out"; then
  ok "missing file"
else
  bad "missing file"
fi

# --help everywhere
if expect 0 help "$QKC" --help && grep -q "usage:" "$TMP/out"; then ok "qkc --help"; else bad "qkc --help"; fi
for c in check emit run info pack unpack; do
  if expect 0 "$c help" "$QKC" "$c" --help && grep -q "usage: qkc $c" "$TMP/out" && grep -q "example:" "$TMP/out"; then
    ok "qkc $c --help"
  else
    bad "qkc $c --help"
  fi
done
if expect 0 version "$QKC" --version && grep -q "qkc 0\." "$TMP/out"; then ok "--version"; else bad "--version"; fi

# usage errors exit 2
for args in "run --bogus" "emit --stage" "check" "frobnicate" "run examples/q4_gemv.qk --threads=-3 --dims N=1,K=1" \
  "emit --stage=nope examples/q4_gemv.qk" "check -x examples/q4_gemv.qk" "info a.qk b.qk" "pack examples/q3_zero.qk"; do
  # shellcheck disable=SC2086
  if expect 2 "$args" "$QKC" $args && grep -qE "usage|unknown" "$TMP/out"; then
    ok "usage error: qkc $args"
  else
    bad "usage error: qkc $args"
  fi
done

# errors that name what is wrong
if expect 1 kernel "$QKC" run examples/q4_gemv.qk --kernel nope --dims N=1 && grep -q "no kernel 'nope'" "$TMP/out"; then
  ok "unknown kernel"
else
  bad "unknown kernel"
fi
if expect 1 target "$QKC" run examples/q4_gemv.qk --target vax --dims N=1,K=1 && grep -q "unknown target" "$TMP/out"; then
  ok "unknown target"
else
  bad "unknown target"
fi
if expect 1 ptx-on-cpu "$QKC" emit --stage=ptx --target host examples/q4_gemv.qk && grep -q "GPU target" "$TMP/out"; then
  ok "ptx on a CPU target explains itself"
else
  bad "ptx on a CPU target explains itself"
fi
if expect 1 shape "$QKC" run examples/conv.qk --kernel conv --dims C=2,H=1,W=5,O=2 && grep -q "error" "$TMP/out"; then
  ok "dims that do not fit"
else
  bad "dims that do not fit"
fi

# malformed --dims, and pack/unpack inputs of the wrong size or format
while IFS='|' read -r dims needle; do
  if expect 1 dims "$QKC" run examples/q4_gemv.qk --kernel gemv --dims "$dims" && grep -q "$needle" "$TMP/out"; then
    ok "--dims $dims: $needle"
  else
    bad "--dims $dims: $needle"
  fi
done <<'CASES'
N=4|missing K
N=abc,K=4|non-negative integer
N=-4,K=4|non-negative integer
N=4,K=4,Z=3|unknown dim Z
N|expected NAME=VALUE
CASES
head -c 10 /dev/zero >"$TMP/short.bin"
if expect 1 unpack-short "$QKC" unpack dsl/ggml.qk --format q4_0 --rows 4 --cols 64 -i "$TMP/short.bin" -o "$TMP/o.f32" &&
  grep -q "has 10 bytes; q4_0 needs 144" "$TMP/out"; then
  ok "unpack of a too-short file"
else
  bad "unpack of a too-short file"
fi
if expect 1 pack-short "$QKC" pack dsl/ggml.qk --format q4_0 --rows 4 --cols 64 --in "$TMP/short.bin" -o "$TMP/p.bin" &&
  grep -q "need 1024" "$TMP/out"; then
  ok "pack of a too-short input"
else
  bad "pack of a too-short input"
fi
if expect 1 pack-format "$QKC" pack dsl/ggml.qk --format nope --rows 4 --cols 64 -o "$TMP/p.bin" &&
  grep -q "no format 'nope'" "$TMP/out"; then
  ok "pack of an unknown format"
else
  bad "pack of an unknown format"
fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
