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
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

#ifndef QKC_VERSION
#define QKC_VERSION "0.1.0"
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
    void *state = NULL;
    int rc = rt_backend_state(ctx, &state, err, sizeof err);
    if (rc == 0)
        rc = ctx->backend->compile(state, e->f, &e->code, err, sizeof err);
    if (rc != 0) {
        if (ctx->target.kind == QK_TARGET_GPU && rt_is_no_device(err)) {
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

/* Finds or builds the cache entry of k (with a reference). */
static qkc_status get_entry(qkc_ctx *ctx, const kir_kernel *k, rt_entry **out)
{
    tir_config cfg;
    memset(&cfg, 0, sizeof cfg);
    tir_default_config(&ctx->target, &cfg);
    tir_apply_schedule(k, &cfg);
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
    if (!k)
        return;
    rt_cache_release(&k->prog->ctx->cache, k->entry);
    qk_arena_free(k->arena);
    free(k);
}

qkc_status qkc_kernel_get(qkc_program *p, const char *name, qkc_kernel **out)
{
    if (out)
        *out = NULL;
    if (!p || !name || !out)
        return rt_fail(p ? p->ctx : NULL, QKC_ERR_INVALID_ARG, "qkc_kernel_get: NULL %s",
                       !p ? "program" : !name ? "name" : "out");
    if (!p->kir)
        return rt_fail(p->ctx, QKC_ERR_INVALID_ARG, "the program has compile errors: no kernels");
    int i = kernel_index(p, name);
    if (i < 0)
        return not_found(p, name);
    pthread_mutex_lock(&p->mu);
    qkc_status st = QKC_OK;
    if (!p->kernels[i]) {
        rt_entry *e = NULL;
        st = get_entry(p->ctx, p->kir->kernels[i], &e);
        if (st == QKC_OK)
            p->kernels[i] = kernel_new(p, p->kir->kernels[i], e);
    }
    *out = p->kernels[i];
    pthread_mutex_unlock(&p->mu);
    return st;
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
    return QKC_OK;
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
