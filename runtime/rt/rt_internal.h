/* rt_internal.h — internals of libqkc_rt, the runtime of kernels built
 * ahead of time by `qkc build` (include/qkc_aot.h is its public side).
 *
 * libqkc_rt links no LLVM, no libffi and no compiler: it validates a
 * launch, picks the version of the kernel this machine runs, allocates
 * scratch buffers and calls the compiled entry over the work items (CPU,
 * on a pool of threads) or loads the PTX through the CUDA driver (GPU).
 * The only code it shares with libqkc is the format descriptor
 * (compiler/format.c) and its helpers.
 *
 * Prefix: qkrt_ (internal; distinct from the JIT runtime's rt_ so that a
 * program may link libqkc and libqkc_rt together). */
#ifndef QKRT_INTERNAL_H
#define QKRT_INTERNAL_H

#include "compiler/format.h"
#include "qkc_aot.h"

#include <stddef.h>
#include <stdint.h>

/* Internal: not exported from the shared libqkc_rt. */
#if defined(__GNUC__)
#pragma GCC visibility push(hidden)
#endif

/* ---- rt_launch.c ---- */
/* Writes the message into err (when err && errsz) and returns status. */
int qkrt_fail(char *err, size_t errsz, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* The kernel's name for messages ("?" in a damaged descriptor). */
static inline const char *qkrt_name(const qkc_aot_kernel *k)
{
    return k && k->name ? k->name : "?";
}
/* *out = extent of d for dims (may be negative); -1 when it overflows. */
int qkrt_extent(qkc_aot_dim d, const int64_t *dims, int64_t *out);
/* a * b and a + b of non-negative values, -1 when they overflow. */
int64_t qkrt_mul(int64_t a, int64_t b);
int64_t qkrt_add(int64_t a, int64_t b);
/* Packed bytes of rows x k of f (as qk_format_size), -1 on overflow. */
int64_t qkrt_format_bytes(const qk_format *f, int64_t rows, int64_t k);

/* A descriptor of an ABI this runtime reads (QKC_AOT_ABI_MIN..QKC_AOT_ABI). */
static inline int qkrt_abi_ok(const qkc_aot_kernel *k)
{
    return k->abi >= QKC_AOT_ABI_MIN && k->abi <= QKC_AOT_ABI;
}
/* Variant v's entry of k->variant_repack: {the param it reads
 * row-interleaved (-1: none), its rows per group, the items per sum of
 * its SUMS scratch}. NULL where there is none: an ABI 1 descriptor (no
 * such field) or an ABI 2 one without the table (no version reads the
 * layout; a version with a SUMS scratch is then refused as damaged), and
 * for a v outside k->variants (*damaged = 1). */
static inline const int64_t *qkrt_layout(const qkc_aot_kernel *k, const qkc_aot_variant *v, int *damaged)
{
    *damaged = k->abi >= 2 && k->variant_repack && (v < k->variants || v >= k->variants + k->nvariants);
    return k->abi < 2 || !k->variant_repack || *damaged ? NULL : &k->variant_repack[3 * (v - k->variants)];
}
/* The status and message for a descriptor of another ABI. */
int qkrt_bad_abi(const qkc_aot_kernel *k, char *err, size_t errsz);

/* ---- rt_cpu.c ---- */
/* QKC_AOT_FEAT_* of this CPU and OS, detected once per process. */
int64_t qkrt_cpu_features(void);
/* Feature names of mask, comma-separated ("avx2,fma"; "none" for 0). */
void qkrt_features_text(int64_t mask, char *buf, size_t n);

/* ---- rt_select.c ---- */
/* qkc_rt_select with a status: QKC_RT_OK and *v, or an error status
 * (QKC_RT_ERR_TARGET, QKC_RT_ERR_NO_DEVICE) with a message. */
int qkrt_select(const qkc_aot_kernel *k, const qkc_aot_variant **v, char *err, size_t errsz);

/* ---- rt_pool.c ---- */
typedef void (*qkrt_task_fn)(void *arg, int64_t begin, int64_t end);
/* One launch at a time per pool: a launch holds the pool between them. */
void qkrt_pool_lock(qkc_rt_pool *p);
void qkrt_pool_unlock(qkc_rt_pool *p);
/* Runs fn over items [0, items) in chunks on the pool's threads and the
 * calling thread; returns when every item is done (the barrier between
 * phases). The caller holds the pool's lock. */
void qkrt_pool_run(qkc_rt_pool *p, int64_t items, qkrt_task_fn fn, void *arg);

/* ---- rt_cuda.c ---- */
/* One GPU launch: argv as for a CPU entry (host pointers), bytes[j] the
 * size of pointer argument j (0 for integers and empty buffers),
 * is_ptr[j] 1 for tensors, 2 for scratch (device-only, never copied), 0
 * for integers, is_out[j] 1 for results (copied back), phases[p] = {begin,
 * end}. */
typedef struct qkrt_gpu_call {
    const qkc_aot_kernel *k;
    const qkc_aot_variant *v;
    const qkc_aot_arg *argv;
    int nargs;
    const int64_t *bytes;
    const unsigned char *is_ptr, *is_out;
    int nphases;
    const int64_t (*phases)[2];
} qkrt_gpu_call;
/* Copies in, launches every non-empty phase in order, copies out. gpu
 * NULL: a context made for this call. */
int qkrt_cuda_launch(qkc_rt_gpu *gpu, const qkrt_gpu_call *c, char *err, size_t errsz);
/* 1 when a CUDA driver with a device is present (probed once per
 * process); else 0 and, when why is not NULL, the reason in why. */
int qkrt_cuda_present(char *why, size_t whysz);
/* 1 when CUDA version v can run here: a driver with a device at least as
 * new as v's PTX target (sm_NN); else 0 and the reason in why. */
int qkrt_cuda_runs(const qkc_aot_variant *v, char *why, size_t whysz);

#if defined(__GNUC__)
#pragma GCC visibility pop
#endif

#endif
