#!/usr/bin/env bash
# cli_tune.sh — qkc tune end to end, on a private tuning database and
# kernel cache: a tiny tune stores records and a new context picks the
# winner from them; db list/export/prune; a tiny sweep writes a CSV and
# an SVG plot; bad inputs fail cleanly (exit status 1 or 2, a message,
# never a crash). Timings are printed, never checked.
# Usage: bash tests/cli_tune.sh path/to/qkc
source "$(dirname "$0")/cli-common.sh" "$@"
export QKC_TUNE_DB="$TMP/tune.db" QKC_CACHE_DIR="$TMP/cache"
check() { check_eval "$@"; }

# ---- one shape ----
"$QKC" tune examples/q4_gemv.qk --kernel gemv --dims N=256,K=256 --top 3 --reps 3 --threads 1 >"$TMP/out" 2>&1
rc=$?
check "tune N=256,K=256 exits 0" '[ $rc = 0 ]'
check "tune prints the rank correlation and the winner" \
  'grep -q "rank correlation\|too few candidates" "$TMP/out" && grep -q "^winner: lanes=" "$TMP/out"'
check "tune: every candidate matched the reference" '! grep -q FAIL "$TMP/out" && grep -q " ok " "$TMP/out"'
check "a new context picks the stored winner (tuning-db)" 'grep -q "origin: tuning-db (exact shape)" "$TMP/out"'
# the database held only this run's records: the follow-up's configuration
# is the winner's, to the letter (settled values such as prefetch included)
check "the follow-up's configuration is the winner's text" \
  '[ "$(sed -n "s/^winner: //p" "$TMP/out")" = "$(grep -A1 "^follow-up:" "$TMP/out" | sed -n "2s/^  //p")" ] &&
   ! grep -q "not this run.s winner" "$TMP/out"'
check "tune stored records" 'grep -q "stored [1-9][0-9]* records\? in $TMP/tune.db" "$TMP/out"'
check "tune --mode auto: inputs within L3 are timed hot" 'grep -q "^timed hot: every launch reads the same inputs" "$TMP/out"'

"$QKC" tune examples/q4_gemv.qk --kernel gemv --dims N=200,K=300 --top 2 --reps 3 --threads 1 --json \
  --csv "$TMP/tune.csv" >"$TMP/out" 2>"$TMP/err"
rc=$?
check "tune --json exits 0 with a JSON object" \
  '[ $rc = 0 ] && head -c1 "$TMP/out" | grep -q "{" && grep -q "\"rank_corr\"" "$TMP/out" &&
   grep -q "\"origin\": \"tuning-db (exact shape)\"" "$TMP/out"'
if command -v python3 >/dev/null; then
  check "tune --json parses" 'python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"points\"][0][\"winner\"]" "$TMP/out"'
fi
check "tune --csv: header and one row per candidate" \
  'head -1 "$TMP/tune.csv" | grep -q "^format,kernel,shape,threads,config,seconds,gbps,gops,ratio_dram,bits_per_weight" &&
   [ "$(wc -l <"$TMP/tune.csv")" -ge 2 ]'

# ---- the database ----
"$QKC" tune db list >"$TMP/out" 2>&1
check "db list shows the records" '[ $? = 0 ] && grep -q "gemv" "$TMP/out" && grep -q "K=256,N=256" "$TMP/out"'
"$QKC" tune db list --kernel nosuch >"$TMP/out" 2>&1
check "db list --kernel filters" '[ $? = 0 ] && grep -q "^0 records" "$TMP/out"'
"$QKC" tune db list --limit 1 >"$TMP/out" 2>&1
check "db list --limit 1" '[ $? = 0 ] && grep -q "^1 record in" "$TMP/out"'
"$QKC" tune db export --csv - >"$TMP/out" 2>&1
check "db export --csv: a header and rows" \
  '[ $? = 0 ] && head -1 "$TMP/out" | grep -q "kernel_hash" && [ "$(wc -l <"$TMP/out")" -ge 4 ]'
"$QKC" tune db export --json >"$TMP/out" 2>&1
check "db export --json: an array" \
  '[ $? = 0 ] && head -c1 "$TMP/out" | grep -q "\[" && tail -c3 "$TMP/out" | grep -q "\]" && grep -q "\"config\"" "$TMP/out"'
"$QKC" tune db export -o "$TMP/all.csv" >"$TMP/out" 2>&1
check "db export -o FILE" '[ $? = 0 ] && head -1 "$TMP/all.csv" | grep -q "kernel_hash"'
before=$("$QKC" tune db export --csv - | wc -l)
"$QKC" tune db prune --keep-best >"$TMP/out" 2>&1
after=$("$QKC" tune db export --csv - | wc -l)
check "db prune --keep-best keeps one record per shape" '[ $? = 0 ] && [ "$after" -lt "$before" ] && [ "$after" = 3 ]'

# ---- a sweep ----
"$QKC" tune examples/q4_gemv.qk --kernel gemv --sweep N=256..512 --sweep-dims K=N --formats q4_0,q8_0 \
  --threads 1 --reps 3 --csv "$TMP/sweep.csv" --plot "$TMP/sweep.svg" >"$TMP/out" 2>&1
rc=$?
check "sweep exits 0" '[ $rc = 0 ]'
check "sweep CSV: header + 4 rows (2 formats x 2 sizes x 1 thread count)" \
  'head -1 "$TMP/sweep.csv" | grep -q "^format,kernel,shape,threads,config,seconds,gbps,gops,ratio_dram,bits_per_weight$" &&
   [ "$(wc -l <"$TMP/sweep.csv")" = 5 ] && grep -q "^\"q8_0\",\"gemv\",\"K=512,N=512\",1," "$TMP/sweep.csv"'
check "sweep SVG: an svg with one polyline per format" \
  'grep -q "<svg" "$TMP/sweep.svg" && [ "$(grep -c "<polyline" "$TMP/sweep.svg")" = 2 ] && grep -q "</svg>" "$TMP/sweep.svg"'
if command -v xmllint >/dev/null; then
  check "sweep SVG is well-formed XML" 'xmllint --noout "$TMP/sweep.svg"'
fi
check "sweep records have origin sweep" '"$QKC" tune db list | grep -q " sweep "'
"$QKC" tune examples/q4_gemv.qk --kernel gemv --sweep N=128,192 --dims K=128 --threads 1 --reps 2 \
  --metric gops --plot "$TMP/gops.svg" >"$TMP/out" 2>&1
check "sweep with a list, fixed K, --metric gops" '[ $? = 0 ] && grep -q "GOP/s" "$TMP/gops.svg"'

# ---- --mode cold: every launch reads the next of several copies ----
# (a database of its own: these records were timed another way)
"$QKC" tune examples/q4_gemv.qk --kernel gemv --dims N=200,K=300 --top 2 --reps 3 --threads 1 --mode cold --json \
  --db "$TMP/cold.db" >"$TMP/out" 2>"$TMP/err"
rc=$?
check "tune --mode cold: exits 0, every candidate matched the reference, a winner" \
  '[ $rc = 0 ] && ! grep -q FAIL "$TMP/out" "$TMP/err" && grep -q "\"winner\": {" "$TMP/out"'
check "tune --mode cold --json: timing cold over 2 or more copies" \
  'grep -q "\"timing\": \"cold\", \"copies\": \([2-9]\|[1-9][0-9][0-9]*\)," "$TMP/out"'
check "tune --json: each measured candidate has its spread" \
  'grep -q "\"seconds\": [0-9.e-]*, \"spread\": [0-9.e-]*, \"gbps\"" "$TMP/out"'
"$QKC" tune examples/q4_gemv.qk --kernel gemv --dims N=200,K=300 --top 1 --reps 3 --threads 1 --mode hot \
  --db "$TMP/cold.db" >"$TMP/out" 2>&1
check "tune --mode hot says so; the table has a spread column" \
  '[ $? = 0 ] && grep -q "^timed hot: .*--mode hot" "$TMP/out" && grep -q "time (us)  spread" "$TMP/out"'
"$QKC" tune db export --json --db "$TMP/cold.db" >"$TMP/out" 2>&1
check "records keep how they were timed (cold and hot)" \
  '[ $? = 0 ] && grep -q "\"timing\": \"cold\"" "$TMP/out" && grep -q "\"timing\": \"hot\"" "$TMP/out"'
"$QKC" tune db list --db "$TMP/cold.db" >"$TMP/out" 2>&1
check "db list has a timing column" '[ $? = 0 ] && grep -q " timing " "$TMP/out" && grep -q " 1 cold " "$TMP/out"'

# ---- layouts: --layout any measures row-interleaved candidates too ----
# (a database of its own, so the counts above stay as they are)
LDB="$TMP/layout.db"
if "$QKC" run examples/gemv_int8.qk --dims N=40,K=64 -c repack=1 >"$TMP/out" 2>&1; then
  "$QKC" tune examples/gemv_int8.qk --dims N=256,K=512 --top 2 --reps 3 --threads 1 --layout any --db "$LDB" \
    >"$TMP/out" 2>&1
  rc=$?
  check "tune --layout any: exits 0, row-interleaved candidates checked and timed" \
    '[ $rc = 0 ] && ! grep -q FAIL "$TMP/out" && grep -q " ok .*repack=1" "$TMP/out" &&
     grep -q " ok .*kblocks=[0-9]* prefetch" "$TMP/out"'
  check "tune --layout any: the follow-up (any layout) takes the stored winner" \
    'grep -q "origin: tuning-db (exact shape)" "$TMP/out" &&
     [ "$(sed -n "s/^winner: //p" "$TMP/out")" = "$(grep -A1 "^follow-up:" "$TMP/out" | sed -n "2s/^  //p")" ]'
  check "the database holds row-interleaved records" '"$QKC" tune db list --db "$LDB" | grep -q "repack=1"'
  # cold: every copy of the weights converted for the row-interleaved candidates
  "$QKC" tune examples/gemv_int8.qk --dims N=100,K=160 --top 1 --reps 3 --threads 1 --layout any --mode cold \
    --db "$TMP/cold.db" >"$TMP/out" 2>&1
  check "tune --layout any --mode cold: row-interleaved candidates on converted copies, checked" \
    '[ $? = 0 ] && ! grep -q FAIL "$TMP/out" && grep -q " ok .*repack=1" "$TMP/out" &&
     grep -q "^timed cold: each launch reads the next of [0-9]* copies" "$TMP/out"'
  # a caller of the format's own bytes gets the best own-layout record, never a repack one
  "$QKC" bench examples/gemv_int8.qk --dims N=256,K=512 --threads 1 --reps 3 --mode hot --db "$LDB" \
    >"$TMP/out" 2>&1
  check "bench (own layout) on that database: an own-layout record" \
    '[ $? = 0 ] && grep "^config:" "$TMP/out" | grep -q "(tuning-db (exact shape))" &&
     ! grep "^config:" "$TMP/out" | grep -q repack && grep -q PASS "$TMP/out"'
  "$QKC" bench examples/gemv_int8.qk --dims N=256,K=512 --threads 1 --reps 3 --mode hot --db "$LDB" \
    --layout any >"$TMP/out" 2>&1
  check "bench --layout any on that database: the fastest record of either layout, checked" \
    '[ $? = 0 ] && grep "^config:" "$TMP/out" | grep -q "(tuning-db (exact shape))" && grep -q PASS "$TMP/out"'
  QKC_TUNE_DB="$TMP/none-here.db" "$QKC" run examples/gemv_int8.qk --dims N=37,K=301 --layout any >"$TMP/out" 2>&1
  check "run --layout any without records: the model's row-interleaved kernel, weights converted, PASS" \
    '[ $? = 0 ] && grep -q "config: .*repack=1.*(model, row-interleaved weights)" "$TMP/out" && grep -q PASS "$TMP/out"'
else
  echo "skipped: layout checks (this CPU's kernels cannot read the row-interleaved layout: $(tail -1 "$TMP/out"))"
fi

# ---- bad inputs: exit 1 or 2 with a message, no crash ----
# expect_fail NAME PATTERN CMD...
expect_fail() {
  local name=$1 pat=$2
  shift 2
  "$@" >"$TMP/out" 2>&1
  local rc=$?
  if [ $rc -ge 1 ] && [ $rc -le 2 ] && grep -q "$pat" "$TMP/out"; then ok "$name"; else bad "$name (rc $rc)"; fi
}
expect_fail "unknown format in --formats" "unknown format 'nosuch'" \
  "$QKC" tune examples/q4_gemv.qk --kernel gemv --sweep N=256..512 --sweep-dims K=N --formats q4_0,nosuch
expect_fail "--sweep N=abc" "expected NAME=LO..HI" \
  "$QKC" tune examples/q4_gemv.qk --kernel gemv --sweep N=abc --dims K=256
expect_fail "--sweep of an unknown dimension" "no dimension 'Q'" \
  "$QKC" tune examples/q4_gemv.qk --kernel gemv --sweep Q=1..4 --dims K=256
expect_fail "sweep without the other dims" "no value for K" \
  "$QKC" tune examples/q4_gemv.qk --kernel gemv --sweep N=256..512
expect_fail "--plot with another extension" "must end in .svg" \
  "$QKC" tune examples/q4_gemv.qk --kernel gemv --sweep N=256 --dims K=256 --plot "$TMP/p.txt"
expect_fail "tune with a missing dim" "no value for K" \
  "$QKC" tune examples/q4_gemv.qk --kernel gemv --dims N=256
expect_fail "tune with an unknown kernel" "no kernel 'nosuch'" \
  "$QKC" tune examples/q4_gemv.qk --kernel nosuch --dims N=256,K=256
expect_fail "--threads 0" "threads" \
  "$QKC" tune examples/q4_gemv.qk --kernel gemv --dims N=256,K=256 --threads 0
expect_fail "--mode with another value" "mode needs auto, cold or hot" \
  "$QKC" tune examples/q4_gemv.qk --kernel gemv --dims N=64,K=64 --mode warm
expect_fail "--mode with a GPU target" "mode times CPU kernels" \
  "$QKC" tune examples/q4_gemv.qk --kernel gemv --dims N=64,K=64 --target sm_90 --mode cold
expect_fail "--layout with another value" "layout takes 'own'" \
  "$QKC" tune examples/gemv_int8.qk --dims N=64,K=64 --layout packed
expect_fail "db prune without a selector" "use --all\|say --all" "$QKC" tune db prune
expect_fail "db with an unknown subcommand" "list, export or prune" "$QKC" tune db frobnicate
expect_fail "db list on a missing database" "no tuning database" "$QKC" tune db list --db "$TMP/none.db"
printf 'this is not a database, just some text that is long enough........................................' \
  >"$TMP/corrupt.db"
expect_fail "db list on a corrupt database" "$TMP/corrupt.db" "$QKC" tune db list --db "$TMP/corrupt.db"
expect_fail "db export on a corrupt database" "$TMP/corrupt.db" "$QKC" tune db export --db "$TMP/corrupt.db"
# tune itself warns about a corrupt database and carries on, storing nothing
"$QKC" tune examples/q4_gemv.qk --kernel gemv --dims N=64,K=64 --top 1 --reps 2 --threads 1 \
  --db "$TMP/corrupt.db" >"$TMP/out" 2>&1
rc=$?
check "tune on a corrupt database: warns, exits 0, stores nothing" \
  '[ $rc = 0 ] && grep -q "warning:.*not stored" "$TMP/out" && grep -q "^winner:" "$TMP/out"'

# ---- --help ----
"$QKC" tune --help >"$TMP/out" 2>&1
check "tune --help explains sweeps and the database" \
  '[ $? = 0 ] && grep -q -- "--sweep" "$TMP/out" && grep -q "db prune" "$TMP/out" && grep -q "example" "$TMP/out"'

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
