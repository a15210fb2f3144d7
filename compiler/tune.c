/* tune.c — the autotuner's cost model and candidate search (tune.h).
 *
 * The model's job is a sensible ranking of tile configurations, not an
 * accurate time: `qkc tune` measures the best few and keeps the fastest,
 * and reports how well this ranking agreed (tune_rank_corr). Every
 * constant below is a round figure, stated where it is used.
 *
 * For each statement that gets a grid (results and materialized temps;
 * other temps are fused into their readers, so their loads are followed)
 * the model sees: the output points (product of the LHS extents), the
 * reduction length, the parallel index (the one the builder picks: the
 * schedule's, else one that selects rows of a quantized tensor) with
 * extent Np and tile tp = tile_par, a second LHS index (M of a GEMM) with
 * extent Mi and tile ti = tile_inner, the operand streamed in the largest
 * volume (the weights, W) and the rest (activations, X).
 *
 *   time = max(memory, compute) * imbalance + per-item overhead + launch
 *
 * memory:  W once from the level it fits in (DRAM beyond L3, else L3,
 *          else L2), plus X once per work item (Np/tp items) from the
 *          level X fits in, plus — with a second LHS index — W's tile
 *          re-read once per inner step from L1/L2.
 * compute: vector instructions per chunk of V reduction elements, in a
 *          register tile of tp x ti accumulators (BLIS-style: a decoded
 *          weight vector feeds ti multiply-adds, an activation vector tp):
 *            f32 path:  tp*decode + ti*1 (loads) + tp*ti (FMA)
 *            DOT4 path: per chunk of idot_bytes elements,
 *                       tp*decode_int + ti + tp*ti DOT4, plus the block
 *                       scales (3 per block and point)
 *          divided by tp*ti*V elements, so loads per multiply-add fall as
 *          (tp+ti)/(tp*ti); at least the target's peak rate (f32 FMA or
 *          int8 dot). decode is a per-format figure (decode_ops below):
 *          cheap for integer codes, more for minifloats and tables, a
 *          load of a codeword per book for vector codebooks (a gather,
 *          a load a lane, when V spans several codewords), a gather of
 *          the activations for N:M. Too few independent accumulator chains
 *          (tp * ti * unroll, or * kblocks) stall on FMA latency.
 *
 * GPU targets have their own model (below, "the GPU model") and search
 * (enumerate_gpu); their legality by registers and shared memory is
 * tune_gpu.c's.
 *
 * The search enumerates the parameters the kernel responds to (a
 * schedule block's tile requests pin theirs), drops configurations whose
 * accumulators do not fit the vector registers, sorts by the model and
 * keeps the first configuration of each distinct code (the tiled IR it
 * builds), so no two candidates measure the same machine code.
 *
 * Prefix: tune_. */
#include "compiler/tune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TUNE_MAX_DEPTH 16


/* ---- what the model knows of one statement ---- */

typedef struct tune_stmt {
    double points;         /* output points */
    double red;            /* reduction elements per point (1: none) */
    double np, ni;         /* extents of the parallel and the inner LHS index (1: none) */
    int par, inner;        /* kir vars, or -1 */
    int nsums;             /* top-level reductions (accumulators per point) */
    int dense_red;         /* a reduction reading no quantized tensor: unroll applies */
    int quant_red;         /* a reduction over a quantized tensor: kblocks applies */
    int int_dot;           /* a product of two integer-coded quantized loads: idot applies */
    int wt;                /* the tensor streamed most (weights), or -1 */
    double wbytes;         /* its bytes */
    double xbytes;         /* bytes of every other tensor read */
    double wrow;           /* bytes of one row of W along the parallel index */
    const qk_format *wfmt; /* W's format, or NULL when W is dense */
    int wdense_bytes;      /* dense W: element size */
} tune_stmt;

/* Tensors read by a statement, following fused temps. */
typedef struct tune_walk {
    const kir_kernel *k;
    char *read; /* tensor -> read */
    int depth;
} tune_walk;

static double tensor_bytes(const kir_kernel *k, int t, const int64_t *dims)
{
    const kir_tensor *ts = &k->tensors[t];
    double rows = 1;
    int64_t last = 1;
    for (int d = 0; d < ts->rank; d++) {
        int64_t v = kir_dim_value(ts->dims[d], dims);
        v = v < 0 ? 0 : v;
        if (d + 1 < ts->rank)
            rows *= (double)v;
        else
            last = v;
    }
    if (ts->fmt)
        return rows * (double)qk_format_row_bytes(ts->fmt, last) + ts->fmt->tensor_header_bytes;
    int es = ts->dtype == QK_DT_NONE ? 4 : qk_dtype_size(ts->dtype);
    return rows * (double)last * es;
}

static int is_fused_temp(const kir_kernel *k, int t)
{
    return k->tensors[t].kind == KIR_TEMP && !k->tensors[t].materialized && k->tensors[t].def_stmt >= 0;
}

static void mark_reads(tune_walk *w, const kir_expr *e)
{
    if (!e)
        return;
    if (e->kind == KE_LOAD) {
        if (is_fused_temp(w->k, e->tensor) && w->depth < TUNE_MAX_DEPTH) {
            w->depth++;
            mark_reads(w, w->k->stmts[w->k->tensors[e->tensor].def_stmt].rhs);
            w->depth--;
        } else
            w->read[e->tensor] = 1;
    }
    mark_reads(w, e->a);
    mark_reads(w, e->b);
}

/* Integer codes: DOT4 can multiply them. */
static int int_code(const qk_format *f)
{
    return f && (f->code == QK_CODE_SINT || f->code == QK_CODE_UINT || f->code == QK_CODE_OFFSET ||
                 f->code == QK_CODE_TERNARY || f->code == QK_CODE_BINARY);
}

/* The format of a load, following fused temps that are a plain load. */
static const qk_format *load_format(const kir_kernel *k, const kir_expr *e, int depth)
{
    if (!e || e->kind != KE_LOAD)
        return NULL;
    if (k->tensors[e->tensor].fmt)
        return k->tensors[e->tensor].fmt;
    if (is_fused_temp(k, e->tensor) && depth < TUNE_MAX_DEPTH)
        return load_format(k, k->stmts[k->tensors[e->tensor].def_stmt].rhs, depth + 1);
    return NULL;
}

/* Facts about one reduction body: quantized loads, a product of two. */
static void scan_sum(const kir_kernel *k, const kir_expr *e, int *quant, int *idot, int depth)
{
    if (!e || depth > TUNE_MAX_DEPTH)
        return;
    if (e->kind == KE_LOAD) {
        if (load_format(k, e, 0))
            *quant = 1;
        else if (is_fused_temp(k, e->tensor))
            scan_sum(k, k->stmts[k->tensors[e->tensor].def_stmt].rhs, quant, idot, depth + 1);
        return;
    }
    if (e->kind == KE_BIN && e->op == KB_MUL && int_code(load_format(k, e->a, 0)) && int_code(load_format(k, e->b, 0)))
        *idot = 1;
    scan_sum(k, e->a, quant, idot, depth + 1);
    scan_sum(k, e->b, quant, idot, depth + 1);
}

/* Top-level reductions of a statement, fused temps followed (the builder
 * substitutes them, so their sums are the statement's). */
static void scan_sums(const kir_kernel *k, const kir_expr *e, const int64_t *dims, tune_stmt *s, int depth)
{
    if (!e || depth > TUNE_MAX_DEPTH)
        return;
    if (e->kind == KE_LOAD && is_fused_temp(k, e->tensor)) {
        scan_sums(k, k->stmts[k->tensors[e->tensor].def_stmt].rhs, dims, s, depth + 1);
        return;
    }
    if (e->kind == KE_SUM) {
        int quant = 0, idot = 0;
        scan_sum(k, e->a, &quant, &idot, 0);
        double len = 1;
        for (int i = 0; i < e->nvars; i++)
            len *= (double)kir_dim_value(k->vars[e->vars[i]].extent, dims);
        s->red = s->red > len ? s->red : len;
        s->nsums++;
        s->quant_red |= quant;
        s->dense_red |= !quant;
        s->int_dot |= idot;
        return;
    }
    scan_sums(k, e->a, dims, s, depth + 1);
    scan_sums(k, e->b, dims, s, depth + 1);
}

/* The builder's choice of parallel index (tir_build.c choose_par): the
 * configuration's, else an LHS variable selecting rows of a quantized
 * parameter, else of any quantized load (in the statement as fused temps
 * expand it), else the first. map: kir variable -> the LHS position of
 * st it stands for, or -1. params: only parameters. */
static int find_par_in(const kir_kernel *k, const kir_expr *e, const int *map, int params, int depth)
{
    if (!e || depth > TUNE_MAX_DEPTH)
        return -1;
    if (e->kind == KE_LOAD && k->tensors[e->tensor].fmt && (!params || k->tensors[e->tensor].kind == KIR_PARAM)) {
        for (int d = 0; d + 1 < k->tensors[e->tensor].rank; d++)
            if (e->idx[d].nterms == 1 && map[e->idx[d].terms[0].var] >= 0)
                return map[e->idx[d].terms[0].var];
    }
    if (e->kind == KE_LOAD && is_fused_temp(k, e->tensor)) { /* the temp's LHS variables are the load's indices */
        const kir_stmt *def = &k->stmts[k->tensors[e->tensor].def_stmt];
        int *sub = malloc((size_t)k->nvars * sizeof *sub), r = -1;
        if (!sub)
            return -1;
        for (int v = 0; v < k->nvars; v++)
            sub[v] = -1;
        for (int j = 0; j < def->nlhs && j < k->tensors[e->tensor].rank; j++)
            if (e->idx[j].nterms == 1)
                sub[def->lhs[j]] = map[e->idx[j].terms[0].var];
        r = find_par_in(k, def->rhs, sub, params, depth + 1);
        free(sub);
        return r;
    }
    int r = find_par_in(k, e->a, map, params, depth + 1);
    return r >= 0 ? r : find_par_in(k, e->b, map, params, depth + 1);
}

static int choose_par(const kir_kernel *k, const kir_stmt *st, const tir_config *cfg)
{
    if (st->nlhs == 0)
        return -1;
    for (int i = 0; i < st->nlhs; i++)
        if (cfg->parallel[0] && strcmp(k->vars[st->lhs[i]].name, cfg->parallel) == 0)
            return i;
    int *map = malloc((size_t)(k->nvars ? k->nvars : 1) * sizeof *map), r = -1;
    if (map) {
        for (int v = 0; v < k->nvars; v++)
            map[v] = -1;
        for (int i = 0; i < st->nlhs; i++)
            map[st->lhs[i]] = i;
        r = find_par_in(k, st->rhs, map, 1, 0);
        if (r < 0)
            r = find_par_in(k, st->rhs, map, 0, 0);
        free(map);
    }
    return r >= 0 ? r : 0;
}

/* W: the largest tensor read; X: the rest. */
static void split_operands(const kir_kernel *k, const char *read, const int64_t *dims, tune_stmt *s)
{
    s->wt = -1;
    double best = -1;
    for (int t = 0; t < k->ntensors; t++)
        if (read[t] && tensor_bytes(k, t, dims) > best) {
            best = tensor_bytes(k, t, dims);
            s->wt = t;
        }
    for (int t = 0; t < k->ntensors; t++)
        if (read[t] && t != s->wt)
            s->xbytes += tensor_bytes(k, t, dims);
    if (s->wt < 0)
        return;
    const kir_tensor *w = &k->tensors[s->wt];
    s->wbytes = best;
    s->wfmt = w->fmt;
    s->wdense_bytes = w->dtype == QK_DT_NONE ? 4 : qk_dtype_size(w->dtype);
    double rows = 1;
    for (int d = 0; d + 1 < w->rank; d++)
        rows *= (double)kir_dim_value(w->dims[d], dims);
    s->wrow = rows > 0 ? best / rows : best;
}

static void analyze_stmt(const kir_kernel *k, int si, const tir_config *cfg, const int64_t *dims, tune_stmt *s)
{
    const kir_stmt *st = &k->stmts[si];
    memset(s, 0, sizeof *s);
    s->points = 1;
    s->red = 1;
    s->np = s->ni = 1;
    s->par = s->inner = -1;
    for (int i = 0; i < st->nlhs; i++)
        s->points *= (double)kir_dim_value(k->vars[st->lhs[i]].extent, dims);
    int pp = choose_par(k, st, cfg), ip = -1;
    for (int i = st->nlhs - 1; i >= 0 && ip < 0; i--)
        if (i != pp)
            ip = i;
    if (pp >= 0) {
        s->par = st->lhs[pp];
        s->np = (double)kir_dim_value(k->vars[s->par].extent, dims);
    }
    if (ip >= 0) {
        s->inner = st->lhs[ip];
        s->ni = (double)kir_dim_value(k->vars[s->inner].extent, dims);
    }
    scan_sums(k, st->rhs, dims, s, 0);
    char *read = calloc((size_t)(k->ntensors ? k->ntensors : 1), 1);
    if (!read)
        return;
    tune_walk w = {k, read, 0};
    mark_reads(&w, st->rhs);
    split_operands(k, read, dims, s);
    free(read);
}

/* Statements that get a grid: results and materialized temps. */
static int has_grid(const kir_kernel *k, int si)
{
    const kir_tensor *t = &k->tensors[k->stmts[si].tensor];
    return t->kind == KIR_RESULT || t->materialized;
}

/* ---- the parts of a configuration the kernel responds to ---- */

typedef struct tune_kinfo {
    int has_inner; /* some statement has a second LHS index */
    int dense_red, quant_red, int_dot;
    int max_sums;
    int pin_par, pin_inner, pin_red; /* schedule requests on those indices */
    int req_par, req_inner;          /* their sizes */
    double min_inner;                /* the smallest extent of a second LHS index (0: none) */
} tune_kinfo;

static int tile_request(const tir_config *cfg, const char *name, int *size)
{
    for (int i = 0; i < cfg->ntiles; i++)
        if (strcmp(cfg->tiles[i].index, name) == 0) {
            if (size)
                *size = cfg->tiles[i].size;
            return 1;
        }
    return 0;
}

static void kernel_info(const kir_kernel *k, const tir_config *base, const int64_t *dims, tune_kinfo *ki)
{
    memset(ki, 0, sizeof *ki);
    for (int si = 0; si < k->nstmts; si++) {
        if (!has_grid(k, si))
            continue;
        tune_stmt s;
        analyze_stmt(k, si, base, dims, &s);
        ki->has_inner |= s.inner >= 0;
        if (s.inner >= 0 && (ki->min_inner == 0 || s.ni < ki->min_inner))
            ki->min_inner = s.ni;
        ki->dense_red |= s.dense_red;
        ki->quant_red |= s.quant_red;
        ki->int_dot |= s.int_dot;
        ki->max_sums = s.nsums > ki->max_sums ? s.nsums : ki->max_sums;
        if (s.par >= 0 && tile_request(base, k->vars[s.par].name, &ki->req_par))
            ki->pin_par = 1;
        if (s.inner >= 0 && tile_request(base, k->vars[s.inner].name, &ki->req_inner))
            ki->pin_inner = 1;
    }
    for (int v = 0; v < k->nvars; v++)
        if (k->vars[v].is_reduction && tile_request(base, k->vars[v].name, NULL))
            ki->pin_red = 1;
}

/* ---- machine rates ---- */

typedef struct tune_rates {
    double vops;             /* vector instructions per second of one core */
    double f32, i8;          /* peak FLOP/s and int8 OP/s of one core */
    double dram, l3, l2, l1; /* bytes/s for the thread count */
    int vnni;                /* a native DOT4 instruction */
} tune_rates;

/* Round figures for a target nobody probed: 3 GHz, two FMA ports, DRAM
 * 12 GB/s on one thread growing sublinearly, caches per core. */
static void rates(const qk_target *t, int threads, const tune_limits *lim, tune_rates *r)
{
    int maxl = t->vector_bits >= 32 ? t->vector_bits / 32 : 1;
    double th = threads > 0 ? threads : 1;
    r->vnni = (t->features & (QK_FEAT_AVX512VNNI | QK_FEAT_AVXVNNI | QK_FEAT_DOTPROD)) != 0;
    r->f32 = lim && lim->f32_flops > 0 ? lim->f32_flops : maxl * 2.0 * 2.0 * 3e9;
    r->i8 = lim && lim->int8_ops > 0 ? lim->int8_ops : r->f32 * (r->vnni ? 4 : 2);
    r->vops = r->f32 / (2.0 * maxl); /* FMA instructions per second = vector issue rate */
    r->dram = lim && lim->dram_bw > 0 ? lim->dram_bw : 12e9 * pow(th, 0.7);
    r->l3 = lim && lim->l3_bw > 0 ? lim->l3_bw : 30e9 * th;
    r->l2 = lim && lim->l2_bw > 0 ? lim->l2_bw : 120e9 * th;
    r->l1 = r->l2 * 3;
}

/* Bandwidth of the level a working set of `bytes` streams from (private
 * L2 per thread, shared L3). */
static double level_bw(const qk_target *t, const tune_rates *r, double bytes, int threads)
{
    double l1 = t->l1 > 0 ? (double)t->l1 : 32768, l2 = t->l2 > 0 ? (double)t->l2 : 1 << 20;
    double l3 = t->l3 > 0 ? (double)t->l3 : 8 << 20;
    if (bytes <= l1 / 2)
        return r->l1;
    if (bytes <= l2 * (threads > 0 ? threads : 1) * 0.75)
        return r->l2;
    return bytes <= l3 * 0.75 ? r->l3 : r->dram;
}

/* ---- decode cost ---- */

/* Vector instructions to turn one vector of codes into f32 values,
 * scale included (round figures). */
static double decode_ops(const qk_format *f, int cpu)
{
    if (!f)
        return 0;
    double d;
    switch (f->code) {
    case QK_CODE_SINT:
    case QK_CODE_UINT:
    case QK_CODE_OFFSET:
        d = f->bits == 8 ? 2.5 : 3.5;
        d += (8 % f->bits) ? 1.5 : 0; /* 3, 5, 6, 7 bits: codes straddle bytes or split pieces */
        break;
    case QK_CODE_TERNARY: d = 3; break;
    case QK_CODE_BINARY: d = 2.5; break;
    case QK_CODE_MINIFLOAT: d = 5; break;
    case QK_CODE_TABLE: d = f->bits <= 4 ? 4 : 9; break; /* in-register shuffle, else a gather */
    case QK_CODE_VQ: /* per book a load of a codeword's values, a conversion and an add (vectors no
                        wider than a codeword: tiles_compute_time adds the gather of wider ones) */
        d = 3.0 * (f->vq_books > 0 ? f->vq_books : 1) + (f->vq_signs ? 6 : 0);
        break;
    default: d = 4; break;
    }
    for (int p = 0; p < f->npieces; p++) /* base-3 digits: a multiply and shifts per digit */
        d += f->pieces[p].place == QK_PLACE_BASE3 ? 3 : 0;
    d += f->sub_block ? 1 : 0;
    d += f->min_num != QK_NUM_NONE ? 1 : 0;
    d += f->zero != QK_ZERO_NONE ? 1 : 0;
    /* N:M: a GPU gathers the dense operand at the kept positions; a CPU
     * moves each kept item of a group to its dense lane (two shuffles, a
     * compare and a select: tdec_chunk_dense) */
    d += f->sp_n ? (cpu ? 4.0 * f->sp_n : 6) : 0;
    return d;
}

/* Vector instructions to turn a chunk of integer codes into int8 lanes. */
static double decode_int_ops(const qk_format *f)
{
    if (!f)
        return 1;
    double d = f->bits >= 8 ? 0.5 : 2;
    d += (8 % f->bits) ? 1.5 : 0;
    for (int p = 0; p < f->npieces; p++)
        d += f->pieces[p].place == QK_PLACE_BASE3 ? 3 : 0;
    d += f->sp_n ? 4.0 * f->sp_n : 0; /* N:M: the expansion to dense bytes (tdec_codes_u8) */
    return d + (f->zero != QK_ZERO_NONE || f->min_num != QK_NUM_NONE ? 1 : 0);
}

/* ---- the model ---- */

/* Lanes the builder uses for a reduction over blocks of `block` items:
 * the largest power of two <= lanes that divides it. */
static int block_lanes(int lanes, const qk_format *f)
{
    int v = 1;
    while (v * 2 <= lanes)
        v *= 2;
    int items = f ? (f->sp_n ? f->kept : f->block) : 0;
    while (items && v > 1 && items % v)
        v /= 2;
    return v;
}

/* Rows of a row-interleaved group: repack=R, or for 1 the builder's
 * choice (tir_build.c repack_rows: a vector of i32 lanes, at most 16). */
static int repack_rows_of(const qk_target *t, const tir_config *cfg)
{
    int v = t->vector_bits / 32;
    return cfg->repack > 1 ? cfg->repack : v > 16 ? 16 : v < 4 ? 4 : v;
}

/* The register tile the builder ends up with (tir_build.c plan_stmt):
 * schedule requests win, then halve until the accumulators fit. */
static void effective_tile(const kir_kernel *k, const qk_target *t, const tir_config *cfg, const tune_stmt *s, int *tp,
                           int *ti)
{
    *tp = s->par >= 0 ? cfg->tile_par : 1;
    *ti = s->inner >= 0 ? cfg->tile_inner : 1;
    if (s->par >= 0)
        tile_request(cfg, k->vars[s->par].name, tp);
    if (s->inner >= 0)
        tile_request(cfg, k->vars[s->inner].name, ti);
    if (s->nsums == 0) {
        *ti = 1;
        if (!(s->par >= 0 && tile_request(cfg, k->vars[s->par].name, NULL)))
            *tp = 1;
    }
    *tp = *tp < 1 ? 1 : *tp;
    *ti = *ti < 1 ? 1 : *ti;
    if (cfg->repack && s->int_dot && s->par >= 0 && t->kind == QK_TARGET_CPU) {
        /* tir_build.c: T groups of R rows a work item, at most 8 points, T x points <= 16 */
        int R = repack_rows_of(t, cfg), pts = s->ni > 8 ? 8 : s->ni < 1 ? 1 : (int)s->ni;
        int T = cfg->tile_par >= 2 * R ? cfg->tile_par / R : pts >= 8 ? 1 : pts >= 4 ? 2 : 4;
        while (T > 1 && T * pts > 16)
            T--;
        *tp = T * R;
        *ti = pts;
        return;
    }
    int budget = t->kind == QK_TARGET_CPU ? t->vector_regs - 4 : 64;
    while (*tp * *ti > 64 || (s->nsums && *tp * *ti * s->nsums > budget && *tp * *ti > 1)) {
        if (*ti > 1)
            *ti /= 2;
        else
            *tp /= 2;
    }
}

/* Effective unroll of dense reductions (a schedule tile on a reduction
 * index sets it to size / lanes). */
static int effective_unroll(const kir_kernel *k, const tir_config *cfg)
{
    int u = cfg->unroll > 0 ? cfg->unroll : 1;
    for (int i = 0; i < cfg->ntiles; i++)
        for (int v = 0; v < k->nvars; v++)
            if (k->vars[v].is_reduction && strcmp(k->vars[v].name, cfg->tiles[i].index) == 0) {
                u = cfg->tiles[i].size / (cfg->lanes > 0 ? cfg->lanes : 1);
                u = u < 1 ? 1 : u > 16 ? 16 : u;
            }
    return u;
}

/* Compute seconds of one statement on one core's worth of work (all of
 * it: the caller divides by threads). */
static double compute_time(const kir_kernel *k, const tir_config *cfg, const tune_stmt *s, const tune_rates *r, int tp,
                           int ti)
{
    if (s->nsums == 0) /* elementwise: a load, an op and a store per vector */
        return s->points * 3.0 / (cfg->lanes > 0 ? cfg->lanes : 1) / r->vops;
    const qk_format *f = s->wfmt;
    double elems = s->points * s->red; /* N:M too: CPUs read it densely */
    double tie = s->ni < ti ? s->ni : ti; /* points of the inner tile that exist */
    double ops, peak;
    if (cfg->idot && s->int_dot && cfg->repack && tp >= 4) {
        /* row-interleaved (docs/api.md): one vector of codes holds 4 items of R rows, decoded once for
           the tile's points, one DOT4 each; per block and R rows the scales' load and conversion, and a
           multiply-add per point (the tile's R x T rows arrive as tp) */
        double R = tp >= 16 ? 16 : tp, blk = f && f->block > 0 ? f->block : 32;
        ops = (decode_int_ops(f) + tie * (r->vnni ? 1 : 3)) / (R * 4 * tie) + (4 + 2 * tie) / (R * blk * tie);
        peak = 2.0 * elems / r->i8;
    } else if (cfg->idot && s->int_dot) {
        double B = cfg->idot_bytes > 0 ? cfg->idot_bytes : 16;
        if (B > 4.0 * cfg->lanes) /* the builder's clamp: no wider than the configured f32 vectors */
            B = 4.0 * (cfg->lanes > 0 ? cfg->lanes : 1);
        double chunk = tp * decode_int_ops(f) + tie + tp * tie * (r->vnni ? 1 : 3);
        double blk = f && f->block > 0 ? f->block : 32;
        ops = chunk / (tp * tie * B) + 3.0 / blk;
        peak = 2.0 * elems / r->i8;
    } else {
        double V = block_lanes(cfg->lanes, f);
        double chunk = tp * decode_ops(f, 1) + tie + tp * tie;
        if (f && f->code == QK_CODE_VQ && V > f->vq_dim) /* lanes of several codewords: a gather, a load a lane */
            chunk += tp * V * (f->vq_books > 0 ? f->vq_books : 1);
        double blk = f && f->block > 0 ? f->block : 0;
        /* per block-loop iteration: counter, branch, addresses (3, once per kblocks blocks) and each
           row's block scale (2), shared by the tile's points */
        double kb = cfg->kblocks > 0 ? cfg->kblocks : 1;
        ops = chunk / (tp * tie * V) + (blk > 0 ? (3.0 / kb + 2.0 * tp) / (blk * tp * tie) : 0);
        /* FMA latency ~4 cycles on 2 ports: 8 independent chains hide it */
        double chains = tp * tie * (s->dense_red && !f ? effective_unroll(k, cfg) : (cfg->kblocks ? cfg->kblocks : 1));
        double stall = chains < 8 ? 8.0 / chains : 1.0;
        ops += (stall - 1.0) * 0.5 / V; /* stalls cost part of the FMA slot */
        if (s->int_dot) /* both operands decoded to f32 (scalar loops when their blocks differ) */
            ops += 2.0;
        peak = 2.0 * elems / r->f32;
    }
    double t = elems * ops / r->vops;
    return t > peak ? t : peak;
}

/* The inner tiles of one work item as the builder emits them (tir_build.c
 * emit_lhs): ni / ti full tiles of ti points, then the remainder in
 * tiles of ti/2, ti/4, ..., 1 points. count[j] tiles of size[j] points;
 * returns the number of sizes. */
static int inner_tiles(double ni, int ti, double *count, int *size)
{
    int n = 0;
    double rest = ni < 1 ? 1 : ni;
    for (int h = ti; h >= 1; h = h > 1 ? h / 2 : 0) {
        double c = floor(rest / h);
        if (c > 0) {
            count[n] = c;
            size[n++] = h;
        }
        rest -= c * h;
    }
    return n;
}

/* compute_time over the inner tiles, each at its own size. */
static double tiles_compute_time(const kir_kernel *k, const tir_config *cfg, const tune_stmt *s, const tune_rates *r,
                                 int tp, int ti)
{
    double count[8], t = 0, ni = s->ni < 1 ? 1 : s->ni;
    int size[8], n = inner_tiles(s->ni, ti, count, size);
    for (int j = 0; j < n; j++)
        t += compute_time(k, cfg, s, r, tp, size[j]) * count[j] * size[j] / ni;
    return t;
}

/* Memory seconds of one statement for all threads. */
static double memory_time(const qk_target *t, const tune_stmt *s, const tune_rates *r, int threads, int tp, int ti)
{
    double mem = s->wbytes / level_bw(t, r, s->wbytes, threads);
    double items = ceil(s->np / tp);
    if (s->xbytes > 0) /* activations once per work item */
        mem += items * s->xbytes / level_bw(t, r, s->xbytes, 1);
    if (s->inner >= 0 && s->ni > 1) { /* W's tile again for every inner tile */
        double tile = s->wrow * tp, count[8], passes = 0;
        int size[8], n = inner_tiles(s->ni, ti, count, size);
        for (int j = 0; j < n; j++)
            passes += count[j];
        mem += passes * items * tile / level_bw(t, r, tile, 1) / (threads > 0 ? threads : 1);
    }
    return mem;
}

static double stmt_time(const kir_kernel *k, const qk_target *t, const tir_config *cfg, const tune_stmt *s, int threads,
                        const tune_rates *r)
{
    int tp, ti;
    effective_tile(k, t, cfg, s, &tp, &ti);
    double items = s->par >= 0 ? ceil(s->np / tp) : 1;
    double th = threads > 0 ? threads : 1;
    double used = items < th ? items : th;
    double imbalance = ceil(items / used) / (items / used);
    /* a ragged last work item computes its points one at a time */
    double waste = s->par >= 0 ? items * tp / (s->np > 0 ? s->np : 1) : 1;
    double comp = tiles_compute_time(k, cfg, s, r, tp, ti) * (waste < 1 ? 1 : waste) / used;
    double mem = memory_time(t, s, r, threads, tp, ti);
    /* per item: loop setup, horizontal sums of every accumulator */
    double V = cfg->lanes > 0 ? cfg->lanes : 1;
    double per_item = 30 + tp * (s->ni > 1 ? s->ni : ti) * (s->nsums ? s->nsums : 1) * (log2(V) + 2);
    return (comp > mem ? comp : mem) * imbalance + items * per_item / r->vops / used;
}

/* ---- the GPU model ----
 *
 * One statement runs either on the general path, one thread per work
 * item of tp x ti outputs (tile_par x tile_inner; CUDA_BLOCK threads per
 * block), or on tensor cores (tir_mma.c), one warp per 16 rows of W that
 * walks M in steps of 8; the builder takes nothing from the
 * configuration there. Per statement:
 *
 *   time = max(memory, compute) / fill
 *   memory:  W once from HBM, plus from L2: W again once per inner
 *            tile beyond the first (ceil(Mi/ti) - 1 times), and X once per
 *            work item along the parallel index (ceil(Np/tp) times; a
 *            warp of the MMA path reads X once for its 16 rows)
 *   compute: general: (points * red + W elements * ceil(Mi/ti) * decode)
 *            f32 FMA; MMA: points * red at the tensor-core rate, plus the
 *            decode of W once per step of 8 rows m on the FMA lanes
 *   fill:    threads in flight / (SMs x 1024): under half the 2048
 *            resident threads of an SM, memory latency is not hidden
 *
 * plus 5 us of launch per kernel. Registers are not modelled: the
 * legality check (tune_gpu.c) takes them from ptxas. Round figures per
 * SM at 1.5 GHz: 64 f32 FMA per clock on sm_80, 128 from sm_86; 1024 f16
 * tensor-core FMA per clock on sm_80 and 2048 from sm_90 (mma.sync,
 * about half of Hopper's wgmma peak); HBM 15 GB/s per SM on sm_80 (A100:
 * ~1.6 TB/s), 25 GB/s from sm_90 (H100: ~3.3 TB/s), L2 three times HBM.
 * A probed DRAM bandwidth (lim->dram_bw) replaces the HBM figure. */
typedef struct gpu_rates {
    double fma, mma, hbm, l2, threads; /* per second; threads that hide latency */
} gpu_rates;

static void gpu_rates_of(const qk_target *t, const tune_limits *lim, gpu_rates *g)
{
    double sms = t->sm_count > 0 ? t->sm_count : 80, clk = 1.5e9;
    g->fma = sms * (t->sm >= 86 ? 128 : 64) * clk;
    g->mma = sms * (t->sm >= 90 ? 2048 : 1024) * clk;
    g->hbm = lim && lim->dram_bw > 0 ? lim->dram_bw : sms * (t->sm >= 90 ? 25e9 : 15e9);
    g->l2 = g->hbm * 3;
    g->threads = sms * 1024;
}

static double gpu_stmt_time(const kir_kernel *k, const qk_target *t, const tir_config *cfg, const tune_stmt *s,
                            const gpu_rates *g, int mma)
{
    int tp, ti;
    effective_tile(k, t, cfg, s, &tp, &ti);
    if (mma) {
        tp = 16;
        ti = 8;
    }
    double pitems = s->par >= 0 ? ceil(s->np / tp) : 1, isteps = s->inner >= 0 ? ceil(s->ni / ti) : 1;
    double welems = s->wt >= 0 ? s->np * s->red : 0, decode = decode_ops(s->wfmt, 0);
    double mem = s->wbytes / g->hbm + (s->xbytes * pitems + (mma ? 0 : s->wbytes * (isteps - 1))) / g->l2;
    double comp = mma ? s->points * s->red / g->mma + welems * isteps * decode / g->fma
                      : (s->points * s->red + welems * isteps * decode) / g->fma;
    double inflight = mma ? pitems * 32 : pitems * isteps;
    double fill = inflight < g->threads ? inflight / g->threads : 1;
    return (mem > comp ? mem : comp) / (fill > 0 ? fill : 1);
}

/* 1 when statement si of cfg's code runs on tensor cores (a warp grid). */
static int gpu_stmt_mma(const tir_func *f, int si)
{
    for (int i = 0; f && i < f->ngrids; i++)
        if (f->grids[i].stmt == si && f->grids[i].warp)
            return 1;
    return 0;
}

static double gpu_model(const kir_kernel *k, const qk_target *t, const tir_config *cfg, const int64_t *dims,
                        const tune_limits *lim)
{
    gpu_rates g;
    gpu_rates_of(t, lim, &g);
    qk_arena *a = qk_arena_new();
    char err[256];
    const tir_func *f = tir_build(a, k, t, cfg, err, sizeof err);
    double total = 5e-6;
    for (int si = 0; si < k->nstmts; si++)
        if (has_grid(k, si)) {
            tune_stmt s;
            analyze_stmt(k, si, cfg, dims, &s);
            total += gpu_stmt_time(k, t, cfg, &s, &g, gpu_stmt_mma(f, si));
        }
    qk_arena_free(a);
    return total;
}

/* dims of the kernel, or 4096 everywhere. */
static const int64_t *dims_or_default(const int64_t *dims, int64_t *buf, int n)
{
    if (dims)
        return dims;
    for (int i = 0; i < n; i++)
        buf[i] = 4096;
    return buf;
}

double tune_model(const kir_kernel *k, const qk_target *t, const tir_config *cfg, const int64_t *dims, int threads,
                  const tune_limits *lim)
{
    int64_t dbuf[64];
    if (!dims && k->nsyms > 64)
        return 0;
    dims = dims_or_default(dims, dbuf, k->nsyms < 64 ? k->nsyms : 64);
    if (t->kind == QK_TARGET_GPU)
        return gpu_model(k, t, cfg, dims, lim);
    tune_rates r;
    rates(t, threads, lim, &r);
    double total = threads > 1 ? 3e-6 : 2e-7; /* launch: waking workers, or a call */
    for (int si = 0; si < k->nstmts; si++)
        if (has_grid(k, si)) {
            tune_stmt s;
            analyze_stmt(k, si, cfg, dims, &s);
            total += stmt_time(k, t, cfg, &s, threads, &r);
        }
    return total;
}

/* ---- the search ---- */

typedef struct tune_space {
    int lanes[2], nlanes;
    int par[4], npar;
    int inner[4], ninner;
    int unroll[3], nunroll;
    int idot[2], nidot;
    int ibytes[3], nibytes;
    int kb[3], nkb;
} tune_space;

static void space_set(int *vals, int *n, const int *src, int ns)
{
    for (int i = 0; i < ns; i++)
        vals[i] = src[i];
    *n = ns;
}

/* A schedule's tile request as the builder clamps it when alone in the
 * register tile: halved until its accumulators fit. */
static int pinned(const qk_target *t, const tune_kinfo *ki, int req)
{
    int v = req > 64 ? 64 : req < 1 ? 1 : req, sums = ki->max_sums > 0 ? ki->max_sums : 1;
    while (v > 1 && v * sums > t->vector_regs - 4)
        v /= 2;
    return v;
}

/* Values of each parameter worth trying for this kernel on t: a
 * parameter the kernel does not respond to, or that the schedule pins,
 * keeps base's value (so no two candidates build the same code). */
static void search_space(const qk_target *t, const tir_config *base, const tune_kinfo *ki, tune_space *sp)
{
    static const int pars[] = {1, 2, 4, 8}, inners[] = {1, 2, 4}, unrolls[] = {1, 2, 4}, kbs[] = {1, 2, 4};
    static const int ibytes[] = {16, 32, 64};
    memset(sp, 0, sizeof *sp);
    int maxl = t->vector_bits >= 32 ? t->vector_bits / 32 : 1;
    sp->lanes[sp->nlanes++] = maxl;
    if (maxl / 2 >= 1)
        sp->lanes[sp->nlanes++] = maxl / 2;
    if (ki->pin_par)
        space_set(sp->par, &sp->npar, &(int){pinned(t, ki, ki->req_par)}, 1);
    else
        space_set(sp->par, &sp->npar, pars, 4);
    if (!ki->has_inner)
        space_set(sp->inner, &sp->ninner, &(int){1}, 1);
    else if (ki->pin_inner)
        space_set(sp->inner, &sp->ninner, &(int){pinned(t, ki, ki->req_inner)}, 1);
    else {
        space_set(sp->inner, &sp->ninner, inners, 3);
        /* a small extent (a batch of 3 or 5..8 rows) as one tile: W streams once */
        if (ki->min_inner > 2 && ki->min_inner <= 8 && ki->min_inner != 4)
            sp->inner[sp->ninner++] = (int)ki->min_inner;
    }
    if (ki->dense_red && !ki->pin_red)
        space_set(sp->unroll, &sp->nunroll, unrolls, 3);
    else
        space_set(sp->unroll, &sp->nunroll, &base->unroll, 1);
    if (ki->int_dot)
        space_set(sp->idot, &sp->nidot, (const int[]){0, 1}, 2);
    else
        space_set(sp->idot, &sp->nidot, &base->idot, 1);
    for (int i = 0; i < 3; i++)
        if (ibytes[i] * 8 <= t->vector_bits)
            sp->ibytes[sp->nibytes++] = ibytes[i];
    if (sp->nibytes == 0)
        sp->ibytes[sp->nibytes++] = base->idot_bytes;
    if (ki->quant_red)
        space_set(sp->kb, &sp->nkb, kbs, 3);
    else
        space_set(sp->kb, &sp->nkb, &base->kblocks, 1);
}

/* The accumulators of a register tile fit the vector registers. */
static int legal(const qk_target *t, const tune_kinfo *ki, const tir_config *c)
{
    int sums = ki->max_sums > 0 ? ki->max_sums : 1;
    if (c->idot && ki->int_dot && c->idot_bytes * 8 > t->vector_bits)
        return 0;
    return c->lanes * 32 <= t->vector_bits && c->tile_par * c->tile_inner * sums <= t->vector_regs - 4;
}

typedef struct tune_list {
    tune_cand *c;
    int n, cap;
} tune_list;

static void list_push(tune_list *l, const tir_config *cfg, double s)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 256;
        tune_cand *c = realloc(l->c, (size_t)cap * sizeof *c);
        if (!c)
            return; /* out of memory: fewer candidates */
        l->c = c;
        l->cap = cap;
    }
    l->c[l->n].cfg = *cfg;
    l->c[l->n].model_s = s;
    l->n++;
}

/* One candidate per point of the space; idot_bytes only varies with idot. */
static void enumerate(const kir_kernel *k, const qk_target *t, const tir_config *base, const int64_t *dims, int threads,
                      const tune_limits *lim, const tune_kinfo *ki, tune_list *l)
{
    tune_space sp;
    search_space(t, base, ki, &sp);
    for (int a = 0; a < sp.nlanes; a++)
        for (int p = 0; p < sp.npar; p++)
            for (int i = 0; i < sp.ninner; i++)
                for (int u = 0; u < sp.nunroll; u++)
                    for (int d = 0; d < sp.nidot; d++)
                        for (int b = 0; b < (sp.idot[d] && ki->int_dot ? sp.nibytes : 1); b++)
                            for (int kb = 0; kb < sp.nkb; kb++) {
                                tir_config c = *base;
                                c.lanes = sp.lanes[a];
                                c.tile_par = sp.par[p];
                                c.tile_inner = sp.inner[i];
                                c.unroll = sp.unroll[u];
                                c.idot = sp.idot[d];
                                c.idot_bytes = sp.idot[d] && ki->int_dot ? sp.ibytes[b] : base->idot_bytes;
                                c.kblocks = sp.kb[kb];
                                if (legal(t, ki, &c))
                                    list_push(l, &c, tune_model(k, t, &c, dims, threads, lim));
                            }
}

/* GPU: the general path honours tile_par and tile_inner (one thread
 * per tile, at most 64 outputs: plan_stmt's budget); nothing else
 * changes its code (lanes stay 1), and tensor-core tiles take nothing
 * from the configuration, so their candidates collapse into one code. */
static void enumerate_gpu(const kir_kernel *k, const qk_target *t, const tir_config *base, const int64_t *dims,
                          const tune_limits *lim, const tune_kinfo *ki, tune_list *l)
{
    static const int pars[] = {1, 2, 4, 8, 16}, inners[] = {1, 2, 4, 8};
    int np = ki->pin_par ? 1 : 5, ni = !ki->has_inner || ki->pin_inner ? 1 : 4;
    for (int p = 0; p < np; p++)
        for (int i = 0; i < ni; i++) {
            tir_config c = *base;
            c.tile_par = ki->pin_par ? base->tile_par : pars[p];
            c.tile_inner = ki->has_inner && !ki->pin_inner ? inners[i] : base->tile_inner;
            if (c.tile_par * c.tile_inner <= 64)
                list_push(l, &c, tune_model(k, t, &c, dims, 1, lim));
        }
}

static int cmp_cand(const tune_cand *x, const tune_cand *y)
{
    return (x->model_s > y->model_s) - (x->model_s < y->model_s);
}

/* Insertion sort: ties keep the enumeration order; n is at most ~900. */
static void sort_list(tune_list *l)
{
    for (int i = 1; i < l->n; i++) {
        tune_cand c = l->c[i];
        int j = i;
        while (j > 0 && cmp_cand(&l->c[j - 1], &c) > 0) {
            l->c[j] = l->c[j - 1];
            j--;
        }
        l->c[j] = c;
    }
}

/* The code a configuration builds: its tiled IR, printed with the
 * configuration reduced to the lanes (the one field the backend reads,
 * as a vector-width hint). A configuration the builder rejects is its
 * own code (the measurement reports it). */
static uint64_t code_key(const kir_kernel *k, const qk_target *t, const tir_config *cfg)
{
    qk_arena *a = qk_arena_new();
    char err[256] = "";
    tir_func *f = tir_build(a, k, t, cfg, err, sizeof err);
    qk_buf b = {0};
    if (f) {
        int lanes = f->cfg.lanes;
        memset(&f->cfg, 0, sizeof f->cfg);
        f->cfg.lanes = lanes;
        tir_print(f, &b);
    } else {
        char text[256];
        tir_config_print(cfg, text, sizeof text);
        qk_buf_printf(&b, "%s: %s", text, err);
    }
    uint64_t h = qk_hash64(b.s ? b.s : "", b.len, 0);
    qk_buf_free(&b);
    qk_arena_free(a);
    return h;
}

/* The first (best modelled) configuration of each distinct code, at
 * most max: measuring the same code twice tells nothing. */
static int distinct_code(const kir_kernel *k, const qk_target *t, const tune_list *l, tune_cand *out, int max)
{
    uint64_t *seen = malloc((size_t)max * sizeof *seen);
    int n = 0;
    for (int i = 0; i < l->n && n < max; i++) {
        uint64_t h = seen ? code_key(k, t, &l->c[i].cfg) : 0;
        int dup = 0;
        for (int j = 0; seen && j < n && !dup; j++)
            dup = seen[j] == h;
        if (dup)
            continue;
        if (seen)
            seen[n] = h;
        out[n++] = l->c[i];
    }
    free(seen); /* out of memory: no deduplication */
    return n;
}

static int candidates(const kir_kernel *k, const qk_target *t, const tir_config *base, const int64_t *dims,
                      int threads, const tune_limits *lim, tune_cand *out, int max)
{
    if (max < 1)
        return 0;
    int64_t dbuf[64];
    if (!dims && k->nsyms > 64)
        max = 1;
    else
        dims = dims_or_default(dims, dbuf, k->nsyms < 64 ? k->nsyms : 64);
    out[0].cfg = *base;
    out[0].model_s = dims ? tune_model(k, t, base, dims, threads, lim) : 0;
    if (!dims)
        return 1;
    if (t->kind == QK_TARGET_GPU && max == 1)
        return 1; /* JIT on a GPU keeps the builder's tiles unless the database has a measured record: the GPU
                     model has not been checked against a device yet */
    tune_kinfo ki;
    kernel_info(k, base, dims, &ki);
    tune_list l = {0};
    if (t->kind == QK_TARGET_GPU)
        enumerate_gpu(k, t, base, dims, lim, &ki, &l);
    else
        enumerate(k, t, base, dims, threads, lim, &ki, &l);
    sort_list(&l);
    int n = max == 1 ? (l.n > 0 ? (out[0] = l.c[0], 1) : 0) : distinct_code(k, t, &l, out, max);
    free(l.c);
    if (n == 0) { /* nothing legal (a huge pinned tile): the base, as the builder clamps it */
        out[0].cfg = *base;
        out[0].model_s = tune_model(k, t, base, dims, threads, lim);
        n = 1;
    }
    return n;
}

/* The candidates with the builder's choices settled (tir_settle_config),
 * so that their printed text -- a tuning record's configuration -- is the
 * text of the kernel that a later compile from the record builds. */
int tune_candidates(const kir_kernel *k, const qk_target *t, const tir_config *base, const int64_t *dims, int threads,
                    const tune_limits *lim, tune_cand *out, int max)
{
    int n = candidates(k, t, base, dims, threads, lim, out, max);
    for (int i = 0; i < n; i++)
        tir_settle_config(k, t, &out[i].cfg);
    return n;
}

int tune_repack_candidates(const kir_kernel *k, const qk_target *t, const tir_config *base, const int64_t *dims,
                           int threads, const tune_limits *lim, tune_cand *out, int max, char *why, size_t whysz)
{
    if (max < 1)
        return 0;
    if (t->kind != QK_TARGET_CPU) {
        snprintf(why, whysz, "the row-interleaved layout is read by CPU kernels only");
        return 0;
    }
    tir_config v[5];
    v[0] = *base;
    v[0].repack = 1;
    qk_arena *a = qk_arena_new();
    tir_func *f = tir_build(a, k, t, &v[0], why, whysz);
    int rows = f && f->repack_tensor >= 0 ? f->repack_rows : 0;
    qk_arena_free(a);
    if (!f)
        return 0;
    if (rows < 1) /* e.g. a popcount reduction, which reads sign bits as they are */
        return snprintf(why, whysz, "repack=1: no integer-dot sum reads weights row-interleaved"), 0;
    tir_settle_config(k, t, &v[0]);
    int64_t dbuf[64];
    if (k->nsyms <= 64)
        dims = dims_or_default(dims, dbuf, k->nsyms);
    if (max == 1) { /* the JIT's question: no more builds */
        out[0].cfg = v[0];
        out[0].model_s = k->nsyms <= 64 ? tune_model(k, t, &v[0], dims, threads, lim) : 0;
        return 1;
    }
    v[1] = v[0];
    v[1].tile_par = 2 * rows;
    v[2] = v[0];
    v[2].prefetch = v[0].prefetch ? 0 : TIR_PREFETCH_AUTO;
    v[3] = v[0];
    v[3].prefetch = 2 * TIR_PREFETCH_AUTO;
    v[4] = v[0]; /* a scheduling boundary per row group: fewer spills, faster for some loops only */
    v[4].fence = 1;
    tune_list l = {0};
    for (int i = 0; i < 5; i++) {
        char err[256];
        qk_arena *b = qk_arena_new();
        int ok = tir_build(b, k, t, &v[i], err, sizeof err) != NULL;
        qk_arena_free(b);
        if (ok)
            list_push(&l, &v[i], k->nsyms <= 64 ? tune_model(k, t, &v[i], dims, threads, lim) : 0);
    }
    int n = l.n ? distinct_code(k, t, &l, out, max) : 0;
    free(l.c);
    return n;
}

/* ---- ranking agreement ---- */

/* Ranks 1..n of v, ties averaged. */
static void ranks(const double *v, int n, double *r)
{
    for (int i = 0; i < n; i++) {
        double less = 0, equal = 0;
        for (int j = 0; j < n; j++) {
            less += v[j] < v[i];
            equal += v[j] == v[i];
        }
        r[i] = less + (equal + 1) / 2.0;
    }
}

double tune_rank_corr(const double *a, const double *b, int n)
{
    if (n < 2)
        return 0;
    double *ra = malloc((size_t)n * 2 * sizeof *ra);
    if (!ra)
        return 0;
    double *rb = ra + n;
    ranks(a, n, ra);
    ranks(b, n, rb);
    double ma = (n + 1) / 2.0, sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) {
        sab += (ra[i] - ma) * (rb[i] - ma);
        saa += (ra[i] - ma) * (ra[i] - ma);
        sbb += (rb[i] - ma) * (rb[i] - ma);
    }
    free(ra);
    return saa > 0 && sbb > 0 ? sab / sqrt(saa * sbb) : 0;
}

/* ---- the kernel's identity in the tuning database ---- */

/* 16 hex digits of qk_hash64 over the kernel's KIR text and the text of
 * every distinct format it uses: no target, no configuration. */
void tune_kernel_hash(const kir_kernel *k, char out[17])
{
    qk_buf b = {0};
    kir_print_kernel(k, &b);
    for (int i = 0; i < k->ntensors; i++) {
        const qk_format *f = k->tensors[i].fmt;
        int seen = 0;
        for (int j = 0; j < i && f; j++)
            seen |= k->tensors[j].fmt == f;
        if (f && !seen)
            qk_format_print(f, &b);
    }
    snprintf(out, 17, "%016llx", (unsigned long long)qk_hash64(b.s ? b.s : "", b.len, 0));
    qk_buf_free(&b);
}
