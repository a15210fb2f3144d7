/* fake_libcuda.c — a stand-in libcuda for tests without a GPU
 * (test_gpu_driver.c points QKC_LIBCUDA at it). It exports every driver
 * function that backends/cuda/cuda_api.h resolves; device memory is host
 * memory, kernels do nothing, events are 0.5 ms apart. Results are chosen
 * by environment variables, read at every call:
 *   FAKE_CUDA_INIT      cuInit's CUresult (0)
 *   FAKE_CUDA_CC        the device's compute capability (90)
 *   FAKE_CUDA_VERSION   cuDriverGetVersion (13000)
 *   FAKE_CUDA_MODULE    cuModuleLoadDataEx's CUresult (0)
 *   FAKE_CUDA_LAUNCH    cuLaunchKernel's CUresult (0); a sticky error is
 *                       then returned by every cuCtxSynchronize too
 * fake_cuda_counts() tells the test what was called. Test code: its
 * globals are the fake device's state. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/cuda/cuda_api.h"

#define EXPORT __attribute__((visibility("default")))

typedef struct fake_counts {
    int init, ctx_retain, htod, dtoh, memset, dtod, launches, event_sync, ctx_sync, streams, module_loads;
} fake_counts;

static fake_counts counts;
static CUresult sticky;
static int ctx_token, mod_token, fn_token, stream_token, event_token;

EXPORT fake_counts *fake_cuda_counts(void) { return &counts; }
EXPORT void fake_cuda_reset(void)
{
    memset(&counts, 0, sizeof counts);
    sticky = 0;
}

static int env_int(const char *name, int dflt)
{
    const char *s = getenv(name);
    return s && *s ? atoi(s) : dflt;
}

EXPORT CUresult cuInit(unsigned flags)
{
    (void)flags;
    counts.init++;
    return env_int("FAKE_CUDA_INIT", 0);
}
EXPORT CUresult cuDriverGetVersion(int *v)
{
    *v = env_int("FAKE_CUDA_VERSION", 13000);
    return 0;
}
EXPORT CUresult cuDeviceGetCount(int *n)
{
    *n = 1;
    return 0;
}
EXPORT CUresult cuDeviceGet(CUdevice *d, int i)
{
    *d = i;
    return 0;
}
EXPORT CUresult cuDeviceGetAttribute(int *v, int which, CUdevice d)
{
    (void)d;
    int cc = env_int("FAKE_CUDA_CC", 90);
    switch (which) {
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = cc / 10; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = cc % 10; break;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE: *v = 32; break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = 7; break;
    case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: *v = 1 << 20; break;
    default: *v = 65536; break;
    }
    return 0;
}
EXPORT CUresult cuDeviceGetName(char *name, int n, CUdevice d)
{
    (void)d;
    snprintf(name, (size_t)n, "Fake GPU");
    return 0;
}
EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d)
{
    (void)d;
    counts.ctx_retain++;
    *c = (CUcontext)&ctx_token;
    return 0;
}
EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d)
{
    (void)d;
    return 0;
}
EXPORT CUresult cuCtxPushCurrent_v2(CUcontext c)
{
    (void)c;
    return 0;
}
EXPORT CUresult cuCtxPopCurrent_v2(CUcontext *c)
{
    *c = (CUcontext)&ctx_token;
    return 0;
}
EXPORT CUresult cuCtxSynchronize(void)
{
    counts.ctx_sync++;
    return sticky;
}
EXPORT CUresult cuModuleLoadDataEx(CUmodule *m, const void *img, unsigned n, CUjit_option *o, void **v)
{
    (void)img, (void)n, (void)o, (void)v;
    counts.module_loads++;
    *m = (CUmodule)&mod_token;
    return sticky ? sticky : env_int("FAKE_CUDA_MODULE", 0);
}
EXPORT CUresult cuModuleUnload(CUmodule m)
{
    (void)m;
    return sticky;
}
EXPORT CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name)
{
    (void)m, (void)name;
    *f = (CUfunction)&fn_token;
    return 0;
}
EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n)
{
    void *m = malloc(n ? n : 1);
    *p = (CUdeviceptr)(uintptr_t)m;
    return m ? sticky : CUDA_ERROR_OUT_OF_MEMORY;
}
EXPORT CUresult cuMemFree_v2(CUdeviceptr p)
{
    free((void *)(uintptr_t)p);
    return 0;
}
EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n)
{
    counts.htod++;
    memcpy((void *)(uintptr_t)dst, src, n);
    return sticky;
}
EXPORT CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n)
{
    counts.dtoh++;
    memcpy(dst, (const void *)(uintptr_t)src, n);
    return sticky;
}
/* Device-to-device copies and memsets touch nothing: the probe's buffers
 * are large and never read. */
EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n)
{
    (void)dst, (void)src, (void)n;
    counts.dtod++;
    return sticky;
}
EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s)
{
    (void)s;
    return cuMemcpyDtoD_v2(dst, src, n);
}
EXPORT CUresult cuMemsetD8_v2(CUdeviceptr p, unsigned char v, size_t n)
{
    (void)p, (void)v, (void)n;
    counts.memset++;
    return sticky;
}
EXPORT CUresult cuStreamCreate(CUstream *s, unsigned flags)
{
    (void)flags;
    counts.streams++;
    *s = (CUstream)&stream_token;
    return 0;
}
EXPORT CUresult cuStreamDestroy_v2(CUstream s)
{
    (void)s;
    return 0;
}
EXPORT CUresult cuEventCreate(CUevent *e, unsigned flags)
{
    (void)flags;
    *e = (CUevent)&event_token;
    return 0;
}
EXPORT CUresult cuEventDestroy_v2(CUevent e)
{
    (void)e;
    return 0;
}
EXPORT CUresult cuEventRecord(CUevent e, CUstream s)
{
    (void)e, (void)s;
    return sticky;
}
EXPORT CUresult cuEventSynchronize(CUevent e)
{
    (void)e;
    counts.event_sync++;
    return sticky;
}
/* The plain symbol answers 7 ms, the _v2 one (which cuda.h of CUDA 13
 * maps the name to) 0.5 ms: a test sees which one was resolved. */
EXPORT CUresult cuEventElapsedTime(float *ms, CUevent a, CUevent b)
{
    (void)a, (void)b;
    *ms = 7.0f;
    return 0;
}
EXPORT CUresult cuEventElapsedTime_v2(float *ms, CUevent a, CUevent b)
{
    (void)a, (void)b;
    *ms = 0.5f;
    return 0;
}
EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                               unsigned bz, unsigned smem, CUstream s, void **params, void **extra)
{
    (void)f, (void)gx, (void)gy, (void)gz, (void)bx, (void)by, (void)bz, (void)smem, (void)s, (void)params, (void)extra;
    counts.launches++;
    if (sticky)
        return sticky;
    CUresult r = env_int("FAKE_CUDA_LAUNCH", 0);
    if (cuda_api_sticky(r))
        sticky = r;
    return r;
}
EXPORT CUresult cuGetErrorString(CUresult r, const char **text)
{
    switch (r) {
    case 222: *text = "the provided PTX was compiled with an unsupported toolchain."; break;
    case 700: *text = "an illegal memory access was encountered"; break;
    case 803: *text = "system has unsupported display driver / cuda driver combination"; break;
    default: *text = "fake error"; break;
    }
    return 0;
}
