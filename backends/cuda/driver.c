/* driver.c — the CUDA driver API side of the backend: loads PTX into the
 * device's primary context and launches a kernel over host buffers (copy
 * in, launch, synchronize, copy out); for `qkc bench` and `qkc probe` it
 * also times launches on buffers kept on the device and device-to-device
 * copies with events, and reads the device's geometry into a qk_target.
 *
 * libcuda is opened with dlopen("libcuda.so.1") — never the link-time
 * stub libcuda.so — or $QKC_LIBCUDA when set (then only that). Where it is
 * missing, every launch fails with "no CUDA driver ...", which the runtime
 * maps to QKC_ERR_NO_DEVICE. Every CUresult is checked and reported with
 * cuGetErrorString's text.
 *
 * Versioned symbols (_v2) are the ones cuda.h maps the plain names to. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_internal.h"

/* Formats "what: CUDA_ERROR_X (text)" for a failed driver call. */
static int cu_fail(const cuda_driver *drv, CUresult r, const char *what, char *err, size_t errsz) {
    const char *text = NULL;
    if (!drv->get_error_string || drv->get_error_string(r, &text) != 0 || !text)
        text = "unknown error";
    snprintf(err, errsz, "%s failed: %s (CUresult %d)", what, text, r);
    return -1;
}

#define CU_CHECK(drv, call, what)                                   \
    do {                                                            \
        CUresult r_ = (call);                                       \
        if (r_ != 0)                                                \
            return cu_fail((drv), r_, (what), err, errsz);          \
    } while (0)

/* Resolves every driver function; the name of a missing one, else NULL. */
static const char *resolve(cuda_driver *d) {
    CUDA_API_RESOLVE(d->lib, d)
    return NULL;
}

/* cuInit, first device, its primary context. */
static int init_device(cuda_driver *d, char *err, size_t errsz) {
    CUresult r = d->init(0);
    if (r == CUDA_ERROR_STUB_LIBRARY) {
        snprintf(err, errsz, "no CUDA driver: the loaded libcuda is the toolkit's stub (cuInit returned 34)");
        return -1;
    }
    if (r == CUDA_ERROR_NO_DEVICE) {
        snprintf(err, errsz, "no CUDA device (cuInit: CUDA_ERROR_NO_DEVICE)");
        return -1;
    }
    CU_CHECK(d, r, "cuInit");
    int count = 0;
    CU_CHECK(d, d->device_get_count(&count), "cuDeviceGetCount");
    if (count == 0) {
        snprintf(err, errsz, "no CUDA device (the driver reports 0 devices)");
        return -1;
    }
    CU_CHECK(d, d->device_get(&d->dev, 0), "cuDeviceGet");
    CU_CHECK(d, d->primary_ctx_retain(&d->ctx, d->dev), "cuDevicePrimaryCtxRetain");
    return 0;
}

/* Opens libcuda and sets up device 0 into d (a zeroed struct). */
static int open_driver(cuda_driver *d, char *err, size_t errsz) {
    const char *env = getenv("QKC_LIBCUDA");
    const char *path = env && *env ? env : "libcuda.so.1";
    d->lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!d->lib) {
        const char *why = dlerror();
        if (why)
            snprintf(err, errsz, "no CUDA driver (%s)", why);
        else
            snprintf(err, errsz, "no CUDA driver (cannot open %s)", path);
        return -1;
    }
    const char *missing = resolve(d);
    if (missing) {
        snprintf(err, errsz, "no CUDA driver (%s lacks %s)", path, missing);
        return -1;
    }
    return init_device(d, err, errsz);
}

/* Loads the driver into st once; a failed attempt is retried next time. */
static int driver_get(cuda_state *st, char *err, size_t errsz) {
    int rc = 0;
    pthread_mutex_lock(&st->lock);
    if (!st->drv.ctx) {
        cuda_driver d = {0};
        rc = open_driver(&d, err, errsz);
        if (rc == 0)
            st->drv = d;
        else if (d.lib)
            dlclose(d.lib);
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* Loads code's PTX once (context current); JIT errors come with the log. */
static int module_load(cuda_driver *d, cuda_code *code, char *err, size_t errsz) {
    char log[4096] = "";
    CUjit_option opt[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *val[] = {log, (void *)(uintptr_t)sizeof log};
    CUresult r = d->module_load(&code->module, code->ptx, 2, opt, val);
    if (r != 0) {
        code->module = NULL;
        cu_fail(d, r, "cuModuleLoadDataEx", err, errsz);
        size_t n = strlen(err);
        if (log[0] && n + 2 < errsz)
            snprintf(err + n, errsz - n, ": %s", log);
        return -1;
    }
    r = d->module_get_function(&code->fn, code->module, code->kname);
    if (r != 0) {
        d->module_unload(code->module);
        code->module = NULL;
        return cu_fail(d, r, "cuModuleGetFunction", err, errsz);
    }
    return 0;
}

static int module_get(cuda_state *st, cuda_code *code, char *err, size_t errsz) {
    pthread_mutex_lock(&st->lock);
    int rc = code->module ? 0 : module_load(&st->drv, code, err, errsz);
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* Device copies of the pointer arguments of one launch. */
typedef struct dev_args {
    int n;
    CUdeviceptr *ptr; /* 0 for i64 arguments and empty buffers */
    void **params;    /* cuLaunchKernel's kernelParams */
} dev_args;

static void free_args(const cuda_driver *d, dev_args *a) {
    for (int i = 0; i < a->n; i++)
        if (a->ptr[i])
            d->mem_free(a->ptr[i]);
    free(a->ptr);
    free(a->params);
}

/* Allocates and copies in every pointer argument. */
static int copy_in(const cuda_driver *d, const tir_func *f, void **args, const int64_t *bytes, dev_args *a,
                   char *err, size_t errsz) {
    for (int i = 0; i < f->nargs; i++) {
        a->params[i] = args[i];
        if (f->args[i].s != TS_PTR)
            continue;
        a->params[i] = &a->ptr[i];
        if (bytes[i] <= 0)
            continue;
        CU_CHECK(d, d->mem_alloc(&a->ptr[i], (size_t)bytes[i]), "cuMemAlloc");
        CU_CHECK(d, d->memcpy_htod(a->ptr[i], *(void **)args[i], (size_t)bytes[i]), "cuMemcpyHtoD");
    }
    return 0;
}

static int copy_out(const cuda_driver *d, const tir_func *f, void **args, const int64_t *bytes, dev_args *a,
                    char *err, size_t errsz) {
    for (int i = 0; i < f->nargs; i++)
        if (f->args[i].s == TS_PTR && !f->args[i].is_const && a->ptr[i])
            CU_CHECK(d, d->memcpy_dtoh(*(void **)args[i], a->ptr[i], (size_t)bytes[i]), "cuMemcpyDtoH");
    return 0;
}

/* Queues one launch over items work items on the default stream. */
static int enqueue(const cuda_driver *d, cuda_code *code, int64_t items, dev_args *a, char *err, size_t errsz) {
    int64_t blocks = (items + CUDA_BLOCK - 1) / CUDA_BLOCK;
    if (blocks > CUDA_MAX_BLOCKS)
        blocks = CUDA_MAX_BLOCKS;
    CU_CHECK(d, d->launch_kernel(code->fn, (unsigned)blocks, 1, 1, CUDA_BLOCK, 1, 1, 0, NULL, a->params, NULL),
             "cuLaunchKernel");
    return 0;
}

static int run(const cuda_driver *d, cuda_code *code, int64_t items, dev_args *a, char *err, size_t errsz) {
    if (enqueue(d, code, items, a, err, errsz))
        return -1;
    CU_CHECK(d, d->ctx_synchronize(), "cuCtxSynchronize");
    return 0;
}

static dev_args args_new(const tir_func *f) {
    return (dev_args){.n = f->nargs, .ptr = qk_xcalloc(f->nargs + 1, sizeof(CUdeviceptr)),
                      .params = qk_xcalloc(f->nargs + 1, sizeof(void *))};
}

/* Copy in, launch, copy out; the context is current. */
static int launch_current(cuda_state *st, const tir_func *f, cuda_code *code, void **args, const int64_t *bytes,
                          int64_t items, char *err, size_t errsz) {
    const cuda_driver *d = &st->drv;
    dev_args a = args_new(f);
    int rc = module_get(st, code, err, errsz);
    if (rc == 0)
        rc = copy_in(d, f, args, bytes, &a, err, errsz);
    if (rc == 0)
        rc = run(d, code, items, &a, err, errsz);
    if (rc == 0)
        rc = copy_out(d, f, args, bytes, &a, err, errsz);
    free_args(d, &a);
    return rc;
}

/* Pushes the primary context (loading the driver first). 0 or -1 + err. */
static int enter(cuda_state *st, char *err, size_t errsz) {
    if (driver_get(st, err, errsz))
        return -1;
    const cuda_driver *d = &st->drv;
    CU_CHECK(d, d->ctx_push(d->ctx), "cuCtxPushCurrent");
    return 0;
}

/* Pops the context; rc is the body's result, which a pop error only
 * replaces when the body succeeded. */
static int leave(cuda_state *st, int rc, char *err, size_t errsz) {
    const cuda_driver *d = &st->drv;
    CUcontext popped;
    CUresult r = d->ctx_pop(&popped);
    if (rc == 0 && r != 0)
        return cu_fail(d, r, "cuCtxPopCurrent", err, errsz);
    return rc;
}

/* Threads of a launch: end - begin from args, times 32 when a grid is
 * warp-level (TL_WARP: one warp per work item). */
static int64_t launch_items(const tir_func *f, void **args) {
    int64_t items = *(const int64_t *)args[f->arg_end] - *(const int64_t *)args[f->arg_begin];
    for (int g = 0; g < f->ngrids; g++)
        if (f->grids[g].warp)
            return items * 32;
    return items;
}

int cuda_driver_launch(cuda_state *st, const tir_func *f, cuda_code *code, void **args, const int64_t *arg_bytes,
                       char *err, size_t errsz) {
    if (driver_get(st, err, errsz))
        return -1;
    if (!code || !code->ptx) {
        snprintf(err, errsz, "launch of a kernel that the CUDA backend did not compile");
        return -1;
    }
    int64_t items = launch_items(f, args);
    if (items <= 0)
        return 0;
    if (enter(st, err, errsz))
        return -1;
    int rc = launch_current(st, f, code, args, arg_bytes, items, err, errsz);
    return leave(st, rc, err, errsz);
}

/* ---- timing on the device ---- */

/* A pair of events around queued work. */
typedef struct ev_pair {
    CUevent start, stop;
} ev_pair;

static int events_new(const cuda_driver *d, ev_pair *e, char *err, size_t errsz) {
    CU_CHECK(d, d->event_create(&e->start, 0), "cuEventCreate");
    CU_CHECK(d, d->event_create(&e->stop, 0), "cuEventCreate");
    return 0;
}

static void events_free(const cuda_driver *d, ev_pair *e) {
    if (e->start)
        d->event_destroy(e->start);
    if (e->stop)
        d->event_destroy(e->stop);
}

/* Seconds between the two events, after waiting for the second. */
static int events_elapsed(const cuda_driver *d, ev_pair *e, double *s, char *err, size_t errsz) {
    float ms = 0;
    CU_CHECK(d, d->event_synchronize(e->stop), "cuEventSynchronize");
    CU_CHECK(d, d->event_elapsed_time(&ms, e->start, e->stop), "cuEventElapsedTime");
    *s = ms / 1e3;
    return 0;
}

/* Warm-up over every set, then reps launches timed one by one, each on
 * the next set. */
static int time_reps(const cuda_driver *d, cuda_code *code, int64_t items, dev_args *sets, int copies, int reps,
                     double *seconds, char *err, size_t errsz) {
    for (int c = 0; c < copies; c++)
        if (enqueue(d, code, items, &sets[c], err, errsz))
            return -1;
    CU_CHECK(d, d->ctx_synchronize(), "cuCtxSynchronize");
    ev_pair ev = {0};
    int rc = events_new(d, &ev, err, errsz);
    for (int r = 0; rc == 0 && r < reps; r++) {
        CUresult x = d->event_record(ev.start, NULL);
        rc = x ? cu_fail(d, x, "cuEventRecord", err, errsz) : enqueue(d, code, items, &sets[r % copies], err, errsz);
        if (rc == 0 && (x = d->event_record(ev.stop, NULL)) != 0)
            rc = cu_fail(d, x, "cuEventRecord", err, errsz);
        if (rc == 0)
            rc = events_elapsed(d, &ev, &seconds[r], err, errsz);
    }
    events_free(d, &ev);
    return rc;
}

/* copies device sets of the arguments, timed reps, results of set 0
 * copied back; the context is current. */
static int timed_current(cuda_state *st, const tir_func *f, cuda_code *code, void **args, const int64_t *bytes,
                         int64_t items, int copies, int reps, double *seconds, char *err, size_t errsz) {
    const cuda_driver *d = &st->drv;
    dev_args *sets = qk_xcalloc((size_t)copies, sizeof *sets);
    int made = 0, rc = module_get(st, code, err, errsz);
    for (; rc == 0 && made < copies; made++) {
        sets[made] = args_new(f);
        rc = copy_in(d, f, args, bytes, &sets[made], err, errsz);
    }
    if (rc == 0)
        rc = time_reps(d, code, items, sets, copies, reps, seconds, err, errsz);
    if (rc == 0)
        rc = copy_out(d, f, args, bytes, &sets[0], err, errsz);
    for (int c = 0; c < made; c++)
        free_args(d, &sets[c]);
    free(sets);
    return rc;
}

int cuda_driver_launch_timed(cuda_state *st, const tir_func *f, cuda_code *code, void **args,
                             const int64_t *arg_bytes, int copies, int reps, double *seconds, char *err,
                             size_t errsz) {
    if (driver_get(st, err, errsz))
        return -1;
    if (!code || !code->ptx) {
        snprintf(err, errsz, "launch of a kernel that the CUDA backend did not compile");
        return -1;
    }
    if (copies < 1 || reps < 1) {
        snprintf(err, errsz, "timed launch: copies = %d and reps = %d must be at least 1", copies, reps);
        return -1;
    }
    int64_t items = launch_items(f, args);
    if (items <= 0) {
        snprintf(err, errsz, "timed launch of an empty grid (no work items)");
        return -1;
    }
    if (enter(st, err, errsz))
        return -1;
    int rc = timed_current(st, f, code, args, arg_bytes, items, copies, reps, seconds, err, errsz);
    return leave(st, rc, err, errsz);
}

/* Best seconds of reps copies src -> dst of n bytes (after one warm-up). */
static int time_copies(const cuda_driver *d, CUdeviceptr dst, CUdeviceptr src, size_t n, int reps, double *best,
                       char *err, size_t errsz) {
    CU_CHECK(d, d->memset_d8(src, 0x5a, n), "cuMemsetD8");
    CU_CHECK(d, d->memcpy_dtod(dst, src, n), "cuMemcpyDtoD");
    CU_CHECK(d, d->ctx_synchronize(), "cuCtxSynchronize");
    ev_pair ev = {0};
    int rc = events_new(d, &ev, err, errsz);
    *best = 0;
    for (int r = 0; rc == 0 && r < reps; r++) {
        double s = 0;
        CUresult x = d->event_record(ev.start, NULL);
        if (x == 0)
            x = d->memcpy_dtod(dst, src, n);
        if (x == 0)
            x = d->event_record(ev.stop, NULL);
        rc = x ? cu_fail(d, x, "cuMemcpyDtoD", err, errsz) : events_elapsed(d, &ev, &s, err, errsz);
        if (rc == 0 && s > 0 && (*best == 0 || s < *best))
            *best = s;
    }
    events_free(d, &ev);
    return rc;
}

static int copy_bw_current(const cuda_driver *d, int64_t bytes, int reps, double *bw, char *err, size_t errsz) {
    CUdeviceptr src = 0, dst = 0;
    double best = 0;
    CUresult r = d->mem_alloc(&src, (size_t)bytes);
    if (r == 0)
        r = d->mem_alloc(&dst, (size_t)bytes);
    int rc = r ? cu_fail(d, r, "cuMemAlloc", err, errsz)
               : time_copies(d, dst, src, (size_t)bytes, reps, &best, err, errsz);
    if (src)
        d->mem_free(src);
    if (dst)
        d->mem_free(dst);
    if (rc == 0 && best <= 0) {
        snprintf(err, errsz, "device copy of %lld bytes timed at 0 s", (long long)bytes);
        rc = -1;
    }
    *bw = rc == 0 ? 2.0 * (double)bytes / best : 0; /* every byte is read once and written once */
    return rc;
}

int cuda_driver_copy_bandwidth(cuda_state *st, int64_t bytes, int reps, double *bytes_per_s, char *err,
                               size_t errsz) {
    *bytes_per_s = 0;
    if (bytes < 1 || reps < 1) {
        snprintf(err, errsz, "copy bandwidth: bytes = %lld and reps = %d must be at least 1", (long long)bytes, reps);
        return -1;
    }
    if (enter(st, err, errsz))
        return -1;
    int rc = copy_bw_current(&st->drv, bytes, reps, bytes_per_s, err, errsz);
    return leave(st, rc, err, errsz);
}

/* ---- the device's description ---- */

/* One attribute into *v. */
static int attr(const cuda_driver *d, int which, int *v, char *err, size_t errsz) {
    CU_CHECK(d, d->device_get_attribute(v, which, d->dev), "cuDeviceGetAttribute");
    return 0;
}

/* Fills the GPU fields of t from device d (its compute capability too). */
static int read_geometry(const cuda_driver *d, qk_target *t, char *err, size_t errsz) {
    int major = 0, minor = 0, l2 = 0;
    int rc = attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, &major, err, errsz);
    rc = rc ? rc : attr(d, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, &minor, err, errsz);
    rc = rc ? rc : attr(d, CU_DEVICE_ATTRIBUTE_WARP_SIZE, &t->warp, err, errsz);
    rc = rc ? rc : attr(d, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, &t->sm_count, err, errsz);
    rc = rc ? rc : attr(d, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK, &t->smem_per_block, err, errsz);
    rc = rc ? rc : attr(d, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN, &t->smem_optin, err, errsz);
    rc = rc ? rc : attr(d, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR, &t->smem_per_sm, err, errsz);
    rc = rc ? rc : attr(d, CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR, &t->regs_per_sm, err, errsz);
    rc = rc ? rc : attr(d, CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK, &t->regs_per_block, err, errsz);
    rc = rc ? rc : attr(d, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, &l2, err, errsz);
    if (rc)
        return rc;
    t->sm = major * 10 + minor;
    t->l2 = l2;
    char name[sizeof t->cpu] = "";
    if (d->device_get_name(name, (int)sizeof name, d->dev) == 0) {
        name[sizeof name - 1] = 0;
        snprintf(t->cpu, sizeof t->cpu, "%s", name);
    }
    return 0;
}

int cuda_driver_describe(cuda_state *st, qk_target *t, char *err, size_t errsz) {
    if (driver_get(st, err, errsz))
        return -1;
    qk_target dev = *t;
    if (read_geometry(&st->drv, &dev, err, errsz))
        return -1;
    if (dev.sm != t->sm)
        return 0; /* code for another architecture: keep the preset */
    *t = dev;
    return 1;
}

void cuda_driver_release_code(cuda_state *st, cuda_code *code) {
    const cuda_driver *d = &st->drv;
    if (!code->module || !d->ctx)
        return;
    CUcontext popped;
    if (d->ctx_push(d->ctx) == 0) {
        d->module_unload(code->module);
        d->ctx_pop(&popped);
    }
    code->module = NULL;
}

void cuda_driver_unload(cuda_driver *drv) {
    if (drv->ctx)
        drv->primary_ctx_release(drv->dev);
    if (drv->lib)
        dlclose(drv->lib);
    memset(drv, 0, sizeof *drv);
}
