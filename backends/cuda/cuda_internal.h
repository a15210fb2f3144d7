/* cuda_internal.h — the pieces of the CUDA backend (backends/cuda/): the
 * CUDA C emitter over the tiled IR, NVRTC (CUDA C -> PTX) and the driver
 * API (PTX -> launch). NVRTC and libcuda are opened with dlopen and their
 * few types and prototypes are declared here, so qkc builds and runs where
 * CUDA is absent. Nothing outside backends/cuda/ includes this header.
 *
 * Threading: one cuda_state per qkc context. compile, emit and launch may
 * run concurrently on one state: the lazy dlopens and module loads take
 * st->lock; NVRTC programs are independent per call; the driver API is
 * thread-safe and each launch pushes the primary context on its own
 * thread.
 *
 * Prefix: cuda_. */
#ifndef QK_CUDA_INTERNAL_H
#define QK_CUDA_INTERNAL_H

#include <pthread.h>

#include "backends/backend.h"
#include "backends/cuda/cuda_api.h"

#define CUDA_BLOCK 128                  /* threads per block of every launch */
#define CUDA_MAX_BLOCKS (65535 * 32)    /* grid cap; kernels are grid-stride */

/* ---- the slice of NVRTC we use (nvrtc.h is not included) ---- */
typedef int nvrtcResult; /* NVRTC_SUCCESS = 0 */
typedef struct _nvrtcProgram *nvrtcProgram;

typedef struct cuda_nvrtc {
    void *lib; /* dlopen handle; NULL until loaded */
    nvrtcResult (*create_program)(nvrtcProgram *, const char *, const char *, int, const char *const *,
                                  const char *const *);
    nvrtcResult (*compile_program)(nvrtcProgram, int, const char *const *);
    nvrtcResult (*get_log_size)(nvrtcProgram, size_t *);
    nvrtcResult (*get_log)(nvrtcProgram, char *);
    nvrtcResult (*get_ptx_size)(nvrtcProgram, size_t *);
    nvrtcResult (*get_ptx)(nvrtcProgram, char *);
    nvrtcResult (*destroy_program)(nvrtcProgram *);
    const char *(*error_string)(nvrtcResult);
    nvrtcResult (*version)(int *, int *);
    int major, minor; /* nvrtcVersion: it fixes the PTX ISA version made */
} cuda_nvrtc;

/* ---- the driver API: backends/cuda/cuda_api.h ---- */
typedef struct cuda_driver {
    void *lib;       /* dlopen handle (RTLD_NODELETE); NULL until loaded */
    CUdevice dev;    /* device 0, set with the driver */
    int cc;          /* its compute capability, 10 * major + minor */
    int version;     /* cuDriverGetVersion: 13000 for CUDA 13.0 */
    char name[256];  /* cuDeviceGetName */
    CUcontext ctx;   /* the device's primary context, retained at the first launch */
    CUDA_API_FIELDS
} cuda_driver;

/* Per-context backend state (the `create` hook's result). */
typedef struct cuda_state {
    qk_target target;
    char obj_tag[512];    /* what cached PTX depends on besides the kernel (cuda_obj_tag) */
    int tag_ready;        /* obj_tag names the NVRTC (cuda_tag hook) */
    pthread_mutex_t lock; /* guards nvrtc/drv loading, module loads, broken, obj_tag */
    cuda_nvrtc nvrtc;
    cuda_driver drv;
    CUresult broken;      /* a sticky error seen: the context is unusable */
} cuda_state;

/* qk_code.priv of a compiled function. */
typedef struct cuda_code {
    char *kname;   /* the kernel's C identifier */
    char *ptx;     /* NUL-terminated PTX text */
    size_t ptx_len;
    CUmodule module;   /* loaded at the first launch, under st->lock */
    CUfunction fn;
} cuda_code;

/* ---- emit.c: tiled IR -> CUDA C ---- */
/* Appends one `extern "C" __global__` kernel for f to out, named by
 * cuda_kernel_name. Fails (-1 + err) on any value with lanes > 1 or an op
 * the slice cannot express. */
int cuda_emit_source(const tir_func *f, int sm, qk_buf *out, char *err, size_t errsz);
/* The kernel's C identifier: f->name with non-identifier characters
 * replaced by '_' (malloc'd). */
char *cuda_kernel_name(const tir_func *f);

/* ---- backend.c ---- */
/* Sets st->obj_tag from st->target and st->nvrtc: the compute capability,
 * geometry and NVRTC version the PTX was made with (the caller holds
 * st->lock or owns st alone). */
void cuda_obj_tag(cuda_state *st);

/* ---- nvrtc.c: CUDA C -> PTX ---- */
/* Loads NVRTC into st once (thread-safe). 0 or -1 + err. */
int cuda_nvrtc_load(cuda_state *st, char *err, size_t errsz);
void cuda_nvrtc_unload(cuda_nvrtc *nv);
/* Compiles src for compute_<sm>; *ptx is malloc'd. 0 or -1 + err (with
 * NVRTC's log on a compile error). */
int cuda_nvrtc_compile(cuda_state *st, const char *src, const char *name, int sm, char **ptx, size_t *ptx_len,
                       char *err, size_t errsz);

/* ---- driver.c: PTX -> device, launch ---- */
/* Runs code over the work items [begin, end) taken from args, phase by
 * phase when phase_ends is given (backend.h's launch: one kernel launch
 * per phase on one stream, the buffers on the device throughout). args[i]
 * points at argument i's value (libffi convention): a host pointer (void *)
 * for TS_PTR arguments, an int64_t for TS_I64 ones. Pointer arguments are
 * copied to the device (arg_bytes[i] bytes), and non-const ones back;
 * scratch buffers (f->scratch) live on the device only (zeroed, never
 * copied). A missing driver fails with a message starting "no CUDA
 * driver"; a device older than the target with "... cannot run on this
 * machine"; after a sticky error (cuda_api_sticky) every launch fails. */
int cuda_driver_launch(cuda_state *st, const tir_func *f, cuda_code *code, void **args, const int64_t *arg_bytes,
                       const int64_t *phase_ends, char *err, size_t errsz);
/* Like cuda_driver_launch, but the buffers stay on the device: copies
 * device sets of them, a warm-up launch on each, then reps launches, each
 * on the next set, queued back to back on a private stream with an event
 * at every boundary (seconds[r]: between events r and r + 1); the results
 * of set 0 are copied back. The device must be the target's (same compute
 * capability): figures are kept under the target's fingerprint. */
int cuda_driver_launch_timed(cuda_state *st, const tir_func *f, cuda_code *code, void **args,
                             const int64_t *arg_bytes, int copies, int reps, double *seconds, char *err,
                             size_t errsz);
/* Best of reps device-to-device copies of bytes, timed with events, as
 * bytes read plus bytes written per second. The device must be the
 * target's, as for cuda_driver_launch_timed. */
int cuda_driver_copy_bandwidth(cuda_state *st, int64_t bytes, int reps, double *bytes_per_s, char *err,
                               size_t errsz);
/* Reads device 0's geometry (SMs, warp, shared memory, registers, L2,
 * name) with cuInit and attribute queries only (no context). When its
 * compute capability is t->sm, *t gets it and 1 is returned; else 0, *t
 * is unchanged and err says which device is there. -1 + err without a
 * driver. */
int cuda_driver_describe(cuda_state *st, qk_target *t, char *err, size_t errsz);
/* ---- ptxas.c ---- */

/* The toolkit's ptxas into buf: $QKC_PTXAS, $CUDA_HOME/bin/ptxas or
 * /usr/local/cuda/bin/ptxas, the first that is executable. 0, or -1
 * when there is none. */
int cuda_ptxas_path(char *buf, size_t n);
/* Assembles ptx for sm_<sm> with `ptxas -v` and reads its report (Used N
 * registers, N bytes smem, N bytes spill stores) into r (block is not
 * touched). 0, or -1 + err (no ptxas, or its first error line). */
int cuda_ptxas_info(const char *ptx, int sm, qk_resources *r, char *err, size_t errsz);
/* Parses a `ptxas -v` report. 0, or -1 when it has no register count. */
int cuda_ptxas_parse(const char *log, qk_resources *r);

/* Unloads code's module, if one was loaded. */
void cuda_driver_release_code(cuda_state *st, cuda_code *code);
/* Releases the primary context (libcuda stays mapped: RTLD_NODELETE). */
void cuda_driver_unload(cuda_driver *drv);

#endif
