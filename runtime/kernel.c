/* kernel.c — qkc_kernel_get and kernel introspection. Getting a kernel
 * runs the back half of the pipeline for one KIR kernel:
 *
 *   tir_default_config -> tir_apply_schedule -> cache lookup
 *     miss: tir_build -> tir_verify -> backend compile -> cache insert
 *
 * The cache key is the kernel's canonical text (printed KIR plus an exact
 * structural dump, its formats), the target, the tile configuration and
 * the qkc version. The entry keeps the
 * tiled IR (its own arena), which gives the argument layout and grid. */
#include "compiler/tune.h"
#include "runtime/runtime.h"
#include "compiler/rowpack.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef QKC_VERSION
#define QKC_VERSION "0.2.0"
#endif

/* ---- finding the KIR kernel ---- */

static qkc_status not_found(const qkc_program *p, const char *name)
{
    qk_buf b = {0};
    for (int i = 0; i < p->kir->nkernels; i++)
        qk_buf_printf(&b, "%s%s", i ? ", " : "", p->kir->kernels[i]->name);
    char *list = qk_buf_take(&b);
    qkc_status st = rt_fail(p->ctx, QKC_ERR_NOT_FOUND, "no kernel '%s' in program; kernels: %s", name,
                            list[0] ? list : "(none)");
    free(list);
    return st;
}

static int kernel_index(const qkc_program *p, const char *name)
{
    for (int i = 0; i < p->kir->nkernels; i++)
        if (strcmp(p->kir->kernels[i]->name, name) == 0)
            return i;
    return -1;
}

/* ---- the cache key ---- */

/* Appends the text of every distinct format used by k. */
static void key_formats(const kir_kernel *k, qk_buf *b)
{
    for (int i = 0; i < k->ntensors; i++) {
        const qk_format *f = k->tensors[i].fmt;
        int seen = 0;
        for (int j = 0; j < i && f; j++)
            seen |= k->tensors[j].fmt == f;
        if (f && !seen) {
            qk_format_print(f, b);
            /* everything that decides the bytes, exactly */
            qk_buf_printf(b, "\n%d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %a %d %d %d",
                          (int)f->code, f->bits, f->offset, f->ebits, f->mbits, f->bias, (int)f->special, f->vq_dim,
                          f->vq_books, f->vq_signs, (int)f->vq_dtype, f->block, (int)f->scale_per, (int)f->scale_num,
                          f->sub_block, (int)f->sub_num, f->sub_bits, (int)f->min_num, f->min_sign,
                          (int)f->submin_num, f->submin_bits, (int)f->zero, (int)f->zero_num, f->zero_const,
                          f->tensor_scale, f->sp_n, f->sp_m);
            for (int p = 0; p < f->npieces; p++) {
                const qk_piece *q = &f->pieces[p];
                qk_buf_printf(b, " [%d %d %d %d %d %d %d %d %d]", q->field, q->place, q->first, q->count, q->lo,
                              q->width, q->byte, q->shift, q->group);
            }
            for (int t = 0; f->code == QK_CODE_TABLE && f->table && t < (1 << f->bits); t++)
                qk_buf_printf(b, " %a", f->table[t]);
            qk_buf_printf(b, "\n");
        }
    }
}

/* Exact structure of an expression (constants as hex floats), so the key
 * never depends on how precisely the printer writes numbers. */
static void key_expr(const kir_expr *e, const kir_kernel *k, qk_buf *b)
{
    if (!e)
        return;
    qk_buf_printf(b, "(%d %d %a", (int)e->kind, e->op, e->value);
    if (e->kind == KE_LOAD) {
        qk_buf_printf(b, " t%d", e->tensor);
        for (int i = 0; i < k->tensors[e->tensor].rank; i++) {
            const kir_index *ix = &e->idx[i];
            qk_buf_printf(b, " [%lld", (long long)ix->c);
            for (int j = 0; j < ix->nterms; j++)
                qk_buf_printf(b, " %lld*v%d", (long long)ix->terms[j].coef, ix->terms[j].var);
            qk_buf_puts(b, "]");
        }
    }
    for (int i = 0; e->kind == KE_SUM && i < e->nvars; i++)
        qk_buf_printf(b, " s%d", e->vars[i]);
    key_expr(e->a, k, b);
    key_expr(e->b, k, b);
    qk_buf_puts(b, ")");
}

static void key_structure(const kir_kernel *k, qk_buf *b)
{
    for (int i = 0; i < k->ntensors; i++) {
        const kir_tensor *t = &k->tensors[i];
        qk_buf_printf(b, "T%d %d %d %s %d:", i, (int)t->kind, (int)t->dtype, t->fmt ? t->fmt->name : "-", t->rank);
        for (int d = 0; d < t->rank; d++)
            qk_buf_printf(b, " %d%+lld", t->dims[d].sym, (long long)t->dims[d].c);
        qk_buf_puts(b, "\n");
    }
    for (int i = 0; i < k->nvars; i++)
        qk_buf_printf(b, "V%d %d%+lld %d %d\n", i, k->vars[i].extent.sym, (long long)k->vars[i].extent.c,
                      k->vars[i].is_reduction, k->vars[i].stmt);
    for (int i = 0; i < k->nstmts; i++) {
        qk_buf_printf(b, "S%d t%d", i, k->stmts[i].tensor);
        for (int j = 0; j < k->stmts[i].nlhs; j++)
            qk_buf_printf(b, " v%d", k->stmts[i].lhs[j]);
        key_expr(k->stmts[i].rhs, k, b);
        qk_buf_puts(b, "\n");
    }
}

static char *cache_key(const kir_kernel *k, const qk_target *t, const tir_config *cfg)
{
    qk_buf b = {0};
    kir_print_kernel(k, &b);
    qk_buf_puts(&b, "\n--structure\n");
    key_structure(k, &b);
    qk_buf_puts(&b, "\n--formats\n");
    key_formats(k, &b);
    qk_buf_printf(&b, "--target %s\n--config ", t->name);
    const unsigned char *c = (const unsigned char *)cfg;
    for (size_t i = 0; i < sizeof *cfg; i++)
        qk_buf_printf(&b, "%02x", c[i]);
    qk_buf_printf(&b, "\n--version %s\n", QKC_VERSION);
    return qk_buf_take(&b);
}

/* ---- building an entry ---- */

/* Copies every name of f into f's arena: a cached entry outlives the
 * program whose KIR it was built from. */
static void own_strings(tir_func *f)
{
    f->name = f->name ? qk_strdup(f->arena, f->name) : NULL;
    for (int i = 0; i < f->nargs; i++)
        if (f->args[i].name)
            f->args[i].name = qk_strdup(f->arena, f->args[i].name);
    for (int i = 0; i < f->nnodes; i++)
        if (f->nodes[i].name)
            f->nodes[i].name = qk_strdup(f->arena, f->nodes[i].name);
}

/* Compiles e->f with the backend. A GPU target without a driver/NVRTC
 * still yields an entry (usable for emit); its launch reports why. */
static qkc_status compile_code(qkc_ctx *ctx, rt_entry *e)
{
    char err[2048] = "";
    if (!qk_target_runs_here(&ctx->target, err, sizeof err)) { /* code for another machine: emit only */
        e->code_err = qk_xstrdup(err);
        return QKC_OK;
    }
    if (ctx->backend->absent) { /* a build without it: emit ast/kir/tir and the reference still work */
        e->code_err = qk_xstrdup(ctx->backend->absent);
        return QKC_OK;
    }
    void *state = NULL;
    int rc = rt_backend_state(ctx, &state, err, sizeof err);
    int hit = 0;
    if (rc == 0)
        rc = rt_compile_cached(ctx->backend, state, ctx->cache_dir, e, &hit, err, sizeof err);
    if (rc != 0) {
        if (rt_is_no_device(err)) { /* GPU without device, or a foreign CPU: emit still works */
            e->code_err = qk_xstrdup(err);
            return QKC_OK;
        }
        return rt_fail(ctx, QKC_ERR_TARGET, "kernel '%s': code generation failed: %s", e->f->name,
                       err[0] ? err : "unknown error");
    }
    e->has_code = 1;
    if (ctx->target.kind == QK_TARGET_CPU && rt_entry_prep_ffi(e) != 0)
        return rt_fail(ctx, QKC_ERR_INTERNAL, "kernel '%s': libffi could not prepare a call with %d arguments",
                       e->f->name, e->f->nargs);
    return QKC_OK;
}

static qkc_status build_tir(qkc_ctx *ctx, const kir_kernel *k, const tir_config *cfg, rt_entry *e)
{
    char err[2048] = "";
    e->arena = qk_arena_new();
    e->f = tir_build(e->arena, k, &ctx->target, cfg, err, sizeof err);
    if (!e->f)
        return rt_fail(ctx, QKC_ERR_UNSUPPORTED, "kernel '%s': cannot lower to the tiled IR: %s", k->name, err);
    own_strings(e->f);
    if (tir_verify(e->f, err, sizeof err) != 0)
        return rt_fail(ctx, QKC_ERR_INTERNAL, "kernel '%s': tiled IR failed verification: %s", k->name, err);
    if (e->f->nargs > RT_MAX_ARGS)
        return rt_fail(ctx, QKC_ERR_UNSUPPORTED, "kernel '%s' has %d arguments (at most %d)", k->name,
                       e->f->nargs, RT_MAX_ARGS);
    return QKC_OK;
}

/* Finds or builds the cache entry of k for cfg (with a reference). */
static qkc_status get_entry(qkc_ctx *ctx, const kir_kernel *k, const tir_config *cfg_in, rt_entry **out)
{
    tir_config cfg = *cfg_in;
    char *key = cache_key(k, &ctx->target, &cfg);
    uint64_t hash = qk_hash64(key, strlen(key), 0);
    if ((*out = rt_cache_find(&ctx->cache, hash, key))) {
        free(key);
        return QKC_OK;
    }
    rt_entry *e = qk_xcalloc(1, sizeof *e);
    e->hash = hash;
    e->key = key;
    qkc_status st = build_tir(ctx, k, &cfg, e);
    if (st == QKC_OK)
        st = compile_code(ctx, e);
    if (st != QKC_OK) {
        rt_entry_free(e, ctx->backend, ctx->backend_state);
        return st;
    }
    *out = rt_cache_insert(&ctx->cache, e);
    if (*out != e)
        rt_entry_free(e, ctx->backend, ctx->backend_state);
    return QKC_OK;
}

/* ---- choosing the configuration ---- */

void rt_kernel_hash(const kir_kernel *k, char out[17])
{
    tune_kernel_hash(k, out);
}

/* The values (val[k->nsyms], at most 64) and the shape text
 * "K=4096,N=4096" (names sorted) of dims "N=4096,K=4096"; unnamed
 * dimensions are 4096. QKC_OK or INVALID_ARG. */
static qkc_status shape_text(qkc_ctx *ctx, const kir_kernel *k, const char *dims, int64_t *val, qk_buf *out)
{
    int n = k->nsyms < 64 ? k->nsyms : 64;
    for (int i = 0; i < n; i++)
        val[i] = 4096;
    const char *p = dims ? dims : "";
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        if (!*p)
            break;
        const char *eq = strchr(p, '=');
        const char *end = eq ? eq + strcspn(eq, ", ") : p + strlen(p);
        if (!eq || eq > end)
            return rt_fail(ctx, QKC_ERR_INVALID_ARG, "dims '%s': expected NAME=VALUE", dims);
        int s = 0;
        while (s < n && !(strlen(k->syms[s]) == (size_t)(eq - p) && strncmp(k->syms[s], p, (size_t)(eq - p)) == 0))
            s++;
        if (s == n)
            return rt_fail(ctx, QKC_ERR_INVALID_ARG, "dims '%s': kernel '%s' has no dimension '%.*s'", dims, k->name,
                           (int)(eq - p), p);
        char *stop;
        long long v = strtoll(eq + 1, &stop, 10);
        if (stop != end || v < 0)
            return rt_fail(ctx, QKC_ERR_INVALID_ARG, "dims '%s': '%.*s' is not a dimension value", dims,
                           (int)(end - eq - 1), eq + 1);
        val[s] = v;
        p = end;
    }
    int order[64];
    for (int i = 0; i < n; i++) { /* insertion sort by name */
        int j = i;
        while (j > 0 && strcmp(k->syms[order[j - 1]], k->syms[i]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    for (int i = 0; i < n; i++)
        qk_buf_printf(out, "%s%s=%lld", i ? "," : "", k->syms[order[i]], (long long)val[order[i]]);
    return QKC_OK;
}

/* The context's tuning database, opened read-only on first use; NULL when
 * disabled, absent or unreadable (then *warning says why, once). */
static qk_tunedb *tuning_db(qkc_ctx *ctx, const char **warning)
{
    pthread_mutex_lock(&ctx->tdb_mu);
    if (!ctx->tdb_tried && ctx->tuning_db) {
        ctx->tdb_tried = 1;
        char err[1024] = "";
        if (access(ctx->tuning_db, F_OK) == 0 && qk_tunedb_open(ctx->tuning_db, 1, &ctx->tdb, err, sizeof err) != 0) {
            ctx->tdb = NULL;
            ctx->tdb_warning = qk_xstrdup(err);
        }
    }
    pthread_mutex_unlock(&ctx->tdb_mu);
    *warning = ctx->tdb_warning;
    return ctx->tdb;
}

qkc_status rt_choose_config(qkc_ctx *ctx, const kir_kernel *k, const qk_target *t, const qkc_kernel_options *opts,
                            tir_config *cfg, char **origin)
{
    tir_default_config(t, cfg);
    *origin = NULL;
    if (opts && opts->config) {
        tir_apply_schedule(k, cfg);
        char err[512];
        if (tir_config_parse(opts->config, cfg, err, sizeof err) != 0)
            return rt_fail(ctx, QKC_ERR_INVALID_ARG, "kernel '%s': %s", k->name, err);
        tir_settle_config(k, t, cfg);
        *origin = qk_xstrdup("explicit");
        return QKC_OK;
    }
    qk_buf shape = {0};
    int64_t dims[64];
    qkc_status st = shape_text(ctx, k, opts ? opts->dims : NULL, dims, &shape);
    if (st != QKC_OK) {
        qk_buf_free(&shape);
        return st;
    }
    const char *warning = NULL;
    int any_layout = opts && opts->any_layout;
    qk_tunedb *db = tuning_db(ctx, &warning);
    qk_buf why = {0};
    if (db) {
        char hash[17], fp[512], err[512];
        rt_kernel_hash(k, hash);
        qk_target_fingerprint(t, fp, sizeof fp);
        qk_tune_record r;
        int exact = 0, threads = opts && opts->threads > 0 ? opts->threads : ctx->threads;
        pthread_mutex_lock(&ctx->tdb_mu); /* one connection: serialize its use */
        int found = qk_tunedb_best(db, hash, fp, shape.s ? shape.s : "", threads, any_layout, &r, &exact, err,
                                   sizeof err);
        pthread_mutex_unlock(&ctx->tdb_mu);
        tir_config c = *cfg;
        char perr[512];
        if (found == 1 && tir_config_parse(r.config, &c, perr, sizeof perr) == 0) {
            if (!any_layout)
                c.repack = 0; /* qk_tunedb_best passed over "repack=R" records by their text; a record written
                                 by hand that the parser still reads as repacking never forces a layout */
            *cfg = c;
            if (exact)
                qk_buf_puts(&why, "tuning-db (exact shape)");
            else
                qk_buf_printf(&why, "tuning-db (bucket of %s)", r.shape);
        } else if (found < 0)
            warning = err[0] ? err : "tuning database lookup failed";
    }
    if (!why.len) {
        tir_apply_schedule(k, cfg);
        tune_cand rc;
        char rwhy[256];
        if (any_layout && tune_repack_candidates(k, t, cfg, NULL, 1, NULL, &rc, 1, rwhy, sizeof rwhy) == 1) {
            *cfg = rc.cfg; /* the caller converts weights: the layout read fastest on every machine measured */
            qk_buf_puts(&why, k->sched.present ? "schedule, row-interleaved weights"
                                               : "model, row-interleaved weights");
        } else if (k->sched.present)
            qk_buf_puts(&why, "schedule");
        else { /* the cost model's first choice for the shape */
            tune_cand best;
            int threads = opts && opts->threads > 0 ? opts->threads : ctx->threads;
            if (tune_candidates(k, t, cfg, k->nsyms <= 64 ? dims : NULL, threads, NULL, &best, 1) >= 1)
                *cfg = best.cfg;
            qk_buf_puts(&why, "model");
        }
    }
    if (warning)
        qk_buf_printf(&why, "; warning: tuning database not used: %s", warning);
    tir_settle_config(k, t, cfg);
    qk_buf_free(&shape);
    *origin = qk_buf_take(&why);
    return QKC_OK;
}

/* ---- the kernel handle ---- */

/* "void gemv(const float *x, ..., int64_t begin, int64_t end)" */
static char *c_signature(const kir_kernel *k, const tir_func *f, qk_arena *a)
{
    qk_buf b = {0};
    qk_buf_printf(&b, "void %s(", k->name);
    for (int i = 0; i < f->nargs; i++) {
        const tir_arg *ar = &f->args[i];
        const char *sep = i ? ", " : "";
        if (ar->s == TS_PTR)
            qk_buf_printf(&b, "%s%s%s *%s", sep, ar->is_const ? "const " : "", rt_c_type(ar->dtype), ar->name);
        else
            qk_buf_printf(&b, "%sint64_t %s", sep, ar->name);
    }
    qk_buf_puts(&b, ")");
    char *s = qk_strdup(a, b.s ? b.s : "");
    qk_buf_free(&b);
    return s;
}

/* "H - 2" -> "H-2", the form qkc.h documents. */
static const char *compact(qk_arena *a, const char *s)
{
    char *c = qk_strdup(a, s), *w = c;
    for (const char *r = s; *r; r++)
        if (*r != ' ')
            *w++ = *r;
    *w = 0;
    return c;
}

static const char ***dim_texts(const kir_kernel *k, qk_arena *a)
{
    int n = k->nparams + k->nresults;
    const char ***t = qk_alloc(a, (size_t)(n + 1) * sizeof *t);
    for (int i = 0; i < n; i++) {
        const kir_tensor *ts = &k->tensors[i];
        t[i] = qk_alloc(a, (size_t)(ts->rank + 1) * sizeof **t);
        for (int d = 0; d < ts->rank; d++) {
            qk_buf b = {0};
            kir_print_dim(k, ts->dims[d], &b);
            t[i][d] = compact(a, b.s ? b.s : "");
            qk_buf_free(&b);
        }
    }
    return t;
}

static qkc_kernel *kernel_new(qkc_program *p, const kir_kernel *k, rt_entry *e)
{
    qkc_kernel *kn = qk_xcalloc(1, sizeof *kn);
    kn->prog = p;
    kn->kir = k;
    kn->entry = e;
    kn->arena = qk_arena_new();
    kn->signature = c_signature(k, e->f, kn->arena);
    kn->dim_text = dim_texts(k, kn->arena);
    return kn;
}

void rt_kernel_free(qkc_kernel *k)
{
    while (k) {
        qkc_kernel *next = k->next;
        rt_cache_release(&k->prog->ctx->cache, k->entry);
        qk_arena_free(k->arena);
        free(k->config);
        free(k->origin);
        free(k);
        k = next;
    }
}

qkc_status qkc_kernel_get(qkc_program *p, const char *name, qkc_kernel **out)
{
    return qkc_kernel_get_ex(p, name, NULL, out);
}

qkc_status qkc_kernel_get_ex(qkc_program *p, const char *name, const qkc_kernel_options *opts, qkc_kernel **out)
{
    if (out)
        *out = NULL;
    if (!p || !name || !out)
        return rt_fail(p ? p->ctx : NULL, QKC_ERR_INVALID_ARG, "qkc_kernel_get: NULL %s",
                       !p ? "program" : !name ? "name" : "out");
    if (!p->kir)
        return rt_fail(p->ctx, QKC_ERR_INVALID_ARG, "the program has compile errors: no kernels");
    if (opts && opts->threads < 0)
        return rt_fail(p->ctx, QKC_ERR_INVALID_ARG, "qkc_kernel_get_ex: threads = %d is negative", opts->threads);
    if (opts && opts->any_layout != 0 && opts->any_layout != 1)
        return rt_fail(p->ctx, QKC_ERR_INVALID_ARG,
                       "qkc_kernel_get_ex: any_layout = %d (0: the formats' own bytes; 1: any layout the caller "
                       "converts to with qkc_kernel_repack)",
                       opts->any_layout);
    int i = kernel_index(p, name);
    if (i < 0)
        return not_found(p, name);
    const kir_kernel *kk = p->kir->kernels[i];
    tir_config cfg;
    memset(&cfg, 0, sizeof cfg);
    char *origin = NULL;
    qkc_status st = rt_choose_config(p->ctx, kk, &p->ctx->target, opts, &cfg, &origin);
    if (st != QKC_OK)
        return st;
    char text[512];
    tir_config_print(&cfg, text, sizeof text);
    pthread_mutex_lock(&p->mu);
    qkc_kernel **slot = &p->kernels[i];
    while (*slot && strcmp((*slot)->config, text) != 0)
        slot = &(*slot)->next;
    if (!*slot) {
        rt_entry *e = NULL;
        st = get_entry(p->ctx, kk, &cfg, &e);
        if (st == QKC_OK) {
            *slot = kernel_new(p, kk, e);
            (*slot)->config = qk_xstrdup(text);
            (*slot)->origin = origin;
            origin = NULL;
        }
    }
    *out = *slot;
    pthread_mutex_unlock(&p->mu);
    free(origin);
    return st;
}

qkc_status qkc_kernel_config(const qkc_kernel *k, const char **config, const char **origin)
{
    if (!k)
        return QKC_ERR_INVALID_ARG;
    if (config)
        *config = k->config;
    if (origin)
        *origin = k->origin;
    return QKC_OK;
}

/* ---- introspection ---- */

const char *qkc_kernel_name(const qkc_kernel *k)
{
    return k ? k->kir->name : NULL;
}

int qkc_kernel_nparams(const qkc_kernel *k)
{
    return k ? k->kir->nparams + k->kir->nresults : 0;
}

qkc_status qkc_kernel_param(const qkc_kernel *k, int i, qkc_param_info *out)
{
    if (!k || !out)
        return QKC_ERR_INVALID_ARG;
    if (i < 0 || i >= qkc_kernel_nparams(k))
        return rt_fail(k->prog->ctx, QKC_ERR_NOT_FOUND, "kernel '%s' has no parameter %d (it has %d)", k->kir->name,
                       i, qkc_kernel_nparams(k));
    const kir_tensor *t = &k->kir->tensors[i];
    memset(out, 0, sizeof *out);
    out->name = t->name;
    out->is_result = t->kind == KIR_RESULT;
    out->dtype = t->fmt ? QKC_PACKED : rt_dtype_from_qk(t->dtype);
    out->format = t->fmt ? t->fmt->name : NULL;
    out->rank = t->rank;
    out->codebook = t->book;
    for (int d = 0; d < t->rank && d < QKC_MAX_RANK; d++)
        out->dims[d] = k->dim_text[i][d];
    out->repack_rows = k->entry->f->repack_tensor == i ? k->entry->f->repack_rows : 0;
    return QKC_OK;
}

/* ---- the row-interleaved weight layout (compiler/rowpack.h) ---- */

static qkc_status repack_args(const qkc_kernel *k, int param, int64_t rows, int64_t cols, const qk_format **f,
                              int *R)
{
    if (!k)
        return QKC_ERR_INVALID_ARG;
    const tir_func *tf = k->entry->f;
    if (param < 0 || param >= qkc_kernel_nparams(k) || tf->repack_tensor != param)
        return rt_fail(k->prog->ctx, QKC_ERR_INVALID_ARG,
                       "kernel '%s': parameter %d is not read row-interleaved (compile it with repack=R)",
                       k->kir->name, param);
    if (rows < 0 || cols < 1 || rows > ((int64_t)1 << 40) || cols > ((int64_t)1 << 40))
        return rt_fail(k->prog->ctx, QKC_ERR_SHAPE, "kernel '%s': bad shape %lld x %lld", k->kir->name,
                       (long long)rows, (long long)cols);
    *f = k->kir->tensors[param].fmt;
    *R = tf->repack_rows;
    return QKC_OK;
}

qkc_status qkc_kernel_repacked_size(const qkc_kernel *k, int param, int64_t rows, int64_t cols, size_t *bytes)
{
    const qk_format *f = NULL; /* set on QKC_OK (the initializers quiet -O3 warnings) */
    int R = 0;
    qkc_status st = repack_args(k, param, rows, cols, &f, &R);
    if (st != QKC_OK)
        return st;
    if (!bytes)
        return rt_fail(k->prog->ctx, QKC_ERR_INVALID_ARG, "qkc_kernel_repacked_size: NULL bytes");
    *bytes = (size_t)qk_rowpack_size(f, R, rows, cols);
    return QKC_OK;
}

static qkc_status repack_io(const qkc_kernel *k, int param, const void *src, size_t src_bytes, int64_t rows,
                            int64_t cols, void *dst, size_t dst_bytes, int to_rp)
{
    const qk_format *f = NULL; /* set on QKC_OK (the initializers quiet -O3 warnings) */
    int R = 0;
    qkc_status st = repack_args(k, param, rows, cols, &f, &R);
    if (st != QKC_OK)
        return st;
    if (!src || !dst)
        return rt_fail(k->prog->ctx, QKC_ERR_INVALID_ARG, "qkc_kernel_%srepack: NULL %s", to_rp ? "" : "un",
                       !src ? "src" : "dst");
    size_t std = (size_t)qk_format_size(f, rows, cols), rp = (size_t)qk_rowpack_size(f, R, rows, cols);
    size_t need_src = to_rp ? std : rp, need_dst = to_rp ? rp : std;
    if (src_bytes < need_src || dst_bytes < need_dst)
        return rt_fail(k->prog->ctx, QKC_ERR_SHAPE, "kernel '%s': %s has %zu bytes, %lld x %lld needs %zu",
                       k->kir->name, src_bytes < need_src ? "src" : "dst",
                       src_bytes < need_src ? src_bytes : dst_bytes, (long long)rows, (long long)cols,
                       src_bytes < need_src ? need_src : need_dst);
    char why[256];
    if (to_rp)
        qk_rowpack_pack(f, R, src, rows, cols, dst);
    else if (qk_rowpack_unpack(f, R, src, rows, cols, dst, why, sizeof why) != 0)
        return rt_fail(k->prog->ctx, QKC_ERR_INVALID_ARG, "qkc_kernel_unrepack: kernel '%s': %s", k->kir->name, why);
    return QKC_OK;
}

qkc_status qkc_kernel_repack(const qkc_kernel *k, int param, const void *src, size_t src_bytes, int64_t rows,
                             int64_t cols, void *dst, size_t dst_bytes)
{
    return repack_io(k, param, src, src_bytes, rows, cols, dst, dst_bytes, 1);
}

qkc_status qkc_kernel_unrepack(const qkc_kernel *k, int param, const void *src, size_t src_bytes, int64_t rows,
                               int64_t cols, void *dst, size_t dst_bytes)
{
    return repack_io(k, param, src, src_bytes, rows, cols, dst, dst_bytes, 0);
}

int qkc_kernel_ndims(const qkc_kernel *k)
{
    return k ? k->kir->nsyms : 0;
}

const char *qkc_kernel_dim_name(const qkc_kernel *k, int i)
{
    if (!k || i < 0 || i >= k->kir->nsyms)
        return NULL;
    return k->kir->syms[i];
}

const char *qkc_kernel_c_signature(const qkc_kernel *k)
{
    return k ? k->signature : NULL;
}

qkc_status qkc_kernel_fnptr(const qkc_kernel *k, void **fn)
{
    if (fn)
        *fn = NULL;
    if (!k || !fn)
        return QKC_ERR_INVALID_ARG;
    if (k->prog->ctx->backend->absent)
        return rt_fail(k->prog->ctx, QKC_ERR_UNSUPPORTED, "kernel '%s': %s", k->kir->name,
                       k->prog->ctx->backend->absent);
    if (k->prog->ctx->target.kind != QK_TARGET_CPU || !k->entry->has_code || !k->entry->code.fn)
        return rt_fail(k->prog->ctx, QKC_ERR_UNSUPPORTED,
                       "kernel '%s': no host function pointer for target %s (GPU kernels run through qkc_launch)",
                       k->kir->name, k->prog->ctx->target.name);
    if (k->entry->f->nscratch || k->entry->f->nphases > 1)
        return rt_fail(k->prog->ctx, QKC_ERR_UNSUPPORTED,
                       "kernel '%s' materializes quantize()/hadamard() temps in scratch memory and runs in %d "
                       "phases: call it through qkc_launch",
                       k->kir->name, k->entry->f->nphases);
    *fn = k->entry->code.fn;
    return QKC_OK;
}

qkc_status qkc_kernel_work_items(const qkc_kernel *k, const int64_t *dims, int64_t *items)
{
    if (items)
        *items = 0;
    if (!k || !items || (!dims && k->kir->nsyms > 0))
        return QKC_ERR_INVALID_ARG;
    for (int i = 0; i < k->kir->nsyms; i++)
        if (dims[i] < 0)
            return rt_fail(k->prog->ctx, QKC_ERR_SHAPE, "dimension %s = %lld is negative", k->kir->syms[i],
                           (long long)dims[i]);
    *items = tir_work_items(k->entry->f, dims);
    return QKC_OK;
}
