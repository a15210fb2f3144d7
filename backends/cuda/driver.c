/* driver.c — the CUDA driver API side of the backend: loads PTX into the
 * device's primary context and launches a kernel over host buffers (copy
 * in, launch, synchronize, copy out); for `qkc bench` and `qkc probe` it
 * also times launches on buffers kept on the device and device-to-device
 * copies with events, and reads the device's geometry into a qk_target.
 *
 * libcuda is opened with dlopen("libcuda.so.1") — never the link-time
 * stub libcuda.so — or $QKC_LIBCUDA when set (then only that), with
 * RTLD_NODELETE: it is never unloaded. Where it is missing or cuInit /
 * cuDeviceGetCount fail, every launch fails with "no CUDA driver (...)"
 * (no device: "no CUDA device ..."), which the runtime maps to
 * QKC_ERR_NO_DEVICE. Every CUresult is checked and reported with
 * cuGetErrorString's text. The primary context is retained at the first
 * launch, not for reading the device's attributes.
 *
 * Versioned symbols (_v2) are the ones cuda.h maps the plain names to. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_internal.h"

#define CUDA_TIME_BATCH 256 /* timed launches queued between two waits */

/* Formats "what failed: text (CUresult r)" for a failed driver call; a
 * sticky error says that the process must restart. */
static int cu_fail(const cuda_driver *drv, CUresult r, const char *what, char *err, size_t errsz) {
    const char *text = NULL;
    if (!drv->get_error_string || drv->get_error_string(r, &text) != 0 || !text)
        text = "unknown error";
    snprintf(err, errsz, "%s failed: %s (CUresult %d)%s", what, text, r,
             cuda_api_sticky(r) ? "; the CUDA context is corrupted by this error and every later CUDA call "
                                  "in this process fails: restart the process"
                                : "");
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

/* "no CUDA driver (what: CUDA_ERROR_X text (CUresult r))": a driver that
 * fails to initialize is no driver to run on. */
static int no_driver(const cuda_driver *d, CUresult r, const char *what, char *err, size_t errsz) {
    char why[512];
    cu_fail(d, r, what, why, sizeof why);
    snprintf(err, errsz, "no CUDA driver (%s)", why);
    return -1;
}

/* cuInit, first device, its compute capability, name, driver version. */
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
    if (r != 0)
        return no_driver(d, r, "cuInit", err, errsz);
    int count = 0, major = 0, minor = 0;
    if ((r = d->device_get_count(&count)) != 0)
        return no_driver(d, r, "cuDeviceGetCount", err, errsz);
    if (count == 0) {
        snprintf(err, errsz, "no CUDA device (the driver reports 0 devices)");
        return -1;
    }
    CU_CHECK(d, d->device_get(&d->dev, 0), "cuDeviceGet");
    CU_CHECK(d, d->device_get_attribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, d->dev),
             "cuDeviceGetAttribute");
    CU_CHECK(d, d->device_get_attribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, d->dev),
             "cuDeviceGetAttribute");
    d->cc = major * 10 + minor;
    if (d->driver_get_version(&d->version) != 0)
        d->version = 0;
    if (d->device_get_name(d->name, (int)sizeof d->name, d->dev) != 0)
        snprintf(d->name, sizeof d->name, "CUDA device 0");
    d->name[sizeof d->name - 1] = 0;
    return 0;
}

/* Opens libcuda and sets up device 0 into d (a zeroed struct). */
static int open_driver(cuda_driver *d, char *err, size_t errsz) {
    const char *env = getenv("QKC_LIBCUDA");
    const char *path = env && *env ? env : "libcuda.so.1";
    d->lib = dlopen(path, CUDA_API_DLOPEN_FLAGS);
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

/* Loads the driver into st once (no context); a failed attempt is retried
 * next time. The handle of a failed attempt is closed: with NODELETE that
 * only drops the reference. */
static int driver_get(cuda_state *st, char *err, size_t errsz) {
    int rc = 0;
    pthread_mutex_lock(&st->lock);
    if (!st->drv.lib) {
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

/* The driver, and the primary context retained once; refused after a
 * sticky error. */
static int context_get(cuda_state *st, char *err, size_t errsz) {
    if (driver_get(st, err, errsz))
        return -1;
    cuda_driver *d = &st->drv;
    int rc = 0;
    pthread_mutex_lock(&st->lock);
    if (st->broken) {
        const char *text = NULL;
        if (d->get_error_string(st->broken, &text) != 0 || !text)
            text = "unknown error";
        snprintf(err, errsz, "the CUDA context is unusable after an earlier error in this process (%s, CUresult %d): "
                 "restart the process", text, st->broken);
        rc = -1;
    } else if (!d->ctx) {
        CUresult r = d->primary_ctx_retain(&d->ctx, d->dev);
        if (r != 0) {
            d->ctx = NULL;
            rc = cu_fail(d, r, "cuDevicePrimaryCtxRetain", err, errsz);
        }
    }
    pthread_mutex_unlock(&st->lock);
    return rc;
}

/* After a failure: if the context now reports a sticky error, every later
 * launch is refused (its modules are dead with it). */
static void note_sticky(cuda_state *st) {
    CUresult r = st->drv.ctx_synchronize();
    if (!cuda_api_sticky(r))
        return;
    pthread_mutex_lock(&st->lock);
    st->broken = r;
    pthread_mutex_unlock(&st->lock);
}

/* The device must be at least the target's architecture: PTX for sm_90
 * does not load on an sm_80 device. */
static int check_arch(const cuda_state *st, char *err, size_t errsz) {
    const cuda_driver *d = &st->drv;
    if (st->target.sm <= 0 || d->cc >= st->target.sm)
        return 0;
    snprintf(err, errsz, "code for sm_%d cannot run on this machine: its CUDA device (%s) is sm_%d", st->target.sm,
             d->name, d->cc);
    return -1;
}

/* Timing and probing need the target's own device: the figures are
 * stored and reported under the target's fingerprint. */
static int check_same_arch(const cuda_state *st, const char *what, char *err, size_t errsz) {
    const cuda_driver *d = &st->drv;
    if (d->cc == st->target.sm)
        return 0;
    snprintf(err, errsz, "%s of target sm_%d on a device of another architecture: the CUDA device (%s) is sm_%d; "
             "use --target sm_%d (a context for that target)", what, st->target.sm, d->name, d->cc, d->cc);
    return -1;
}

/* The driver's ".version X needs a newer driver" text for a PTX it
 * rejected with CUDA_ERROR_UNSUPPORTED_PTX_VERSION. */
static void ptx_too_new(const cuda_driver *d, const char *ptx, char *err, size_t errsz) {
    char ver[32], drv[32] = "an unknown CUDA version";
    cuda_api_ptx_version(ptx, ver, sizeof ver);
    if (d->version > 0)
        cuda_api_version_text(d->version, drv, sizeof drv);
    snprintf(err, errsz, "PTX .version %s cannot run on this machine: it needs a newer driver; this driver supports "
             "%s (cuModuleLoadDataEx: CUDA_ERROR_UNSUPPORTED_PTX_VERSION). Update the driver, or point QKC_NVRTC "
             "at the NVRTC of a CUDA release the driver supports", ver, drv);
}

/* Loads code's PTX once (context current); JIT errors come with the log. */
static int module_load(cuda_driver *d, cuda_code *code, char *err, size_t errsz) {
    char log[4096] = "";
    CUjit_option opt[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *val[] = {log, (void *)(uintptr_t)sizeof log};
    CUresult r = d->module_load(&code->module, code->ptx, 2, opt, val);
    if (r == CUDA_ERROR_UNSUPPORTED_PTX_VERSION) {
        code->module = NULL;
        ptx_too_new(d, code->ptx, err, errsz);
        return -1;
    }
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

/* Is argument i one of f's scratch buffers? */
static int is_scratch(const tir_func *f, int i) {
    for (int j = 0; j < f->nscratch; j++)
        if (f->scratch[j].arg == i)
            return 1;
    return 0;
}

/* An earlier argument with the same host buffer and at least as many
 * bytes, whose device copy argument i shares (aliasing host pointers get
 * one device buffer, as they are one on the host); -1 if none. */
static int alias_of(const tir_func *f, void **args, const int64_t *bytes, const dev_args *a, int i) {
    for (int j = 0; j < i; j++)
        if (f->args[j].s == TS_PTR && a->ptr[j] && !is_scratch(f, j) && bytes[j] >= bytes[i] &&
            *(void **)args[j] == *(void **)args[i])
            return j;
    return -1;
}

/* Allocates every pointer argument and copies in all but scratch buffers,
 * which are zeroed on the device (as the host's are calloc'd). */
static int copy_in(const cuda_driver *d, const tir_func *f, void **args, const int64_t *bytes, dev_args *a,
                   char *err, size_t errsz) {
    for (int i = 0; i < f->nargs; i++) {
        a->params[i] = args[i];
        if (f->args[i].s != TS_PTR)
            continue;
        a->params[i] = &a->ptr[i];
        if (bytes[i] <= 0)
            continue;
        int j = is_scratch(f, i) ? -1 : alias_of(f, args, bytes, a, i);
        if (j >= 0) { /* a->ptr[i] stays 0: nothing of its own to free */
            a->params[i] = &a->ptr[j];
            continue;
        }
        CU_CHECK(d, d->mem_alloc(&a->ptr[i], (size_t)bytes[i]), "cuMemAlloc");
        if (is_scratch(f, i))
            CU_CHECK(d, d->memset_d8(a->ptr[i], 0, (size_t)bytes[i]), "cuMemsetD8");
        else
            CU_CHECK(d, d->memcpy_htod(a->ptr[i], *(void **)args[i], (size_t)bytes[i]), "cuMemcpyHtoD");
    }
    return 0;
}

/* Copies back every non-const pointer argument but scratch, from its own
 * device buffer or the one it shares. */
static int copy_out(const cuda_driver *d, const tir_func *f, void **args, const int64_t *bytes, dev_args *a,
                    char *err, size_t errsz) {
    for (int i = 0; i < f->nargs; i++) {
        if (f->args[i].s != TS_PTR || f->args[i].is_const || bytes[i] <= 0 || is_scratch(f, i))
            continue;
        int j = a->ptr[i] ? i : alias_of(f, args, bytes, a, i);
        if (j >= 0)
            CU_CHECK(d, d->memcpy_dtoh(*(void **)args[i], a->ptr[j], (size_t)bytes[i]), "cuMemcpyDtoH");
    }
    return 0;
}

/* Queues one launch over items work items on stream s. */
static int enqueue(const cuda_driver *d, cuda_code *code, int64_t items, dev_args *a, CUstream s, char *err,
                   size_t errsz) {
    int64_t blocks = (items + CUDA_BLOCK - 1) / CUDA_BLOCK;
    if (blocks > CUDA_MAX_BLOCKS)
        blocks = CUDA_MAX_BLOCKS;
    CU_CHECK(d, d->launch_kernel(code->fn, (unsigned)blocks, 1, 1, CUDA_BLOCK, 1, 1, 0, s, a->params, NULL),
             "cuLaunchKernel");
    return 0;
}

static dev_args args_new(const tir_func *f) {
    return (dev_args){.n = f->nargs, .ptr = qk_xcalloc(f->nargs + 1, sizeof(CUdeviceptr)),
                      .params = qk_xcalloc(f->nargs + 1, sizeof(void *))};
}

/* Copy in, launch, copy out; the context is current. */
/* 1 if a grid of phase p (every phase: p < 0) is warp-level (TL_WARP:
 * one warp of 32 threads per work item). */
static int phase_warp(const tir_func *f, int p) {
    for (int g = 0; g < f->ngrids; g++)
        if (f->grids[g].warp && (p < 0 || f->grids[g].phase == p))
            return 1;
    return 0;
}

/* Copy in, one launch per phase (begin and end set per launch, in order
 * on the default stream), one wait, copy out; the context is current.
 * nr ranges [lo[r], hi[r]) of work items; warp[r]: 32 threads per item. */
static int launch_current(cuda_state *st, const tir_func *f, cuda_code *code, void **args, const int64_t *bytes,
                          int nr, const int64_t *lo, const int64_t *hi, const int *warp, char *err, size_t errsz) {
    const cuda_driver *d = &st->drv;
    dev_args a = args_new(f);
    int64_t range[2];
    int rc = module_get(st, code, err, errsz);
    if (rc == 0)
        rc = copy_in(d, f, args, bytes, &a, err, errsz);
    a.params[f->arg_begin] = &range[0];
    a.params[f->arg_end] = &range[1];
    for (int r = 0; r < nr && rc == 0; r++) {
        if (hi[r] <= lo[r])
            continue;
        range[0] = lo[r], range[1] = hi[r]; /* cuLaunchKernel copies the parameters it is given */
        rc = enqueue(d, code, (hi[r] - lo[r]) * (warp[r] ? 32 : 1), &a, NULL, err, errsz);
    }
    CUresult r = rc == 0 ? d->ctx_synchronize() : 0;
    if (r)
        rc = cu_fail(d, r, "cuCtxSynchronize", err, errsz);
    if (rc == 0)
        rc = copy_out(d, f, args, bytes, &a, err, errsz);
    free_args(d, &a);
    return rc;
}

/* Pushes the primary context (loading the driver and retaining the
 * context first). 0 or -1 + err. */
static int enter(cuda_state *st, char *err, size_t errsz) {
    if (context_get(st, err, errsz))
        return -1;
    const cuda_driver *d = &st->drv;
    CU_CHECK(d, d->ctx_push(d->ctx), "cuCtxPushCurrent");
    return 0;
}

/* Pops the context; rc is the body's result, which a pop error only
 * replaces when the body succeeded. A failed body may have left a sticky
 * error (note_sticky). */
static int leave(cuda_state *st, int rc, char *err, size_t errsz) {
    const cuda_driver *d = &st->drv;
    if (rc != 0)
        note_sticky(st);
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
    return phase_warp(f, -1) ? items * 32 : items;
}

int cuda_driver_launch(cuda_state *st, const tir_func *f, cuda_code *code, void **args, const int64_t *arg_bytes,
                       const int64_t *phase_ends, char *err, size_t errsz) {
    if (driver_get(st, err, errsz))
        return -1;
    if (!code || !code->ptx) {
        snprintf(err, errsz, "launch of a kernel that the CUDA backend did not compile");
        return -1;
    }
    if (check_arch(st, err, errsz))
        return -1;
    int64_t begin = *(const int64_t *)args[f->arg_begin], end = *(const int64_t *)args[f->arg_end];
    if (end <= begin)
        return 0;
    int nr = phase_ends && f->nphases > 1 ? f->nphases : 1;
    int64_t lo[64], hi[64];
    int warp[64];
    if (nr > 64) {
        snprintf(err, errsz, "a kernel of %d phases: the GPU launch takes 64 at most", nr);
        return -1;
    }
    for (int r = 0; r < nr; r++) {
        lo[r] = nr == 1 ? begin : r ? phase_ends[r - 1] : begin;
        hi[r] = nr == 1 ? end : phase_ends[r];
        lo[r] = lo[r] < begin ? begin : lo[r];
        hi[r] = hi[r] > end ? end : hi[r];
        warp[r] = phase_warp(f, nr == 1 ? -1 : r);
    }
    if (enter(st, err, errsz))
        return -1;
    int rc = launch_current(st, f, code, args, arg_bytes, nr, lo, hi, warp, err, errsz);
    return leave(st, rc, err, errsz);
}

/* ---- timing on the device ---- */

/* Queues item i of a timed series on stream s (i = -1 .. reps - 1; an
 * untimed filler may be item first - 1). */
typedef int (*queue_fn)(const cuda_driver *d, void *arg, int i, CUstream s, char *err, size_t errsz);

/* One batch of a timed series: items [first, first + n) queued back to
 * back after an untimed one (so the device is busy while the host queues
 * the rest), an event at every boundary, one wait at the end; seconds[i]
 * is the time between the events around item first + i. */
static int time_batch(const cuda_driver *d, CUstream s, CUevent *ev, int first, int n, queue_fn fn, void *arg,
                      double *seconds, char *err, size_t errsz) {
    if (fn(d, arg, first - 1, s, err, errsz))
        return -1;
    CU_CHECK(d, d->event_record(ev[0], s), "cuEventRecord");
    for (int i = 0; i < n; i++) {
        if (fn(d, arg, first + i, s, err, errsz))
            return -1;
        CU_CHECK(d, d->event_record(ev[i + 1], s), "cuEventRecord");
    }
    CU_CHECK(d, d->event_synchronize(ev[n]), "cuEventSynchronize");
    for (int i = 0; i < n; i++) {
        float ms = 0;
        CU_CHECK(d, d->event_elapsed_time(&ms, ev[i], ev[i + 1]), "cuEventElapsedTime");
        seconds[i] = ms / 1e3;
    }
    return 0;
}

/* reps items of fn timed on a private non-blocking stream (other threads'
 * work on the legacy stream cannot land inside an interval), in batches
 * of CUDA_TIME_BATCH. */
static int time_series(const cuda_driver *d, int reps, queue_fn fn, void *arg, double *seconds, char *err,
                       size_t errsz) {
    CUevent ev[CUDA_TIME_BATCH + 1] = {0};
    CUstream s = NULL;
    int nev = (reps < CUDA_TIME_BATCH ? reps : CUDA_TIME_BATCH) + 1;
    CUresult r = d->stream_create(&s, CU_STREAM_NON_BLOCKING);
    int rc = r ? cu_fail(d, r, "cuStreamCreate", err, errsz) : 0;
    for (int i = 0; rc == 0 && i < nev; i++)
        if ((r = d->event_create(&ev[i], 0)) != 0)
            rc = cu_fail(d, r, "cuEventCreate", err, errsz);
    for (int done = 0; rc == 0 && done < reps; done += CUDA_TIME_BATCH) {
        int n = reps - done < CUDA_TIME_BATCH ? reps - done : CUDA_TIME_BATCH;
        rc = time_batch(d, s, ev, done, n, fn, arg, seconds + done, err, errsz);
    }
    for (int i = 0; i < nev; i++)
        if (ev[i])
            d->event_destroy(ev[i]);
    if (s) {
        if (rc != 0)
            d->ctx_synchronize(); /* nothing queued may outlive the buffers */
        d->stream_destroy(s);
    }
    return rc;
}

/* A timed launch series: launch i runs on device set i % copies. */
typedef struct launch_series {
    cuda_code *code;
    int64_t items;
    dev_args *sets;
    int copies;
} launch_series;

static int queue_launch(const cuda_driver *d, void *arg, int i, CUstream s, char *err, size_t errsz) {
    launch_series *ls = arg;
    int set = (i % ls->copies + ls->copies) % ls->copies; /* the filler -1: the last set */
    return enqueue(d, ls->code, ls->items, &ls->sets[set], s, err, errsz);
}

/* Warm-up over every set, then reps launches timed one by one, each on
 * the next set. */
static int time_reps(const cuda_driver *d, cuda_code *code, int64_t items, dev_args *sets, int copies, int reps,
                     double *seconds, char *err, size_t errsz) {
    for (int c = 0; c < copies; c++)
        if (enqueue(d, code, items, &sets[c], NULL, err, errsz))
            return -1;
    CU_CHECK(d, d->ctx_synchronize(), "cuCtxSynchronize");
    launch_series ls = {code, items, sets, copies};
    return time_series(d, reps, queue_launch, &ls, seconds, err, errsz);
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
    if (check_same_arch(st, "timing", err, errsz))
        return -1;
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

/* A timed copy series: n bytes src -> dst each time. */
typedef struct copy_series {
    CUdeviceptr dst, src;
    size_t n;
} copy_series;

static int queue_copy(const cuda_driver *d, void *arg, int i, CUstream s, char *err, size_t errsz) {
    (void)i;
    copy_series *cs = arg;
    CU_CHECK(d, d->memcpy_dtod_async(cs->dst, cs->src, cs->n, s), "cuMemcpyDtoDAsync");
    return 0;
}

/* Best seconds of reps copies src -> dst of n bytes (after one warm-up). */
static int time_copies(const cuda_driver *d, CUdeviceptr dst, CUdeviceptr src, size_t n, int reps, double *best,
                       char *err, size_t errsz) {
    CU_CHECK(d, d->memset_d8(src, 0x5a, n), "cuMemsetD8");
    CU_CHECK(d, d->memcpy_dtod(dst, src, n), "cuMemcpyDtoD");
    CU_CHECK(d, d->ctx_synchronize(), "cuCtxSynchronize");
    double *s = qk_xcalloc((size_t)reps, sizeof *s);
    copy_series cs = {dst, src, n};
    int rc = time_series(d, reps, queue_copy, &cs, s, err, errsz);
    *best = 0;
    for (int r = 0; rc == 0 && r < reps; r++)
        if (s[r] > 0 && (*best == 0 || s[r] < *best))
            *best = s[r];
    free(s);
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
    if (driver_get(st, err, errsz) || check_same_arch(st, "probe", err, errsz) || enter(st, err, errsz))
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
    if (dev.sm != t->sm) { /* code for another architecture: keep the preset */
        snprintf(err, errsz, "the CUDA device (%s) is sm_%d, not sm_%d", st->drv.name, dev.sm, t->sm);
        return 0;
    }
    *t = dev;
    return 1;
}

void cuda_driver_release_code(cuda_state *st, cuda_code *code) {
    const cuda_driver *d = &st->drv;
    pthread_mutex_lock(&st->lock);
    int broken = st->broken != 0;
    pthread_mutex_unlock(&st->lock);
    if (!code->module || !d->ctx || broken) { /* a broken context's modules are gone with it */
        code->module = NULL;
        return;
    }
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
        dlclose(drv->lib); /* drops the reference; NODELETE keeps libcuda mapped */
    memset(drv, 0, sizeof *drv);
}
