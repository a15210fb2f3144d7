/* launch.c — qkc_launch, qkc_reference and qk_device_time (device.h: a
 * GPU launch timed on the device, for `qkc bench`). Every argument is checked
 * against the kernel's declaration (count, dtype, rank, strides) and the
 * dimensions are bound and range-checked by kir_bind before any tensor
 * memory is read or written. Then the argument array of tir.h's ABI is
 * built and the entry point is called through libffi, once per chunk of
 * work items, from the context's thread pool (CPU), or handed to the
 * backend's launch hook (GPU).
 *
 * The launch path is meant to cost well under a microsecond over a direct
 * call of the entry point: its working memory lives on the caller's stack
 * (rt_frame), and with the context's thread count (threads = 0) small
 * work runs on the calling thread alone (small_work). */
#include "runtime/device.h"
#include "runtime/runtime.h"
#include "compiler/rowpack.h"

#include <stdlib.h>
#include <string.h>

/* ---- argument validation ---- */

static qkc_status check_dtype(const qkc_kernel *k, int i, const qkc_tensor *a)
{
    const kir_tensor *t = &k->kir->tensors[i];
    qkc_ctx *ctx = k->prog->ctx;
    if (t->fmt && a->dtype != QKC_PACKED)
        return rt_fail(ctx, QKC_ERR_DTYPE, "argument %d '%s' of kernel '%s': expected QKC_PACKED bytes of format %s, got %s",
                       i, t->name, k->kir->name, t->fmt->name, rt_qkc_dtype_name(a->dtype));
    if (!t->fmt && rt_dtype_to_qk(a->dtype) != t->dtype)
        return rt_fail(ctx, QKC_ERR_DTYPE, "argument %d '%s' of kernel '%s': expected dtype %s, got %s", i, t->name,
                       k->kir->name, qk_dtype_name(t->dtype), rt_qkc_dtype_name(a->dtype));
    return QKC_OK;
}

static qkc_status check_rank(const qkc_kernel *k, int i, const qkc_tensor *a)
{
    const kir_tensor *t = &k->kir->tensors[i];
    if (a->rank == t->rank)
        return QKC_OK;
    qk_buf b = {0};
    for (int d = 0; d < t->rank; d++)
        qk_buf_printf(&b, "%s%s", d ? ", " : "", k->dim_text[i][d]);
    qkc_status st = rt_fail(k->prog->ctx, QKC_ERR_SHAPE,
                            "argument %d '%s' of kernel '%s': rank %d, but it is declared with rank %d [%s]", i,
                            t->name, k->kir->name, a->rank, t->rank, b.s ? b.s : "");
    qk_buf_free(&b);
    return st;
}

/* Fills v->stride: given strides, or row-major when all are zero. */
static qkc_status check_strides(const qkc_kernel *k, int i, const qkc_tensor *a, kir_view *v)
{
    const kir_tensor *t = &k->kir->tensors[i];
    int all_zero = 1;
    for (int d = 0; d < a->rank; d++)
        all_zero &= a->strides[d] == 0;
    int64_t s = 1;
    for (int d = a->rank - 1; d >= 0; d--) {
        v->stride[d] = all_zero || t->fmt ? s : a->strides[d];
        s *= a->shape[d] > 0 ? a->shape[d] : 1;
    }
    if (t->fmt || all_zero || a->rank == 0)
        return QKC_OK;
    for (int d = 0; d < a->rank; d++)
        if (a->strides[d] < 0 || (t->kind == KIR_RESULT && a->strides[d] == 0 && a->shape[d] > 1))
            return rt_fail(k->prog->ctx, QKC_ERR_SHAPE, "argument %d '%s': stride %lld of dim %d is %s", i, t->name,
                           (long long)a->strides[d], d, a->strides[d] < 0 ? "negative" : "zero on a result");
    if (a->strides[a->rank - 1] != 1)
        return rt_fail(k->prog->ctx, QKC_ERR_SHAPE, "argument %d '%s': the innermost stride must be 1, got %lld", i,
                       t->name, (long long)a->strides[a->rank - 1]);
    return QKC_OK;
}

static qkc_status check_shape(const qkc_kernel *k, int i, const qkc_tensor *a, kir_view *v)
{
    const kir_tensor *t = &k->kir->tensors[i];
    int empty = 0;
    for (int d = 0; d < a->rank; d++) {
        if (a->shape[d] < 0)
            return rt_fail(k->prog->ctx, QKC_ERR_SHAPE, "argument %d '%s': dim %d has negative size %lld", i,
                           t->name, d, (long long)a->shape[d]);
        empty |= a->shape[d] == 0;
        v->shape[d] = a->shape[d];
    }
    if (!a->data && !empty)
        return rt_fail(k->prog->ctx, QKC_ERR_INVALID_ARG, "argument %d '%s': data is NULL", i, t->name);
    v->data = a->data;
    v->rank = a->rank;
    return QKC_OK;
}

static qkc_status check_one(const qkc_kernel *k, int i, const qkc_tensor *a, kir_view *v)
{
    memset(v, 0, sizeof *v);
    qkc_status st = check_dtype(k, i, a);
    if (st == QKC_OK)
        st = check_rank(k, i, a);
    if (st == QKC_OK && (a->rank < 0 || a->rank > QKC_MAX_RANK))
        st = rt_fail(k->prog->ctx, QKC_ERR_SHAPE, "argument %d: rank %d out of range", i, a->rank);
    if (st == QKC_OK)
        st = check_shape(k, i, a, v);
    if (st == QKC_OK)
        st = check_strides(k, i, a, v);
    return st;
}

qkc_status rt_check_args(const qkc_kernel *k, const qkc_tensor *args, int nargs, kir_view *views, int64_t *dims)
{
    int n = k->kir->nparams + k->kir->nresults;
    if (nargs != n)
        return rt_fail(k->prog->ctx, QKC_ERR_SHAPE, "kernel '%s' takes %d tensors (%d params, %d results), got %d",
                       k->kir->name, n, k->kir->nparams, k->kir->nresults, nargs);
    for (int i = 0; i < n; i++) {
        qkc_status st = check_one(k, i, &args[i], &views[i]);
        if (st != QKC_OK)
            return st;
    }
    char err[1024] = "";
    if (kir_bind(k->kir, views, dims, err, sizeof err) != 0)
        return rt_fail(k->prog->ctx, QKC_ERR_SHAPE, "kernel '%s': %s", k->kir->name, err);
    return QKC_OK;
}

/* ---- the call ---- */

typedef union {
    void *p;
    int64_t i;
} rt_val;

typedef struct rt_call {
    const rt_entry *e;
    int nargs, cap;
    rt_val *vals;
    void **av;         /* av[j] = &vals[j] */
    int64_t *bytes;    /* buffer sizes of pointer args (GPU copies, work estimate) */
    int nscratch;
    void **scratch;    /* owned: freed after the launch */
    int64_t base;      /* first work item of the phase being run */
} rt_call;

/* Working memory of one launch or reference run. Kernels up to
 * RT_SMALL_T tensors and RT_SMALL_A arguments keep it on the caller's
 * stack (under 3 KiB: callers may have small stacks), larger ones in one
 * heap block; a launch allocates nothing else unless the kernel has
 * scratch temps. */
enum { RT_SMALL_T = 8, RT_SMALL_A = 40 };

typedef struct rt_frame {
    kir_view *views;
    int64_t *dims;
    rt_call call;
    void *heap;
    kir_view views_s[RT_SMALL_T];
    int64_t dims_s[RT_SMALL_A];
    rt_val vals_s[RT_SMALL_A];
    void *av_s[RT_SMALL_A];
    int64_t bytes_s[RT_SMALL_A];
    void *scratch_s[RT_SMALL_A];
} rt_frame;

/* Arguments the runtime lays out for k (build_call's order). */
static int count_args(const qkc_kernel *k)
{
    const kir_kernel *kk = k->kir;
    int n = kk->nparams + kk->nresults, na = n + kk->nsyms + k->entry->f->nscratch + 2;
    for (int i = 0; i < n; i++)
        if (!kk->tensors[i].fmt && kk->tensors[i].rank > 1)
            na += kk->tensors[i].rank - 1;
    return na;
}

static void frame_init(rt_frame *fr, const qkc_kernel *k)
{
    int nt = k->kir->nparams + k->kir->nresults, ns = k->kir->nsyms;
    int na = count_args(k);
    na = na > k->entry->f->nargs ? na : k->entry->f->nargs;
    rt_call *c = &fr->call;
    memset(c, 0, sizeof *c);
    c->cap = na;
    fr->heap = NULL;
    if (nt <= RT_SMALL_T && ns <= RT_SMALL_A && na <= RT_SMALL_A) {
        fr->views = fr->views_s;
        fr->dims = fr->dims_s;
        c->vals = fr->vals_s;
        c->av = fr->av_s;
        c->bytes = fr->bytes_s;
        c->scratch = fr->scratch_s;
        return;
    }
    /* every part is 8-byte aligned */
    size_t vb = (size_t)nt * sizeof(kir_view), db = (size_t)(ns + 1) * sizeof(int64_t), ab = (size_t)na * 8;
    char *h = fr->heap = qk_xcalloc(1, vb + db + 4 * ab);
    fr->views = (kir_view *)h;
    fr->dims = (int64_t *)(h + vb);
    c->vals = (rt_val *)(h + vb + db);
    c->av = (void **)(h + vb + db + ab);
    c->bytes = (int64_t *)(h + vb + db + 2 * ab);
    c->scratch = (void **)(h + vb + db + 3 * ab);
}

static void frame_free(rt_frame *fr)
{
    for (int j = 0; j < fr->call.nscratch; j++)
        free(fr->call.scratch[j]);
    free(fr->heap);
}

#if QKC_HAVE_FFI
int rt_entry_prep_ffi(rt_entry *e)
{
    const tir_func *f = e->f;
    e->types = qk_xcalloc((size_t)f->nargs + 1, sizeof *e->types);
    for (int i = 0; i < f->nargs; i++) {
        if (f->args[i].s == TS_PTR)
            e->types[i] = &ffi_type_pointer;
        else if (f->args[i].s == TS_I64)
            e->types[i] = &ffi_type_sint64;
        else
            return -1;
    }
    return ffi_prep_cif(&e->cif, FFI_DEFAULT_ABI, (unsigned)f->nargs, &ffi_type_void, e->types) == FFI_OK ? 0 : -1;
}
#else
int rt_entry_prep_ffi(rt_entry *e)
{
    return -1;
}
#endif

/* Bytes a view spans (for GPU copies). */
static int64_t view_bytes(const kir_tensor *t, const kir_view *v)
{
    int64_t rows = 1, span = 1;
    for (int d = 0; d < v->rank; d++) {
        if (v->shape[d] == 0)
            return 0;
        if (d + 1 < v->rank)
            rows *= v->shape[d];
        span += (v->shape[d] - 1) * v->stride[d];
    }
    if (t->fmt)
        return qk_format_size(t->fmt, rows, v->rank ? v->shape[v->rank - 1] : 1);
    return span * qk_dtype_size(t->dtype);
}

static void push(rt_call *c, rt_val v, int64_t bytes)
{
    if (c->nargs < c->cap) {
        c->vals[c->nargs] = v;
        c->bytes[c->nargs] = bytes;
        c->nargs++;
    }
}

/* Lays out the arguments of tir.h's ABI. */
static qkc_status build_call(const qkc_kernel *k, const kir_view *views, const int64_t *dims, rt_call *c)
{
    const kir_kernel *kk = k->kir;
    int n = kk->nparams + kk->nresults;
    c->e = k->entry;
    c->nargs = 0;
    c->nscratch = 0;
    c->base = 0;
    for (int i = 0; i < n; i++) {
        int64_t bytes = view_bytes(&kk->tensors[i], &views[i]);
        if (i == k->entry->f->repack_tensor)
            bytes = qk_rowpack_size(kk->tensors[i].fmt, k->entry->f->repack_rows,
                                    views[i].rank == 2 ? views[i].shape[0] : 0, views[i].shape[views[i].rank - 1]);
        push(c, (rt_val){.p = views[i].data}, bytes);
    }
    for (int s = 0; s < kk->nsyms; s++)
        push(c, (rt_val){.i = dims[s]}, 0);
    for (int i = 0; i < n; i++)
        for (int d = 0; !kk->tensors[i].fmt && d + 1 < views[i].rank; d++)
            push(c, (rt_val){.i = views[i].stride[d]}, 0);
    const tir_func *tf = k->entry->f;
    for (int j = 0; j < tf->nscratch; j++) {
        int64_t bytes = tir_scratch_bytes(tf, kk, j, dims);
        void *buf = bytes >= 0 && (uint64_t)bytes < (uint64_t)SIZE_MAX / 2 ? calloc(1, (size_t)bytes + 64) : NULL;
        if (!buf)
            return rt_fail(k->prog->ctx, QKC_ERR_NOMEM, "kernel '%s': no memory for the scratch of temp '%s' (%lld bytes)",
                           kk->name, kk->tensors[tf->scratch[j].tensor].name, (long long)bytes);
        c->scratch[c->nscratch++] = buf;
        push(c, (rt_val){.p = buf}, bytes);
    }
    push(c, (rt_val){.i = 0}, 0);
    push(c, (rt_val){.i = 0}, 0);
    const tir_func *f = k->entry->f;
    if (c->nargs != f->nargs || f->arg_begin != c->nargs - 2 || f->arg_end != c->nargs - 1)
        return rt_fail(k->prog->ctx, QKC_ERR_INTERNAL,
                       "kernel '%s': the tiled IR has %d arguments, the runtime laid out %d", kk->name, f->nargs,
                       c->nargs);
    for (int j = 0; j < c->nargs; j++)
        c->av[j] = &c->vals[j];
    return QKC_OK;
}

/* Pool task: runs work items [b, e) through libffi. */
static void run_chunk(void *arg, int64_t b, int64_t e)
{
    const rt_call *c = arg;
    void *av[RT_MAX_ARGS];
    memcpy(av, c->av, (size_t)c->nargs * sizeof *av);
    int64_t bb = c->base + b, ee = c->base + e;
    av[c->nargs - 2] = &bb;
    av[c->nargs - 1] = &ee;
#if QKC_HAVE_FFI /* without it no CPU entry has code, so nothing runs here */
    ffi_arg rv;
    ffi_call((ffi_cif *)&c->e->cif, FFI_FN(c->e->code.fn), &rv, av);
#endif
}

/* ---- how many threads ---- */

/* Below this much work a launch with the context's thread count runs on
 * the calling thread alone: waking workers and joining them costs more
 * than they save. Work is bytes of tensor data touched plus
 * RT_ITER_BYTES per inner iteration (one multiply-add of the kernel's
 * statements), so a GEMM with little data but many flops still spreads.
 * 256 KiB is some 10-30 us of one core's work, the order of what waking
 * and joining a sleeping worker costs. Explicit thread counts are
 * obeyed as given. */
#define RT_SMALL_WORK (256.0 * 1024)
#define RT_ITER_BYTES 0.5

/* Inner iterations of k at dims: per statement, the product of its
 * variables' extents. */
static double iterations(const kir_kernel *k, const int64_t *dims)
{
    double total = 0;
    for (int s = 0; s < k->nstmts; s++) {
        double n = 1;
        for (int v = 0; v < k->nvars; v++)
            if (k->vars[v].stmt == s)
                n *= (double)kir_dim_value(k->vars[v].extent, dims);
        total += n;
    }
    return total;
}

static int small_work(const qkc_kernel *k, const rt_call *c, const int64_t *dims)
{
    double bytes = 0;
    for (int i = 0; i < k->kir->nparams + k->kir->nresults; i++)
        bytes += (double)c->bytes[i];
    return bytes + RT_ITER_BYTES * iterations(k->kir, dims) < RT_SMALL_WORK;
}

/* Runs the phases in order; the items of one phase in parallel on up to
 * threads threads (the caller included). */
static qkc_status launch_cpu(qkc_kernel *k, rt_call *c, const int64_t *dims, int threads)
{
    qkc_ctx *ctx = k->prog->ctx;
    const tir_func *f = k->entry->f;
    for (int p = 0; p < f->nphases; p++) {
        int64_t lo, hi;
        tir_phase_items(f, dims, p, &lo, &hi);
        c->base = lo;
        if (hi - lo <= 0)
            continue;
        if (threads == 1 || hi - lo == 1)
            run_chunk(c, 0, hi - lo);
        else
            rt_pool_run(ctx->pool, threads, hi - lo, run_chunk, c); /* -1: ran on fewer threads, still complete */
    }
    return QKC_OK;
}

/* What a GPU launch of k needs: code, one phase, the backend state. */
static qkc_status gpu_ready(qkc_kernel *k, void **state)
{
    qkc_ctx *ctx = k->prog->ctx;
    rt_entry *e = k->entry;
    if (!e->has_code)
        return rt_fail(ctx, rt_is_no_device(e->code_err) ? QKC_ERR_NO_DEVICE : QKC_ERR_TARGET,
                       "kernel '%s' cannot run on %s: %s", k->kir->name, ctx->target.name, e->code_err);
    char err[2048] = "";
    if (rt_backend_state(ctx, state, err, sizeof err) != 0)
        return rt_fail(ctx, rt_is_no_device(err) ? QKC_ERR_NO_DEVICE : QKC_ERR_TARGET, "kernel '%s' on %s: %s",
                       k->kir->name, ctx->target.name, err[0] ? err : "no backend");
    return QKC_OK;
}

/* The status of a failed backend call, with its message on ctx. */
static qkc_status gpu_fail(qkc_kernel *k, const char *err)
{
    qkc_ctx *ctx = k->prog->ctx;
    return rt_fail(ctx, rt_is_no_device(err) ? QKC_ERR_NO_DEVICE : QKC_ERR_TARGET, "kernel '%s' on %s: %s",
                   k->kir->name, ctx->target.name, err[0] ? err : "launch failed");
}

/* timing == NULL: a plain launch (copy in, run, copy out). Else a timed
 * one (backend.h's launch_timed). */
static qkc_status launch_gpu(qkc_kernel *k, rt_call *c, const int64_t *dims, int64_t items,
                             const qk_device_timing *timing)
{
    qkc_ctx *ctx = k->prog->ctx;
    rt_entry *e = k->entry;
    if (timing && e->f->nphases > 1)
        return rt_fail(ctx, QKC_ERR_UNSUPPORTED,
                       "kernel '%s': quantize()/hadamard() temps run in %d phases, which device timing does not "
                       "sequence yet",
                       k->kir->name, e->f->nphases);
    if (e->f->nphases > 64)
        return rt_fail(ctx, QKC_ERR_UNSUPPORTED, "kernel '%s' has %d phases; a GPU launch takes 64 at most",
                       k->kir->name, e->f->nphases);
    void *state = NULL;
    qkc_status st = gpu_ready(k, &state);
    if (st != QKC_OK)
        return st;
    char err[2048] = "";
    c->vals[c->nargs - 1].i = items;
    int64_t ends[64];
    for (int p = 0; p < e->f->nphases; p++) { /* phase p: its items, after every item of the phases before */
        int64_t lo, hi;
        tir_phase_items(e->f, dims, p, &lo, &hi);
        if (lo < hi && lo != (p ? ends[p - 1] : 0))
            return rt_fail(ctx, QKC_ERR_UNSUPPORTED, "kernel '%s': the work items of phase %d are not contiguous",
                           k->kir->name, p);
        ends[p] = lo < hi ? hi : p ? ends[p - 1] : 0;
    }
    int rc;
    if (!timing)
        rc = ctx->backend->launch(state, e->f, &e->code, c->av, c->bytes, e->f->nphases > 1 ? ends : NULL, err,
                                  sizeof err);
    else
        rc = ctx->backend->launch_timed(state, e->f, &e->code, c->av, c->bytes, timing->copies, timing->reps,
                                        timing->seconds, err, sizeof err);
    return rc == 0 ? QKC_OK : gpu_fail(k, err);
}

/* Checks args against k and builds the call in fr (always initialized:
 * the caller frees it); *items = the work items at these dims. */
static qkc_status frame_prepare(qkc_kernel *k, const qkc_tensor *args, int nargs, rt_frame *fr, int64_t *items)
{
    fr->heap = NULL; /* frame_free is a no-op until frame_init */
    fr->call.nscratch = 0;
    *items = 0;
    if (k->kir->nparams + k->kir->nresults > RT_MAX_ARGS || k->kir->nsyms > RT_MAX_ARGS)
        return rt_fail(k->prog->ctx, QKC_ERR_UNSUPPORTED, "kernel '%s' has too many tensors or dims", k->kir->name);
    frame_init(fr, k);
    qkc_status st = rt_check_args(k, args, nargs, fr->views, fr->dims);
    if (st == QKC_OK)
        st = build_call(k, fr->views, fr->dims, &fr->call);
    *items = st == QKC_OK ? tir_work_items(k->entry->f, fr->dims) : 0;
    return st;
}

qkc_status qkc_launch(qkc_kernel *k, const qkc_tensor *args, int nargs, const qkc_launch_options *opts)
{
    if (!k || !args)
        return rt_fail(k ? k->prog->ctx : NULL, QKC_ERR_INVALID_ARG, "qkc_launch: NULL %s", !k ? "kernel" : "args");
    qkc_ctx *ctx = k->prog->ctx;
    int threads = opts ? opts->threads : 0;
    if (threads < 0)
        return rt_fail(ctx, QKC_ERR_INVALID_ARG, "qkc_launch: threads = %d is negative", threads);
    rt_frame fr;
    int64_t items = 0;
    qkc_status st = frame_prepare(k, args, nargs, &fr, &items);
    if (st == QKC_OK && items > 0 && ctx->target.kind == QK_TARGET_GPU)
        st = launch_gpu(k, &fr.call, fr.dims, items, NULL);
    else if (st == QKC_OK && items > 0 && !k->entry->has_code)
        st = rt_fail(ctx, ctx->backend->absent ? QKC_ERR_UNSUPPORTED : QKC_ERR_TARGET, "kernel '%s' cannot run here: %s",
                     k->kir->name, k->entry->code_err);
    else if (st == QKC_OK && items > 0) {
        if (threads == 0) /* the context decides: all threads, unless the work is small */
            threads = small_work(k, &fr.call, fr.dims) ? 1 : ctx->threads;
        st = launch_cpu(k, &fr.call, fr.dims, threads);
    }
    frame_free(&fr);
    return st;
}

qkc_status qk_device_time(qkc_kernel *k, const qkc_tensor *args, int nargs, const qk_device_timing *timing)
{
    if (!k || !args || !timing || !timing->seconds)
        return rt_fail(k ? k->prog->ctx : NULL, QKC_ERR_INVALID_ARG, "qk_device_time: NULL %s",
                       !k ? "kernel" : !args ? "args" : "timing");
    qkc_ctx *ctx = k->prog->ctx;
    if (!ctx->backend->launch_timed)
        return rt_fail(ctx, QKC_ERR_UNSUPPORTED, "target %s has no device timing (GPU targets only)",
                       ctx->target.name);
    if (timing->copies < 1 || timing->reps < 1)
        return rt_fail(ctx, QKC_ERR_INVALID_ARG, "qk_device_time: copies = %d and reps = %d must be at least 1",
                       timing->copies, timing->reps);
    rt_frame fr;
    int64_t items = 0;
    qkc_status st = frame_prepare(k, args, nargs, &fr, &items);
    if (st == QKC_OK && items <= 0)
        st = rt_fail(ctx, QKC_ERR_SHAPE, "kernel '%s': nothing to time at this shape (no work items)", k->kir->name);
    if (st == QKC_OK)
        st = launch_gpu(k, &fr.call, fr.dims, items, timing);
    frame_free(&fr);
    return st;
}

qkc_status qkc_reference(qkc_kernel *k, const qkc_tensor *args, int nargs)
{
    if (!k || !args)
        return rt_fail(k ? k->prog->ctx : NULL, QKC_ERR_INVALID_ARG, "qkc_reference: NULL %s",
                       !k ? "kernel" : "args");
    if (k->kir->nparams + k->kir->nresults > RT_MAX_ARGS || k->kir->nsyms > RT_MAX_ARGS)
        return rt_fail(k->prog->ctx, QKC_ERR_UNSUPPORTED, "kernel '%s' has too many tensors or dims", k->kir->name);
    rt_frame fr;
    frame_init(&fr, k);
    qkc_status st = rt_check_args(k, args, nargs, fr.views, fr.dims);
    char err[1024] = "";
    /* weights in the row-interleaved layout: the reference reads the format's own */
    int rt = k->entry->f->repack_tensor;
    void *std = NULL;
    if (st == QKC_OK && rt >= 0) {
        const kir_view *v = &fr.views[rt];
        const qk_format *fm = k->kir->tensors[rt].fmt;
        int64_t rows = v->shape[0], cols = v->shape[1];
        std = malloc((size_t)qk_format_size(fm, rows, cols) + 1);
        if (!std)
            st = rt_fail(k->prog->ctx, QKC_ERR_NOMEM, "reference run of '%s': no memory", k->kir->name);
        else if (qk_rowpack_unpack(fm, k->entry->f->repack_rows, v->data, rows, cols, std, err, sizeof err) != 0)
            st = rt_fail(k->prog->ctx, QKC_ERR_INVALID_ARG, "reference run of '%s': the row-interleaved weights: %s",
                         k->kir->name, err);
        else
            fr.views[rt].data = std;
    }
    if (st == QKC_OK && ref_run(k->kir, fr.views, fr.dims, err, sizeof err) != 0)
        st = rt_fail(k->prog->ctx, strstr(err, "memory") ? QKC_ERR_NOMEM : QKC_ERR_SHAPE,
                     "reference run of '%s': %s", k->kir->name, err);
    free(std);
    frame_free(&fr);
    return st;
}
