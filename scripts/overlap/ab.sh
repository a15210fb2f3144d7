#!/bin/bash
# ab.sh ROUNDS V1 V2 ...: builds h_V from `gen.py V` (underscores stand for spaces: nopf_onestream),
# runs the variants alternated ROUNDS times and prints the median share of the same-run read rate.
# V = al1 runs the hand loop (./hand 1 4096) instead.
set -e
cd "$(dirname "$0")"
R=$1; shift
python3 gen.py base > l_base.S
gcc -O2 -march=native -o hand hand.c l_base.S 2>/dev/null
for v in "$@"; do
  [ "$v" = al1 ] && continue
  python3 gen.py ${v//_/ } > "l_$v.S"
  gcc -O2 -march=native -o "h_$v" harness.c "l_$v.S" 2>/dev/null
done
for i in $(seq "$R"); do for v in "$@"; do
  if [ "$v" = al1 ]; then ./hand 1 4096 | sed "s/^mode=1 PF= 4096/al1/"; else "./h_$v" "$v"; fi
done; done > ab.out
for v in "$@"; do
  awk -v v="$v" '$1==v {for(i=1;i<=NF;i++) if($i ~ /^\(/ && $i ~ /%\)$/){gsub(/[()%]/,"",$i); print $i}}' ab.out |
    sort -n | awk -v v="$v" '{a[NR]=$1} END {printf "%-26s median %.1f%%  (min %.1f max %.1f, n=%d)\n", v, a[int((NR+1)/2)], a[1], a[NR], NR}'
done
