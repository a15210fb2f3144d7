#!/usr/bin/env bash
# cli_build.sh — `qkc build`'s user-facing behaviour: outputs and their
# default names, --help, and bad input (unknown target, mixed
# architectures, a bad prefix, an unknown kernel, duplicate kernel names,
# a malformed source, an unwritable output) with a message and exit 1 or
# 2, never a crash or a partial file. The kernels' results are test_aot's.
# Usage: bash tests/cli_build.sh path/to/qkc
source "$(dirname "$0")/cli-common.sh" "$@"
export QKC_TUNE_DB=
check() { check_run "$@"; }

check "--help answers" 0 "qkc build FILE" "$QKC" build --help
check "default outputs: lib<stem>.a and lib<stem>.h, prefix from the stem" 0 "wrote .*libq4_gemv.a" \
  bash -c "cd '$TMP' && '$QKC' build '$PWD/examples/q4_gemv.qk'"
if [ -f "$TMP/libq4_gemv.a" ] && grep -q "q4_gemv_gemv(" "$TMP/libq4_gemv.h" && grep -q "#ifdef __cplusplus" "$TMP/libq4_gemv.h"; then
  ok "the archive and a header with the typed wrapper and extern \"C\""
else
  bad "the archive and a header with the typed wrapper and extern \"C\""
fi
check "the header compiles with -Wall -Werror" 0 "" \
  bash -c "printf '#include \"$TMP/libq4_gemv.h\"\nint main(void){return q4_gemv_kernels[0]==0;}\n' > '$TMP/h.c' && cc -std=c11 -Wall -Wextra -Werror -Iinclude -c '$TMP/h.c' -o '$TMP/h.o' && echo compiled"
check "-c writes one object, --header and --prefix are honoured" 0 "wrote $TMP/k.o and $TMP/kh.h \(prefix my_k\)" \
  "$QKC" build examples/q4_gemv.qk -c -o "$TMP/k.o" --header "$TMP/kh.h" --prefix my_k
check "-v prints each version's configuration and origin" 0 "gemv x86-64-v3: lanes=8 .*\((schedule|model|tuning-db)" \
  "$QKC" build examples/q4_gemv.qk --target x86-64-v3,x86-64-v4 -o "$TMP/v.a" -v
check "unknown target" 1 "unknown target 'x86-64-v9'" "$QKC" build examples/q4_gemv.qk --target x86-64-v9 -o "$TMP/x.a"
check "x86 and ARM in one object" 1 "different architectures" \
  "$QKC" build examples/q4_gemv.qk --target x86-64-v3,aarch64 -o "$TMP/x.a"
check "a prefix that is not a C identifier" 1 "not a C identifier" \
  "$QKC" build examples/q4_gemv.qk --prefix 9lives -o "$TMP/x.a"
check "an unknown kernel" 1 "no kernel named 'nope'" "$QKC" build examples/q4_gemv.qk --kernel gemv,nope -o "$TMP/x.a"
check "the same kernel name in two files" 1 "two kernels named 'gemv'" \
  "$QKC" build examples/q4_gemv.qk examples/q4_gemv.qk -o "$TMP/x.a"
printf 'kernel bad(x: f32[N]) -> y: f32[N] {\n  y[i] = x[i] +* 2\n}\n' >"$TMP/bad.qk"
check "a malformed source: file:line:col" 1 "bad\.qk:[0-9]+:[0-9]+: error:" "$QKC" build "$TMP/bad.qk" -o "$TMP/x.a"
check "a missing source" 1 "error" "$QKC" build "$TMP/none.qk" -o "$TMP/x.a"
check "an unwritable output" 1 "cannot write" "$QKC" build examples/q4_gemv.qk -o "$TMP/no/such/dir/x.a"
check "a bad --threads" 2 "--threads" "$QKC" build examples/q4_gemv.qk --threads many
check "a bad --layout" 2 "--layout takes 'own'.*got 'rows'" "$QKC" build examples/q4_gemv.qk --layout rows -o "$TMP/x.a"
check "--layout any: the header says which versions read the layout and declares the repacker" 0 "wrote $TMP/la.a" \
  "$QKC" build examples/gemv_int8.qk --layout any --target x86-64-v3,x86-64-v4 -o "$TMP/la.a"
if grep -q "x86-64-v3: .*reads W row-interleaved (8 rows)" "$TMP/la.h" && grep -q "_W_repack(" "$TMP/la.h"; then
  ok "the --layout any header names the AVX2 version's 8-row groups and has _W_repack"
else bad "the --layout any header names the AVX2 version's 8-row groups and has _W_repack"; fi
check "run on a target of another architecture: a clear error, no crash" 1 "cannot run here: target aarch64\+dotprod is for AArch64" \
  "$QKC" run --target aarch64+dotprod examples/gemv_int8.qk --kernel gemv --dims N=64,K=256
check "emit for aarch64 works on this machine" 0 "sdot" \
  "$QKC" emit --target aarch64+dotprod --stage=asm examples/gemv_int8.qk --kernel gemv
if [ -e "$TMP/x.a" ]; then bad "no output file after the failures"; else ok "no output file after the failures"; fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
