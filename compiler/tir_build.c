/* tir_build.c — Kernel IR -> tiled IR.
 *
 * For each result statement the builder emits a grid loop over work items
 * (one output tile each along the parallel index), register tiles of
 * output points inside it, and for every top-level reduction a loop nest
 * whose innermost variable is vectorized over the target's lanes when the
 * loads allow (contiguous dense rows, quantized rows along their block
 * axis), with masked tail chunks for ragged sizes. Everything else —
 * epilogues, nested or non-contiguous reductions — is lowered with scalar
 * loops, so every kernel that passed sema lowers.
 *
 * Intermediates (temps, and results read by later statements) are fused by
 * substitution: a load of a temp becomes the temp's defining expression with
 * its indices replaced.
 *
 * Quantized loads are decoded by tir_decode.c from the format descriptor
 * alone. An N:M tensor drives its reduction over its kept items and the
 * dense operands are gathered at their positions, so the work is N/M of
 * the dense twin's. Two sign-bit operands of one block size reduce by XNOR
 * and popcount. quantize() and hadamard() temps are materialized in
 * scratch buffers by their own grids, in an earlier phase than the
 * statements that read them. For GPU targets, contractions whose operand
 * types fit a tensor-core MMA are built by tir_mma.c instead. No rule
 * names a format. */
#include "compiler/tir.h"
#include "compiler/tir_decode.h"
#include "compiler/rowpack.h"
#include "compiler/tir_mma.h"

#include <math.h>
#include <string.h>

#define MAX_POINTS 64
#define MAX_SUMS 16
#define MEMO_MAX 512
#define PART_MAX 12 /* partial sums (one vector each) a block loop keeps beside its accumulators */

/* How an index variable is bound at the current emission point. */
typedef struct binding {
    int node;  /* i64 scalar: the value, or for the vector variable the first lane's value */
    int vec;   /* lanes hold node + 0, 1, ..., L-1 */
    int kb;    /* vector variable over a quantized block loop: block index node */
    int off;   /* ... and the chunk's item offset inside the block (node) */
    int offc;  /* ... its compile-time value, or -1 */
    int kvec;  /* N:M: per-lane element indices (i64 x lanes), node is 0; else -1 */
} binding;

typedef struct memo_ent {
    uint64_t key;
    int node;
} memo_ent;

typedef struct bctx {
    tir_func *f;
    const kir_kernel *k;
    const qk_target *t;
    tir_config cfg;
    qk_arena *a;
    int *ptr;                  /* tensor -> ARG node */
    int *stride;               /* tensor*QK_MAX_RANK+d -> i64 node (elements) */
    int *rowbytes;             /* quantized tensor -> i64 node */
    int *stage;                /* quantize() temp -> its f32 staging pointer node */
    int *dimnode;              /* sym -> i64 node */
    binding *env;              /* var -> binding */
    int lanes;                 /* lanes of the vector variable in the current region */
    int mask;                  /* current lane mask node or -1 */
    int paired;                /* 1: chunks of the vector variable are read in pairs, in
                                  tdec_paired_item() order (emit_block_loop) */
    memo_ent memo[MEMO_MAX];
    int nmemo;
    int *sumval;               /* expr -> value node for precomputed sums (by pointer map) */
    const kir_expr **sumexpr;
    int nsumval;
    char *err;
    size_t errsz;
    int failed;
    int idot_u;                /* tensor plan_idot tries first as the u operand, or -1 */
    int pf_site;               /* 1: a popcount reduction emitted cfg.prefetch's hints */
    int sums;                  /* ARG node of the group sums scratch (cfg.repack), or -1 */
    int phase, phase_shift;    /* phase of the statement being built; grids added before it */
} bctx;

static int fail(bctx *c, const char *fmt, const char *arg)
{
    if (!c->failed)
        snprintf(c->err, c->errsz, fmt, arg);
    c->failed = 1;
    return -1;
}

/* ---- small emit helpers ---- */

static int emit1(bctx *c, int b, tir_op op, tir_type t, int a0)
{
    return tir_emit(c->f, b, op, t, a0, -1, -1, -1);
}

static int emit2(bctx *c, int b, tir_op op, int x, int y)
{
    return tir_emit(c->f, b, op, c->f->nodes[x].type, x, y, -1, -1);
}

static int ci(bctx *c, int b, int64_t v)
{
    return tir_const_i(c->f, b, TS_I64, 1, v);
}

static int lanes_of(bctx *c, int id)
{
    return c->f->nodes[id].type.lanes;
}

static int splat(bctx *c, int b, int x, int lanes)
{
    if (lanes_of(c, x) == lanes)
        return x;
    return emit1(c, b, TIR_SPLAT, tir_t((tir_scalar)c->f->nodes[x].type.s, lanes), x);
}

static int cf(bctx *c, int b, int lanes, double v)
{
    return tir_const_f(c->f, b, lanes, v);
}

/* Integer constant of kind s over lanes. */
static int cis(bctx *c, int b, tir_scalar s, int lanes, int64_t v)
{
    return tir_const_i(c->f, b, s, lanes, v);
}

/* Binary f32 op with lane promotion. */
static int fbin(bctx *c, int b, tir_op op, int x, int y)
{
    int l = lanes_of(c, x) > lanes_of(c, y) ? lanes_of(c, x) : lanes_of(c, y);
    return emit2(c, b, op, splat(c, b, x, l), splat(c, b, y, l));
}

static int iadd(bctx *c, int b, int x, int y)
{
    return emit2(c, b, TIR_ADD, x, y);
}

static int imul(bctx *c, int b, int x, int y)
{
    return emit2(c, b, TIR_MUL, x, y);
}

/* ---- memo: one chunk's loads, decodes and index arithmetic are shared by
 * every output point and sum that uses them ---- */

static uint64_t mix(uint64_t h, int64_t v)
{
    return qk_hash64(&v, sizeof v, h);
}

static int memo_get(bctx *c, uint64_t key)
{
    for (int i = 0; i < c->nmemo; i++)
        if (c->memo[i].key == key)
            return c->memo[i].node;
    return -1;
}

static int memo_put(bctx *c, uint64_t key, int node)
{
    if (c->nmemo < MEMO_MAX)
        c->memo[c->nmemo++] = (memo_ent){key, node};
    return node;
}

/* ---- dimensions and indices ---- */

/* Value of a dimension, emitted into block b (where it is used). */
static int dim_node(bctx *c, int b, kir_dim d)
{
    if (d.sym < 0)
        return ci(c, b, d.c);
    if (d.c == 0)
        return c->dimnode[d.sym];
    return iadd(c, b, c->dimnode[d.sym], ci(c, b, d.c));
}

/* Scalar value of an affine index; the vector variable contributes its
 * first lane. *vcoef receives the vector variable's coefficient. */
static int index_node(bctx *c, int b, const kir_index *ix, int64_t *vcoef)
{
    int acc = -1;
    *vcoef = 0;
    for (int i = 0; i < ix->nterms; i++) {
        binding *bd = &c->env[ix->terms[i].var];
        if (bd->vec)
            *vcoef += ix->terms[i].coef;
        int term = bd->node;
        if (ix->terms[i].coef != 1)
            term = imul(c, b, term, ci(c, b, ix->terms[i].coef));
        acc = acc < 0 ? term : iadd(c, b, acc, term);
    }
    if (acc < 0)
        return ci(c, b, ix->c);
    return ix->c ? iadd(c, b, acc, ci(c, b, ix->c)) : acc;
}

static uint64_t index_key(bctx *c, const kir_expr *e)
{
    uint64_t h = mix(0x51ed, e->tensor);
    h = mix(h, c->lanes);
    h = mix(h, c->mask);
    h = mix(h, c->paired);
    for (int d = 0; d < c->k->tensors[e->tensor].rank; d++) {
        const kir_index *ix = &e->idx[d];
        h = mix(h, 1000 + d);
        for (int i = 0; i < ix->nterms; i++) {
            const binding *bd = &c->env[ix->terms[i].var];
            h = mix(mix(mix(mix(h, bd->node), bd->vec), bd->kvec), ix->terms[i].coef);
        }
        h = mix(h, ix->c);
    }
    return h;
}

/* ---- dense loads ---- */

/* Converts loaded elements of dtype dt (raw kinds) to f32. */
static int to_f32(bctx *c, int b, qk_dtype dt, int v)
{
    int l = lanes_of(c, v);
    switch (dt) {
    case QK_DT_F32: return v;
    case QK_DT_F16: return emit1(c, b, TIR_H2F, tir_t(TS_F32, l), v);
    case QK_DT_BF16: {
        int w = emit1(c, b, TIR_ZEXT, tir_t(TS_I32, l), v);
        w = emit2(c, b, TIR_SHL, w, cis(c, b, TS_I32, l, 16));
        return emit1(c, b, TIR_BITCAST, tir_t(TS_F32, l), w);
    }
    case QK_DT_I8: return emit1(c, b, TIR_SITOFP, tir_t(TS_F32, l), emit1(c, b, TIR_SEXT, tir_t(TS_I32, l), v));
    case QK_DT_U8: return emit1(c, b, TIR_SITOFP, tir_t(TS_F32, l), emit1(c, b, TIR_ZEXT, tir_t(TS_I32, l), v));
    case QK_DT_I32: return emit1(c, b, TIR_SITOFP, tir_t(TS_F32, l), v);
    default: qk_bug("dtype %d", (int)dt);
    }
}

static tir_scalar raw_kind(qk_dtype dt)
{
    switch (dt) {
    case QK_DT_F32: return TS_F32;
    case QK_DT_F16: case QK_DT_BF16: return TS_I16;
    case QK_DT_I32: return TS_I32;
    default: return TS_I8;
    }
}

static int load_dense(bctx *c, int b, const kir_expr *e)
{
    const kir_tensor *t = &c->k->tensors[e->tensor];
    int off = -1, vec = 0, kvec = -1;
    for (int d = 0; d < t->rank; d++) {
        int64_t vcoef;
        int ix = index_node(c, b, &e->idx[d], &vcoef);
        if (vcoef) {
            vec = 1; /* planning guarantees: last dim, coefficient 1 */
            for (int i = 0; i < e->idx[d].nterms; i++)
                if (c->env[e->idx[d].terms[i].var].vec)
                    kvec = c->env[e->idx[d].terms[i].var].kvec;
        }
        if (d < t->rank - 1)
            ix = imul(c, b, ix, c->stride[e->tensor * QK_MAX_RANK + d]);
        off = off < 0 ? ix : iadd(c, b, off, ix);
    }
    if (off < 0)
        off = ci(c, b, 0);
    off = imul(c, b, off, ci(c, b, qk_dtype_size(t->dtype)));
    int lanes = vec ? c->lanes : 1;
    int mask = vec ? c->mask : -1;
    int esz = qk_dtype_size(t->dtype);
    if (vec && kvec >= 0) { /* N:M partner: gathered at the kept items' elements */
        int offs = emit2(c, b, TIR_ADD, splat(c, b, off, lanes), emit2(c, b, TIR_MUL, kvec, cis(c, b, TS_I64, lanes, esz)));
        int v = tir_emit(c->f, b, TIR_GATHER, tir_t(raw_kind(t->dtype), lanes), c->ptr[e->tensor], offs, mask, -1);
        return to_f32(c, b, t->dtype, v);
    }
    if (vec && c->paired) { /* the pair's elements (two chunks from the even one), this half's lanes */
        const kir_index *last = &e->idx[t->rank - 1];
        int h = -1;
        for (int i = 0; i < last->nterms; i++)
            if (c->env[last->terms[i].var].vec)
                h = c->env[last->terms[i].var].offc / lanes % 2;
        qk_assert(h >= 0 && mask < 0);
        int32_t idx[256];
        for (int l = 0; l < lanes; l++)
            idx[l] = tdec_paired_item(l, h);
        int at = h ? emit2(c, b, TIR_SUB, off, ci(c, b, (int64_t)lanes * esz)) : off;
        int v = tir_emit(c->f, b, TIR_LOAD, tir_t(raw_kind(t->dtype), 2 * lanes), c->ptr[e->tensor], at, -1, -1);
        return to_f32(c, b, t->dtype, tir_shuffle(c->f, b, v, lanes, idx));
    }
    int v = tir_emit(c->f, b, TIR_LOAD, tir_t(raw_kind(t->dtype), lanes), c->ptr[e->tensor], off, mask, -1);
    return to_f32(c, b, t->dtype, v);
}

/* ---- quantized decode (tir_decode.c does the work) ---- */

/* Where the row of a quantized load starts: tensor header plus its
 * leading indices linearized over the tensor's leading dims, times the
 * row bytes. */
/* The largest f32 table a LUT takes on t in one or two permutes
 * (llvm_codegen.c's lut): vpermi2ps (32 entries) on AVX-512, vpermps (8)
 * on AVX2, a pair of them for twice that; none elsewhere. */
static int lut_f32_limit(const qk_target *t)
{
    if (t->kind != QK_TARGET_CPU)
        return 0;
    return t->features & QK_FEAT_AVX512F ? 64 : t->features & QK_FEAT_AVX2 ? 16 : 0;
}

static tdec_src quant_src(bctx *c, int b, const kir_expr *e)
{
    const kir_tensor *t = &c->k->tensors[e->tensor];
    int row = -1;
    for (int d = 0; d < t->rank - 1; d++) {
        int64_t vcoef;
        int ix = index_node(c, b, &e->idx[d], &vcoef);
        row = row < 0 ? ix : iadd(c, b, imul(c, b, row, dim_node(c, b, t->dims[d])), ix);
    }
    int off = row < 0 ? ci(c, b, 0) : imul(c, b, row, c->rowbytes[e->tensor]);
    if (t->fmt->tensor_header_bytes)
        off = iadd(c, b, off, ci(c, b, t->fmt->tensor_header_bytes));
    return (tdec_src){t->fmt, c->ptr[e->tensor], off, t->book >= 0 ? c->ptr[t->book] : -1,
                      c->t->kind == QK_TARGET_CPU, lut_f32_limit(c->t),
                      c->t->kind == QK_TARGET_CPU && (c->t->features & QK_FEAT_AVX512VBMI) != 0};
}

/* The chunk of a quantized load bound to the vectorized variable: its
 * items, or for an N:M tensor read densely (no kept-item binding, see
 * plan_sum) its dense elements. */
static int quant_chunk(bctx *c, int b, const tdec_src *src, const binding *bd, unsigned flags)
{
    if (src->fmt->sp_n && bd->kvec < 0)
        return tdec_chunk_dense(c->f, b, src, bd->kb, bd->off, bd->offc, c->lanes, flags);
    return tdec_chunk(c->f, b, src, bd->kb, bd->off, bd->offc, c->lanes, flags | (c->paired ? TDEC_PAIRED : 0));
}

static int load_quant(bctx *c, int b, const kir_expr *e)
{
    const kir_tensor *t = &c->k->tensors[e->tensor];
    const kir_index *last = &e->idx[t->rank - 1];
    tdec_src src = quant_src(c, b, e);
    if (last->nterms == 1 && last->c == 0 && c->env[last->terms[0].var].vec)
        return quant_chunk(c, b, &src, &c->env[last->terms[0].var], 0);
    int64_t vcoef;
    return tdec_element(c->f, b, &src, index_node(c, b, last, &vcoef));
}

static int load(bctx *c, int b, const kir_expr *e)
{
    uint64_t key = index_key(c, e);
    int hit = memo_get(c, key);
    if (hit >= 0)
        return hit;
    const kir_tensor *t = &c->k->tensors[e->tensor];
    int v = t->fmt ? load_quant(c, b, e) : load_dense(c, b, e);
    return memo_put(c, key, v);
}

/* ---- expressions ---- */

static int lower(bctx *c, int b, const kir_expr *e);

/* Rounds an f32 value to dtype dt's precision and range (CAST semantics). */
static int round_to(bctx *c, int b, qk_dtype dt, int v)
{
    int l = lanes_of(c, v);
    switch (dt) {
    case QK_DT_F32: return v;
    case QK_DT_F16: return emit1(c, b, TIR_H2F, tir_t(TS_F32, l), emit1(c, b, TIR_F2H, tir_t(TS_I16, l), v));
    case QK_DT_BF16: {
        int w = emit1(c, b, TIR_BITCAST, tir_t(TS_I32, l), v);
        int lsb = emit2(c, b, TIR_AND, emit2(c, b, TIR_SHR, w, cis(c, b, TS_I32, l, 16)), cis(c, b, TS_I32, l, 1));
        w = emit2(c, b, TIR_ADD, w, emit2(c, b, TIR_ADD, lsb, cis(c, b, TS_I32, l, 0x7fff)));
        w = emit2(c, b, TIR_AND, w, cis(c, b, TS_I32, l, (int64_t)0xffff0000));
        return emit1(c, b, TIR_BITCAST, tir_t(TS_F32, l), w);
    }
    case QK_DT_I8: case QK_DT_U8: case QK_DT_I32: {
        double lo = dt == QK_DT_I8 ? -128 : dt == QK_DT_U8 ? 0 : -2147483648.0;
        double hi = dt == QK_DT_I8 ? 127 : dt == QK_DT_U8 ? 255 : 2147483520.0; /* largest f32 below 2^31 */
        v = emit1(c, b, TIR_FRINT, tir_t(TS_F32, l), v);
        v = fbin(c, b, TIR_FMAX, v, cf(c, b, l, lo));
        return fbin(c, b, TIR_FMIN, v, cf(c, b, l, hi));
    }
    default: qk_bug("cast to %d", (int)dt);
    }
}

/* exp-based tanh: 1 - 2 / (exp(2x) + 1); exact limits at +-inf. */
static int tanh_of(bctx *c, int b, int x)
{
    int l = lanes_of(c, x);
    int e = emit1(c, b, TIR_FEXP, tir_t(TS_F32, l), fbin(c, b, TIR_FADD, x, x));
    int d = fbin(c, b, TIR_FDIV, cf(c, b, l, 2), fbin(c, b, TIR_FADD, e, cf(c, b, l, 1)));
    return fbin(c, b, TIR_FSUB, cf(c, b, l, 1), d);
}

static int lower_unary(bctx *c, int b, int op, int x)
{
    int l = lanes_of(c, x);
    tir_type t = tir_t(TS_F32, l);
    switch (op) {
    case KU_NEG: return emit1(c, b, TIR_FNEG, t, x);
    case KU_RELU: return fbin(c, b, TIR_FMAX, x, cf(c, b, l, 0));
    case KU_EXP: return emit1(c, b, TIR_FEXP, t, x);
    case KU_ABS: return emit1(c, b, TIR_FABS, t, x);
    case KU_SQRT: return emit1(c, b, TIR_FSQRT, t, x);
    case KU_TANH: return tanh_of(c, b, x);
    case KU_SILU: {
        int e = emit1(c, b, TIR_FEXP, t, emit1(c, b, TIR_FNEG, t, x));
        return fbin(c, b, TIR_FDIV, x, fbin(c, b, TIR_FADD, cf(c, b, l, 1), e));
    }
    case KU_GELU: {
        /* 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)): the same function
         * without the cancellation of 1 + tanh(u) for very negative u,
         * where the tanh form gave -0 for values near -1e-10 */
        int x3 = fbin(c, b, TIR_FMUL, fbin(c, b, TIR_FMUL, x, x), x);
        int in = fbin(c, b, TIR_FADD, x, fbin(c, b, TIR_FMUL, cf(c, b, l, 0.044715), x3));
        int e = emit1(c, b, TIR_FEXP, t, fbin(c, b, TIR_FMUL, cf(c, b, l, -2 * 0.7978845608028654), in));
        return fbin(c, b, TIR_FDIV, x, fbin(c, b, TIR_FADD, cf(c, b, l, 1), e));
    }
    default: qk_bug("unary op %d", op);
    }
}

static const tir_op binops[KB_COUNT] = {
    [KB_ADD] = TIR_FADD, [KB_SUB] = TIR_FSUB, [KB_MUL] = TIR_FMUL,
    [KB_DIV] = TIR_FDIV, [KB_MAX] = TIR_FMAX, [KB_MIN] = TIR_FMIN,
};

static int lower_sum_scalar(bctx *c, int b, const kir_expr *e);

static int lower(bctx *c, int b, const kir_expr *e)
{
    switch (e->kind) {
    case KE_CONST: return cf(c, b, 1, e->value);
    case KE_LOAD: return load(c, b, e);
    case KE_BIN: {
        int x = lower(c, b, e->a), y = lower(c, b, e->b);
        return fbin(c, b, binops[e->op], x, y);
    }
    case KE_UN: return lower_unary(c, b, e->op, lower(c, b, e->a));
    case KE_CAST: return round_to(c, b, (qk_dtype)e->op, lower(c, b, e->a));
    case KE_SUM:
        for (int i = 0; i < c->nsumval; i++)
            if (c->sumexpr[i] == e)
                return c->sumval[i];
        return lower_sum_scalar(c, b, e);
    case KE_QUANT:
    case KE_HADAMARD: break; /* statement forms: build_transform */
    }
    qk_bug("expr kind %d", (int)e->kind);
}

/* ---- binary x binary: XNOR / popcount ---- */

/* The code piece of a sign-bit format whose codes are one plain bit
 * string (one STREAM piece of width 1 at a byte boundary), or NULL. */
static const qk_piece *bit_string(const qk_format *f)
{
    if (!f || f->code != QK_CODE_BINARY || f->sp_n || f->zero != QK_ZERO_NONE || !tdec_scale_factorable(f) ||
        f->block % 8)
        return NULL;
    const qk_piece *found = NULL;
    for (int i = 0; i < f->npieces; i++)
        if (f->pieces[i].field == QK_FIELD_CODES) {
            const qk_piece *pc = &f->pieces[i];
            if (found || pc->place != QK_PLACE_STREAM || pc->width != 1 || pc->shift || pc->first ||
                pc->count != f->items[QK_FIELD_CODES])
                return NULL;
            found = pc;
        }
    return found;
}

/* 1 if load e reads a sign-bit tensor along variable v only (last index). */
/* 1 if load e reads a quantized tensor along variable v in its last index
 * only (coefficient 1, no offset). */
static int along_last(bctx *c, const kir_expr *e, int v)
{
    if (e->kind != KE_LOAD || !c->k->tensors[e->tensor].fmt)
        return 0;
    const kir_tensor *t = &c->k->tensors[e->tensor];
    const kir_index *last = &e->idx[t->rank - 1];
    if (last->nterms != 1 || last->terms[0].var != v || last->terms[0].coef != 1 || last->c)
        return 0;
    for (int d = 0; d + 1 < t->rank; d++)
        for (int i = 0; i < e->idx[d].nterms; i++)
            if (e->idx[d].terms[i].var == v)
                return 0;
    return 1;
}

static int xnor_operand(bctx *c, const kir_expr *e, int v)
{
    return along_last(c, e, v) && bit_string(c->k->tensors[e->tensor].fmt);
}

/* A sign-bit row that is one plain bit string: blocks of whole 64-bit
 * words holding only codes, and no scale that varies along the row. */
static int xnor_flat(const qk_format *f, const qk_piece *p)
{
    return f->block % 64 == 0 && f->block_bytes * 8 == f->block && p->byte == 0 && f->scale_per != QK_PER_BLOCK &&
           !f->sub_block && f->min_num == QK_NUM_NONE && f->zero == QK_ZERO_NONE;
}

/* popcount(a xor b) over `nw` 64-bit words from byte offsets oa, ob of
 * the two rows, L words per vector step (the last step masked), into
 * the i64 VAR pop (L lanes). With cfg.prefetch, each unmasked step asks
 * for the line cfg.prefetch bytes ahead of a's (pf & 1) and b's (pf & 2)
 * words: rows lie one after the other, so that runs into the rows the
 * same stream reads next (xnor at 8192^2 on one Zen 5 core: 13 -> 24
 * GB/s cold with 4096). */
static void xnor_words(bctx *c, int b, int pa, int oa, int pb, int ob, int nw, int L, int pop, int pf)
{
    int nvec = emit2(c, b, TIR_SUB, nw, emit2(c, b, TIR_REM, nw, ci(c, b, L)));
    for (int masked = 0; masked < 2; masked++) {
        int body, lo = masked ? nvec : ci(c, b, 0), hi = masked ? nw : nvec;
        int i = tir_loop(c->f, b, lo, hi, ci(c, b, L), TL_SERIAL, masked ? "wt" : "w", &body);
        int m = -1;
        if (masked) {
            int32_t iv[64];
            for (int l = 0; l < L; l++)
                iv[l] = l;
            int idx = emit2(c, body, TIR_ADD, splat(c, body, i, L), tir_const_lanes(c->f, body, TS_I64, L, iv));
            m = tir_emit(c->f, body, TIR_ILT, tir_t(TS_I1, L), idx, splat(c, body, nw, L), -1, -1);
        }
        int at = imul(c, body, i, ci(c, body, 8));
        for (int o = 0; o < 2 && !masked && c->cfg.prefetch > 0; o++)
            if (pf >> o & 1)
                tir_emit(c->f, body, TIR_PREFETCH, tir_t(TS_VOID, 1), o ? pb : pa,
                         iadd(c, body, o ? ob : oa, iadd(c, body, at, ci(c, body, c->cfg.prefetch))), -1, -1);
        c->pf_site |= pf != 0;
        int va = tir_emit(c->f, body, TIR_LOAD, tir_t(TS_I64, L), pa, iadd(c, body, oa, at), m, -1);
        int vb = tir_emit(c->f, body, TIR_LOAD, tir_t(TS_I64, L), pb, iadd(c, body, ob, at), m, -1);
        int cnt = emit1(c, body, TIR_POPCNT, tir_t(TS_I64, L), emit2(c, body, TIR_XOR, va, vb));
        int cur = emit1(c, body, TIR_VGET, tir_t(TS_I64, L), pop);
        tir_emit(c->f, body, TIR_VSET, tir_t(TS_VOID, 1), pop, iadd(c, body, cur, cnt), -1, -1);
    }
}

/* The row form of lower_sum_xnor (both operands xnor_flat on a CPU
 * target): the whole words of the rows in vectors of 64-bit lanes, the
 * last partial word masked to the extent, one scale product per row. */
static int lower_sum_xnor_row(bctx *c, int b, const tdec_src *sa, const tdec_src *sb, int E, int pf)
{
    int L = c->t->vector_bits / 64;
    int oa = iadd(c, b, sa->row, ci(c, b, sa->fmt->row_header_bytes));
    int ob = iadd(c, b, sb->row, ci(c, b, sb->fmt->row_header_bytes));
    int pop = tir_emit(c->f, b, TIR_VAR, tir_t(TS_I64, L), cis(c, b, TS_I64, L, 0), -1, -1, -1);
    int nfull = emit2(c, b, TIR_DIV, E, ci(c, b, 64));
    xnor_words(c, b, sa->ptr, oa, sb->ptr, ob, nfull, L, pop, pf);
    int v = emit1(c, b, TIR_VGET, tir_t(TS_I64, L), pop);
    int total = -1;
    for (int l = 0; l < L; l++) {
        int x = tir_emit(c->f, b, TIR_EXTRACT, tir_t(TS_I64, 1), v, -1, -1, -1);
        c->f->nodes[x].imm = l;
        total = total < 0 ? x : iadd(c, b, total, x);
    }
    /* the partial word, if any: its bits below E - 64 * nfull */
    int tail = tir_emit(c->f, b, TIR_VAR, tir_t(TS_I64, 1), total, -1, -1, -1);
    int tb;
    int w = tir_loop(c->f, b, nfull, emit2(c, b, TIR_DIV, iadd(c, b, E, ci(c, b, 63)), ci(c, b, 64)), ci(c, b, 1),
                     TL_SERIAL, "wp", &tb);
    int at = imul(c, tb, w, ci(c, tb, 8));
    int x = emit2(c, tb, TIR_XOR, tir_emit(c->f, tb, TIR_LOAD, tir_t(TS_I64, 1), sa->ptr, iadd(c, tb, oa, at), -1, -1),
                  tir_emit(c->f, tb, TIR_LOAD, tir_t(TS_I64, 1), sb->ptr, iadd(c, tb, ob, at), -1, -1));
    int rem = emit2(c, tb, TIR_SUB, E, imul(c, tb, w, ci(c, tb, 64)));
    int m = emit2(c, tb, TIR_SUB, emit2(c, tb, TIR_SHL, ci(c, tb, 1), rem), ci(c, tb, 1));
    int cur = emit1(c, tb, TIR_VGET, tir_t(TS_I64, 1), tail);
    tir_emit(c->f, tb, TIR_VSET, tir_t(TS_VOID, 1), tail,
             iadd(c, tb, cur, emit1(c, tb, TIR_POPCNT, tir_t(TS_I64, 1), emit2(c, tb, TIR_AND, x, m))), -1, -1);
    int pc = emit1(c, b, TIR_VGET, tir_t(TS_I64, 1), tail);
    int dot = emit2(c, b, TIR_SUB, E, iadd(c, b, pc, pc));
    int fd = emit1(c, b, TIR_SITOFP, tir_t(TS_F32, 1), emit1(c, b, TIR_TRUNC, tir_t(TS_I32, 1), dot));
    int z = ci(c, b, 0);
    return fbin(c, b, TIR_FMUL, fd, fbin(c, b, TIR_FMUL, tdec_scale(c->f, b, sa, z), tdec_scale(c->f, b, sb, z)));
}

/* sum(k) A[.., k] * W[.., k] over two sign-bit tensors of one block size:
 * per block, dot = valid - 2 * popcount((a xor w) & valid bits), times
 * both block scales. Words of up to 64 bits. */
static int lower_sum_xnor(bctx *c, int b, const kir_expr *e)
{
    const kir_expr *xa = e->a->a, *xb = e->a->b;
    const qk_format *fa = c->k->tensors[xa->tensor].fmt, *fb = c->k->tensors[xb->tensor].fmt;
    int B = fa->block, W = B % 64 == 0 ? 64 : B % 32 == 0 ? 32 : B % 16 == 0 ? 16 : 8;
    tir_scalar ws = W == 64 ? TS_I64 : W == 32 ? TS_I32 : W == 16 ? TS_I16 : TS_I8;
    const qk_piece *pa = bit_string(fa), *pb = bit_string(fb);
    int E = dim_node(c, b, c->k->vars[e->vars[0]].extent);
    tdec_src sa = quant_src(c, b, xa), sb = quant_src(c, b, xb);
    if (c->t->kind == QK_TARGET_CPU && c->t->vector_bits >= 128 && xnor_flat(fa, pa) && xnor_flat(fb, pb)) {
        /* prefetch the operands that are weights: parameters of rank 2 or more */
        const kir_tensor *ta = &c->k->tensors[xa->tensor], *tb = &c->k->tensors[xb->tensor];
        int pf = (ta->kind == KIR_PARAM && ta->rank >= 2) | (tb->kind == KIR_PARAM && tb->rank >= 2) << 1;
        return lower_sum_xnor_row(c, b, &sa, &sb, E, pf);
    }
    int acc = tir_emit(c->f, b, TIR_VAR, tir_t(TS_F32, 1), cf(c, b, 1, 0), -1, -1, -1);
    c->f->nodes[acc].name = "acc";
    int nb = emit2(c, b, TIR_DIV, iadd(c, b, E, ci(c, b, B - 1)), ci(c, b, B));
    int body;
    int kb = tir_loop(c->f, b, ci(c, b, 0), nb, ci(c, b, 1), TL_SERIAL, "kb", &body);
    int valid = emit2(c, body, TIR_MIN, emit2(c, body, TIR_SUB, E, imul(c, body, kb, ci(c, body, B))), ci(c, body, B));
    int oa = iadd(c, body, iadd(c, body, sa.row, imul(c, body, kb, ci(c, body, fa->block_bytes))),
                  ci(c, body, fa->row_header_bytes + pa->byte));
    int ob = iadd(c, body, iadd(c, body, sb.row, imul(c, body, kb, ci(c, body, fb->block_bytes))),
                  ci(c, body, fb->row_header_bytes + pb->byte));
    int pop = tir_emit(c->f, body, TIR_VAR, tir_t(TS_I64, 1), ci(c, body, 0), -1, -1, -1);
    int wb;
    int w = tir_loop(c->f, body, ci(c, body, 0), ci(c, body, B / W), ci(c, body, 1), TL_UNROLL, "w", &wb);
    int wo = imul(c, wb, w, ci(c, wb, W / 8));
    int va = tir_emit(c->f, wb, TIR_LOAD, tir_t(ws, 1), sa.ptr, iadd(c, wb, oa, wo), -1, -1);
    int vb = tir_emit(c->f, wb, TIR_LOAD, tir_t(ws, 1), sb.ptr, iadd(c, wb, ob, wo), -1, -1);
    int x = emit2(c, wb, TIR_XOR, va, vb);
    if (W < 64)
        x = emit1(c, wb, TIR_ZEXT, tir_t(TS_I64, 1), x);
    /* bits of this word inside the valid range: clamp(valid - w*W, 0, W) */
    int nbits = emit2(c, wb, TIR_MAX, emit2(c, wb, TIR_MIN, emit2(c, wb, TIR_SUB, valid, imul(c, wb, w, ci(c, wb, W))),
                                            ci(c, wb, W)), ci(c, wb, 0));
    int full = tir_emit(c->f, wb, TIR_ILT, tir_t(TS_I1, 1), emit2(c, wb, TIR_SUB, nbits, ci(c, wb, 1)), ci(c, wb, 63),
                        -1, -1);
    int part = emit2(c, wb, TIR_SUB, emit2(c, wb, TIR_SHL, ci(c, wb, 1), emit2(c, wb, TIR_MIN, nbits, ci(c, wb, 63))),
                     ci(c, wb, 1));
    int m = tir_emit(c->f, wb, TIR_SELECT, tir_t(TS_I64, 1), full, part, ci(c, wb, -1), -1);
    int cnt = emit1(c, wb, TIR_POPCNT, tir_t(TS_I64, 1), emit2(c, wb, TIR_AND, x, m));
    int cur = emit1(c, wb, TIR_VGET, tir_t(TS_I64, 1), pop);
    tir_emit(c->f, wb, TIR_VSET, tir_t(TS_VOID, 1), pop, iadd(c, wb, cur, cnt), -1, -1);
    int pc = emit1(c, body, TIR_VGET, tir_t(TS_I64, 1), pop);
    int dot = emit2(c, body, TIR_SUB, valid, iadd(c, body, pc, pc));
    int fd = emit1(c, body, TIR_SITOFP, tir_t(TS_F32, 1), emit1(c, body, TIR_TRUNC, tir_t(TS_I32, 1), dot));
    int sc = fbin(c, body, TIR_FMUL, tdec_scale(c->f, body, &sa, kb), tdec_scale(c->f, body, &sb, kb));
    int now = emit1(c, body, TIR_VGET, tir_t(TS_F32, 1), acc);
    tir_emit(c->f, body, TIR_VSET, tir_t(TS_VOID, 1), acc, tir_emit(c->f, body, TIR_FMA, tir_t(TS_F32, 1), fd, sc, now, -1),
             -1, -1);
    return emit1(c, b, TIR_VGET, tir_t(TS_F32, 1), acc);
}

static int is_xnor(bctx *c, const kir_expr *e)
{
    const kir_expr *m = e->a;
    return e->nvars == 1 && m->kind == KE_BIN && m->op == KB_MUL && xnor_operand(c, m->a, e->vars[0]) &&
           xnor_operand(c, m->b, e->vars[0]) &&
           c->k->tensors[m->a->tensor].fmt->block == c->k->tensors[m->b->tensor].fmt->block;
}

/* A reduction lowered as plain scalar loops with one accumulator: the
 * general path (nested sums, non-contiguous reductions, GPU threads). */
static int lower_sum_scalar(bctx *c, int b, const kir_expr *e)
{
    if (is_xnor(c, e))
        return lower_sum_xnor(c, b, e);
    int saved_lanes = c->lanes, saved_mask = c->mask, saved_memo = c->nmemo;
    int acc = tir_emit(c->f, b, TIR_VAR, tir_t(TS_F32, 1), cf(c, b, 1, 0), -1, -1, -1);
    c->f->nodes[acc].name = "acc";
    int body = b;
    for (int i = 0; i < e->nvars; i++) {
        const kir_var *v = &c->k->vars[e->vars[i]];
        int lp = tir_loop(c->f, body, ci(c, body, 0), dim_node(c, body, v->extent), ci(c, body, 1), TL_SERIAL, v->name,
                          &body);
        c->env[e->vars[i]] = (binding){lp, 0, -1, -1, -1, -1};
    }
    c->lanes = 1;
    c->mask = -1;
    int val = lower(c, body, e->a);
    int cur = emit1(c, body, TIR_VGET, tir_t(TS_F32, 1), acc);
    tir_emit(c->f, body, TIR_VSET, tir_t(TS_VOID, 1), acc, fbin(c, body, TIR_FADD, cur, val), -1, -1);
    c->lanes = saved_lanes;
    c->mask = saved_mask;
    c->nmemo = saved_memo; /* loads inside the loops are not visible after them */
    return emit1(c, b, TIR_VGET, tir_t(TS_F32, 1), acc);
}

/* ---- fusion: temps and earlier results are substituted ---- */

/* ix with every variable that has a substitution in map replaced. */
static int subst_index(bctx *c, const kir_index *ix, kir_index **map, kir_index *out)
{
    *out = (kir_index){.c = ix->c};
    for (int i = 0; i < ix->nterms; i++) {
        const kir_index *r = map[ix->terms[i].var];
        kir_index one = {.nterms = 1};
        one.terms[0].var = ix->terms[i].var;
        one.terms[0].coef = 1;
        if (!r)
            r = &one;
        int64_t a = ix->terms[i].coef;
        out->c += a * r->c;
        for (int j = 0; j < r->nterms; j++) {
            int t = 0;
            while (t < out->nterms && out->terms[t].var != r->terms[j].var)
                t++;
            if (t == out->nterms) {
                if (t == KIR_MAX_TERMS)
                    return fail(c, "index expression of '%s' has too many terms after fusing intermediates",
                                c->k->name);
                out->terms[out->nterms++].var = r->terms[j].var;
            }
            out->terms[t].coef += a * r->terms[j].coef;
        }
    }
    return 0;
}

static kir_expr *expand(bctx *c, const kir_expr *e, kir_index **map, int depth);

static kir_expr *expand_load(bctx *c, const kir_expr *e, kir_index **map, int depth)
{
    const kir_tensor *t = &c->k->tensors[e->tensor];
    kir_index *idx = qk_alloc(c->a, (size_t)(t->rank ? t->rank : 1) * sizeof *idx);
    for (int d = 0; d < t->rank; d++)
        if (subst_index(c, &e->idx[d], map, &idx[d]))
            return NULL;
    if (t->kind == KIR_PARAM || t->def_stmt < 0 || t->materialized) {
        kir_expr *n = qk_alloc(c->a, sizeof *n);
        *n = *e;
        n->idx = idx;
        return n;
    }
    if (depth > 64) {
        fail(c, "intermediates of '%s' nest too deeply to fuse", c->k->name);
        return NULL;
    }
    const kir_stmt *def = &c->k->stmts[t->def_stmt];
    kir_index **m2 = qk_alloc(c->a, (size_t)c->k->nvars * sizeof *m2);
    for (int i = 0; i < def->nlhs; i++)
        m2[def->lhs[i]] = &idx[i];
    kir_expr *body = expand(c, def->rhs, m2, depth + 1);
    if (!body || t->kind != KIR_RESULT || t->dtype == QK_DT_F32)
        return body;
    kir_expr *cast = qk_alloc(c->a, sizeof *cast); /* a stored result is read back rounded */
    *cast = (kir_expr){.kind = KE_CAST, .loc = e->loc, .op = t->dtype, .a = body};
    return cast;
}

static kir_expr *expand(bctx *c, const kir_expr *e, kir_index **map, int depth)
{
    if (!e || c->failed)
        return NULL;
    if (e->kind == KE_LOAD)
        return expand_load(c, e, map, depth);
    kir_expr *n = qk_alloc(c->a, sizeof *n);
    *n = *e;
    if (e->a && !(n->a = expand(c, e->a, map, depth)))
        return NULL;
    if (e->b && !(n->b = expand(c, e->b, map, depth)))
        return NULL;
    return n;
}

/* ---- planning a top-level reduction ---- */

typedef struct plan {
    int vec;    /* innermost variable vectorized */
    int lanes;  /* V */
    int block;  /* quantized block B along it, or 0 for dense-only */
    int items;  /* items per block the chunks walk: B, or the kept items of an N:M tensor */
    const kir_expr *sparse; /* the N:M load that drives the loop (its kept items), or NULL */
    const kir_expr *ssel;   /* ternary/binary load multiplied by a dense operand: sign-select, or NULL */
    const kir_expr *fsc;    /* other quantized load multiplied by a dense operand whose block scale factors
                               out: its unscaled values times the operand go to a partial sum per block,
                               scaled once per block; or NULL */
    int nquant; /* quantized loads along the variable */
    /* integer dot products (DOT4): u-operand (integer image) x s-operand
     * (signed bytes), in chunks of cb byte lanes, scales once per group */
    int idot;
    int dot_mode; /* tir_dot_mode of the DOT4s */
    const kir_expr *uop, *sop;
    tdec_image img;
    int cb, group;
    int sums_s;   /* the u-operand's affine form has an add term: needs sum(s) */
    int fold;     /* ... which is only the image offset: dot starts at off * sum(s) */
    int icomb;    /* an image of several bytes: their dots (and the fold) add up in i32 lanes
                     (else each byte's dot is scaled in f32) */
} plan;

static int pow2_floor(int x)
{
    int p = 1;
    while (p * 2 <= x)
        p *= 2;
    return p;
}

/* Checks one subtree of a sum body for vectorization over variable v. */
static int plan_walk(bctx *c, const kir_expr *e, int v, plan *p)
{
    if (!e)
        return 1;
    if (e->kind == KE_SUM)
        return 0;
    if (e->kind != KE_LOAD)
        return plan_walk(c, e->a, v, p) && plan_walk(c, e->b, v, p);
    const kir_tensor *t = &c->k->tensors[e->tensor];
    for (int d = 0; d < t->rank; d++)
        for (int i = 0; i < e->idx[d].nterms; i++) {
            if (e->idx[d].terms[i].var != v)
                continue;
            if (d != t->rank - 1 || e->idx[d].terms[i].coef != 1)
                return 0;
            if (t->fmt && (e->idx[d].nterms != 1 || e->idx[d].c != 0))
                return 0;
            if (t->fmt) {
                if (p->block && p->block != t->fmt->block)
                    return 0;
                p->block = t->fmt->block;
                p->nquant++;
                if (t->fmt->sp_n)
                    p->sparse = e;
            }
        }
    return 1;
}


/* The ternary or sign-bit load of a product body `W * x` (either order)
 * whose other factor reads no quantized tensor, when W's scale factors
 * out of a block and it has no zero point: such products become selects
 * and adds, and the scale one multiply per block. */
/* Side i (0 or 1) of a product body when it is a load of a quantized
 * tensor (*f its format), else NULL. */
static const kir_expr *product_quant(bctx *c, const kir_expr *body, int i, const qk_format **f)
{
    if (body->kind != KE_BIN || body->op != KB_MUL)
        return NULL;
    const kir_expr *w = i ? body->b : body->a;
    *f = w->kind == KE_LOAD ? c->k->tensors[w->tensor].fmt : NULL;
    return *f ? w : NULL;
}

static const kir_expr *sign_operand(bctx *c, const kir_expr *body)
{
    for (int i = 0; i < 2; i++) {
        const qk_format *f;
        const kir_expr *w = product_quant(c, body, i, &f);
        if (w && (f->code == QK_CODE_TERNARY || f->code == QK_CODE_BINARY) && f->zero == QK_ZERO_NONE &&
            !f->sp_n && tdec_scale_factorable(f))
            return w;
    }
    return NULL;
}

/* The quantized load of a product body `W * x` (either order) whose
 * block scale factors out and does some work: a scale (or a code factor
 * the decode can leave out, tdec_code_factor) and several chunks of V
 * lanes per block (else a partial sum saves nothing). Its products go to
 * a partial sum per block (emit_block_loop), scaled once at its end. */
static const kir_expr *factored_operand(bctx *c, const kir_expr *body, int V, int items)
{
    for (int i = 0; i < 2; i++) {
        const qk_format *f;
        const kir_expr *w = product_quant(c, body, i, &f);
        if (!w || f->code == QK_CODE_VQ || !tdec_scale_factorable(f))
            continue;
        int scaled = f->scale_per != QK_PER_NONE || f->tensor_scale || tdec_code_factor(f, V) != 1.0;
        if (scaled && (items / V >= 2 || tdec_code_factor(f, V) != 1.0))
            return w;
    }
    return NULL;
}

/* The DOT4 mode the target multiplies natively: signed x signed where it
 * has a signed dot product (sdot) but no unsigned x signed one (x86 VNNI,
 * AArch64 i8mm, which qk_target does not name); else unsigned x signed
 * (vpdpbusd, or exact widening multiplies anywhere). */
static int dot_mode(const qk_target *t)
{
    unsigned us = QK_FEAT_AVX512VNNI | QK_FEAT_AVXVNNI;
    return (t->features & QK_FEAT_DOTPROD) && !(t->features & us) ? TIR_DOT_SS : TIR_DOT_US;
}

/* The largest byte table a LUT over cb-byte index vectors takes on t in
 * one or two permutes (llvm_codegen.c's lut): vpshufb (16 entries, AVX2 or
 * AVX-512BW), vpermi2b (2 x the vector bytes, AVX-512 VBMI; 256 as two),
 * AArch64 tbl1/tbl4 (64); 0 elsewhere, where decoding is cheaper. */
static int lut_limit(const qk_target *t, int cb)
{
    int w = cb < 16 ? 16 : cb > 64 ? 64 : cb;
    if (t->kind != QK_TARGET_CPU)
        return 256;
    if ((t->features & QK_FEAT_AVX512VBMI) && (w == 64 || (t->features & QK_FEAT_AVX512VL)))
        return w == 64 ? 256 : 2 * w;
    if ((t->features & QK_FEAT_AVX2) && (w < 64 || (t->features & QK_FEAT_AVX512BW)))
        return 16;
    if (t->features & QK_FEAT_NEON)
        return 64;
    return 0;
}

/* Rows per group of the row-interleaved layout: repack=R, or for
 * repack=1 qkc's choice, one vector of i32 lanes (at most 16). */
static int repack_rows(const bctx *c)
{
    if (c->cfg.repack != 1)
        return c->cfg.repack;
    return c->t->vector_bits >= 512 ? 16 : c->t->vector_bits >= 256 ? 8 : 4;
}

/* 1 if the int8 operand t never holds -128 (the sign-magnitude image
 * negates it): codes quantize()d in the kernel with an e8m0 block scale,
 * which rounds the scale up, so |x| / scale <= 127 (docs/architecture.md).
 * A parameter may hold any byte; q8_0's f16 scale quantizes groups whose
 * largest |x| is below 2^-128 * 127 to -128 (1 / scale overflows). */
static int never_min(bctx *c, int t)
{
    const kir_tensor *kt = &c->k->tensors[t];
    const qk_format *f = kt->fmt;
    return kt->kind == KIR_TEMP && f && f->code == QK_CODE_SINT && f->bits == 8 && f->scale_per == QK_PER_BLOCK &&
           f->scale_num == QK_NUM_E8M0 && !f->sub_block && !f->tensor_scale;
}

/* Integer dot-product plan for sum(k) A[.., k] * B[.., k] where one factor
 * has signed-byte codes and the other an integer image (tir_decode.h):
 * per chunk one DOT4, per scale group two multiply-adds. The loop walks
 * blocks of the larger block size; chunks and groups divide both. */
static int plan_idot(bctx *c, const kir_expr *e, plan *p)
{
    const kir_expr *body = e->a;
    int v = e->vars[e->nvars - 1];
    if (!c->cfg.idot || c->t->kind != QK_TARGET_CPU || body->kind != KE_BIN || body->op != KB_MUL ||
        !along_last(c, body->a, v) || !along_last(c, body->b, v))
        return 0;
    const kir_expr *side[2] = {body->a, body->b};
    if (side[0]->tensor == c->idot_u) { /* the caller wants this tensor as u: try it first */
        side[0] = body->b;
        side[1] = body->a;
    }
    for (int i = 0; i < 2; i++) {
        const kir_expr *s = side[i], *u = side[1 - i];
        const qk_format *fs = c->k->tensors[s->tensor].fmt, *fu = c->k->tensors[u->tensor].fmt;
        tdec_image img;
        if (!tdec_is_s8(fs))
            continue;
        /* sign-magnitude codes (e4m3) take the row-interleaved layout's
         * 4R-byte vectors only, where a 128-entry table is one vpermi2b */
        if (!tdec_int_image(fu, 256, TDEC_PLANES, &img) &&
            !(c->cfg.repack && dot_mode(c->t) == TIR_DOT_US && lut_limit(c->t, 4 * repack_rows(c)) >= 128 &&
              never_min(c, s->tensor) && tdec_int_image_sgn(fu, TDEC_PLANES, &img)))
            continue;
        int B = fs->block > fu->block ? fs->block : fu->block, b = fs->block + fu->block - B;
        if (B % b)
            continue;
        int gs = tdec_group(fs), gu = tdec_group(fu);
        int G = gs && gu ? (gs < gu ? gs : gu) : gs ? gs : gu ? gu : b;
        if ((gs && gs % G) || (gu && gu % G) || b % G)
            continue;
        int cb = c->cfg.idot_bytes > 0 ? c->cfg.idot_bytes : 32;
        if (cb > c->t->vector_bits / 8)
            cb = c->t->vector_bits / 8;
        if (cb > 4 * c->cfg.lanes) /* no wider than the configured vectors */
            cb = 4 * c->cfg.lanes;
        cb = pow2_floor(cb);
        while (cb >= 4 && G % cb)
            cb /= 2;
        if (cb < 4 || B / cb > 32 || (img.kind == TDEC_IMG_LUT && !img.sgn && img.nlut > lut_limit(c->t, cb)) ||
            (fu->sp_n && cb % fu->sp_m)) /* N:M: chunks of whole groups (tdec_codes_u8) */
            continue;
        int mode = dot_mode(c->t);
        if (mode == TIR_DOT_SS && !tdec_image_signed(fu, &img)) /* u as signed bytes: may move 128 into the offset */
            continue;
        *p = (plan){.vec = 1, .lanes = cb / 4, .block = B, .items = B, .nquant = 2, .idot = 1, .uop = u, .sop = s,
                    .img = img, .cb = cb, .group = G, .dot_mode = mode};
        p->sums_s = img.off != 0 || fu->zero != QK_ZERO_NONE || fu->min_num != QK_NUM_NONE;
        /* the fold's off * sum(s) and byte 0's dot share an i32 lane */
        p->fold = p->sums_s && fu->zero == QK_ZERO_NONE && fu->min_num == QK_NUM_NONE &&
                  (fabs((double)img.off) + 255) * 128 * G < 2147483647.0;
        /* a NaN flag's dot may wrap: its rows become NaN (rowpack_nan_rows) */
        double umax = img.sgn ? img.umax : ldexp(1.0, 8 * img.planes);
        p->icomb = img.planes > 1 && (fabs((double)img.off) + umax) * 128 * G < 2147483647.0;
        return 1;
    }
    return 0;
}

/* An N:M tensor drives the loop over its kept items; every other operand
 * is then gathered at their positions, so it must be dense. */
static plan plan_sum(bctx *c, const kir_expr *e)
{
    plan p = {0};
    if (plan_idot(c, e, &p))
        return p;
    if (!plan_walk(c, e->a, e->vars[e->nvars - 1], &p))
        return (plan){0};
    int v = pow2_floor(c->cfg.lanes);
    if (p.sparse && c->t->kind == QK_TARGET_CPU) {
        /* CPUs read an N:M tensor densely (tdec_chunk_dense): the other
         * operands are loaded in place, not gathered at the kept items
         * (a gather of 16 lanes costs more than expanding 16 weights) */
        int M = c->k->tensors[p.sparse->tensor].fmt->sp_m, w = v;
        while (w > 1 && p.block % w)
            w /= 2;
        if (w % M == 0)
            p.sparse = NULL;
    }
    if (p.sparse && p.nquant > 1)
        return (plan){0};
    p.items = p.block;
    if (p.sparse) {
        const qk_format *fm = c->k->tensors[p.sparse->tensor].fmt;
        p.items = fm->kept;
    }
    if (p.block)
        while (v > 1 && p.items % v)
            v /= 2;
    if (p.nquant == 1 && !p.sparse)
        p.ssel = sign_operand(c, e->a);
    if (p.nquant == 1 && !p.ssel && p.block)
        p.fsc = factored_operand(c, e->a, v, p.items);
    p.vec = 1;
    p.lanes = v;
    return p;
}

static int same_dim(kir_dim a, kir_dim b)
{
    return a.sym == b.sym && a.c == b.c;
}

static int same_group(bctx *c, const kir_expr *x, plan px, const kir_expr *y, plan py)
{
    if (!px.vec || !py.vec || px.lanes != py.lanes || px.block != py.block || x->nvars != y->nvars ||
        px.sparse || py.sparse || px.idot || py.idot)
        return 0;
    for (int i = 0; i < x->nvars; i++)
        if (!same_dim(c->k->vars[x->vars[i]].extent, c->k->vars[y->vars[i]].extent))
            return 0;
    return 1;
}

/* Top-level sums of e (not nested in other sums). */
static void collect_sums(const kir_expr *e, const kir_expr **out, int *n)
{
    if (!e)
        return;
    if (e->kind == KE_SUM) {
        if (*n < MAX_SUMS)
            out[(*n)++] = e;
        return;
    }
    collect_sums(e->a, out, n);
    collect_sums(e->b, out, n);
}

/* ---- emission of one statement ---- */

typedef struct point {
    int par, inner; /* i64 nodes binding the parallel and the register-tiled LHS variables */
} point;

typedef struct stmt_ctx {
    const kir_stmt *st;
    const kir_expr *rhs; /* expanded */
    int par, inner;      /* positions in st->lhs, or -1 */
    int np, ni;          /* tile sizes */
    const kir_expr *sums[MAX_SUMS];
    plan plans[MAX_SUMS];
    int group[MAX_SUMS];
    int nsums;
    int rowpack;         /* the weights of plans[0] are row-interleaved (cfg.repack): 1, integer
                            dots; 2, f32 products (rowpack_f32_fit) */
    int presums;         /* 1: the int8 operand's group sums come from rowpack_sums */
    qk_rowpack rp;
} stmt_ctx;

static void bind_point(bctx *c, const stmt_ctx *s, const point *pt)
{
    if (s->par >= 0)
        c->env[s->st->lhs[s->par]] = (binding){pt->par, 0, -1, -1, -1, -1};
    if (s->inner >= 0)
        c->env[s->st->lhs[s->inner]] = (binding){pt->inner, 0, -1, -1, -1, -1};
}

/* acc += body for one sum at one point, in the current chunk. */
/* sum += (code of w) * x for a ternary/sign-bit w, with selects and
 * adds: -x, 0, x (or 2x for a 2-bit ternary 3). */
static int sign_select(bctx *c, int b, const kir_expr *w, int x)
{
    int L = c->lanes;
    const kir_index *last = &w->idx[c->k->tensors[w->tensor].rank - 1];
    const binding *bd = &c->env[last->terms[0].var];
    tdec_src src = quant_src(c, b, w);
    int code = tdec_codes(c->f, b, &src, bd->kb, bd->off, bd->offc, L);
    int neg = emit1(c, b, TIR_FNEG, tir_t(TS_F32, L), x);
    tir_type tb = tir_t(TS_I1, L), tf = tir_t(TS_F32, L);
    if (src.fmt->code == QK_CODE_BINARY)
        return tir_emit(c->f, b, TIR_SELECT, tf, tir_emit(c->f, b, TIR_IEQ, tb, code, cis(c, b, TS_I32, L, 1), -1, -1),
                        neg, x, -1);
    int v = tir_emit(c->f, b, TIR_SELECT, tf, tir_emit(c->f, b, TIR_IEQ, tb, code, cis(c, b, TS_I32, L, 3), -1, -1),
                     fbin(c, b, TIR_FADD, x, x), cf(c, b, L, 0), -1);
    v = tir_emit(c->f, b, TIR_SELECT, tf, tir_emit(c->f, b, TIR_IEQ, tb, code, cis(c, b, TS_I32, L, 2), -1, -1), x, v,
                 -1);
    return tir_emit(c->f, b, TIR_SELECT, tf, tir_emit(c->f, b, TIR_IEQ, tb, code, cis(c, b, TS_I32, L, 0), -1, -1), neg,
                    v, -1);
}

/* The factor of a partial sum of w's block kb (f32 scalar): its scale
 * times the code factor its unscaled chunks of L lanes were left off. */
static int block_factor(bctx *c, int b, const kir_expr *w, int kb, int L)
{
    tdec_src src = quant_src(c, b, w);
    int sc = tdec_scale(c->f, b, &src, kb);
    double k = tdec_code_factor(src.fmt, L);
    return k != 1.0 ? fbin(c, b, TIR_FMUL, sc, cf(c, b, 1, k)) : sc;
}

/* acc += body for one sum at one point, in the current chunk. With a
 * sign-select or factored plan the products go to the block's partial
 * sum `part` (scaled once at the end of the block), or, without one (tail
 * chunks, or too many partial sums for the registers), are scaled per
 * chunk. */
static void accumulate(bctx *c, int b, const kir_expr *sum, const plan *p, int acc, int part)
{
    int L = c->lanes;
    const kir_expr *body = sum->a;
    if (p->fsc) {
        const kir_expr *other = body->a == p->fsc ? body->b : body->a;
        int x = splat(c, b, lower(c, b, other), L);
        if (c->mask >= 0)
            x = tir_emit(c->f, b, TIR_SELECT, tir_t(TS_F32, L), c->mask, x, cf(c, b, L, 0), -1);
        const binding *bd = &c->env[p->fsc->idx[c->k->tensors[p->fsc->tensor].rank - 1].terms[0].var];
        /* unscaled values: memoized apart from load()'s scaled ones, shared
         * by the sums of the chunk that read the same weights */
        uint64_t key = mix(index_key(c, p->fsc), 0xf5c);
        int w = memo_get(c, key);
        if (w < 0) {
            tdec_src src = quant_src(c, b, p->fsc);
            w = memo_put(c, key, quant_chunk(c, b, &src, bd, TDEC_UNSCALED | TDEC_NOFACTOR));
        }
        int tgt = part >= 0 ? part : acc;
        int cur = emit1(c, b, TIR_VGET, tir_t(TS_F32, L), tgt);
        int next;
        if (part >= 0)
            next = tir_emit(c->f, b, TIR_FMA, tir_t(TS_F32, L), w, x, cur, -1);
        else
            next = tir_emit(c->f, b, TIR_FMA, tir_t(TS_F32, L), fbin(c, b, TIR_FMUL, w, x),
                            splat(c, b, block_factor(c, b, p->fsc, bd->kb, L), L), cur, -1);
        tir_emit(c->f, b, TIR_VSET, tir_t(TS_VOID, 1), tgt, next, -1, -1);
        return;
    }
    if (p->ssel) {
        const kir_expr *other = body->a == p->ssel ? body->b : body->a;
        int x = splat(c, b, lower(c, b, other), L);
        if (c->mask >= 0)
            x = tir_emit(c->f, b, TIR_SELECT, tir_t(TS_F32, L), c->mask, x, cf(c, b, L, 0), -1);
        int v = sign_select(c, b, p->ssel, x);
        int tgt = part >= 0 ? part : acc;
        int cur = emit1(c, b, TIR_VGET, tir_t(TS_F32, L), tgt);
        int next;
        if (part >= 0)
            next = fbin(c, b, TIR_FADD, cur, v);
        else {
            const kir_index *last = &p->ssel->idx[c->k->tensors[p->ssel->tensor].rank - 1];
            tdec_src src = quant_src(c, b, p->ssel);
            int sc = splat(c, b, tdec_scale(c->f, b, &src, c->env[last->terms[0].var].kb), L);
            next = tir_emit(c->f, b, TIR_FMA, tir_t(TS_F32, L), v, sc, cur, -1);
        }
        tir_emit(c->f, b, TIR_VSET, tir_t(TS_VOID, 1), tgt, next, -1, -1);
        return;
    }
    int cur = emit1(c, b, TIR_VGET, tir_t(TS_F32, L), acc);
    int next;
    if (body->kind == KE_BIN && body->op == KB_MUL) {
        int x = splat(c, b, lower(c, b, body->a), L), y = splat(c, b, lower(c, b, body->b), L);
        if (c->mask >= 0)
            x = tir_emit(c->f, b, TIR_SELECT, tir_t(TS_F32, L), c->mask, x, cf(c, b, L, 0), -1);
        next = tir_emit(c->f, b, TIR_FMA, tir_t(TS_F32, L), x, y, cur, -1);
    } else {
        int v = splat(c, b, lower(c, b, body), L);
        if (c->mask >= 0)
            v = tir_emit(c->f, b, TIR_SELECT, tir_t(TS_F32, L), c->mask, v, cf(c, b, L, 0), -1);
        next = fbin(c, b, TIR_FADD, cur, v);
    }
    tir_emit(c->f, b, TIR_VSET, tir_t(TS_VOID, 1), acc, next, -1, -1);
}

typedef struct group_ctx {
    const stmt_ctx *s;
    int g;
    const point *pts;
    int npts;
    int *acc;     /* [sum * npts + point] */
    int *part;    /* sign-select partial sums of the current block, or NULL */
    const plan *p;
    int E;        /* extent of the vectorized variable (node) */
} group_ctx;

/* One chunk of the vectorized variable. */
typedef struct chunk {
    int e0;   /* element index of lane 0 (i64 node); dense loops and plain blocks */
    int kb;   /* block index node, or -1 for dense loops */
    int off;  /* item offset inside the block (node) */
    int offc; /* its compile-time value, or -1 */
    int tail; /* lanes past the extent must be masked */
} chunk;

static int iota_mask(bctx *c, int b, int e0, int E)
{
    int L = c->lanes;
    int32_t iv[256];
    for (int l = 0; l < L; l++)
        iv[l] = l;
    int lanes = L > 1 ? tir_const_lanes(c->f, b, TS_I64, L, iv) : ci(c, b, 0);
    int idx = emit2(c, b, TIR_ADD, splat(c, b, e0, L), lanes);
    return tir_emit(c->f, b, TIR_ILT, tir_t(TS_I1, L), idx, splat(c, b, E, L), -1, -1);
}

/* Binds the vectorized variable of one sum for chunk ch at the current
 * point. N:M: the kept items' element indices come from the tensor's
 * index field, and the tail mask from them. */
static void bind_chunk(bctx *c, int b, const group_ctx *gc, const kir_expr *sum, int i, const chunk *ch)
{
    int var = sum->vars[sum->nvars - 1];
    const plan *p = &gc->s->plans[i];
    if (!p->sparse) {
        c->env[var] = (binding){ch->e0, 1, ch->kb, ch->off, ch->offc, -1};
        return;
    }
    tdec_src src = quant_src(c, b, p->sparse);
    int pos = tdec_positions(c->f, b, &src, ch->kb, ch->off, ch->offc, c->lanes);
    int base = splat(c, b, imul(c, b, ch->kb, ci(c, b, p->block)), c->lanes);
    int kvec = emit2(c, b, TIR_ADD, base, pos);
    c->env[var] = (binding){ci(c, b, 0), 1, ch->kb, ch->off, ch->offc, kvec};
    if (ch->tail)
        c->mask = tir_emit(c->f, b, TIR_ILT, tir_t(TS_I1, c->lanes), kvec, splat(c, b, gc->E, c->lanes), -1, -1);
}

/* One chunk: every sum of the group at every point, with shared loads. */
static void emit_chunk(bctx *c, int b, const group_ctx *gc, const chunk *ch)
{
    int saved = c->nmemo, saved_mask = c->mask;
    const stmt_ctx *s = gc->s;
    for (int p = 0; p < gc->npts; p++) {
        bind_point(c, s, &gc->pts[p]);
        for (int i = 0; i < s->nsums; i++) {
            if (s->group[i] != gc->g)
                continue;
            const kir_expr *sum = s->sums[i];
            bind_chunk(c, b, gc, sum, i, ch);
            accumulate(c, b, sum, &s->plans[i], gc->acc[i * gc->npts + p],
                       gc->part && (s->plans[i].ssel || s->plans[i].fsc) ? gc->part[i * gc->npts + p] : -1);
            c->mask = saved_mask;
        }
    }
    c->nmemo = saved;
}

/* Binds the group's outer reduction variables of every sum to one node. */
static void bind_outer(bctx *c, const group_ctx *gc, int pos, int node)
{
    for (int i = 0; i < gc->s->nsums; i++)
        if (gc->s->group[i] == gc->g)
            c->env[gc->s->sums[i]->vars[pos]] = (binding){node, 0, -1, -1, -1, -1};
}

/* acc += part * scale(kb) for every sign-select sum at every point. */
static void scale_partials(bctx *c, int b, const group_ctx *gc, int kb)
{
    const stmt_ctx *s = gc->s;
    int V = gc->p->lanes;
    for (int p = 0; p < gc->npts; p++) {
        bind_point(c, s, &gc->pts[p]);
        for (int i = 0; i < s->nsums; i++) {
            const kir_expr *w = s->plans[i].ssel ? s->plans[i].ssel : s->plans[i].fsc;
            if (s->group[i] != gc->g || !w)
                continue;
            int sc = splat(c, b, block_factor(c, b, w, kb, V), V);
            int a = gc->acc[i * gc->npts + p];
            int cur = emit1(c, b, TIR_VGET, tir_t(TS_F32, V), a);
            int pv = emit1(c, b, TIR_VGET, tir_t(TS_F32, V), gc->part[i * gc->npts + p]);
            tir_emit(c->f, b, TIR_VSET, tir_t(TS_VOID, 1), a, tir_emit(c->f, b, TIR_FMA, tir_t(TS_F32, V), pv, sc, cur, -1),
                     -1, -1);
        }
    }
}

/* The hints of block_prefetch for the loads under e: a quantized
 * parameter of rank 2 or more (weights) read along v, whose blocks tile
 * the loop block B, gets one per 64 bytes its row spends in loop block
 * kb (at least one), cfg.prefetch bytes ahead in the same row. */
static void prefetch_loads(bctx *c, int b, const kir_expr *e, int v, int B, int kb)
{
    if (!e)
        return;
    if (e->kind != KE_LOAD) {
        prefetch_loads(c, b, e->a, v, B, kb);
        prefetch_loads(c, b, e->b, v, B, kb);
        return;
    }
    const kir_tensor *t = &c->k->tensors[e->tensor];
    if (t->kind != KIR_PARAM || t->rank < 2 || !along_last(c, e, v) || B % t->fmt->block)
        return;
    tdec_src src = quant_src(c, b, e);
    int64_t bytes = (int64_t)(B / t->fmt->block) * t->fmt->block_bytes;
    int at = iadd(c, b, src.row, imul(c, b, kb, ci(c, b, bytes)));
    for (int64_t o = 0; o == 0 || o < bytes; o += 64)
        tir_emit(c->f, b, TIR_PREFETCH, tir_t(TS_VOID, 1), src.ptr,
                 iadd(c, b, at, ci(c, b, t->fmt->row_header_bytes + o + c->cfg.prefetch)), -1, -1);
    c->pf_site = 1;
}

/* Software prefetch in the full blocks of a block loop (cfg.prefetch):
 * each point's weight rows (prefetch_loads). Only for one inner point
 * (GEMV-like tiles): a GEMM reads each row for all its points, from the
 * cache. Each row is a stream of its own, and one core's hardware
 * prefetcher keeps several concurrent streams less well fed than one. */
static void block_prefetch(bctx *c, int b, const group_ctx *gc, int kb)
{
    const stmt_ctx *s = gc->s;
    if (c->cfg.prefetch <= 0 || s->ni > 1)
        return;
    for (int pt = 0; pt < gc->npts; pt++) {
        bind_point(c, s, &gc->pts[pt]);
        for (int i = 0; i < s->nsums; i++)
            if (s->group[i] == gc->g)
                prefetch_loads(c, b, s->sums[i]->a, s->sums[i]->vars[s->sums[i]->nvars - 1], gc->p->block, kb);
    }
}

/* 1 when e reads the vector variable v only where a chunk pair can be
 * read in tdec_paired_item() order: dense loads along their last index,
 * and quantized ones whose last index is v and whose format decodes
 * that order (tdec_paired_ok). */
static int paired_expr(bctx *c, const kir_expr *e, int v, int V)
{
    switch (e->kind) {
    case KE_CONST: return 1;
    case KE_BIN: return paired_expr(c, e->a, v, V) && paired_expr(c, e->b, v, V);
    case KE_UN: case KE_CAST: return paired_expr(c, e->a, v, V);
    case KE_LOAD: break;
    default: return 0;
    }
    const kir_tensor *t = &c->k->tensors[e->tensor];
    int uses = 0;
    for (int d = 0; d < t->rank; d++)
        for (int i = 0; i < e->idx[d].nterms; i++)
            if (e->idx[d].terms[i].var == v) {
                if (d < t->rank - 1 || e->idx[d].nterms != 1 || e->idx[d].terms[i].coef != 1)
                    return 0;
                uses = 1;
            }
    if (!uses || !t->fmt)
        return 1;
    return e->idx[t->rank - 1].c == 0 && !t->fmt->sp_n &&
           tdec_paired_ok(t->fmt, V, lut_f32_limit(c->t),
                          c->t->kind == QK_TARGET_CPU && (c->t->features & QK_FEAT_AVX512VBMI) != 0);
}

/* 1 when the full blocks of gc's loop (C chunks of V lanes) read their
 * chunks in pairs (bctx.paired): a quantized operand decodes fewer ops
 * that way and every other operand follows its order. The sums' lanes
 * are added up in any order at the end, so only the loads see it. */
static int paired_group(bctx *c, const group_ctx *gc, int V, int C)
{
    const stmt_ctx *s = gc->s;
    int any = 0;
    if (C % 2 || C > 16 || c->t->kind != QK_TARGET_CPU)
        return 0;
    for (int i = 0; i < s->nsums; i++) {
        if (s->group[i] != gc->g)
            continue;
        const kir_expr *sum = s->sums[i];
        const plan *p = &s->plans[i];
        int v = sum->vars[sum->nvars - 1];
        if (p->sparse || p->ssel || !paired_expr(c, sum->a, v, V))
            return 0;
        any = 1;
    }
    return any;
}

/* Quantized block loop over the innermost variable: full blocks with all
 * chunks unrolled (or in an unrolled inner loop), then masked tail chunks.
 * Chunks walk the block's items: its elements, or an N:M tensor's kept
 * items (whose element indices are gathered). */
static void emit_block_loop(bctx *c, int b, const group_ctx *gc, const plan *p, int E)
{
    int V = p->lanes, B = p->block, C = p->items / V;
    int nfull = emit2(c, b, TIR_DIV, E, ci(c, b, B));
    int body;
    int kb = tir_loop(c->f, b, ci(c, b, 0), nfull, ci(c, b, 1), TL_SERIAL, "kb", &body);
    int base = imul(c, body, kb, ci(c, body, B));
    block_prefetch(c, body, gc, kb);
    int part[MAX_SUMS * MAX_POINTS];
    /* partial sums of factored plans only while they and the accumulators
     * fit the registers (sign-selects keep theirs: their products are adds) */
    int parts = p->ssel || (p->fsc && gc->s->nsums * gc->npts <= PART_MAX);
    if (parts) {
        for (int i = 0; i < gc->s->nsums * gc->npts; i++)
            part[i] = tir_emit(c->f, body, TIR_VAR, tir_t(TS_F32, V), cf(c, body, V, 0), -1, -1, -1);
        ((group_ctx *)gc)->part = part;
    }
    if (C <= 16) {
        c->paired = paired_group(c, gc, V, C);
        for (int j = 0; j < C; j++) {
            int off = ci(c, body, (int64_t)j * V);
            chunk ch = {iadd(c, body, base, off), kb, off, j * V, 0};
            emit_chunk(c, body, gc, &ch);
        }
        c->paired = 0;
    } else {
        int U = 8;
        while (C % U)
            U /= 2;
        int ib;
        int cc = tir_loop(c->f, body, ci(c, body, 0), ci(c, body, C), ci(c, body, U), TL_SERIAL, "c", &ib);
        for (int u = 0; u < U; u++) {
            int off = imul(c, ib, iadd(c, ib, cc, ci(c, ib, u)), ci(c, ib, V));
            chunk ch = {iadd(c, ib, imul(c, ib, kb, ci(c, ib, B)), off), kb, off, -1, 0};
            emit_chunk(c, ib, gc, &ch);
        }
    }
    if (parts) /* one multiply by the block scale per block */
        scale_partials(c, body, gc, kb);
    ((group_ctx *)gc)->part = NULL;
    /* tail: the partial last block, chunk by chunk, masked */
    int tbase = imul(c, b, nfull, ci(c, b, B));
    if (!p->sparse && C <= 16) {
        /* its chunks at their compile-time offsets, each masked and run
         * only when it starts before the extent, like the chunks of the
         * run-time loop below (so the blocks every operand's decode reads
         * exist), but decoded from windows and shuffles, not the byte
         * gathers of a run-time offset: less code to compile */
        for (int j = 0; j < C; j++) {
            int tb, off = ci(c, b, (int64_t)j * V);
            int e0 = iadd(c, b, tbase, off);
            tir_if(c->f, b, tir_emit(c->f, b, TIR_ILT, tir_t(TS_I1, 1), e0, E, -1, -1), &tb, NULL);
            c->mask = iota_mask(c, tb, e0, E);
            chunk ch = {e0, nfull, off, j * V, 1};
            emit_chunk(c, tb, gc, &ch);
        }
        c->mask = -1;
        return;
    }
    int rest = emit2(c, b, TIR_SUB, E, tbase);
    int nt;
    if (p->sparse) /* every kept item of the partial block: positions are data */
        nt = emit2(c, b, TIR_MIN, imul(c, b, rest, ci(c, b, C)), ci(c, b, C));
    else
        nt = emit2(c, b, TIR_DIV, iadd(c, b, rest, ci(c, b, V - 1)), ci(c, b, V));
    int tb;
    int j = tir_loop(c->f, b, ci(c, b, 0), nt, ci(c, b, 1), TL_SERIAL, "ct", &tb);
    int off = imul(c, tb, j, ci(c, tb, V));
    int e0 = iadd(c, tb, tbase, off);
    chunk ch = {e0, nfull, off, -1, 1};
    if (!p->sparse)
        c->mask = iota_mask(c, tb, e0, E);
    emit_chunk(c, tb, gc, &ch);
    c->mask = -1;
}

/* ---- integer dot products ---- */

/* Where item `off` (a compile-time offset inside a loop block of B items
 * starting at block kb) lies in a tensor of smaller block b: block
 * kb * B/b + off/b, in-block item off % b. */
static int sub_block_of(bctx *c, int b, int kb, int B, int fb, int off, int *inoff)
{
    *inoff = off % fb;
    int k = B == fb ? kb : imul(c, b, kb, ci(c, b, B / fb));
    return off / fb ? iadd(c, b, k, ci(c, b, off / fb)) : k;
}

/* acc + DOT4(u, s) in the plan's mode: i32 x (lanes of s / 4). */
static int dot4(bctx *c, int b, const plan *p, int u, int s, int acc)
{
    int d = tir_emit(c->f, b, TIR_DOT4, tir_t(TS_I32, lanes_of(c, s) / 4), u, s, acc, -1);
    c->f->nodes[d].imm = p->dot_mode;
    return d;
}

/* One loop block (kb, B items) of an integer-dot group: for every point
 * and sum, DOT4 over the chunks of each scale group, then
 * acc += dot * (mul_u * scale_s) [+ sum(s) * (add_u * scale_s)].
 * In the tail block, lanes at or past E read s = 0. */
static void emit_idot_block(bctx *c, int b, const group_ctx *gc, int kb, int tail)
{
    const stmt_ctx *s = gc->s;
    const plan *p0 = gc->p;
    int B = p0->block, G = p0->group, cb = p0->cb, L = cb / 4;
    int saved = c->nmemo;
    int32_t iv[64];
    for (int l = 0; l < cb; l++)
        iv[l] = l;
    int outer = b;
    for (int g0 = 0; g0 < B; g0 += G) {
        b = outer;
        if (tail) { /* groups past the extent: their blocks may not exist */
            int start = iadd(c, b, imul(c, b, kb, ci(c, b, B)), ci(c, b, g0));
            tir_if(c->f, b, tir_emit(c->f, b, TIR_ILT, tir_t(TS_I1, 1), start, gc->E, -1, -1), &b, NULL);
            c->nmemo = saved;
        }
        for (int pt = 0; pt < gc->npts; pt++) {
            bind_point(c, s, &gc->pts[pt]);
            for (int i = 0; i < s->nsums; i++) {
                if (s->group[i] != gc->g)
                    continue;
                const plan *p = &s->plans[i];
                const qk_format *fu = c->k->tensors[p->uop->tensor].fmt, *fs = c->k->tensors[p->sop->tensor].fmt;
                tdec_src su = quant_src(c, b, p->uop), ss = quant_src(c, b, p->sop);
                uint64_t skey = mix(index_key(c, p->sop), 0x5e1f);
                /* the s chunks of the group (shared by the points that read them), and sum(s) */
                int sv[32], nch = 0;
                uint64_t qkey = mix(mix(skey, g0), 0x9d07);
                int qdot = memo_get(c, qkey), newq = qdot < 0 && p->sums_s;
                for (int off = g0; off < g0 + G; off += cb, nch++) {
                    int so, skb = sub_block_of(c, b, kb, B, fs->block, off, &so);
                    uint64_t sk = mix(skey, off);
                    if ((sv[nch] = memo_get(c, sk)) < 0) {
                        int v = tdec_codes_s8(c->f, b, &ss, skb, ci(c, b, so), so, cb);
                        if (tail) {
                            int e0 = iadd(c, b, imul(c, b, kb, ci(c, b, B)), ci(c, b, off));
                            int idx = emit2(c, b, TIR_ADD, splat(c, b, e0, cb), tir_const_lanes(c->f, b, TS_I64, cb, iv));
                            int m = tir_emit(c->f, b, TIR_ILT, tir_t(TS_I1, cb), idx, splat(c, b, gc->E, cb), -1, -1);
                            v = tir_emit(c->f, b, TIR_SELECT, tir_t(TS_I8, cb), m, v, cis(c, b, TS_I8, cb, 0), -1);
                        }
                        sv[nch] = memo_put(c, sk, v);
                    }
                    if (newq)
                        qdot = dot4(c, b, p, cis(c, b, TS_I8, cb, 1), sv[nch], qdot < 0 ? cis(c, b, TS_I32, L, 0) : qdot);
                }
                if (newq)
                    memo_put(c, qkey, qdot);
                /* one dot per byte of the image (tdec_image.planes), byte 0's with the fold */
                int np = p->img.planes, dot[TDEC_PLANES];
                for (int q = 0; q < np; q++)
                    dot[q] = cis(c, b, TS_I32, L, 0);
                if (p->fold) /* value = mul * (u + off): the dot of (u + off) and s */
                    dot[0] = imul(c, b, qdot, cis(c, b, TS_I32, L, p->img.off));
                nch = 0;
                for (int off = g0; off < g0 + G; off += cb, nch++) {
                    int uo, ukb = sub_block_of(c, b, kb, B, fu->block, off, &uo), raw = -1;
                    for (int q = 0; q < np; q++) {
                        uint64_t uk = mix(mix(mix(index_key(c, p->uop), off), 0x0c0d), q);
                        int uv = memo_get(c, uk);
                        if (uv < 0 && np == 1)
                            uv = memo_put(c, uk, tdec_codes_u8(c->f, b, &su, &p->img, ukb, ci(c, b, uo), uo, cb));
                        else if (uv < 0) { /* a wide image (never N:M): the raw code bytes once, a table per byte */
                            tdec_image iq = tdec_image_plane(&p->img, q);
                            if (raw < 0)
                                raw = tdec_codes_s8(c->f, b, &su, ukb, ci(c, b, uo), uo, cb);
                            uv = memo_put(c, uk, tdec_image_apply(c->f, b, &iq, raw));
                        }
                        dot[q] = dot4(c, b, p, uv, sv[nch], dot[q]);
                    }
                }
                int have_q = qdot;
                int uo, so;
                int ukb = sub_block_of(c, b, kb, B, fu->block, g0, &uo);
                int skb = sub_block_of(c, b, kb, B, fs->block, g0, &so);
                int mul, add;
                tdec_group_affine(c->f, b, &su, &p->img, ukb, ci(c, b, uo), uo, &mul, &add);
                int sc = tdec_scale(c->f, b, &ss, skb);
                int a = gc->acc[i * gc->npts + pt];
                int cur = emit1(c, b, TIR_VGET, tir_t(TS_F32, L), a);
                tir_type tf = tir_t(TS_F32, L);
                int msc = fbin(c, b, TIR_FMUL, mul, sc);
                for (int q = 1; q < np && p->icomb; q++)
                    dot[0] = iadd(c, b, dot[0], emit2(c, b, TIR_SHL, dot[q], cis(c, b, TS_I32, L, 8 * q)));
                for (int q = 0; q < (p->icomb ? 1 : np); q++) { /* byte q's dot counts 256^q */
                    int fd = emit1(c, b, TIR_SITOFP, tf, dot[q]);
                    int m = q ? fbin(c, b, TIR_FMUL, msc, cf(c, b, 1, ldexp(1.0, 8 * q))) : msc;
                    cur = tir_emit(c->f, b, TIR_FMA, tf, fd, splat(c, b, m, L), cur, -1);
                }
                if (p->sums_s && !p->fold && add >= 0) {
                    int fq = emit1(c, b, TIR_SITOFP, tf, have_q);
                    cur = tir_emit(c->f, b, TIR_FMA, tf, fq, splat(c, b, fbin(c, b, TIR_FMUL, add, sc), L), cur, -1);
                }
                tir_emit(c->f, b, TIR_VSET, tir_t(TS_VOID, 1), a, cur, -1, -1);
            }
        }
    }
    c->nmemo = saved;
}

/* 1 when the partial last block of an integer-dot sum can run as a whole
 * one: both operands' blocks are the loop block (so that block exists in
 * both, padding included), and the signed operand is a quantize()d temp
 * indexed by the vectorized variable var alone over its whole extent,
 * whose padding codes the temp's phase wrote as 0 (tdec_encode_row: the
 * row zeroed, padding items quantized from 0), so that whatever the other
 * operand's padding bytes hold, their products are integer zeros. One
 * copy of the block code fewer (a third of gemv_int8's tiled IR). */
static int idot_padded(const bctx *c, const plan *p, int var)
{
    const kir_dim *ev = &c->k->vars[var].extent;
    const kir_tensor *tu = &c->k->tensors[p->uop->tensor], *ts = &c->k->tensors[p->sop->tensor];
    const kir_index *ix = &p->sop->idx[ts->rank - 1];
    const kir_dim *d = &ts->dims[ts->rank - 1];
    return tu->fmt->block == p->block && ts->fmt->block == p->block && ts->kind == KIR_TEMP && ts->materialized &&
           tdec_is_s8(ts->fmt) && ix->nterms == 1 && ix->terms[0].coef == 1 && !ix->c && ix->terms[0].var == var &&
           d->sym == ev->sym && d->c == ev->c;
}

/* idot_padded for every sum of the group. */
static int group_padded(const bctx *c, const group_ctx *gc, int var)
{
    for (int i = 0; i < gc->s->nsums; i++)
        if (gc->s->group[i] == gc->g && !idot_padded(c, &gc->s->plans[i], var))
            return 0;
    return 1;
}

/* Loop blocks of an integer-dot group: kblocks blocks per iteration, the
 * remaining full blocks one by one, then the partial block (masked), or
 * with it when the padding reads as zeros (idot_padded). */
static void emit_idot_loop(bctx *c, int b, const group_ctx *gc, const plan *p, int E, int padded)
{
    int B = p->block, U = c->cfg.kblocks > 1 ? c->cfg.kblocks : 1;
    int nfull = emit2(c, b, TIR_DIV, padded ? iadd(c, b, E, ci(c, b, B - 1)) : E, ci(c, b, B));
    int start = ci(c, b, 0), body;
    if (U > 1) {
        int nu = imul(c, b, emit2(c, b, TIR_DIV, nfull, ci(c, b, U)), ci(c, b, U));
        int kb = tir_loop(c->f, b, ci(c, b, 0), nu, ci(c, b, U), TL_SERIAL, "kb", &body);
        for (int u = 0; u < U; u++)
            emit_idot_block(c, body, gc, u ? iadd(c, body, kb, ci(c, body, u)) : kb, 0);
        start = nu;
    }
    int kb = tir_loop(c->f, b, start, nfull, ci(c, b, 1), TL_SERIAL, "kb", &body);
    emit_idot_block(c, body, gc, kb, 0);
    if (padded)
        return;
    int tb;
    int partial = tir_emit(c->f, b, TIR_ILT, tir_t(TS_I1, 1), imul(c, b, nfull, ci(c, b, B)), E, -1, -1);
    tir_if(c->f, b, partial, &tb, NULL);
    emit_idot_block(c, tb, gc, nfull, 1);
}

/* Dense reduction over the innermost variable: U vectors per step, then
 * single masked vectors. */
static void emit_dense_loop(bctx *c, int b, const group_ctx *gc, const plan *p, int E)
{
    int V = p->lanes, U = c->cfg.unroll > 0 ? c->cfg.unroll : 1, S = V * U;
    int nmain = emit2(c, b, TIR_SUB, E, emit2(c, b, TIR_REM, E, ci(c, b, S)));
    int body;
    int e = tir_loop(c->f, b, ci(c, b, 0), nmain, ci(c, b, S), TL_SERIAL, "k", &body);
    for (int u = 0; u < U; u++) {
        chunk ch = {u ? iadd(c, body, e, ci(c, body, (int64_t)u * V)) : e, -1, -1, -1, 0};
        emit_chunk(c, body, gc, &ch);
    }
    int tb;
    int e0 = tir_loop(c->f, b, nmain, E, ci(c, b, V), TL_SERIAL, "kt", &tb);
    c->mask = iota_mask(c, tb, e0, E);
    chunk ch = {e0, -1, -1, -1, 1};
    emit_chunk(c, tb, gc, &ch);
    c->mask = -1;
}

/* Serial loops over the group's outer reduction variables, then the
 * vectorized innermost loop. */
static void emit_reduction(bctx *c, int b, const group_ctx *gc, const kir_expr *first, const plan *p, int pos)
{
    if (pos < first->nvars - 1) {
        const kir_var *v = &c->k->vars[first->vars[pos]];
        int body;
        int lp = tir_loop(c->f, b, ci(c, b, 0), dim_node(c, b, v->extent), ci(c, b, 1), TL_SERIAL, v->name, &body);
        bind_outer(c, gc, pos, lp);
        int saved = c->nmemo;
        emit_reduction(c, body, gc, first, p, pos + 1);
        c->nmemo = saved;
        return;
    }
    int E = dim_node(c, b, c->k->vars[first->vars[pos]].extent);
    ((group_ctx *)gc)->E = E;
    c->lanes = p->lanes;
    if (p->idot)
        emit_idot_loop(c, b, gc, p, E, group_padded(c, gc, first->vars[pos]));
    else if (p->block)
        emit_block_loop(c, b, gc, p, E);
    else
        emit_dense_loop(c, b, gc, p, E);
    c->lanes = 1;
}

/* Converts an f32 value to the result's dtype and stores it. */
static void store_result(bctx *c, int b, const kir_stmt *st, int v)
{
    const kir_tensor *t = &c->k->tensors[st->tensor];
    int off = -1;
    for (int d = 0; d < t->rank; d++) {
        int ix = c->env[st->lhs[d]].node;
        if (d < t->rank - 1)
            ix = imul(c, b, ix, c->stride[st->tensor * QK_MAX_RANK + d]);
        off = off < 0 ? ix : iadd(c, b, off, ix);
    }
    if (off < 0)
        off = ci(c, b, 0);
    off = imul(c, b, off, ci(c, b, qk_dtype_size(t->dtype)));
    v = round_to(c, b, t->dtype, v);
    switch (t->dtype) {
    case QK_DT_F32: break;
    case QK_DT_F16: v = emit1(c, b, TIR_F2H, tir_t(TS_I16, 1), v); break;
    case QK_DT_BF16:
        v = emit2(c, b, TIR_SHR, emit1(c, b, TIR_BITCAST, tir_t(TS_I32, 1), v), cis(c, b, TS_I32, 1, 16));
        v = emit1(c, b, TIR_TRUNC, tir_t(TS_I16, 1), v);
        break;
    case QK_DT_I32: v = emit1(c, b, TIR_FPTOSI, tir_t(TS_I32, 1), v); break;
    default: v = emit1(c, b, TIR_TRUNC, tir_t(TS_I8, 1), emit1(c, b, TIR_FPTOSI, tir_t(TS_I32, 1), v)); break;
    }
    tir_emit(c->f, b, TIR_STORE, tir_t(TS_VOID, 1), c->ptr[st->tensor], off, v, -1);
}

/* ---- row-interleaved weights (cfg.repack; compiler/rowpack.h) ----
 * One work item is a group of R weight rows held in the R i32 lanes of a
 * vector: per step of 4 items, one load of the rows' codes, one broadcast
 * of 4 activation bytes and one DOT4 give every row its partial dot; per
 * scale group, one vector load and conversion give every row its scale. */

/* 1 if expression e reads variable v. */
static int reads_var(bctx *c, const kir_expr *e, int v)
{
    if (!e)
        return 0;
    if (e->kind == KE_LOAD)
        for (int d = 0; d < c->k->tensors[e->tensor].rank; d++)
            for (int i = 0; i < e->idx[d].nterms; i++)
                if (e->idx[d].terms[i].var == v)
                    return 1;
    return reads_var(c, e->a, v) || reads_var(c, e->b, v);
}

static int reads_tensor(const kir_expr *e, int t)
{
    if (!e)
        return 0;
    return (e->kind == KE_LOAD && e->tensor == t) || reads_tensor(e->a, t) || reads_tensor(e->b, t);
}

/* 1 if expression e reads a quantized tensor or holds a sum. */
static int reads_quant(bctx *c, const kir_expr *e)
{
    if (!e)
        return 0;
    if (e->kind == KE_SUM || (e->kind == KE_LOAD && c->k->tensors[e->tensor].fmt))
        return 1;
    return reads_quant(c, e->a) || reads_quant(c, e->b);
}

/* The f32 form of the layout (s->rowpack = 2, rowpack_block_f32): a sum
 * of W[n, k] * x where W's format has the form (qk_rowpack_f32) and x is
 * dense f32 work that does not read W's row. A 32-bit lane of a run
 * holds 8 / w steps of 4 codes of its row: a shift and a 2^w-entry f32
 * lookup (vpermps) decode one item of R rows, and one broadcast of x's
 * item feeds every row group, where the format's own layout decodes
 * along k with a byte spread, a widening and a permute per 16 codes. Sets
 * up s->rp and plans[0] (uop = W, no image) and returns 1, else 0. */
static int rowpack_f32_fit(bctx *c, stmt_ctx *s, int R)
{
    plan *p = &s->plans[0];
    const kir_expr *sum = s->sums[0], *w = p->fsc ? p->fsc : p->ssel;
    const qk_format *fq;
    for (int i = 0; !w && i < 2; i++) /* a min: not factored (plan_sum), read here all the same */
        w = product_quant(c, sum->a, i, &fq);
    if (!w || p->nquant != 1 || p->sparse || s->par < 0)
        return 0;
    const kir_tensor *t = &c->k->tensors[w->tensor];
    const qk_format *f = t->fmt;
    const kir_index *row = &w->idx[0], *col = &w->idx[t->rank - 1];
    int var = sum->vars[0];
    if (t->kind != KIR_PARAM || t->rank != 2 || 4 * R * 8 > c->t->vector_bits)
        return 0;
    if (row->nterms != 1 || row->terms[0].var != s->st->lhs[s->par] || row->terms[0].coef != 1 || row->c)
        return 0;
    if (col->nterms != 1 || col->terms[0].var != var || col->terms[0].coef != 1 || col->c)
        return 0;
    const kir_expr *x = sum->a->a == w ? sum->a->b : sum->a->a;
    if (reads_var(c, x, s->st->lhs[s->par]) || reads_quant(c, x))
        return 0;
    for (int i = 0; i < c->k->nstmts; i++)
        if (&c->k->stmts[i] != s->st && reads_tensor(c->k->stmts[i].rhs, w->tensor))
            return 0;
    qk_rowpack rp;
    if (!qk_rowpack_f32(f, R, &rp, NULL, 0))
        return 0;
    s->rp = rp;
    p->uop = w;
    memset(&p->img, 0, sizeof p->img);
    p->img.scale_img = 1.0;
    p->sums_s = qk_rowpack_f32_sums(f); /* rowpack_factors' add: the zero point and min times sum(x) */
    p->fold = 0;
    return 1;
}

/* Why statement s cannot read its weights row-interleaved with R rows,
 * or NULL (then s->rp is the layout). */
static const char *rowpack_unfit(bctx *c, stmt_ctx *s, int R, char *why, size_t n)
{
    if (c->t->kind != QK_TARGET_CPU)
        return "the row-interleaved layout is for CPU targets";
    if (R != 4 && R != 8 && R != 16)
        return "the rows per group must be 4, 8 or 16 (or 1: qkc's choice)";
    if (4 * R * 8 > c->t->vector_bits)
        return "4 x R code bytes do not fit the target's vectors (repack=16 needs 512-bit vectors, 8 needs 256)";
    plan *p = &s->plans[0];
    if (s->nsums == 1 && !p->idot && s->sums[0]->nvars == 1 && rowpack_f32_fit(c, s, R))
        return NULL;
    if (s->nsums != 1 || !p->idot || s->sums[0]->nvars != 1) {
        for (int i = 0; i < c->k->ntensors; i++) {
            const qk_format *f = c->k->tensors[i].fmt;
            tdec_image img;
            if (c->k->tensors[i].kind == KIR_PARAM && f && !tdec_int_image(f, 256, TDEC_PLANES, &img) &&
                tdec_int_image_sgn(f, TDEC_PLANES, &img))
                return "sign-magnitude codes (e4m3) take integer dots only times x quantize()d in the kernel to "
                       "int8 with an e8m0 block scale (the sign negates x's byte, and such x never holds -128; "
                       "q8_0's f16 scale can give -128), in 16-row groups on AVX-512 VBMI (no dot4)";
        }
        /* neither form: why not the f32 one, for the weights' format */
        char fw[200] = "nor of weights W[n, k] times f32 work that does not read n";
        for (int i = 0; i < c->k->ntensors; i++) {
            const qk_format *f = c->k->tensors[i].fmt;
            char r[160];
            if (c->k->tensors[i].kind == KIR_PARAM && c->k->tensors[i].rank == 2 && f &&
                !qk_rowpack_f32(f, R, NULL, r, sizeof r)) {
                snprintf(fw, sizeof fw, "nor of f32 work: %s", r);
                break;
            }
        }
        snprintf(why, n,
                 "the statement is not one sum over one index of products of int8 values and weights with an "
                 "integer image (see `qkc emit --stage=tir`: no dot4), %s",
                 fw);
        return why;
    }
    const kir_tensor *t = &c->k->tensors[p->uop->tensor];
    const kir_index *row = &p->uop->idx[0];
    if (t->kind != KIR_PARAM || t->rank != 2)
        return "the weights are not a rank-2 parameter";
    if (s->par < 0 || row->nterms != 1 || row->terms[0].var != s->st->lhs[s->par] || row->terms[0].coef != 1 || row->c)
        return "the weights' rows are not the result's parallel index";
    if (reads_var(c, p->sop, s->st->lhs[s->par]))
        return "the int8 operand depends on the weights' row";
    for (int i = 0; i < c->k->nstmts; i++)
        if (&c->k->stmts[i] != s->st && reads_tensor(c->k->stmts[i].rhs, p->uop->tensor))
            return "another statement reads the weights";
    if (!qk_rowpack_check(t->fmt, R, &s->rp, why, n))
        return why;
    if (p->group % 4)
        return "scale groups are not a multiple of 4 items";
    return NULL;
}

/* Raw codes (i8 x 4R) of step `step` (items 4 step .. 4 step + 3 of each
 * row) of the group-block at byte `blk`. */
/* The 4R bytes (i8 x 4R) of part pt's run holding step `step` of the
 * group-block at blk, loaded once per group-block and run. */
static int rowpack_run(bctx *c, int b, const stmt_ctx *s, const plan *p, const qk_rowpack_part *pt, int blk, int step)
{
    const qk_rowpack *rp = &s->rp;
    int L = 4 * rp->rows, S = 8 / pt->w;
    int64_t off = rp->codes + (int64_t)(step / rp->seg_steps) * rp->seg_bytes + pt->offset +
                  (int64_t)(step % rp->seg_steps / S) * L;
    uint64_t key = mix(mix(mix(0x70ac, blk), off), 0x1d);
    int x = memo_get(c, key);
    if (x < 0)
        x = memo_put(c, key, tir_emit(c->f, b, TIR_LOAD, tir_t(TS_I8, L), c->ptr[p->uop->tensor],
                                      iadd(c, b, blk, ci(c, b, off)), -1, -1));
    return x;
}

static int rowpack_codes(bctx *c, int b, const stmt_ctx *s, const plan *p, int blk, int step)
{
    const qk_rowpack *rp = &s->rp;
    int R = rp->rows, L = 4 * R, v = -1;
    for (int i = 0; i < rp->nparts; i++) {
        const qk_rowpack_part *pt = &rp->parts[i];
        int S = 8 / pt->w, sh = pt->w * (step % S);
        int x = rowpack_run(c, b, s, p, pt, blk, step);
        if (sh)
            x = emit2(c, b, TIR_SHR, x, cis(c, b, TS_I8, L, sh));
        if (sh + pt->w < 8)
            x = emit2(c, b, TIR_AND, x, cis(c, b, TS_I8, L, (1 << pt->w) - 1));
        if (pt->lo)
            x = emit2(c, b, TIR_SHL, x, cis(c, b, TS_I8, L, pt->lo));
        v = v < 0 ? x : emit2(c, b, TIR_OR, v, x);
    }
    return v;
}

/* Fields per code byte when the codes are read in place (1: they are
 * not): codes of one part narrower than a byte whose image is the code or
 * the code xor a constant of its width. Field f of a run's bytes, masked
 * where it lies, is u << (w f): its dot products are summed apart and
 * shifted back once per group, instead of every step shifting its field
 * down (an AND per step instead of a shift and an AND; for 2-bit codes
 * in groups of 256, 1.6x the steps per second with the weights in cache). */
static int rowpack_fields(const stmt_ctx *s, const plan *p, int npts)
{
    const qk_rowpack *rp = &s->rp;
    int w = rp->parts[0].w;
    /* the shifts back cost a shift and an add per field and group: worth
     * it from 4 steps per field and group (measured: 2 steps lose), and
     * for fields of 1 or 2 bits (a 4-bit field's top half is one shift
     * already; measured: 4-bit fields, 5% fewer cycles in L1, none from
     * DRAM), and for one point only: a GEMM's F times as many
     * accumulators spill (tq2_0 x int8 blocks of 256, M = 64: 370 GOP/s
     * with fields, 610 without) */
    if (npts > 1 || rp->nparts != 1 || w > 2 || rp->parts[0].lo || p->group / 4 < 4 * (8 / w))
        return 1;
    /* u << (w f) reaches 192 (2-bit) or 128 (1-bit): an unsigned byte
     * (vpdpbusd) only; sdot would read it as negative */
    if (p->dot_mode != TIR_DOT_US)
        return 1;
    if ((p->img.kind == TDEC_IMG_ADD && p->img.c == 0) || (p->img.kind == TDEC_IMG_XOR && p->img.c < (1 << w)))
        return 8 / w;
    return 1;
}

/* rowpack_codes of a code read in place: field step % F of the run's
 * bytes, u << (w (step % F)). */
static int rowpack_field(bctx *c, int b, const stmt_ctx *s, const plan *p, int blk, int step)
{
    const qk_rowpack_part *pt = &s->rp.parts[0];
    int L = 4 * s->rp.rows, sh = pt->w * (step % (8 / pt->w));
    int x = rowpack_run(c, b, s, p, pt, blk, step);
    x = emit2(c, b, TIR_AND, x, cis(c, b, TS_I8, L, ((1 << pt->w) - 1) << sh));
    if (p->img.kind == TDEC_IMG_XOR)
        x = emit2(c, b, TIR_XOR, x, cis(c, b, TS_I8, L, p->img.c << sh));
    return x;
}

/* i8 x 4R: the 4 bytes x (i8 x 4) in every row's lane. */
static int rowpack_spread(bctx *c, int b, int x, int R)
{
    x = emit1(c, b, TIR_BITCAST, tir_t(TS_I32, 1), x);
    return emit1(c, b, TIR_BITCAST, tir_t(TS_I8, 4 * R), splat(c, b, x, R));
}

/* i1 x 4: which of the 4 items at loop-block item `item` lie before E. */
static int rowpack_live(bctx *c, int b, const plan *p, int kb, int item, int E)
{
    int32_t iv[4] = {0, 1, 2, 3};
    int e0 = iadd(c, b, imul(c, b, kb, ci(c, b, p->block)), ci(c, b, item));
    int idx = emit2(c, b, TIR_ADD, splat(c, b, e0, 4), tir_const_lanes(c->f, b, TS_I64, 4, iv));
    return tir_emit(c->f, b, TIR_ILT, tir_t(TS_I1, 4), idx, splat(c, b, E, 4), -1, -1);
}

/* Four int8 operand bytes at loop-block item `item` broadcast to every
 * row: i8 x 4R. In a tail block, bytes at or past E are 0. */
static int rowpack_bcast(bctx *c, int b, const stmt_ctx *s, const plan *p, int kb, int item, int tail, int E)
{
    const qk_format *fs = c->k->tensors[p->sop->tensor].fmt;
    int R = s->rp.rows, so;
    tdec_src ss = quant_src(c, b, p->sop);
    int skb = sub_block_of(c, b, kb, p->block, fs->block, item, &so);
    int x = tdec_codes_s8(c->f, b, &ss, skb, ci(c, b, so), so, 4);
    if (tail)
        x = tir_emit(c->f, b, TIR_SELECT, tir_t(TS_I8, 4), rowpack_live(c, b, p, kb, item, E), x,
                     cis(c, b, TS_I8, 4, 0), -1);
    return rowpack_spread(c, b, x, R);
}

/* Sign-magnitude codes (tdec_int_image_sgn) with NaN codes: var nanv (i8
 * x 4R) |= the flag bits of the top plane `top` of the 4 items at
 * loop-block item `item` (in a tail block, of those before E only: the
 * padding's codes are no elements). */
static void rowpack_nan_or(bctx *c, int b, const plan *p, int R, int nanv, int top, int kb, int item, int tail, int E)
{
    int L = 4 * R, f = emit2(c, b, TIR_AND, top, cis(c, b, TS_I8, L, 0x80));
    if (tail) {
        int m = tir_emit(c->f, b, TIR_SELECT, tir_t(TS_I8, 4), rowpack_live(c, b, p, kb, item, E),
                         cis(c, b, TS_I8, 4, -1), cis(c, b, TS_I8, 4, 0), -1);
        f = emit2(c, b, TIR_AND, f, rowpack_spread(c, b, m, R));
    }
    int cur = emit1(c, b, TIR_VGET, tir_t(TS_I8, L), nanv);
    tir_emit(c->f, b, TIR_VSET, tir_t(TS_VOID, 1), nanv, emit2(c, b, TIR_OR, cur, f), -1, -1);
}

/* v (f32 x R, rows of a group) with NaN in the rows whose codes held a
 * NaN (var nanv of rowpack_nan_or). */
static int rowpack_nan_rows(bctx *c, int b, int R, int nanv, int v)
{
    int w = emit1(c, b, TIR_BITCAST, tir_t(TS_I32, R), emit1(c, b, TIR_VGET, tir_t(TS_I8, 4 * R), nanv));
    int z = tir_emit(c->f, b, TIR_IEQ, tir_t(TS_I1, R), w, cis(c, b, TS_I32, R, 0), -1, -1);
    return tir_emit(c->f, b, TIR_SELECT, tir_t(TS_F32, R), z, v, cf(c, b, R, NAN), -1);
}

/* sum(s) over the group's G items at loop-block item g0 (i32 scalar). */
static int rowpack_ssum(bctx *c, int b, const plan *p, int kb, int g0, int tail, int E)
{
    const qk_format *fs = c->k->tensors[p->sop->tensor].fmt;
    tdec_src ss = quant_src(c, b, p->sop);
    int cq = p->group < 32 ? p->group : 32, q = -1;
    int32_t iv[32];
    for (int l = 0; l < cq; l++)
        iv[l] = l;
    for (int off = g0; off < g0 + p->group; off += cq) {
        int so, skb = sub_block_of(c, b, kb, p->block, fs->block, off, &so);
        int x = tdec_codes_s8(c->f, b, &ss, skb, ci(c, b, so), so, cq);
        if (tail) {
            int e0 = iadd(c, b, imul(c, b, kb, ci(c, b, p->block)), ci(c, b, off));
            int idx = emit2(c, b, TIR_ADD, splat(c, b, e0, cq), tir_const_lanes(c->f, b, TS_I64, cq, iv));
            int m = tir_emit(c->f, b, TIR_ILT, tir_t(TS_I1, cq), idx, splat(c, b, E, cq), -1, -1);
            x = tir_emit(c->f, b, TIR_SELECT, tir_t(TS_I8, cq), m, x, cis(c, b, TS_I8, cq, 0), -1);
        }
        q = dot4(c, b, p, cis(c, b, TS_I8, cq, 1), x, q < 0 ? cis(c, b, TS_I32, cq / 4, 0) : q);
    }
    /* |sum| <= 128 G: exact through f32 */
    int f = emit1(c, b, TIR_HADD, tir_t(TS_F32, 1), emit1(c, b, TIR_SITOFP, tir_t(TS_F32, cq / 4), q));
    return emit1(c, b, TIR_FPTOSI, tir_t(TS_I32, 1), f);
}

/* The int8 operand's rows for rowpack_sums: 1 when it has one row or its
 * rows are one index variable, else 0 (sums are then computed in the loop). */
static int sums_rows_ok(bctx *c, const kir_expr *e)
{
    const kir_tensor *t = &c->k->tensors[e->tensor];
    return t->rank == 1 ||
           (t->rank == 2 && e->idx[0].nterms == 1 && e->idx[0].terms[0].coef == 1 && e->idx[0].c == 0);
}

/* i32 scalar: the sum of group (kb B + g0) / G of the current point's row,
 * from the scratch rowpack_sums filled. */
static int rowpack_sum_load(bctx *c, int b, const plan *p, int kb, int g0, int E)
{
    const kir_tensor *t = &c->k->tensors[p->sop->tensor];
    int G = p->group, row = ci(c, b, 0);
    if (t->rank == 2) {
        int64_t vc;
        row = index_node(c, b, &p->sop->idx[0], &vc);
    }
    int ng = emit2(c, b, TIR_DIV, iadd(c, b, E, ci(c, b, G - 1)), ci(c, b, G));
    int gi = iadd(c, b, imul(c, b, kb, ci(c, b, p->block / G)), ci(c, b, g0 / G));
    int at = imul(c, b, iadd(c, b, imul(c, b, row, ng), gi), ci(c, b, 4));
    return tir_emit(c->f, b, TIR_LOAD, tir_t(TS_I32, 1), c->sums, at, -1, -1);
}

/* x * y where either may be absent (-1). */
static int mul_vec(bctx *c, int b, int x, int y)
{
    return x < 0 ? y : y < 0 ? x : fbin(c, b, TIR_FMUL, x, y);
}

/* R consecutive little-endian unsigned numbers of `bytes` (1, 2 or 4)
 * bytes at byte `at` of ptr, as i32 x R. */
static int load_u32_lanes(bctx *c, int b, int ptr, int at, int bytes, int R)
{
    tir_scalar rs = bytes == 1 ? TS_I8 : bytes == 2 ? TS_I16 : TS_I32;
    int raw = tir_emit(c->f, b, TIR_LOAD, tir_t(rs, R), ptr, at, -1, -1);
    return rs != TS_I32 ? emit1(c, b, TIR_ZEXT, tir_t(TS_I32, R), raw) : raw;
}

/* Word q of a number field stored C items to a row's 32-bit word
 * (qk_rowpack num_chunk): items q C .. q C + C - 1 of the R rows of the
 * group-block at byte blk, in i32 x R, loaded once per group-block. */
static int rowpack_words(bctx *c, int b, const stmt_ctx *s, const plan *p, int blk, int fl, int q)
{
    const qk_rowpack *rp = &s->rp;
    int64_t off = rp->num_offset[fl] + (int64_t)q * rp->rows * 4;
    uint64_t key = mix(mix(mix(0x70ad, blk), off), 0x1e);
    int x = memo_get(c, key);
    if (x < 0)
        x = memo_put(c, key, tir_emit(c->f, b, TIR_LOAD, tir_t(TS_I32, rp->rows), c->ptr[p->uop->tensor],
                                      iadd(c, b, blk, ci(c, b, off)), -1, -1));
    return x;
}

/* Item `item` of number field fl of the R rows of the group-block at
 * byte blk, as its stored bits in i32 x R; -1 when blocks have no such
 * field. */
static int rowpack_num_bits(bctx *c, int b, const stmt_ctx *s, const plan *p, int blk, int fl, int item, qk_num n)
{
    const qk_rowpack *rp = &s->rp;
    int R = rp->rows, w = rp->num_bits[fl];
    if (!w || n == QK_NUM_NONE)
        return -1;
    int C = rp->num_chunk[fl];
    if (C > 1) { /* C items of a row in its 32-bit lane: one load for C items */
        int sh = item % C * w, raw = rowpack_words(c, b, s, p, blk, fl, item / C);
        if (sh)
            raw = emit2(c, b, TIR_SHR, raw, cis(c, b, TS_I32, R, sh));
        return sh + w < 32 ? emit2(c, b, TIR_AND, raw, cis(c, b, TS_I32, R, (1 << w) - 1)) : raw;
    }
    int64_t off = rp->num_offset[fl] + (int64_t)item * R * w / 8;
    int at = iadd(c, b, blk, ci(c, b, off)), raw;
    if (w % 8 == 0)
        raw = load_u32_lanes(c, b, c->ptr[p->uop->tensor], at, w / 8, R);
    else { /* w < 8 bits per row: lane r takes the 2 bytes holding bits [w r, w r + w), shifted and masked */
        int nb = 1;
        while (nb < R * w / 8 + 1)
            nb *= 2;
        int bytes = tir_emit(c->f, b, TIR_LOAD, tir_t(TS_I8, nb), c->ptr[p->uop->tensor], at, -1, -1);
        int32_t idx[64], sh[16];
        for (int r = 0; r < R; r++) {
            for (int t = 0; t < 4; t++)
                idx[4 * r + t] = (w * r) / 8 + (t < 2 ? t : 0);
            sh[r] = (w * r) % 8;
        }
        raw = emit1(c, b, TIR_BITCAST, tir_t(TS_I32, R), tir_shuffle(c->f, b, bytes, 4 * R, idx));
        raw = emit2(c, b, TIR_SHR, raw, tir_const_lanes(c->f, b, TS_I32, R, sh));
        raw = emit2(c, b, TIR_AND, raw, cis(c, b, TS_I32, R, (1 << w) - 1));
    }
    return raw;
}

/* The same item's value, as f32 x R; -1 when blocks have no such field. */
static int rowpack_num(bctx *c, int b, const stmt_ctx *s, const plan *p, int blk, int fl, int item, qk_num n)
{
    int raw = rowpack_num_bits(c, b, s, p, blk, fl, item, n);
    return raw < 0 ? -1 : tdec_num(c->f, b, n, raw);
}

/* Largest value of an unsigned-integer number kind, or 0 for the others. */
static double uint_num_max(qk_num n, int bits)
{
    return n == QK_NUM_U8 ? 255 : n == QK_NUM_UINT ? (double)((1 << bits) - 1) : 0;
}

/* 1 when a loop block's groups can be summed in integers (k-quants):
 * the weights' sub-block scales (and mins) are unsigned integers, every
 * other factor of a group holds over the whole block (one block of each
 * operand per loop block, the int8 operand without sub-groups, no zero
 * point, no offset beside the image's own fold), and the sum of a
 * block's scaled dots fits in i32. */
static int rowpack_isub(const plan *p, const qk_format *fu, const qk_format *fs)
{
    int B = p->block, G = p->group;
    double smax = uint_num_max(fu->sub_num, fu->sub_bits);
    if (G >= B || fu->block != B || fs->block != B || tdec_group(fs) != B || smax <= 0 || !fu->sub_block)
        return 0;
    if (fu->submin_num != QK_NUM_NONE && uint_num_max(fu->submin_num, fu->submin_bits) <= 0)
        return 0;
    if (fu->zero != QK_ZERO_NONE || (p->sums_s && !p->fold && p->img.off != 0) || p->img.planes > 1)
        return 0;
    double mmax = fu->submin_num != QK_NUM_NONE ? uint_num_max(fu->submin_num, fu->submin_bits) : 1;
    double dot = (double)B * (255.0 + (p->img.off < 0 ? -p->img.off : p->img.off)) * 128.0;
    return dot * smax < 2147483647.0 && (double)B * 128.0 * mmax < 2147483647.0;
}

/* The row multipliers of block ukb's group `sub` for the row group whose
 * group-block is at byte blk: value = mul u + add, per row over the group
 * (tdec_group_affine, in R lanes); add is -1 without a sum(s) term.
 * sub < 0 leaves the sub-block scale and min out (the integer sums of
 * rowpack_block multiply by them).
 *
 * With rel non-null, where the format has no min and the image's scale
 * is a power of two, the addend is returned relative to mul instead
 * (value = mul (u + add), *rel = 1): the block's float work is then
 * (dot + sum(s) add) mul sc, one multiply-add, a multiply and one more
 * multiply-add, where mul dot sc + add sum(s) sc takes two multiplies
 * and two multiply-adds besides add's own multiply (uint1_z32, whose
 * 1-bit codes leave the float work a third of the loop). */
static void rowpack_factors(bctx *c, int b, const stmt_ctx *s, const plan *p, int blk, int sub, int srow, int TS,
                            int *mul, int *vmul, int *kmul, int *add, int *rel)
{
    const qk_format *fu = c->k->tensors[p->uop->tensor].fmt;
    int R = s->rp.rows;
    if (rel)
        *rel = 0;
    /* the scale without its minifloat factor, which joins the factors that
     * do not change along k: one product LLVM hoists out of the block loop
     * (nvfp4's e4m3 factor, tensor scale and image scale 1/2 cost two
     * more multiplies per row group and block of 16) */
    int raw = rowpack_num_bits(c, b, s, p, blk, QK_FIELD_SCALE, 0, fu->scale_num);
    double fac = 1.0;
    int S = raw < 0 ? -1 : tdec_num_unscaled(c->f, b, fu->scale_num, raw, &fac);
    if (sub >= 0) { /* and the sub-block scale's (nvfp4_ggml) */
        double sfac = 1.0;
        int sraw = rowpack_num_bits(c, b, s, p, blk, QK_FIELD_SUBSCALE, sub, fu->sub_num);
        S = mul_vec(c, b, S, sraw < 0 ? -1 : tdec_num_unscaled(c->f, b, fu->sub_num, sraw, &sfac));
        fac *= sfac;
    }
    double kc = p->img.scale_img * fac;
    int K = mul_vec(c, b, mul_vec(c, b, srow, TS), kc != 1.0 ? cf(c, b, R, kc) : -1);
    *mul = mul_vec(c, b, S, K);
    if (*mul < 0)
        *mul = cf(c, b, R, 1.0);
    /* mul = vmul * kmul: the part that changes along k, and the hoisted
     * one, where that holds the tensor scale (the caller multiplies kmul
     * by the int8 operand's scale once per block, shared by the groups).
     * Measured: nvfp4's loop 4% faster in L2; with a constant kmul (the
     * MX formats' image scale) mxfp8_e4m3's loop spilled more and read
     * DRAM 10 points slower, so those keep mul whole. */
    if (vmul) {
        int split = S >= 0 && TS >= 0;
        *vmul = split ? S : *mul;
        *kmul = split ? K : -1;
    }
    S = mul_vec(c, b, S, fac != 1.0 ? mul_vec(c, b, srow, cf(c, b, R, fac)) : srow);
    *add = -1;
    if (!p->sums_s || p->fold)
        return;
    double cz = p->img.scale_img * p->img.off - (fu->zero == QK_ZERO_CONST ? fu->zero_const : 0);
    int z = cf(c, b, R, cz);
    int zb = rowpack_num(c, b, s, p, blk, QK_FIELD_ZERO, 0, fu->zero_num);
    int e, exact = frexp(p->img.scale_img, &e) == 0.5;
    if (rel && fu->min_num == QK_NUM_NONE && exact && (zb >= 0 || cz != 0)) { /* (u + (cz - zb) / img) mul */
        z = cf(c, b, R, cz / p->img.scale_img);
        *add = zb >= 0 ? fbin(c, b, TIR_FSUB, z, mul_vec(c, b, zb, cf(c, b, R, 1 / p->img.scale_img))) : z;
        *rel = 1;
        return;
    }
    if (zb >= 0)
        z = fbin(c, b, TIR_FSUB, z, zb);
    int a = zb < 0 && cz == 0 ? -1 : mul_vec(c, b, S, z); /* -1: no term (S 0 is not folded) */
    int M = rowpack_num(c, b, s, p, blk, QK_FIELD_MIN, 0, fu->min_num);
    if (sub >= 0)
        M = mul_vec(c, b, M, rowpack_num(c, b, s, p, blk, QK_FIELD_SUBMIN, sub, fu->submin_num));
    if (M >= 0) {
        int m = fu->min_sign < 0 ? emit1(c, b, TIR_FNEG, tir_t(TS_F32, R), M) : M;
        a = a < 0 ? m : fbin(c, b, TIR_FADD, a, m);
    }
    *add = a < 0 ? -1 : mul_vec(c, b, a, TS);
}

/* The int8 operand's scale for point j's block holding item g0 of loop
 * block kb, in R lanes (binds the point). */
static int rowpack_sscale(bctx *c, int b, const stmt_ctx *s, const plan *p, const point *pt, int kb, int g0)
{
    const qk_format *fs = c->k->tensors[p->sop->tensor].fmt;
    bind_point(c, s, pt);
    int so, skb = sub_block_of(c, b, kb, p->block, fs->block, g0, &so);
    tdec_src ss = quant_src(c, b, p->sop);
    return splat(c, b, tdec_scale(c->f, b, &ss, skb), s->rp.rows);
}

/* acc += qf * m * sc in R lanes (qf: f32 x R, or an f32 scalar). */
static void acc_fma_f(bctx *c, int b, int acc, int qf, int m, int sc)
{
    int R = lanes_of(c, m) > lanes_of(c, sc) ? lanes_of(c, m) : lanes_of(c, sc);
    int cur = emit1(c, b, TIR_VGET, tir_t(TS_F32, R), acc);
    cur = tir_emit(c->f, b, TIR_FMA, tir_t(TS_F32, R), splat(c, b, qf, R), fbin(c, b, TIR_FMUL, m, sc), cur, -1);
    tir_emit(c->f, b, TIR_VSET, tir_t(TS_VOID, 1), acc, cur, -1, -1);
}

/* acc += f32(q) * m * sc in R lanes (q: i32 x R, or an i32 scalar). */
static void acc_fma(bctx *c, int b, int acc, int q, int m, int sc)
{
    acc_fma_f(c, b, acc, emit1(c, b, TIR_SITOFP, tir_t(TS_F32, lanes_of(c, q)), q), m, sc);
}

/* acc += (f32(q) + f32(qs) a) m sc where a is relative to m
 * (rowpack_factors' rel), else acc += (f32(q) m + f32(qs) a) sc, in R
 * lanes (qf: f32 x R, or an f32 scalar; qs: an i32 scalar): sc multiplies
 * once. */
static void acc_fma_sum(bctx *c, int b, int acc, int qf, int qs, int a, int m, int sc, int rel)
{
    int R = lanes_of(c, m) > lanes_of(c, sc) ? lanes_of(c, m) : lanes_of(c, sc);
    qf = splat(c, b, qf, R);
    int sf = splat(c, b, emit1(c, b, TIR_SITOFP, tir_t(TS_F32, 1), qs), R);
    int in = tir_emit(c->f, b, TIR_FMA, tir_t(TS_F32, R), sf, splat(c, b, a, R),
                      rel ? qf : fbin(c, b, TIR_FMUL, qf, splat(c, b, m, R)), -1);
    int cur = emit1(c, b, TIR_VGET, tir_t(TS_F32, R), acc);
    cur = tir_emit(c->f, b, TIR_FMA, tir_t(TS_F32, R), in, rel ? fbin(c, b, TIR_FMUL, m, sc) : splat(c, b, sc, R),
                   cur, -1);
    tir_emit(c->f, b, TIR_VSET, tir_t(TS_VOID, 1), acc, cur, -1, -1);
}

/* var += x (i32 x R) */
static void var_add(bctx *c, int b, int var, int x)
{
    int cur = emit1(c, b, TIR_VGET, c->f->nodes[x].type, var);
    tir_emit(c->f, b, TIR_VSET, tir_t(TS_VOID, 1), var, iadd(c, b, cur, x), -1, -1);
}

#define MAX_MDOT_GROUPS 64

/* 1 when the block's sum(s) * submin terms can be 4-byte dot products
 * (rowpack_mins): integer sub-block mins stored C to a row's 32-bit word
 * (bytes of sub-mins, or 4, 2 or 1-bit ones packed in them: q2_K's
 * nibbles), one per group, and group sums that split into a byte below
 * 2^7 and one above (|sum(s)| <= 128 G < 2^14). sdot reads the sub-min
 * bytes as signed: 8-bit sub-mins only with vpdpbusd. */
static int rowpack_mdot(const stmt_ctx *s, const plan *p, const qk_format *fu)
{
    const qk_rowpack *rp = &s->rp;
    int w = rp->num_bits[QK_FIELD_SUBMIN], C = rp->num_chunk[QK_FIELD_SUBMIN], ng = p->block / p->group;
    if (fu->submin_num == QK_NUM_NONE || C < 2 || p->group != fu->sub_block || ng % C || ng > MAX_MDOT_GROUPS ||
        p->group > 64)
        return 0;
    return p->dot_mode == TIR_DOT_US || w < 8;
}

/* macc[t npts + j] += sum over the block's groups g of sum(s)_g (gsum[g][j],
 * i32 scalars) times row group t's sub-min of g, as 4-byte dots: the
 * rows' word q holds the sub-mins of groups q C .. q C + C - 1; phase ph
 * of it (its bits w ph .. w ph + w - 1 of each byte) those of groups
 * q C + (8 / w) i + ph in byte i, against the bytes sum(s) & 127 (lo) and
 * sum(s) >> 7 (hi) of the same groups; macc += lo dots + (hi dots << 7).
 * In place of a multiply and an add per group and row group. */
static void rowpack_mins(bctx *c, int b, const stmt_ctx *s, const plan *p, int T, int npts, const int *gbase,
                         int kb, int gsum[][MAX_POINTS], const int *macc)
{
    const qk_rowpack *rp = &s->rp;
    const qk_format *fu = c->k->tensors[p->uop->tensor].fmt;
    int R = rp->rows, w = rp->num_bits[QK_FIELD_SUBMIN], C = rp->num_chunk[QK_FIELD_SUBMIN];
    int ng = p->block / p->group, F = 8 / w, uo;
    int ukb = sub_block_of(c, b, kb, p->block, fu->block, 0, &uo);
    int lo[MAX_POINTS], hi[MAX_POINTS], blk[MAX_POINTS];
    for (int t = 0; t < T; t++) /* row group t's group-block */
        blk[t] = iadd(c, b, gbase[t], imul(c, b, ukb, ci(c, b, rp->group_block)));
    uint32_t bm = 0;
    for (int i = 0; i < 4; i++)
        bm |= (uint32_t)((1 << w) - 1) << (8 * i);
    for (int i = 0; i < T * npts; i++)
        lo[i] = hi[i] = cis(c, b, TS_I32, R, 0);
    for (int q = 0; q < ng / C; q++)
        for (int ph = 0; ph < F; ph++) {
            int xb[MAX_POINTS][2];
            for (int j = 0; j < npts; j++)
                for (int h = 0; h < 2; h++) {
                    int x = -1;
                    for (int i = 0; i < 4; i++) {
                        int v = gsum[q * C + F * i + ph][j];
                        if (h)
                            v = emit2(c, b, TIR_SAR, v, cis(c, b, TS_I32, 1, 7));
                        v = emit2(c, b, TIR_AND, v, cis(c, b, TS_I32, 1, h ? 255 : 127));
                        if (i)
                            v = emit2(c, b, TIR_SHL, v, cis(c, b, TS_I32, 1, 8 * i));
                        x = x < 0 ? v : emit2(c, b, TIR_OR, x, v);
                    }
                    xb[j][h] = emit1(c, b, TIR_BITCAST, tir_t(TS_I8, 4 * R), splat(c, b, x, R));
                }
            for (int t = 0; t < T; t++) {
                int m = rowpack_words(c, b, s, p, blk[t], QK_FIELD_SUBMIN, q);
                if (ph)
                    m = emit2(c, b, TIR_SHR, m, cis(c, b, TS_I32, R, w * ph));
                if (w < 8)
                    m = emit2(c, b, TIR_AND, m, cis(c, b, TS_I32, R, (int32_t)bm));
                m = emit1(c, b, TIR_BITCAST, tir_t(TS_I8, 4 * R), m);
                for (int j = 0; j < npts; j++) {
                    int i = t * npts + j;
                    if (macc[i] < 0)
                        continue;
                    lo[i] = dot4(c, b, p, m, xb[j][0], lo[i]);
                    hi[i] = dot4(c, b, p, m, xb[j][1], hi[i]);
                }
            }
        }
    for (int i = 0; i < T * npts; i++)
        if (macc[i] >= 0)
            var_add(c, b, macc[i], iadd(c, b, lo[i], emit2(c, b, TIR_SHL, hi[i], cis(c, b, TS_I32, R, 7))));
}

/* Software prefetch (cfg.prefetch bytes ahead) of the lines of one
 * group-block at byte blk that belong to step `step` (4 items) of the
 * block: line o goes with the step at the same fraction of the block, so
 * the prefetches spread over the loop instead of a burst at its top. One
 * burst per block read q4_K/q5_K/q2_K 15 GB/s cold on one Zen 5 core, one
 * per group of sub-blocks 25-28, and per step tq2_0 21 -> 30 and tq1_0
 * 15 -> 26 (docs/performance.md, fifteenth session). */
static void rowpack_prefetch(bctx *c, int b, const plan *p, const qk_rowpack *rp, int blk, int step)
{
    int64_t nsteps = p->block / 4;
    for (int64_t o = 0; o < rp->group_block; o += 64)
        if (o * nsteps / rp->group_block == step)
            tir_emit(c->f, b, TIR_PREFETCH, tir_t(TS_VOID, 1), c->ptr[p->uop->tensor],
                     iadd(c, b, blk, ci(c, b, o + c->cfg.prefetch)), -1, -1);
}

/* One loop block kb (p->block items) for the T row groups at byte
 * gbase[t] and every point j of the tile: acc[t npts + j] += (dot of the
 * rows' codes and point j's bytes) * row multipliers * the int8
 * operand's scale (+ sum(s) * row addends), per scale group. The int8
 * operand's sums and scales are computed once for the T groups.
 *
 * Integer sub-block scales (rowpack_isub: k-quants) are applied in i32
 * lanes instead: each group's dot times its sub-scale, and sum(s) times
 * its sub-min, are summed over the block, and the float factors of the
 * block (scale, min, the int8 operand's scale) multiply once per block,
 * not once per group. */
static void rowpack_block(bctx *c, int b, const stmt_ctx *s, const point *pts, int npts, int T, const int *acc,
                          const int *nanv, const int *gbase, const int *srow, int kb, int tail, int E)
{
    const plan *p = &s->plans[0];
    const qk_rowpack *rp = &s->rp;
    const qk_format *fu = c->k->tensors[p->uop->tensor].fmt, *fs = c->k->tensors[p->sop->tensor].fmt;
    int R = rp->rows, G = p->group, saved = c->nmemo, outer = b;
    tir_type ti = tir_t(TS_I32, R);
    tdec_src su = {fu, c->ptr[p->uop->tensor], ci(c, b, 0), -1, 1, 0};
    int tfac = tdec_tensor_factor(c->f, b, &su);
    int TS = tfac >= 0 ? splat(c, b, tfac, R) : -1;
    int isub = rowpack_isub(p, fu, fs);
    int bmul[MAX_POINTS], badd[MAX_POINTS], bsc[MAX_POINTS], iacc[MAX_POINTS], macc[MAX_POINTS];
    if (isub) { /* the block's factors, and its integer sums */
        int uo, ukb = sub_block_of(c, b, kb, p->block, fu->block, 0, &uo);
        for (int t = 0; t < T; t++)
            rowpack_factors(c, b, s, p, iadd(c, b, gbase[t], imul(c, b, ukb, ci(c, b, rp->group_block))), -1,
                            srow[t], TS, &bmul[t], NULL, NULL, &badd[t], NULL);
        for (int j = 0; j < npts; j++)
            bsc[j] = rowpack_sscale(c, b, s, p, &pts[j], kb, 0);
        for (int i = 0; i < T * npts; i++) {
            iacc[i] = tir_emit(c->f, b, TIR_VAR, ti, cis(c, b, TS_I32, R, 0), -1, -1, -1);
            macc[i] = badd[i / npts] < 0 ? -1 : tir_emit(c->f, b, TIR_VAR, ti, cis(c, b, TS_I32, R, 0), -1, -1, -1);
        }
    }
    /* sub-block mins C to a row's word: sum(s) * submin over the block as
     * 4-byte dots once the groups are done (rowpack_mdot) */
    int mdot = isub && !tail && rowpack_mdot(s, p, fu);
    int gsum[MAX_MDOT_GROUPS][MAX_POINTS];
    for (int g0 = 0; g0 < p->block; g0 += G) {
        b = outer;
        if (tail) {
            int start = iadd(c, b, imul(c, b, kb, ci(c, b, p->block)), ci(c, b, g0));
            tir_if(c->f, b, tir_emit(c->f, b, TIR_ILT, tir_t(TS_I1, 1), start, E, -1, -1), &b, NULL);
            c->nmemo = saved;
        }
        /* per point: the int8 operand's scale and sum(s) over the group */
        int sc[MAX_POINTS], ssum[MAX_POINTS];
        for (int j = 0; j < npts; j++) {
            sc[j] = isub ? -1 : rowpack_sscale(c, b, s, p, &pts[j], kb, g0);
            bind_point(c, s, &pts[j]);
            ssum[j] = !p->sums_s ? -1 : s->presums ? rowpack_sum_load(c, b, p, kb, g0, E)
                                                   : rowpack_ssum(c, b, p, kb, g0, tail, E);
        }
        int uo, ukb = sub_block_of(c, b, kb, p->block, fu->block, g0, &uo);
        int sub = fu->sub_block ? uo / fu->sub_block : 0;
        int blk[MAX_POINTS], mul[MAX_POINTS], vmul[MAX_POINTS], kmul[MAX_POINTS], add[MAX_POINTS];
        int rel[MAX_POINTS] = {0};
        for (int t = 0; t < T; t++) {
            blk[t] = iadd(c, b, gbase[t], imul(c, b, ukb, ci(c, b, rp->group_block)));
            if (!isub)
                rowpack_factors(c, b, s, p, blk[t], sub, srow[t], TS, &mul[t], &vmul[t], &kmul[t], &add[t], &rel[t]);
            else { /* the group's integer sub-scale and sub-min */
                mul[t] = rowpack_num_bits(c, b, s, p, blk[t], QK_FIELD_SUBSCALE, sub, fu->sub_num);
                add[t] = mdot ? -1 : rowpack_num_bits(c, b, s, p, blk[t], QK_FIELD_SUBMIN, sub, fu->submin_num);
            }
        }
        /* the dots of every group of rows and every point (dot[t npts + j]) */
        int dot[MAX_POINTS][8], F = rowpack_fields(s, p, npts), w = s->rp.parts[0].w, np = p->img.planes;
        for (int i = 0; i < T * npts; i++)
            for (int f = 0; f < 8; f++)
                dot[i][f] = -1;
        /* codes in place, several points or several bytes of image: step
         * by step over the groups (measured faster), each step's codes of
         * every group decoded, then each point's operand bytes broadcast
         * once and fed to every group (a GEMM's independent accumulators
         * next to each other, one step's codes live instead of a group's;
         * group by group, nf4's 4 bytes kept a block's broadcasts live
         * across the groups: 286 stack references an iteration against
         * 161, one thread read DRAM 9 points slower); else (one point,
         * one byte) group by group (q5_0 measured faster) */
        int sm = F > 1 || npts > 1 || np > 1, nt = sm ? T : 1;
        int outer_n = sm ? G / 4 : T, inner_n = sm ? T : G / 4, nu = F > 1 ? 1 : np;
        for (int o = 0; o < outer_n; o++) {
            if (c->cfg.fence) /* a scheduling boundary before each group (or step) */
                tir_emit(c->f, b, TIR_FENCE, tir_t(TS_VOID, 1), -1, -1, -1, -1);
            for (int i0 = 0; i0 < inner_n; i0 += nt) {
                int u[MAX_POINTS][8], neg[MAX_POINTS], st = sm ? o : i0, step = (uo + 4 * st) / 4, f = step % F;
                for (int t = sm ? 0 : o; t < (sm ? T : o + 1); t++) {
                    if (c->cfg.prefetch && !tail)
                        rowpack_prefetch(c, b, p, rp, blk[t], (g0 + 4 * st) / 4);
                    if (F > 1) {
                        u[t][0] = rowpack_field(c, b, s, p, blk[t], step);
                        continue;
                    }
                    int r = rowpack_codes(c, b, s, p, blk[t], step);
                    for (int q = 0; q < np; q++) { /* one dot per byte of the image */
                        tdec_image iq = tdec_image_plane(&p->img, q);
                        u[t][q] = tdec_image_apply(c->f, b, &iq, r);
                    }
                    /* sign-magnitude codes: the sign bit negates the int8 operand */
                    if (p->img.sgn)
                        neg[t] = tir_emit(c->f, b, TIR_ILT, tir_t(TS_I1, 4 * R), r, cis(c, b, TS_I8, 4 * R, 0), -1, -1);
                    if (p->img.nanflag)
                        rowpack_nan_or(c, b, p, R, nanv[t], u[t][np - 1], kb, g0 + 4 * st, tail, E);
                }
                for (int j = 0; j < npts; j++) {
                    bind_point(c, s, &pts[j]);
                    int bc = rowpack_bcast(c, b, s, p, kb, g0 + 4 * st, tail, E), nbc = -1;
                    if (p->img.sgn)
                        nbc = emit2(c, b, TIR_SUB, cis(c, b, TS_I8, 4 * R, 0), bc);
                    for (int t = sm ? 0 : o; t < (sm ? T : o + 1); t++) {
                        int bt = p->img.sgn ? tir_emit(c->f, b, TIR_SELECT, tir_t(TS_I8, 4 * R), neg[t], nbc, bc, -1)
                                            : bc;
                        for (int q = 0; q < nu; q++) {
                            int *d = &dot[t * npts + j][F > 1 ? f : q];
                            *d = dot4(c, b, p, u[t][q], bt, *d < 0 ? cis(c, b, TS_I32, R, 0) : *d);
                        }
                    }
                }
            }
        }
        for (int j = 0; j < npts; j++) {
            bind_point(c, s, &pts[j]);
            for (int t = 0; t < T; t++) {
                int d = -1, *dt = dot[t * npts + j];
                for (int f = 0; f < F; f++)
                    if (dt[f] >= 0) {
                        int x = f ? emit2(c, b, TIR_SAR, dt[f], cis(c, b, TS_I32, R, w * f)) : dt[f];
                        d = d < 0 ? x : iadd(c, b, d, x);
                    }
                for (int q = 1; q < np && p->icomb; q++) /* byte q's dot counts 256^q */
                    d = iadd(c, b, d, emit2(c, b, TIR_SHL, dt[q], cis(c, b, TS_I32, R, 8 * q)));
                if (p->fold) /* value = mul (u + off): the dot of (u + off) and s */
                    d = iadd(c, b, d, splat(c, b, imul(c, b, ssum[j], cis(c, b, TS_I32, 1, p->img.off)), R));
                dt[0] = d;
            }
            for (int t = 0; t < T; t++) {
                int i = t * npts + j;
                if (isub) { /* iacc += dot * subscale; macc += sum(s) * submin */
                    var_add(c, b, iacc[i], imul(c, b, dot[i][0], mul[t]));
                    if (macc[i] >= 0 && mdot)
                        gsum[g0 / G][j] = ssum[j];
                    else if (macc[i] >= 0) {
                        int q = splat(c, b, ssum[j], R);
                        var_add(c, b, macc[i], add[t] >= 0 ? imul(c, b, q, add[t]) : q);
                    }
                    continue;
                }
                /* the hoisted factor times the point's scale: once per block
                 * when it is the same for every group (no row scales) */
                int ksc = kmul[t] >= 0 ? fbin(c, b, TIR_FMUL, splat(c, b, kmul[t], R), sc[j]) : sc[j];
                /* the dot in f32; several bytes' dots (not combined in i32):
                 * byte q's times 256^q, then one product by the factors */
                int L = lanes_of(c, dot[i][0]), qf = -1;
                for (int q = p->icomb ? 0 : np - 1; q >= 0; q--) {
                    int dq = emit1(c, b, TIR_SITOFP, tir_t(TS_F32, L), dot[i][q]);
                    qf = qf < 0 ? dq : tir_emit(c->f, b, TIR_FMA, tir_t(TS_F32, L), qf, cf(c, b, L, 256.0), dq, -1);
                }
                if (add[t] >= 0 && !rel[t]) /* + sum(s) * add */
                    acc_fma_sum(c, b, acc[i], qf, ssum[j], add[t], mul[t], sc[j], 0);
                else if (add[t] >= 0)
                    acc_fma_sum(c, b, acc[i], qf, ssum[j], add[t], vmul[t], ksc, 1);
                else
                    acc_fma_f(c, b, acc[i], qf, vmul[t], ksc);
            }
        }
    }
    b = outer;
    if (mdot)
        rowpack_mins(c, b, s, p, T, npts, gbase, kb, gsum, macc);
    for (int i = 0; isub && i < T * npts; i++) {
        acc_fma(c, b, acc[i], emit1(c, b, TIR_VGET, ti, iacc[i]), bmul[i / npts], bsc[i % npts]);
        if (macc[i] >= 0)
            acc_fma(c, b, acc[i], emit1(c, b, TIR_VGET, ti, macc[i]), badd[i / npts], bsc[i % npts]);
    }
    c->nmemo = saved;
}

/* x's value (f32 scalar) at item e of the sum of the f32 form for point
 * pnt; in a tail block 0 at or past E (its index clamped into x). Added
 * to var xsum unless it is -1. */
static int rowpack_f32_x(bctx *c, int b, const stmt_ctx *s, const point *pnt, const kir_expr *xe, int e, int tail,
                         int E, int xsum)
{
    int live = -1;
    if (tail) {
        live = tir_emit(c->f, b, TIR_ILT, tir_t(TS_I1, 1), e, E, -1, -1);
        e = emit2(c, b, TIR_MIN, e, iadd(c, b, E, ci(c, b, -1)));
    }
    bind_point(c, s, pnt);
    c->env[s->sums[0]->vars[0]] = (binding){e, 0, -1, -1, -1, -1};
    int xv = lower(c, b, xe);
    if (tail)
        xv = tir_emit(c->f, b, TIR_SELECT, tir_t(TS_F32, 1), live, xv, cf(c, b, 1, 0), -1);
    if (xsum >= 0)
        tir_emit(c->f, b, TIR_VSET, tir_t(TS_VOID, 1), xsum,
                 fbin(c, b, TIR_FADD, emit1(c, b, TIR_VGET, tir_t(TS_F32, 1), xsum), xv), -1, -1);
    return xv;
}

/* One loop block kb of the f32 form (rowpack_f32_fit) for the T row
 * groups at byte gbase[t]: a loop over the block's runs (4R bytes: 8 / w
 * steps of 4 codes of every row), in which per item x's value is
 * broadcast once, and per group the run's 32-bit lanes are shifted to
 * the item's bits and looked up as f32 (lut) and summed with x in two
 * partial sums (even and odd items: two FMA chains a group); then
 * acc[t] += the sums times the rows' block factors. A loop, not the
 * block's 16 steps in a row: unrolled, LLVM's schedule kept the runs of
 * every group live and spilled (30-36 GB/s with nf4 in L2, against 38-40
 * for a loop of the same work by hand). In a tail block, x is 0 at
 * items at or past E (the padding's codes are finite: rowpack_f32_fit). */
static void rowpack_block_f32(bctx *c, int b, const stmt_ctx *s, const point *pnt, int T, const int *acc,
                              const int *gbase, const int *srow, int kb, int tail, int E)
{
    const plan *p = &s->plans[0];
    const qk_rowpack *rp = &s->rp;
    const qk_format *fu = c->k->tensors[p->uop->tensor].fmt;
    const kir_expr *sum = s->sums[0], *xe = sum->a->a == p->uop ? sum->a->b : sum->a->a;
    int R = rp->rows, w = rp->parts[0].w, S = 8 / w, n = 1 << w, saved = c->nmemo;
    int saved_lanes = c->lanes, saved_mask = c->mask;
    tir_type tf = tir_t(TS_F32, R), ti = tir_t(TS_I32, R);
    float tab[16];
    for (int code = 0; code < n; code++)
        tab[code] = (float)qk_rowpack_f32_value(fu, (uint32_t)code);
    tdec_src su = {fu, c->ptr[p->uop->tensor], ci(c, b, 0), -1, 1, 0};
    int tfac = tdec_tensor_factor(c->f, b, &su);
    int TS = tfac >= 0 ? splat(c, b, tfac, R) : -1;
    int blk[MAX_POINTS], part[MAX_POINTS][2];
    for (int t = 0; t < T; t++) {
        blk[t] = iadd(c, b, gbase[t], imul(c, b, kb, ci(c, b, rp->group_block)));
        for (int h = 0; h < 2; h++)
            part[t][h] = tir_emit(c->f, b, TIR_VAR, tf, cf(c, b, R, 0), -1, -1, -1);
    }
    int xsum = p->sums_s ? tir_emit(c->f, b, TIR_VAR, tir_t(TS_F32, 1), cf(c, b, 1, 0), -1, -1, -1) : -1;
    int e0 = imul(c, b, kb, ci(c, b, p->block)), body;
    int q = tir_loop(c->f, b, ci(c, b, 0), ci(c, b, p->block / (4 * S)), ci(c, b, 1), TL_SERIAL, "run", &body);
    int at = imul(c, body, q, ci(c, body, rp->seg_bytes)), eq = iadd(c, body, e0, imul(c, body, q, ci(c, body, 4 * S)));
    int v[MAX_POINTS];
    for (int t = 0; t < T; t++) {
        int o = iadd(c, body, blk[t], iadd(c, body, at, ci(c, body, rp->codes)));
        if (c->cfg.prefetch && !tail)
            tir_emit(c->f, body, TIR_PREFETCH, tir_t(TS_VOID, 1), c->ptr[p->uop->tensor],
                     iadd(c, body, o, ci(c, body, c->cfg.prefetch)), -1, -1);
        v[t] = tir_emit(c->f, body, TIR_LOAD, ti, c->ptr[p->uop->tensor], o, -1, -1);
    }
    c->lanes = 1;
    c->mask = -1;
    /* 1- and 2-bit codes in 16 rows: the P = 4 / w codes of a nibble at
     * once, by a permute of a 16-entry table of their partial sums built
     * from x per nibble, shared by the groups */
    int P = R == 16 && w < 4 ? 4 / w : 1;
    for (int nib = 0; P > 1 && nib < 8; nib++) {
        int t4 = nib / 2, j = nib % 2, tab16 = -1;
        for (int u = 0; u < P; u++) {
            int item = 4 * (P * j + u) + t4;
            int xs = splat(c, body, rowpack_f32_x(c, body, s, pnt, xe, iadd(c, body, eq, ci(c, body, item)), tail, E, xsum),
                           R);
            int32_t cv[16];
            for (int l = 0; l < 16; l++) {
                float fv = tab[(l >> (w * u)) & (n - 1)];
                memcpy(&cv[l], &fv, sizeof fv);
            }
            int cu = emit1(c, body, TIR_BITCAST, tf, tir_const_lanes(c->f, body, TS_I32, R, cv));
            tab16 = tab16 < 0 ? fbin(c, body, TIR_FMUL, cu, xs) : tir_emit(c->f, body, TIR_FMA, tf, cu, xs, tab16, -1);
        }
        int sh = 8 * t4 + 4 * j;
        for (int t = 0; t < T; t++) {
            int idx = sh ? emit2(c, body, TIR_SHR, v[t], cis(c, body, TS_I32, R, sh)) : v[t];
            int h = part[t][nib & 1], cur = emit1(c, body, TIR_VGET, tf, h);
            tir_emit(c->f, body, TIR_VSET, tir_t(TS_VOID, 1), h,
                     fbin(c, body, TIR_FADD, cur, tir_emit(c->f, body, TIR_PERM, tf, tab16, idx, -1, -1)), -1, -1);
        }
    }
    for (int item = 0; P == 1 && item < 4 * S; item++) {
        int i = item % 4, st = item / 4;
        int xs = splat(c, body, rowpack_f32_x(c, body, s, pnt, xe, iadd(c, body, eq, ci(c, body, item)), tail, E, xsum),
                       R);
        int sh = 8 * i + w * st;
        for (int t = 0; t < T; t++) {
            int idx = sh ? emit2(c, body, TIR_SHR, v[t], cis(c, body, TS_I32, R, sh)) : v[t];
            int wv = tir_lut_f32(c->f, body, idx, n, tab);
            int h = part[t][item & 1], cur = emit1(c, body, TIR_VGET, tf, h);
            tir_emit(c->f, body, TIR_VSET, tir_t(TS_VOID, 1), h, tir_emit(c->f, body, TIR_FMA, tf, wv, xs, cur, -1),
                     -1, -1);
        }
    }
    c->lanes = saved_lanes;
    c->mask = saved_mask;
    c->nmemo = saved; /* the loop's nodes are not visible after it */
    for (int t = 0; t < T; t++) {
        int mul, add;
        rowpack_factors(c, b, s, p, blk[t], -1, srow[t], TS, &mul, NULL, NULL, &add, NULL);
        int sum2 = fbin(c, b, TIR_FADD, emit1(c, b, TIR_VGET, tf, part[t][0]), emit1(c, b, TIR_VGET, tf, part[t][1]));
        int cur = tir_emit(c->f, b, TIR_FMA, tf, sum2, mul, emit1(c, b, TIR_VGET, tf, acc[t]), -1);
        if (add >= 0) /* + sum(x) * the rows' zero and min term */
            cur = tir_emit(c->f, b, TIR_FMA, tf, splat(c, b, emit1(c, b, TIR_VGET, tir_t(TS_F32, 1), xsum), R), add, cur,
                           -1);
        tir_emit(c->f, b, TIR_VSET, tir_t(TS_VOID, 1), acc[t], cur, -1, -1);
    }
    c->nmemo = saved;
}

/* One loop block of either form of the layout. */
static void rowpack_kblock(bctx *c, int b, const stmt_ctx *s, const point *pts, int npts, int T, const int *acc,
                           const int *nanv, const int *gbase, const int *srow, int kb, int tail, int E)
{
    if (s->rowpack == 2)
        rowpack_block_f32(c, b, s, pts, T, acc, gbase, srow, kb, tail, E);
    else
        rowpack_block(c, b, s, pts, npts, T, acc, nanv, gbase, srow, kb, tail, E);
}

/* Vector registers a one-point loop block of T row groups keeps live
 * (an estimate): per group its f32 accumulator, a dot per byte of the
 * image, the NaN flags and the sign-selected operand; shared, the
 * image's byte tables (a register per 64 entries), the operand's
 * broadcast, its negation and the masks. */
static int rowpack_vregs(const tdec_image *img, int T)
{
    int np = img->planes, tab = 0;
    if (img->kind == TDEC_IMG_LUT)
        tab = np * ((img->nlut + 63) / 64);
    return T * (1 + np + (img->nanflag != 0) + (img->sgn != 0)) + tab + 2 + (img->sgn != 0) + 2;
}

/* A work item of T groups of R rows from n0 (s->np = T R rows) at the
 * points inner0 + j (j < s->ni): the block loop, then each row's epilogue
 * and store (rows < N). */
static void emit_rowpack_points(bctx *c, int b, const stmt_ctx *s, int n0, int inner0)
{
    const plan *p = &s->plans[0];
    const qk_rowpack *rp = &s->rp;
    const kir_tensor *wt = &c->k->tensors[p->uop->tensor];
    int R = rp->rows, npts = s->ni, T = s->np / R;
    point pts[MAX_POINTS];
    int acc[MAX_POINTS], nanv[MAX_POINTS], gbase[MAX_POINTS], srow[MAX_POINTS];
    for (int i = 0; i < T * npts; i++) {
        acc[i] = tir_emit(c->f, b, TIR_VAR, tir_t(TS_F32, R), cf(c, b, R, 0), -1, -1, -1);
        c->f->nodes[acc[i]].name = "acc";
    }
    for (int t = 0; t < T; t++) /* NaN codes seen in each group's rows (rowpack_nan_or) */
        nanv[t] = !p->img.nanflag ? -1
                                  : tir_emit(c->f, b, TIR_VAR, tir_t(TS_I8, 4 * R), cis(c, b, TS_I8, 4 * R, 0), -1, -1, -1);
    for (int j = 0; j < npts; j++) {
        pts[j].par = n0;
        pts[j].inner = inner0 < 0 ? -1 : j ? iadd(c, b, inner0, ci(c, b, j)) : inner0;
    }
    int E = dim_node(c, b, c->k->vars[s->sums[0]->vars[0]].extent);
    int B = p->block, Bu = wt->fmt->block, rh = R * rp->row_header;
    int nbu = emit2(c, b, TIR_DIV, iadd(c, b, dim_node(c, b, wt->dims[1]), ci(c, b, Bu - 1)), ci(c, b, Bu));
    int gbytes = iadd(c, b, imul(c, b, nbu, ci(c, b, rp->group_block)), ci(c, b, rh));
    int grp0 = emit2(c, b, TIR_DIV, n0, ci(c, b, R));
    /* the last work item may hold fewer than T groups: the missing ones
     * read the last group again (their rows are never stored), not the
     * bytes past the tensor */
    int last = iadd(c, b, emit2(c, b, TIR_DIV, iadd(c, b, dim_node(c, b, wt->dims[0]), ci(c, b, R - 1)), ci(c, b, R)),
                    ci(c, b, -1));
    for (int t = 0; t < T; t++) {
        int g = t ? emit2(c, b, TIR_MIN, iadd(c, b, grp0, ci(c, b, t)), last) : grp0;
        int gstart = iadd(c, b, ci(c, b, wt->fmt->tensor_header_bytes), imul(c, b, g, gbytes));
        gbase[t] = rh ? iadd(c, b, gstart, ci(c, b, rh)) : gstart;
        srow[t] = -1; /* the rows' per-row scales */
        if (rp->row_header)
            srow[t] = tdec_num(c->f, b, wt->fmt->scale_num,
                               load_u32_lanes(c, b, c->ptr[p->uop->tensor], gstart, rp->row_header, R));
    }
    /* U blocks per iteration (kblocks, else 64 items of blocks under 64 and
     * at least 128 of the others: 128 items of 32-blocks spilled registers
     * and read q8_0, q5_1 and act_i8_b32 8-18 points further from DRAM's
     * rate; one 64-block was slower for nvfp4_ggml, docs/performance.md),
     * then single blocks, then the partial one */
    int U = c->cfg.kblocks > 1 ? c->cfg.kblocks : B >= 128 ? 1 : B >= 64 ? 128 / B : 64 / B;
    /* the partial block runs as a whole one (not with NaN codes: its
     * padding codes must not count, rowpack_nan_or) */
    int padded = s->rowpack == 1 && !p->img.nanflag && idot_padded(c, p, s->sums[0]->vars[0]);
    int nfull = emit2(c, b, TIR_DIV, padded ? iadd(c, b, E, ci(c, b, B - 1)) : E, ci(c, b, B));
    int body, start = ci(c, b, 0);
    if (U > 1) {
        int nu = imul(c, b, emit2(c, b, TIR_DIV, nfull, ci(c, b, U)), ci(c, b, U));
        int kb = tir_loop(c->f, b, ci(c, b, 0), nu, ci(c, b, U), TL_SERIAL, "kb", &body);
        for (int u = 0; u < U; u++)
            rowpack_kblock(c, body, s, pts, npts, T, acc, nanv, gbase, srow,
                           u ? iadd(c, body, kb, ci(c, body, u)) : kb, 0, E);
        start = nu;
    }
    int kb = tir_loop(c->f, b, start, nfull, ci(c, b, 1), TL_SERIAL, "kb", &body);
    rowpack_kblock(c, body, s, pts, npts, T, acc, nanv, gbase, srow, kb, 0, E);
    if (!padded) {
        int tb;
        tir_if(c->f, b, tir_emit(c->f, b, TIR_ILT, tir_t(TS_I1, 1), imul(c, b, nfull, ci(c, b, B)), E, -1, -1), &tb,
               NULL);
        rowpack_kblock(c, tb, s, pts, npts, T, acc, nanv, gbase, srow, nfull, 1, E);
    }
    int N = dim_node(c, b, c->k->vars[s->st->lhs[s->par]].extent);
    for (int t = 0; t < T; t++)
        for (int j = 0; j < npts; j++) {
            int v = emit1(c, b, TIR_VGET, tir_t(TS_F32, R), acc[t * npts + j]);
            if (p->img.nanflag)
                v = rowpack_nan_rows(c, b, R, nanv[t], v);
            for (int r = 0; r < R; r++) {
                int n = iadd(c, b, n0, ci(c, b, t * R + r)), rb, saved = c->nmemo;
                tir_if(c->f, b, tir_emit(c->f, b, TIR_ILT, tir_t(TS_I1, 1), n, N, -1, -1), &rb, NULL);
                point pt = {n, pts[j].inner};
                bind_point(c, s, &pt);
                int lane = emit1(c, rb, TIR_EXTRACT, tir_t(TS_F32, 1), v);
                c->f->nodes[lane].imm = r;
                c->sumexpr[0] = s->sums[0];
                c->sumval[0] = lane;
                c->nsumval = 1;
                store_result(c, rb, s->st, lower(c, rb, s->rhs));
                c->nsumval = 0;
                c->nmemo = saved;
            }
        }
}

/* All reductions and the epilogue for a register tile of points. */
static void emit_points(bctx *c, int b, const stmt_ctx *s, int par0, int inner0)
{
    if (s->rowpack) {
        emit_rowpack_points(c, b, s, par0, inner0);
        return;
    }
    point pts[MAX_POINTS];
    int npts = 0;
    for (int i = 0; i < s->np; i++)
        for (int j = 0; j < s->ni; j++) {
            pts[npts].par = par0 < 0 ? -1 : i ? iadd(c, b, par0, ci(c, b, i)) : par0;
            pts[npts].inner = inner0 < 0 ? -1 : j ? iadd(c, b, inner0, ci(c, b, j)) : inner0;
            npts++;
        }
    int sumval[MAX_SUMS * MAX_POINTS];
    int acc[MAX_SUMS * MAX_POINTS];
    for (int g = 0; g < s->nsums; g++) {
        int first = -1;
        for (int i = 0; i < s->nsums && first < 0; i++)
            if (s->group[i] == g && s->plans[i].vec)
                first = i;
        if (first < 0)
            continue;
        int L = s->plans[first].lanes;
        for (int i = 0; i < s->nsums; i++)
            for (int p = 0; p < npts && s->group[i] == g; p++) {
                acc[i * npts + p] = tir_emit(c->f, b, TIR_VAR, tir_t(TS_F32, L), cf(c, b, L, 0), -1, -1, -1);
                c->f->nodes[acc[i * npts + p]].name = "acc";
            }
        group_ctx gc = {s, g, pts, npts, acc, NULL, &s->plans[first], -1};
        emit_reduction(c, b, &gc, s->sums[first], &s->plans[first], 0);
        for (int i = 0; i < s->nsums; i++)
            for (int p = 0; p < npts && s->group[i] == g; p++) {
                int v = emit1(c, b, TIR_VGET, tir_t(TS_F32, L), acc[i * npts + p]);
                sumval[i * npts + p] = L > 1 ? emit1(c, b, TIR_HADD, tir_t(TS_F32, 1), v) : v;
            }
    }
    for (int p = 0; p < npts; p++) {
        bind_point(c, s, &pts[p]);
        c->nsumval = 0;
        for (int i = 0; i < s->nsums; i++)
            if (s->plans[i].vec) {
                c->sumexpr[c->nsumval] = s->sums[i];
                c->sumval[c->nsumval++] = sumval[i * npts + p];
            }
        store_result(c, b, s->st, lower(c, b, s->rhs));
        c->nsumval = 0;
    }
}

/* Loops over the LHS variables other than the parallel one; the register-
 * tiled one gets a loop of full tiles of ni points, then the remainder as
 * a cascade of loops of ni/2, ni/4, ..., 1 points (each runs at most once
 * for a power-of-two ni), so a small extent (M = 2..7 of a GEMM under a
 * tile of 4 or 8) still shares each weight load across its points. */
static void emit_lhs(bctx *c, int b, stmt_ctx *s, int pos, int par0, int inner0)
{
    if (pos == s->st->nlhs) {
        emit_points(c, b, s, par0, inner0);
        return;
    }
    if (pos == s->par) {
        emit_lhs(c, b, s, pos + 1, par0, inner0);
        return;
    }
    const kir_var *v = &c->k->vars[s->st->lhs[pos]];
    int E = dim_node(c, b, v->extent);
    int saved = c->nmemo, body;
    if (pos == s->inner && s->ni > 1) {
        int ni = s->ni, start = ci(c, b, 0);
        for (int h = ni; h >= 1; h = h > 1 ? h / 2 : 0) {
            int end = h == 1 ? E : emit2(c, b, TIR_SUB, E, emit2(c, b, TIR_REM, emit2(c, b, TIR_SUB, E, start), ci(c, b, h)));
            int lp = tir_loop(c->f, b, start, end, ci(c, b, h), TL_SERIAL, v->name, &body);
            s->ni = h;
            emit_lhs(c, body, s, pos + 1, par0, lp);
            c->nmemo = saved;
            start = end;
        }
        s->ni = ni;
        return;
    }
    int lp = tir_loop(c->f, b, ci(c, b, 0), E, ci(c, b, 1), TL_SERIAL, v->name, &body);
    if (pos == s->inner)
        emit_lhs(c, body, s, pos + 1, par0, lp);
    else {
        c->env[s->st->lhs[pos]] = (binding){lp, 0, -1, -1, -1, -1};
        emit_lhs(c, body, s, pos + 1, par0, inner0);
    }
    c->nmemo = saved;
}

/* 1 if the schedule asked for a tile size on index `name`. */
static int tile_request(const tir_config *cfg, const char *name)
{
    for (int i = 0; i < cfg->ntiles; i++)
        if (strcmp(cfg->tiles[i].index, name) == 0)
            return 1;
    return 0;
}

static int tile_size(const tir_config *cfg, const char *name, int dflt)
{
    for (int i = 0; i < cfg->ntiles; i++)
        if (strcmp(cfg->tiles[i].index, name) == 0)
            return cfg->tiles[i].size;
    return dflt;
}

/* 1 if e loads a rank-2 quantized parameter whose rows are variable v. */
static int selects_rows(bctx *c, const kir_expr *e, int v)
{
    if (!e)
        return 0;
    if (e->kind == KE_LOAD) {
        const kir_tensor *t = &c->k->tensors[e->tensor];
        if (t->fmt && t->kind == KIR_PARAM && t->rank == 2 && e->idx[0].nterms == 1 && e->idx[0].terms[0].var == v)
            return 1;
    }
    return selects_rows(c, e->a, v) || selects_rows(c, e->b, v);
}

/* The LHS position that selects rows of a quantized load in e (operands
 * in source order, a before b), or -1. params: only kernel parameters,
 * so the weights win over an activation quantized by a temp. */
static int find_par_in(bctx *c, const kir_stmt *st, const kir_expr *e, int params, int depth)
{
    if (!e || depth > 64)
        return -1;
    const kir_tensor *t = e->kind == KE_LOAD ? &c->k->tensors[e->tensor] : NULL;
    if (t && t->fmt && (!params || t->kind == KIR_PARAM))
        for (int d = 0; d + 1 < t->rank; d++)
            for (int i = 0; i < st->nlhs; i++)
                if (e->idx[d].nterms == 1 && e->idx[d].terms[0].var == st->lhs[i])
                    return i;
    int r = find_par_in(c, st, e->a, params, depth + 1);
    return r >= 0 ? r : find_par_in(c, st, e->b, params, depth + 1);
}

/* The parallel LHS variable: the schedule's, else one that selects rows
 * of a quantized parameter (weights), else of any quantized load, else
 * the first. tune.c's model makes the same choice. */
static int choose_par(bctx *c, const kir_stmt *st, const kir_expr *rhs)
{
    for (int i = 0; i < st->nlhs; i++)
        if (c->cfg.parallel[0] && strcmp(c->k->vars[st->lhs[i]].name, c->cfg.parallel) == 0)
            return i;
    if (st->nlhs == 0)
        return -1;
    if (c->cfg.repack) /* row-interleaved weights: the output's last index that selects their rows */
        for (int i = st->nlhs - 1; i >= 0; i--)
            if (selects_rows(c, rhs, st->lhs[i]))
                return i;
    int r = find_par_in(c, st, rhs, 1, 0);
    if (r < 0)
        r = find_par_in(c, st, rhs, 0, 0);
    return r >= 0 ? r : 0;
}

/* Chooses tiles for one statement and plans its reductions. */
static void plan_stmt(bctx *c, stmt_ctx *s)
{
    s->nsums = 0;
    collect_sums(s->rhs, s->sums, &s->nsums);
    int ngroups = 0, nvec = 0;
    for (int i = 0; i < s->nsums; i++) {
        s->plans[i] = is_xnor(c, s->sums[i]) ? (plan){0} : plan_sum(c, s->sums[i]);
        nvec += s->plans[i].vec;
        s->group[i] = -1;
        for (int j = 0; j < i && s->group[i] < 0; j++)
            if (same_group(c, s->sums[j], s->plans[j], s->sums[i], s->plans[i]))
                s->group[i] = s->group[j];
        if (s->group[i] < 0)
            s->group[i] = ngroups++;
    }
    s->par = choose_par(c, s->st, s->rhs);
    s->inner = -1;
    for (int i = s->st->nlhs - 1; i >= 0 && s->inner < 0; i--)
        if (i != s->par)
            s->inner = i;
    s->np = s->par >= 0 ? tile_size(&c->cfg, c->k->vars[s->st->lhs[s->par]].name, c->cfg.tile_par) : 1;
    s->ni = s->inner >= 0 ? tile_size(&c->cfg, c->k->vars[s->st->lhs[s->inner]].name, c->cfg.tile_inner) : 1;
    if (nvec == 0) { /* no vector reduction: no register tile to share loads across */
        s->ni = 1;
        if (!(s->par >= 0 && tile_request(&c->cfg, c->k->vars[s->st->lhs[s->par]].name)))
            s->np = 1;
    }
    /* legality: the accumulators of one tile must fit the vector registers */
    int budget = c->t->kind == QK_TARGET_CPU ? c->t->vector_regs - 4 : 64;
    if (s->np < 1) s->np = 1;
    if (s->ni < 1) s->ni = 1;
    while (s->np * s->ni > MAX_POINTS || (nvec && s->np * s->ni * nvec > budget && s->np * s->ni > 1)) {
        if (s->ni > 1)
            s->ni /= 2;
        else
            s->np /= 2;
    }
}

/* tmma_env.finish: the epilogue and store of one output point of a
 * tensor-core tile, through the general path with the sum's value given. */
typedef struct mma_finish_ctx {
    bctx *c;
    const kir_stmt *st;
    const kir_expr *rhs;
} mma_finish_ctx;

static void mma_finish(void *ctx, int b, const int *lhs, const kir_expr *sum, int v)
{
    mma_finish_ctx *m = ctx;
    bctx *c = m->c;
    for (int i = 0; i < m->st->nlhs; i++)
        c->env[m->st->lhs[i]] = (binding){lhs[i], 0, -1, -1, -1, -1};
    c->nmemo = 0; /* memoized loads of other blocks are not in scope here */
    c->lanes = 1;
    c->mask = -1;
    c->sumexpr[0] = sum;
    c->sumval[0] = v;
    c->nsumval = 1;
    store_result(c, b, m->st, lower(c, b, m->rhs));
    c->nsumval = 0;
    c->nmemo = 0;
}

static int build_grid(bctx *c, stmt_ctx *s, int si, int item_off);

/* The parallel loop of a grid of `count` work items (i64 node) numbered
 * from item_off in the function's item space: its share of [begin, end).
 * With S > 1 streams (a power of two, CPU) the share is cut into S equal
 * runs taken in turn, one item of each: consecutive items then read S
 * distant places of memory, which keeps more lines in flight than one
 * sequential stream when items are short. Returns the item variable;
 * *body is the block that computes it. */
static int grid_loop(bctx *c, int count, int item_off, int S, int *body)
{
    tir_func *f = c->f;
    int b = f->entry;
    int begin = emit1(c, b, TIR_ARG, tir_t(TS_I64, 1), -1), end = emit1(c, b, TIR_ARG, tir_t(TS_I64, 1), -1);
    f->nodes[begin].imm = f->arg_begin;
    f->nodes[end].imm = f->arg_end;
    int lo = emit2(c, b, TIR_MAX, emit2(c, b, TIR_SUB, begin, item_off), ci(c, b, 0));
    int hi = emit2(c, b, TIR_MIN, emit2(c, b, TIR_SUB, end, item_off), count);
    if (c->t->kind != QK_TARGET_CPU || S <= 1)
        return tir_loop(f, b, lo, hi, ci(c, b, 1), TL_PARALLEL, "item", body);
    int sh = 0;
    while ((1 << (sh + 1)) <= S)
        sh++;
    S = 1 << sh;
    int q = emit2(c, b, TIR_DIV, iadd(c, b, emit2(c, b, TIR_SUB, hi, lo), ci(c, b, S - 1)), ci(c, b, S)), lb, eb;
    int j = tir_loop(f, b, ci(c, b, 0), imul(c, b, q, ci(c, b, S)), ci(c, b, 1), TL_PARALLEL, "turn", &lb);
    int it = iadd(c, lb, lo, iadd(c, lb, imul(c, lb, emit2(c, lb, TIR_AND, j, ci(c, lb, S - 1)), q),
                                  emit2(c, lb, TIR_SHR, j, ci(c, lb, sh))));
    f->nodes[it].name = "item";
    tir_if(f, lb, tir_emit(f, lb, TIR_ILT, tir_t(TS_I1, 1), it, hi, -1, -1), body, &eb);
    return it;
}

/* The grid of the int8 operand's group sums (TIR_SCRATCH_SUMS) in the
 * phase before the statement's: one work item per row of the operand,
 * sums[row][g] = the sum of its codes in group g of G items (0 past E).
 * Every work item of the statement then loads its sums instead of adding
 * up the same bytes once per group of weight rows. Returns its item count. */
static int rowpack_sums(bctx *c, stmt_ctx *s, int si, int item_off)
{
    tir_func *f = c->f;
    const plan *p = &s->plans[0];
    const kir_tensor *t = &c->k->tensors[p->sop->tensor];
    int b = f->entry, G = p->group, B = p->block;
    kir_dim ext = t->rank == 2 ? t->dims[0] : (kir_dim){-1, 1};
    f->grids[f->ngrids++] = (tir_grid){si, ext, 1, c->phase};
    c->phase_shift++;
    for (int i = 0; i < f->nscratch; i++)
        if (f->scratch[i].kind == TIR_SCRATCH_SUMS) {
            f->scratch[i].tensor = p->sop->tensor;
            f->scratch[i].group = G;
        }
    int rows = dim_node(c, b, ext), body;
    int it = grid_loop(c, rows, item_off, 1, &body);
    c->nmemo = 0;
    c->mask = -1;
    if (t->rank == 2)
        c->env[p->sop->idx[0].terms[0].var] = (binding){it, 0, -1, -1, -1, -1};
    int E = dim_node(c, body, c->k->vars[s->sums[0]->vars[0]].extent);
    int ng = emit2(c, body, TIR_DIV, iadd(c, body, E, ci(c, body, G - 1)), ci(c, body, G));
    int base = t->rank == 2 ? imul(c, body, it, ng) : ci(c, body, 0);
    int nfull = emit2(c, body, TIR_DIV, E, ci(c, body, B));
    for (int tail = 0; tail < 2; tail++) {
        int lb, kb;
        if (!tail)
            kb = tir_loop(f, body, ci(c, body, 0), nfull, ci(c, body, 1), TL_SERIAL, "kb", &lb);
        else {
            kb = nfull;
            tir_if(f, body, tir_emit(f, body, TIR_ILT, tir_t(TS_I1, 1), imul(c, body, nfull, ci(c, body, B)), E, -1, -1),
                   &lb, NULL);
        }
        int outer = lb, saved = c->nmemo;
        for (int g0 = 0; g0 < B; g0 += G) {
            int gb = outer;
            if (tail) {
                int start = iadd(c, gb, imul(c, gb, kb, ci(c, gb, B)), ci(c, gb, g0));
                tir_if(f, gb, tir_emit(f, gb, TIR_ILT, tir_t(TS_I1, 1), start, E, -1, -1), &gb, NULL);
            }
            int v = rowpack_ssum(c, gb, p, kb, g0, tail, E);
            int gi = iadd(c, gb, imul(c, gb, kb, ci(c, gb, B / G)), ci(c, gb, g0 / G));
            tir_emit(f, gb, TIR_STORE, tir_t(TS_VOID, 1), c->sums, imul(c, gb, iadd(c, gb, base, gi), ci(c, gb, 4)), v,
                     -1);
            c->nmemo = saved;
        }
    }
    c->nmemo = 0;
    return rows;
}

/* Grid loop of one statement over its share of [begin, end). Returns the
 * node counting the statement's work items. */
static int build_stmt(bctx *c, int si, int item_off)
{
    tir_func *f = c->f;
    const kir_stmt *st = &c->k->stmts[si];
    stmt_ctx *s = qk_alloc(c->a, sizeof *s);
    s->st = st;
    kir_index **map = qk_alloc(c->a, (size_t)(c->k->nvars ? c->k->nvars : 1) * sizeof *map);
    s->rhs = expand(c, st->rhs, map, 0);
    if (!s->rhs)
        return -1;
    if (c->t->kind == QK_TARGET_GPU) { /* tensor cores where the operands fit (tir_mma.c) */
        mma_finish_ctx fin = {c, st, s->rhs};
        tmma_env env = {c->f, c->k, c->t, c->ptr, c->stride, c->rowbytes, c->dimnode, mma_finish, &fin};
        int cnt = tmma_build_stmt(&env, st, s->rhs, item_off);
        if (cnt >= 0)
            return cnt;
    }
    plan_stmt(c, s);
    if (c->cfg.repack && s->nsums == 1 && s->plans[0].idot && s->par >= 0) {
        /* both operands have integer codes: the weights (rows = the parallel index) must be u */
        const kir_expr *w = s->plans[0].sop;
        const kir_index *row = &w->idx[0];
        if (c->k->tensors[w->tensor].rank == 2 && row->nterms == 1 && row->terms[0].var == st->lhs[s->par]) {
            c->idot_u = w->tensor;
            plan_stmt(c, s);
            c->idot_u = -1;
        }
    }
    if (c->cfg.repack == 1 && c->t->kind == QK_TARGET_CPU)
        c->cfg.repack = repack_rows(c);
    if (c->cfg.repack) {
        char why[512];
        const char *no = rowpack_unfit(c, s, c->cfg.repack, why, sizeof why);
        if (no) {
            char msg[600];
            snprintf(msg, sizeof msg, "repack=%d: %s", c->cfg.repack, no);
            fail(c, "%s", msg);
            return -1;
        }
        if (c->f->repack_tensor >= 0) {
            fail(c, "%s", "repack: more than one statement reads weights");
            return -1;
        }
        s->rowpack = s->plans[0].idot ? 1 : 2;
        /* T groups of R rows per work item share the int8 operand's sums and
         * scales: tile_par = T R when it asks for more than R rows, else T
         * from the point count (at most 16 accumulators) */
        int R = c->cfg.repack, T;
        s->ni = s->rowpack == 2 ? 1 : s->ni > 8 ? 8 : s->ni; /* the f32 form: one point (a GEMV) */
        if (c->cfg.tile_par >= 2 * R)
            T = c->cfg.tile_par / R;
        else
            T = s->ni >= 8 ? 1 : s->ni >= 4 ? 2 : 4;
        while (T > 1 && T * s->ni > 16)
            T--;
        /* a GEMV's groups in the vector registers, by the builder's
         * choice: e4m3's 3 bytes, sign and NaN flag in 4 groups spilled 1.5
         * stack references a dot and read DRAM at 50-56% on one thread,
         * 81-87% in 2 (3 groups: 53-69%). Measured with AVX-512's 32
         * registers only: with AVX2's 16 the estimate would take fewer
         * groups for every table image, which nothing measured yet */
        while (c->cfg.tile_par < 2 * R && s->ni == 1 && T > 1 && c->t->vector_regs >= 32 &&
               rowpack_vregs(&s->plans[0].img, T) > c->t->vector_regs - 4)
            T--;
        s->np = T * R;
        c->f->repack_tensor = s->plans[0].uop->tensor;
        c->f->repack_rows = c->cfg.repack;
        if (s->rowpack == 1 && s->plans[0].sums_s && c->sums >= 0 && sums_rows_ok(c, s->plans[0].sop)) {
            /* the int8 operand's group sums, once, in a phase before this grid */
            s->presums = 1;
            int n = rowpack_sums(c, s, si, item_off);
            if (n < 0)
                return -1;
            item_off = iadd(c, f->entry, item_off, n);
            int cnt = build_grid(c, s, si, item_off);
            return iadd(c, f->entry, n, cnt);
        }
    }
    return build_grid(c, s, si, item_off);
}

/* The grid loop of a planned statement over its share of [begin, end)
 * from work item item_off. Returns the node counting its items. */
static int build_grid(bctx *c, stmt_ctx *s, int si, int item_off)
{
    tir_func *f = c->f;
    int b = f->entry;
    const kir_stmt *st = s->st;
    kir_dim ext = s->par >= 0 ? c->k->vars[st->lhs[s->par]].extent : (kir_dim){-1, 1};
    f->grids[f->ngrids++] = (tir_grid){si, ext, s->np, 0};
    int E = dim_node(c, b, ext), tp = ci(c, b, s->np);
    int cnt = emit2(c, b, TIR_DIV, iadd(c, b, E, ci(c, b, s->np - 1)), tp), body;
    /* one output per item and no row groups: items are short, take 4 streams */
    int S = c->cfg.streams ? c->cfg.streams : s->np == 1 && !s->rowpack && s->par >= 0 ? 4 : 1;
    int it = grid_loop(c, cnt, item_off, S, &body);
    c->nmemo = 0;
    if (s->par < 0) {
        emit_lhs(c, body, s, 0, -1, -1);
        return cnt;
    }
    int p0 = imul(c, body, it, tp);
    if (s->np == 1 || s->rowpack) {
        emit_lhs(c, body, s, 0, p0, -1);
        return cnt;
    }
    int p1 = emit2(c, body, TIR_MIN, iadd(c, body, p0, tp), E);
    int partial = tir_emit(f, body, TIR_ILT, tir_t(TS_I1, 1), emit2(c, body, TIR_SUB, p1, p0), tp, -1, -1);
    int tb, eb;
    tir_if(f, body, partial, &tb, &eb);
    int np = s->np, rb;
    s->np = 1;
    int r = tir_loop(f, tb, p0, p1, ci(c, tb, 1), TL_SERIAL, c->k->vars[st->lhs[s->par]].name, &rb);
    emit_lhs(c, rb, s, 0, r, -1);
    s->np = np;
    c->nmemo = 0;
    emit_lhs(c, eb, s, 0, p0, -1);
    return cnt;
}

/* ---- materialized temps: quantize() and hadamard() ---- */

static int store_f32(bctx *c, int b, int ptr, int elem, int v)
{
    int off = imul(c, b, elem, ci(c, b, 4));
    return tir_emit(c->f, b, TIR_STORE, tir_t(TS_VOID, 1), ptr, off, v, -1);
}

static int load_f32(bctx *c, int b, int ptr, int elem)
{
    return tir_emit(c->f, b, TIR_LOAD, tir_t(TS_F32, 1), ptr, imul(c, b, elem, ci(c, b, 4)), -1, -1);
}

/* v, negated where kir_hadamard_sign(seed, i) is -1. */
static int hadamard_sign(bctx *c, int b, uint64_t seed, int i, int v)
{
    if (!seed)
        return v;
    const uint64_t g = 0x9E3779B97F4A7C15ull;
    int z = iadd(c, b, i, ci(c, b, (int64_t)(seed * g + g)));
    z = imul(c, b, emit2(c, b, TIR_XOR, z, emit2(c, b, TIR_SHR, z, ci(c, b, 30))),
             ci(c, b, (int64_t)0xBF58476D1CE4E5B9ull));
    z = imul(c, b, emit2(c, b, TIR_XOR, z, emit2(c, b, TIR_SHR, z, ci(c, b, 27))),
             ci(c, b, (int64_t)0x94D049BB133111EBull));
    z = emit2(c, b, TIR_XOR, z, emit2(c, b, TIR_SHR, z, ci(c, b, 31)));
    int neg = tir_emit(c->f, b, TIR_ILT, tir_t(TS_I1, 1), z, ci(c, b, 0), -1, -1);
    return tir_emit(c->f, b, TIR_SELECT, tir_t(TS_F32, 1), neg, emit1(c, b, TIR_FNEG, tir_t(TS_F32, 1), v), v, -1);
}

/* In-place Walsh-Hadamard butterflies over n f32 values at ptr + (base +
 * i*st)*4, in runs of `size` (a power of two dividing n), then 1/sqrt(size). */
static void emit_fwht(bctx *c, int b, int ptr, int base, int st, int n, int size)
{
    int lb;
    int lvl = tir_loop(c->f, b, ci(c, b, 0), ci(c, b, 63), ci(c, b, 1), TL_SERIAL, "lvl", &lb);
    int h = emit2(c, lb, TIR_SHL, ci(c, lb, 1), lvl);
    int tb;
    tir_if(c->f, lb, tir_emit(c->f, lb, TIR_ILT, tir_t(TS_I1, 1), h, size, -1, -1), &tb, NULL);
    int ib;
    int i = tir_loop(c->f, tb, ci(c, tb, 0), emit2(c, tb, TIR_DIV, n, ci(c, tb, 2)), ci(c, tb, 1), TL_SERIAL, "i",
                     &ib);
    int q = emit2(c, ib, TIR_DIV, i, h);
    int j = iadd(c, ib, imul(c, ib, q, iadd(c, ib, h, h)), emit2(c, ib, TIR_SUB, i, imul(c, ib, q, h)));
    int pa = iadd(c, ib, base, imul(c, ib, j, st)), pb = iadd(c, ib, base, imul(c, ib, iadd(c, ib, j, h), st));
    int x = load_f32(c, ib, ptr, pa), y = load_f32(c, ib, ptr, pb);
    store_f32(c, ib, ptr, pa, fbin(c, ib, TIR_FADD, x, y));
    store_f32(c, ib, ptr, pb, fbin(c, ib, TIR_FSUB, x, y));
    int fs = emit1(c, b, TIR_SITOFP, tir_t(TS_F32, 1), emit1(c, b, TIR_TRUNC, tir_t(TS_I32, 1), size));
    int inv = fbin(c, b, TIR_FDIV, cf(c, b, 1, 1.0), emit1(c, b, TIR_FSQRT, tir_t(TS_F32, 1), fs));
    int nb;
    int k = tir_loop(c->f, b, ci(c, b, 0), n, ci(c, b, 1), TL_SERIAL, "i", &nb);
    int pk = iadd(c, nb, base, imul(c, nb, k, st));
    store_f32(c, nb, ptr, pk, fbin(c, nb, TIR_FMUL, load_f32(c, nb, ptr, pk), inv));
}

/* quantize(x[.., k]) of a dense f32 tensor read along the transform
 * variable k itself: the encoder reads x in place (the element offset of
 * k = 0 in *off, bytes) instead of a staged copy. 0 for anything else. */
static int quant_in_place(bctx *c, int b, const kir_stmt *st, const kir_expr *rhs, int tv, int *off)
{
    const kir_expr *a = rhs->a;
    if (rhs->kind != KE_QUANT || a->kind != KE_LOAD)
        return 0;
    const kir_tensor *t = &c->k->tensors[a->tensor];
    const kir_index *last = &a->idx[t->rank - 1];
    if (t->fmt || t->dtype != QK_DT_F32 || last->nterms != 1 || last->c || last->terms[0].coef != 1 ||
        last->terms[0].var != st->lhs[tv])
        return 0;
    for (int d = 0; d < t->rank - 1; d++)
        for (int i = 0; i < a->idx[d].nterms; i++)
            if (a->idx[d].terms[i].var == st->lhs[tv])
                return 0;
    int o = ci(c, b, 0);
    for (int d = 0; d < t->rank - 1; d++) {
        int64_t vcoef;
        o = iadd(c, b, o, imul(c, b, index_node(c, b, &a->idx[d], &vcoef), c->stride[a->tensor * QK_MAX_RANK + d]));
    }
    *off = imul(c, b, o, ci(c, b, 4));
    return 1;
}

/* One line of a transform statement: every LHS variable but the transform
 * variable (position tv) is bound. Offsets are computed before the loop
 * that uses them. */
static void emit_line(bctx *c, int b, const kir_stmt *st, const kir_expr *rhs, int tv)
{
    const kir_tensor *t = &c->k->tensors[st->tensor];
    int n = dim_node(c, b, c->k->vars[st->lhs[tv]].extent);
    int row = ci(c, b, 0), base = ci(c, b, 0), str = ci(c, b, 1);
    if (rhs->kind == KE_QUANT) {
        for (int d = 0; d < st->nlhs - 1; d++)
            row = iadd(c, b, imul(c, b, row, dim_node(c, b, t->dims[d])), c->env[st->lhs[d]].node);
        base = imul(c, b, row, n);
    } else {
        for (int d = 0; d < st->nlhs; d++) {
            int sd = d == st->nlhs - 1 ? ci(c, b, 1) : c->stride[st->tensor * QK_MAX_RANK + d];
            if (d == tv)
                str = sd;
            else
                base = iadd(c, b, base, imul(c, b, c->env[st->lhs[d]].node, sd));
        }
    }
    int out = rhs->kind == KE_QUANT ? c->stage[st->tensor] : c->ptr[st->tensor], xoff;
    if (quant_in_place(c, b, st, rhs, tv, &xoff)) {
        tdec_src dst = {t->fmt, c->ptr[st->tensor], imul(c, b, row, c->rowbytes[st->tensor]), -1};
        tdec_encode_row(c->f, b, &dst, c->ptr[rhs->a->tensor], xoff, n,
                        c->t->kind == QK_TARGET_CPU ? c->t->vector_bits / 32 : 1);
        return;
    }
    int lb;
    int i = tir_loop(c->f, b, ci(c, b, 0), n, ci(c, b, 1), TL_SERIAL, c->k->vars[st->lhs[tv]].name, &lb);
    c->env[st->lhs[tv]] = (binding){i, 0, -1, -1, -1, -1};
    int saved = c->nmemo;
    int v = lower(c, lb, rhs->a);
    c->nmemo = saved;
    if (rhs->kind == KE_HADAMARD)
        v = hadamard_sign(c, lb, rhs->hseed, i, v);
    store_f32(c, lb, out, iadd(c, lb, base, imul(c, lb, i, str)), v);
    if (rhs->kind == KE_QUANT) {
        tdec_src dst = {t->fmt, c->ptr[st->tensor], imul(c, b, row, c->rowbytes[st->tensor]), -1};
        tdec_encode_row(c->f, b, &dst, out, imul(c, b, base, ci(c, b, 4)), n,
                        c->t->kind == QK_TARGET_CPU ? c->t->vector_bits / 32 : 1);
        return;
    }
    emit_fwht(c, b, out, base, str, n, rhs->hsize ? ci(c, b, rhs->hsize) : n);
}

/* Serial loops over the LHS variables from pos on, skipping the parallel
 * (already bound) and transform ones, then the line. */
static void emit_lines(bctx *c, int b, const kir_stmt *st, const kir_expr *rhs, int tv, int par, int pos)
{
    if (pos == st->nlhs) {
        emit_line(c, b, st, rhs, tv);
        return;
    }
    if (pos == tv || pos == par) {
        emit_lines(c, b, st, rhs, tv, par, pos + 1);
        return;
    }
    const kir_var *v = &c->k->vars[st->lhs[pos]];
    int body;
    int lp = tir_loop(c->f, b, ci(c, b, 0), dim_node(c, b, v->extent), ci(c, b, 1), TL_SERIAL, v->name, &body);
    c->env[st->lhs[pos]] = (binding){lp, 0, -1, -1, -1, -1};
    emit_lines(c, body, st, rhs, tv, par, pos + 1);
}

/* Grid of a quantize()/hadamard() statement: one work item per value of
 * its first LHS variable other than the transform variable (or a single
 * item). Returns the node counting its items. */
static int build_transform(bctx *c, int si, int item_off)
{
    tir_func *f = c->f;
    int b = f->entry;
    const kir_stmt *st = &c->k->stmts[si];
    kir_index **map = qk_alloc(c->a, (size_t)(c->k->nvars ? c->k->nvars : 1) * sizeof *map);
    const kir_expr *rhs = expand(c, st->rhs, map, 0);
    if (!rhs)
        return -1;
    int tv = st->nlhs - 1, par = -1;
    for (int d = 0; rhs->kind == KE_HADAMARD && d < st->nlhs; d++)
        if (st->lhs[d] == rhs->hvar)
            tv = d;
    for (int d = 0; d < st->nlhs && par < 0; d++)
        if (d != tv)
            par = d;
    kir_dim ext = par >= 0 ? c->k->vars[st->lhs[par]].extent : (kir_dim){-1, 1};
    f->grids[f->ngrids++] = (tir_grid){si, ext, 1, 0};
    int cnt = dim_node(c, b, ext), body;
    int it = grid_loop(c, cnt, item_off, 1, &body);
    c->nmemo = 0;
    c->lanes = 1;
    c->mask = -1;
    if (par >= 0)
        c->env[st->lhs[par]] = (binding){it, 0, -1, -1, -1, -1};
    emit_lines(c, body, st, rhs, tv, par, 0);
    return cnt;
}

/* Phase of a statement: one more than the latest materialized temp it
 * reads (through fused intermediates); 0 when it reads none. */
static int read_phase(bctx *c, const kir_expr *e, const int *phase, int depth)
{
    if (!e || depth > 64)
        return 0;
    int p = 0;
    if (e->kind == KE_LOAD) {
        const kir_tensor *t = &c->k->tensors[e->tensor];
        if (t->materialized && t->def_stmt >= 0)
            p = phase[t->def_stmt] + 1;
        else if (t->kind != KIR_PARAM && t->def_stmt >= 0)
            p = read_phase(c, c->k->stmts[t->def_stmt].rhs, phase, depth + 1);
    }
    int pa = read_phase(c, e->a, phase, depth), pb = read_phase(c, e->b, phase, depth);
    p = pa > p ? pa : p;
    return pb > p ? pb : p;
}

/* ---- arguments ---- */

static void add_arg(tir_func *f, const char *name, tir_scalar s, qk_dtype dt, int is_const)
{
    f->args[f->nargs++] = (tir_arg){qk_strdup(f->arena, name), s, dt, is_const};
}

static void build_args(bctx *c)
{
    const kir_kernel *k = c->k;
    tir_func *f = c->f;
    int nio = k->nparams + k->nresults;
    f->args = qk_alloc(c->a, (size_t)(nio * QK_MAX_RANK + k->nsyms + 2 * k->ntensors + 3) * sizeof *f->args);
    for (int i = 0; i < nio; i++) {
        const kir_tensor *t = &k->tensors[i];
        add_arg(f, t->name, TS_PTR, t->fmt ? QK_DT_U8 : t->dtype, t->kind == KIR_PARAM);
    }
    for (int i = 0; i < k->nsyms; i++)
        add_arg(f, k->syms[i], TS_I64, QK_DT_NONE, 0);
    for (int i = 0; i < nio; i++) {
        const kir_tensor *t = &k->tensors[i];
        for (int d = 0; !t->fmt && d + 1 < t->rank; d++)
            add_arg(f, qk_asprintf(c->a, "%s_stride%d", t->name, d), TS_I64, QK_DT_NONE, 0);
    }
    f->scratch = qk_alloc(c->a, (size_t)(2 * k->ntensors + 2) * sizeof *f->scratch);
    for (int i = nio; i < k->ntensors; i++) {
        const kir_tensor *t = &k->tensors[i];
        if (!t->materialized)
            continue;
        f->scratch[f->nscratch++] = (tir_scratch){i, t->fmt ? TIR_SCRATCH_PACKED : TIR_SCRATCH_DENSE, f->nargs};
        add_arg(f, t->name, TS_PTR, t->fmt ? QK_DT_U8 : QK_DT_F32, 0);
        if (t->fmt) {
            f->scratch[f->nscratch++] = (tir_scratch){i, TIR_SCRATCH_STAGE, f->nargs};
            add_arg(f, qk_asprintf(c->a, "%s_stage", t->name), TS_PTR, QK_DT_F32, 0);
        }
    }
    if (c->cfg.repack) { /* the int8 operand's group sums (rowpack_sums); tensor set when used */
        f->scratch[f->nscratch++] = (tir_scratch){-1, TIR_SCRATCH_SUMS, f->nargs, 0};
        add_arg(f, "sums", TS_PTR, QK_DT_I32, 0);
    }
    f->arg_begin = f->nargs;
    add_arg(f, "begin", TS_I64, QK_DT_NONE, 0);
    f->arg_end = f->nargs;
    add_arg(f, "end", TS_I64, QK_DT_NONE, 0);
}

static int arg_node(bctx *c, int i)
{
    tir_scalar s = (tir_scalar)c->f->args[i].s;
    int id = emit1(c, c->f->entry, TIR_ARG, tir_t(s, 1), -1);
    c->f->nodes[id].imm = i;
    c->f->nodes[id].name = c->f->args[i].name;
    return id;
}

/* ARG nodes, dims, strides and quantized row sizes, in the entry block. */
static void build_prologue(bctx *c)
{
    const kir_kernel *k = c->k;
    int nio = k->nparams + k->nresults, a = 0, b = c->f->entry;
    for (int i = 0; i < nio; i++)
        c->ptr[i] = arg_node(c, a++);
    for (int i = 0; i < k->nsyms; i++)
        c->dimnode[i] = arg_node(c, a++);
    for (int i = 0; i < nio; i++) {
        const kir_tensor *t = &k->tensors[i];
        for (int d = 0; !t->fmt && d + 1 < t->rank; d++)
            c->stride[i * QK_MAX_RANK + d] = arg_node(c, a++);
    }
    for (int j = 0; j < c->f->nscratch; j++) {
        const tir_scratch *sc = &c->f->scratch[j];
        int node = arg_node(c, a++);
        if (sc->kind == TIR_SCRATCH_SUMS)
            c->sums = node;
        else if (sc->kind == TIR_SCRATCH_STAGE)
            c->stage[sc->tensor] = node;
        else
            c->ptr[sc->tensor] = node;
    }
    for (int i = 0; i < k->ntensors; i++) {
        const kir_tensor *t = &k->tensors[i];
        if (t->fmt) {
            int K = dim_node(c, b, t->dims[t->rank - 1]);
            int nb = emit2(c, b, TIR_DIV, iadd(c, b, K, ci(c, b, t->fmt->block - 1)), ci(c, b, t->fmt->block));
            c->rowbytes[i] = imul(c, b, nb, ci(c, b, t->fmt->block_bytes));
            if (t->fmt->row_header_bytes)
                c->rowbytes[i] = iadd(c, b, c->rowbytes[i], ci(c, b, t->fmt->row_header_bytes));
        } else if (i >= nio && t->materialized) { /* row-major f32 scratch */
            int st = -1;
            for (int d = t->rank - 1; d > 0; d--) {
                int ext = dim_node(c, b, t->dims[d]);
                st = st < 0 ? ext : imul(c, b, st, ext);
                c->stride[i * QK_MAX_RANK + d - 1] = st;
            }
        }
    }
}

/* ---- public ---- */

void tir_default_config(const qk_target *t, tir_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->prefetch = -1; /* the builder's choice: tir_settle_config */
    if (t->kind == QK_TARGET_GPU) {
        cfg->lanes = cfg->tile_par = cfg->tile_inner = cfg->unroll = 1;
        cfg->idot_bytes = 4;
        cfg->kblocks = 1;
        return;
    }
    cfg->lanes = t->vector_bits / 32;
    cfg->tile_par = 4;
    cfg->tile_inner = t->vector_regs >= 32 ? 4 : 2;
    cfg->unroll = 4;
    cfg->idot = 1;
    cfg->idot_bytes = 32;
    cfg->kblocks = 1;
}

/* A parameter in a sign-bit format whose codes are one bit string: a
 * kernel that may reduce by popcount (lower_sum_xnor_row). */
static int bit_string_param(const kir_kernel *k)
{
    for (int i = 0; i < k->ntensors; i++)
        if (k->tensors[i].kind == KIR_PARAM && bit_string(k->tensors[i].fmt))
            return 1;
    return 0;
}

/* 1 if a weight (a quantized parameter of rank 2 or more) has codes of
 * 8 bits or more: block loops read its rows with the software prefetch
 * by default (block_prefetch, TIR_PREFETCH_ROWS). */
static int byte_weights(const kir_kernel *k)
{
    for (int i = 0; i < k->ntensors; i++) {
        const kir_tensor *t = &k->tensors[i];
        if (t->kind == KIR_PARAM && t->fmt && t->rank >= 2 && t->fmt->bits >= 8)
            return 1;
    }
    return 0;
}

void tir_settle_config(const kir_kernel *k, const qk_target *t, tir_config *cfg)
{
    if (cfg->prefetch >= 0)
        return;
    int narrow = 0; /* codes narrower than a byte, or bytes without a one-op integer image (e4m3) */
    for (int i = 0; i < k->ntensors; i++) {
        const qk_format *f = k->tensors[i].fmt;
        tdec_image img;
        narrow |= k->tensors[i].kind == KIR_PARAM && f &&
                  (f->bits < 8 || !tdec_int_image(f, 256, 1, &img) || img.kind == TDEC_IMG_LUT);
    }
    cfg->prefetch = t->kind == QK_TARGET_CPU && narrow && (cfg->repack || bit_string_param(k)) ? TIR_PREFETCH_AUTO
                    : t->kind == QK_TARGET_CPU && !cfg->repack && byte_weights(k)               ? TIR_PREFETCH_ROWS
                                                                                                 : 0;
}

void tir_apply_schedule(const kir_kernel *k, tir_config *cfg)
{
    const kir_sched *s = &k->sched;
    if (!s->present)
        return;
    if (s->parallel)
        snprintf(cfg->parallel, sizeof cfg->parallel, "%s", s->parallel);
    if (s->unroll > 0)
        cfg->unroll = s->unroll > 16 ? 16 : s->unroll;
    for (int i = 0; i < s->ntiles && cfg->ntiles < 8; i++) {
        snprintf(cfg->tiles[cfg->ntiles].index, sizeof cfg->tiles[0].index, "%s", s->tiles[i].index);
        cfg->tiles[cfg->ntiles++].size = s->tiles[i].size;
    }
}

/* A tile request on a reduction index sets the unroll: size/lanes vectors. */
static void reduction_tiles(const kir_kernel *k, tir_config *cfg)
{
    for (int i = 0; i < cfg->ntiles; i++)
        for (int v = 0; v < k->nvars; v++)
            if (k->vars[v].is_reduction && strcmp(k->vars[v].name, cfg->tiles[i].index) == 0) {
                int u = cfg->tiles[i].size / (cfg->lanes ? cfg->lanes : 1);
                cfg->unroll = u < 1 ? 1 : u > 16 ? 16 : u;
            }
}

tir_func *tir_build(qk_arena *a, const kir_kernel *k, const qk_target *t, const tir_config *cfg, char *err,
                    size_t errsz)
{
    bctx *c = qk_alloc(a, sizeof *c);
    *c = (bctx){.k = k, .t = t, .cfg = *cfg, .a = a, .err = err, .errsz = errsz, .mask = -1, .lanes = 1, .idot_u = -1, .sums = -1};
    if (c->cfg.lanes < 1 || c->cfg.lanes > 64)
        c->cfg.lanes = 1;
    tir_settle_config(k, t, &c->cfg);
    reduction_tiles(k, &c->cfg);
    c->f = tir_func_new(a, k->name);
    c->f->cfg = c->cfg;
    int nt = k->ntensors ? k->ntensors : 1;
    c->ptr = qk_alloc(a, (size_t)nt * sizeof *c->ptr);
    c->stride = qk_alloc(a, (size_t)nt * QK_MAX_RANK * sizeof *c->stride);
    c->rowbytes = qk_alloc(a, (size_t)nt * sizeof *c->rowbytes);
    c->stage = qk_alloc(a, (size_t)nt * sizeof *c->stage);
    c->dimnode = qk_alloc(a, (size_t)(k->nsyms ? k->nsyms : 1) * sizeof *c->dimnode);
    c->env = qk_alloc(a, (size_t)(k->nvars ? k->nvars : 1) * sizeof *c->env);
    c->sumval = qk_alloc(a, MAX_SUMS * sizeof *c->sumval);
    c->sumexpr = qk_alloc(a, MAX_SUMS * sizeof *c->sumexpr);
    c->f->grids = qk_alloc(a, (size_t)(2 * k->nstmts + 1) * sizeof *c->f->grids);
    build_args(c);
    build_prologue(c);
    int off = ci(c, c->f->entry, 0);
    int *phase = qk_alloc(a, (size_t)(k->nstmts ? k->nstmts : 1) * sizeof *phase);
    int nphases = 1;
    for (int i = 0; i < k->nstmts; i++) {
        phase[i] = read_phase(c, k->stmts[i].rhs, phase, 0);
        if (phase[i] + 1 > nphases)
            nphases = phase[i] + 1;
    }
    for (int p = 0; p < nphases; p++)
        for (int i = 0; i < k->nstmts && !c->failed; i++) {
            const kir_tensor *t = &k->tensors[k->stmts[i].tensor];
            if (phase[i] != p || (t->kind != KIR_RESULT && !t->materialized))
                continue;
            c->phase = p + c->phase_shift; /* a statement may add a phase before its own (rowpack_sums) */
            int cnt = t->materialized ? build_transform(c, i, off) : build_stmt(c, i, off);
            if (cnt >= 0) {
                off = iadd(c, c->f->entry, off, cnt);
                c->f->grids[c->f->ngrids - 1].phase = p + c->phase_shift;
            }
        }
    c->f->nphases = nphases + c->phase_shift;
    /* an explicit distance that no loop takes is an error; the builder's
     * default for weights of whole bytes is a hint that a kernel whose
     * loops do not read them in block loops (a GEMM, integer dots) ignores */
    tir_config dflt = *cfg;
    dflt.prefetch = -1;
    tir_settle_config(k, t, &dflt);
    if (!c->failed && c->cfg.prefetch && c->f->repack_tensor < 0 && !c->pf_site && !bit_string_param(k) &&
        !(dflt.prefetch == TIR_PREFETCH_ROWS && c->cfg.prefetch == TIR_PREFETCH_ROWS))
        fail(c, "%s", "prefetch: software prefetch applies to row-interleaved weights (repack=R), to popcount "
                      "reductions of sign-bit weights and to the block loops of matrix-vector products, which "
                      "this kernel does not have");
    int fences = 0;
    for (int i = 0; i < c->f->nnodes && c->cfg.fence; i++)
        fences += c->f->nodes[i].op == TIR_FENCE;
    if (!c->failed && c->cfg.fence && !fences)
        fail(c, "%s", "fence: a scheduling boundary applies to the loop blocks of row-interleaved weights "
                      "(repack=R) on a CPU, which this kernel does not have");
    return c->failed ? NULL : c->f;
}

static int64_t grid_items(const tir_grid *g, const int64_t *dims)
{
    int64_t e = kir_dim_value(g->extent, dims);
    return e > 0 ? (e + g->tile - 1) / g->tile : 0;
}

void tir_phase_items(const tir_func *f, const int64_t *dims, int p, int64_t *lo, int64_t *hi)
{
    int64_t n = 0;
    *lo = *hi = -1;
    for (int g = 0; g < f->ngrids; g++) {
        if (f->grids[g].phase == p && *lo < 0)
            *lo = n;
        n += grid_items(&f->grids[g], dims);
        if (f->grids[g].phase == p)
            *hi = n;
    }
    if (*lo < 0)
        *lo = *hi = n;
}

int64_t tir_scratch_bytes(const tir_func *f, const kir_kernel *k, int i, const int64_t *dims)
{
    if (f->scratch[i].tensor < 0)
        return 0;
    const kir_tensor *t = &k->tensors[f->scratch[i].tensor];
    int64_t n = 1, K = kir_dim_value(t->dims[t->rank - 1], dims);
    for (int d = 0; d < t->rank; d++)
        n *= kir_dim_value(t->dims[d], dims);
    switch (f->scratch[i].kind) {
    case TIR_SCRATCH_PACKED: return qk_format_size(t->fmt, K ? n / K : 0, K);
    case TIR_SCRATCH_SUMS: {
        int64_t G = f->scratch[i].group;
        return (K ? n / K : 0) * ((K + G - 1) / G) * 4;
    }
    default: return n * 4;
    }
}

int64_t tir_work_items(const tir_func *f, const int64_t *dims)
{
    int64_t n = 0;
    for (int g = 0; g < f->ngrids; g++) {
        int64_t e = kir_dim_value(f->grids[g].extent, dims);
        int64_t t = f->grids[g].tile;
        n += e > 0 ? (e + t - 1) / t : 0;
    }
    return n;
}
