/* cuda_api.h — the slice of the CUDA driver API qkc uses, declared without
 * cuda.h (libcuda is opened with dlopen, never linked), shared by the JIT's
 * backend (backends/cuda/driver.c) and libqkc_rt (runtime/rt/rt_cuda.c).
 * Standalone: it depends on nothing of qkc, so libqkc_rt can include it.
 *
 * CUDA_API_FUNCS(X) lists every function as X(field, symbol, params); a
 * struct gets the function pointers with CUDA_API_FIELDS and fills them
 * from a dlopen handle with CUDA_API_RESOLVE. Prefix: cuda_api_, CUDA_API_. */
#ifndef QK_CUDA_API_H
#define QK_CUDA_API_H

#include <dlfcn.h>
#include <stddef.h>
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
#define CUDA_ERROR_OUT_OF_MEMORY 2
#define CUDA_ERROR_STUB_LIBRARY 34
#define CUDA_ERROR_NO_DEVICE 100
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
    X(memset_d8, "cuMemsetD8_v2", (CUdeviceptr, unsigned char, size_t))                              \
    X(event_create, "cuEventCreate", (CUevent *, unsigned))                                          \
    X(event_destroy, "cuEventDestroy_v2", (CUevent))                                                 \
    X(event_record, "cuEventRecord", (CUevent, CUstream))                                            \
    X(event_synchronize, "cuEventSynchronize", (CUevent))                                            \
    X(event_elapsed_time, "cuEventElapsedTime", (float *, CUevent, CUevent)) /* ms */               \
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
 * followed by `return NULL;`. */
#define CUDA_API_RESOLVE(lib, s)                  \
    void *cuda_api_lib_ = (lib);                  \
    __typeof__(s) cuda_api_s_ = (s);              \
    CUDA_API_FUNCS(CUDA_API_RESOLVE_ONE)

#endif
