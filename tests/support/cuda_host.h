/* cuda_host.h — CUDA C of several kernels in one translation unit (one
 * NVRTC or g++ call instead of one per kernel), and the emitted CUDA C
 * run on the host: compiled by g++ with a prelude that defines the CUDA
 * names the emitter uses, each kernel called once per thread of a small
 * emulated grid (3 blocks of 2 threads), which its grid-stride loop must
 * cover exactly. Prefix: rtt_. */
#ifndef QKC_CUDA_HOST_H
#define QKC_CUDA_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "common/base.h"

/* Appends srcs[0..n) to out as one translation unit: #include lines
 * first (once each), then each source in its own namespace, so helpers
 * of the same name cannot clash (extern "C" kernels keep their names). */
void rtt_cuda_batch(qk_buf *out, const char *const *srcs, int n);

/* Definitions of the CUDA names the emitter uses (__popc, __half and its
 * conversions, __global__, ...) for compiling its CUDA C with g++; the
 * includer puts <math.h>, <string.h> and the thread-index globals first. */
extern const char rtt_cuda_shims[];

/* The path of ptxas (QKC_PTXAS, else /usr/local/cuda/bin/ptxas), or NULL. */
const char *rtt_ptxas_path(const char *configured);
/* ptxas -arch=sm_<sm> on ptx: its exit status (0 = accepted); -1 when it
 * could not run. Its messages go to log (may be NULL). */
int rtt_ptxas(const char *ptxas, const char *ptx, int sm, qk_buf *log);

typedef struct rtt_emu {
    void *lib;
    unsigned *block, *bdim, *grid, *thread; /* the .x of the prelude's globals */
} rtt_emu;

/* Compiles src (rtt_cuda_batch output or one kernel) for the host. 0; 1
 * when g++ is missing (why says so); -1 on a compile error (why holds
 * g++'s first lines). */
int rtt_emu_open(const char *src, rtt_emu *m, char *why, size_t n);
void rtt_emu_close(rtt_emu *m);
/* Calls kernel kname with its nargs (<= 24) pointer/i64 arguments av,
 * begin = lo and end = hi, once per emulated thread. 0, or -1 when the
 * library has no such kernel. */
int rtt_emu_run(rtt_emu *m, const char *kname, int nargs, const uintptr_t *av, int64_t lo, int64_t hi);

#endif
