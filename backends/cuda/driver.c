/* driver.c — the CUDA driver API side of the backend: loads PTX into the
 * device's primary context and launches a kernel over host buffers (copy
 * in, launch, synchronize, copy out).
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

static int run(const cuda_driver *d, cuda_code *code, int64_t items, dev_args *a, char *err, size_t errsz) {
    int64_t blocks = (items + CUDA_BLOCK - 1) / CUDA_BLOCK;
    if (blocks > CUDA_MAX_BLOCKS)
        blocks = CUDA_MAX_BLOCKS;
    CU_CHECK(d, d->launch_kernel(code->fn, (unsigned)blocks, 1, 1, CUDA_BLOCK, 1, 1, 0, NULL, a->params, NULL),
             "cuLaunchKernel");
    CU_CHECK(d, d->ctx_synchronize(), "cuCtxSynchronize");
    return 0;
}

/* Copy in, launch, copy out; the context is current. */
static int launch_current(cuda_state *st, const tir_func *f, cuda_code *code, void **args, const int64_t *bytes,
                          int64_t items, char *err, size_t errsz) {
    const cuda_driver *d = &st->drv;
    dev_args a = {.n = f->nargs, .ptr = qk_xcalloc(f->nargs + 1, sizeof(CUdeviceptr)),
                  .params = qk_xcalloc(f->nargs + 1, sizeof(void *))};
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

int cuda_driver_launch(cuda_state *st, const tir_func *f, cuda_code *code, void **args, const int64_t *arg_bytes,
                       char *err, size_t errsz) {
    if (driver_get(st, err, errsz))
        return -1;
    if (!code || !code->ptx) {
        snprintf(err, errsz, "launch of a kernel that the CUDA backend did not compile");
        return -1;
    }
    int64_t items = *(const int64_t *)args[f->arg_end] - *(const int64_t *)args[f->arg_begin];
    if (items <= 0)
        return 0;
    for (int g = 0; g < f->ngrids; g++)
        if (f->grids[g].warp) { /* TL_WARP grids take a warp per item: launch 32 threads per item */
            items *= 32;
            break;
        }
    const cuda_driver *d = &st->drv;
    CU_CHECK(d, d->ctx_push(d->ctx), "cuCtxPushCurrent");
    int rc = launch_current(st, f, code, args, arg_bytes, items, err, errsz);
    CUcontext popped;
    CUresult r = d->ctx_pop(&popped);
    if (rc == 0 && r != 0)
        return cu_fail(d, r, "cuCtxPopCurrent", err, errsz);
    return rc;
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
