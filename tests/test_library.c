/* test_library.c — every format of the standard library (dsl/*.qk), in a
 * GEMV and a GEMM kernel, JIT-compiled and compared with the reference on
 * shapes that are not multiples of any block or tile, on the host target
 * and on x86-64-v3 (8 lanes). Also: binary x binary kernels reduce with
 * popcount and give exact integers, ternary and quantize()d kernels,
 * hadamard() prologues, and an N:M kernel whose block loop does N/M of the
 * multiply-adds of its dense twin (counted in the tiled IR).
 *
 * The list of formats is read from dsl/, so a format added there is
 * tested without touching this file; the test prints them all. */
#include <CUnit/Basic.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compiler/kir.h"
#include "compiler/tir.h"
#include "frontend/frontend.h"
#include "qkc.h"
#include "support/lib_formats.h"
#include "support/rt_test.h"

#define DSL_DIR QKC_SOURCE_DIR "/dsl"
#define MAX_FORMATS 128

static rtt_format formats[MAX_FORMATS];
static int nformats;

/* ---- the library ---- */

static int load_library(void)
{
    int n = rtt_lib_formats(DSL_DIR, formats, MAX_FORMATS);
    nformats = n > 0 ? n : 0;
    return n > 0 ? 0 : -1;
}

/* ---- kernels over one format ---- */

static void kernel_source(const rtt_format *l, char *out, size_t n)
{
    char w[160], book[96];
    rtt_weight_type(l, w, sizeof w, book, sizeof book);
    snprintf(out, n,
             "import \"%s/%s\"\n"
             "kernel gemv(x: f32[K], W: %s[N, K]%s) -> y: f32[N] {\n"
             "  y[n] = sum(k) x[k] * W[n, k]\n"
             "}\n"
             "kernel gemm(x: f32[M, K], W: %s[N, K]%s, b: f32[N]) -> y: f32[M, N] {\n"
             "  y[m, n] = relu(sum(k) x[m, k] * W[n, k] + b[n])\n"
             "}\n",
             DSL_DIR, l->file, w, book, w, book);
}

/* dims by name for the kernels above */
static int64_t dim_of(const char *name, int64_t K)
{
    return strcmp(name, "K") == 0 ? K : strcmp(name, "N") == 0 ? 37 : strcmp(name, "M") == 0 ? 5 : 0;
}

/* Compiles source on ctx, runs kernel kname against the reference; 0 =
 * pass, else prints why. */
static int check_kernel_cfg(qkc_ctx *ctx, const char *source, const char *kname, int64_t K, int threads,
                            const char *config, char **tir, char *why, size_t n)
{
    qkc_program *p = NULL;
    qkc_kernel *k = NULL;
    qkc_kernel_options ko = {.config = config};
    if (qkc_program_create(ctx, source, "lib.qk", &p) != QKC_OK || qkc_kernel_get_ex(p, kname, &ko, &k) != QKC_OK) {
        snprintf(why, n, "compile: %s", qkc_errmsg(ctx));
        qkc_program_destroy(p);
        return 1;
    }
    int64_t dims[8] = {0};
    for (int i = 0; i < qkc_kernel_ndims(k) && i < 8; i++)
        dims[i] = dim_of(qkc_kernel_dim_name(k, i), K);
    rtt_rng r = {0x5eed + (uint64_t)K};
    rtt_args a;
    qkc_launch_options o = {.threads = threads};
    int bad = 1;
    if (rtt_args_make(p, k, dims, &r, &a, why, n) != 0)
        ;
    else if (qkc_reference(k, a.ref, a.n) != QKC_OK)
        snprintf(why, n, "reference: %s", qkc_errmsg(ctx));
    else if (qkc_launch(k, a.t, a.n, &o) != QKC_OK)
        snprintf(why, n, "launch: %s", qkc_errmsg(ctx));
    else
        bad = rtt_compare(&a, why, n);
    if (tir)
        qkc_kernel_emit(k, "tir", tir);
    rtt_args_free(&a);
    qkc_program_destroy(p);
    return bad;
}

static int check_kernel(qkc_ctx *ctx, const char *source, const char *kname, int64_t K, int threads, char *why,
                        size_t n)
{
    return check_kernel_cfg(ctx, source, kname, K, threads, NULL, NULL, why, n);
}

static void test_every_format(void)
{
    CU_ASSERT_EQUAL_FATAL(load_library(), 0);
    CU_ASSERT_FATAL(nformats >= 20);
    const char *targets[] = {"host", "x86-64-v3"};
    int failed = 0;
    printf("\n  %-14s %-14s %6s %8s  %s\n", "format", "file", "block", "bits/w", "gemv gemm gemv+prefetch (host), gemv gemm (x86-64-v3)");
    for (int i = 0; i < nformats; i++) {
        const rtt_format *l = &formats[i];
        char src[2048], why[1024];
        kernel_source(l, src, sizeof src);
        int64_t K = 2 * (int64_t)l->block + 37;
        printf("  %-14s %-14s %6d %8.4f ", l->name, l->file, l->block, l->bpw);
        for (int t = 0; t < 2; t++) {
            qkc_ctx *ctx = NULL;
            qkc_ctx_options opts = {.target = targets[t], .threads = 2};
            CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&opts, &ctx), QKC_OK);
            for (int g = 0; g < 2; g++) {
                int bad = check_kernel(ctx, src, g ? "gemm" : "gemv", K, 1 + g, why, sizeof why);
                printf(" %s", bad ? "FAIL" : "ok");
                if (bad) {
                    fprintf(stderr, "\n%s %s on %s: %s\nsource:\n%s", l->name, g ? "gemm" : "gemv", targets[t], why,
                            src);
                    failed++;
                }
            }
            if (t == 0) { /* the block loop's software prefetch, one line ahead (hints: the same values) */
                int bad = check_kernel_cfg(ctx, src, "gemv", K, 2, "prefetch=64", NULL, why, sizeof why);
                printf(" %s", bad ? "FAIL" : "ok");
                if (bad) {
                    fprintf(stderr, "\n%s gemv prefetch=64: %s\n", l->name, why);
                    failed++;
                }
            }
            qkc_ctx_destroy(ctx);
        }
        printf("\n");
    }
    CU_ASSERT_EQUAL(failed, 0);
}

/* ---- integer dot products ---- */

/* Every format times int8 activations (per block of 32, per row, q8_0):
 * GEMV, GEMM and a quantize()d GEMV under several integer-dot
 * configurations, against the reference. Formats with an integer image
 * (int/uint/offset codes up to 8 bits, ternary, sign bits) must lower to
 * DOT4; the others take the f32 path and must still be right. */
static void test_integer_dot(void)
{
    CU_ASSERT_FATAL(nformats >= 20);
    static const char *const acts[] = {"act_i8_b32", "q8_0", "act_i8_row"};
    static const char *const configs[] = {"idot_bytes=16 kblocks=1 tile_par=1", "idot_bytes=32 kblocks=4 tile_par=4",
                                          "idot_bytes=64 kblocks=2 tile_par=8 tile_inner=2"};
    qkc_ctx *ctx = NULL;
    qkc_ctx_options opts = {.threads = 2, .tuning_db = "", .cache_dir = ""};
    CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&opts, &ctx), QKC_OK);
    int failed = 0, ndot = 0;
    printf("\n  integer dot products (DOT4 in the tiled IR):");
    for (int i = 0; i < nformats; i++) {
        const rtt_format *l = &formats[i];
        if (l->vq)
            continue;
        for (int a = 0; a < 3; a++) {
            char src[2048], why[1024];
            snprintf(src, sizeof src,
                     "import \"%s/%s\"\nimport \"%s/ggml.qk\"\nimport \"%s/ternary.qk\"\n"
                     "kernel gemv(W: %s[N, K], xq: %s[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * xq[k] }\n"
                     "kernel gemm(xq: %s[M, K], W: %s[N, K]) -> y: f32[M, N] { y[m, n] = sum(k) xq[m, k] * W[n, k] }\n"
                     "kernel gq(x: f32[K], W: %s[N, K]) -> y: f32[N] {\n"
                     "  xq[k] = quantize(x[k], %s)\n  y[n] = sum(k) W[n, k] * xq[k]\n}\n",
                     DSL_DIR, l->file, DSL_DIR, DSL_DIR, l->name, acts[a], acts[a], l->name, l->name, acts[a]);
            int64_t B = l->block > 128 ? l->block : 128;
            int64_t K = 2 * B + 37;
            int nc = a == 0 ? 3 : 1;
            for (int c = 0; c < nc; c++)
                for (int g = 0; g < 3; g++) {
                    static const char *const kn[] = {"gemv", "gemm", "gq"};
                    char *tir = NULL;
                    int bad = check_kernel_cfg(ctx, src, kn[g], K, 2, configs[c], &tir, why, sizeof why);
                    int dot = tir && strstr(tir, "dot4");
                    free(tir);
                    if (bad) {
                        fprintf(stderr, "\n%s x %s, %s, config '%s': %s\n", l->name, acts[a], kn[g], configs[c],
                                why);
                        failed++;
                    }
                    if (dot && a == 0 && c == 0 && g == 0) {
                        printf(" %s", l->name);
                        ndot++;
                    }
                }
        }
    }
    printf(" (%d formats)\n", ndot);
    qkc_ctx_destroy(ctx);
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT(ndot >= 20); /* every int/uint/offset/ternary/binary format but N:M and codebooks */
}

/* ---- row-interleaved weights (repack=R) ---- */

/* Checks the row-interleaved layout of kernel k's parameter `param`
 * (rows x cols): the conversion back gives the format's bytes exactly,
 * or, for a layout that grows (base-3 digits as 2-bit codes, N:M codes
 * stored densely: more bytes than the format's own for R rows), bytes
 * whose values are exactly the format's (the canonical encoding of an N:M
 * group with a kept zero may name other positions). */
static int roundtrip(const qkc_program *p, const qkc_kernel *k, const char *format, int param, int64_t rows,
                     int64_t cols, char *why, size_t n)
{
    size_t sb = 0, rb = 0;
    if (qkc_format_size(p, format, rows, cols, &sb) != QKC_OK ||
        qkc_kernel_repacked_size(k, param, rows, cols, &rb) != QKC_OK || rb < sb) {
        snprintf(why, n, "sizes %zu / %zu", sb, rb);
        return 1;
    }
    float *x = malloc((size_t)(rows * cols) * sizeof *x);
    uint8_t *a = malloc(sb), *b = malloc(rb), *c = malloc(sb);
    rtt_rng r = {(uint64_t)rows * 31 + (uint64_t)cols};
    for (int64_t i = 0; i < rows * cols; i++)
        x[i] = (float)rtt_uniform(&r, -1, 1);
    qkc_param_info pi;
    size_t sR = 0, rR = 0;
    int grows = qkc_kernel_param(k, param, &pi) == QKC_OK && pi.repack_rows > 0 &&
                qkc_format_size(p, format, pi.repack_rows, cols, &sR) == QKC_OK &&
                qkc_kernel_repacked_size(k, param, pi.repack_rows, cols, &rR) == QKC_OK && rR > sR;
    int bad = qkc_pack(p, format, x, rows, cols, a, sb) != QKC_OK ||
              qkc_kernel_repack(k, param, a, sb, rows, cols, b, rb) != QKC_OK ||
              qkc_kernel_unrepack(k, param, b, rb, rows, cols, c, sb) != QKC_OK;
    if (!bad && memcmp(a, c, sb) != 0) {
        float *va = malloc((size_t)(rows * cols) * sizeof *va), *vc = malloc((size_t)(rows * cols) * sizeof *vc);
        bad = !grows || qkc_unpack(p, format, a, sb, rows, cols, va) != QKC_OK ||
              qkc_unpack(p, format, c, sb, rows, cols, vc) != QKC_OK ||
              memcmp(va, vc, (size_t)(rows * cols) * sizeof *va) != 0;
        free(va);
        free(vc);
    }
    /* too small a destination is refused */
    bad |= qkc_kernel_repack(k, param, a, sb, rows, cols, b, rb - 1) != QKC_ERR_SHAPE;
    if (bad)
        snprintf(why, n, "round trip of %lld x %lld differs or a bad size was accepted", (long long)rows,
                 (long long)cols);
    free(x);
    free(a);
    free(b);
    free(c);
    return bad;
}

/* One kernel of a layout test: compiles kernel kn of src with config
 * and checks which parameter reads R = rows rows. Returns 1 when it
 * compiled (*fits = 1), 0 when it was refused with a reason naming repack
 * (*fits = 0; the first reason into refusal), -1 when the target's
 * vectors cannot hold the rows (the caller skips this configuration and
 * those after it). A refusal without a reason, or a kernel that compiles
 * where another of the format was refused (or the other way), counts in
 * *failed. */
static int layout_kernel(qkc_ctx *ctx, const char *src, const char *fmt, const char *kn, const char *config, int wi,
                         int rows, int *fits, int *failed, char *refusal, size_t rn)
{
    qkc_program *p = NULL;
    qkc_kernel *k = NULL;
    qkc_kernel_options ko = {.config = config};
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, src, "rp.qk", &p), QKC_OK);
    if (qkc_kernel_get_ex(p, kn, &ko, &k) != QKC_OK) {
        const char *msg = qkc_errmsg(ctx);
        if (strstr(msg, "do not fit the target's vectors")) { /* R = 16 needs 512-bit vectors */
            printf("\n  skipped: %s (%s)", config, msg);
            qkc_program_destroy(p);
            return -1;
        }
        if (*fits == 1 || !strstr(msg, "repack=")) {
            fprintf(stderr, "\n%s %s '%s': %s\n", fmt, kn, config, msg);
            (*failed)++;
        }
        *fits = 0;
        const char *r = strstr(msg, "repack=");
        if (refusal && !refusal[0] && r)
            snprintf(refusal, rn, "%s", strchr(r, ':') ? strchr(r, ':') + 2 : r);
        qkc_program_destroy(p);
        return 0;
    }
    if (*fits == 0) {
        fprintf(stderr, "\n%s %s '%s': compiled where another kernel was refused\n", fmt, kn, config);
        (*failed)++;
    }
    *fits = 1;
    qkc_param_info pi;
    CU_ASSERT_EQUAL(qkc_kernel_param(k, wi, &pi), QKC_OK);
    CU_ASSERT_EQUAL(pi.repack_rows, rows);
    qkc_program_destroy(p);
    return 1;
}

/* Every format that has the layout, times q8_0 activations, with R = 4,
 * 8 and 16 rows per group (16 where vectors are 512 bits): GEMV, a GEMM
 * over M = 5 rows of x (register tiles of 2 and 4 and their remainder),
 * a quantize()d GEMV with a bias and relu, and a GEMV and a GEMM with x
 * quantized in blocks of the weights' block, on N = 37 rows (not a multiple
 * of R) and K = 2 max(B, 128) + 37, against the reference; and the round trip of
 * the layout. A format without the layout must be refused with a reason
 * naming repack, never compiled. */
static void test_row_interleaved(void)
{
    CU_ASSERT_FATAL(nformats >= 20);
    /* software prefetch of the weights (hints only: the same values, and no
     * fault past the weights' last byte): R = 4 1 KiB ahead, R = 8 none,
     * R = 16 the builder's choice (TIR_PREFETCH_AUTO); R = 8 also with a
     * scheduling boundary per row group (fence=1: the same code, in an
     * order LLVM may not mix) */
    static const char *const configs[] = {"repack=4 tile_inner=1 prefetch=1024",
                                          "repack=8 tile_inner=2 prefetch=0 fence=1", "repack=16 tile_inner=4"};
    qkc_ctx *ctx = NULL;
    qkc_ctx_options opts = {.threads = 2, .tuning_db = "", .cache_dir = ""};
    CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&opts, &ctx), QKC_OK);
    int nconf = 3, failed = 0, nfit = 0, nrefused = 0;
    static char refused[8192];
    refused[0] = 0;
    printf("\n  row-interleaved:");
    for (int i = 0; i < nformats; i++) {
        const rtt_format *l = &formats[i];
        if (l->vq)
            continue;
        char src[2048], why[1024];
        snprintf(src, sizeof src,
                 "import \"%s/%s\"\nimport \"%s/ggml.qk\"\n"
                 "kernel gemv(W: %s[N, K], xq: q8_0[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * xq[k] }\n"
                 "kernel gemm(xq: q8_0[M, K], W: %s[N, K]) -> y: f32[M, N] { y[m, n] = sum(k) xq[m, k] * W[n, k] }\n"
                 "kernel gq(x: f32[K], W: %s[N, K], b: f32[N]) -> y: f32[N] {\n"
                 "  xq[k] = quantize(x[k], q8_0)\n  y[n] = relu(sum(k) W[n, k] * xq[k] + b[n])\n}\n"
                 "format xb { code = int8; block = %d; scale = f32 }\n"
                 "kernel gqb(x: f32[K], W: %s[N, K]) -> y: f32[N] {\n"
                 "  xq[k] = quantize(x[k], xb)\n  y[n] = sum(k) W[n, k] * xq[k]\n}\n"
                 "kernel gqbm(x: f32[M, K], W: %s[N, K]) -> y: f32[M, N] {\n"
                 "  xq[m, k] = quantize(x[m, k], xb)\n  y[m, n] = sum(k) xq[m, k] * W[n, k]\n}\n",
                 DSL_DIR, l->file, DSL_DIR, l->name, l->name, l->name,
                 l->block < 64 ? 64 : l->block > 256 ? 256 : l->block, l->name, l->name);
        int64_t B = l->block > 32 ? l->block : 32;
        int64_t K = 2 * (B > 128 ? B : 128) + 37; /* blocks of 32 run 2 per iteration: 4 of those, 1 alone, a tail */
        int fits = -1;
        char refusal[512] = "";
        for (int c = 0; c < nconf; c++)
            for (int g = 0; g < 5; g++) {
                /* gqb, gqbm: x in blocks of 64..256: groups where 2-bit codes are read
                 * in place, and blocks whose integer sub-scales sum in i32 (k-quants) */
                static const char *const kn[] = {"gemv", "gemm", "gq", "gqb", "gqbm"};
                int got = layout_kernel(ctx, src, l->name, kn[g], configs[c], g == 0 ? 0 : 1, 4 << c, &fits, &failed,
                                        refusal, sizeof refusal);
                if (got < 0) {
                    nconf = c;
                    break;
                }
                if (got == 0)
                    continue;
                qkc_program *p = NULL;
                qkc_kernel *k = NULL;
                qkc_kernel_options ko = {.config = configs[c]};
                int bad = check_kernel_cfg(ctx, src, kn[g], K, 2, configs[c], NULL, why, sizeof why);
                if (!bad && g == 0) {
                    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, src, "rp.qk", &p), QKC_OK);
                    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get_ex(p, kn[g], &ko, &k), QKC_OK);
                    bad = roundtrip(p, k, l->name, 0, 37, K, why, sizeof why) ||
                          roundtrip(p, k, l->name, 0, 4 << c, B, why, sizeof why);
                    qkc_program_destroy(p);
                }
                if (bad) {
                    fprintf(stderr, "\n%s %s '%s': %s\n", l->name, kn[g], configs[c], why);
                    failed++;
                }
            }
        if (fits == 1) {
            printf(" %s", l->name);
            nfit++;
        } else {
            snprintf(refused + strlen(refused), sizeof refused - strlen(refused), "\n    %s: %s", l->name, refusal);
            nrefused++;
        }
    }
    printf(" (%d formats)\n  refused (%d):%s\n", nfit, nrefused, refused);
    qkc_ctx_destroy(ctx);
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT(nfit >= 10);
}

/* The layout's f32 form: weights times f32 work (no integer dots), for
 * every format, with R = 4, 8 and 16 (16 where vectors are 512 bits): a
 * GEMV, a GEMV of x times a gain (f32 work of two loads per item) with a
 * bias, and a GEMM over M = 5 rows of x, on N = 37 rows and K = 2 max(B,
 * 128) + 37 (a partial last block), against the reference. The formats
 * whose codes are one part of 1, 2 or 4 bits without sub-block scales or
 * mins must compile (this test names six of them, with a zero field and
 * a min among them); the others are refused with a reason naming repack,
 * never compiled. */
static void test_row_interleaved_f32(void)
{
    static const char *const configs[] = {"repack=4 prefetch=1024", "repack=8 prefetch=0", "repack=16"};
    /* a table, an offset, a minifloat, a min and a zero point */
    static const char *const must[] = {"q4_0", "nf4", "iq4_nl", "mxfp4", "q4_1", "uint1_z32"};
    static const char *const kn[] = {"gemv", "gain", "gemm"};
    qkc_ctx *ctx = NULL;
    qkc_ctx_options opts = {.threads = 2, .tuning_db = "", .cache_dir = ""};
    CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&opts, &ctx), QKC_OK);
    int nconf = 3, failed = 0, nfit = 0, nmust = 0;
    char src[2048], why[1024];
    printf("\n  f32 form:");
    for (const rtt_format *l = formats; l < formats + nformats; l++) {
        if (l->vq) /* codebooks: no f32 form (nor any row-interleaved layout) */
            continue;
        snprintf(src, sizeof src,
                 "import \"%s/%s\"\n"
                 "kernel gemv(W: %s[N, K], x: f32[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * x[k] }\n"
                 "kernel gain(x: f32[K], g: f32[K], W: %s[N, K], b: f32[N]) -> y: f32[N] {\n"
                 "  y[n] = sum(k) (x[k] * g[k]) * W[n, k] + b[n]\n}\n"
                 "kernel gemm(x: f32[M, K], W: %s[N, K]) -> y: f32[M, N] { y[m, n] = sum(k) x[m, k] * W[n, k] }\n",
                 DSL_DIR, l->file, l->name, l->name, l->name);
        int64_t B = l->block > 32 ? l->block : 32;
        int64_t K = 2 * (B > 128 ? B : 128) + 37;
        int fits = -1;
        for (int c = 0; c < nconf; c++)
            for (int g = 0; g < 3; g++) {
                int got = layout_kernel(ctx, src, l->name, kn[g], configs[c], g == 1 ? 2 : g == 2 ? 1 : 0, 4 << c,
                                        &fits, &failed, NULL, 0);
                if (got < 0) {
                    nconf = c;
                    break;
                }
                if (got == 0)
                    continue;
                if (check_kernel_cfg(ctx, src, kn[g], K, 2, configs[c], NULL, why, sizeof why)) {
                    fprintf(stderr, "\n%s %s '%s': %s\n", l->name, kn[g], configs[c], why);
                    failed++;
                }
            }
        for (int m = 0; m < (int)(sizeof must / sizeof must[0]); m++)
            if (!strcmp(l->name, must[m])) {
                nmust++;
                if (fits != 1) {
                    fprintf(stderr, "\n%s: expected to take the f32 form\n", l->name);
                    failed++;
                }
            }
        if (fits == 1) {
            printf(" %s", l->name);
            nfit++;
        }
    }
    printf(" (%d formats)\n", nfit);
    qkc_ctx_destroy(ctx);
    CU_ASSERT_EQUAL(nmust, (int)(sizeof must / sizeof must[0]));
    CU_ASSERT_EQUAL(failed, 0);
}

/* ---- special lowerings ---- */

/* Runs kernel `k` of src on the host and compares; also returns the asm. */
static int run_src(const char *src, const char *kname, int64_t K, char **asm_out)
{
    qkc_ctx *ctx = NULL;
    qkc_ctx_options opts = {.threads = 2};
    if (qkc_ctx_create(&opts, &ctx) != QKC_OK)
        return 1;
    char why[1024] = "";
    int bad = check_kernel(ctx, src, kname, K, 2, why, sizeof why);
    if (bad)
        fprintf(stderr, "\n%s: %s\n%s", kname, why, src);
    if (asm_out) {
        qkc_program *p = NULL;
        qkc_kernel *k = NULL;
        *asm_out = NULL;
        if (qkc_program_create(ctx, src, "x.qk", &p) == QKC_OK && qkc_kernel_get(p, kname, &k) == QKC_OK)
            qkc_kernel_emit(k, "asm", asm_out);
        qkc_program_destroy(p);
    }
    qkc_ctx_destroy(ctx);
    return bad;
}

/* Binary x binary without scales: integer dot products, exact; the code
 * uses popcount. Extents cover the row form's unmasked vector steps, its
 * masked last step and a partial word (1000, 4133), whole words only
 * (1024), and words of per-block scales (the block form, b1s). */
static void test_xnor_popcount(void)
{
    const char *src = "format b1 { code = binary; block = 64 }\n"
                      "format b1r { code = binary; block = 64; scale = f32 per row }\n"
                      "kernel xnor(x: f32[K], W: b1[N, K]) -> y: i32[N] {\n"
                      "  xb[k] = quantize(x[k], b1)\n"
                      "  y[n] = i32(sum(k) xb[k] * W[n, k])\n"
                      "}\n"
                      "format b1s { code = binary; block = 128; scale = f16 }\n"
                      "kernel xnor_scaled(x: f32[M, K], W: b1r[N, K]) -> y: f32[M, N] {\n"
                      "  xb[m, k] = quantize(x[m, k], b1r)\n"
                      "  y[m, n] = sum(k) xb[m, k] * W[n, k]\n"
                      "}\n"
                      "kernel xnor_blocks(x: f32[M, K], W: b1s[N, K]) -> y: f32[M, N] {\n"
                      "  xb[m, k] = quantize(x[m, k], b1s)\n"
                      "  y[m, n] = sum(k) xb[m, k] * W[n, k]\n"
                      "}\n";
    int64_t Ks[] = {64, 100, 1000, 7, 1024, 4133};
    for (int i = 0; i < 6; i++) {
        char *as = NULL;
        CU_ASSERT_EQUAL(run_src(src, "xnor", Ks[i], i == 0 ? &as : NULL), 0);
        if (i == 0) {
            CU_ASSERT_PTR_NOT_NULL(as);
            CU_ASSERT_PTR_NOT_NULL(as ? strstr(as, "popcnt") : NULL);
            free(as);
        }
        CU_ASSERT_EQUAL(run_src(src, "xnor_scaled", Ks[i], NULL), 0);
        CU_ASSERT_EQUAL(run_src(src, "xnor_blocks", Ks[i], NULL), 0);
    }
    /* work items in 1 and 8 streams (the builder's choice is 4) */
    static const char *const streams[] = {"streams=1", "streams=8"};
    for (int i = 0; i < 2; i++) {
        qkc_ctx *ctx = NULL;
        qkc_ctx_options opts = {.threads = 2};
        CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&opts, &ctx), QKC_OK);
        char why[1024] = "";
        int bad = check_kernel_cfg(ctx, src, "xnor_scaled", 1000, 2, streams[i], NULL, why, sizeof why);
        if (bad)
            fprintf(stderr, "\nxnor_scaled '%s': %s\n", streams[i], why);
        CU_ASSERT_EQUAL(bad, 0);
        qkc_ctx_destroy(ctx);
    }
}

/* Ternary weights x int8-quantized activations, unscaled: exact integers. */
static void test_ternary_exact(void)
{
    const char *src = "format t2 { code = ternary; block = 32 }\n"
                      "format a8 { code = int8; block = 32 }\n"
                      "format t2s { code = ternary; block = 128; scale = f32 per tensor }\n"
                      "format a8r { code = int8; block = 128; scale = f32 per row }\n"
                      "kernel tern(x: i8[K], W: t2[N, K]) -> y: i32[N] {\n"
                      "  y[n] = i32(sum(k) x[k] * W[n, k])\n"
                      "}\n"
                      "kernel bitnet(x: f32[M, K], W: t2s[N, K]) -> y: f32[M, N] {\n"
                      "  xq[m, k] = quantize(x[m, k], a8r)\n"
                      "  y[m, n] = sum(k) xq[m, k] * W[n, k]\n"
                      "}\n";
    int64_t Ks[] = {32, 77, 300};
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(run_src(src, "tern", Ks[i], NULL), 0);
        CU_ASSERT_EQUAL(run_src(src, "bitnet", Ks[i], NULL), 0);
    }
}

/* quantize() to q8_0-like blocks and e4m3, and hadamard() prologues. */
static void test_quantize_hadamard(void)
{
    const char *src = "format q8 { code = int8; block = 32; scale = f16 }\n"
                      "format f8 { code = e4m3; block = 32; scale = e8m0 }\n"
                      "format w4 { code = int4; block = 32; scale = f16 }\n"
                      "kernel q8dot(x: f32[M, K], W: w4[N, K]) -> y: f32[M, N] {\n"
                      "  xq[m, k] = quantize(x[m, k], q8)\n"
                      "  y[m, n] = sum(k) xq[m, k] * W[n, k]\n"
                      "}\n"
                      "kernel fp8dot(x: f32[K], W: w4[N, K]) -> y: f32[N] {\n"
                      "  xq[k] = quantize(x[k] * 3, f8)\n"
                      "  y[n] = sum(k) xq[k] * W[n, k]\n"
                      "}\n"
                      "kernel rot(x: f32[M, K], W: w4[N, K]) -> y: f32[M, N] {\n"
                      "  xh[m, k] = hadamard(x[m, k], k, 32, 7)\n"
                      "  y[m, n] = sum(k) xh[m, k] * W[n, k]\n"
                      "}\n"
                      "kernel rotfull(x: f32[K], W: w4[N, K]) -> y: f32[N] {\n"
                      "  xh[k] = hadamard(x[k], k)\n"
                      "  y[n] = sum(k) xh[k] * W[n, k]\n"
                      "}\n";
    int64_t Ks[] = {32, 96, 333};
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL(run_src(src, "q8dot", Ks[i], NULL), 0);
        CU_ASSERT_EQUAL(run_src(src, "fp8dot", Ks[i], NULL), 0);
        if (Ks[i] % 32 == 0)
            CU_ASSERT_EQUAL(run_src(src, "rot", Ks[i], NULL), 0);
    }
    CU_ASSERT_EQUAL(run_src(src, "rotfull", 256, NULL), 0);
}

/* Quantized tensors in any parameter slot and either factor order (a
 * regression: tensor 0 once decoded without its scale). */
static void test_operand_order(void)
{
    const char *src = "format q4 { code = int4; block = 32; scale = f16 }\n"
                      "format t2 { code = ternary; block = 32; scale = f16 }\n"
                      "format s4 { code = int4; block = 32; scale = f16; sparse = 2:4 }\n"
                      "kernel a(W: q4[N, K], x: f32[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * x[k] }\n"
                      "kernel b(W: t2[N, K], x: f32[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * x[k] }\n"
                      "kernel c(W: s4[N, K], x: f32[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * x[k] }\n"
                      "kernel d(V: q4[N, K], W: q4[N, K]) -> y: f32[N] { y[n] = sum(k) V[n, k] * W[n, k] }\n";
    const char *names[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++)
        CU_ASSERT_EQUAL(run_src(src, names[i], 100, NULL), 0);
}

#define COUNT_FMA (-1) /* count_lanes: the multiplies and multiply-adds */

/* Lanes of the nodes of op `op` (COUNT_FMA: FMUL and FMA) in a block and
 * the blocks inside it. */
static int count_lanes(const tir_func *f, int blk, int op)
{
    int n = 0;
    const tir_block *b = &f->blocks[blk];
    for (int i = 0; i < b->n; i++) {
        const tir_node *nd = &f->nodes[b->ids[i]];
        if (op == COUNT_FMA ? nd->op == TIR_FMA || nd->op == TIR_FMUL : (int)nd->op == op)
            n += nd->type.lanes;
        if (nd->op == TIR_LOOP || nd->op == TIR_IF)
            n += count_lanes(f, nd->body, op) + (nd->alt >= 0 ? count_lanes(f, nd->alt, op) : 0);
    }
    return n;
}

static int count_fma(const tir_func *f, int blk)
{
    return count_lanes(f, blk, COUNT_FMA);
}

static int find_loop(const tir_func *f, int blk, const char *name)
{
    const tir_block *b = &f->blocks[blk];
    for (int i = 0; i < b->n; i++) {
        const tir_node *nd = &f->nodes[b->ids[i]];
        if (nd->op == TIR_LOOP && nd->name && strcmp(nd->name, name) == 0)
            return nd->body;
        if (nd->op == TIR_LOOP || nd->op == TIR_IF) {
            int r = find_loop(f, nd->body, name);
            if (r < 0 && nd->alt >= 0)
                r = find_loop(f, nd->alt, name);
            if (r >= 0)
                return r;
        }
    }
    return -1;
}


/* Integer sub-block scales summed in i32 (rowpack_isub) at the edges of
 * the path: 8-bit codes with 8-bit sub-scales and sub-mins (the largest
 * sums the i32 bound admits), 4- and 2-bit sub-mins summed as dots of
 * their words' phases, signed codes whose image offset folds into
 * the dot, and formats that must keep the per-group float path (sums that
 * could pass 2^31 in blocks of 512, a minifloat sub-scale; zero points
 * and signed codes with mins do not combine with sub-block scales). GEMV
 * and GEMM with x quantized in blocks
 * of the weights' block, K ragged (a partial last block), against the
 * reference, with 16 rows per group where vectors are 512 bits. */
/* A GEMV (gqb) and a GEMM (gqbm) of weights in format `w` (defined by
 * fmt) against x quantized to int8 in blocks of B. */
static void gq_source(char *src, size_t n, const char *fmt, int B)
{
    snprintf(src, n,
             "%s\nformat xb { code = int8; block = %d; scale = f32 }\n"
             "kernel gqb(x: f32[K], W: w[N, K]) -> y: f32[N] {\n"
             "  xq[k] = quantize(x[k], xb)\n  y[n] = sum(k) W[n, k] * xq[k]\n}\n"
             "kernel gqbm(x: f32[M, K], W: w[N, K]) -> y: f32[M, N] {\n"
             "  xq[m, k] = quantize(x[m, k], xb)\n  y[m, n] = sum(k) xq[m, k] * W[n, k]\n}\n",
             fmt, B);
}

static void test_int_subscales(void)
{
    static const char *const fmts[] = {
        "format w { code = uint8; block = 256; scale = f16 * uint8 per 16; min = -f16 * uint8 }",
        "format w { code = int4; block = 128; scale = f16 * uint3 per 32 }",
        "format w { code = uint8; block = 512; scale = f16 * uint8 per 32; min = -f16 * uint8 }",
        "format w { code = uint4; block = 64; scale = f16 * e4m3 per 16 }",
        /* sub-mins of 4 and 2 bits, 8 and 16 to a row's word in the
         * row-interleaved layout: their sums as dots of 2 and 4 phases
         * (rowpack_mins; q2_K is the first) */
        "format w { code = uint2; block = 256; scale = f16 * uint4 per 16; min = -f16 * uint4 }",
        "format w { code = uint4; block = 256; scale = f16 * uint2 per 16; min = -f16 * uint2 }",
    };
    qkc_ctx *ctx = NULL;
    qkc_ctx_options opts = {.threads = 2, .tuning_db = "", .cache_dir = ""};
    CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&opts, &ctx), QKC_OK);
    int failed = 0, ran = 0;
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        int B = i == 1 ? 128 : i == 2 ? 512 : i == 3 ? 64 : 256;
        char src[2048], why[1024];
        gq_source(src, sizeof src, fmts[i], B);
        for (int g = 0; g < 2; g++)
            for (int c = 0; c < 2; c++) {
                const char *cfg = c ? "repack=16 tile_inner=4" : "repack=8 tile_inner=2";
                int bad = check_kernel_cfg(ctx, src, g ? "gqbm" : "gqb", 3 * B + 19, 2, cfg, NULL, why, sizeof why);
                if (bad && strstr(why, "do not fit the target's vectors")) {
                    printf("\n  skipped: %s (%s)", cfg, why);
                    continue;
                }
                if (bad) {
                    fprintf(stderr, "\n%s %s '%s': %s\n", fmts[i], g ? "gqbm" : "gqb", cfg, why);
                    failed++;
                }
                ran++;
            }
    }
    printf("\n  %d kernels vs the reference\n", ran);
    qkc_ctx_destroy(ctx);
    CU_ASSERT(ran >= 12);
    CU_ASSERT_EQUAL(failed, 0);
}
/* Integer images wider than a byte (tdec_image.planes): table codes whose
 * integer values span more than 256 take one integer dot per byte of
 * their image. wide2 (two bytes; the bytes' dots and the offset summed in
 * i32), wide3 (three bytes, offset -70000, blocks of 256: each byte's dot
 * scaled in f32, the offset's sum(s) term in f32) and wide3p (three bytes,
 * no offset, blocks of 32) and wide4 (four bytes: integers times 2^-2
 * spanning 2^30, as nf4's span 2^28), in the format's own layout (three chunk
 * widths) and row-interleaved (4, 8, 16 rows), GEMV with q8_0 and
 * quantize()d blocks of 256, on N = 37 and a ragged K, against the
 * reference; each must lower to DOT4. */
static void test_wide_images(void)
{
    static const char *const fmts =
        "format wide2 { code = table [-448, -300, -97, -64, -33, -1, 0, 1, 2, 5, 17, 63, 129, 255, 300, 448];"
        " block = 32; scale = f16 }\n"
        "format wide3 { code = table [-70000, -65537, -40000, -257, -256, -1, 0, 1, 3, 255, 256, 4097, 33333,"
        " 65535, 65536, 90000]; block = 256; scale = f32 }\n"
        "format wide3p { code = table [0, 1, 2, 255, 256, 257, 1000, 4096, 65535, 65536, 65537, 100000, 131071,"
        " 150000, 199999, 200000]; block = 32; scale = f16 }\n"
        "format wide4 { code = table [-20000000, -16777218, -65537, -1, -0.25, 0, 0.5, 1, 3, 255, 65536, 16777218,"
        " 100000000, 200000000, 250000000, 268435456]; block = 64; scale = f16 }\n"
        "format xb { code = int8; block = 256; scale = f32 }\n";
    static const char *const names[] = {"wide2", "wide3", "wide3p", "wide4"};
    static const char *const configs[] = {"idot_bytes=16 kblocks=1 tile_par=1", "idot_bytes=32 kblocks=4 tile_par=4",
                                          "idot_bytes=64 kblocks=2 tile_par=8 tile_inner=2", "repack=4 tile_inner=1",
                                          "repack=8 tile_inner=2", "repack=16 tile_inner=4"};
    qkc_ctx *ctx = NULL;
    qkc_ctx_options opts = {.threads = 2, .tuning_db = "", .cache_dir = ""};
    CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&opts, &ctx), QKC_OK);
    int failed = 0, ran = 0;
    printf("\n ");
    for (int f = 0; f < 4; f++) {
        char src[2048], why[1024];
        snprintf(src, sizeof src,
                 "import \"%s/ggml.qk\"\n%s"
                 "kernel gemv(W: %s[N, K], xq: q8_0[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * xq[k] }\n"
                 "kernel gqb(x: f32[K], W: %s[N, K]) -> y: f32[N] {\n"
                 "  xq[k] = quantize(x[k], xb)\n  y[n] = sum(k) W[n, k] * xq[k]\n}\n",
                 DSL_DIR, fmts, names[f], names[f]);
        for (int c = 0; c < 6; c++)
            for (int g = 0; g < 2; g++) {
                static const char *const kn[] = {"gemv", "gqb"};
                char *tir = NULL;
                int bad = check_kernel_cfg(ctx, src, kn[g], 2 * 256 + 37, 2, configs[c], &tir, why, sizeof why);
                if (!bad && !(tir && strstr(tir, "dot4")))
                    snprintf(why, sizeof why, "no dot4 in the tiled IR"), bad = 1;
                free(tir);
                if (bad && c == 5 && strstr(why, "do not fit the target's vectors")) {
                    printf(" skipped: repack=16 (%s)", why);
                    continue;
                }
                if (bad) {
                    fprintf(stderr, "\n%s %s '%s': %s\n", names[f], kn[g], configs[c], why);
                    failed++;
                } else
                    ran++;
            }
    }
    printf(" %d kernels vs the reference\n", ran);
    qkc_ctx_destroy(ctx);
    CU_ASSERT(ran >= 40);
    CU_ASSERT_EQUAL(failed, 0);
}

/* N:M weights against int8 activations: the integer dot path reads them
 * densely, pruned elements as the image of 0 (u = -off: 8 for int4, 128
 * for int8, 0 for uint4), in chunks of whole groups; a zero point keeps
 * the f32 path. GEMV and GEMM on a ragged K, two chunk widths. */
static void test_nm_idot(void)
{
    static const struct {
        const char *fmt;
        int B, dot;
    } fs[] = {
        {"format w { code = int4; block = 32; scale = f16; sparse = 2:4 }", 32, 1},
        {"format w { code = uint4; block = 64; scale = f16; sparse = 1:4 }", 64, 1},
        {"format w { code = int8; block = 64; scale = f32; sparse = 4:8 }", 64, 1},
        {"format w { code = int3; block = 32; scale = f16; sparse = 2:4 }", 32, 1},
        {"format w { code = uint4; block = 32; scale = f16; zero = f16; sparse = 2:4 }", 32, 0},
    };
    qkc_ctx *ctx = NULL;
    qkc_ctx_options opts = {.threads = 2, .tuning_db = "", .cache_dir = ""};
    CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&opts, &ctx), QKC_OK);
    int failed = 0, ran = 0;
    for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) {
        char src[2048], why[1024];
        gq_source(src, sizeof src, fs[i].fmt, fs[i].B);
        for (int g = 0; g < 2; g++)
            for (int c = 0; c < 2; c++) {
                char *tir = NULL;
                const char *cfg = c ? "idot_bytes=64" : NULL;
                int bad = check_kernel_cfg(ctx, src, g ? "gqbm" : "gqb", 3 * fs[i].B + 20, 2, cfg, &tir, why, sizeof why);
                int dot = tir && strstr(tir, "dot4");
                if (!bad && dot != fs[i].dot)
                    snprintf(why, sizeof why, "dot4 %s", dot ? "where a zero point must keep f32" : "missing");
                if (bad || dot != fs[i].dot) {
                    fprintf(stderr, "\n%s %s %s: %s\n", fs[i].fmt, g ? "gqbm" : "gqb", cfg ? cfg : "default", why);
                    failed++;
                }
                free(tir);
                ran++;
            }
    }
    printf("\n  %d kernels vs the reference\n", ran);
    qkc_ctx_destroy(ctx);
    CU_ASSERT_EQUAL(ran, 20);
    CU_ASSERT_EQUAL(failed, 0);
}

/* Sign-magnitude codes on the int8 dot path (tdec_int_image_sgn: e4m3's
 * magnitudes in three table planes, the sign bit negating x's byte), in
 * the row-interleaved layout of 16 rows where a 128-byte table is one
 * vpermi2b (AVX-512 VBMI; skipped elsewhere, saying so). x quantize()d
 * with an e8m0 scale never holds -128: GEMV and GEMM (two register
 * tiles) against the reference on N = 37, a ragged K, lowering to DOT4.
 * q8_0's f16 scale can give -128: such a kernel is refused, never
 * compiled, with a message that says what x needs. Then NaN codes (0x7F in row 3, 0xFF in row 20) make exactly
 * those rows NaN, as in the reference, and 0xFF in row 9's padding past
 * K changes nothing. */
static void test_sign_magnitude(void)
{
    char src[1024], why[1024];
    snprintf(src, sizeof src,
             "import \"%s/mx.qk\"\nimport \"%s/ggml.qk\"\n"
             "format xe { code = int8; block = 32; scale = e8m0 }\n"
             "kernel gqe(W: mxfp8_e4m3[N, K], x: f32[K]) -> y: f32[N] {\n"
             "  xq[k] = quantize(x[k], xe)\n  y[n] = sum(k) W[n, k] * xq[k]\n}\n"
             "kernel gqem(x: f32[M, K], W: mxfp8_e4m3[N, K]) -> y: f32[M, N] {\n"
             "  xq[m, k] = quantize(x[m, k], xe)\n  y[m, n] = sum(k) xq[m, k] * W[n, k]\n}\n"
             "kernel gq8(W: mxfp8_e4m3[N, K], x: f32[K]) -> y: f32[N] {\n"
             "  xq[k] = quantize(x[k], q8_0)\n  y[n] = sum(k) W[n, k] * xq[k]\n}\n",
             DSL_DIR, DSL_DIR);
#if defined(__x86_64__)
    int vbmi = __builtin_cpu_supports("avx512vbmi");
#else
    int vbmi = 0;
#endif
    if (!vbmi) {
        printf("\n  skipped: the host has no AVX-512 VBMI (128-byte tables in one vpermi2b)");
        return;
    }
    qkc_ctx *ctx = NULL;
    qkc_ctx_options opts = {.threads = 2, .tuning_db = "", .cache_dir = ""};
    CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&opts, &ctx), QKC_OK);
    static const char *const cfgs[] = {"repack=16 tile_inner=4", "repack=16 tile_inner=2 tile_par=32"};
    int failed = 0, ran = 0;
    for (int c = 0; c < 2; c++)
        for (int g = 0; g < 2; g++) {
            char *tir = NULL;
            int bad = check_kernel_cfg(ctx, src, g ? "gqem" : "gqe", 301, 2, cfgs[c], &tir, why, sizeof why);
            if (!bad && !(tir && strstr(tir, "dot4")))
                snprintf(why, sizeof why, "no dot4 in the tiled IR"), bad = 1;
            free(tir);
            if (bad) {
                fprintf(stderr, "\n%s '%s': %s\n", g ? "gqem" : "gqe", cfgs[c], why);
                failed++;
            }
            ran++;
        }
    qkc_program *p = NULL;
    qkc_kernel *k = NULL;
    qkc_kernel_options ko = {.config = "repack=16"};
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, src, "sm.qk", &p), QKC_OK);
    CU_ASSERT_NOT_EQUAL(qkc_kernel_get_ex(p, "gq8", &ko, &k), QKC_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(qkc_errmsg(ctx), "e8m0 block scale"));
    /* NaN codes: mxfp8_e4m3 rows are blocks of [e8m0 scale][32 codes] */
    enum { N = 37, K = 301, KB = 32 };
    size_t sb = 0, rb = 0;
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get_ex(p, "gqe", &ko, &k), QKC_OK);
    CU_ASSERT_EQUAL_FATAL(qkc_format_size(p, "mxfp8_e4m3", N, K, &sb), QKC_OK);
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_repacked_size(k, 0, N, K, &rb), QKC_OK);
    float *w = malloc(N * K * sizeof *w), *x = malloc(K * sizeof *x), *y = malloc(N * sizeof *y),
          *yr = malloc(N * sizeof *yr), *back = malloc(N * K * sizeof *back);
    uint8_t *a = malloc(sb), *b = malloc(rb);
    rtt_rng r = {0x5a9e};
    for (int i = 0; i < N * K; i++)
        w[i] = (float)rtt_uniform(&r, -1, 1);
    for (int i = 0; i < K; i++)
        x[i] = (float)rtt_uniform(&r, -1, 1);
    CU_ASSERT_EQUAL_FATAL(qkc_pack(p, "mxfp8_e4m3", w, N, K, a, sb), QKC_OK);
    size_t row = sb / N;
    a[3 * row + (100 / KB) * (KB + 1) + 1 + 100 % KB] = 0x7F;
    a[20 * row + (7 / KB) * (KB + 1) + 1 + 7 % KB] = 0xFF;
    a[9 * row + (310 / KB) * (KB + 1) + 1 + 310 % KB] = 0xFF; /* padding: K = 301 */
    CU_ASSERT_EQUAL_FATAL(qkc_unpack(p, "mxfp8_e4m3", a, sb, N, K, back), QKC_OK);
    CU_ASSERT(isnan(back[3 * K + 100]) && isnan(back[20 * K + 7]) && !isnan(back[9 * K + 300]));
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_repack(k, 0, a, sb, N, K, b, rb), QKC_OK);
    qkc_tensor args[3] = {{b, QKC_PACKED, 2, {N, K}, {0}}, {x, QKC_F32, 1, {K}, {0}}, {y, QKC_F32, 1, {N}, {0}}};
    qkc_launch_options lo = {.threads = 2};
    CU_ASSERT_EQUAL_FATAL(qkc_launch(k, args, 3, &lo), QKC_OK);
    args[2].data = yr;
    CU_ASSERT_EQUAL_FATAL(qkc_reference(k, args, 3), QKC_OK);
    int nan_rows = 0, off = 0;
    for (int n = 0; n < N; n++) {
        int want = n == 3 || n == 20;
        nan_rows += isnan(y[n]) && isnan(yr[n]) && want;
        off += isnan(y[n]) != want || isnan(yr[n]) != want ||
               (!want && fabsf(y[n] - yr[n]) > 1e-4f * (1 + fabsf(yr[n])));
    }
    CU_ASSERT_EQUAL(nan_rows, 2);
    CU_ASSERT_EQUAL(off, 0);
    free(w), free(x), free(y), free(yr), free(back), free(a), free(b);
    qkc_program_destroy(p);
    printf("\n  %d kernels vs the reference, NaN rows %d of 2", ran, nan_rows);
    qkc_ctx_destroy(ctx);
    CU_ASSERT_EQUAL(ran, 4);
    CU_ASSERT_EQUAL(failed, 0);
}

/* Lanes of op `op` (count_lanes) per full block of one kernel (tiled IR
 * for the host, or for the named target); -1 when it does not build. */
static int block_lanes(const char *src, const char *target, int op)
{
    qk_target t;
    if (!target)
        qk_target_host(&t);
    else if (qk_target_named(target, &t) != 0)
        return -1;
    qk_diags d;
    qk_diags_init(&d);
    kir_program *p = qk_frontend_compile(src, strlen(src), "nm.qk", DSL_DIR, &d);
    if (!p) {
        qk_diags_free(&d);
        return -1;
    }
    tir_config cfg;
    tir_default_config(&t, &cfg);
    cfg.tile_par = cfg.tile_inner = 1;
    qk_arena *a = qk_arena_new();
    char err[512];
    tir_func *f = tir_build(a, p->kernels[0], &t, &cfg, err, sizeof err);
    int body = f ? find_loop(f, f->entry, "kb") : -1;
    int n = body >= 0 ? count_lanes(f, body, op) : -1;
    qk_arena_free(a);
    kir_program_free(p);
    qk_diags_free(&d);
    return n;
}

static int block_fmas(const char *src)
{
    return block_lanes(src, NULL, COUNT_FMA);
}

/* Two sums over the same weights (scaled once per block through their
 * partial sums) decode each chunk of them once, as one sum does; both
 * match the reference. */
static void test_shared_decode(void)
{
    const char *one = "import \"" DSL_DIR "/mx.qk\"\n"
                      "kernel g(W: mxfp8_e4m3[N, K], x: f32[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * x[k] }\n";
    const char *two = "import \"" DSL_DIR "/mx.qk\"\n"
                      "kernel g(W: mxfp8_e4m3[N, K], x: f32[K], z: f32[K]) -> y: f32[N] {\n"
                      "  y[n] = sum(k) W[n, k] * x[k] + sum(k) W[n, k] * z[k]\n}\n";
    int h1 = block_lanes(one, NULL, TIR_H2F), h2 = block_lanes(two, NULL, TIR_H2F);
    printf("\n  binary16 conversions per block of 32: one sum %d, two sums %d\n", h1, h2);
    CU_ASSERT(h1 > 0 && h2 == h1);
    CU_ASSERT_EQUAL(run_src(one, "g", 32 * 5 + 7, NULL), 0);
    CU_ASSERT_EQUAL(run_src(two, "g", 32 * 5 + 7, NULL), 0);
}

static void test_sparse_work(void)
{
    const char *dense = "format d4 { code = int4; block = 64; scale = f16 }\n"
                        "kernel g(x: f32[K], W: d4[N, K]) -> y: f32[N] { y[n] = sum(k) x[k] * W[n, k] }\n";
    const char *sp24 = "format s4 { code = int4; block = 64; scale = f16; sparse = 2:4 }\n"
                       "kernel g(x: f32[K], W: s4[N, K]) -> y: f32[N] { y[n] = sum(k) x[k] * W[n, k] }\n";
    const char *sp14 = "format s4 { code = int4; block = 64; scale = f16; sparse = 1:4 }\n"
                       "kernel g(x: f32[K], W: s4[N, K]) -> y: f32[N] { y[n] = sum(k) x[k] * W[n, k] }\n";
    const char *tern = "format t { code = ternary; block = 64; scale = f16 }\n"
                       "kernel g(x: f32[K], W: t[N, K]) -> y: f32[N] { y[n] = sum(k) x[k] * W[n, k] }\n";
    int ft = block_fmas(tern);
    printf("\n  ternary x f32: multiply-add lanes per block of 64: %d (the block scale, once)\n", ft);
    CU_ASSERT(ft == 16);
    CU_ASSERT_EQUAL(run_src(tern, "g", 64 * 3 + 10, NULL), 0);
    int fd = block_fmas(dense), f24 = block_fmas(sp24), f14 = block_fmas(sp14);
    printf("\n  multiply and multiply-add lanes per block of 64, host: dense %d, 2:4 %d, 1:4 %d\n", fd, f24, f14);
    /* dense: one multiply-add per element into the block's partial sum,
     * and its scale once (16 lanes). A CPU reads N:M weights densely
     * (expanded in registers, x read in place rather than gathered at the
     * kept items), so 2:4 and 1:4 do the dense kernel's work. */
    CU_ASSERT(fd == 64 + 16);
    CU_ASSERT(f24 == fd);
    CU_ASSERT(f14 == fd);
    CU_ASSERT(block_lanes(sp24, NULL, TIR_GATHER) == 0 && block_lanes(sp14, NULL, TIR_GATHER) == 0);
    /* A GPU drives the loop by the kept items and gathers x there (one
     * lane per thread) */
    int g24 = block_lanes(sp24, "sm_90", TIR_GATHER), g14 = block_lanes(sp14, "sm_90", TIR_GATHER);
    printf("  gathered lanes per block of 64 for sm_90: 2:4 %d, 1:4 %d (host: none)\n", g24, g14);
    CU_ASSERT(g24 > 0 && g14 > 0);
    CU_ASSERT_EQUAL(run_src(sp24, "g", 64 * 3 + 10, NULL), 0);
    CU_ASSERT_EQUAL(run_src(sp14, "g", 64 * 2 + 3, NULL), 0);
}

#ifndef QKC_PTXAS
#define QKC_PTXAS ""
#endif

/* ptxas -arch=sm_<sm> on ptx: its exit status. */
static int ptxas(const char *ptx, int sm)
{
    char path[] = "/tmp/qkc_test_lib_XXXXXX.ptx";
    int fd = mkstemps(path, 4);
    if (fd < 0)
        return -1;
    ssize_t len = (ssize_t)strlen(ptx);
    int ok = write(fd, ptx, (size_t)len) == len;
    close(fd);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' -arch=sm_%d '%s' -o /dev/null", QKC_PTXAS, sm, path);
    int st = ok ? system(cmd) : -1;
    unlink(path);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Every library format's GEMV and GEMM through NVRTC to PTX that ptxas
 * accepts, for sm_80 and sm_90. */
static void test_every_format_ptx(void)
{
    if (!*QKC_PTXAS || access(QKC_PTXAS, X_OK) != 0) {
        printf("\n  skipped: no CUDA toolkit (ptxas not found)\n");
        return;
    }
    if (nformats == 0)
        CU_ASSERT_EQUAL_FATAL(load_library(), 0);
    const int sms[] = {80, 90};
    int failed = 0, checked = 0;
    for (int t = 0; t < 2; t++) {
        char tname[16];
        snprintf(tname, sizeof tname, "sm_%d", sms[t]);
        qkc_ctx *ctx = NULL;
        qkc_ctx_options opts = {.target = tname};
        CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&opts, &ctx), QKC_OK);
        for (int i = 0; i < nformats; i++) {
            char src[2048];
            kernel_source(&formats[i], src, sizeof src);
            qkc_program *p = NULL;
            CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, src, "lib.qk", &p), QKC_OK);
            for (int g = 0; g < 2; g++) {
                qkc_kernel *k = NULL;
                char *ptx = NULL;
                if (qkc_kernel_get(p, g ? "gemm" : "gemv", &k) != QKC_OK ||
                    qkc_kernel_emit(k, "ptx", &ptx) != QKC_OK) {
                    const char *m = qkc_errmsg(ctx);
                    if (strstr(m, "NVRTC")) {
                        printf("\n  skipped: no CUDA toolkit (%s)\n", m);
                        qkc_program_destroy(p);
                        qkc_ctx_destroy(ctx);
                        return;
                    }
                    fprintf(stderr, "\n%s on %s: %s\n", formats[i].name, tname, m);
                    failed++;
                    continue;
                }
                if (ptxas(ptx, sms[t]) != 0) {
                    fprintf(stderr, "\n%s %s: ptxas rejects the PTX for %s\n", formats[i].name, g ? "gemm" : "gemv",
                            tname);
                    failed++;
                }
                checked++;
                free(ptx);
            }
            qkc_program_destroy(p);
        }
        qkc_ctx_destroy(ctx);
    }
    printf("\n  %d kernels (%d formats x GEMV/GEMM x sm_80/sm_90) accepted by ptxas\n", checked - failed, nformats);
    CU_ASSERT_EQUAL(failed, 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("library", NULL, NULL);
    CU_add_test(s, "every dsl/ format: GEMV and GEMM vs the reference", test_every_format);
    CU_add_test(s, "int8 activations: integer dot products vs the reference", test_integer_dot);
    CU_add_test(s, "row-interleaved weights (repack=R) vs the reference", test_row_interleaved);
    CU_add_test(s, "row-interleaved weights times f32 work (the f32 form) vs the reference", test_row_interleaved_f32);
    CU_add_test(s, "integer sub-block scales summed in i32, and the formats that keep floats", test_int_subscales);
    CU_add_test(s, "binary x binary: popcount, exact", test_xnor_popcount);
    CU_add_test(s, "ternary: exact integers, BitNet-style", test_ternary_exact);
    CU_add_test(s, "quantize() and hadamard()", test_quantize_hadamard);
    CU_add_test(s, "quantized operands in any slot and order", test_operand_order);
    CU_add_test(s, "N:M: dense on a CPU, in proportion to N/M on a GPU", test_sparse_work);
    CU_add_test(s, "two sums over the same weights decode them once", test_shared_decode);
    CU_add_test(s, "N:M against int8 activations: integer dots over dense expansions", test_nm_idot);
    CU_add_test(s, "integer images wider than a byte: one dot per byte", test_wide_images);
    CU_add_test(s, "sign-magnitude codes (e4m3): the sign on x's byte, NaN rows", test_sign_magnitude);
    CU_add_test(s, "every dsl/ format through NVRTC and ptxas", test_every_format_ptx);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}
