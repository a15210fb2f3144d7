/* host-aot-gemv — y = W·x with q4_0 weights, compiled ahead of time twice
 * (CMakeLists.txt): gemv_own reads W in q4_0's own bytes; gemv_any was
 * built with LAYOUT any (`qkc build --layout any`), so the version that
 * runs here may read W row-interleaved. Such a program packs W once with
 * the generated packer (the format's bytes, the same for both builds) and
 * converts them with gemv_any_gemv_W_repack on the machine that launches;
 * where the selected version reads the format's bytes the call copies.
 *
 *   host_aot_gemv [N K [repetitions]]     (default 4096 4096 20)
 *
 * It checks both builds against an f32 product of the decoded weights
 * (x is quantized to q8_0 inside the kernel, so they differ from it by
 * x's rounding: at most 1% of sum |w||x| a row) and against each other
 * (the int8 dots are exact; the float sums of the blocks run in another
 * order: 1e-4 of sum |w||x|), then times them alternated and prints the
 * median of each. Exit status 0 when both checks hold. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "gemv_any.h"
#include "gemv_own.h"
#include "../common/rng.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int (*gemv_fn)(const float *x, const void *W, float *y, int64_t K, int64_t N, const qkc_rt_opts *opts);

static const char usage[] = "usage: host_aot_gemv [N K [repetitions]]  (N, K in 1..65536; repetitions in 1..1000)\n";

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* argv[i] as an integer in [lo, hi], else -1. */
static long arg_in(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return errno || end == s || *end || v < lo || v > hi ? -1 : v;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The largest error of y against ref, per row in units of norm[n]. */
static double worst(const float *y, const double *ref, const double *norm, int64_t n)
{
    double w = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)y[i] - ref[i]) / (norm[i] > 0 ? norm[i] : 1);
        if (!(e <= w)) /* NaN counts as the worst */
            w = isnan(e) ? INFINITY : e;
    }
    return w;
}

int main(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fputs(usage, stdout);
        return 0;
    }
    long n = 4096, k = 4096, reps = 20;
    if (argc == 3 || argc == 4) {
        n = arg_in(argv[1], 1, 65536);
        k = arg_in(argv[2], 1, 65536);
        reps = argc == 4 ? arg_in(argv[3], 1, 1000) : reps;
    }
    if ((argc != 1 && argc != 3 && argc != 4) || n < 0 || k < 0 || reps < 0) {
        fputs(usage, stderr);
        return 2;
    }

    char err[256] = "";
    int st = QKC_RT_OK;
    int64_t own_bytes = gemv_any_gemv_W_bytes(n, k), any_bytes = gemv_any_gemv_W_repacked_bytes(n, k);
    float *w = malloc(sizeof(float) * (size_t)n * (size_t)k);
    float *x = malloc(sizeof(float) * (size_t)k);
    float *y_own = malloc(sizeof(float) * (size_t)n), *y_any = malloc(sizeof(float) * (size_t)n);
    double *ref = calloc((size_t)n, sizeof(double)), *norm = calloc((size_t)n, sizeof(double));
    void *packed = own_bytes > 0 ? malloc((size_t)own_bytes) : NULL;
    void *repacked = any_bytes > 0 ? malloc((size_t)any_bytes) : NULL;
    qkc_rt_pool *pool = qkc_rt_pool_new(0); /* one thread per core */
    if (!w || !x || !y_own || !y_any || !ref || !norm || !packed || !repacked || !pool) {
        fputs("host-aot-gemv: out of memory\n", stderr);
        return 1;
    }
    uint32_t s = 0x2545f491u;
    for (long i = 0; i < n * k; i++)
        w[i] = next_value(&s);
    for (long i = 0; i < k; i++)
        x[i] = next_value(&s);

    /* The format's bytes (both builds' packers write the same), then the
     * layout the version that runs here reads. */
    st = gemv_any_gemv_W_pack(w, n, k, packed, own_bytes, NULL);
    if (st == QKC_RT_OK)
        st = gemv_any_gemv_W_repack(packed, own_bytes, n, k, repacked, any_bytes);
    /* The reference: the decoded weights (overwriting w) times f32 x. */
    if (st == QKC_RT_OK)
        st = gemv_any_gemv_W_unpack(packed, own_bytes, n, k, w, NULL);
    if (st != QKC_RT_OK) {
        fprintf(stderr, "host-aot-gemv: packing W failed (status %d)\n", st);
        return 1;
    }
    for (long r = 0; r < n; r++)
        for (long i = 0; i < k; i++) {
            double p = (double)w[r * k + i] * x[i];
            ref[r] += p;
            norm[r] += fabs(p);
        }

    qkc_rt_opts opts = {.pool = pool, .err = err, .errsz = sizeof err};
    const qkc_aot_variant *v_own = qkc_rt_select(&gemv_own_gemv_kernel, err, sizeof err);
    const qkc_aot_variant *v_any = v_own ? qkc_rt_select(&gemv_any_gemv_kernel, err, sizeof err) : NULL;
    st = v_any ? gemv_own_gemv(x, packed, y_own, k, n, &opts) : QKC_RT_ERR_TARGET;
    if (st == QKC_RT_OK)
        st = gemv_any_gemv(x, repacked, y_any, k, n, &opts);
    if (st != QKC_RT_OK) {
        fprintf(stderr, "host-aot-gemv: status %d: %s\n", st, err);
        return 1;
    }
    double e_own = worst(y_own, ref, norm, n), e_any = worst(y_any, ref, norm, n);
    for (long r = 0; r < n; r++)
        ref[r] = y_own[r];
    double e_pair = worst(y_any, ref, norm, n);
    int ok = e_own <= 1e-2 && e_any <= 1e-2 && e_pair <= 1e-4;
    printf("W q4_0 %ld x %ld, %d threads; version %s\n", n, k, qkc_rt_pool_threads(pool), v_any->isa);
    printf("  own layout:   %lld bytes, %s\n", (long long)own_bytes, v_own->config);
    printf("  --layout any: %lld bytes, %s\n", (long long)any_bytes, v_any->config);
    printf("error per row / sum |w||x|: own %.2e, any %.2e (f32 product, bound 1e-2); "
           "any - own %.2e (bound 1e-4): %s\n",
           e_own, e_any, e_pair, ok ? "ok" : "FAILED");

    /* Timing: the two builds alternated, median of each. The weights stay
     * in cache where they fit (4096 x 4096 q4_0 is 9.4 MB). */
    double *t = malloc(sizeof(double) * 2 * (size_t)reps);
    gemv_fn fn[2] = {gemv_own_gemv, gemv_any_gemv};
    const void *wb[2] = {packed, repacked};
    float *yb[2] = {y_own, y_any};
    for (long r = 0; t && r < reps && st == QKC_RT_OK; r++)
        for (int b = 0; b < 2 && st == QKC_RT_OK; b++) {
            double t0 = now_s();
            st = fn[b](x, wb[b], yb[b], k, n, &opts);
            t[b * reps + r] = now_s() - t0;
        }
    if (t && st == QKC_RT_OK) {
        double med[2];
        for (int b = 0; b < 2; b++) {
            qsort(t + b * reps, (size_t)reps, sizeof(double), cmp_double);
            med[b] = t[b * reps + reps / 2];
        }
        printf("median of %ld: own %.3f ms (%.1f GB/s of W), any %.3f ms (%.1f GB/s): %.2fx\n", reps,
               1e3 * med[0], 1e-9 * (double)own_bytes / med[0], 1e3 * med[1], 1e-9 * (double)any_bytes / med[1],
               med[0] / med[1]);
    }
    free(t);
    qkc_rt_pool_free(pool);
    free(w);
    free(x);
    free(y_own);
    free(y_any);
    free(ref);
    free(norm);
    free(packed);
    free(repacked);
    return ok && st == QKC_RT_OK ? 0 : 1;
}
