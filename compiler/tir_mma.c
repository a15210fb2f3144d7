/* tir_mma.c — tensor-core tiles for GPU targets: a contraction
 *     y[m, n] = E(sum(k) X[m, k] * W[n, k])
 * whose W has codes exact in f16 (or s8) and a scale constant over blocks of K,
 * and whose X is f16 (-> f16 MMA) or an s8-coded format such as a
 * quantize()d activation temp (-> s8 MMA), is lowered to warp-level
 * mma.sync instead of one lane per output (tir_build.c's general path).
 *
 * "Swap AB": the MMA's A (16 x k, row-major) is 16 rows n of W, decoded
 * per lane from the canonical layout by tir_decode.c without their scale
 * (code values exact in f16 — small integers, minifloats up to e5m10,
 * tables of such values — or integers in [-128, 127] for s8); its B (k x 8, column-major)
 * is X^T, 8 rows m of X; D[n][m] is a 16 x 8 tile of y^T. One work item is
 * 16 rows n, computed by one warp (a TL_WARP grid loop); it walks M in
 * steps of 8 and K in blocks of L (the scale block, a multiple of the
 * MMA's k). Per block the MMAs give the exact partial sum of code x
 * activation (f32 for f16 products; s32 for s8), and each lane then adds
 * scale * partial to its four f32 accumulators, so the result is the
 * reference's up to the order of f32 additions; then the epilogue (the
 * rest of the right-hand side, lowered by tir_build.c through
 * tmma_env.finish) runs per output under `n < N && m < M`. Ragged N and M are
 * clamped on reads (the rows are valid, their results are not stored) and
 * masked on stores; ragged K reads X as 0 past K (W's last block is
 * padded in its packed rows, so its codes are there and finite).
 *
 * Fragment layouts (which lane holds which element) are those of the PTX
 * ISA, section 9.7.14.5.8 "Matrix Fragments for mma.m16n8k16 with
 * floating point type" and 9.7.14.5.9 "... mma.m16n8k32" (integer types),
 * with groupID = lane >> 2 and threadID_in_group = lane % 4 (g and t
 * below):
 *   f16 A (4 words of 2 halves, a0..a7):  row g + 8 * ((i >> 1) & 1),
 *                                         col 2t + (i & 1) + 8 * (i >> 2)
 *   f16 B (2 words, b0..b3):              row (k) 2t + (i & 1) + 8 * (i >> 1), col g
 *   s8 A (4 words of 4 bytes, a0..a15):   row g + 8 * ((i >> 2) & 1),
 *                                         col 4t + (i & 3) + 16 * (i >> 3)
 *   s8 B (2 words, b0..b7):               row (k) 4t + (i & 3) + 16 * (i >> 2), col g
 *   C/D (4 f32 or s32, c0..c3):           row g + 8 * (i >> 1), col 2t + (i & 1)
 * The lowest-numbered element sits in the low bits of its word.
 *
 * A W with 2:4 sparsity along K and f16 X use mma.sp m16n8k32 (section
 * 9.7.14.6): A holds the 16 kept items of each row's 32 elements in the
 * f16 A layout above (columns = kept items), B is the dense 32 x 8 X^T
 * (4 words: row 2t + (i & 1) + 8 * (i >> 1), col g), and the metadata
 * (see metadata()) gives each kept item's position in its group of 4. */
#include "compiler/tir_mma.h"

#include "compiler/tir_decode.h"

typedef struct mplan {
    int kind;              /* tir_mma_kind */
    const kir_expr *sum;   /* the reduction (rhs itself, or inside an epilogue) */
    const kir_expr *w, *x; /* W[n, k] (quantized), X[m, k] (f16, or s8 codes) */
    int nvar, mvar, kvar;
    int L;                 /* K block: every scale is constant over it */
} mplan;

typedef struct mctx {
    const tmma_env *env;
    tir_func *f;
    const kir_kernel *k;
    const kir_stmt *st;
    mplan p;
    const tir_mma_shape *sh;
    int per;            /* elements per fragment word: 2 (f16) or 4 (s8) */
    int g, t;           /* i64: lane >> 2, lane & 3 */
    int n0, N, M, K;    /* i64 */
    tdec_src wrow[2];   /* W rows n0 + g and n0 + g + 8 (clamped to N - 1) */
} mctx;

/* ---- small emit helpers ---- */

static int c64(mctx *c, int b, int64_t v)
{
    return tir_const_i(c->f, b, TS_I64, 1, v);
}

static int c32(mctx *c, int b, int64_t v)
{
    return tir_const_i(c->f, b, TS_I32, 1, v);
}

static int op2(mctx *c, int b, tir_op op, int x, int y)
{
    return tir_emit(c->f, b, op, c->f->nodes[x].type, x, y, -1, -1);
}

static int cvt(mctx *c, int b, tir_op op, tir_scalar s, int x)
{
    return tir_emit(c->f, b, op, tir_t(s, 1), x, -1, -1, -1);
}

static int add(mctx *c, int b, int x, int y)
{
    return op2(c, b, TIR_ADD, x, y);
}

static int addc(mctx *c, int b, int x, int64_t v)
{
    return v ? op2(c, b, TIR_ADD, x, c64(c, b, v)) : x;
}

static int ilt(mctx *c, int b, int x, int y)
{
    return tir_emit(c->f, b, TIR_ILT, tir_t(TS_I1, 1), x, y, -1, -1);
}

static int dim(mctx *c, int b, kir_dim d)
{
    if (d.sym < 0)
        return c64(c, b, d.c);
    return addc(c, b, c->env->dimnode[d.sym], d.c);
}

/* ---- matching ---- */

/* The variable of an index that is exactly one variable, else -1. */
static int single_var(const kir_index *ix)
{
    return ix->nterms == 1 && ix->terms[0].coef == 1 && ix->c == 0 ? ix->terms[0].var : -1;
}

/* The unscaled values (c - zero) a format's codes can take, when the
 * scale factors out of a block: both ends of the range for integer-like
 * codes, every code's value for minifloats and tables. 0 if none. */
static int code_values(const qk_format *f, double *v, int *n)
{
    if (f->zero != QK_ZERO_NONE || f->bits > 8 || !tdec_scale_factorable(f))
        return 0;
    int lo, hi;
    switch (f->code) {
    case QK_CODE_SINT: case QK_CODE_UINT: case QK_CODE_OFFSET: case QK_CODE_TERNARY: case QK_CODE_BINARY:
        qk_format_code_range(f, &lo, &hi);
        v[0] = lo, v[1] = f->code == QK_CODE_TERNARY ? 2 : hi; /* a 2-bit ternary 3 decodes as 2 */
        *n = 2;
        return 1;
    case QK_CODE_MINIFLOAT: case QK_CODE_TABLE:
        *n = 1 << f->bits;
        for (int c = 0; c < *n; c++)
            v[c] = qk_format_codeval(f, (uint32_t)c);
        return 1;
    default: return 0;
    }
}

/* 1 if every value is exact in f16 (integer ranges: their ends, at most
 * 2^8 apart, are; so is everything between them). */
static int all_f16(const double *v, int n)
{
    for (int i = 0; i < n; i++) {
        float x = (float)v[i];
        if (v[i] == v[i] && ((double)x != v[i] || qk_f16_to_f32(qk_f32_to_f16(x)) != x))
            return 0;
    }
    return 1;
}

static int all_s8(const double *v, int n)
{
    for (int i = 0; i < n; i++)
        if (!(v[i] >= -128 && v[i] <= 127 && v[i] == (double)(int)v[i]))
            return 0;
    return 1;
}

/* The MMA kind for W's format and X's tensor, and the K block; -1 if none fits. */
static int pick_kind(const qk_format *fw, const kir_tensor *tx, int *L)
{
    double v[256];
    int n;
    if (!code_values(fw, v, &n))
        return -1;
    int f16x = !tx->fmt && tx->dtype == QK_DT_F16 && all_f16(v, n);
    if (fw->sp_n) { /* 2:4 along K: the sparse tensor cores' own pattern */
        if (!f16x || fw->sp_n != 2 || fw->sp_m != 4 || fw->block % 32)
            return -1;
        *L = fw->block;
        return TIR_MMA_SP_F16_K32;
    }
    if (f16x && fw->block % 16 == 0) {
        *L = fw->block;
        return TIR_MMA_F16_K16;
    }
    if (tx->fmt && tdec_is_s8(tx->fmt) && all_s8(v, n)) {
        int bw = fw->block, bx = tx->fmt->block, mn = bw < bx ? bw : bx, mx = bw < bx ? bx : bw;
        if (mn % 32 == 0 && mx % mn == 0) {
            *L = mn;
            return TIR_MMA_S8_K32;
        }
    }
    return -1;
}

/* The top-level sums of e (not inside other sums): counts them, keeps the first. */
static void find_sums(const kir_expr *e, const kir_expr **first, int *n)
{
    if (!e)
        return;
    if (e->kind == KE_SUM) {
        if ((*n)++ == 0)
            *first = e;
        return;
    }
    find_sums(e->a, first, n);
    find_sums(e->b, first, n);
}

static int match(const tmma_env *env, const kir_stmt *st, const kir_expr *rhs, mplan *p)
{
    const kir_kernel *k = env->k;
    const kir_tensor *y = &k->tensors[st->tensor];
    const kir_expr *sum = NULL;
    int nsums = 0;
    find_sums(rhs, &sum, &nsums);
    if (nsums != 1 || (sum != rhs && !env->finish))
        return 0;
    if (y->rank != 2 || st->nlhs != 2 || (!env->finish && y->dtype != QK_DT_F32 && y->dtype != QK_DT_F16))
        return 0;
    rhs = sum;
    if (rhs->nvars != 1 || rhs->a->kind != KE_BIN || rhs->a->op != KB_MUL)
        return 0;
    const kir_expr *side[2] = {rhs->a->a, rhs->a->b};
    for (int i = 0; i < 2; i++) {
        const kir_expr *w = side[i], *x = side[1 - i];
        if (w->kind != KE_LOAD || x->kind != KE_LOAD)
            return 0;
        const kir_tensor *tw = &k->tensors[w->tensor], *tx = &k->tensors[x->tensor];
        if (!tw->fmt || tw->rank != 2 || tx->rank != 2 || tw->book >= 0)
            continue;
        int nv = single_var(&w->idx[0]), mv = single_var(&x->idx[0]), kv = rhs->vars[0];
        if (single_var(&w->idx[1]) != kv || single_var(&x->idx[1]) != kv || nv < 0 || mv < 0 || nv == mv)
            continue;
        if (!((nv == st->lhs[0] && mv == st->lhs[1]) || (nv == st->lhs[1] && mv == st->lhs[0])))
            continue;
        int L, kind = pick_kind(tw->fmt, tx, &L);
        if (kind < 0)
            continue;
        *p = (mplan){kind, sum, w, x, nv, mv, kv, L};
        return 1;
    }
    return 0;
}

/* ---- one tile ---- */

/* Row `row` (i64) of a packed rank-2 tensor. */
static tdec_src packed_row(mctx *c, int b, const kir_expr *e, int row)
{
    const kir_tensor *t = &c->k->tensors[e->tensor];
    int off = op2(c, b, TIR_MUL, row, c->env->rowbytes[e->tensor]);
    return (tdec_src){t->fmt, c->env->ptr[e->tensor], addc(c, b, off, t->fmt->tensor_header_bytes), -1, 0};
}

/* i32 bits of item k (i64, counted from the row start) of W row r,
 * unscaled: f16 bits (zero-extended) or the s8 byte. Items are elements,
 * or the kept items of a 2:4 format. */
static int w_bits(mctx *c, int b, int r, int k)
{
    const qk_format *fw = c->wrow[r].fmt;
    int blk = op2(c, b, TIR_DIV, k, c64(c, b, fw->kept)), in = op2(c, b, TIR_REM, k, c64(c, b, fw->kept));
    int v = tdec_chunk(c->f, b, &c->wrow[r], blk, in, -1, 1, TDEC_UNSCALED);
    if (c->per == 2)
        return cvt(c, b, TIR_ZEXT, TS_I32, cvt(c, b, TIR_F2H, TS_I16, v));
    return op2(c, b, TIR_AND, cvt(c, b, TIR_FPTOSI, TS_I32, v), c32(c, b, 0xff));
}

/* i32 bits of X[m, k] (0 past M or K): f16 bits or the s8 code byte. */
static int x_bits(mctx *c, int b, int m, int k, const tdec_src *xrow)
{
    int ok = op2(c, b, TIR_AND, ilt(c, b, m, c->M), ilt(c, b, k, c->K));
    const kir_tensor *tx = &c->k->tensors[c->p.x->tensor];
    if (!tx->fmt) {
        int el = add(c, b, op2(c, b, TIR_MUL, m, c->env->stride[c->p.x->tensor * QK_MAX_RANK]), k);
        int off = op2(c, b, TIR_MUL, el, c64(c, b, 2));
        int h = tir_emit(c->f, b, TIR_LOAD, tir_t(TS_I16, 1), c->env->ptr[c->p.x->tensor], off, ok, -1);
        return cvt(c, b, TIR_ZEXT, TS_I32, h);
    }
    int bx = tx->fmt->block;
    int blk = op2(c, b, TIR_DIV, k, c64(c, b, bx)), in = op2(c, b, TIR_REM, k, c64(c, b, bx));
    int code = cvt(c, b, TIR_ZEXT, TS_I32, tdec_codes_s8(c->f, b, xrow, blk, in, -1, 1));
    return tir_emit(c->f, b, TIR_SELECT, tir_t(TS_I32, 1), ok, code, c32(c, b, 0), -1);
}

/* A word of `per` elements: bits(e) << (e * 32 / per), e = 0..per-1, of
 * consecutive k from k0. */
typedef int (*elem_fn)(mctx *c, int b, int which, int k, void *arg);

static int pack_word(mctx *c, int b, int k0, int which, elem_fn fn, void *arg)
{
    int word = -1;
    for (int e = 0; e < c->per; e++) {
        int bits = fn(c, b, which, addc(c, b, k0, e), arg);
        if (e)
            bits = op2(c, b, TIR_SHL, bits, c32(c, b, e * 32 / c->per));
        word = word < 0 ? bits : op2(c, b, TIR_OR, word, bits);
    }
    return word;
}

static int w_elem(mctx *c, int b, int r, int k, void *arg)
{
    (void)arg;
    return w_bits(c, b, r, k);
}

typedef struct xarg {
    int m;               /* i64: the B column's row of X, m0 + g */
    const tdec_src *row; /* s8 X: that row, clamped to M - 1 */
} xarg;

static int x_elem(mctx *c, int b, int which, int k, void *arg)
{
    const xarg *xa = arg;
    (void)which;
    return x_bits(c, b, xa->m, k, xa->row);
}

static int frag_init(mctx *c, int b, tir_scalar s, int words)
{
    return s == TS_F32 ? tir_const_f(c->f, b, words, 0.0) : tir_const_i(c->f, b, s, words, 0);
}

/* W's first item of the step at element k0 (a multiple of the MMA's k):
 * k0, or k0 / 2 kept items of a 2:4 format. */
static int w_item(mctx *c, int b, int k0)
{
    const qk_format *fw = c->wrow[0].fmt;
    if (fw->kept == fw->block)
        return k0;
    return op2(c, b, TIR_DIV, op2(c, b, TIR_MUL, k0, c64(c, b, fw->kept)), c64(c, b, fw->block));
}

/* Position (0..3, i64) in its group of 4 of kept item `item` of W row r. */
static int w_pos(mctx *c, int b, int r, int item)
{
    const qk_format *fw = c->wrow[r].fmt;
    int blk = op2(c, b, TIR_DIV, item, c64(c, b, fw->kept)), in = op2(c, b, TIR_REM, item, c64(c, b, fw->kept));
    int pos = tdec_positions(c->f, b, &c->wrow[r], blk, in, -1, 1);
    return op2(c, b, TIR_AND, pos, c64(c, b, fw->sp_m - 1));
}

/* A word of mma.sp's A: the two kept items (one group of 4) from `item`,
 * in increasing position, so that the metadata is ordered whatever order
 * the format stores them in (metadata() sorts the same way). */
static int sparse_word(mctx *c, int b, int r, int item)
{
    int item1 = addc(c, b, item, 1);
    int v0 = w_bits(c, b, r, item), v1 = w_bits(c, b, r, item1);
    int swap = ilt(c, b, w_pos(c, b, r, item1), w_pos(c, b, r, item));
    int lo = tir_emit(c->f, b, TIR_SELECT, tir_t(TS_I32, 1), swap, v1, v0, -1);
    int hi = tir_emit(c->f, b, TIR_SELECT, tir_t(TS_I32, 1), swap, v0, v1, -1);
    return op2(c, b, TIR_OR, lo, op2(c, b, TIR_SHL, hi, c32(c, b, 16)));
}

/* The A fragment from k0: word w holds row g + 8 * (w & 1), columns from
 * per * t + (w >> 1) * 4 * per (f16: 2t + 8h; s8: 4t + 16h). For mma.sp
 * the columns are those of the kept items (the compressed 16 x 16 A has
 * the dense m16n8k16 layout). */
static int a_fragment(mctx *c, int b, int k0)
{
    int v = frag_init(c, b, TS_I32, c->sh->a_words);
    int kt = add(c, b, w_item(c, b, k0), op2(c, b, TIR_MUL, c->t, c64(c, b, c->per)));
    for (int w = 0; w < c->sh->a_words; w++) {
        int first = addc(c, b, kt, (w >> 1) * 4 * c->per);
        int word = c->sh->sparse ? sparse_word(c, b, w & 1, first) : pack_word(c, b, first, w & 1, w_elem, NULL);
        v = tir_emit(c->f, b, TIR_INSERT, tir_t(TS_I32, c->sh->a_words), v, word, -1, -1);
        c->f->nodes[v].imm = w;
    }
    return v;
}

/* mma.sp metadata of the step at k0 (PTX ISA 9.7.14.6.2, "Sparse MMA
 * metadata for .f16 m16n8k32", sparsity selector 0): lanes with t = 0 and
 * 1 give it, lane t covering kept items 8t .. 8t+7 of the step (16
 * elements of K); bits 2j+1:2j of the low half hold the in-group position
 * (0..3) of kept item 8t+j of row g, the high half the same for row g+8;
 * the two of a group in increasing order (as sparse_word() orders A).
 * Lanes 2 and 3 compute the words of lanes 0 and 1 (ignored). */
static int metadata(mctx *c, int b, int k0)
{
    int first = add(c, b, w_item(c, b, k0), op2(c, b, TIR_MUL, op2(c, b, TIR_AND, c->t, c64(c, b, 1)), c64(c, b, 8)));
    int word = -1;
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 8; j += 2) {
            int item = addc(c, b, first, j);
            int p0 = w_pos(c, b, r, item), p1 = w_pos(c, b, r, addc(c, b, item, 1));
            int lo = op2(c, b, TIR_MIN, p0, p1), hi = op2(c, b, TIR_MAX, p0, p1);
            int pair = op2(c, b, TIR_OR, lo, op2(c, b, TIR_SHL, hi, c64(c, b, 2)));
            pair = cvt(c, b, TIR_TRUNC, TS_I32, pair);
            if (16 * r + 2 * j)
                pair = op2(c, b, TIR_SHL, pair, c32(c, b, 16 * r + 2 * j));
            word = word < 0 ? pair : op2(c, b, TIR_OR, word, pair);
        }
    return word;
}

/* The B fragment from k0: column m = m0 + g, word w holds rows
 * per * t + w * 4 * per (f16: 2t + 8w; s8: 4t + 16w). */
static int b_fragment(mctx *c, int b, int k0, const xarg *xa)
{
    int v = frag_init(c, b, TS_I32, c->sh->b_words);
    int kt = add(c, b, k0, op2(c, b, TIR_MUL, c->t, c64(c, b, c->per)));
    for (int w = 0; w < c->sh->b_words; w++) {
        int word = pack_word(c, b, addc(c, b, kt, w * 4 * c->per), 0, x_elem, (void *)xa);
        v = tir_emit(c->f, b, TIR_INSERT, tir_t(TS_I32, c->sh->b_words), v, word, -1, -1);
        c->f->nodes[v].imm = w;
    }
    return v;
}

/* The X row (clamped to M - 1) of column m, for s8 X. */
static tdec_src x_row(mctx *c, int b, int m)
{
    if (!c->k->tensors[c->p.x->tensor].fmt)
        return (tdec_src){0};
    return packed_row(c, b, c->p.x, op2(c, b, TIR_MIN, m, op2(c, b, TIR_SUB, c->M, c64(c, b, 1))));
}

/* Scale of element i of D in block kb (i64, in units of L): W's row scale
 * times, for s8 X, X's scale of its column. */
static int d_scale(mctx *c, int b, int i, int kbase, int m0)
{
    const qk_format *fw = c->wrow[0].fmt;
    int s = tdec_scale(c->f, b, &c->wrow[i >> 1], op2(c, b, TIR_DIV, kbase, c64(c, b, fw->block)));
    const qk_format *fx = c->k->tensors[c->p.x->tensor].fmt;
    if (!fx)
        return s;
    int m = add(c, b, add(c, b, m0, op2(c, b, TIR_MUL, c->t, c64(c, b, 2))), c64(c, b, i & 1));
    tdec_src xr = x_row(c, b, m);
    int sx = tdec_scale(c->f, b, &xr, op2(c, b, TIR_DIV, kbase, c64(c, b, fx->block)));
    return op2(c, b, TIR_FMUL, s, sx);
}

/* One K block: the MMAs of its L / k steps into an exact partial, then
 * acc[i] += scale(i) * partial[i]. */
static void k_block(mctx *c, int b, int kb, int m0, const int *acc, const xarg *xa)
{
    int kbase = op2(c, b, TIR_MUL, kb, c64(c, b, c->p.L));
    tir_type ft = tir_t(c->sh->acc, 4);
    int part = tir_emit(c->f, b, TIR_VAR, ft, frag_init(c, b, c->sh->acc, 4), -1, -1, -1);
    c->f->nodes[part].name = "partial";
    int sb, steps = c->p.L / c->sh->k;
    int s = tir_loop(c->f, b, c64(c, b, 0), c64(c, b, steps), c64(c, b, 1), steps <= 4 ? TL_UNROLL : TL_SERIAL,
                     "kstep", &sb);
    int k0 = add(c, sb, kbase, op2(c, sb, TIR_MUL, s, c64(c, sb, c->sh->k)));
    int A = a_fragment(c, sb, k0), B = b_fragment(c, sb, k0, xa);
    int e = c->sh->sparse ? metadata(c, sb, k0) : -1;
    int d = tir_emit(c->f, sb, TIR_MMA, ft, A, B, tir_emit(c->f, sb, TIR_VGET, ft, part, -1, -1, -1), e);
    c->f->nodes[d].imm = c->p.kind;
    tir_emit(c->f, sb, TIR_VSET, tir_t(TS_VOID, 1), part, d, -1, -1);
    int pv = tir_emit(c->f, b, TIR_VGET, ft, part, -1, -1, -1);
    for (int i = 0; i < 4; i++) {
        int v = tir_emit(c->f, b, TIR_EXTRACT, tir_t(c->sh->acc, 1), pv, -1, -1, -1);
        c->f->nodes[v].imm = i;
        if (c->sh->acc == TS_I32)
            v = cvt(c, b, TIR_SITOFP, TS_F32, v);
        int cur = tir_emit(c->f, b, TIR_VGET, tir_t(TS_F32, 1), acc[i], -1, -1, -1);
        int nv = tir_emit(c->f, b, TIR_FMA, tir_t(TS_F32, 1), d_scale(c, b, i, kbase, m0), v, cur, -1);
        tir_emit(c->f, b, TIR_VSET, tir_t(TS_VOID, 1), acc[i], nv, -1, -1);
    }
}

/* y[n, m] (in the statement's index order) = E(acc), where n < N and m < M. */
static void store_d(mctx *c, int b, int i, int m0, int accv)
{
    const kir_tensor *y = &c->k->tensors[c->st->tensor];
    int n = addc(c, b, add(c, b, c->n0, c->g), 8 * (i >> 1));
    int m = addc(c, b, add(c, b, m0, op2(c, b, TIR_MUL, c->t, c64(c, b, 2))), i & 1);
    int ok = op2(c, b, TIR_AND, ilt(c, b, n, c->N), ilt(c, b, m, c->M));
    int i0 = c->st->lhs[0] == c->p.nvar ? n : m, i1 = i0 == n ? m : n;
    if (c->env->finish) { /* per lane, after the warp's last mma: a branch is fine */
        int tb, lhs[2] = {i0, i1};
        tir_if(c->f, b, ok, &tb, NULL);
        c->env->finish(c->env->ctx, tb, lhs, c->p.sum, accv);
        return;
    }
    int el = add(c, b, op2(c, b, TIR_MUL, i0, c->env->stride[c->st->tensor * QK_MAX_RANK]), i1);
    int off = op2(c, b, TIR_MUL, el, c64(c, b, qk_dtype_size(y->dtype)));
    int v = y->dtype == QK_DT_F16 ? cvt(c, b, TIR_F2H, TS_I16, accv) : accv;
    tir_emit(c->f, b, TIR_STORE, tir_t(TS_VOID, 1), c->env->ptr[c->st->tensor], off, v, ok);
}

/* Columns m0 .. m0+7 of the tile: accumulators, the K blocks, the stores. */
static void m_tile(mctx *c, int b, int m0)
{
    int acc[4];
    for (int i = 0; i < 4; i++) {
        acc[i] = tir_emit(c->f, b, TIR_VAR, tir_t(TS_F32, 1), tir_const_f(c->f, b, 1, 0.0), -1, -1, -1);
        c->f->nodes[acc[i]].name = "acc";
    }
    xarg xa = {add(c, b, m0, c->g), NULL};
    tdec_src xr = x_row(c, b, xa.m);
    xa.row = &xr;
    int nblk = op2(c, b, TIR_DIV, addc(c, b, c->K, c->p.L - 1), c64(c, b, c->p.L)), kb_body;
    int kb = tir_loop(c->f, b, c64(c, b, 0), nblk, c64(c, b, 1), TL_SERIAL, "kblock", &kb_body);
    k_block(c, kb_body, kb, m0, acc, &xa);
    for (int i = 0; i < 4; i++)
        store_d(c, b, i, m0, tir_emit(c->f, b, TIR_VGET, tir_t(TS_F32, 1), acc[i], -1, -1, -1));
}

/* One work item: rows n0 .. n0+15 of W, every column block of M. */
static void tile(mctx *c, int b, int item)
{
    int lane = cvt(c, b, TIR_ZEXT, TS_I64, tir_emit(c->f, b, TIR_LANEID, tir_t(TS_I32, 1), -1, -1, -1, -1));
    c->g = op2(c, b, TIR_SHR, lane, c64(c, b, 2));
    c->t = op2(c, b, TIR_AND, lane, c64(c, b, 3));
    c->n0 = op2(c, b, TIR_MUL, item, c64(c, b, 16));
    c->N = dim(c, b, c->k->vars[c->p.nvar].extent);
    c->M = dim(c, b, c->k->vars[c->p.mvar].extent);
    c->K = dim(c, b, c->k->vars[c->p.kvar].extent);
    int last = op2(c, b, TIR_SUB, c->N, c64(c, b, 1));
    for (int r = 0; r < 2; r++) {
        int n = addc(c, b, add(c, b, c->n0, c->g), 8 * r);
        c->wrow[r] = packed_row(c, b, c->p.w, op2(c, b, TIR_MIN, n, last));
    }
    int mb;
    int m0 = tir_loop(c->f, b, c64(c, b, 0), c->M, c64(c, b, 8), TL_SERIAL, "m8", &mb);
    m_tile(c, mb, m0);
}

int tmma_build_stmt(const tmma_env *env, const kir_stmt *st, const kir_expr *rhs, int item_off)
{
    mctx c = {.env = env, .f = env->f, .k = env->k, .st = st};
    if (env->t->kind != QK_TARGET_GPU || env->t->sm < 80 || !match(env, st, rhs, &c.p))
        return -1;
    c.sh = tir_mma_shape_of(c.p.kind);
    c.per = c.sh->acc == TS_F32 ? 2 : 4;
    tir_func *f = env->f;
    int b = f->entry;
    kir_dim ext = env->k->vars[c.p.nvar].extent;
    f->grids[f->ngrids++] = (tir_grid){(int)(st - env->k->stmts), ext, 16, 0, 1};
    int E = dim(&c, b, ext);
    int cnt = op2(&c, b, TIR_DIV, addc(&c, b, E, 15), c64(&c, b, 16));
    int begin = tir_emit(f, b, TIR_ARG, tir_t(TS_I64, 1), -1, -1, -1, -1);
    int end = tir_emit(f, b, TIR_ARG, tir_t(TS_I64, 1), -1, -1, -1, -1);
    f->nodes[begin].imm = f->arg_begin;
    f->nodes[end].imm = f->arg_end;
    int lo = op2(&c, b, TIR_MAX, op2(&c, b, TIR_SUB, begin, item_off), c64(&c, b, 0));
    int hi = op2(&c, b, TIR_MIN, op2(&c, b, TIR_SUB, end, item_off), cnt);
    int body;
    int it = tir_loop(f, b, lo, hi, c64(&c, b, 1), TL_WARP, "tile", &body);
    tile(&c, body, it);
    return cnt;
}
