/* rt_test.h — helpers for tests of the public API (test_api.c,
 * test_diff.c): a portable PRNG, argument sets for one launch (random
 * inputs, packed quantized params, separate buffers for the compiled run
 * and the reference run), and the comparison with the CLI's tolerances.
 * Independent of CUnit. Prefix: rtt_. */
#ifndef QKC_RT_TEST_H
#define QKC_RT_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "qkc.h"

#define RTT_MAX_T 32

typedef struct rtt_rng {
    uint64_t s;
} rtt_rng;

uint64_t rtt_next(rtt_rng *r);                       /* splitmix64 */
double rtt_uniform(rtt_rng *r, double lo, double hi); /* [lo, hi] */
int64_t rtt_int(rtt_rng *r, int64_t lo, int64_t hi);  /* [lo, hi] */

/* One launch's arguments: t[] for the compiled kernel, ref[] for the
 * reference (same inputs, separate result buffers). */
typedef struct rtt_args {
    int n;
    qkc_param_info info[RTT_MAX_T];
    qkc_tensor t[RTT_MAX_T], ref[RTT_MAX_T];
    size_t bytes[RTT_MAX_T];
    void *map[RTT_MAX_T]; /* the mapping of t[i].data, which ends at a page no access may touch */
    size_t mapsz[RTT_MAX_T];
} rtt_args;

/* Builds arguments for k with dims (qkc_kernel_dim_name order): inputs
 * uniform in [-1, 1] (integers in small ranges), quantized params packed
 * from random f32, results filled with 0xff bytes. Each of the compiled
 * run's tensors ends where an inaccessible page begins, so that a kernel
 * reading or writing past a tensor's last byte faults in the test instead
 * of passing unseen. 0, or -1 + err. */
int rtt_args_make(const qkc_program *p, const qkc_kernel *k, const int64_t *dims, rtt_rng *rng, rtt_args *a,
                  char *err, size_t errsz);
void rtt_args_free(rtt_args *a);
/* Resets the compiled run's result buffers to 0xff. */
void rtt_args_clear_results(rtt_args *a);

/* Compares every result of a->t with a->ref: f32 1e-4, f16 4e-3, bf16
 * 3e-2 normwise (max|y-ref| / max|ref|); integers max abs error <= 1.
 * 0 when all pass, else 1 with a description in msg. */
int rtt_compare(const rtt_args *a, char *msg, size_t n);
/* Elements of a dense dtype / its size in bytes. */
size_t rtt_dtype_size(qkc_dtype t);

#endif
