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
 * the tuning database has no record.
 *
 * Prefix: tune_. */
#ifndef QK_TUNE_H
#define QK_TUNE_H

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
 * requests are kept). Returns the count (>= 1). */
int tune_candidates(const kir_kernel *k, const qk_target *t, const tir_config *base, const int64_t *dims, int threads,
                    const tune_limits *lim, tune_cand *out, int max);
/* Modelled time of one configuration. */
double tune_model(const kir_kernel *k, const qk_target *t, const tir_config *cfg, const int64_t *dims, int threads,
                  const tune_limits *lim);
/* 16 hex digits of qk_hash64 over the kernel's printed KIR and the text of
 * each distinct format it uses: no target, no configuration. The kernel
 * key of tuning-database records. */
void tune_kernel_hash(const kir_kernel *k, char out[17]);
/* Spearman rank correlation of two series of n values (1 = same order). */
double tune_rank_corr(const double *a, const double *b, int n);

#endif
