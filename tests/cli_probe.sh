#!/usr/bin/env bash
# cli_probe.sh — `qkc probe`: the --json schema, storing in and showing from
# the tuning database, a missing, empty or corrupt database, usage errors
# and --help. Measured values are only checked to be positive numbers (no
# timed assertions). JSON is checked with grep/sed (python3 adds a full
# parse where it exists). Every probe is --quick (under a second each).
# Usage: bash tests/cli_probe.sh path/to/qkc
source "$(dirname "$0")/cli-common.sh" "$@"
export QKC_TUNE_DB="$TMP/tune.db"
check() { check_eval "$@"; }

# The JSON array of key K in $TMP/out (or file $2): "a,b".
pair() { sed -n "s/.*\"$1\":\[\([^]]*\)\].*/\1/p" "${2:-$TMP/out}"; }
# 1 when "a,b" are two numbers, both > 0.
positive_pair() {
  echo "$1" | awk -F, 'NF == 2 && $1 ~ /^[0-9.e+-]+$/ && $2 ~ /^[0-9.e+-]+$/ && $1 + 0 > 0 && $2 + 0 > 0 { f = 1 }
    END { exit !f }'
}
fingerprint() { sed -n 's/.*"fingerprint":"\([^"]*\)".*/\1/p' "$TMP/out"; }

# ---- qkc probe --quick --json: the schema, positive figures ----
q probe --quick --json
check "probe --quick --json exits 0" '[ $rc -eq 0 ]'
check "--json: one object on one line" '[ "$(wc -l <"$TMP/out")" -eq 1 ] && grep -q "^{.*}$" "$TMP/out"'
for k in fingerprint threads created seconds read_bw ws_bytes f32_fma int8_dot f32_insn int8_insn; do
  check "--json has \"$k\"" 'grep -q "\"$k\":" "$TMP/out"'
done
for lv in l1 l2 l3 dram; do
  check "read_bw.$lv: two positive numbers" 'positive_pair "$(pair $lv)"'
  check "ws_bytes.$lv > 0" 'grep -Eq "\"ws_bytes\":\{[^}]*\"$lv\":[1-9][0-9]*" "$TMP/out"'
done
check "f32_fma: two positive numbers" 'positive_pair "$(pair f32_fma)"'
check "int8_dot: two positive numbers" 'positive_pair "$(pair int8_dot)"'
check "threads > 0" 'grep -Eq "\"threads\":[1-9]" "$TMP/out"'
check "seconds > 0" 'grep -Eq "\"seconds\":[0-9.e+-]*[1-9]" "$TMP/out"'
check "instructions named" 'grep -Eq "\"f32_insn\":\"[^\"]+\"" "$TMP/out" && grep -Eq "\"int8_insn\":\"[^\"]+\"" "$TMP/out"'
check "--json: the 'stored in' note goes to stderr" 'grep -q "stored in $QKC_TUNE_DB" "$TMP/err"'
FP=$(fingerprint)
check "fingerprint is not empty" '[ -n "$FP" ]'
cp "$TMP/out" "$TMP/probe.json"
if command -v python3 >/dev/null 2>&1; then
  check "--json parses (python3): keys and types" 'python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d[\"fingerprint\"], str) and d[\"threads\"] > 0 and d[\"seconds\"] > 0
for lv in (\"l1\", \"l2\", \"l3\", \"dram\"):
    assert len(d[\"read_bw\"][lv]) == 2 and min(d[\"read_bw\"][lv]) > 0, lv
    assert d[\"ws_bytes\"][lv] > 0, lv
assert min(d[\"f32_fma\"]) > 0 and min(d[\"int8_dot\"]) > 0
assert d[\"ws_bytes\"][\"l1\"] < d[\"ws_bytes\"][\"l2\"] < d[\"ws_bytes\"][\"dram\"]
" "$TMP/probe.json" 2>"$TMP/err"'
else
  echo "skipped: the python3 JSON parse (no python3); the grep checks above cover the keys"
fi

# ---- --show: the stored result, same machine ----
q probe --show --json
check "--show --json exits 0" '[ $rc -eq 0 ]'
check "--show --json: the same fingerprint" '[ "$(fingerprint)" = "$FP" ]'
check "--show --json: the same figures" '[ -n "$(pair dram)" ] && [ "$(pair dram)" = "$(pair dram "$TMP/probe.json")" ] && [ "$(pair int8_dot)" = "$(pair int8_dot "$TMP/probe.json")" ]'
q probe --show
check "--show: the table" '[ $rc -eq 0 ] && grep -q "^  L1 " "$TMP/out" && grep -q "^  DRAM " "$TMP/out" && grep -q "GFLOP/s" "$TMP/out"'

# ---- text mode, --threads 1, --no-store ----
q probe --quick --threads 1 --no-store --db "$TMP/nostore.db"
check "--threads 1 --no-store exits 0" '[ $rc -eq 0 ]'
check "text: a row per level, GB/s" 'for l in L1 L2 L3 DRAM; do grep -Eq "^  $l +[0-9]+ [KM]iB +[0-9.]+ GB/s" "$TMP/out" || exit 1; done'
check "text: FMA and int8 rows" 'grep -q "f32 FMA .*GFLOP/s" "$TMP/out" && grep -q "int8 dot .*GOP/s" "$TMP/out"'
check "text: '1 thread' for --threads 1" 'grep -q "1 thread *1 thread" "$TMP/out"'
check "--no-store creates no database" '[ ! -e "$TMP/nostore.db" ] && ! grep -q "stored in" "$TMP/out"'

# ---- no stored probe ----
q probe --show --db "$TMP/absent.db"
check "--show, no database file -> exit 1, a message" '[ $rc -eq 1 ] && grep -q "no probe stored" "$TMP/err"'
check "--show does not create the database" '[ ! -e "$TMP/absent.db" ]'
: >"$TMP/empty.db"
q probe --show --db "$TMP/empty.db"
check "--show, an empty file -> exit 1, a message" '[ $rc -eq 1 ] && grep -q "error" "$TMP/err"'
if command -v sqlite3 >/dev/null 2>&1; then
  cp "$QKC_TUNE_DB" "$TMP/other.db"
  sqlite3 "$TMP/other.db" "UPDATE probe SET fingerprint = 'another machine'" 2>/dev/null
  q probe --show --db "$TMP/other.db"
  check "--show, only another machine's probe -> exit 1" '[ $rc -eq 1 ] && grep -q "no probe stored for this machine" "$TMP/err"'
else
  echo "skipped: --show with another machine's probe (no sqlite3 to edit the database)"
fi

# ---- a corrupt database: results still printed, a warning, exit 0 ----
head -c 8192 /dev/urandom >"$TMP/corrupt.db"
q probe --quick --db "$TMP/corrupt.db"
check "corrupt database -> exit 0" '[ $rc -eq 0 ]'
check "corrupt database -> the table is printed" 'grep -q "^  DRAM " "$TMP/out"'
check "corrupt database -> a warning" 'grep -q "warning: the result is not stored" "$TMP/err" && ! grep -q "stored in" "$TMP/out"'
q probe --show --db "$TMP/corrupt.db"
check "--show, corrupt database -> exit 1" '[ $rc -eq 1 ] && grep -q "error" "$TMP/err"'
mkdir "$TMP/dir.db"
q probe --quick --json --db "$TMP/dir.db"
check "a directory as database -> exit 0, a warning, JSON" '[ $rc -eq 0 ] && grep -q "warning: the result is not stored" "$TMP/err" && grep -q "^{" "$TMP/out"'

# ---- usage errors ----
for t in -1 abc 1x 257; do
  q probe --threads "$t" --no-store
  check "--threads $t -> exit 2" '[ $rc -eq 2 ] && grep -q "threads" "$TMP/err"'
done
q probe --bogus
check "unknown option -> exit 2" '[ $rc -eq 2 ]'
q probe extra
check "an argument -> exit 2" '[ $rc -eq 2 ]'
q probe --show --quick
check "--show --quick -> exit 2" '[ $rc -eq 2 ]'
q probe --show --db ""
check "--db with an empty name -> exit 2" '[ $rc -eq 2 ]'

# ---- --help ----
q probe --help
check "--help exits 0 and explains DRAM, --show, --json" \
  '[ $rc -eq 0 ] && grep -q "DRAM" "$TMP/out" && grep -q -- "--show" "$TMP/out" && grep -q -- "--json" "$TMP/out" && grep -q "example" "$TMP/out"'

echo "cli_probe: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
