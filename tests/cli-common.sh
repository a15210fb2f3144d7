# cli-common.sh — sourced by tests/cli_*.sh (its name keeps it out of the
# cli_*.sh test glob): the repository root as working directory, a scratch
# directory $TMP removed on exit, pass/fail counters, and the ways the
# scripts check a command.
#   source "$(dirname "$0")/cli-common.sh" "$@"     # $1 of the script: the qkc binary
set -uo pipefail
QKC=${1:?usage: bash tests/$(basename "$0") path/to/qkc}
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "ok   $1"; }
# bad NAME: a failure, with what the last command printed.
bad() {
  fail=$((fail + 1))
  echo "FAIL $1"
  for f in "$TMP/out" "$TMP/err"; do [ -s "$f" ] && sed 's/^/     | /' "$f" | head -30; done
}
# check_eval NAME CONDITION: the shell condition must hold.
check_eval() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
# check_run NAME WANT_EXIT PATTERN CMD...: CMD exits WANT_EXIT and prints
# (stdout or stderr) a line matching the extended regex PATTERN.
check_run() {
  local name=$1 want=$2 pat=$3
  shift 3
  rm -f "$TMP/err"
  "$@" >"$TMP/out" 2>&1
  local rc=$?
  if [ "$rc" = "$want" ] && grep -qE -- "$pat" "$TMP/out"; then ok "$name"; else
    echo "     (exit $rc, expected $want; pattern '$pat')" >>"$TMP/out"
    bad "$name"
  fi
}
# q ARGS...: runs qkc; stdout in $TMP/out, stderr in $TMP/err, status in $rc.
q() { "$QKC" "$@" >"$TMP/out" 2>"$TMP/err"; rc=$?; }
