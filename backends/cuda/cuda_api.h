/* cuda_api.h — the slice of the CUDA driver API qkc uses, declared without
 * cuda.h (libcuda is opened with dlopen, never linked), shared by the JIT's
 * backend (backends/cuda/driver.c) and libqkc_rt (runtime/rt/rt_cuda.c).
 * Standalone: it depends on nothing of qkc, so libqkc_rt can include it.
 *
 * CUDA_API_FUNCS(X) lists every function as X(field, symbol, params); a
 * struct gets the function pointers with CUDA_API_FIELDS and fills them
 * from a dlopen handle with CUDA_API_RESOLVE. Prefix: cuda_api_, CUDA_API_.
 *
 * libcuda is opened with RTLD_NODELETE (CUDA_API_DLOPEN_FLAGS): once cuInit
 * ran, unmapping the driver and loading it again in the same process is
 * unsafe, so a dlclose never unloads it. */
#ifndef QK_CUDA_API_H
#define QK_CUDA_API_H

#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef int CUresult; /* CUDA_SUCCESS = 0 */
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUevent_st *CUevent;
typedef int CUjit_option;
#define CUDA_API_DLOPEN_FLAGS (RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)

#define CUDA_ERROR_OUT_OF_MEMORY 2
#define CUDA_ERROR_STUB_LIBRARY 34
#define CUDA_ERROR_NO_DEVICE 100
#define CUDA_ERROR_UNSUPPORTED_PTX_VERSION 222
#define CU_STREAM_NON_BLOCKING 1
#define CU_JIT_ERROR_LOG_BUFFER 5
#define CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES 6
/* CUdevice_attribute values (cuda.h) */
#define CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK 8
#define CU_DEVICE_ATTRIBUTE_WARP_SIZE 10
#define CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK 12
#define CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT 16
#define CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE 38
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR 75
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR 76
#define CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR 81
#define CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR 82
#define CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN 97

#define CUDA_API_FUNCS(X)                                                                            \
    X(init, "cuInit", (unsigned))                                                                    \
    X(driver_get_version, "cuDriverGetVersion", (int *))                                             \
    X(device_get_count, "cuDeviceGetCount", (int *))                                                 \
    X(device_get, "cuDeviceGet", (CUdevice *, int))                                                  \
    X(device_get_attribute, "cuDeviceGetAttribute", (int *, int, CUdevice))                          \
    X(device_get_name, "cuDeviceGetName", (char *, int, CUdevice))                                   \
    X(primary_ctx_retain, "cuDevicePrimaryCtxRetain", (CUcontext *, CUdevice))                       \
    X(primary_ctx_release, "cuDevicePrimaryCtxRelease_v2", (CUdevice))                               \
    X(ctx_push, "cuCtxPushCurrent_v2", (CUcontext))                                                  \
    X(ctx_pop, "cuCtxPopCurrent_v2", (CUcontext *))                                                  \
    X(ctx_synchronize, "cuCtxSynchronize", (void))                                                   \
    X(module_load, "cuModuleLoadDataEx", (CUmodule *, const void *, unsigned, CUjit_option *, void **)) \
    X(module_unload, "cuModuleUnload", (CUmodule))                                                   \
    X(module_get_function, "cuModuleGetFunction", (CUfunction *, CUmodule, const char *))            \
    X(mem_alloc, "cuMemAlloc_v2", (CUdeviceptr *, size_t))                                           \
    X(mem_free, "cuMemFree_v2", (CUdeviceptr))                                                       \
    X(memcpy_htod, "cuMemcpyHtoD_v2", (CUdeviceptr, const void *, size_t))                           \
    X(memcpy_dtoh, "cuMemcpyDtoH_v2", (void *, CUdeviceptr, size_t))                                 \
    X(memcpy_dtod, "cuMemcpyDtoD_v2", (CUdeviceptr, CUdeviceptr, size_t))                            \
    X(memcpy_dtod_async, "cuMemcpyDtoDAsync_v2", (CUdeviceptr, CUdeviceptr, size_t, CUstream))       \
    X(memset_d8, "cuMemsetD8_v2", (CUdeviceptr, unsigned char, size_t))                              \
    X(stream_create, "cuStreamCreate", (CUstream *, unsigned))                                       \
    X(stream_destroy, "cuStreamDestroy_v2", (CUstream))                                              \
    X(event_create, "cuEventCreate", (CUevent *, unsigned))                                          \
    X(event_destroy, "cuEventDestroy_v2", (CUevent))                                                 \
    X(event_record, "cuEventRecord", (CUevent, CUstream))                                            \
    X(event_synchronize, "cuEventSynchronize", (CUevent))                                            \
    X(event_elapsed_time, "cuEventElapsedTime", (float *, CUevent, CUevent)) /* ms; _v2 if any */   \
    X(launch_kernel, "cuLaunchKernel",                                                               \
      (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream,  \
       void **, void **))                                                                            \
    X(get_error_string, "cuGetErrorString", (CUresult, const char **))

#define CUDA_API_FIELD(field, symbol, params) CUresult(*field) params;
/* The function pointers, as members of a struct. */
#define CUDA_API_FIELDS CUDA_API_FUNCS(CUDA_API_FIELD)

/* Looks name up in lib into *slot (a function pointer). 0, or -1 if absent. */
static inline int cuda_api_sym(void *lib, const char *name, void *slot)
{
    void *p = dlsym(lib, name);
    memcpy(slot, &p, sizeof p); /* object pointer -> function pointer, as POSIX allows */
    return p ? 0 : -1;
}

#define CUDA_API_RESOLVE_ONE(field, symbol, params) \
    if (cuda_api_sym(cuda_api_lib_, symbol, &cuda_api_s_->field)) \
        return symbol;
/* Statements filling every pointer of *s from lib; evaluates to a return of
 * the first missing symbol's name. Use in a function returning const char *,
 * followed by `return NULL;`. cuda.h (CUDA 13) maps cuEventElapsedTime to
 * cuEventElapsedTime_v2 (same parameters): that one is taken where the
 * driver has it, the plain one otherwise. */
#define CUDA_API_RESOLVE(lib, s)                                                     \
    void *cuda_api_lib_ = (lib);                                                     \
    __typeof__(s) cuda_api_s_ = (s);                                                 \
    CUDA_API_FUNCS(CUDA_API_RESOLVE_ONE)                                             \
    if (dlsym(cuda_api_lib_, "cuEventElapsedTime_v2"))                               \
        cuda_api_sym(cuda_api_lib_, "cuEventElapsedTime_v2", &cuda_api_s_->event_elapsed_time);

/* Errors after which the context is unusable: every later call in the
 * process fails the same way (cuda.h: "the process must be terminated and
 * relaunched"). */
static inline int cuda_api_sticky(CUresult r)
{
    switch (r) {
    case 700: /* ILLEGAL_ADDRESS */
    case 702: /* LAUNCH_TIMEOUT */
    case 710: /* ASSERT */
    case 714: /* HARDWARE_STACK_ERROR */
    case 715: /* ILLEGAL_INSTRUCTION */
    case 716: /* MISALIGNED_ADDRESS */
    case 717: /* INVALID_ADDRESS_SPACE */
    case 718: /* INVALID_PC */
    case 719: /* LAUNCH_FAILED */
    case 721: /* TENSOR_MEMORY_LEAK */
        return 1;
    default: return 0;
    }
}

/* The PTX's ".version X.Y" into buf ("?" when it has none). */
static inline void cuda_api_ptx_version(const char *ptx, char *buf, size_t n)
{
    const char *v = ptx ? strstr(ptx, ".version ") : NULL;
    size_t len = 0;
    if (v) {
        v += strlen(".version ");
        while (len + 1 < n && ((v[len] >= '0' && v[len] <= '9') || v[len] == '.'))
            len++;
    }
    if (len == 0 || n < 2) {
        snprintf(buf, n, "?");
        return;
    }
    memcpy(buf, v, len);
    buf[len] = 0;
}

/* The architecture of PTX text: 90 for ".target sm_90" (also sm_90a); 0
 * when it names none. */
static inline int cuda_api_ptx_sm(const char *ptx)
{
    const char *t = ptx ? strstr(ptx, ".target sm_") : NULL;
    int sm = 0;
    for (t = t ? t + strlen(".target sm_") : NULL; t && *t >= '0' && *t <= '9' && sm < 10000; t++)
        sm = sm * 10 + (*t - '0');
    return sm;
}

/* "CUDA 13.0" for cuDriverGetVersion's 13000 into buf. */
static inline void cuda_api_version_text(int v, char *buf, size_t n)
{
    snprintf(buf, n, "CUDA %d.%d", v / 1000, v % 1000 / 10);
}

#endif
