/* rt_cuda.c — GPU versions of kernels built ahead of time: the CUDA
 * driver API opened with dlopen, the PTX of each version loaded on its
 * first launch, and launches over host buffers (copy in, launch each
 * phase, synchronize, copy out), as the JIT's backends/cuda/driver.c does.
 *
 * libcuda is never linked: dlopen("libcuda.so.1"), or $QKC_LIBCUDA when
 * set (as the JIT; tests point it at a stand-in driver), with
 * RTLD_NODELETE (never unloaded once cuInit ran). Where it is missing, or
 * cuInit / cuDeviceGetCount fail, every launch fails with
 * QKC_RT_ERR_NO_DEVICE and "no CUDA driver (...)"; a device older than
 * the version's PTX, or a driver older than its PTX ISA, with
 * QKC_RT_ERR_NO_DEVICE and "... cannot run on this machine". The few
 * driver types and functions used are declared in
 * backends/cuda/cuda_api.h (shared with the JIT backend), so no CUDA
 * header is needed to build.
 *
 * A launch with gpu NULL opens the driver, retains the primary context,
 * loads the PTX and releases all of it again, on every call (the library
 * keeps no process-wide state): keep a qkc_rt_gpu (qkc_rt_gpu_new) for
 * anything but a single launch. After a sticky error (an illegal address
 * in a kernel: cuda_api_sticky) the context is unusable: the qkc_rt_gpu
 * refuses every later launch, and the process must restart to use CUDA.
 *
 * Kernel parameters are the entry's argument list (device pointers for
 * tensors and scratch, int64 for dims and strides) followed by begin and
 * end (int64): the generated kernels stride over work items [begin, end)
 * by the whole grid, so a phase is one launch of ceil(items / block)
 * blocks (capped as the JIT caps them), and launches on one stream run in
 * order, which sequences the phases.
 *
 * Scratch buffers (is_ptr 2) live on the device only: zeroed there, never
 * copied.
 *
 * Thread safety: a qkc_rt_gpu may be shared; its module list and broken
 * flag are guarded by a mutex, the driver itself is thread-safe. */
#include "runtime/rt/rt_internal.h"
#include "backends/cuda/cuda_api.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QKRT_CUDA_BLOCK 128               /* threads per block when the version names none */
#define QKRT_CUDA_MAX_BLOCKS (65535 * 32) /* the JIT's grid cap; kernels are grid-stride */

typedef struct gpu_module {
    const qkc_aot_variant *v;
    CUmodule mod;
    CUfunction fn;
} gpu_module;

struct qkc_rt_gpu {
    void *lib;
    CUdevice dev;
    int cc;      /* compute capability, 10 * major + minor */
    int version; /* cuDriverGetVersion */
    CUcontext ctx;
    CUDA_API_FIELDS
    pthread_mutex_t lock; /* guards mods, broken */
    CUresult broken;      /* a sticky error seen: refuse every launch */
    int nmods, capmods;
    gpu_module *mods;
};

/* ---- the driver ---- */

/* "what failed: text (CUresult r)"; the status for r. */
static int cu_fail(const qkc_rt_gpu *g, CUresult r, const char *what, char *err, size_t errsz)
{
    const char *text = NULL;
    if (!g->get_error_string || g->get_error_string(r, &text) != 0 || !text)
        text = "unknown error";
    qkrt_fail(err, errsz, 0, "%s failed: %s (CUresult %d)%s", what, text, r,
              cuda_api_sticky(r) ? "; the CUDA context is corrupted by this error and every later CUDA call in this "
                                   "process fails: restart the process"
                                 : "");
    return r == CUDA_ERROR_OUT_OF_MEMORY ? QKC_RT_ERR_NOMEM : QKC_RT_ERR_TARGET;
}

#define CU_CHECK(g, call, what)                          \
    do {                                                 \
        CUresult r_ = (call);                            \
        if (r_ != 0)                                     \
            return cu_fail((g), r_, (what), err, errsz); \
    } while (0)

/* Resolves every function; the name of a missing one, else NULL. */
static const char *resolve(qkc_rt_gpu *g)
{
    CUDA_API_RESOLVE(g->lib, g)
    return NULL;
}

/* "no CUDA driver (what failed: ...)": a driver that fails to initialize
 * is no driver to run on. */
static int no_driver(const qkc_rt_gpu *g, CUresult r, const char *what, char *err, size_t errsz)
{
    char why[512];
    cu_fail(g, r, what, why, sizeof why);
    return qkrt_fail(err, errsz, QKC_RT_ERR_NO_DEVICE, "no CUDA driver (%s)", why);
}

/* dlopen, the functions, cuInit, at least one device, device 0's compute
 * capability. 0, or a status (QKC_RT_ERR_NO_DEVICE) with err; g->lib is
 * left for the caller. */
static int open_driver(qkc_rt_gpu *g, char *err, size_t errsz)
{
    const char *env = getenv("QKC_LIBCUDA");
    const char *path = env && *env ? env : "libcuda.so.1";
    g->lib = dlopen(path, CUDA_API_DLOPEN_FLAGS);
    if (!g->lib) {
        const char *why = dlerror();
        return qkrt_fail(err, errsz, QKC_RT_ERR_NO_DEVICE, "no CUDA driver (%s)", why ? why : path);
    }
    const char *missing = resolve(g);
    if (missing)
        return qkrt_fail(err, errsz, QKC_RT_ERR_NO_DEVICE, "no CUDA driver (%s lacks %s)", path, missing);
    CUresult r = g->init(0);
    if (r == CUDA_ERROR_STUB_LIBRARY)
        return qkrt_fail(err, errsz, QKC_RT_ERR_NO_DEVICE,
                         "no CUDA driver: the loaded libcuda is the toolkit's stub (cuInit returned 34)");
    if (r == CUDA_ERROR_NO_DEVICE)
        return qkrt_fail(err, errsz, QKC_RT_ERR_NO_DEVICE, "no CUDA device (cuInit: CUDA_ERROR_NO_DEVICE)");
    if (r != 0)
        return no_driver(g, r, "cuInit", err, errsz);
    int count = 0, major = 0, minor = 0;
    if ((r = g->device_get_count(&count)) != 0)
        return no_driver(g, r, "cuDeviceGetCount", err, errsz);
    if (count < 1)
        return qkrt_fail(err, errsz, QKC_RT_ERR_NO_DEVICE, "no CUDA device (the driver reports 0 devices)");
    if ((r = g->device_get(&g->dev, 0)) != 0)
        return cu_fail(g, r, "cuDeviceGet", err, errsz);
    if ((r = g->device_get_attribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, g->dev)) != 0 ||
        (r = g->device_get_attribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, g->dev)) != 0)
        return cu_fail(g, r, "cuDeviceGetAttribute", err, errsz);
    g->cc = major * 10 + minor;
    if (g->driver_get_version(&g->version) != 0)
        g->version = 0;
    return QKC_RT_OK;
}

qkc_rt_gpu *qkc_rt_gpu_new(char *err, size_t errsz)
{
    qkc_rt_gpu *g = calloc(1, sizeof *g);
    if (!g) {
        qkrt_fail(err, errsz, 0, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&g->lock, NULL);
    int st = open_driver(g, err, errsz);
    CUresult r = 0;
    if (st == QKC_RT_OK && (r = g->primary_ctx_retain(&g->ctx, g->dev)) != 0) {
        g->ctx = NULL;
        st = cu_fail(g, r, "cuDevicePrimaryCtxRetain", err, errsz);
    }
    if (st != QKC_RT_OK) {
        qkc_rt_gpu_free(g);
        return NULL;
    }
    return g;
}

void qkc_rt_gpu_free(qkc_rt_gpu *g)
{
    if (!g)
        return;
    CUcontext popped;
    if (g->ctx && g->nmods && !g->broken && g->ctx_push(g->ctx) == 0) {
        for (int i = 0; i < g->nmods; i++)
            g->module_unload(g->mods[i].mod);
        g->ctx_pop(&popped);
    }
    if (g->ctx)
        g->primary_ctx_release(g->dev);
    if (g->lib)
        dlclose(g->lib); /* drops the reference; NODELETE keeps libcuda mapped */
    pthread_mutex_destroy(&g->lock);
    free(g->mods);
    free(g);
}

/* Probed once per process (a write-once cache): is there a driver with a
 * device, and of which compute capability? Only cuInit and attribute
 * queries; no context is made. */
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int probe_present, probe_cc;
static char probe_why[512];

static void probe(void)
{
    qkc_rt_gpu g;
    memset(&g, 0, sizeof g);
    probe_present = open_driver(&g, probe_why, sizeof probe_why) == QKC_RT_OK;
    probe_cc = probe_present ? g.cc : 0;
    if (g.lib)
        dlclose(g.lib);
}

int qkrt_cuda_present(char *why, size_t whysz)
{
    pthread_once(&probe_once, probe);
    if (!probe_present && why && whysz)
        snprintf(why, whysz, "%s", probe_why);
    return probe_present;
}

int qkrt_cuda_runs(const qkc_aot_variant *v, char *why, size_t whysz)
{
    if (!qkrt_cuda_present(why, whysz))
        return 0;
    int sm = v->gpu_code ? cuda_api_ptx_sm(v->gpu_code) : 0;
    if (sm <= probe_cc)
        return 1;
    if (why && whysz)
        snprintf(why, whysz, "the CUDA device is sm_%d, older than %s's sm_%d", probe_cc, v->isa ? v->isa : "?", sm);
    return 0;
}

/* ---- modules ---- */

/* Loads v's PTX (context current); JIT errors come with the driver's log. */
static int module_load(qkc_rt_gpu *g, const qkc_aot_variant *v, gpu_module *m, char *err, size_t errsz)
{
    char log[4096] = "";
    CUjit_option opt[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *val[] = {log, (void *)(uintptr_t)sizeof log};
    CUresult r = g->module_load(&m->mod, v->gpu_code, 2, opt, val);
    if (r == CUDA_ERROR_UNSUPPORTED_PTX_VERSION) {
        char ver[32], drv[32] = "an unknown CUDA version";
        cuda_api_ptx_version(v->gpu_code, ver, sizeof ver);
        if (g->version > 0)
            cuda_api_version_text(g->version, drv, sizeof drv);
        return qkrt_fail(err, errsz, QKC_RT_ERR_NO_DEVICE,
                         "PTX .version %s cannot run on this machine: it needs a newer driver; this driver supports %s "
                         "(cuModuleLoadDataEx: CUDA_ERROR_UNSUPPORTED_PTX_VERSION). Update the driver, or build the "
                         "kernels with the NVRTC of a CUDA release the driver supports",
                         ver, drv);
    }
    if (r != 0) {
        int st = cu_fail(g, r, "cuModuleLoadDataEx", err, errsz);
        size_t n = err ? strlen(err) : 0;
        if (log[0] && n + 2 < errsz)
            snprintf(err + n, errsz - n, ": %s", log);
        return st;
    }
    r = g->module_get_function(&m->fn, m->mod, v->gpu_symbol);
    if (r != 0) {
        g->module_unload(m->mod);
        return cu_fail(g, r, "cuModuleGetFunction", err, errsz);
    }
    m->v = v;
    return QKC_RT_OK;
}

/* The kernel function of v, loading its module on first use. */
static int module_get(qkc_rt_gpu *g, const qkc_aot_variant *v, CUfunction *fn, char *err, size_t errsz)
{
    int st = QKC_RT_OK;
    pthread_mutex_lock(&g->lock);
    int i = 0;
    while (i < g->nmods && g->mods[i].v != v)
        i++;
    if (i == g->nmods && g->nmods == g->capmods) {
        int cap = g->capmods ? 2 * g->capmods : 4;
        gpu_module *m = realloc(g->mods, (size_t)cap * sizeof *m);
        if (m) {
            g->mods = m;
            g->capmods = cap;
        } else
            st = qkrt_fail(err, errsz, QKC_RT_ERR_NOMEM, "out of memory");
    }
    if (st == QKC_RT_OK && i == g->nmods) {
        st = module_load(g, v, &g->mods[i], err, errsz);
        g->nmods += st == QKC_RT_OK;
    }
    if (st == QKC_RT_OK)
        *fn = g->mods[i].fn;
    pthread_mutex_unlock(&g->lock);
    return st;
}

/* ---- one launch ---- */

typedef struct dev_args {
    CUdeviceptr *ptr; /* 0 for integers and empty buffers */
    void **params;    /* cuLaunchKernel's kernelParams: nargs + begin, end */
} dev_args;

/* An earlier tensor with the same host buffer and at least as many bytes,
 * whose device copy argument j shares (aliasing host pointers get one
 * device buffer); -1 if none. */
static int alias_of(const qkrt_gpu_call *c, const dev_args *a, int j)
{
    for (int i = 0; i < j; i++)
        if (c->is_ptr[i] == 1 && a->ptr[i] && c->bytes[i] >= c->bytes[j] && c->argv[i].p == c->argv[j].p)
            return i;
    return -1;
}

static int copy_in(qkc_rt_gpu *g, const qkrt_gpu_call *c, dev_args *a, char *err, size_t errsz)
{
    for (int j = 0; j < c->nargs; j++) {
        a->params[j] = (void *)&c->argv[j].i;
        if (!c->is_ptr[j])
            continue;
        a->params[j] = &a->ptr[j];
        if (c->bytes[j] <= 0)
            continue;
        int i = c->is_ptr[j] == 1 ? alias_of(c, a, j) : -1;
        if (i >= 0) { /* a->ptr[j] stays 0: nothing of its own to free */
            a->params[j] = &a->ptr[i];
            continue;
        }
        CU_CHECK(g, g->mem_alloc(&a->ptr[j], (size_t)c->bytes[j]), "cuMemAlloc");
        if (c->is_ptr[j] == 2) /* scratch: device-only, zeroed as the host's is */
            CU_CHECK(g, g->memset_d8(a->ptr[j], 0, (size_t)c->bytes[j]), "cuMemsetD8");
        else
            CU_CHECK(g, g->memcpy_htod(a->ptr[j], c->argv[j].p, (size_t)c->bytes[j]), "cuMemcpyHtoD");
    }
    return QKC_RT_OK;
}

static int copy_out(qkc_rt_gpu *g, const qkrt_gpu_call *c, dev_args *a, char *err, size_t errsz)
{
    for (int j = 0; j < c->nargs; j++) {
        if (!c->is_out[j] || c->is_ptr[j] != 1 || c->bytes[j] <= 0)
            continue;
        int i = a->ptr[j] ? j : alias_of(c, a, j);
        if (i >= 0)
            CU_CHECK(g, g->memcpy_dtoh(c->argv[j].p, a->ptr[i], (size_t)c->bytes[j]), "cuMemcpyDtoH");
    }
    return QKC_RT_OK;
}

/* One launch per non-empty phase, in order on the default stream. */
static int run_phases(qkc_rt_gpu *g, const qkrt_gpu_call *c, CUfunction fn, dev_args *a, char *err, size_t errsz)
{
    int64_t block = c->v->gpu_block > 0 ? c->v->gpu_block : QKRT_CUDA_BLOCK;
    int64_t begin = 0, end = 0;
    a->params[c->nargs] = &begin;
    a->params[c->nargs + 1] = &end;
    for (int p = 0; p < c->nphases; p++) {
        begin = c->phases[p][0];
        end = c->phases[p][1];
        if (end <= begin)
            continue;
        int64_t blocks = (end - begin) / block + ((end - begin) % block != 0);
        blocks = blocks < QKRT_CUDA_MAX_BLOCKS ? blocks : QKRT_CUDA_MAX_BLOCKS;
        CU_CHECK(g, g->launch_kernel(fn, (unsigned)blocks, 1, 1, (unsigned)block, 1, 1, 0, NULL, a->params, NULL),
                 "cuLaunchKernel");
    }
    CU_CHECK(g, g->ctx_synchronize(), "cuCtxSynchronize");
    return QKC_RT_OK;
}

/* Copy in, launch, copy out; the context is current. */
static int launch_current(qkc_rt_gpu *g, const qkrt_gpu_call *c, char *err, size_t errsz)
{
    dev_args a = {calloc((size_t)c->nargs + 1, sizeof(CUdeviceptr)), calloc((size_t)c->nargs + 2, sizeof(void *))};
    CUfunction fn = NULL;
    int st = a.ptr && a.params ? QKC_RT_OK : qkrt_fail(err, errsz, QKC_RT_ERR_NOMEM, "out of memory");
    if (st == QKC_RT_OK)
        st = module_get(g, c->v, &fn, err, errsz);
    if (st == QKC_RT_OK)
        st = copy_in(g, c, &a, err, errsz);
    if (st == QKC_RT_OK)
        st = run_phases(g, c, fn, &a, err, errsz);
    if (st == QKC_RT_OK)
        st = copy_out(g, c, &a, err, errsz);
    for (int j = 0; a.ptr && j < c->nargs; j++)
        if (a.ptr[j])
            g->mem_free(a.ptr[j]);
    free(a.ptr);
    free(a.params);
    return st;
}

/* Prefixes err with "kernel 'k' on <isa>: ". */
static void prefix_err(const qkrt_gpu_call *c, char *err, size_t errsz)
{
    if (!err || !errsz)
        return;
    char msg[2048];
    snprintf(msg, sizeof msg, "%s", err);
    snprintf(err, errsz, "kernel '%s' on %s: %s", qkrt_name(c->k), c->v->isa ? c->v->isa : "cuda", msg);
}

/* Refuses a launch on a broken context or a device older than the PTX. */
static int check_gpu(qkc_rt_gpu *g, const qkrt_gpu_call *c, char *err, size_t errsz)
{
    pthread_mutex_lock(&g->lock);
    CUresult broken = g->broken;
    pthread_mutex_unlock(&g->lock);
    if (broken) {
        const char *text = NULL;
        if (g->get_error_string(broken, &text) != 0 || !text)
            text = "unknown error";
        return qkrt_fail(err, errsz, QKC_RT_ERR_TARGET,
                         "the CUDA context is unusable after an earlier error in this process (%s, CUresult %d): "
                         "restart the process", text, broken);
    }
    int sm = cuda_api_ptx_sm(c->v->gpu_code);
    if (sm > g->cc)
        return qkrt_fail(err, errsz, QKC_RT_ERR_NO_DEVICE, "code for sm_%d cannot run on this machine: its CUDA device "
                         "is sm_%d", sm, g->cc);
    return QKC_RT_OK;
}

/* After a failure (context current): a sticky error breaks g for good. */
static void note_sticky(qkc_rt_gpu *g)
{
    CUresult r = g->ctx_synchronize();
    if (!cuda_api_sticky(r))
        return;
    pthread_mutex_lock(&g->lock);
    g->broken = r;
    pthread_mutex_unlock(&g->lock);
}

int qkrt_cuda_launch(qkc_rt_gpu *gpu, const qkrt_gpu_call *c, char *err, size_t errsz)
{
    qkc_rt_gpu *own = NULL;
    int st = QKC_RT_OK;
    if (!gpu) { /* a driver, context and module for this call only: slow, see the top */
        gpu = own = qkc_rt_gpu_new(err, errsz);
        st = gpu ? QKC_RT_OK : QKC_RT_ERR_NO_DEVICE;
    }
    if (st == QKC_RT_OK)
        st = check_gpu(gpu, c, err, errsz);
    CUresult r = 0;
    if (st == QKC_RT_OK && (r = gpu->ctx_push(gpu->ctx)) != 0)
        st = cu_fail(gpu, r, "cuCtxPushCurrent", err, errsz);
    else if (st == QKC_RT_OK) {
        st = launch_current(gpu, c, err, errsz);
        if (st != QKC_RT_OK)
            note_sticky(gpu);
        CUcontext popped;
        r = gpu->ctx_pop(&popped);
        if (st == QKC_RT_OK && r != 0)
            st = cu_fail(gpu, r, "cuCtxPopCurrent", err, errsz);
    }
    qkc_rt_gpu_free(own);
    if (st != QKC_RT_OK)
        prefix_err(c, err, errsz);
    return st;
}
