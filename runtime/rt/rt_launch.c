/* rt_launch.c — qkc_rt_launch: one call of a kernel built by `qkc build`.
 *
 * The steps mirror the JIT's launch (runtime/launch.c) over a constant
 * descriptor instead of a compiled kernel:
 *   check_kernel     the descriptor is of this ABI and consistent
 *   check_dims       dims >= 0; every tensor extent (temps too) >= 0 and
 *                    not absurdly large; non-empty tensors not NULL
 *   check_strides    0 = row-major; given strides >= 0 and no smaller
 *                    than the span of the dims inside them (rows of a
 *                    tensor never overlap)
 *   qkrt_select      the version that runs here
 *   plan_phases      work items of each phase (as tir_phase_items)
 *   alloc_scratch    zeroed, 64-byte aligned (as tir_scratch_bytes)
 *   run_cpu/run_gpu  the entry over each phase's items, in phase order
 * No tensor memory is read or written before every check has passed.
 * Messages go to opts->err; nothing is printed. */
#include "runtime/rt/rt_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QKRT_MAX_COUNT 65536 /* tensors, dims, grids, phases, scratch: a sane descriptor has far fewer */

int qkrt_fail(char *err, size_t errsz, int status, const char *fmt, ...)
{
    if (err && errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errsz, fmt, ap);
        va_end(ap);
    }
    return status;
}

int64_t qkrt_mul(int64_t a, int64_t b)
{
    if (a < 0 || b < 0 || (a && b > INT64_MAX / a))
        return -1;
    return a * b;
}

int64_t qkrt_add(int64_t a, int64_t b)
{
    if (a < 0 || b < 0 || a > INT64_MAX - b)
        return -1;
    return a + b;
}

int qkrt_extent(qkc_aot_dim d, const int64_t *dims, int64_t *out)
{
    int64_t x = d.sym >= 0 ? dims[d.sym] : 0;
    if ((d.c > 0 && x > INT64_MAX - d.c) || (d.c < 0 && x < INT64_MIN - d.c))
        return -1;
    *out = x + d.c;
    return 0;
}

int64_t qkrt_format_bytes(const qk_format *f, int64_t rows, int64_t k)
{
    if (rows < 0 || k < 0 || f->block < 1)
        return -1;
    int64_t blocks = k / f->block + (k % f->block != 0);
    int64_t row = qkrt_add(f->row_header_bytes, qkrt_mul(blocks, f->block_bytes));
    return qkrt_add(f->tensor_header_bytes, qkrt_mul(rows, row));
}

const char *qkc_rt_version(void)
{
    return QKC_VERSION;
}

/* ---- working memory of one launch ---- */

/* What the checks learn about one tensor. */
typedef struct tinfo {
    int64_t ext[QKC_AOT_MAX_RANK];
    int64_t elems; /* product of ext */
    int64_t bytes; /* params/results: bytes the tensor spans (GPU copies) */
} tinfo;

typedef struct launch {
    const qkc_aot_kernel *k;
    const qkc_aot_variant *v;
    const qkc_aot_arg *argv;
    int nio;                    /* params + results */
    int64_t *dims;
    int64_t *strides;           /* effective strides, k->nstrides */
    tinfo *t;                   /* k->ntensors */
    int nargs;
    qkc_aot_arg *args;          /* the entry's full argument list */
    int64_t *bytes;             /* per argument: buffer bytes (0 for integers) */
    unsigned char *is_ptr, *is_out;
    void **scratch;             /* calloc'd blocks, freed after the launch */
    int64_t (*phases)[2];       /* items [begin, end) of each phase */
    int64_t base;               /* first item of the phase being run */
    char *err;
    size_t errsz;
} launch;

/* ---- the descriptor ---- */

static int damaged(const launch *L, const char *what)
{
    return qkrt_fail(L->err, L->errsz, QKC_RT_ERR_INTERNAL, "kernel '%s': damaged descriptor (%s)",
                     qkrt_name(L->k), what);
}

static int dense(const qkc_aot_tensor *t)
{
    return !t->format;
}

/* Strides the tensor takes: one per dim but the last, dense rank >= 2. */
static int64_t strides_of(const qkc_aot_tensor *t)
{
    return dense(t) && t->rank >= 2 ? t->rank - 1 : 0;
}

static int check_tensor_desc(const launch *L, const qkc_aot_tensor *t)
{
    if (t->rank < 0 || t->rank > QKC_AOT_MAX_RANK)
        return damaged(L, "tensor rank");
    for (int64_t d = 0; d < t->rank; d++)
        if (t->dims[d].sym >= L->k->ndims)
            return damaged(L, "tensor dim");
    if (t->kind != QKC_AOT_TEMP && (dense(t) ? t->elem_bytes < 1 : t->format_bytes <= 0)) /* fused temps have neither */
        return damaged(L, "tensor element size or format");
    return QKC_RT_OK;
}

int qkrt_bad_abi(const qkc_aot_kernel *k, char *err, size_t errsz)
{
    return qkrt_fail(err, errsz, QKC_RT_ERR_UNSUPPORTED,
                     "kernel descriptor of ABI %lld; this libqkc_rt %s reads ABI %d to %d (rebuild with a matching qkc)",
                     (long long)k->abi, QKC_VERSION, QKC_AOT_ABI_MIN, QKC_AOT_ABI);
}

static int check_kernel(launch *L)
{
    const qkc_aot_kernel *k = L->k;
    if (!qkrt_abi_ok(k))
        return qkrt_bad_abi(k, L->err, L->errsz);
    if (k->nparams < 0 || k->nresults < 0 || k->ntensors < k->nparams + k->nresults ||
        k->ntensors > QKRT_MAX_COUNT || (k->ntensors > 0 && !k->tensors))
        return damaged(L, "tensor counts");
    if (k->ndims < 0 || k->ndims > QKRT_MAX_COUNT || k->nstrides < 0)
        return damaged(L, "dim or stride count");
    L->nio = (int)(k->nparams + k->nresults);
    int64_t ns = 0;
    for (int64_t i = 0; i < k->ntensors; i++) {
        int st = check_tensor_desc(L, &k->tensors[i]);
        if (st != QKC_RT_OK)
            return st;
        ns += i < L->nio ? strides_of(&k->tensors[i]) : 0;
    }
    if (ns != k->nstrides)
        return damaged(L, "stride count");
    if (!L->argv && L->nio + k->ndims + k->nstrides > 0)
        return qkrt_fail(L->err, L->errsz, QKC_RT_ERR_INVALID_ARG, "kernel '%s': NULL argv", qkrt_name(k));
    return QKC_RT_OK;
}

static int check_variant(const launch *L, const qkc_aot_variant *v)
{
    const qkc_aot_kernel *k = L->k;
    if (v->kind == QKC_AOT_CPU ? !v->entry : v->kind != QKC_AOT_CUDA || !v->gpu_code || !v->gpu_symbol)
        return damaged(L, "version code");
    if (v->ngrids < 0 || v->ngrids > QKRT_MAX_COUNT || (v->ngrids && !v->grids) || v->nphases < 0 ||
        v->nphases > QKRT_MAX_COUNT || v->nscratch < 0 || v->nscratch > QKRT_MAX_COUNT ||
        (v->nscratch && !v->scratch))
        return damaged(L, "version counts");
    for (int64_t g = 0; g < v->ngrids; g++) {
        const qkc_aot_grid *gr = &v->grids[g];
        if (gr->tile < 1 || gr->phase < 0 || gr->phase >= v->nphases || gr->extent.sym >= k->ndims ||
            (g > 0 && gr->phase < v->grids[g - 1].phase))
            return damaged(L, "grids");
    }
    for (int64_t j = 0; j < v->nscratch; j++) {
        const qkc_aot_scratch *s = &v->scratch[j];
        if (s->kind == QKC_AOT_SCRATCH_SUMS) { /* the sums of any operand, or unused */
            int bad;
            const int64_t *lay = qkrt_layout(k, v, &bad);
            if (!lay || lay[2] < (s->tensor >= 0) || s->tensor < -1 || s->tensor >= k->ntensors ||
                (s->tensor >= 0 && k->tensors[s->tensor].rank < 1))
                return damaged(L, "scratch");
            continue;
        }
        if (s->tensor < L->nio || s->tensor >= k->ntensors || s->kind < QKC_AOT_SCRATCH_PACKED ||
            s->kind > QKC_AOT_SCRATCH_DENSE || (s->kind == QKC_AOT_SCRATCH_PACKED && dense(&k->tensors[s->tensor])))
            return damaged(L, "scratch");
    }
    return QKC_RT_OK;
}

/* ---- dims and extents ---- */

static int too_large(const launch *L, const qkc_aot_tensor *t)
{
    return qkrt_fail(L->err, L->errsz, QKC_RT_ERR_SHAPE, "kernel '%s': tensor '%s' is too large for these dims",
                     qkrt_name(L->k), t->name ? t->name : "?");
}

/* Extents of tensor i; params and results must point somewhere unless
 * they are empty. */
static int check_tensor(launch *L, int64_t i)
{
    const qkc_aot_tensor *t = &L->k->tensors[i];
    tinfo *ti = &L->t[i];
    ti->elems = 1;
    for (int64_t d = 0; d < t->rank; d++) {
        if (qkrt_extent(t->dims[d], L->dims, &ti->ext[d]) != 0)
            return too_large(L, t);
        if (ti->ext[d] < 0)
            return qkrt_fail(L->err, L->errsz, QKC_RT_ERR_SHAPE, "kernel '%s': %s '%s': dim %lld has negative size %lld",
                             qkrt_name(L->k), i < L->nio ? "tensor" : "temp", t->name ? t->name : "?", (long long)d,
                             (long long)ti->ext[d]);
        ti->elems = ti->elems < 0 ? -1 : qkrt_mul(ti->elems, ti->ext[d]);
    }
    if (ti->elems < 0 || (dense(t) && qkrt_mul(ti->elems, t->elem_bytes) < 0))
        return too_large(L, t);
    if (i < L->nio && ti->elems > 0 && !L->argv[i].p)
        return qkrt_fail(L->err, L->errsz, QKC_RT_ERR_INVALID_ARG, "kernel '%s': %s %lld '%s' is NULL",
                         qkrt_name(L->k), i < L->k->nparams ? "param" : "result", (long long)i,
                         t->name ? t->name : "?");
    return QKC_RT_OK;
}

static int check_dims(launch *L)
{
    const qkc_aot_kernel *k = L->k;
    for (int64_t s = 0; s < k->ndims; s++) {
        L->dims[s] = L->argv[L->nio + s].i;
        if (L->dims[s] < 0)
            return qkrt_fail(L->err, L->errsz, QKC_RT_ERR_SHAPE, "kernel '%s': dim %s = %lld is negative",
                             qkrt_name(k), k->dim_names && k->dim_names[s] ? k->dim_names[s] : "?",
                             (long long)L->dims[s]);
    }
    for (int64_t i = 0; i < k->ntensors; i++) {
        int st = check_tensor(L, i);
        if (st != QKC_RT_OK)
            return st;
    }
    return QKC_RT_OK;
}

/* ---- strides ---- */

static int bad_stride(const launch *L, int64_t i, int64_t d, int64_t given, int64_t eff, int64_t inner)
{
    const qkc_aot_tensor *t = &L->k->tensors[i];
    const char *name = t->name ? t->name : "?";
    if (given < 0)
        return qkrt_fail(L->err, L->errsz, QKC_RT_ERR_SHAPE, "kernel '%s': tensor '%s': stride %lld of dim %lld is negative",
                         qkrt_name(L->k), name, (long long)given, (long long)d);
    return qkrt_fail(L->err, L->errsz, QKC_RT_ERR_SHAPE,
                     "kernel '%s': tensor '%s': stride %lld%s of dim %lld is smaller than %lld, the span of the dims "
                     "inside it (rows would overlap)",
                     qkrt_name(L->k), name, (long long)eff, given ? "" : " (row-major, given as 0)", (long long)d,
                     (long long)inner);
}

/* Effective strides of dense tensor i (given ones at argv + at, written
 * to L->strides + at) and the bytes it spans. */
static int tensor_strides(launch *L, int64_t i, int64_t at)
{
    const qkc_aot_tensor *t = &L->k->tensors[i];
    tinfo *ti = &L->t[i];
    const qkc_aot_arg *given = &L->argv[L->nio + L->k->ndims + at];
    int64_t r = t->rank, rm = 1, span = r ? ti->ext[r - 1] : 1; /* span of the dims inside d, in elements */
    for (int64_t d = r - 2; d >= 0; d--) {
        rm = qkrt_mul(rm, ti->ext[d + 1]);
        int64_t eff = given[d].i ? given[d].i : rm;
        if (given[d].i < 0 || (ti->elems > 0 && ti->ext[d] > 1 && eff < span))
            return bad_stride(L, i, d, given[d].i, eff, span);
        if (rm < 0)
            return too_large(L, t);
        L->strides[at + d] = eff;
        span = ti->elems > 0 ? qkrt_add(span, qkrt_mul(ti->ext[d] - 1, eff)) : 0;
        if (span < 0)
            return too_large(L, t);
    }
    ti->bytes = ti->elems > 0 ? qkrt_mul(span, t->elem_bytes) : 0;
    return ti->bytes < 0 ? too_large(L, t) : QKC_RT_OK;
}

static int check_strides(launch *L)
{
    int64_t at = 0;
    for (int64_t i = 0; i < L->nio; i++) {
        const qkc_aot_tensor *t = &L->k->tensors[i];
        if (!dense(t))
            continue;
        int st = tensor_strides(L, i, at);
        if (st != QKC_RT_OK)
            return st;
        at += strides_of(t);
    }
    return QKC_RT_OK;
}

/* ---- the call ---- */

/* Deserializes the format of tensor i; *table to free after use. */
static int tensor_format(const launch *L, int64_t i, qk_format *f, double **table)
{
    const qkc_aot_tensor *t = &L->k->tensors[i];
    char why[256] = "";
    if (qk_format_deserialize(t->format, (size_t)t->format_bytes, f, table, why, sizeof why) != 0)
        return qkrt_fail(L->err, L->errsz, QKC_RT_ERR_INTERNAL, "kernel '%s': the format of tensor '%s': %s",
                         qkrt_name(L->k), t->name ? t->name : "?", why);
    return QKC_RT_OK;
}

/* Packed bytes of quantized tensor i at the launch's extents. */
static int packed_bytes(const launch *L, int64_t i, int64_t *bytes)
{
    const qkc_aot_tensor *t = &L->k->tensors[i];
    const tinfo *ti = &L->t[i];
    qk_format f;
    double *table;
    int st = tensor_format(L, i, &f, &table);
    if (st != QKC_RT_OK)
        return st;
    int64_t K = t->rank ? ti->ext[t->rank - 1] : 1;
    *bytes = qkrt_format_bytes(&f, K ? ti->elems / K : 0, K);
    free(table);
    return *bytes < 0 ? too_large(L, t) : QKC_RT_OK;
}

/* Items of each phase; grids are in phase order, so a phase's items are
 * consecutive. *total: all of them. */
static int plan_phases(launch *L, int64_t *total)
{
    const qkc_aot_variant *v = L->v;
    int64_t n = 0;
    for (int64_t p = 0; p < v->nphases; p++)
        L->phases[p][0] = L->phases[p][1] = -1;
    for (int64_t g = 0; g < v->ngrids; g++) {
        const qkc_aot_grid *gr = &v->grids[g];
        int64_t e, (*ph)[2] = &L->phases[gr->phase];
        if (qkrt_extent(gr->extent, L->dims, &e) != 0)
            return qkrt_fail(L->err, L->errsz, QKC_RT_ERR_SHAPE, "kernel '%s': the dims are too large", qkrt_name(L->k));
        if ((*ph)[0] < 0)
            (*ph)[0] = n;
        n = qkrt_add(n, e > 0 ? e / gr->tile + (e % gr->tile != 0) : 0);
        if (n < 0)
            return qkrt_fail(L->err, L->errsz, QKC_RT_ERR_SHAPE, "kernel '%s': the dims are too large", qkrt_name(L->k));
        (*ph)[1] = n;
    }
    for (int64_t p = 0; p < v->nphases; p++)
        if (L->phases[p][0] < 0)
            L->phases[p][0] = L->phases[p][1] = n;
    *total = n;
    return QKC_RT_OK;
}

/* Scratch buffer j: zeroed (calloc: free for large blocks), its pointer
 * aligned to 64 bytes. */
static int alloc_scratch(launch *L, int64_t j, int64_t arg)
{
    const qkc_aot_scratch *s = &L->v->scratch[j];
    if (s->kind == QKC_AOT_SCRATCH_SUMS && s->tensor < 0) { /* unused: no bytes */
        L->scratch[j] = NULL;
        L->args[arg].p = NULL;
        L->bytes[arg] = 0;
        L->is_ptr[arg] = 2;
        return QKC_RT_OK;
    }
    const qkc_aot_tensor *t = &L->k->tensors[s->tensor];
    int64_t bytes = qkrt_mul(L->t[s->tensor].elems, 4);
    if (s->kind == QKC_AOT_SCRATCH_SUMS) { /* int32 [rows][ceil(K / G)] */
        const tinfo *ti = &L->t[s->tensor];
        int bad;
        int64_t K = ti->ext[t->rank - 1], G = qkrt_layout(L->k, L->v, &bad)[2]; /* checked in check_variant */
        bytes = qkrt_mul(qkrt_mul(K ? ti->elems / K : 0, K / G + (K % G != 0)), 4);
    } else if (s->kind == QKC_AOT_SCRATCH_PACKED) {
        int st = packed_bytes(L, s->tensor, &bytes);
        if (st != QKC_RT_OK)
            return st;
    }
    if (bytes < 0)
        return too_large(L, t);
    char *block = (uint64_t)bytes < (uint64_t)SIZE_MAX / 2 ? calloc(1, (size_t)bytes + 64) : NULL;
    if (!block)
        return qkrt_fail(L->err, L->errsz, QKC_RT_ERR_NOMEM, "kernel '%s': no memory for the scratch of temp '%s' (%lld bytes)",
                         qkrt_name(L->k), t->name ? t->name : "?", (long long)bytes);
    L->scratch[j] = block;
    L->args[arg].p = block + (64 - (uintptr_t)block % 64) % 64;
    L->bytes[arg] = bytes;
    L->is_ptr[arg] = 2; /* scratch: a GPU launch keeps it on the device */
    return QKC_RT_OK;
}

/* The entry's arguments: tensors, dims, strides, scratch. */
static int build_args(launch *L)
{
    const qkc_aot_kernel *k = L->k;
    int a = 0;
    for (int i = 0; i < L->nio; i++, a++) {
        L->args[a] = L->argv[i];
        L->is_ptr[a] = 1;
        L->is_out[a] = i >= k->nparams;
        L->bytes[a] = L->t[i].bytes;
    }
    for (int64_t s = 0; s < k->ndims; s++)
        L->args[a++].i = L->dims[s];
    for (int64_t s = 0; s < k->nstrides; s++)
        L->args[a++].i = L->strides[s];
    for (int64_t j = 0; j < L->v->nscratch; j++) {
        int st = alloc_scratch(L, j, a++);
        if (st != QKC_RT_OK)
            return st;
    }
    return QKC_RT_OK;
}

/* Pool task: items [b, e) of the current phase. */
static void run_chunk(void *arg, int64_t b, int64_t e)
{
    const launch *L = arg;
    L->v->entry(L->args, L->base + b, L->base + e);
}

static int run_cpu(launch *L, qkc_rt_pool *pool)
{
    if (pool)
        qkrt_pool_lock(pool);
    for (int64_t p = 0; p < L->v->nphases; p++) {
        int64_t lo = L->phases[p][0], hi = L->phases[p][1];
        if (hi <= lo)
            continue;
        L->base = lo;
        if (pool)
            qkrt_pool_run(pool, hi - lo, run_chunk, L);
        else
            L->v->entry(L->args, lo, hi);
    }
    if (pool)
        qkrt_pool_unlock(pool);
    return QKC_RT_OK;
}

static int run_gpu(launch *L, qkc_rt_gpu *gpu)
{
    for (int i = 0; i < L->nio; i++)
        if (!dense(&L->k->tensors[i]) && L->t[i].elems > 0) {
            int st = packed_bytes(L, i, &L->bytes[i]);
            if (st != QKC_RT_OK)
                return st;
        }
    qkrt_gpu_call c = {L->k, L->v, L->args, L->nargs, L->bytes, L->is_ptr, L->is_out, (int)L->v->nphases,
                       (const int64_t(*)[2])L->phases};
    return qkrt_cuda_launch(gpu, &c, L->err, L->errsz);
}

/* Working memory for the checks: dims, strides, tensors. */
static int alloc_checks(launch *L, void **block)
{
    const qkc_aot_kernel *k = L->k;
    size_t n = (size_t)(k->ndims + k->nstrides) * sizeof(int64_t) + (size_t)k->ntensors * sizeof(tinfo);
    char *b = *block = calloc(1, n + 1);
    if (!b)
        return qkrt_fail(L->err, L->errsz, QKC_RT_ERR_NOMEM, "kernel '%s': out of memory", qkrt_name(k));
    L->t = (tinfo *)b;
    L->dims = (int64_t *)(b + (size_t)k->ntensors * sizeof(tinfo));
    L->strides = L->dims + k->ndims;
    return QKC_RT_OK;
}

/* Working memory of the call: arguments and their sizes, scratch, phases. */
static int alloc_call(launch *L, void **block)
{
    const qkc_aot_kernel *k = L->k;
    L->nargs = (int)(L->nio + k->ndims + k->nstrides + L->v->nscratch);
    size_t na = (size_t)L->nargs, np = (size_t)L->v->nphases, ns = (size_t)L->v->nscratch;
    size_t n = na * (sizeof(qkc_aot_arg) + sizeof(int64_t)) + np * 2 * sizeof(int64_t) + ns * sizeof(void *) + na * 2;
    char *b = *block = calloc(1, n + 1);
    if (!b)
        return qkrt_fail(L->err, L->errsz, QKC_RT_ERR_NOMEM, "kernel '%s': out of memory", qkrt_name(k));
    L->args = (qkc_aot_arg *)b;
    L->bytes = (int64_t *)(L->args + na);
    L->phases = (int64_t(*)[2])(L->bytes + na);
    L->scratch = (void **)(L->phases + np);
    L->is_ptr = (unsigned char *)(L->scratch + ns);
    L->is_out = L->is_ptr + na;
    return QKC_RT_OK;
}

static int launch_selected(launch *L, const qkc_rt_opts *opts, void **call)
{
    int st = check_variant(L, L->v);
    if (st == QKC_RT_OK)
        st = alloc_call(L, call);
    int64_t total = 0;
    if (st == QKC_RT_OK)
        st = plan_phases(L, &total);
    if (st != QKC_RT_OK || total == 0)
        return st;
    st = build_args(L);
    if (st != QKC_RT_OK)
        return st;
    if (L->v->kind == QKC_AOT_CUDA)
        return run_gpu(L, opts ? opts->gpu : NULL);
    return run_cpu(L, opts ? opts->pool : NULL);
}

int qkc_rt_launch(const qkc_aot_kernel *k, const qkc_aot_arg *argv, const qkc_rt_opts *opts)
{
    launch L = {.k = k, .argv = argv, .err = opts ? opts->err : NULL, .errsz = opts ? opts->errsz : 0};
    if (!k)
        return qkrt_fail(L.err, L.errsz, QKC_RT_ERR_INVALID_ARG, "qkc_rt_launch: NULL kernel");
    void *checks = NULL, *call = NULL;
    int st = check_kernel(&L);
    if (st == QKC_RT_OK)
        st = alloc_checks(&L, &checks);
    if (st == QKC_RT_OK)
        st = check_dims(&L);
    if (st == QKC_RT_OK)
        st = check_strides(&L);
    if (st == QKC_RT_OK)
        st = qkrt_select(k, &L.v, L.err, L.errsz);
    if (st == QKC_RT_OK)
        st = launch_selected(&L, opts, &call);
    for (int64_t j = 0; call && j < L.v->nscratch; j++)
        free(L.scratch[j]);
    free(call);
    free(checks);
    return st;
}
