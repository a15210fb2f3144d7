/* tir_decode.c — decode and encode of quantized elements as tiled-IR ops,
 * read off the format descriptor (format.h); called by tir_build.c.
 *
 * Decode of a chunk of lanes is built bottom-up:
 *   bytes  -> raw item values of a field (every piece of the field: stream,
 *             interleave or base-3 placement, item and bit ranges)
 *          -> code values (integer kinds, minifloats, tables, codebooks)
 *          -> "c - zero", "* scale", "+ min", "* tensor scale",
 * in the order of format.h's formula, so that the f32 results equal
 * qk_format_get() rounded to f32. A min is added with one rounding (fma);
 * products of several scale terms, a float zero point and sums of more
 * than two codebooks (carried errors, Sum2) may differ by an ulp.
 *
 * Two ways to reach the bytes:
 *   constant items (first_const >= 0): every lane's byte, bit shift and
 *     base-3 digit are compile-time constants; a piece loads the bytes that
 *     cover its lanes once (one vector load) and shuffles them to lanes,
 *     then shifts by per-lane constants;
 *   run-time items: per-lane byte offsets and shifts are computed with
 *     integer ops and the bytes are gathered (masked by piece membership,
 *     so no byte outside the block is read).
 * With one lane (scalar code, CUDA) both become scalar byte loads; nothing
 * here emits an unaligned multi-byte load.
 *
 * Scalar code tables (QK_CODE_TABLE) become a tree of SELECTs over the
 * code's bits (2^bits - 1 selects of f32 constants; the tiled IR has no
 * constant arrays): exact for every table size, cheap for <= 16 entries,
 * slow but correct for up to 256. Minifloats are decoded arithmetically:
 * the significand converted with sitofp times a power of two built from
 * bits, which is exact and never feeds an f32 denormal to a multiply.
 *
 * tdec_encode_row is the kernel-side quantizer: scalar loops with the f32
 * arithmetic of format.c's qk_format_pack for kernel-quantizable formats
 * (ggml's reference quantizers, generically: the scale from the group's
 * absmax rule, codes from x times the reciprocal of the unrounded scale,
 * roundf or the +0.5 truncation, minifloats rounded to nearest even),
 * writing bytes with byte loads, ORs and stores; formats of whole-byte
 * codes with a maximum for statistic (q8_0) take vectors of elements.
 *
 * Prefix: tdec_ (public), static helpers unprefixed. */
#include "compiler/tir_decode.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#define MAXL 64       /* most lanes of one chunk */
#define MAX_WINDOW 256 /* most bytes one constant-item piece loads at once */

typedef struct dctx {
    tir_func *f;
    int b;                /* block new nodes go to */
    const qk_format *fm;
    const tdec_src *s;
    int blk;              /* i64: byte offset of the current block in s->ptr */
    int nofactor;         /* TDEC_NOFACTOR: code values left tdec_code_factor() off */
} dctx;

/* ---- emit helpers ---- */

static int lanes_of(dctx *d, int x)
{
    return d->f->nodes[x].type.lanes;
}

static tir_scalar kind_of(dctx *d, int x)
{
    return (tir_scalar)d->f->nodes[x].type.s;
}

static int op1(dctx *d, tir_op op, tir_scalar s, int x)
{
    return tir_emit(d->f, d->b, op, tir_t(s, lanes_of(d, x)), x, -1, -1, -1);
}

static int op2(dctx *d, tir_op op, int x, int y)
{
    return tir_emit(d->f, d->b, op, d->f->nodes[x].type, x, y, -1, -1);
}

static int cmp(dctx *d, tir_op op, int x, int y)
{
    return tir_emit(d->f, d->b, op, tir_t(TS_I1, lanes_of(d, x)), x, y, -1, -1);
}

static int sel(dctx *d, int c, int x, int y)
{
    return tir_emit(d->f, d->b, TIR_SELECT, d->f->nodes[x].type, c, x, y, -1);
}

static int kint(dctx *d, tir_scalar s, int lanes, int64_t v)
{
    return tir_const_i(d->f, d->b, s, lanes, v);
}

static int kf(dctx *d, int lanes, double v)
{
    return tir_const_f(d->f, d->b, lanes, v);
}

static int k64(dctx *d, int64_t v)
{
    return kint(d, TS_I64, 1, v);
}

/* Integer constant with per-lane values (splat when they are all equal). */
static int klanes(dctx *d, tir_scalar s, int lanes, const int64_t *v)
{
    int32_t w[MAXL];
    int same = 1;
    for (int l = 0; l < lanes; l++)
        same &= v[l] == v[0];
    if (same)
        return kint(d, s, lanes, v[0]);
    for (int l = 0; l < lanes; l++) { /* per-lane values are sign-extended int32 */
        qk_assert(v[l] >= INT32_MIN && v[l] <= INT32_MAX);
        w[l] = (int32_t)v[l];
    }
    return tir_const_lanes(d->f, d->b, s, lanes, w);
}

static int splat(dctx *d, int x, int lanes)
{
    if (lanes_of(d, x) == lanes)
        return x;
    return tir_emit(d->f, d->b, TIR_SPLAT, tir_t(kind_of(d, x), lanes), x, -1, -1, -1);
}

static int scalar_bits(tir_scalar s)
{
    switch (s) {
    case TS_I1: return 1;
    case TS_I8: return 8;
    case TS_I16: return 16;
    case TS_I32: return 32;
    default: return 64;
    }
}

/* Integer x converted to kind s (zero-extended or truncated). */
static int resize(dctx *d, int x, tir_scalar s)
{
    int from = scalar_bits(kind_of(d, x)), to = scalar_bits(s);
    if (from == to)
        return x;
    return op1(d, from < to ? TIR_ZEXT : TIR_TRUNC, s, x);
}

/* x op constant, lanes of x (identities folded). */
static int opk(dctx *d, tir_op op, int x, int64_t v)
{
    int ident0 = op == TIR_ADD || op == TIR_SUB || op == TIR_OR || op == TIR_XOR || op == TIR_SHL ||
                 op == TIR_SHR || op == TIR_SAR;
    if ((v == 0 && ident0) || (v == 1 && (op == TIR_MUL || op == TIR_DIV)))
        return x;
    return op2(d, op, x, kint(d, kind_of(d, x), lanes_of(d, x), v));
}

static int fop(dctx *d, tir_op op, int x, int y)
{
    int l = lanes_of(d, x) > lanes_of(d, y) ? lanes_of(d, x) : lanes_of(d, y);
    return op2(d, op, splat(d, x, l), splat(d, y, l));
}

static int not1(dctx *d, int c)
{
    return op2(d, TIR_XOR, c, kint(d, TS_I1, lanes_of(d, c), 1));
}

static int iadd(dctx *d, int x, int y)
{
    return op2(d, TIR_ADD, x, y);
}

/* One byte-offset load (LOAD when scalar offsets, else GATHER). */
static int gather(dctx *d, int ptr, tir_scalar s, int offs, int mask)
{
    tir_op op = lanes_of(d, offs) == 1 ? TIR_LOAD : TIR_GATHER;
    return tir_emit(d->f, d->b, op, tir_t(s, lanes_of(d, offs)), ptr, offs, mask, -1);
}

static int load_byte(dctx *d, int ptr, int off)
{
    return tir_emit(d->f, d->b, TIR_LOAD, tir_t(TS_I8, 1), ptr, off, -1, -1);
}

/* Unsigned little-endian integer of nbytes (<= 4) bytes at ptr + off, as
 * i32, from single-byte loads. */
static int load_le(dctx *d, int ptr, int off, int nbytes)
{
    int acc = -1;
    for (int i = 0; i < nbytes; i++) {
        int x = resize(d, load_byte(d, ptr, i ? iadd(d, off, k64(d, i)) : off), TS_I32);
        if (i)
            x = opk(d, TIR_SHL, x, 8 * i);
        acc = acc < 0 ? x : op2(d, TIR_OR, acc, x);
    }
    return acc;
}

/* ---- placements: where item t of a piece sits ---- */

typedef struct bitpos {
    int byte;   /* from the block start */
    int shift;  /* bit of the item's lowest bit in that byte */
    int nbytes; /* bytes the item's bits touch */
    int digit;  /* BASE3: digit number 0..4 */
} bitpos;

static bitpos piece_pos(const qk_piece *p, int t)
{
    bitpos r = {0, 0, 1, 0};
    int g = p->group;
    if (p->place == QK_PLACE_STREAM) {
        int bit = p->byte * 8 + p->shift + t * p->width;
        r.byte = bit / 8;
        r.shift = bit % 8;
        r.nbytes = (r.shift + p->width + 7) / 8;
    } else if (p->place == QK_PLACE_INTERLEAVE) {
        int S = (8 - p->shift) / p->width;
        r.byte = p->byte + (t / (g * S)) * g + t % g;
        r.shift = p->shift + p->width * ((t / g) % S);
    } else {
        r.byte = p->byte + (t / (g * 5)) * g + t % g;
        r.digit = (t / g) % 5;
    }
    return r;
}

static const int pow3[5] = {1, 3, 9, 27, 81};

/* Base-3 digit of byte q (i16 or i32): ((q * 3^n) & 255) * 3 >> 8 (mul may be 0). */
static int base3_digit(dctx *d, int q, int mul)
{
    int x = op2(d, TIR_MUL, q, mul);
    x = opk(d, TIR_AND, x, 255);
    x = opk(d, TIR_MUL, x, 3);
    return opk(d, TIR_SHR, x, 8);
}

/* Per-lane items of one field: constant (ci, -1 = none) or an i64 vector. */
typedef struct itemset {
    int lanes;
    const int *ci;
    int rt;
} itemset;

static int64_t field_mask(int width)
{
    return width >= 64 ? -1 : (int64_t)((1ull << width) - 1);
}

/* ---- constant items ---- */

/* The bytes of one piece's lanes: a window loaded once, or gathers. */
typedef struct bytesrc {
    int win; /* i8 x W node, or -1 */
    int lo, W;
} bytesrc;

static bytesrc window(dctx *d, int lanes, int lo, int hi)
{
    bytesrc bs = {-1, lo, hi - lo + 1};
    if (lanes == 1 || bs.W > MAX_WINDOW)
        return bs;
    int off = iadd(d, d->blk, k64(d, lo));
    bs.win = tir_emit(d->f, d->b, TIR_LOAD, tir_t(TS_I8, bs.W == 1 ? 1 : bs.W), d->s->ptr, off, -1, -1);
    return bs;
}

/* i8 x lanes: lane l holds byte byte[l] of the block. */
static int bytes_at(dctx *d, const bytesrc *bs, const int *byte, int lanes)
{
    if (lanes == 1)
        return load_byte(d, d->s->ptr, iadd(d, d->blk, k64(d, byte[0])));
    if (bs->win < 0) {
        int64_t v[MAXL];
        for (int l = 0; l < lanes; l++)
            v[l] = byte[l];
        int offs = iadd(d, splat(d, d->blk, lanes), klanes(d, TS_I64, lanes, v));
        return gather(d, d->s->ptr, TS_I8, offs, -1);
    }
    if (bs->W == 1)
        return splat(d, bs->win, lanes);
    int32_t idx[MAXL];
    int ident = bs->W == lanes;
    for (int l = 0; l < lanes; l++) {
        idx[l] = byte[l] - bs->lo;
        ident &= idx[l] == l;
    }
    return ident ? bs->win : tir_shuffle(d->f, d->b, bs->win, lanes, idx);
}

typedef struct cpiece {
    int in[MAXL];
    bitpos pos[MAXL];
    int K, lo, hi;
    int ragged; /* some lane's last byte holds bits above its item */
} cpiece;

/* Positions of the lanes inside piece p; 0 if no lane is in it. */
static int cpiece_scan(const qk_piece *p, const itemset *it, cpiece *cp)
{
    int any = 0;
    cp->K = 0, cp->lo = INT_MAX, cp->hi = -1, cp->ragged = 0;
    for (int l = 0; l < it->lanes; l++) {
        int i = it->ci[l];
        cp->in[l] = i >= p->first && i < p->first + p->count;
        if (!cp->in[l])
            continue;
        any = 1;
        cp->pos[l] = piece_pos(p, i - p->first);
        cp->ragged |= cp->pos[l].shift + p->width != 8 * cp->pos[l].nbytes;
        if (cp->pos[l].nbytes > cp->K)
            cp->K = cp->pos[l].nbytes;
        if (cp->pos[l].byte < cp->lo)
            cp->lo = cp->pos[l].byte;
        if (cp->pos[l].byte + cp->pos[l].nbytes - 1 > cp->hi)
            cp->hi = cp->pos[l].byte + cp->pos[l].nbytes - 1;
    }
    return any;
}

static int cpiece_base3(dctx *d, const cpiece *cp, const bytesrc *bs, int lanes)
{
    int byte[MAXL];
    int64_t mul[MAXL];
    for (int l = 0; l < lanes; l++) {
        byte[l] = cp->in[l] ? cp->pos[l].byte : cp->lo;
        mul[l] = cp->in[l] ? pow3[cp->pos[l].digit] : 0;
    }
    /* in 16-bit lanes: q 3^n <= 255 * 81, (.. & 255) * 3 <= 765 fit, and
     * 16-bit multiplies are one instruction per 32 lanes where 32-bit
     * ones are a slow one per 16 (base-3 GEMV 2.0 -> GB/s with the weights in cache) */
    int q = resize(d, bytes_at(d, bs, byte, lanes), TS_I16);
    return base3_digit(d, q, klanes(d, TS_I16, lanes, mul));
}

/* Step k of a stream/interleave piece: byte k of every lane's item moved to
 * its place in the word (k = 0: >> shift; k > 0: << 8k - shift). */
static int cpiece_step(dctx *d, const qk_piece *p, const cpiece *cp, const bytesrc *bs, int k, int lanes,
                       tir_scalar ws)
{
    int bits = scalar_bits(ws), byte[MAXL], need_mask = 0, any_shift = 0;
    int64_t amt[MAXL], bmask[MAXL];
    for (int l = 0; l < lanes; l++) {
        int needed = cp->in[l] && k < cp->pos[l].nbytes;
        byte[l] = needed ? cp->pos[l].byte + k : cp->in[l] ? cp->pos[l].byte : cp->lo;
        int sh = cp->in[l] ? cp->pos[l].shift : 0;
        amt[l] = k == 0 ? sh : 8 * k - sh;
        if (amt[l] > bits - 1)
            amt[l] = bits - 1;
        /* a byte a lane does not need lands above its width, unless clamped */
        bmask[l] = needed ? 0xff : 0;
        need_mask |= cp->in[l] && !needed && amt[l] < p->width;
        any_shift |= amt[l] != 0;
    }
    int x = resize(d, bytes_at(d, bs, byte, lanes), ws);
    if (need_mask)
        x = op2(d, TIR_AND, x, klanes(d, ws, lanes, bmask));
    if (!any_shift)
        return x;
    /* Byte lanes shifted right in pairs by one amount, whose high bits the
     * caller masks away (one byte per item, width + shift <= 8): shift
     * 16-bit words, one instruction where bytes have none. */
    int pairs = ws == TS_I8 && k == 0 && lanes % 2 == 0 && cp->K == 1 && cp->ragged && p->width < 8;
    for (int l = 0; pairs && l < lanes; l++)
        pairs = amt[l] == amt[l ^ 1] && amt[l] + p->width <= 8;
    if (pairs) {
        int64_t a16[MAXL];
        for (int l = 0; l < lanes / 2; l++)
            a16[l] = amt[2 * l];
        int w = tir_emit(d->f, d->b, TIR_BITCAST, tir_t(TS_I16, lanes / 2), x, -1, -1, -1);
        w = op2(d, TIR_SHR, w, klanes(d, TS_I16, lanes / 2, a16));
        return tir_emit(d->f, d->b, TIR_BITCAST, tir_t(TS_I8, lanes), w, -1, -1, -1);
    }
    return op2(d, k == 0 ? TIR_SHR : TIR_SHL, x, klanes(d, ws, lanes, amt));
}

/* Piece p's bits of the lanes' items (ws x lanes), 0 in lanes outside it;
 * -1 when no lane is inside. */
static int piece_const(dctx *d, const qk_piece *p, const itemset *it, tir_scalar ws)
{
    cpiece cp;
    int lanes = it->lanes;
    if (!cpiece_scan(p, it, &cp))
        return -1;
    /* one whole little-endian field of 2 or 4 bytes: one load on CPUs */
    if (lanes == 1 && d->s->wide && p->place == QK_PLACE_STREAM && (cp.K == 2 || cp.K == 4) &&
        cp.pos[0].shift == 0 && p->width == 8 * cp.K && scalar_bits(ws) >= p->width) {
        int x = tir_emit(d->f, d->b, TIR_LOAD, tir_t(cp.K == 2 ? TS_I16 : TS_I32, 1), d->s->ptr,
                         iadd(d, d->blk, k64(d, cp.pos[0].byte)), -1, -1);
        x = resize(d, x, ws);
        return p->lo ? opk(d, TIR_SHL, x, p->lo) : x;
    }
    bytesrc bs = window(d, lanes, cp.lo, cp.hi);
    int acc;
    if (p->place == QK_PLACE_BASE3) {
        acc = resize(d, cpiece_base3(d, &cp, &bs, lanes), ws);
    } else {
        acc = -1;
        for (int k = 0; k < cp.K; k++) {
            int x = cpiece_step(d, p, &cp, &bs, k, lanes, ws);
            acc = acc < 0 ? x : op2(d, TIR_OR, acc, x);
        }
        int64_t m[MAXL];
        int all_in = 1;
        for (int l = 0; l < lanes; l++) {
            m[l] = cp.in[l] ? -1 : 0;
            all_in &= cp.in[l];
        }
        if (p->width < scalar_bits(ws) && cp.ragged)
            acc = opk(d, TIR_AND, acc, field_mask(p->width));
        if (!all_in)
            acc = op2(d, TIR_AND, acc, klanes(d, ws, lanes, m));
    }
    return p->lo ? opk(d, TIR_SHL, acc, p->lo) : acc;
}

/* ---- run-time items ---- */

/* Largest number of bytes one item of a stream piece touches. */
static int stream_bytes(const qk_piece *p)
{
    int K = 1;
    for (int t = 0; t < 8 && t < p->count; t++) {
        int n = piece_pos(p, t).nbytes;
        K = n > K ? n : K;
    }
    return K;
}

typedef struct rpiece {
    int in;    /* i1 x lanes: lane's item is in the piece */
    int by;    /* i64 x lanes: absolute byte offset of the item's first byte */
    int sh;    /* i64 x lanes: its bit shift (or base-3 digit) */
} rpiece;

/* Byte and shift of item t (i64 x lanes) of piece p, computed at run time. */
static rpiece rpiece_pos(dctx *d, const qk_piece *p, int iv)
{
    int lanes = lanes_of(d, iv);
    rpiece r;
    int lo = cmp(d, TIR_ILT, iv, kint(d, TS_I64, lanes, p->first));
    int hi = cmp(d, TIR_ILT, iv, kint(d, TS_I64, lanes, p->first + p->count));
    r.in = op2(d, TIR_AND, not1(d, lo), hi);
    int t = opk(d, TIR_SUB, iv, p->first), g = p->group;
    if (p->place == QK_PLACE_STREAM) {
        int bit = opk(d, TIR_ADD, opk(d, TIR_MUL, t, p->width), p->byte * 8 + p->shift);
        r.by = opk(d, TIR_SHR, bit, 3);
        r.sh = opk(d, TIR_AND, bit, 7);
    } else {
        int S = p->place == QK_PLACE_BASE3 ? 5 : (8 - p->shift) / p->width;
        int run = opk(d, TIR_MUL, opk(d, TIR_DIV, t, (int64_t)g * S), g);
        r.by = opk(d, TIR_ADD, iadd(d, run, opk(d, TIR_REM, t, g)), p->byte);
        r.sh = opk(d, TIR_REM, opk(d, TIR_DIV, t, g), S);
        if (p->place == QK_PLACE_INTERLEAVE)
            r.sh = opk(d, TIR_ADD, opk(d, TIR_MUL, r.sh, p->width), p->shift);
    }
    r.by = iadd(d, r.by, splat(d, d->blk, lanes));
    return r;
}

/* 3^n for a digit number n (i32 x lanes, 0..4). */
static int pow3_of(dctx *d, int n)
{
    int lanes = lanes_of(d, n), m = kint(d, TS_I32, lanes, 1);
    for (int k = 1; k < 5; k++)
        m = sel(d, cmp(d, TIR_IEQ, n, kint(d, TS_I32, lanes, k)), kint(d, TS_I32, lanes, pow3[k]), m);
    return m;
}

static int piece_rt(dctx *d, const qk_piece *p, const itemset *it, tir_scalar ws)
{
    rpiece r = rpiece_pos(d, p, it->rt);
    int lanes = it->lanes, bits = scalar_bits(ws), acc = -1;
    if (p->place == QK_PLACE_BASE3) {
        int q = resize(d, gather(d, d->s->ptr, TS_I8, r.by, r.in), TS_I32);
        acc = resize(d, base3_digit(d, q, pow3_of(d, resize(d, r.sh, TS_I32))), ws);
        return p->lo ? opk(d, TIR_SHL, acc, p->lo) : acc;
    }
    int K = p->place == QK_PLACE_STREAM ? stream_bytes(p) : 1;
    int sh = resize(d, r.sh, ws);
    for (int k = 0; k < K; k++) {
        int mask = r.in;
        if (k > 0) /* byte k is needed when shift + width > 8k */
            mask = op2(d, TIR_AND, mask, cmp(d, TIR_ILT, kint(d, TS_I64, lanes, 8 * k - p->width), r.sh));
        int offs = k ? opk(d, TIR_ADD, r.by, k) : r.by;
        int x = resize(d, gather(d, d->s->ptr, TS_I8, offs, mask), ws);
        if (k == 0) /* lanes outside the piece may have any shift: keep it in range */
            x = op2(d, TIR_SHR, x, opk(d, TIR_AND, sh, bits - 1));
        else /* masked-off bytes are 0; the amount only has to be in range */
            x = op2(d, TIR_SHL, x, opk(d, TIR_AND, op2(d, TIR_SUB, kint(d, ws, lanes, 8 * k), sh), bits - 1));
        acc = acc < 0 ? x : op2(d, TIR_OR, acc, x);
    }
    acc = opk(d, TIR_AND, acc, field_mask(p->width));
    return p->lo ? opk(d, TIR_SHL, acc, p->lo) : acc;
}

/* ---- fields ---- */

/* Raw values (ws x lanes) of field fl's items; 0 where a lane has none. */
static int field_get(dctx *d, int fl, const itemset *it, tir_scalar ws)
{
    int acc = -1;
    for (int i = 0; i < d->fm->npieces; i++) {
        const qk_piece *p = &d->fm->pieces[i];
        if (p->field != fl)
            continue;
        int x = it->ci ? piece_const(d, p, it, ws) : piece_rt(d, p, it, ws);
        if (x >= 0)
            acc = acc < 0 ? x : op2(d, TIR_OR, acc, x);
    }
    return acc < 0 ? kint(d, ws, it->lanes, 0) : acc;
}

/* Like field_get, but constant items that agree over the lanes are read
 * once and returned as a scalar (the caller splats where needed). */
static int field_uniform(dctx *d, int fl, const itemset *it, tir_scalar ws)
{
    if (it->ci && it->lanes > 1) {
        int one = -1, uniform = 1;
        for (int l = 0; l < it->lanes; l++) {
            if (it->ci[l] < 0)
                continue;
            uniform &= one < 0 || it->ci[l] == one;
            one = it->ci[l];
        }
        if (uniform) {
            itemset s = {1, &one, -1};
            return field_get(d, fl, &s, ws);
        }
    }
    return field_get(d, fl, it, ws);
}

/* field_uniform splatted to the lanes. */
static int field_lanes(dctx *d, int fl, const itemset *it, tir_scalar ws)
{
    return splat(d, field_uniform(d, fl, it, ws), it->lanes);
}

/* The one item of a per-block field (scale, zero, min). */
static int field_scalar(dctx *d, int fl, tir_scalar ws)
{
    int zero = 0;
    itemset s = {1, &zero, -1};
    return field_get(d, fl, &s, ws);
}

static tir_scalar word_kind(int width)
{
    return width > 32 ? TS_I64 : TS_I32;
}

/* ---- numbers ---- */

/* OCP minifloat code (i32 x lanes) -> f32, exact: the significand as an
 * integer times a normal power of two. */
/* The same through binary16, for vectors of minifloats with at most 5
 * exponent and 10 mantissa bits: the magnitude's bits shifted to f16's
 * mantissa top are an f16 whose value is the minifloat's times
 * 2^(bias - 15), normals and subnormals alike (both scale by the same
 * power of two), so value = h2f(bits) * 2^(15 - bias), exact. One shift,
 * one conversion (vcvtph2ps) and one multiply in place of a dozen integer
 * and float ops; IEEE specials (e5m2 is binary16's top byte) come out of
 * the conversion, FN's NaN code is selected. */
/* hi8 >= 0 (i16 x lanes, each code in its word's high byte: a signed
 * code of 8 bits, codes_high_bytes) stands in for code's shift to bit 15. */
static int minifloat_f16(dctx *d, int code, int hi8, int ebits, int mbits, int bias, qk_mf_special sp,
                         int is_unsigned, int nofactor)
{
    int lanes = lanes_of(d, hi8 >= 0 ? hi8 : code), all = (1 << (ebits + mbits)) - 1, sh = 10 - mbits;
    qk_assert(hi8 < 0 || (!is_unsigned && ebits + mbits == 7));
    /* In 16-bit lanes (sign, exponent and mantissa fit): the magnitude
     * shifted to f16's mantissa top; a signed code's sign reaches bit 15
     * with it when the code is shifted up to bit 15 and arithmetically
     * back (one shift when it is already there: e5m2), and one mask keeps
     * sign and magnitude */
    int c16 = -1, h = hi8; /* hi8: e5m2's code is already in place */
    if (hi8 < 0) {
        c16 = resize(d, code, TS_I16);
        h = opk(d, TIR_SHL, c16, sh);
    }
    int mag = h;
    if (is_unsigned || (ebits < 5 && hi8 < 0)) /* unsigned codes may carry an ignored top bit (ue4m3 in a byte) */
        h = mag = opk(d, TIR_AND, h, (int64_t)all << sh);
    if (!is_unsigned && ebits < 5) { /* the code sign-extended and shifted: sign at bit 15, magnitude in place */
        int top = hi8 >= 0 ? hi8 : opk(d, TIR_SHL, c16, 15 - ebits - mbits);
        h = opk(d, TIR_AND, opk(d, TIR_SAR, top, 5 - ebits), 0x8000 | ((int64_t)all << sh));
        if (hi8 >= 0)
            mag = opk(d, TIR_AND, h, (int64_t)all << sh);
    }
    if (sp == QK_MF_FN) /* FN's NaN code -> binary16's quiet NaN, before the conversion */
        h = sel(d, cmp(d, TIR_IEQ, mag, kint(d, TS_I16, lanes, (int64_t)all << sh)), kint(d, TS_I16, lanes, 0x7e00), h);
    int v = op1(d, TIR_H2F, TS_F32, h);
    if (bias != 15 && !nofactor)
        v = op2(d, TIR_FMUL, v, kf(d, lanes, ldexp(1.0, 15 - bias)));
    return v;
}

/* Minifloats that binary16 holds exactly, specials included. */
static int mf_in_f16(int ebits, int mbits, qk_mf_special sp)
{
    return ebits <= 5 && mbits <= 10 && (ebits < 5 || sp == QK_MF_IEEE);
}

/* nofactor: a vector decoded through binary16 is left 2^(15 - bias) off. */
static int minifloat(dctx *d, int code, int ebits, int mbits, int bias, qk_mf_special sp, int is_unsigned,
                     int nofactor)
{
    int lanes = lanes_of(d, code);
    if (lanes > 1 && kind_of(d, code) == TS_I32 && mf_in_f16(ebits, mbits, sp))
        return minifloat_f16(d, code, -1, ebits, mbits, bias, sp, is_unsigned, nofactor);
    int emask = (1 << ebits) - 1, mmask = (1 << mbits) - 1;
    qk_assert(2 - bias - mbits + 127 >= 1 && emask - bias - mbits + 127 <= 254);
    int m = opk(d, TIR_AND, code, mmask);
    int e = opk(d, TIR_AND, opk(d, TIR_SHR, code, mbits), emask);
    int sig = op2(d, TIR_OR, m, opk(d, TIR_SHL, opk(d, TIR_MIN, e, 1), mbits));
    int ex = opk(d, TIR_ADD, opk(d, TIR_MAX, e, 1), 127 - bias - mbits);
    int p2 = op1(d, TIR_BITCAST, TS_F32, opk(d, TIR_SHL, ex, 23));
    int v = op2(d, TIR_FMUL, op1(d, TIR_SITOFP, TS_F32, sig), p2);
    if (sp == QK_MF_IEEE) {
        int top = cmp(d, TIR_IEQ, e, kint(d, TS_I32, lanes, emask));
        int inf = sel(d, cmp(d, TIR_IEQ, m, kint(d, TS_I32, lanes, 0)), kf(d, lanes, INFINITY), kf(d, lanes, NAN));
        v = sel(d, top, inf, v);
    } else if (sp == QK_MF_FN) {
        int all = (emask << mbits) | mmask;
        v = sel(d, cmp(d, TIR_IEQ, opk(d, TIR_AND, code, all), kint(d, TS_I32, lanes, all)), kf(d, lanes, NAN), v);
    }
    if (is_unsigned)
        return v;
    int sbit = opk(d, TIR_SHL, opk(d, TIR_AND, opk(d, TIR_SHR, code, ebits + mbits), 1), 31);
    return op1(d, TIR_BITCAST, TS_F32, op2(d, TIR_OR, op1(d, TIR_BITCAST, TS_I32, v), sbit));
}

/* 2^(e - 127) for an E8M0 byte; 0xff is NaN, 0 the denormal 2^-127. */
static int e8m0(dctx *d, int e)
{
    int lanes = lanes_of(d, e);
    int bits = opk(d, TIR_SHL, e, 23);
    bits = sel(d, cmp(d, TIR_IEQ, e, kint(d, TS_I32, lanes, 0)), kint(d, TS_I32, lanes, 0x00400000), bits);
    bits = sel(d, cmp(d, TIR_IEQ, e, kint(d, TS_I32, lanes, 255)), kint(d, TS_I32, lanes, 0x7fc00000), bits);
    return op1(d, TIR_BITCAST, TS_F32, bits);
}

/* An 8-bit minifloat or E8M0 scale (one lane) on a CPU: one load from a table of
 * its 256 values (a LUT the code generator turns into a constant array),
 * in place of a dozen integer and float operations. -1 elsewhere. */
static int num_table(dctx *d, int raw, qk_num n)
{
    if (!d->s->wide || lanes_of(d, raw) != 1 || (n != QK_NUM_UE4M3 && n != QK_NUM_E4M3 && n != QK_NUM_E8M0))
        return -1;
    float t[256];
    for (int c = 0; c < 256; c++)
        t[c] = (float)qk_num_decode(n, (uint32_t)c);
    return tir_lut_f32(d->f, d->b, raw, 256, t);
}

/* Stored bits (i32 x lanes, masked to the type's width) of a number -> f32. */
/* The value of number n stored as raw. With factor non-null, an e4m3
 * number in vectors is built in binary16 and left off by the power of two
 * *factor (minifloat_f16's nofactor; *factor = 1 otherwise). */
static int num_value_f(dctx *d, int raw, qk_num n, double *factor)
{
    int t = num_table(d, raw, n);
    if (factor)
        *factor = 1.0;
    if (t >= 0)
        return t;
    switch (n) {
    case QK_NUM_F32: return op1(d, TIR_BITCAST, TS_F32, raw);
    case QK_NUM_F16: return op1(d, TIR_H2F, TS_F32, resize(d, raw, TS_I16));
    case QK_NUM_BF16: return op1(d, TIR_BITCAST, TS_F32, opk(d, TIR_SHL, raw, 16));
    case QK_NUM_E8M0: return e8m0(d, raw);
    case QK_NUM_UE4M3: case QK_NUM_E4M3: {
        int nofactor = factor && lanes_of(d, raw) > 1 && kind_of(d, raw) == TS_I32 && mf_in_f16(4, 3, QK_MF_FN);
        if (nofactor)
            *factor = ldexp(1.0, 15 - 7);
        return minifloat(d, raw, 4, 3, 7, QK_MF_FN, n == QK_NUM_UE4M3, nofactor);
    }
    case QK_NUM_I8: return op1(d, TIR_SITOFP, TS_F32, opk(d, TIR_SAR, opk(d, TIR_SHL, raw, 24), 24));
    case QK_NUM_U8: case QK_NUM_UINT: return op1(d, TIR_SITOFP, TS_F32, raw);
    default: qk_bug("num %d", (int)n);
    }
}

static int num_value(dctx *d, int raw, qk_num n)
{
    return num_value_f(d, raw, n, NULL);
}

int tdec_num(tir_func *f, int b, qk_num n, int raw)
{
    tdec_src none = {0};
    dctx d = {.f = f, .b = b, .s = &none};
    return num_value(&d, raw, n);
}

int tdec_num_unscaled(tir_func *f, int b, qk_num n, int raw, double *factor)
{
    tdec_src none = {0};
    dctx d = {.f = f, .b = b, .s = &none};
    return num_value_f(&d, raw, n, factor);
}

/* A number stored in a header (tensor or row) at ptr + off. */
static int header_num(dctx *d, int off, qk_num n, int bits)
{
    return num_value(d, load_le(d, d->s->ptr, off, (qk_num_bits(n, bits) + 7) / 8), n);
}

/* ---- chunks: which items the lanes are ---- */

typedef struct chunk {
    int lanes;
    int cfirst; /* constant first item, or -1 */
    int first;  /* i64 node */
    int nitems; /* items of the index space (kept items or block) */
    int iv;     /* run time: i64 x lanes item numbers */
    int buf[8][MAXL];
    int nbuf;
} chunk;

/* item = ((i / a) * m + c) / q, for every lane's item i. */
typedef struct imap {
    int a, m, c, q;
} imap;

static itemset map_items(dctx *d, chunk *ch, imap mp)
{
    itemset it = {ch->lanes, NULL, -1};
    if (ch->cfirst >= 0) {
        qk_assert(ch->nbuf < 8);
        int *v = ch->buf[ch->nbuf++];
        for (int l = 0; l < ch->lanes; l++) {
            int i = ch->cfirst + l;
            v[l] = i < ch->nitems ? ((i / mp.a) * mp.m + mp.c) / mp.q : -1;
        }
        it.ci = v;
        return it;
    }
    int x = ch->iv;
    if (mp.a != 1)
        x = opk(d, TIR_DIV, x, mp.a);
    if (mp.m != 1)
        x = opk(d, TIR_MUL, x, mp.m);
    if (mp.c)
        x = opk(d, TIR_ADD, x, mp.c);
    if (mp.q != 1)
        x = opk(d, TIR_DIV, x, mp.q);
    it.rt = x;
    return it;
}

static const imap self_map = {1, 1, 0, 1};

/* Lane values of i % r (i64 x lanes), constant or computed. */
static int lane_rem(dctx *d, chunk *ch, int r)
{
    if (ch->cfirst >= 0) {
        int64_t v[MAXL];
        for (int l = 0; l < ch->lanes; l++)
            v[l] = (ch->cfirst + l) % r;
        return klanes(d, TS_I64, ch->lanes, v);
    }
    return opk(d, TIR_REM, ch->iv, r);
}

static void chunk_init(dctx *d, chunk *ch, int first, int first_const, int lanes)
{
    qk_assert(lanes >= 1 && lanes <= MAXL);
    ch->lanes = lanes;
    ch->cfirst = first_const;
    ch->first = first;
    ch->nitems = d->fm->sp_n ? d->fm->kept : d->fm->block;
    ch->nbuf = 0;
    ch->iv = -1;
    if (first_const >= 0)
        return;
    int32_t io[MAXL];
    for (int l = 0; l < lanes; l++)
        io[l] = l;
    int iota = lanes > 1 ? tir_const_lanes(d->f, d->b, TS_I64, lanes, io) : k64(d, 0);
    ch->iv = lanes > 1 ? iadd(d, splat(d, first, lanes), iota) : first;
}

static void dctx_init(dctx *d, tir_func *f, int b, const tdec_src *s, int kb)
{
    d->f = f;
    d->b = b;
    d->fm = s->fmt;
    d->s = s;
    d->nofactor = 0;
    int bo = op2(d, TIR_MUL, kb, k64(d, s->fmt->block_bytes));
    d->blk = iadd(d, s->row, opk(d, TIR_ADD, bo, s->fmt->row_header_bytes));
}

/* ---- code values ---- */

/* The power of two a vector of lanes codes of fm is left off under
 * TDEC_NOFACTOR: 2^(15 - bias) for minifloats that binary16 holds (the
 * f16 decode's multiply, and a LUT's values divided alike), else 1. */
static double code_factor(const qk_format *fm, int lanes)
{
    if (fm->code != QK_CODE_MINIFLOAT || lanes < 2 || fm->zero != QK_ZERO_NONE ||
        !mf_in_f16(fm->ebits, fm->mbits, fm->special))
        return 1.0;
    return ldexp(1.0, 15 - fm->bias);
}

double tdec_code_factor(const qk_format *f, int lanes)
{
    return code_factor(f, lanes);
}

/* The code's value from a table of its 2^bits values (one TIR LUT), where
 * the source allows one that large and the lanes are a vector. */
static int value_lut(dctx *d, int code)
{
    const qk_format *fm = d->fm;
    int n = 1 << fm->bits;
    if (fm->bits > 8 || n > d->s->lut_f32 || lanes_of(d, code) < 4)
        return -1;
    float t[256];
    double div = d->nofactor ? code_factor(fm, lanes_of(d, code)) : 1.0;
    for (int c = 0; c < n; c++)
        t[c] = (float)(qk_format_codeval(fm, (uint32_t)c) / div);
    return tir_lut_f32(d->f, d->b, code, n, t);
}

/* 2^bits f32 constants selected by the code's bits (a tree of selects). */
static int table_lookup(dctx *d, int code)
{
    const qk_format *fm = d->fm;
    int lanes = lanes_of(d, code), n = 1 << fm->bits;
    int vals[256];
    float cv[256];
    for (int i = 0; i < n; i++) {
        cv[i] = (float)fm->table[i];
        vals[i] = -1;
    }
    for (int bit = 0; n > 1; bit++, n /= 2) {
        int c = op1(d, TIR_TRUNC, TS_I1, bit ? opk(d, TIR_SHR, code, bit) : code);
        for (int i = 0; i < n / 2; i++) {
            if (vals[2 * i] < 0 && vals[2 * i + 1] < 0 && memcmp(&cv[2 * i], &cv[2 * i + 1], sizeof(float)) == 0) {
                vals[i] = -1; /* equal constants: no select */
                cv[i] = cv[2 * i];
                continue;
            }
            int lo = vals[2 * i] >= 0 ? vals[2 * i] : kf(d, lanes, cv[2 * i]);
            int hi = vals[2 * i + 1] >= 0 ? vals[2 * i + 1] : kf(d, lanes, cv[2 * i + 1]);
            vals[i] = sel(d, c, hi, lo);
        }
    }
    return vals[0] >= 0 ? vals[0] : kf(d, lanes, cv[0]);
}

/* Raw code (i32 x lanes) -> its value c (f32), every kind but VQ. */
static int code_value(dctx *d, int code)
{
    const qk_format *fm = d->fm;
    /* signed and offset integer codes whose 2^bits values fit one f32
     * permute (vpermps / vpermi2ps: half of lut_f32): a LUT for the
     * sign extension or subtraction and the conversion (q4_0 times f32
     * x: 1.2-1.4x in L2). Unsigned codes keep their one conversion, which
     * measured faster than a permute (q4_K: 8%). */
    int t;
    if ((fm->code == QK_CODE_SINT || fm->code == QK_CODE_OFFSET) && (2 << fm->bits) <= d->s->lut_f32 &&
        (t = value_lut(d, code)) >= 0)
        return t;
    switch (fm->code) {
    case QK_CODE_SINT:
        if (fm->bits < 32)
            code = opk(d, TIR_SAR, opk(d, TIR_SHL, code, 32 - fm->bits), 32 - fm->bits);
        break;
    case QK_CODE_UINT: break;
    case QK_CODE_OFFSET: code = opk(d, TIR_SUB, code, fm->offset); break;
    case QK_CODE_TERNARY: code = opk(d, TIR_SUB, code, 1); break; /* a 2-bit 3 decodes as 2 */
    case QK_CODE_BINARY: code = op2(d, TIR_SUB, kint(d, TS_I32, lanes_of(d, code), 1), opk(d, TIR_SHL, code, 1)); break;
    case QK_CODE_MINIFLOAT: {
        int t = value_lut(d, code);
        return t >= 0 ? t : minifloat(d, code, fm->ebits, fm->mbits, fm->bias, fm->special, 0, d->nofactor);
    }
    case QK_CODE_TABLE: {
        int t = value_lut(d, code);
        return t >= 0 ? t : table_lookup(d, code);
    }
    default: qk_bug("code kind %d", (int)fm->code);
    }
    return op1(d, TIR_SITOFP, TS_F32, code);
}

/* Sign flip of VQ lanes: bit t of the group's signs with the parity as the
 * last lane's bit. */
static int vq_sign(dctx *d, chunk *ch, int v, int t)
{
    const qk_format *fm = d->fm;
    int D = fm->vq_dim;
    tir_scalar ws = D > 32 ? TS_I64 : TS_I32;
    itemset it = map_items(d, ch, (imap){D, 1, 0, 1});
    int s = field_lanes(d, QK_FIELD_SIGNS, &it, ws);
    int par = opk(d, TIR_AND, op1(d, TIR_POPCNT, ws, s), 1);
    s = op2(d, TIR_OR, s, opk(d, TIR_SHL, par, D - 1));
    int bit = resize(d, opk(d, TIR_AND, op2(d, TIR_SHR, s, resize(d, t, ws)), 1), TS_I32);
    int x = op2(d, TIR_XOR, op1(d, TIR_BITCAST, TS_I32, v), opk(d, TIR_SHL, bit, 31));
    return op1(d, TIR_BITCAST, TS_F32, x);
}

/* s = a + b rounded; *err += its rounding error (TwoSum, exact). */
static int two_sum(dctx *d, int a, int b, int *err)
{
    int s = op2(d, TIR_FADD, a, b);
    int bb = op2(d, TIR_FSUB, s, a);
    int e = op2(d, TIR_FADD, op2(d, TIR_FSUB, a, op2(d, TIR_FSUB, s, bb)), op2(d, TIR_FSUB, b, bb));
    *err = *err < 0 ? e : op2(d, TIR_FADD, *err, e);
    return s;
}

/* Codebook value of the lanes: sum over books of book[b][idx][t]. Two
 * books are one rounding of their exact sum, as the double formula gives;
 * more books are summed with their rounding errors carried (Ogita, Rump
 * and Oishi's Sum2), as if in twice the precision, then rounded once. */
static int vq_value(dctx *d, chunk *ch)
{
    const qk_format *fm = d->fm;
    int D = fm->vq_dim, B = fm->vq_books, dsz = fm->vq_dtype == QK_DT_F16 ? 2 : 4;
    int t = lane_rem(d, ch, D), sum = -1, err = -1;
    tir_scalar es = dsz == 2 ? TS_I16 : TS_F32;
    /* lanes within one codeword: its consecutive values, one vector load */
    int t0 = ch->cfirst >= 0 ? ch->cfirst % D : -1, one_word = t0 >= 0 && t0 + ch->lanes <= D;
    qk_assert(d->s->book >= 0);
    for (int b = 0; b < B; b++) {
        itemset it = map_items(d, ch, (imap){D, B, b, 1});
        int idx = resize(d, field_uniform(d, QK_FIELD_CODES, &it, TS_I32), TS_I64);
        int row = opk(d, TIR_MUL, opk(d, TIR_ADD, idx, (int64_t)b << fm->bits), D);
        int x;
        if (one_word && lanes_of(d, idx) == 1) {
            int off = opk(d, TIR_MUL, opk(d, TIR_ADD, row, t0), dsz);
            x = tir_emit(d->f, d->b, TIR_LOAD, tir_t(es, ch->lanes), d->s->book, off, -1, -1);
        } else {
            int off = opk(d, TIR_MUL, iadd(d, splat(d, row, ch->lanes), t), dsz);
            x = gather(d, d->s->book, es, off, -1);
        }
        if (dsz == 2)
            x = op1(d, TIR_H2F, TS_F32, x);
        sum = sum < 0 ? x : B > 2 ? two_sum(d, sum, x, &err) : op2(d, TIR_FADD, sum, x);
    }
    if (err >= 0)
        sum = op2(d, TIR_FADD, sum, err);
    return fm->vq_signs ? vq_sign(d, ch, sum, t) : sum;
}

/* The codes piece of an 8-bit minifloat whose chunk of L lanes at
 * compile-time item cfirst codes_high_bytes reads from its high bytes
 * (the pair of chunks from f = cfirst rounded down to 2L in one load),
 * or NULL. */
static const qk_piece *high_bytes_piece(const qk_format *fm, int L, int cfirst, int lut_f32, int byte_perm)
{
    int f = cfirst - cfirst % (2 * L), nitems = fm->sp_n ? fm->kept : fm->block;
    if (fm->code != QK_CODE_MINIFLOAT || fm->bits != 8 || fm->ebits + fm->mbits != 7 || L < 16 || 4 * L > MAXL ||
        cfirst < 0 || f + 2 * L > nitems || (1 << fm->bits) <= lut_f32 || fm->sp_n || !byte_perm ||
        !mf_in_f16(fm->ebits, fm->mbits, fm->special))
        return NULL;
    const qk_piece *p = NULL;
    for (int i = 0; i < fm->npieces; i++) {
        if (fm->pieces[i].field != QK_FIELD_CODES)
            continue;
        if (p)
            return NULL;
        p = &fm->pieces[i];
    }
    if (!p || p->place != QK_PLACE_STREAM || p->width != 8 || p->lo || p->shift || f < p->first ||
        f + 2 * L > p->first + p->count)
        return NULL;
    return p;
}

int tdec_paired_item(int l, int h)
{
    return 16 * (l / 8) + 8 * h + l % 8;
}

int tdec_paired_ok(const qk_format *f, int lanes, int lut_f32, int byte_perm)
{
    int g = tdec_group(f); /* scales, zeros and mins: one per 2 lanes' items or more */
    if (lanes % 8 || f->block % (2 * lanes) || (g && g % (2 * lanes)))
        return 0;
    for (int c = 0; c < f->block; c += lanes)
        if (!high_bytes_piece(f, lanes, c, lut_f32, byte_perm))
            return 0;
    return 1;
}

/* A chunk of 8-bit minifloat codes that binary16 holds, for its f16
 * decode: i16 x lanes, each code in its word's high byte, from one load
 * of the codes of an aligned pair of chunks and one byte shuffle that
 * leaves the low bytes 0 (and + shuffle: vpermb or vpermt2b on x86; the
 * pair's two chunks build the same nodes, merged downstream), then the
 * chunk's half. Two zero-extending loads of a chunk each and their shifts
 * cost more: the twenty-fourth session of issue 4 measured an 8-row e5m2
 * loop in L1 at 1.33-1.43 cycles per 16 codes this way against 2.0 on
 * one Zen 5 core. -1 unless the chunk is 16 or more constant, consecutive
 * items of one byte-aligned 8-bit piece whose pair lies in the block, and
 * no f32 table decodes the codes instead. paired (TDEC_PAIRED): the
 * chunk's lanes hold the pair's items in tdec_paired_item() order, one
 * in-lane byte unpack (vpunpck{l,h}bw with zero) in place of the permute
 * and the half extract. */
static int codes_high_bytes(dctx *d, chunk *ch, int paired)
{
    int L = ch->lanes, f = ch->cfirst - ch->cfirst % (2 * L);
    const qk_piece *p = high_bytes_piece(d->fm, L, ch->cfirst, d->s->lut_f32, d->s->byte_perm);
    if (!p)
        return -1;
    int w = tir_emit(d->f, d->b, TIR_LOAD, tir_t(TS_I8, 2 * L), d->s->ptr,
                     iadd(d, d->blk, k64(d, piece_pos(p, f - p->first).byte)), -1, -1);
    int32_t idx[MAXL];
    if (paired) { /* the pair's items of this half, each code byte twice */
        int h = (ch->cfirst - f) / L;
        for (int l = 0; l < 2 * L; l++)
            idx[l] = tdec_paired_item(l / 2, h);
        w = tir_emit(d->f, d->b, TIR_BITCAST, tir_t(TS_I16, L), tir_shuffle(d->f, d->b, w, 2 * L, idx), -1, -1, -1);
        return opk(d, TIR_AND, w, 0xff00);
    }
    for (int l = 0; l < 4 * L; l++)
        idx[l] = l / 2;
    w = tir_emit(d->f, d->b, TIR_BITCAST, tir_t(TS_I16, 2 * L), tir_shuffle(d->f, d->b, w, 4 * L, idx), -1, -1, -1);
    w = opk(d, TIR_AND, w, 0xff00);
    for (int l = 0; l < L; l++)
        idx[l] = ch->cfirst - f + l;
    return tir_shuffle(d->f, d->b, w, L, idx);
}

/* c - zero. */
static int value_unscaled(dctx *d, chunk *ch, int paired)
{
    const qk_format *fm = d->fm;
    int c;
    if (fm->code == QK_CODE_VQ) {
        c = vq_value(d, ch);
    } else if ((c = codes_high_bytes(d, ch, paired)) >= 0) {
        c = minifloat_f16(d, -1, c, fm->ebits, fm->mbits, fm->bias, fm->special, 0, d->nofactor);
    } else {
        qk_assert(!paired); /* tdec_paired_ok promised the high-bytes decode */
        itemset it = map_items(d, ch, self_map);
        c = code_value(d, field_lanes(d, QK_FIELD_CODES, &it, TS_I32));
    }
    if (fm->zero == QK_ZERO_CONST && fm->zero_const != 0)
        c = op2(d, TIR_FSUB, c, kf(d, ch->lanes, fm->zero_const));
    if (fm->zero == QK_ZERO_BLOCK) {
        int z = num_value(d, field_scalar(d, QK_FIELD_ZERO, TS_I32), fm->zero_num);
        c = fop(d, TIR_FSUB, c, z);
    }
    return c;
}

/* ---- scales and mins ---- */

static int tensor_scale(dctx *d)
{
    return header_num(d, k64(d, d->fm->tensor_header_bytes - 4), QK_NUM_F32, 32);
}

/* Sub-block items of the lanes (dense position / sub_block). */
static itemset sub_items(dctx *d, chunk *ch)
{
    const qk_format *fm = d->fm;
    imap mp = fm->sp_n ? (imap){fm->sp_n, fm->sp_m, 0, fm->sub_block} : (imap){1, 1, 0, fm->sub_block};
    return map_items(d, ch, mp);
}

/* Scale of the block, row or tensor (scalar f32), or -1 when none. */
static int uniform_scale(dctx *d)
{
    const qk_format *fm = d->fm;
    switch (fm->scale_per) {
    case QK_PER_TENSOR: return header_num(d, k64(d, 0), fm->scale_num, 0);
    case QK_PER_ROW: return header_num(d, d->s->row, fm->scale_num, 0);
    case QK_PER_BLOCK:
        if (fm->scale_num == QK_NUM_NONE)
            return -1;
        return num_value(d, field_scalar(d, QK_FIELD_SCALE, word_kind(fm->width[QK_FIELD_SCALE])), fm->scale_num);
    default: return -1;
    }
}

static int mul_opt(dctx *d, int x, int y)
{
    return x < 0 ? y : y < 0 ? x : fop(d, TIR_FMUL, x, y);
}

/* Scale of the lanes (super * sub), or -1. */
static int lane_scale(dctx *d, chunk *ch)
{
    const qk_format *fm = d->fm;
    int s = uniform_scale(d);
    if (fm->scale_per == QK_PER_BLOCK && fm->sub_block) {
        itemset it = sub_items(d, ch);
        int raw = field_uniform(d, QK_FIELD_SUBSCALE, &it, word_kind(fm->width[QK_FIELD_SUBSCALE]));
        s = mul_opt(d, s, num_value(d, raw, fm->sub_num));
    }
    return s;
}

/* min_sign * min of the lanes (super * sub), or -1. */
static int lane_min(dctx *d, chunk *ch)
{
    const qk_format *fm = d->fm;
    int m = -1;
    if (fm->min_num != QK_NUM_NONE)
        m = num_value(d, field_scalar(d, QK_FIELD_MIN, word_kind(fm->width[QK_FIELD_MIN])), fm->min_num);
    if (fm->submin_num != QK_NUM_NONE) {
        itemset it = sub_items(d, ch);
        int raw = field_uniform(d, QK_FIELD_SUBMIN, &it, word_kind(fm->width[QK_FIELD_SUBMIN]));
        m = mul_opt(d, m, num_value(d, raw, fm->submin_num));
    }
    if (m >= 0 && fm->min_sign < 0)
        m = op1(d, TIR_FNEG, TS_F32, m);
    return m;
}

/* ((c - zero) * scale + min_sign * min) * tensor_scale; the min is added
 * with one rounding (fma), as the exact formula does. */
static int apply_scales(dctx *d, chunk *ch, int v)
{
    int s = lane_scale(d, ch), m = lane_min(d, ch), l = ch->lanes;
    if (s >= 0 && m >= 0)
        v = tir_emit(d->f, d->b, TIR_FMA, tir_t(TS_F32, l), v, splat(d, s, l), splat(d, m, l), -1);
    else if (s >= 0)
        v = fop(d, TIR_FMUL, v, s);
    else if (m >= 0)
        v = fop(d, TIR_FADD, v, m);
    if (d->fm->tensor_scale)
        v = fop(d, TIR_FMUL, v, tensor_scale(d));
    return v;
}

/* ---- public decode ---- */

int tdec_chunk(tir_func *f, int b, const tdec_src *s, int kb, int first, int first_const, int lanes, unsigned flags)
{
    dctx d;
    chunk ch;
    dctx_init(&d, f, b, s, kb);
    qk_assert(!(flags & TDEC_NOFACTOR) || (flags & TDEC_UNSCALED));
    d.nofactor = (flags & TDEC_NOFACTOR) != 0 && code_factor(s->fmt, lanes) != 1.0;
    chunk_init(&d, &ch, first, first_const, lanes);
    qk_assert(!(flags & TDEC_PAIRED) || tdec_paired_ok(s->fmt, lanes, s->lut_f32, s->byte_perm));
    int v = value_unscaled(&d, &ch, (flags & TDEC_PAIRED) != 0);
    if (flags & TDEC_UNSCALED)
        return v;
    return apply_scales(&d, &ch, v);
}

/* N:M: the lanes of `lanes` dense elements from the kept items' values
 * (vals) and in-group indices (idx, same kind as fill), nk = lanes / M * N
 * of each: dense lane l (group l / M, position l % M) takes kept item n of
 * its group where that item's index is l % M; the first such item wins
 * (tdec_element), none: fill. One shuffle of each, a compare and a select
 * per kept item of a group. */
static int expand_dense(dctx *d, int vals, int idx, int lanes, int fill)
{
    int N = d->fm->sp_n, M = d->fm->sp_m;
    int64_t pos[MAXL];
    for (int l = 0; l < lanes; l++)
        pos[l] = l % M;
    int w = fill, at = klanes(d, kind_of(d, idx), lanes, pos);
    for (int n = N - 1; n >= 0; n--) {
        int32_t sh[MAXL];
        for (int l = 0; l < lanes; l++)
            sh[l] = l / M * N + n;
        int v = tir_shuffle(d->f, d->b, vals, lanes, sh), i = tir_shuffle(d->f, d->b, idx, lanes, sh);
        w = sel(d, cmp(d, TIR_IEQ, i, at), v, w);
    }
    return w;
}

/* The kept items' in-group indices (ws x nk) from kept item kfirst (node;
 * kc its compile-time value or -1), after d is set up for the block. */
static int kept_index(dctx *d, int kfirst, int kc, int nk, tir_scalar ws)
{
    chunk ch;
    chunk_init(d, &ch, kfirst, kc, nk);
    itemset it = map_items(d, &ch, self_map);
    return field_lanes(d, QK_FIELD_INDEX, &it, ws);
}

int tdec_chunk_dense(tir_func *f, int b, const tdec_src *s, int kb, int first, int first_const, int lanes,
                     unsigned flags)
{
    const qk_format *fm = s->fmt;
    int N = fm->sp_n, M = fm->sp_m;
    qk_assert(N > 0 && lanes % M == 0 && (first_const < 0 || first_const % M == 0));
    int nk = lanes / M * N;
    dctx d;
    dctx_init(&d, f, b, s, kb);
    int kc = first_const >= 0 ? first_const / M * N : -1;
    int kfirst = kc >= 0 ? k64(&d, kc) : opk(&d, TIR_MUL, opk(&d, TIR_DIV, first, M), N);
    int vals = tdec_chunk(f, b, s, kb, kfirst, kc, nk, flags);
    double fk = code_factor(fm, nk), fl = code_factor(fm, lanes);
    if ((flags & TDEC_NOFACTOR) && fk != fl) /* the factor follows the dense lanes */
        vals = fop(&d, TIR_FMUL, vals, kf(&d, 1, fk / fl));
    return expand_dense(&d, vals, kept_index(&d, kfirst, kc, nk, TS_I32), lanes, kf(&d, lanes, 0.0));
}

/* Raw codes of the chunk's items as ws x lanes; d is left set up for more
 * ops in the same block. */
static int codes_raw(dctx *d, tir_func *f, int b, const tdec_src *s, int kb, int first, int first_const, int lanes,
                     tir_scalar ws)
{
    chunk ch;
    dctx_init(d, f, b, s, kb);
    chunk_init(d, &ch, first, first_const, lanes);
    ch.nitems = s->fmt->items[QK_FIELD_CODES];
    itemset it = map_items(d, &ch, self_map);
    return field_lanes(d, QK_FIELD_CODES, &it, ws);
}

int tdec_codes(tir_func *f, int b, const tdec_src *s, int kb, int first, int first_const, int lanes)
{
    dctx d;
    return codes_raw(&d, f, b, s, kb, first, first_const, lanes, TS_I32);
}

/* ---- integer images ---- */

/* Table and minifloat codes: the image of their 2^bits values, if they
 * are integers times one power of two spanning at most 256^planes. */
/* The exponent of v's lowest set bit (v a finite f32 value; INT_MAX
 * for 0): v is an integer times 2^that. */
static int low_bit(double v)
{
    if (v == 0)
        return INT_MAX;
    int e; /* v = mant * 2^(e - 24), mant a 24-bit integer */
    uint32_t mant = (uint32_t)ldexp(frexp(fabs(v), &e), 24);
    int tz = 0;
    while (!(mant & 1))
        mant >>= 1, tz++;
    return e - 24 + tz;
}

static int value_image(const qk_format *f, int lut_max, int planes, tdec_image *img)
{
    int n = 1 << f->bits, low = INT_MAX;
    double v[256];
    for (int c = 0; c < n; c++) {
        v[c] = (float)qk_format_codeval(f, (uint32_t)c);
        if (!isfinite(v[c]))
            return 0;
        int l = low_bit(v[c]);
        low = l < low ? l : low;
    }
    if (low == INT_MAX)
        low = 0;
    double lo = 0, hi = 0, iv[256] = {0};
    for (int c = 0; c < n; c++) {
        iv[c] = ldexp(v[c], -low);
        lo = c && iv[c] > lo ? lo : iv[c];
        hi = c && iv[c] < hi ? hi : iv[c];
    }
    int np = 1;
    while (np < planes && np < TDEC_PLANES && hi - lo > ldexp(1.0, 8 * np) - 1)
        np++;
    if (hi - lo > ldexp(1.0, 8 * np) - 1 || fabs(lo) > 1e9)
        return 0;
    *img = (tdec_image){TDEC_IMG_ADD, 0, 0, (int)iv[0], ldexp(1.0, low), .planes = 1};
    int add = 1, xr = n > 1;
    for (int c = 0; c < n; c++) {
        add &= iv[c] == iv[0] + c;
        int sx = c >= n / 2 ? c - n : c; /* the code as a signed integer */
        xr &= iv[c] == iv[n / 2] + n / 2 + sx;
    }
    if (add && np == 1) /* value = c + iv[0]: u = r */
        return 1;
    if (xr && np == 1) { /* value = sext(c) + d, u = r ^ n/2 = sext(c) + n/2 */
        img->kind = TDEC_IMG_XOR;
        img->c = n / 2;
        img->off = (int)iv[n / 2];
        return 1;
    }
    if (n > lut_max)
        return 0;
    img->kind = TDEC_IMG_LUT;
    img->nlut = n;
    img->off = (int)lo;
    img->planes = np;
    for (int c = 0; c < n; c++) {
        uint32_t u = (uint32_t)(iv[c] - lo);
        img->lut[c] = (uint8_t)u;
        for (int p = 1; p < np; p++)
            img->hi[p - 1][c] = (uint8_t)(u >> 8 * p);
    }
    return 1;
}

int tdec_int_image_sgn(const qk_format *f, int planes, tdec_image *img)
{
    if (f->code != QK_CODE_MINIFLOAT || f->bits != 8 || f->sp_n)
        return 0;
    double v[128];
    int low = INT_MAX, nnan = 0;
    for (int c = 0; c < 128; c++) {
        double a = (float)qk_format_codeval(f, (uint32_t)c), b = (float)qk_format_codeval(f, (uint32_t)c | 0x80);
        v[c] = a;
        if (isnan(a) && isnan(b)) {
            nnan++;
            continue;
        }
        if (!isfinite(a) || a < 0 || b != -a)
            return 0;
        int l = low_bit(a);
        low = l < low ? l : low;
    }
    if (nnan == 128)
        return 0;
    if (low == INT_MAX)
        low = 0;
    double hi = 0;
    for (int c = 0; c < 128; c++)
        if (!isnan(v[c]) && ldexp(v[c], -low) > hi)
            hi = ldexp(v[c], -low);
    int np = 1; /* the top plane's bit 7 stays free for the NaN flag */
    while (np < planes && np < TDEC_PLANES && hi > ldexp(1.0, 8 * np - 1) - 1)
        np++;
    if (hi > ldexp(1.0, 8 * np - 1) - 1)
        return 0;
    *img = (tdec_image){TDEC_IMG_LUT, .scale_img = ldexp(1.0, low), .nlut = 128, .planes = np, .sgn = 1,
                        .nanflag = nnan > 0, .umax = (uint32_t)hi};
    for (int c = 0; c < 128; c++) {
        uint32_t u = isnan(v[c]) ? 0x80u << 8 * (np - 1) : (uint32_t)ldexp(v[c], -low);
        img->lut[c] = (uint8_t)u;
        for (int p = 1; p < np; p++)
            img->hi[p - 1][c] = (uint8_t)(u >> 8 * p);
    }
    return 1;
}

tdec_image tdec_image_plane(const tdec_image *img, int p)
{
    tdec_image q = *img;
    q.planes = 1;
    if (p > 0) {
        qk_assert(img->kind == TDEC_IMG_LUT && p < img->planes);
        memcpy(q.lut, img->hi[p - 1], sizeof q.lut);
        q.off = 0;
    }
    return q;
}

static int image_max(const qk_format *f, const tdec_image *img);

int tdec_int_image(const qk_format *f, int lut_max, int planes, tdec_image *img)
{
    if (f->code == QK_CODE_VQ || f->bits > 8)
        return 0;
    if (f->sp_n) { /* pruned elements read u = -off: no zero or min may move a value 0 */
        if (f->zero != QK_ZERO_NONE || !tdec_scale_factorable(f))
            return 0;
        qk_format dense = *f;
        dense.sp_n = dense.sp_m = 0;
        /* -off must be a u the image reaches: a byte, signed alike after tdec_image_signed */
        return tdec_int_image(&dense, lut_max, 1, img) && img->off <= 0 && -img->off <= image_max(&dense, img);
    }
    if (f->code == QK_CODE_MINIFLOAT || f->code == QK_CODE_TABLE)
        return value_image(f, lut_max, planes, img);
    *img = (tdec_image){TDEC_IMG_ADD, 0, 0, 0, 1.0, .planes = 1};
    switch (f->code) {
    case QK_CODE_UINT: break;
    case QK_CODE_OFFSET: img->off = -f->offset; break;
    case QK_CODE_SINT: /* u = r ^ 2^(b-1) = value + 2^(b-1) */
        img->kind = TDEC_IMG_XOR;
        img->c = 1 << (f->bits - 1);
        img->off = -(1 << (f->bits - 1));
        break;
    case QK_CODE_TERNARY: img->off = -1; break; /* value = digit - 1 (a 2-bit 3 is +2) */
    case QK_CODE_BINARY: /* value = 1 - 2r = u - 1 with u = 2 (r = 0) or 0 (r = 1) */
        img->kind = TDEC_IMG_SEL1;
        img->c = 2;
        img->c1 = 0;
        img->off = -1;
        break;
    default: return 0;
    }
    return 1;
}

/* The largest u of f's image (of its byte 0). */
static int image_max(const qk_format *f, const tdec_image *img)
{
    int raw = (1 << f->bits) - 1;
    switch (img->kind) {
    case TDEC_IMG_ADD: return img->c ? 255 : raw;
    case TDEC_IMG_XOR: return raw | img->c;
    case TDEC_IMG_LUT: {
        int m = 0;
        for (int i = 0; i < img->nlut; i++)
            m = img->lut[i] > m ? img->lut[i] : m;
        return m;
    }
    default: return img->c > img->c1 ? img->c : img->c1;
    }
}

/* tdec_image_signed for each byte of an image of several planes; 0 when
 * the offset would leave an int (a top plane of four flipped). */
static int planes_signed(tdec_image *img)
{
    int64_t off = img->off;
    for (int p = 0; p < img->planes; p++) {
        uint8_t *t = p ? img->hi[p - 1] : img->lut;
        int m = 0;
        for (int i = 0; i < img->nlut; i++)
            m = t[i] > m ? t[i] : m;
        if (m < 128)
            continue;
        for (int i = 0; i < img->nlut; i++)
            t[i] ^= 0x80;
        off += (int64_t)128 << 8 * p;
    }
    if (off > INT_MAX || off < INT_MIN)
        return 0;
    img->off = (int)off;
    return 1;
}

int tdec_image_signed(const qk_format *f, tdec_image *img)
{
    if (img->planes > 1)
        return planes_signed(img);
    if (image_max(f, img) < 128)
        return 1;
    /* ADD: r + c + 128 = (r + c) ^ 0x80 mod 256; XOR and SEL1 flip the
     * top bit of their constants */
    img->c ^= 0x80;
    if (img->kind == TDEC_IMG_SEL1)
        img->c1 ^= 0x80;
    for (int i = 0; img->kind == TDEC_IMG_LUT && i < img->nlut; i++)
        img->lut[i] ^= 0x80;
    img->off += 128;
    return 1;
}

int tdec_is_s8(const qk_format *f)
{
    return f->code == QK_CODE_SINT && f->bits == 8 && !f->sp_n && f->zero == QK_ZERO_NONE &&
           tdec_scale_factorable(f);
}

int tdec_group(const qk_format *f)
{
    if (f->sub_block)
        return f->sub_block;
    int per_block = f->scale_per == QK_PER_BLOCK || f->zero == QK_ZERO_BLOCK || f->min_num != QK_NUM_NONE;
    return per_block ? f->block : 0;
}

int tdec_codes_u8(tir_func *f, int b, const tdec_src *s, const tdec_image *img, int kb, int first, int first_const,
                  int lanes)
{
    dctx d;
    const qk_format *fm = s->fmt;
    if (!fm->sp_n) {
        int r = codes_raw(&d, f, b, s, kb, first, first_const, lanes, TS_I8);
        return tdec_image_apply(f, b, img, r);
    }
    /* N:M: the kept codes' u expanded to the dense lanes, pruned ones
     * -off (value 0) */
    int M = fm->sp_m, N = fm->sp_n, nk = lanes / M * N;
    qk_assert(first_const >= 0 && first_const % M == 0 && lanes % M == 0);
    int kc = first_const / M * N, kfirst = tir_const_i(f, b, TS_I64, 1, kc);
    int u = tdec_image_apply(f, b, img, codes_raw(&d, f, b, s, kb, kfirst, kc, nk, TS_I8));
    int idx = kept_index(&d, kfirst, kc, nk, TS_I8);
    return expand_dense(&d, u, idx, lanes, kint(&d, TS_I8, lanes, (uint8_t)-img->off));
}

int tdec_image_apply(tir_func *f, int b, const tdec_image *img, int r)
{
    dctx d = {.f = f, .b = b};
    int lanes = lanes_of(&d, r);
    switch (img->kind) {
    case TDEC_IMG_ADD: return img->c ? opk(&d, TIR_ADD, r, img->c) : r;
    case TDEC_IMG_XOR: return opk(&d, TIR_XOR, r, img->c);
    case TDEC_IMG_LUT: return tir_lut(f, b, r, img->nlut, img->lut);
    default:
        return sel(&d, cmp(&d, TIR_IEQ, r, kint(&d, TS_I8, lanes, 1)), kint(&d, TS_I8, lanes, img->c1),
                   kint(&d, TS_I8, lanes, img->c));
    }
}

int tdec_codes_s8(tir_func *f, int b, const tdec_src *s, int kb, int first, int first_const, int lanes)
{
    dctx d;
    return codes_raw(&d, f, b, s, kb, first, first_const, lanes, TS_I8);
}

void tdec_group_affine(tir_func *f, int b, const tdec_src *s, const tdec_image *img, int kb, int first,
                       int first_const, int *mul, int *add)
{
    dctx d;
    chunk ch;
    const qk_format *fm = s->fmt;
    dctx_init(&d, f, b, s, kb);
    chunk_init(&d, &ch, first, first_const, 1);
    int S = lane_scale(&d, &ch), M = lane_min(&d, &ch);
    /* value = S * (scale_img * (u + off) - zero) + M, all times T */
    int m = kf(&d, 1, img->scale_img);
    m = S >= 0 ? fop(&d, TIR_FMUL, S, m) : m;
    double cz = img->scale_img * img->off - (fm->zero == QK_ZERO_CONST ? fm->zero_const : 0);
    int z = cz != 0 ? kf(&d, 1, cz) : -1;
    if (fm->zero == QK_ZERO_BLOCK) {
        int zb = num_value(&d, field_scalar(&d, QK_FIELD_ZERO, TS_I32), fm->zero_num);
        z = z >= 0 ? fop(&d, TIR_FSUB, z, zb) : op1(&d, TIR_FNEG, TS_F32, zb);
    }
    int a = z >= 0 && S >= 0 ? fop(&d, TIR_FMUL, S, z) : z;
    if (M >= 0)
        a = a >= 0 ? fop(&d, TIR_FADD, a, M) : M;
    if (fm->tensor_scale) {
        int T = tensor_scale(&d);
        m = fop(&d, TIR_FMUL, m, T);
        a = a >= 0 ? fop(&d, TIR_FMUL, a, T) : -1;
    }
    *mul = m;
    *add = a;
}

int tdec_positions(tir_func *f, int b, const tdec_src *s, int kb, int first, int first_const, int lanes)
{
    dctx d;
    chunk ch;
    const qk_format *fm = s->fmt;
    qk_assert(fm->sp_n > 0);
    dctx_init(&d, f, b, s, kb);
    chunk_init(&d, &ch, first, first_const, lanes);
    itemset it = map_items(&d, &ch, self_map);
    int idx = resize(&d, field_lanes(&d, QK_FIELD_INDEX, &it, TS_I32), TS_I64);
    itemset base = map_items(&d, &ch, (imap){fm->sp_n, fm->sp_m, 0, 1});
    int g;
    if (base.ci) {
        int64_t v[MAXL];
        for (int l = 0; l < lanes; l++)
            v[l] = base.ci[l] < 0 ? 0 : base.ci[l];
        g = klanes(&d, TS_I64, lanes, v);
    } else {
        g = base.rt;
    }
    return iadd(&d, g, idx);
}

int tdec_scale_factorable(const qk_format *f)
{
    return f->min_num == QK_NUM_NONE && f->submin_num == QK_NUM_NONE && f->sub_block == 0;
}

int tdec_tensor_factor(tir_func *f, int b, const tdec_src *s)
{
    dctx d = {.f = f, .b = b, .fm = s->fmt, .s = s};
    int v = s->fmt->scale_per == QK_PER_TENSOR ? header_num(&d, k64(&d, 0), s->fmt->scale_num, 0) : -1;
    return s->fmt->tensor_scale ? mul_opt(&d, v, tensor_scale(&d)) : v;
}

int tdec_scale(tir_func *f, int b, const tdec_src *s, int kb)
{
    dctx d;
    dctx_init(&d, f, b, s, kb);
    int v = uniform_scale(&d);
    if (s->fmt->tensor_scale)
        v = mul_opt(&d, v, tensor_scale(&d));
    return v >= 0 ? v : kf(&d, 1, 1.0);
}

/* N:M: the kept item of dense in-block element e (i64), searched among its
 * group's sp_n items; the first whose index matches wins. */
static int sparse_element(tir_func *f, int b, const tdec_src *s, int kb, int e)
{
    const qk_format *fm = s->fmt;
    dctx d;
    dctx_init(&d, f, b, s, kb);
    int grp = opk(&d, TIR_DIV, e, fm->sp_m);
    int want = resize(&d, op2(&d, TIR_SUB, e, opk(&d, TIR_MUL, grp, fm->sp_m)), TS_I32);
    int j0 = opk(&d, TIR_MUL, grp, fm->sp_n), found = k64(&d, -1);
    for (int n = fm->sp_n - 1; n >= 0; n--) {
        int j = opk(&d, TIR_ADD, j0, n);
        itemset it = {1, NULL, j};
        int idx = field_get(&d, QK_FIELD_INDEX, &it, TS_I32);
        found = sel(&d, cmp(&d, TIR_IEQ, idx, want), j, found);
    }
    int hit = not1(&d, cmp(&d, TIR_ILT, found, k64(&d, 0)));
    int j = opk(&d, TIR_MAX, found, 0);
    int v = tdec_chunk(f, b, s, kb, j, -1, 1, 0);
    return sel(&d, hit, v, kf(&d, 1, 0.0));
}

int tdec_element(tir_func *f, int b, const tdec_src *s, int k)
{
    const qk_format *fm = s->fmt;
    int bs = tir_const_i(f, b, TS_I64, 1, fm->block);
    int kb = tir_emit(f, b, TIR_DIV, tir_t(TS_I64, 1), k, bs, -1, -1);
    int e = tir_emit(f, b, TIR_SUB, tir_t(TS_I64, 1), k,
                     tir_emit(f, b, TIR_MUL, tir_t(TS_I64, 1), kb, bs, -1, -1), -1, -1);
    if (fm->sp_n)
        return sparse_element(f, b, s, kb, e);
    return tdec_chunk(f, b, s, kb, e, -1, 1, 0);
}

/* ---- encode (tdec_encode_row) ---- */

static int loop_open(dctx *d, int lo, int hi, const char *name, int *outer)
{
    int body, step = k64(d, 1);
    int iv = tir_loop(d->f, d->b, lo, hi, step, TL_SERIAL, name, &body);
    *outer = d->b;
    d->b = body;
    return iv;
}

static int var_new(dctx *d, int init)
{
    return tir_emit(d->f, d->b, TIR_VAR, d->f->nodes[init].type, init, -1, -1, -1);
}

static int vget(dctx *d, int var)
{
    return tir_emit(d->f, d->b, TIR_VGET, d->f->nodes[var].type, var, -1, -1, -1);
}

static void vset(dctx *d, int var, int x)
{
    tir_emit(d->f, d->b, TIR_VSET, tir_t(TS_VOID, 1), var, x, -1, -1);
}

static int fbits(dctx *d, int x)
{
    return op1(d, TIR_BITCAST, TS_I32, x);
}

/* i1: f32 x is a NaN. */
static int is_nan(dctx *d, int x)
{
    int a = opk(d, TIR_AND, fbits(d, x), 0x7fffffff);
    return cmp(d, TIR_ILT, kint(d, TS_I32, lanes_of(d, x), 0x7f800000), a);
}

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

/* Largest finite magnitude code of a minifloat (as format.c). */
static uint32_t mf_max_code(int ebits, int mbits, qk_mf_special sp)
{
    uint32_t all = (1u << (ebits + mbits)) - 1;
    return sp == QK_MF_FINITE ? all : sp == QK_MF_FN ? all - 1 : all - (1u << mbits);
}

/* f32 -> OCP minifloat code (qk_minifloat_encode, signed): round half to
 * even on the mantissa, saturating, NaN to the all-ones magnitude (or 0).
 * n = rint(a * 2^(mbits - E)) with E the binade (at least the lowest);
 * the magnitude code is ((E - emin) << mbits) + n, the carry of a round-up
 * included. Inputs below half the smallest subnormal are flushed to 0 first
 * (they round to 0, and no f32 denormal reaches the multiply). */
static int mf_encode(dctx *d, int v, int ebits, int mbits, int bias, qk_mf_special sp)
{
    int lanes = lanes_of(d, v), emin = 1 - bias;
    uint32_t maxc = mf_max_code(ebits, mbits, sp);
    uint32_t maxb = f32_bits((float)qk_minifloat_decode(ebits, mbits, bias, sp, 1, maxc));
    uint32_t tiny = f32_bits(ldexpf(1.0f, emin - mbits - 1));
    int bits = fbits(d, v);
    int ab = opk(d, TIR_AND, bits, 0x7fffffff);
    int ac = opk(d, TIR_MIN, ab, maxb);
    ac = sel(d, cmp(d, TIR_ILT, ab, kint(d, TS_I32, lanes, tiny)), kint(d, TS_I32, lanes, 0), ac);
    int E = opk(d, TIR_MAX, opk(d, TIR_SUB, opk(d, TIR_SHR, ac, 23), 127), emin);
    int qs = op1(d, TIR_BITCAST, TS_F32, opk(d, TIR_SHL, op2(d, TIR_SUB, kint(d, TS_I32, lanes, 127 + mbits), E), 23));
    int n = op1(d, TIR_FPTOSI, TS_I32, op1(d, TIR_FRINT, TS_F32, op2(d, TIR_FMUL, op1(d, TIR_BITCAST, TS_F32, ac), qs)));
    int mag = op2(d, TIR_ADD, opk(d, TIR_SHL, opk(d, TIR_SUB, E, emin), mbits), n);
    int code = op2(d, TIR_OR, mag, opk(d, TIR_SHL, opk(d, TIR_SHR, bits, 31), ebits + mbits));
    int has_nan = sp == QK_MF_FN || (sp == QK_MF_IEEE && mbits > 0);
    uint32_t nan_code = has_nan ? (1u << (ebits + mbits)) - 1 : 0;
    return sel(d, cmp(d, TIR_ILT, kint(d, TS_I32, lanes, 0x7f800000), ab), kint(d, TS_I32, lanes, nan_code), code);
}

/* qk_num_encode of an f32 scale (f32, f16, bf16, e8m0), as i32 bits. */
static int num_encode(dctx *d, int x, qk_num n)
{
    int bits = fbits(d, x), nan = is_nan(d, x), l = lanes_of(d, x);
    int ab = opk(d, TIR_AND, bits, 0x7fffffff), sign = opk(d, TIR_AND, bits, (int64_t)0x80000000u);
    switch (n) {
    case QK_NUM_F32: { /* infinities saturate */
        int inf = cmp(d, TIR_IEQ, ab, kint(d, TS_I32, l, 0x7f800000));
        return sel(d, inf, opk(d, TIR_OR, sign, 0x7f7fffff), bits);
    }
    case QK_NUM_F16: {
        int c = sel(d, cmp(d, TIR_FLT, kf(d, l, 65504.0), x), kf(d, l, 65504.0), x);
        c = sel(d, cmp(d, TIR_FLT, c, kf(d, l, -65504.0)), kf(d, l, -65504.0), c);
        int h = resize(d, op1(d, TIR_F2H, TS_I16, c), TS_I32);
        return sel(d, nan, kint(d, TS_I32, l, 0x7fff), h);
    }
    case QK_NUM_BF16: { /* round half to even on the bits, saturating */
        int r = op2(d, TIR_ADD, bits, opk(d, TIR_ADD, opk(d, TIR_AND, opk(d, TIR_SHR, bits, 16), 1), 0x7fff));
        r = opk(d, TIR_SHR, r, 16);
        int big = cmp(d, TIR_ILT, kint(d, TS_I32, l, 0x7f7f), opk(d, TIR_AND, r, 0x7fff));
        r = sel(d, big, opk(d, TIR_OR, opk(d, TIR_SHR, sign, 16), 0x7f7f), r);
        return sel(d, nan, kint(d, TS_I32, l, 0x7fff), r);
    }
    case QK_NUM_E8M0: { /* smallest power of two >= x in [2^-127, 2^127] */
        int e = opk(d, TIR_SHR, ab, 23);
        e = op2(d, TIR_ADD, e, opk(d, TIR_MIN, opk(d, TIR_AND, bits, 0x7fffff), 1));
        e = opk(d, TIR_MIN, e, 254);
        e = sel(d, cmp(d, TIR_ILT, kint(d, TS_I32, l, 0x00400000), bits), e, kint(d, TS_I32, l, 0));
        return sel(d, nan, kint(d, TS_I32, l, 0xff), e);
    }
    default: qk_bug("kernel scale type %d", (int)n);
    }
}

typedef struct enc {
    dctx d;
    int vals, vals_off, klen;
    int lo, hi;
} enc;

/* x[k] (f32 scalar); mask (i1) or -1: masked-off elements read 0. */
static int load_x(enc *e, int k, int mask)
{
    dctx *d = &e->d;
    int off = iadd(d, e->vals_off, opk(d, TIR_MUL, k, 4));
    return tir_emit(d->f, d->b, TIR_LOAD, tir_t(TS_F32, 1), e->vals, off, mask, -1);
}

/* Statistic of the group: running value after x (the absmax rules). */
static int stat_step(enc *e, int acc, int x)
{
    dctx *d = &e->d;
    int ax = op1(d, TIR_FABS, TS_F32, x);
    switch (d->fm->code) {
    case QK_CODE_BINARY: return op2(d, TIR_FADD, acc, ax);                          /* sum |x| */
    case QK_CODE_UINT: return sel(d, cmp(d, TIR_FLT, acc, x), x, acc);              /* max(0, max x) */
    case QK_CODE_OFFSET:                                                            /* x of largest |x| */
        return sel(d, cmp(d, TIR_FLT, op1(d, TIR_FABS, TS_F32, acc), ax), x, acc);
    default: return sel(d, cmp(d, TIR_FLT, acc, ax), ax, acc);                      /* amax */
    }
}

/* 1 if a scale type holds negative values (format.c's num_signed). */
static int num_signed(qk_num n)
{
    return n == QK_NUM_F32 || n == QK_NUM_F16 || n == QK_NUM_BF16 || n == QK_NUM_E4M3 || n == QK_NUM_I8;
}

/* OFFSET codes: the scale that maps m (the x of largest |x|) onto an end
 * of the code range; positive for unsigned scale types. */
static int offset_scale(enc *e, int m)
{
    dctx *d = &e->d;
    int neg = cmp(d, TIR_FLT, m, kf(d, 1, 0.0));
    if (!num_signed(d->fm->scale_num)) {
        int am = op1(d, TIR_FABS, TS_F32, m);
        return sel(d, neg, op2(d, TIR_FDIV, am, kf(d, 1, -e->lo)), op2(d, TIR_FDIV, am, kf(d, 1, e->hi)));
    }
    int by_lo = op2(d, TIR_FDIV, m, kf(d, 1, e->lo));
    if (-e->lo > e->hi)
        return by_lo;
    return sel(d, neg, by_lo, op2(d, TIR_FDIV, m, kf(d, 1, e->hi)));
}

/* The wanted scale d from the statistic m over n present elements. */
static int stat_scale(enc *e, int m, int n)
{
    dctx *d = &e->d;
    const qk_format *fm = d->fm;
    switch (fm->code) {
    case QK_CODE_BINARY: {
        int q = op2(d, TIR_FDIV, m, op1(d, TIR_SITOFP, TS_F32, n));
        return sel(d, cmp(d, TIR_ILT, k64(d, 0), n), q, kf(d, 1, 0.0));
    }
    case QK_CODE_MINIFLOAT: {
        uint32_t maxc = mf_max_code(fm->ebits, fm->mbits, fm->special);
        double mx = qk_minifloat_decode(fm->ebits, fm->mbits, fm->bias, fm->special, 1, maxc);
        return op2(d, TIR_FDIV, m, kf(d, 1, (float)mx));
    }
    case QK_CODE_OFFSET: return offset_scale(e, m);
    default: return op2(d, TIR_FDIV, m, kf(d, 1, e->hi)); /* UINT: max / hi; SINT, TERNARY: amax / hi */
    }
}

static int abs_sum16(enc *e, int start, int n, int L);

/* Wanted scale of the n (i64) present elements from element start. */
static int group_scale(enc *e, int start, int n)
{
    dctx *d = &e->d;
    if (d->fm->code == QK_CODE_BINARY)
        return stat_scale(e, abs_sum16(e, start, n, 1), n);
    int var = var_new(d, kf(d, 1, 0.0)), outer;
    int i = loop_open(d, k64(d, 0), n, "qs", &outer);
    vset(d, var, stat_step(e, vget(d, var), load_x(e, iadd(d, start, i), -1)));
    d->b = outer;
    return stat_scale(e, vget(d, var), n);
}

/* ORs value v (ws) into item `item` (i64) of field fl of the block at
 * d->blk: per piece, the bytes its bits touch, loaded, ORed and stored
 * (masked by piece membership and by the bytes actually touched). */
static void put_item(dctx *d, int fl, int item, int v)
{
    for (int i = 0; i < d->fm->npieces; i++) {
        const qk_piece *p = &d->fm->pieces[i];
        if (p->field != fl)
            continue;
        qk_assert(p->place != QK_PLACE_BASE3);
        rpiece r = rpiece_pos(d, p, item);
        tir_scalar ws = p->width + 7 > 32 ? TS_I64 : TS_I32;
        int pv = opk(d, TIR_AND, resize(d, p->lo ? opk(d, TIR_SHR, v, p->lo) : v, ws), field_mask(p->width));
        int w = op2(d, TIR_SHL, pv, resize(d, r.sh, ws));
        int K = p->place == QK_PLACE_STREAM ? stream_bytes(p) : 1;
        for (int k = 0; k < K; k++) {
            int mask = r.in;
            if (k > 0)
                mask = op2(d, TIR_AND, mask, cmp(d, TIR_ILT, k64(d, 8 * k - p->width), r.sh));
            int off = k ? opk(d, TIR_ADD, r.by, k) : r.by;
            int old = tir_emit(d->f, d->b, TIR_LOAD, tir_t(TS_I8, 1), d->s->ptr, off, mask, -1);
            int byte = resize(d, k ? opk(d, TIR_SHR, w, 8 * k) : w, TS_I8);
            tir_emit(d->f, d->b, TIR_STORE, tir_t(TS_VOID, 1), d->s->ptr, off, op2(d, TIR_OR, old, byte), mask);
        }
    }
}

/* i1: f32 x is neither 0 nor infinite nor NaN (format.c's d_ok). */
static int usable(dctx *d, int x)
{
    int ax = op1(d, TIR_FABS, TS_F32, x);
    return op2(d, TIR_AND, cmp(d, TIR_FLT, kf(d, 1, 0.0), ax), cmp(d, TIR_FLT, ax, kf(d, 1, INFINITY)));
}

static int f_eq_bits(dctx *d, int x, float v)
{
    return cmp(d, TIR_IEQ, fbits(d, x), kint(d, TS_I32, lanes_of(d, x), f32_bits(v)));
}

/* roundf(q): half away from zero, from rint (half even): a tie (q - rint
 * q = +-0.5, exact) becomes q + copysign(0.5, q), an exact integer. */
static int round_away(dctx *d, int q)
{
    int r = op1(d, TIR_FRINT, TS_F32, q);
    int tie = f_eq_bits(d, op1(d, TIR_FABS, TS_F32, op2(d, TIR_FSUB, q, r)), 0.5f);
    int half = opk(d, TIR_OR, opk(d, TIR_AND, fbits(d, q), (int64_t)0x80000000u), f32_bits(0.5f));
    int away = op2(d, TIR_FADD, q, op1(d, TIR_BITCAST, TS_F32, half));
    return sel(d, tie, away, r);
}

/* max(lo, min(r, hi)) for a non-NaN f32 r, then to i32. */
static int clamp_int(dctx *d, int r, int lo, int hi)
{
    int L = lanes_of(d, r);
    r = sel(d, cmp(d, TIR_FLT, r, kf(d, L, lo)), kf(d, L, lo), r);
    r = sel(d, cmp(d, TIR_FLT, kf(d, L, hi), r), kf(d, L, hi), r);
    return op1(d, TIR_FPTOSI, TS_I32, r);
}

/* Code (i32) of q = x * id for integer kinds (format.c's code_for): UINT
 * and OFFSET (int)(q + offset + 0.5f) clamped to the code, SINT and
 * TERNARY roundf(q) clamped to the range; a NaN q counts as 0. */
static int int_code(enc *e, int q)
{
    dctx *d = &e->d;
    const qk_format *fm = d->fm;
    int nan = is_nan(d, q), L = lanes_of(d, q);
    if (fm->code == QK_CODE_UINT || fm->code == QK_CODE_OFFSET) {
        float add = (float)(fm->code == QK_CODE_OFFSET ? fm->offset : 0) + 0.5f;
        int t = sel(d, nan, kf(d, L, 0.0), op2(d, TIR_FADD, q, kf(d, L, add)));
        return clamp_int(d, t, 0, (1 << fm->bits) - 1);
    }
    int v = clamp_int(d, sel(d, nan, kf(d, L, 0.0), round_away(d, q)), e->lo, e->hi);
    if (fm->code == QK_CODE_TERNARY)
        return opk(d, TIR_ADD, v, 1);
    return opk(d, TIR_AND, v, (1 << fm->bits) - 1);
}

/* Code (i32) of x for the reciprocal id of the scale: the code of 0 when
 * id is 0 or not finite. */
static int code_for(enc *e, int x, int id)
{
    dctx *d = &e->d;
    const qk_format *fm = d->fm;
    int ok = usable(d, id);
    int q = op2(d, TIR_FMUL, x, id);
    if (fm->code == QK_CODE_BINARY)
        return resize(d, op2(d, TIR_AND, ok, cmp(d, TIR_FLT, q, kf(d, 1, 0.0))), TS_I32);
    if (fm->code == QK_CODE_MINIFLOAT)
        return sel(d, ok, mf_encode(d, q, fm->ebits, fm->mbits, fm->bias, fm->special), kint(d, TS_I32, 1, 0));
    int zero = int_code(e, kf(d, 1, 0.0)); /* constant-folded */
    return sel(d, ok, int_code(e, q), zero);
}

/* Stores the wanted scale x as the format's scale type at the block's
 * SCALE item (per block) or at the row header; returns the reciprocal the
 * codes use (format.c's recip): 1/x for float types (the unrounded scale,
 * as ggml's quantizers), 1/stored for e8m0; 0 when either is unusable. */
static int put_scale(enc *e, int x)
{
    dctx *d = &e->d;
    const qk_format *fm = d->fm;
    int raw = num_encode(d, x, fm->scale_num);
    if (fm->scale_per == QK_PER_BLOCK) {
        put_item(d, QK_FIELD_SCALE, k64(d, 0), raw);
    } else {
        for (int i = 0; i < fm->row_header_bytes; i++) {
            int byte = resize(d, i ? opk(d, TIR_SHR, raw, 8 * i) : raw, TS_I8);
            tir_emit(d->f, d->b, TIR_STORE, tir_t(TS_VOID, 1), d->s->ptr, opk(d, TIR_ADD, d->s->row, i), byte, -1);
        }
    }
    int stored = num_value(d, raw, fm->scale_num);
    int unrounded = fm->scale_num == QK_NUM_F32 || fm->scale_num == QK_NUM_F16 || fm->scale_num == QK_NUM_BF16;
    int ds = unrounded ? x : stored;
    int ok = op2(d, TIR_AND, usable(d, ds), usable(d, stored));
    return sel(d, ok, op2(d, TIR_FDIV, kf(d, 1, 1.0), ds), kf(d, 1, 0.0));
}

/* Zeroes nbytes (i64) bytes from byte offset start of the row's tensor:
 * V bytes per store (V > 1: vectors of V bytes, then single bytes). */
static void zero_bytes(dctx *d, int start, int nbytes, int V)
{
    int outer, lo = k64(d, 0);
    if (V > 1) {
        lo = opk(d, TIR_MUL, opk(d, TIR_DIV, nbytes, V), V);
        int body, i = tir_loop(d->f, d->b, k64(d, 0), lo, k64(d, V), TL_SERIAL, "qz", &body);
        tir_emit(d->f, body, TIR_STORE, tir_t(TS_VOID, 1), d->s->ptr,
                 tir_emit(d->f, body, TIR_ADD, tir_t(TS_I64, 1), start, i, -1, -1),
                 tir_const_i(d->f, body, TS_I8, V, 0), -1);
    }
    int i = loop_open(d, lo, nbytes, "qz", &outer);
    tir_emit(d->f, d->b, TIR_STORE, tir_t(TS_VOID, 1), d->s->ptr, iadd(d, start, i), kint(d, TS_I8, 1, 0), -1);
    d->b = outer;
}

/* ---- the vector encoder: byte codes ----
 * Formats whose codes are whole bytes in element order (one stream piece
 * of 8 bits: q8_0, int8 with row or block scales) and whose statistic is
 * a maximum (SINT amax, UINT max), so that the order of its reduction
 * does not matter: L elements per step, the same bytes as the scalar
 * encoder (the maximum is exact in any order; the code of each element
 * is the scalar's arithmetic lane by lane). */

/* The codes' one piece, when it is a stream of width-bit codes of the
 * whole block in element order from bit 0 of its byte and the format has
 * one plain scale at most (no zero, min, sub-blocks, N:M or tensor
 * scale); else NULL. */
static const qk_piece *stream_codes(const qk_format *fm, int width)
{
    if (fm->zero != QK_ZERO_NONE || fm->min_num != QK_NUM_NONE || fm->sub_block || fm->sp_n || fm->tensor_scale)
        return NULL;
    const qk_piece *found = NULL;
    for (int i = 0; i < fm->npieces; i++) {
        const qk_piece *p = &fm->pieces[i];
        if (p->field != QK_FIELD_CODES)
            continue;
        if (found || p->place != QK_PLACE_STREAM || p->width != width || p->lo || p->shift || p->first ||
            p->count != fm->block)
            return NULL;
        found = p;
    }
    return found;
}

/* The codes' piece when the format takes the vector encoder, else NULL. */
static const qk_piece *byte_codes(const qk_format *fm)
{
    if ((fm->code != QK_CODE_SINT && fm->code != QK_CODE_UINT) || fm->bits != 8)
        return NULL;
    return stream_codes(fm, 8);
}

/* x[k .. k+L) (f32 x L), lanes at or past klen read 0. */
static int load_x_vec(enc *e, int k, int L)
{
    dctx *d = &e->d;
    int32_t iv[64];
    for (int l = 0; l < L; l++)
        iv[l] = l;
    int idx = op2(d, TIR_ADD, splat(d, k, L), tir_const_lanes(d->f, d->b, TS_I64, L, iv));
    int mask = cmp(d, TIR_ILT, idx, splat(d, e->klen, L));
    int off = iadd(d, e->vals_off, opk(d, TIR_MUL, k, 4));
    return tir_emit(d->f, d->b, TIR_LOAD, tir_t(TS_F32, L), e->vals, off, mask, -1);
}

/* The statistic of a vector m folded to one lane by halves: lane l with
 * lane l + w, w = lanes / 2, ..., 1 (for BINARY's sums: a + |b| = a + b,
 * b being a sum of magnitudes). */
static int fold_lanes(enc *e, int m)
{
    dctx *d = &e->d;
    for (int w = lanes_of(d, m) / 2; w >= 1; w /= 2) {
        int32_t lo[32], hi[32];
        for (int l = 0; l < w; l++) {
            lo[l] = l;
            hi[l] = w + l;
        }
        int a, b;
        if (w == 1) {
            a = tir_emit(d->f, d->b, TIR_EXTRACT, tir_t(TS_F32, 1), m, -1, -1, -1);
            b = tir_emit(d->f, d->b, TIR_EXTRACT, tir_t(TS_F32, 1), m, -1, -1, -1);
            d->f->nodes[b].imm = 1;
        } else {
            a = tir_shuffle(d->f, d->b, m, w, lo);
            b = tir_shuffle(d->f, d->b, m, w, hi);
        }
        m = stat_step(e, a, b);
    }
    return m;
}

/* sum |x| of the n (i64) elements from start in format.c's order
 * (its abs_sum16): lane l of 16 adds the elements l, l + 16, l + 32, ...
 * in turn, then the 16 lanes are folded by halves. L lanes a vector (1, 2,
 * 4, 8 or 16; 1: scalar loads, as GPU kernels do): 16 / L vectors hold
 * the 16 lanes, vector p lanes p L .. p L + L - 1, so the first folds add
 * whole vectors. The same sum on every target, and the same as the
 * packer's, with a sixteenth of the sequential sum's dependent adds. */
static int abs_sum16(enc *e, int start, int n, int L)
{
    dctx *d = &e->d;
    qk_assert(L >= 1 && L <= 16 && 16 % L == 0);
    int P = 16 / L, acc[16], v[16], klen = e->klen, outer = d->b, body;
    e->klen = iadd(d, start, n); /* elements past the group read 0 */
    for (int p = 0; p < P; p++)
        acc[p] = var_new(d, kf(d, L, 0.0));
    int i = tir_loop(d->f, d->b, k64(d, 0), n, k64(d, 16), TL_SERIAL, "qs", &body);
    d->b = body;
    for (int p = 0; p < P; p++) {
        int k = opk(d, TIR_ADD, iadd(d, start, i), (int64_t)p * L);
        int x = L > 1 ? load_x_vec(e, k, L) : load_x(e, k, cmp(d, TIR_ILT, k, e->klen));
        vset(d, acc[p], op2(d, TIR_FADD, vget(d, acc[p]), op1(d, TIR_FABS, TS_F32, x)));
    }
    d->b = outer;
    e->klen = klen;
    for (int p = 0; p < P; p++)
        v[p] = vget(d, acc[p]);
    for (; P > 1; P /= 2)
        for (int p = 0; p < P / 2; p++)
            v[p] = op2(d, TIR_FADD, v[p], v[p + P / 2]);
    return fold_lanes(e, v[0]);
}

/* The wanted scale of the n (i64) elements from start, L lanes at a
 * time (a loop; or `steps` unrolled steps when steps > 0 and n <= steps L),
 * the statistic folded to one lane by halves. */
static int group_scale_vec(enc *e, int start, int n, int L, int steps)
{
    dctx *d = &e->d;
    if (d->fm->code == QK_CODE_BINARY)
        return stat_scale(e, abs_sum16(e, start, n, L), n);
    int klen = e->klen, m;
    e->klen = iadd(d, start, n); /* elements past the group read 0 */
    if (steps > 0) {
        m = kf(d, L, 0.0);
        for (int j = 0; j < steps; j++)
            m = stat_step(e, m, load_x_vec(e, opk(d, TIR_ADD, start, (int64_t)j * L), L));
    } else {
        int var = var_new(d, kf(d, L, 0.0)), outer, body;
        int i = tir_loop(d->f, d->b, k64(d, 0), n, k64(d, L), TL_SERIAL, "qs", &body);
        outer = d->b;
        d->b = body;
        vset(d, var, stat_step(e, vget(d, var), load_x_vec(e, iadd(d, start, i), L)));
        d->b = outer;
        m = vget(d, var);
    }
    e->klen = klen;
    return stat_scale(e, fold_lanes(e, m), n);
}

/* Points d->blk at block kb and returns its first element (i64); *id is
 * the reciprocal its codes use: the block's scale, written here (from its
 * statistic, in vectors of L lanes when L > 1), else row_id. */
static int encode_block_start(enc *e, int kb, int row_id, int L, int *id)
{
    dctx *d = &e->d;
    const qk_format *fm = d->fm;
    int bo = op2(d, TIR_MUL, kb, k64(d, fm->block_bytes));
    d->blk = iadd(d, d->s->row, opk(d, TIR_ADD, bo, fm->row_header_bytes));
    int start = opk(d, TIR_MUL, kb, fm->block);
    *id = row_id;
    if (fm->scale_per == QK_PER_BLOCK) {
        int n = opk(d, TIR_MIN, op2(d, TIR_SUB, e->klen, start), fm->block);
        *id = put_scale(e, L > 1 ? group_scale_vec(e, start, n, L, fm->block / L) : group_scale(e, start, n));
    }
    return start;
}

/* Block kb of a byte-code format, L elements per step. */
static void encode_block_vec(enc *e, int kb, int row_id, const qk_piece *p, int L)
{
    dctx *d = &e->d;
    const qk_format *fm = d->fm;
    int id, start = encode_block_start(e, kb, row_id, L, &id);
    int ok = splat(d, usable(d, id), L), zero = splat(d, int_code(e, kf(d, 1, 0.0)), L);
    for (int j = 0; j < fm->block / L; j++) {
        int x = load_x_vec(e, opk(d, TIR_ADD, start, (int64_t)j * L), L);
        int code = sel(d, ok, int_code(e, fop(d, TIR_FMUL, x, id)), zero);
        tir_emit(d->f, d->b, TIR_STORE, tir_t(TS_VOID, 1), d->s->ptr, opk(d, TIR_ADD, d->blk, p->byte + j * L),
                 op1(d, TIR_TRUNC, TS_I8, code), -1);
    }
}

/* ---- the vector encoder: bit codes ----
 * BINARY formats whose codes are one bit each in element order from bit 0
 * of a byte (xnor, act_sign): L lanes of x (8 or 16) make L bits, a mask
 * stored as one integer (lane l is bit l), where the scalar encoder ORs
 * each bit into its byte. The statistic (sum |x|) has one order on every
 * path (abs_sum16). */

/* The codes' piece when the format takes the bit encoder, else NULL. */
static const qk_piece *bit_codes(const qk_format *fm)
{
    return fm->code == QK_CODE_BINARY ? stream_codes(fm, 1) : NULL;
}

/* Block kb of a bit-code format, L (8 or 16) elements per store. */
static void encode_block_bits(enc *e, int kb, int row_id, const qk_piece *p, int L)
{
    dctx *d = &e->d;
    const qk_format *fm = d->fm;
    int id, start = encode_block_start(e, kb, row_id, L, &id);
    int ok = splat(d, usable(d, id), L);
    tir_scalar ws = L == 8 ? TS_I8 : TS_I16;
    for (int j = 0; j < fm->block / L; j++) {
        int x = load_x_vec(e, opk(d, TIR_ADD, start, (int64_t)j * L), L);
        int neg = op2(d, TIR_AND, ok, cmp(d, TIR_FLT, fop(d, TIR_FMUL, x, id), kf(d, L, 0.0)));
        int bits = tir_emit(d->f, d->b, TIR_BITCAST, tir_t(ws, 1), neg, -1, -1, -1);
        tir_emit(d->f, d->b, TIR_STORE, tir_t(TS_VOID, 1), d->s->ptr, opk(d, TIR_ADD, d->blk, p->byte + j * L / 8),
                 bits, -1);
    }
}

/* One block kb: its scale (per block), then the codes of all its elements
 * (padding elements code x = 0). row_id: the reciprocal of the row scale. */
static void encode_block(enc *e, int kb, int row_id)
{
    dctx *d = &e->d;
    const qk_format *fm = d->fm;
    int id, start = encode_block_start(e, kb, row_id, 1, &id);
    int outer;
    int i = loop_open(d, k64(d, 0), k64(d, fm->block), "qe", &outer);
    int k = iadd(d, start, i);
    int x = load_x(e, k, cmp(d, TIR_ILT, k, e->klen));
    put_item(d, QK_FIELD_CODES, i, code_for(e, x, id));
    d->b = outer;
}

void tdec_encode_row(tir_func *f, int b, const tdec_src *dst, int vals, int vals_off, int klen, int lanes)
{
    const qk_format *fm = dst->fmt;
    qk_assert(qk_format_kernel_quantizable(fm, NULL, 0));
    enc e = {.d = {f, b, fm, dst, -1}, .vals = vals, .vals_off = vals_off, .klen = klen};
    dctx *d = &e.d;
    qk_format_code_range(fm, &e.lo, &e.hi);
    int nblocks = opk(d, TIR_DIV, opk(d, TIR_ADD, klen, fm->block - 1), fm->block);
    int rowbytes = opk(d, TIR_ADD, opk(d, TIR_MUL, nblocks, fm->block_bytes), fm->row_header_bytes);
    const qk_piece *bytes = lanes > 1 ? byte_codes(fm) : NULL, *bits = lanes > 1 ? bit_codes(fm) : NULL;
    int L = lanes < fm->block ? lanes : fm->block;
    if (bytes && (L < 2 || fm->block % L || L > 32))
        bytes = NULL;
    if (bits && ((L != 8 && L != 16) || fm->block % L))
        bits = NULL;
    zero_bytes(d, dst->row, rowbytes, lanes > 1 ? 4 * lanes : 1);
    int row_id = kf(d, 1, 1.0);
    if (fm->scale_per == QK_PER_ROW)
        row_id = put_scale(&e, bytes || bits ? group_scale_vec(&e, k64(d, 0), klen, L, 0)
                                             : group_scale(&e, k64(d, 0), klen));
    int outer;
    int kb = loop_open(d, k64(d, 0), nblocks, "qb", &outer);
    if (bytes)
        encode_block_vec(&e, kb, row_id, bytes, L);
    else if (bits)
        encode_block_bits(&e, kb, row_id, bits, L);
    else
        encode_block(&e, kb, row_id);
    d->b = outer;
}
