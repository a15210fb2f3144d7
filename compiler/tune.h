/* tune.h — the analytical cost model and the candidate search of the
 * autotuner. For one kernel, target, shape and thread count it lists the
 * legal tile configurations and ranks them by a model of the time:
 * BLIS-style for contractions (register tile MR x NR from the vector
 * registers, K chunk from L1, rows per work item from L2) and, for
 * matrix-vector products, bytes streamed per level against the probed or
 * assumed bandwidth, plus a decode cost per element that depends on the
 * format (code kind, bits, scales) and on the dot path (f32 FMA or integer
 * DOT4). The tuner (`qkc tune`) measures the best few on the machine and
 * keeps the fastest; JIT compilation uses the model's first choice when
 * the tuning database has no record. GPU targets (tune.c's GPU model,
 * tune_gpu.c's legality) rank the outputs per thread by bytes per level,
 * FMA or tensor-core issue and how well the grid fills the SMs, and keep
 * the candidates whose registers and shared memory fit.
 *
 * Prefix: tune_. */
#ifndef QK_TUNE_H
#define QK_TUNE_H

#include <stddef.h>

#include "compiler/kir.h"
#include "compiler/tir.h"

typedef struct tune_cand {
    tir_config cfg;
    double model_s; /* modelled seconds */
} tune_cand;

/* Machine limits the model uses; zeros mean "assume from the target". */
typedef struct tune_limits {
    double dram_bw, l3_bw, l2_bw; /* bytes/s for the thread count in question */
    double f32_flops, int8_ops;   /* per core */
} tune_limits;

/* Legal configurations for k on t at dims (k->nsyms values; NULL = 4096
 * for every dimension), ranked by the model, best first; at most max.
 * base: the configuration the candidates start from (its schedule
 * requests are kept). Returns the count (>= 1). On a GPU target the
 * search is over tile_par x tile_inner, "legal" means at most 64 outputs
 * per thread (registers are checked by tune_gpu_check), and max == 1
 * (the JIT's question) returns base: the GPU model is not yet checked
 * against a device. */
int tune_candidates(const kir_kernel *k, const qk_target *t, const tir_config *base, const int64_t *dims, int threads,
                    const tune_limits *lim, tune_cand *out, int max);
/* Candidates that read the weights row-interleaved (repack=1, the
 * builder's R; docs/api.md), for callers that convert their weights
 * (qkc_kernel_options.any_layout): base with repack=1 and the builder's
 * tiles, then two row groups a work item, then the software prefetch
 * turned the other way and 8 KiB ahead, then a scheduling boundary per
 * row group (fence=1); those that build, settled,
 * distinct in code, in that order (the model does not see the layout:
 * the first is the one measured fastest on the machines of
 * docs/performance.md; model_s is filled for the tuner's ranking
 * report). At most max; 0 with why when the kernel cannot take
 * the layout (not a CPU target, no integer-dot sum, a codebook, ...). */
int tune_repack_candidates(const kir_kernel *k, const qk_target *t, const tir_config *base, const int64_t *dims,
                           int threads, const tune_limits *lim, tune_cand *out, int max, char *why, size_t whysz);
/* Modelled time of one configuration. */
double tune_model(const kir_kernel *k, const qk_target *t, const tir_config *cfg, const int64_t *dims, int threads,
                  const tune_limits *lim);
/* 16 hex digits of qk_hash64 over the kernel's printed KIR and the text of
 * each distinct format it uses: no target, no configuration. The kernel
 * key of tuning-database records. */
void tune_kernel_hash(const kir_kernel *k, char out[17]);
/* ---- tune_gpu.c: legality of GPU candidates ---- */

/* What one GPU kernel uses. */
typedef struct tune_gpu_usage {
    int regs;       /* 32-bit registers per thread */
    int smem;       /* static shared memory bytes per block */
    int spill;      /* spill-store bytes per thread (legal, but slow) */
    int block;      /* threads per block of its launches */
    int from_ptxas; /* 1: the assembler's report; 0: tune_gpu_estimate */
} tune_gpu_usage;

/* Threads per block of every CUDA launch (backends/cuda: CUDA_BLOCK,
 * checked equal in tests/test_gpu_tune.c). */
#define TUNE_GPU_BLOCK 128

/* 1 when a kernel using u fits t: registers per thread <= the per-thread
 * limit (255), registers x threads per block <= regs_per_block and
 * <= regs_per_sm (one resident block at least), static shared memory <=
 * smem_per_block (opt-in needs dynamic shared memory, which qkc's
 * kernels do not use). Else 0 and the first violated limit in why. */
int tune_gpu_fits(const qk_target *t, const tune_gpu_usage *u, char *why, size_t n);
/* A rough usage of f's kernel when no assembler is at hand: 32
 * registers of addresses, indices and loop state, plus 4 per output of
 * a thread's tile (accumulator, operands the assembler keeps live), or
 * 64 in all for a tensor-core tile (its A/B/C/D fragments); beyond 255
 * the rest as spill (ptxas spills rather than exceed the per-thread
 * limit); no shared memory. From ptxas 13.0 on sm_80/sm_90 the q4_0
 * kernels use 32-96 registers at 1-16 outputs, 254-255 at 32-64.
 * from_ptxas = 0. */
void tune_gpu_estimate(const tir_func *f, tune_gpu_usage *u);

/* The usage of f's kernel from the assembler (a backend's resources
 * hook, wrapped by the caller). 0, or -1 with why (then the estimate is
 * used and the reason reported). */
typedef int (*tune_gpu_usage_fn)(void *ctx, const tir_func *f, tune_gpu_usage *u, char *err, size_t n);

typedef struct tune_gpu_verdict {
    tune_gpu_usage use;
    int legal;
    char why[192];      /* illegal: the limit it breaks, or why it does not build */
    char estimate[192]; /* use is an estimate: why the assembler gave none ("" otherwise) */
} tune_gpu_verdict;

/* The legality of each of c[0..n) on t (a GPU target): builds its tiled
 * IR, gets its usage from fn (NULL: the estimate) and checks it with
 * tune_gpu_fits; a configuration the builder rejects is illegal with the
 * builder's message. Then moves the legal candidates, in order, to the
 * front of c and their verdicts to the front of v, the illegal ones
 * after them (v[i] stays with c[i]). Returns the number legal. */
int tune_gpu_check(const kir_kernel *k, const qk_target *t, tune_cand *c, int n, tune_gpu_usage_fn fn, void *ctx,
                   tune_gpu_verdict *v);

/* Spearman rank correlation of two series of n values (1 = same order). */
double tune_rank_corr(const double *a, const double *b, int n);

#endif
