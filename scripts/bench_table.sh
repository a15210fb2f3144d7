#!/usr/bin/env bash
# bench_table.sh — the GEMV table of docs/performance.md: `qkc bench` of
# y = W x for every format of `qkc info --list`, weights cold (streamed
# from DRAM), on 1 and all threads, one line per format.
#
#   [REPS=10] [REPACK=R] [READ=1] scripts/bench_table.sh [QKC] [DIMS] > table.md
#
# FORMATS=a,b,c keeps only those formats' rows.
# TIMEOUT (seconds, default 900) bounds each format's run: such a row says
# "failed".
# REPACK=R (1, 4, 8, 16): the integer-dot kernels read their weights in the
# row-interleaved layout of R rows (configuration repack=R; `qkc bench`
# converts the packed weights once, before timing); formats without that
# layout run as without REPACK, and the path column says which ran. A
# format whose integer image takes several bytes a code and that has the
# layout's f32 form (nf4) runs that form with x in f32 instead (REPACK and
# TUNED runs; the path column says "f32 form").
# CONFIG="key=value ..." adds configuration keys to the REPACK runs (an
# A/B of the builder's defaults, e.g. CONFIG="kblocks=2"); a row whose
# configuration is refused says "failed" with qkc's error instead of
# falling back to the format's own layout.
# READ=1: each run also streams the same weight bytes with the probe's read
# loop after every repetition (`qkc bench --baseline read`), and two "of
# read" columns give the kernel's rate as a share of that same-minute read
# rate (on a shared host the stored probe's DRAM figure drifts 30% or more
# from one quarter of an hour to the next; this ratio far less).
#
# TUNED=1: the integer-dot kernels take the autotuner's configuration, as a
# user who tunes before deploying gets: `qkc tune --layout any` at DIMS on 1
# and all threads (timed cold beyond L3; TOP=N own-layout candidates, default
# 3, besides the row-interleaved ones), then `qkc bench --layout any` without
# a configuration, which takes the stored winner per thread count. The
# records go to a private database (a full `qkc probe` first, so "of DRAM"
# stays comparable); the path column gives each thread count's winner.
#
# Sign-bit formats (code = binary) run as XNOR-Net runs them: x quantized
# to the weights' own format in the kernel, the reduction by popcount.
# Other formats with an integer image (tir_decode.h) run as llama.cpp runs them
# in decoding: the activation vector is quantized to int8 inside the kernel
# (q8_0 for weights in blocks of 32 or fewer; else int8 blocks of the
# weights' block, up to 256, with an f32 scale, as ggml's q8_K for its
# 256-blocks) and the reduction uses integer dot products (N:M formats
# too, expanded to dense bytes). The others (minifloats, tables and
# codebooks without an integer image) multiply decoded f32 weights with
# f32 activations. Which path a format takes is read from the tiled IR.
# Base-3 and N:M codes grow in the row-interleaved layout (2-bit digits,
# dense codes): their GB/s count the bytes read, and the path column adds
# the same times in the format's own bytes.
set -uo pipefail
QKC=${1:-build/qkc}
DIMS=${2:-N=8192,K=8192}
DSL=$(cd "$(dirname "$0")/../dsl" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -n "${TUNED:-}" ]; then
    "$QKC" probe --db "$tmp/tune.db" >/dev/null 2>&1 || { echo "bench_table: qkc probe failed" >&2; exit 1; }
fi
if [ -n "${READ:-}" ]; then
    echo "| format | bits/w | path | 1 thread GB/s | of DRAM | of read | all threads GB/s | of DRAM | of read |"
    echo "|---|---|---|---|---|---|---|---|---|"
else
    echo "| format | bits/w | path | 1 thread GB/s | of DRAM | all threads GB/s | of DRAM |"
    echo "|---|---|---|---|---|---|---|"
fi
"$QKC" info --list | tail -n +2 | while read -r name bpw block bytes file; do
    if [ -n "${FORMATS:-}" ] && ! grep -qx "$name" <<<"${FORMATS//,/$'\n'}"; then
        continue
    fi
    book="" w="$name"
    shape=$("$QKC" info "$name" 2>/dev/null | sed -n 's/^codebook (a kernel parameter): \[\([0-9, ]*\)\].*/\1/p')
    if [ -n "$shape" ]; then
        w="$name(C)"
        book=", C: f16[$shape]"
    fi
    # x in int8 blocks of the weights' block: ggml's pairing (q8_0 for
    # blocks of 32, q8_K's 256 for the K-quants and tq2_0), generalized
    xf=q8_0
    if [ "$block" -ge 64 ] && [ "$block" -le 256 ]; then
        xf=xb
    fi
    # sign-magnitude codes (e4m3): the sign negates x's byte, so x takes an
    # e8m0 block scale, which never quantizes to -128 (row-interleaved only)
    if grep -q "sign-magnitude codes" <<<"$("$QKC" info "$name" 2>/dev/null)"; then
        xf=xe
    fi
    cat > "$tmp/k.qk" <<QK
import "$DSL/$file"
import "$DSL/ggml.qk"
format xb { code = int8; block = $block; scale = f32 }
format xe { code = int8; block = $block; scale = e8m0 }
kernel gemv_i8(W: $w[N, K]$book, x: f32[K]) -> y: f32[N] {
  xq[k] = quantize(x[k], $xf)
  y[n] = sum(k) W[n, k] * xq[k]
}
kernel gemv_f32(W: $w[N, K]$book, x: f32[K]) -> y: f32[N] {
  y[n] = sum(k) W[n, k] * x[k]
}
QK
    if "$QKC" info "$name" 2>/dev/null | head -1 | grep -q 'code = binary'; then
        cat >> "$tmp/k.qk" <<QK
kernel gemv_b1(W: $w[N, K], x: f32[K]) -> y: f32[N] {
  xb[k] = quantize(x[k], $name)
  y[n] = sum(k) W[n, k] * xb[k]
}
QK
    fi
    k=gemv_f32 path="f32"
    tir=$("$QKC" emit "$tmp/k.qk" --kernel gemv_i8 --stage=tir 2>/dev/null)
    if grep -qw popcnt <<<"$("$QKC" emit "$tmp/k.qk" --kernel gemv_b1 --stage=tir 2>/dev/null)"; then
        k=gemv_b1 path="popcount, x: $name"
    elif grep -qw dot4 <<<"$tir"; then
        k=gemv_i8 path="int8 dot, x: $xf"
        [ "$xf" = xb ] && path="int8 dot, x: int8 blocks of $block"
    elif [ "$xf" = xe ] && [ -n "${REPACK:-}${TUNED:-}" ] &&
        grep -qw dot4 <<<"$("$QKC" emit "$tmp/k.qk" --kernel gemv_i8 --stage=tir -c "repack=${REPACK:-1}" 2>/dev/null)"; then
        k=gemv_i8 path="int8 dot, x: int8 blocks of $block with an e8m0 scale"
    fi
    # an integer image of several bytes costs a dot product per byte; where
    # the format has the layout's f32 form (`qkc info`: one lookup per
    # code), REPACK and TUNED runs take that with x in f32 instead (nf4:
    # four bytes; bitsandbytes runs it with float activations too)
    rp=${REPACK:-${TUNED:+1}}
    info=$("$QKC" info "$name" 2>/dev/null)
    nb=$(sed -n 's/^integer image: \([2-9]\) bytes.*/\1/p' <<<"$info")
    if [ -n "$rp" ] && [ $k = gemv_i8 ] && [ -n "$nb" ] && grep -q '^row-interleaved layout, f32 work.*: the format' <<<"$info" &&
        "$QKC" emit "$tmp/k.qk" --kernel gemv_f32 --stage=tir -c "repack=$rp" >/dev/null 2>&1; then
        k=gemv_f32 path="f32 form (image of $nb bytes), x: f32"
    fi
    out=""
    if [ -n "${TUNED:-}" ] && [ $k != gemv_b1 ] && [ "$path" != f32 ]; then
        timeout "${TIMEOUT:-900}" "$QKC" tune "$tmp/k.qk" --kernel $k --dims "$DIMS" --layout any \
            --top "${TOP:-3}" --db "$tmp/tune.db" >"$tmp/tune" 2>&1
        out=$(timeout "${TIMEOUT:-900}" "$QKC" bench "$tmp/k.qk" --kernel $k --dims "$DIMS" --mode cold \
            --reps "${REPS:-10}" --json ${READ:+--baseline read} --layout any --db "$tmp/tune.db" 2>"$tmp/err")
        # each thread count's configuration, past the keys every candidate shares
        cfgs=$(printf '%s' "$out" | tr '{' '\n' | grep '"mode"' | sed -n 's/.*"threads": *\([0-9]*\).*"config": *"\([^"]*\)".*/\1t: \2/p' |
            sed 's/lanes=[0-9]* //; s/ idot=1 idot_bytes=[0-9]*//; s/ tile_inner=[0-9]*//' | paste -sd';' | sed 's/;/; /g')
        [ -n "$out" ] && path="$path, tuned: $cfgs"
    fi
    if [ -z "$out" ] && [ -n "${REPACK:-}" ] && [ $k != gemv_b1 ] && [ "$path" != f32 ]; then
        out=$(timeout "${TIMEOUT:-900}" "$QKC" bench "$tmp/k.qk" --kernel $k --dims "$DIMS" --mode cold \
            --reps "${REPS:-10}" --json ${READ:+--baseline read} -c "repack=$REPACK${CONFIG:+ $CONFIG}" 2>"$tmp/err")
        [ -n "$out" ] && path="$path, repack=$REPACK${CONFIG:+ $CONFIG}"
        if [ -z "$out" ] && [ -n "${CONFIG:-}" ]; then # an A/B row must not fall back to another kernel
            echo "| $name | $bpw | $path, repack=$REPACK $CONFIG | failed: $(head -1 "$tmp/err") | | | |"
            continue
        fi
    fi
    [ -n "$out" ] || out=$(timeout "${TIMEOUT:-900}" "$QKC" bench "$tmp/k.qk" --kernel $k --dims "$DIMS" --mode cold \
        --reps "${REPS:-10}" --json ${READ:+--baseline read} 2>/dev/null)
    if [ -z "$out" ]; then
        echo "| $name | $bpw | $path | failed | | | |"
        continue
    fi
    # one run object per thread count: {"mode":"cold","threads":T,... "gbps_weights":G ... "ratio_bw":R
    runs=$(printf '%s' "$out" | tr '{' '\n' | grep '"mode"')
    g1=$(printf '%s\n' "$runs" | sed -n '1s/.*"gbps_weights": *\([0-9.e+-]*\).*/\1/p')
    r1=$(printf '%s\n' "$runs" | sed -n '1s/.*"ratio_bw": *\([0-9.e+-]*\).*/\1/p')
    g2=$(printf '%s\n' "$runs" | sed -n '2s/.*"gbps_weights": *\([0-9.e+-]*\).*/\1/p')
    r2=$(printf '%s\n' "$runs" | sed -n '2s/.*"ratio_bw": *\([0-9.e+-]*\).*/\1/p')
    q1=$(printf '%s\n' "$runs" | sed -n '1s/.*"ratio_read": *\([0-9.e+-]*\).*/\1/p')
    q2=$(printf '%s\n' "$runs" | sed -n '2s/.*"ratio_read": *\([0-9.e+-]*\).*/\1/p')
    grep -q '"pass": *true' <<<"$out" || path="$path (CHECK FAILED)"
    # a row-interleaved layout that grows (base-3, N:M): the figures count
    # the bytes read; the path says what that is in the format's own bytes
    wb=$(printf '%s\n' "$runs" | sed -n '1s/.*"weight_bytes": *\([0-9.e+-]*\).*/\1/p')
    wo=$(printf '%s\n' "$runs" | sed -n '1s/.*"weight_bytes_own": *\([0-9.e+-]*\).*/\1/p')
    if [ -n "$wb" ] && [ -n "$wo" ] && [ "$wb" != "$wo" ]; then
        path="$path; reads $(awk "BEGIN{printf \"%.4g\", $bpw * $wb / $wo}") bits/w: in the format's own bytes"
        path="$path $(awk "BEGIN{printf \"%.2f GB/s (%.0f%%), all threads %.2f (%.0f%%)\", ${g1:-0} * $wo / $wb, \
            ${r1:-0} * 100 * $wo / $wb, ${g2:-0} * $wo / $wb, ${r2:-0} * 100 * $wo / $wb}")"
    fi
    if [ -n "${READ:-}" ]; then
        printf '| %s | %s | %s | %.2f | %.0f%% | %.0f%% | %.2f | %.0f%% | %.0f%% |\n' "$name" "$bpw" "$path" "${g1:-0}" \
            "$(awk "BEGIN{print ${r1:-0} * 100}")" "$(awk "BEGIN{print ${q1:-0} * 100}")" "${g2:-0}" \
            "$(awk "BEGIN{print ${r2:-0} * 100}")" "$(awk "BEGIN{print ${q2:-0} * 100}")"
    else
        printf '| %s | %s | %s | %.2f | %.0f%% | %.2f | %.0f%% |\n' "$name" "$bpw" "$path" "${g1:-0}" \
            "$(awk "BEGIN{print ${r1:-0} * 100}")" "${g2:-0}" "$(awk "BEGIN{print ${r2:-0} * 100}")"
    fi
done
