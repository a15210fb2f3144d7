/* ctx.c — the compiler context: resolved target, backend (state created
 * lazily on the first kernel), launch thread pool, kernel cache and the
 * per-thread error messages behind qkc_errmsg(). */
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- per-thread error messages ---- */

/* Slot of the calling thread, or a recycled one (caller holds err_mu). */
static rt_errslot *err_slot(qkc_ctx *ctx, int create)
{
    pthread_t self = pthread_self();
    for (int i = 0; i < RT_ERR_SLOTS; i++)
        if (ctx->errs[i].used && pthread_equal(ctx->errs[i].tid, self))
            return &ctx->errs[i];
    if (!create)
        return NULL;
    rt_errslot *s = &ctx->errs[ctx->err_next];
    ctx->err_next = (ctx->err_next + 1) % RT_ERR_SLOTS;
    s->tid = self;
    s->used = 1;
    return s;
}

qkc_status rt_fail(const qkc_ctx *cctx, qkc_status st, const char *fmt, ...)
{
    if (!cctx)
        return st;
    qkc_ctx *ctx = (qkc_ctx *)cctx; /* the message table is the one mutable part */
    qk_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    qk_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    char *msg = qk_buf_take(&b);
    pthread_mutex_lock(&ctx->err_mu);
    rt_errslot *s = err_slot(ctx, 1);
    free(s->msg);
    s->msg = msg;
    pthread_mutex_unlock(&ctx->err_mu);
    return st;
}

const char *qkc_errmsg(const qkc_ctx *cctx)
{
    if (!cctx)
        return "no context";
    qkc_ctx *ctx = (qkc_ctx *)cctx;
    pthread_mutex_lock(&ctx->err_mu);
    rt_errslot *s = err_slot(ctx, 0);
    const char *m = s && s->msg ? s->msg : "";
    pthread_mutex_unlock(&ctx->err_mu);
    return m;
}

/* ---- creation ---- */

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 1024 ? 1024 : (int)n);
}

/* Resolves opts->target into t. 0, or -1 if the name is unknown. */
static int resolve_target(const char *name, qk_target *t)
{
    memset(t, 0, sizeof *t);
    if (!name || !*name || strcmp(name, "host") == 0) {
        qk_target_host(t);
        return 0;
    }
    return qk_target_named(name, t);
}

static void ctx_init_locks(qkc_ctx *ctx)
{
    pthread_mutex_init(&ctx->backend_mu, NULL);
    pthread_mutex_init(&ctx->err_mu, NULL);
    pthread_mutex_init(&ctx->tdb_mu, NULL);
    rt_cache_init(&ctx->cache);
}

/* A backend with a describe hook (GPU) replaces the target's preset
 * figures with the device's, when the machine has a device for it. No
 * driver, no device or a failing one leave the preset: kernels are still
 * compiled for it, and launches say what is missing. */
static void describe_device(qkc_ctx *ctx)
{
    void *state = NULL;
    char err[1024];
    if (!ctx->backend->describe || rt_backend_state(ctx, &state, err, sizeof err) != 0)
        return;
    qk_target t = ctx->target;
    if (ctx->backend->describe(state, &t, err, sizeof err) == 1)
        ctx->target = t;
}

qkc_status qkc_ctx_create(const qkc_ctx_options *opts, qkc_ctx **out)
{
    if (!out)
        return QKC_ERR_INVALID_ARG;
    *out = NULL;
    qkc_ctx_options o = {0};
    if (opts)
        o = *opts;
    if (o.threads < 0)
        return QKC_ERR_INVALID_ARG;
    qk_target t;
    if (resolve_target(o.target, &t) != 0)
        return QKC_ERR_TARGET;
    qkc_ctx *ctx = qk_xcalloc(1, sizeof *ctx);
    ctx->target = t;
    ctx->backend = t.kind == QK_TARGET_GPU ? &qk_backend_cuda : &qk_backend_llvm;
    ctx->dsl_path = o.dsl_path ? qk_xstrdup(o.dsl_path) : NULL;
    ctx->threads = o.threads ? o.threads : default_threads();
    ctx->pool = rt_pool_new(ctx->threads);
    ctx->cache_dir = rt_cache_dir_resolve(o.cache_dir);
    if (!o.tuning_db) {
        char path[4096];
        if (qk_tunedb_default_path(path, sizeof path))
            ctx->tuning_db = qk_xstrdup(path);
    } else if (o.tuning_db[0])
        ctx->tuning_db = qk_xstrdup(o.tuning_db);
    ctx_init_locks(ctx);
    describe_device(ctx);
    *out = ctx;
    return QKC_OK;
}

void qkc_ctx_destroy(qkc_ctx *ctx)
{
    if (!ctx)
        return;
    rt_cache_fini(&ctx->cache, ctx->backend, ctx->backend_state);
    if (ctx->backend_state)
        ctx->backend->destroy(ctx->backend_state);
    rt_pool_free(ctx->pool);
    qk_tunedb_close(ctx->tdb);
    free(ctx->tuning_db);
    free(ctx->cache_dir);
    free(ctx->tdb_warning);
    pthread_mutex_destroy(&ctx->tdb_mu);
    for (int i = 0; i < RT_ERR_SLOTS; i++)
        free(ctx->errs[i].msg);
    pthread_mutex_destroy(&ctx->backend_mu);
    pthread_mutex_destroy(&ctx->err_mu);
    free(ctx->backend_err);
    free(ctx->dsl_path);
    free(ctx);
}

const char *qkc_ctx_target(const qkc_ctx *ctx)
{
    return ctx ? ctx->target.name : NULL;
}

/* ---- the backend, created on first use ---- */

int rt_backend_state(qkc_ctx *ctx, void **state, char *err, size_t errsz)
{
    pthread_mutex_lock(&ctx->backend_mu);
    if (!ctx->backend_tried) {
        ctx->backend_tried = 1;
        char e[1024] = "";
        if (ctx->backend->create(&ctx->target, &ctx->backend_state, e, sizeof e) != 0) {
            ctx->backend_state = NULL;
            ctx->backend_err = qk_xstrdup(e[0] ? e : "backend creation failed");
        }
    }
    *state = ctx->backend_state;
    int rc = ctx->backend_state ? 0 : -1;
    if (rc)
        snprintf(err, errsz, "%s", ctx->backend_err);
    pthread_mutex_unlock(&ctx->backend_mu);
    return rc;
}

int rt_is_no_device(const char *msg)
{
    static const char *const pats[] = {"no CUDA driver", "no CUDA device", "NVRTC not found",
                                       "libcuda", "cannot run on this machine"};
    for (int i = 0; i < QK_COUNT(pats); i++)
        if (msg && strstr(msg, pats[i]))
            return 1;
    return 0;
}
