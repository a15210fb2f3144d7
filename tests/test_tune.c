/* test_tune.c — the autotuner's cost model and candidate search
 * (compiler/tune.h): every configuration the tuner can pick still matches
 * the reference.
 *
 * For a GEMV and a small GEMM over every format of dsl/ (and a GEMV whose
 * activations are quantize()d, so the integer DOT4 path and idot_bytes
 * are exercised) the candidates of tune_candidates — one per distinct
 * code — are compiled through qkc_kernel_get_ex with their configuration
 * text and compared with the reference interpreter on ragged shapes
 * (N = 37, K = 2 blocks + 37, M = 5). Which candidates run is a budget
 * (compiles cost 0.05 s to 3 s each; the test stays near a minute on two
 * cores): q4_0 and tq2_0 every candidate of the three kernels, q4_K the
 * model's best 6 and last 2 of each, every other format the best 3 and
 * the last 1 of its GEMV and GEMM. QKC_TEST_TUNE_ALL=1 runs every
 * candidate of every format (tens of minutes); QKC_TEST_TUNE_FORMATS=a,b
 * only those formats. Each format runs in a child process (two at once),
 * so a compiler crash names its format and the others still run.
 *
 * Also: the rank correlation on known series, at least one legal
 * candidate always, configuration text round trips, what the search
 * varies per kernel, the model's basic preferences, and the kernel hash
 * of tuning records is the runtime's. */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compiler/tir_decode.h"
#include "compiler/tune.h"
#include "qkc.h"
#include "runtime/runtime.h"
#include "support/rt_test.h"


#define LIBRARY                                                                                                        \
    "import basic\nimport ggml\nimport mx\nimport nv\nimport codebook\nimport ternary\nimport sparse\nimport "         \
    "binary\n"
#define MAX_CANDS 1024
#define MAX_FORMATS 128

/* How many of the model's best and worst candidates of each kernel run
 * (see the header comment). */
typedef struct plan {
    int top, last, kernels; /* kernels: gemv, gemm (, qgemv for integer codes) */
    const char *what;
} plan;

static const struct {
    const char *name;
    plan p;
} special[] = {
    {"q4_0", {1 << 20, 0, 3, "all"}},
    {"tq2_0", {1 << 20, 0, 3, "all"}},
    {"q4_K", {6, 2, 3, "best 6 + last 2"}}, /* ~1-3 s per compile: all of them take minutes */
};

typedef struct lib_format {
    char name[64];
    int block, vq, books, bits, dim, integer;
} lib_format;

static lib_format formats[MAX_FORMATS];
static int nformats;
static qkc_ctx *ctx;

static plan plan_for(const lib_format *l)
{
    if (getenv("QKC_TEST_TUNE_ALL")) /* the exhaustive run: every candidate of every format */
        return (plan){1 << 20, 0, l->integer ? 3 : 2, "all"};
    for (int i = 0; i < QK_COUNT(special); i++)
        if (strcmp(special[i].name, l->name) == 0) {
            plan p = special[i].p;
            p.kernels = l->integer ? p.kernels : 2;
            return p;
        }
    return (plan){3, 1, 2, ""};
}

/* Every format the library imports define. */
static int load_library(void)
{
    qkc_program *p = NULL;
    if (qkc_program_create(ctx, LIBRARY, "lib.qk", &p) != QKC_OK) {
        fprintf(stderr, "%s\n", p ? qkc_program_diagnostics_text(p) : qkc_errmsg(ctx));
        qkc_program_destroy(p);
        return -1;
    }
    const kir_program *kp = rt_program_kir(p);
    for (int i = 0; kp && i < kp->nformats && nformats < MAX_FORMATS; i++) {
        const qk_format *f = kp->formats[i];
        lib_format *l = &formats[nformats++];
        snprintf(l->name, sizeof l->name, "%s", f->name);
        l->block = f->block;
        l->vq = f->code == QK_CODE_VQ;
        l->books = f->vq_books;
        l->bits = f->bits;
        l->dim = f->vq_dim;
        l->integer = f->code == QK_CODE_SINT || f->code == QK_CODE_UINT || f->code == QK_CODE_OFFSET ||
                     f->code == QK_CODE_TERNARY;
    }
    qkc_program_destroy(p);
    return 0;
}

/* gemv, gemm, and (integer formats) qgemv: int8-quantized activations
 * in blocks of the weights' size, so both operands have integer codes. */
static void kernel_source(const lib_format *l, char *out, size_t n)
{
    char w[160], book[96] = "";
    if (l->vq) {
        snprintf(w, sizeof w, "%s(C)", l->name);
        if (l->books > 1)
            snprintf(book, sizeof book, ", C: f16[%d, %d, %d]", l->books, 1 << l->bits, l->dim);
        else
            snprintf(book, sizeof book, ", C: f16[%d, %d]", 1 << l->bits, l->dim);
    } else
        snprintf(w, sizeof w, "%s", l->name);
    snprintf(out, n,
             LIBRARY "format act8 { code = int8; block = %d; scale = f32 }\n"
                     "kernel gemv(x: f32[K], W: %s[N, K]%s) -> y: f32[N] {\n"
                     "  y[n] = sum(k) W[n, k] * x[k]\n"
                     "}\n"
                     "kernel gemm(x: f32[M, K], W: %s[N, K]%s) -> y: f32[M, N] {\n"
                     "  y[m, n] = sum(k) x[m, k] * W[n, k]\n"
                     "}\n"
                     "kernel qgemv(x: f32[K], W: %s[N, K]%s) -> y: f32[N] {\n"
                     "  xq[k] = quantize(x[k], act8)\n"
                     "  y[n] = sum(k) xq[k] * W[n, k]\n"
                     "}\n",
             l->block, w, book, w, book, w, book);
}

static int64_t dim_of(const char *name, int64_t K)
{
    return strcmp(name, "K") == 0 ? K : strcmp(name, "N") == 0 ? 37 : strcmp(name, "M") == 0 ? 5 : 0;
}

/* The model's dims (what it ranks for): N = K = 4096, M = 64. */
static void model_dims(const kir_kernel *k, int64_t *dims)
{
    for (int i = 0; i < k->nsyms; i++)
        dims[i] = strcmp(k->syms[i], "M") == 0 ? 64 : 4096;
}

typedef struct check_ctx {
    qkc_program *p;
    const char *kname;
    rtt_args args;
    int have_args;
    int64_t K;
    int failed, run;
} check_ctx;

/* One configuration: compile, launch on the ragged shape, compare. */
static void check_config(check_ctx *c, const lib_format *l, const tir_config *cfg)
{
    char text[256], why[1024] = "";
    tir_config_print(cfg, text, sizeof text);
    qkc_kernel_options o = {.dims = "N=4096,K=4096,M=64", .threads = 2, .config = text};
    qkc_kernel *k = NULL;
    c->run++;
    if (qkc_kernel_get_ex(c->p, c->kname, &o, &k) != QKC_OK) {
        snprintf(why, sizeof why, "compile: %s", qkc_errmsg(ctx));
    } else if (!c->have_args) {
        int64_t dims[8] = {0};
        for (int i = 0; i < qkc_kernel_ndims(k) && i < 8; i++)
            dims[i] = dim_of(qkc_kernel_dim_name(k, i), c->K);
        rtt_rng r = {0x7a4e + (uint64_t)c->K};
        if (rtt_args_make(c->p, k, dims, &r, &c->args, why, sizeof why) == 0) {
            c->have_args = 1;
            if (qkc_reference(k, c->args.ref, c->args.n) != QKC_OK)
                snprintf(why, sizeof why, "reference: %s", qkc_errmsg(ctx));
        }
    }
    if (!why[0]) {
        qkc_launch_options lo = {.threads = 2};
        rtt_args_clear_results(&c->args);
        if (qkc_launch(k, c->args.t, c->args.n, &lo) != QKC_OK)
            snprintf(why, sizeof why, "launch: %s", qkc_errmsg(ctx));
        else
            rtt_compare(&c->args, why, sizeof why);
    }
    if (why[0]) {
        fprintf(stderr, "\n  FAIL %s %s [%s]: %s\n", l->name, c->kname, text, why);
        c->failed++;
    }
}

/* The planned candidates of one kernel of one format. Returns the
 * number that failed. */
static int check_kernel(qkc_program *p, const lib_format *l, const char *kname, plan pl, int *run, int *total)
{
    const kir_kernel *k = kir_find_kernel(rt_program_kir(p), kname);
    if (!k)
        return 1;
    tir_config base;
    tir_default_config(&ctx->target, &base);
    tir_apply_schedule(k, &base);
    int64_t dims[16];
    model_dims(k, dims);
    tune_cand *cands = malloc(MAX_CANDS * sizeof *cands);
    int n = cands ? tune_candidates(k, &ctx->target, &base, dims, 2, NULL, cands, MAX_CANDS) : 0;
    check_ctx c = {.p = p, .kname = kname, .K = 2 * (int64_t)l->block + 37};
    for (int i = 0; i < n; i++)
        if (i < pl.top || i >= n - pl.last)
            check_config(&c, l, &cands[i].cfg);
    if (c.have_args)
        rtt_args_free(&c.args);
    free(cands);
    *run += c.run;
    *total += n;
    return c.failed + (n < 1);
}

/* Every chosen candidate of the format's kernels; the failures. */
static int check_format(const lib_format *l, int *run, int *total)
{
    char src[4096];
    kernel_source(l, src, sizeof src);
    qkc_program *p = NULL;
    if (qkc_program_create(ctx, src, "tune.qk", &p) != QKC_OK) {
        fprintf(stderr, "\n%s: %s\n%s", l->name, p ? qkc_program_diagnostics_text(p) : qkc_errmsg(ctx), src);
        qkc_program_destroy(p);
        return 1;
    }
    plan pl = plan_for(l);
    int failed = 0;
    const char *kernels[] = {"gemv", "gemm", "qgemv"};
    for (int g = 0; g < pl.kernels; g++)
        failed += check_kernel(p, l, kernels[g], pl, run, total);
    qkc_program_destroy(p);
    return failed;
}

/* A child process per format, so that a compiler crash names its format
 * and the others still run, and two run at once. */
typedef struct job {
    pid_t pid;
    int fd, fmt;
} job;

static void child(int i, int fd)
{
    qkc_ctx_options o = {.threads = 2, .cache_dir = "", .tuning_db = ""};
    if (qkc_ctx_create(&o, &ctx) != QKC_OK)
        _exit(100);
    clock_t t0 = clock();
    int run = 0, total = 0, failed = check_format(&formats[i], &run, &total);
    dprintf(fd, "%d %d %d %.1f\n", run, total, failed, (double)(clock() - t0) / CLOCKS_PER_SEC);
    qkc_ctx_destroy(ctx);
    fflush(NULL);
    _exit(0);
}

static int start_job(job *j, int i)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    j->pid = fork();
    if (j->pid == 0) {
        close(fds[0]);
        child(i, fds[1]);
    }
    close(fds[1]);
    j->fd = fds[0];
    j->fmt = i;
    return j->pid > 0 ? 0 : -1;
}

/* Reads a finished child's counts; prints its line. Returns failures. */
static int finish_job(const job *j, int status, int *run, int *total)
{
    char buf[128] = "";
    ssize_t n = read(j->fd, buf, sizeof buf - 1);
    close(j->fd);
    int r = 0, t = 0, f = 1;
    double cpu = 0;
    const char *name = formats[j->fmt].name;
    if (WIFSIGNALED(status)) {
        printf("  %-14s CRASHED (signal %d): the compiler aborted on one of its configurations\n", name,
               WTERMSIG(status));
        return 1;
    }
    if (n <= 0 || sscanf(buf, "%d %d %d %lf", &r, &t, &f, &cpu) != 4) {
        printf("  %-14s no result (exit status %d)\n", name, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return 1;
    }
    plan pl = plan_for(&formats[j->fmt]);
    printf("  %-14s %3d / %3d %5.1f s  %s%s\n", name, r, t, cpu, pl.what, f ? "  FAILED" : "");
    *run += r;
    *total += t;
    return f;
}

static int in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t m = strcspn(p, ",");
        if (m == n && strncmp(p, name, n) == 0)
            return 1;
        p += m + (p[m] == ',');
    }
    return 0;
}

static void test_every_format(void)
{
    CU_ASSERT_EQUAL_FATAL(load_library(), 0);
    CU_ASSERT_FATAL(nformats >= 20);
    int failed = 0, run = 0, total = 0, next = 0, active = 0;
    job jobs[2];
    printf("\n  %-14s %s\n", "format", "configurations run / distinct candidates (gemv, gemm; qgemv)");
    const char *only = getenv("QKC_TEST_TUNE_FORMATS"); /* "q4_0,nf4": just these (debugging) */
    int order[MAX_FORMATS], n = 0;
    for (int pass = 0; pass < 2; pass++) /* the long ones first, so they overlap the rest */
        for (int i = 0; i < nformats; i++)
            if ((plan_for(&formats[i]).top > 3) == !pass && (!only || in_list(only, formats[i].name)))
                order[n++] = i;
    while (next < n || active > 0) {
        while (active < 2 && next < n) {
            if (start_job(&jobs[active], order[next++]) != 0) {
                failed++;
                continue;
            }
            active++;
        }
        int status = 0;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0)
            break;
        for (int j = 0; j < active; j++)
            if (jobs[j].pid == pid) {
                failed += finish_job(&jobs[j], status, &run, &total);
                jobs[j] = jobs[--active];
                break;
            }
    }
    printf("  %d configurations compiled and compared with the reference, %d failed\n", run, failed);
    CU_ASSERT_EQUAL(failed, 0);
}

/* ---- the model and the search ---- */

static const char *const search_src = LIBRARY "kernel gemv(x: f32[K], W: q4_0[N, K]) -> y: f32[N] {\n"
                                              "  y[n] = sum(k) W[n, k] * x[k]\n"
                                              "}\n"
                                              "kernel gemm(x: f32[M, K], W: q8_0[N, K]) -> y: f32[M, N] {\n"
                                              "  y[m, n] = sum(k) x[m, k] * W[n, k]\n"
                                              "}\n"
                                              "kernel dense(x: f32[M, K], W: f32[N, K]) -> y: f32[M, N] {\n"
                                              "  y[m, n] = sum(k) x[m, k] * W[n, k]\n"
                                              "}\n"
                                              "format a8 { code = int8; block = 32; scale = f32 }\n"
                                              "kernel qgemv(x: f32[K], W: q4_0[N, K]) -> y: f32[N] {\n"
                                              "  xq[k] = quantize(x[k], a8)\n"
                                              "  y[n] = sum(k) xq[k] * W[n, k]\n"
                                              "}\n"
                                              "kernel pinned(x: f32[K], W: q4_0[N, K]) -> y: f32[N] {\n"
                                              "  y[n] = sum(k) W[n, k] * x[k]\n"
                                              "}\n"
                                              "schedule pinned { tile n = 16; parallel n }\n";

static void test_rank_corr(void)
{
    double a[] = {1, 2, 3, 4, 5}, b[] = {10, 20, 30, 40, 50}, r[] = {5, 4, 3, 2, 1}, c[] = {3, 3, 3, 3, 3};
    CU_ASSERT_DOUBLE_EQUAL(tune_rank_corr(a, a, 5), 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tune_rank_corr(a, b, 5), 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tune_rank_corr(a, r, 5), -1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(tune_rank_corr(a, c, 5), 0.0, 1e-12); /* no order at all */
    double x[] = {1, 2, 3, 4}, y[] = {1, 3, 2, 4};               /* one swap: 1 - 6*2/(4*15) */
    CU_ASSERT_DOUBLE_EQUAL(tune_rank_corr(x, y, 4), 0.8, 1e-12);
    double t[] = {1, 1, 2, 3}, u[] = {1, 1, 2, 3}; /* ties are averaged */
    CU_ASSERT_DOUBLE_EQUAL(tune_rank_corr(t, u, 4), 1.0, 1e-12);
    CU_ASSERT(tune_rank_corr(a, b, 1) == 0.0);
}

static int legal(const qk_target *t, const tir_config *c)
{
    return c->lanes >= 1 && c->lanes * 32 <= t->vector_bits && c->tile_par >= 1 && c->tile_inner >= 1 &&
           c->tile_par * c->tile_inner <= t->vector_regs - 4 && c->unroll >= 1 && (c->idot == 0 || c->idot == 1) &&
           (c->idot_bytes == 16 || c->idot_bytes == 32 || c->idot_bytes == 64) &&
           (c->kblocks == 1 || c->kblocks == 2 || c->kblocks == 4);
}

static int count_distinct(const tune_cand *c, int n)
{
    int d = 0;
    for (int i = 0; i < n; i++) {
        char a[256], b[256];
        int dup = 0;
        tir_config_print(&c[i].cfg, a, sizeof a);
        for (int j = 0; j < i && !dup; j++) {
            tir_config_print(&c[j].cfg, b, sizeof b);
            dup = strcmp(a, b) == 0;
        }
        d += !dup;
    }
    return d;
}

/* On every target preset and the host, for every kernel: at least one
 * legal candidate, sorted by the model, no duplicates, and each one's
 * text parses back to the same configuration. */
static void test_candidates(void)
{
    qkc_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, search_src, "search.qk", &p), QKC_OK);
    const kir_program *kp = rt_program_kir(p);
    const char *targets[] = {"host", "x86-64-v3", "x86-64-v4"};
    tune_cand *c = malloc(MAX_CANDS * sizeof *c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (int t = 0; t < 3; t++) {
        qk_target tg;
        CU_ASSERT_EQUAL_FATAL(qk_target_named(targets[t], &tg), 0);
        for (int i = 0; i < kp->nkernels; i++) {
            const kir_kernel *k = kp->kernels[i];
            tir_config base;
            tir_default_config(&tg, &base);
            tir_apply_schedule(k, &base);
            int n = tune_candidates(k, &tg, &base, NULL, 1, NULL, c, MAX_CANDS);
            CU_ASSERT(n >= 1);
            CU_ASSERT_EQUAL(count_distinct(c, n), n);
            for (int j = 0; j < n; j++) {
                char text[256], again[256], err[256];
                CU_ASSERT(legal(&tg, &c[j].cfg));
                CU_ASSERT(c[j].model_s > 0 && isfinite(c[j].model_s));
                CU_ASSERT(j == 0 || c[j - 1].model_s <= c[j].model_s);
                tir_config_print(&c[j].cfg, text, sizeof text);
                tir_config back;
                tir_default_config(&tg, &back);
                CU_ASSERT_EQUAL(tir_config_parse(text, &back, err, sizeof err), 0);
                tir_config_print(&back, again, sizeof again);
                CU_ASSERT_STRING_EQUAL(text, again);
            }
            CU_ASSERT_EQUAL(tune_candidates(k, &tg, &base, NULL, 1, NULL, c, 1), 1);
        }
    }
    free(c);
    qkc_program_destroy(p);
}

/* prefetch = -1 (the default) settles to TIR_PREFETCH_AUTO on a CPU for
 * weights with codes narrower than a byte read row-interleaved (repack) or
 * as sign-bit strings (popcount), to TIR_PREFETCH_ROWS for weights with
 * codes of 8 bits or more in their own layout, and to none otherwise
 * (8-bit codes with repack, 4-bit codes without, GPU); explicit values stay; a settled configuration's text
 * parses back (over the default) to the same settled values, so a printed
 * configuration names the code it built; the build has PREFETCH
 * statements exactly when the value asks for them and it has a site. */
static const char *const settle_src = LIBRARY "kernel g4(W: q4_0[N, K], x: f32[K]) -> y: f32[N] {\n"
                                              "  xq[k] = quantize(x[k], q8_0)\n  y[n] = sum(k) W[n, k] * xq[k]\n}\n"
                                              "kernel g8(W: q8_0[N, K], x: f32[K]) -> y: f32[N] {\n"
                                              "  xq[k] = quantize(x[k], q8_0)\n  y[n] = sum(k) W[n, k] * xq[k]\n}\n"
                                              "kernel gb(W: xnor[N, K], x: f32[K]) -> y: f32[N] {\n"
                                              "  xb[k] = quantize(x[k], xnor)\n  y[n] = sum(k) W[n, k] * xb[k]\n}\n"
                                              "kernel gbf(W: xnor[N, K], x: f32[K]) -> y: f32[N] {\n"
                                              "  y[n] = sum(k) W[n, k] * x[k]\n}\n"
                                              "kernel f8(W: q8_0[N, K], x: f32[K]) -> y: f32[N] {\n"
                                              "  y[n] = sum(k) W[n, k] * x[k]\n}\n"
                                              "kernel f4(W: q4_0[N, K], x: f32[K]) -> y: f32[N] {\n"
                                              "  y[n] = sum(k) W[n, k] * x[k]\n}\n"
                                              "kernel m8(X: f32[M, K], W: q8_0[N, K]) -> y: f32[M, N] {\n"
                                              "  y[m, n] = sum(k) X[m, k] * W[n, k]\n}\n";

static void test_prefetch_settle(void)
{
    static const struct {
        const char *kernel, *target, *config;
        int want, sites; /* sites: PREFETCH statements the build has (1: some), -1: not built */
    } cases[] = {
        {"g4", "x86-64-v4", "", 0, 0},
        {"g4", "x86-64-v4", "repack=1", TIR_PREFETCH_AUTO, 1},
        {"g4", "x86-64-v3", "repack=8", TIR_PREFETCH_AUTO, 1},
        {"g8", "x86-64-v4", "repack=1", 0, 0},
        {"g8", "x86-64-v4", "repack=1 prefetch=2048", 2048, 1},
        {"g4", "x86-64-v4", "repack=1 prefetch=0", 0, 0},
        {"g4", "x86-64-v4", "repack=4 prefetch=1024", 1024, 1},
        {"g4", "x86-64-v4", "prefetch=2048", 2048, -1}, /* refused by tir_build: no site */
        {"gb", "x86-64-v4", "", TIR_PREFETCH_AUTO, 1},   /* popcount of sign-bit rows */
        {"gb", "x86-64-v4", "prefetch=0", 0, 0},
        {"gbf", "x86-64-v4", "", TIR_PREFETCH_AUTO, 1},  /* no popcount: the block loop takes the hint */
        {"g4", "sm_90", "", 0, -1},
        /* weights of whole bytes in their own layout: block loops of one
         * inner point (a GEMV, or a GEMM without a register tile over M)
         * prefetch their rows; integer-dot loops ignore the default, and
         * refuse an explicit distance */
        {"f8", "x86-64-v4", "", TIR_PREFETCH_ROWS, 1},
        {"f8", "x86-64-v3", "", TIR_PREFETCH_ROWS, 1},
        {"f8", "x86-64-v4", "prefetch=0", 0, 0},
        {"f4", "x86-64-v4", "", 0, 0},          /* 4-bit codes: none by default */
        {"f4", "x86-64-v4", "prefetch=1024", 1024, 1},
        {"g8", "x86-64-v4", "", TIR_PREFETCH_ROWS, 0},
        {"m8", "x86-64-v4", "", TIR_PREFETCH_ROWS, 1},
        {"g8", "x86-64-v4", "prefetch=4096", 4096, -1},
        {"f8", "sm_90", "", 0, -1},
    };
    qkc_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, settle_src, "settle.qk", &p), QKC_OK);
    const kir_program *kp = rt_program_kir(p);
    CU_ASSERT_EQUAL_FATAL(kp->nkernels, 7);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const kir_kernel *k = NULL;
        for (int j = 0; j < kp->nkernels; j++)
            if (strcmp(kp->kernels[j]->name, cases[i].kernel) == 0)
                k = kp->kernels[j];
        CU_ASSERT_PTR_NOT_NULL_FATAL(k);
        qk_target tg;
        CU_ASSERT_EQUAL_FATAL(qk_target_named(cases[i].target, &tg), 0);
        tir_config c, back;
        char err[256], text[256], again[256];
        tir_default_config(&tg, &c);
        CU_ASSERT_EQUAL(c.prefetch, -1);
        CU_ASSERT_EQUAL_FATAL(tir_config_parse(cases[i].config, &c, err, sizeof err), 0);
        tir_settle_config(k, &tg, &c);
        CU_ASSERT_EQUAL(c.prefetch, cases[i].want);
        tir_config_print(&c, text, sizeof text);
        tir_default_config(&tg, &back);
        CU_ASSERT_EQUAL_FATAL(tir_config_parse(text, &back, err, sizeof err), 0);
        tir_settle_config(k, &tg, &back);
        CU_ASSERT_EQUAL(back.prefetch, cases[i].want);
        tir_config_print(&back, again, sizeof again);
        CU_ASSERT_STRING_EQUAL(text, again);
        char shown[32];
        snprintf(shown, sizeof shown, " prefetch=%d", cases[i].want);
        CU_ASSERT(strstr(text, shown) != NULL);
        /* the build: PREFETCH statements exactly where the settled value asks
         * for them and the kernel has a site; an explicit value without one
         * is refused */
        qk_arena *a = qk_arena_new();
        tir_func *f = tir_build(a, k, &tg, &c, err, sizeof err);
        if (cases[i].sites < 0 && tg.kind == QK_TARGET_CPU) {
            CU_ASSERT_PTR_NULL(f);
            CU_ASSERT(strstr(err, "software prefetch applies to") != NULL);
            if (f)
                printf("\n%s %s '%s': built\n", cases[i].kernel, cases[i].target, cases[i].config);
        } else if (cases[i].sites >= 0) {
            CU_ASSERT_PTR_NOT_NULL(f);
            int n = 0;
            for (int j = 0; f && j < f->nnodes; j++)
                n += f->nodes[j].op == TIR_PREFETCH;
            CU_ASSERT_EQUAL(n > 0, cases[i].sites);
            if ((n > 0) != cases[i].sites)
                printf("\n%s %s '%s': %d prefetch statements\n", cases[i].kernel, cases[i].target, cases[i].config, n);
        }
        qk_arena_free(a);
    }
    qkc_program_destroy(p);
}

/* A row-interleaved GEMV's row groups per work item, by the builder's
 * choice (tile_par below 2R): 4, or fewer where the image needs more
 * vector registers than 4 groups leave (rowpack_vregs: e4m3's three
 * 128-entry tables, sign and NaN flags take 2); an explicit tile_par
 * still decides. Counted as the dot4 statements of the built loop, which
 * grow with the groups; and AVX2's 16 registers change nothing yet. */
static const char *const groups_src =
    LIBRARY "format xe { code = int8; block = 32; scale = e8m0 }\n"
            "kernel e4(W: mxfp8_e4m3[N, K], x: f32[K]) -> y: f32[N] {\n"
            "  xq[k] = quantize(x[k], xe)\n  y[n] = sum(k) W[n, k] * xq[k]\n}\n"
            "kernel n4(W: nf4[N, K], x: f32[K]) -> y: f32[N] {\n"
            "  xq[k] = quantize(x[k], q8_0)\n  y[n] = sum(k) W[n, k] * xq[k]\n}\n"
            "kernel q4(W: q4_0[N, K], x: f32[K]) -> y: f32[N] {\n"
            "  xq[k] = quantize(x[k], q8_0)\n  y[n] = sum(k) W[n, k] * xq[k]\n}\n";

/* k built for tg with the default configuration and config's keys on
 * top, settled, in arena a; NULL (the error printed) if it is refused. */
static tir_func *build_with(qk_arena *a, const kir_kernel *k, const qk_target *tg, const char *config)
{
    tir_config c;
    char err[256];
    tir_default_config(tg, &c);
    tir_func *f = NULL;
    if (!tir_config_parse(config, &c, err, sizeof err)) {
        tir_settle_config(k, tg, &c);
        f = tir_build(a, k, tg, &c, err, sizeof err);
    }
    if (!f)
        printf("\n%s '%s': %s\n", k->name, config, err);
    return f;
}

/* Nodes of k's tiled IR (built for tg with config) for which pred holds;
 * -1 when it does not build. */
static int count_nodes(const kir_kernel *k, const qk_target *tg, const char *config,
                       int (*pred)(const tir_node *, int), int arg)
{
    qk_arena *a = qk_arena_new();
    tir_func *f = build_with(a, k, tg, config);
    int n = f ? 0 : -1;
    for (int j = 0; f && j < f->nnodes; j++)
        n += pred(&f->nodes[j], arg) != 0;
    qk_arena_free(a);
    return n;
}

static int is_dot4(const tir_node *d, int unused)
{
    (void)unused;
    return d->op == TIR_DOT4;
}

static int dot4_count(const kir_kernel *k, const qk_target *tg, const char *config)
{
    return count_nodes(k, tg, config, is_dot4, 0);
}

static void test_rowpack_groups(void)
{
    qkc_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, groups_src, "groups.qk", &p), QKC_OK);
    const kir_program *kp = rt_program_kir(p);
    CU_ASSERT_EQUAL_FATAL(kp->nkernels, 3);
    qk_target v4, v3;
    CU_ASSERT_EQUAL_FATAL(qk_target_named("x86-64-v4", &v4), 0);
    CU_ASSERT_EQUAL_FATAL(qk_target_named("x86-64-v3", &v3), 0);
    v4.features |= QK_FEAT_AVX512VNNI | QK_FEAT_AVX512VBMI; /* e4m3's sign-magnitude path */
    v3.features |= QK_FEAT_AVXVNNI;
    for (int i = 0; i < kp->nkernels; i++) {
        const kir_kernel *k = kp->kernels[i];
        int e4 = strcmp(k->name, "e4") == 0;
        int dflt = dot4_count(k, &v4, "repack=1"), two = dot4_count(k, &v4, "repack=1 tile_par=32"),
            four = dot4_count(k, &v4, "repack=1 tile_par=64");
        CU_ASSERT(two > 0 && four > two);
        CU_ASSERT_EQUAL(dflt, e4 ? two : four);
        if (dflt != (e4 ? two : four))
            printf("\n%s: %d dots by default, %d in 2 groups, %d in 4\n", k->name, dflt, two, four);
        if (e4) /* no sign-magnitude path without VBMI */
            continue;
        int d3 = dot4_count(k, &v3, "repack=8"), d3four = dot4_count(k, &v3, "repack=8 tile_par=32");
        CU_ASSERT(d3 > 0);
        CU_ASSERT_EQUAL(d3, d3four);
    }
    qkc_program_destroy(p);
}

/* 8-bit minifloat GEMVs of f32 activations read their full blocks in
 * chunk pairs (tdec_paired_item order) where the target has byte
 * permutes: the codes by an in-lane byte unpack, x by the same order.
 * Counted as the shuffles whose lanes follow that order: with VBMI,
 * both the codes' (each byte twice) and x's; without, none; and none for
 * 4-bit codes, which decode otherwise. The order's results are checked
 * against the reference by test_library (every format's GEMV on the
 * host) and test_decode (the decoder's paired chunks). */
static const char *const paired_src =
    LIBRARY "kernel e5(W: mxfp8_e5m2[N, K], x: f32[K]) -> y: f32[N] {\n  y[n] = sum(k) W[n, k] * x[k]\n}\n"
            "kernel e5h(W: mxfp8_e5m2[N, K], x: f16[K]) -> y: f32[N] {\n  y[n] = relu(sum(k) W[n, k] * x[k])\n}\n"
            "kernel q4(W: q4_0[N, K], x: f32[K]) -> y: f32[N] {\n  y[n] = sum(k) W[n, k] * x[k]\n}\n";

/* A shuffle whose lanes (or every other lane, dup) follow
 * tdec_paired_item for one half. */
static int is_paired_shuffle(const tir_node *d, int dup)
{
    int L = d->type.lanes >> dup;
    if (d->op != TIR_SHUFFLE || L < 16)
        return 0;
    for (int h = 0; h < 2; h++) {
        int match = 1;
        for (int l = 0; l < L && match; l++)
            match = d->shuf[l << dup] == tdec_paired_item(l, h) && (!dup || d->shuf[2 * l + 1] == d->shuf[2 * l]);
        if (match)
            return 1;
    }
    return 0;
}

static int paired_shuffles(const kir_kernel *k, const qk_target *tg, int dup)
{
    return count_nodes(k, tg, "", is_paired_shuffle, dup);
}

static void test_paired_chunks(void)
{
    qkc_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, paired_src, "paired.qk", &p), QKC_OK);
    const kir_program *kp = rt_program_kir(p);
    qk_target vbmi, v4;
    CU_ASSERT_EQUAL_FATAL(qk_target_named("x86-64-v4", &v4), 0);
    vbmi = v4;
    vbmi.features |= QK_FEAT_AVX512VBMI;
    for (int i = 0; i < kp->nkernels; i++) {
        const kir_kernel *k = kp->kernels[i];
        int q4 = strcmp(k->name, "q4") == 0;
        int codes = paired_shuffles(k, &vbmi, 1), xs = paired_shuffles(k, &vbmi, 0);
        CU_ASSERT(q4 ? codes == 0 && xs == 0 : codes >= 2 && xs >= 2);
        CU_ASSERT_EQUAL(paired_shuffles(k, &v4, 1), 0);
        CU_ASSERT_EQUAL(paired_shuffles(k, &v4, 0), 0);
        if (q4 ? codes || xs : codes < 2 || xs < 2)
            printf("\n%s: %d paired code shuffles, %d of x\n", k->name, codes, xs);
    }
    qkc_program_destroy(p);
}

/* Which parameters are searched depends on the kernel: idot only with
 * an integer product, tile_inner only with a second LHS index, unroll
 * only for dense reductions, and a schedule's tile request pins. */
/* tune_repack_candidates: for an integer-dot GEMV on x86-64-v4, 1 to 5
 * distinct configurations, every one repack=1 and buildable, one with
 * fence=1 (whose loop holds fences, the others' none), the first the
 * builder's tiles (what the JIT takes with any_layout), modelled faster
 * than the own layout's best (what the model should prefer); none, with a
 * reason, for f32 activations times a format without the layout's f32
 * form and for a GPU target; some for f32 activations times one with it. */
static void test_repack_candidates(void)
{
    qkc_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, settle_src, "settle.qk", &p), QKC_OK);
    const kir_program *kp = rt_program_kir(p);
    const kir_kernel *g4 = kir_find_kernel(kp, "g4"), *g8 = kir_find_kernel(kp, "g8");
    const kir_kernel *gbf = kir_find_kernel(kp, "gbf"), *f8 = kir_find_kernel(kp, "f8"), *f4 = kir_find_kernel(kp, "f4");
    CU_ASSERT_FATAL(g4 && g8 && gbf && f8 && f4);
    qk_target tg, gpu;
    CU_ASSERT_EQUAL_FATAL(qk_target_named("x86-64-v4", &tg), 0);
    CU_ASSERT_EQUAL_FATAL(qk_target_named("sm_90", &gpu), 0);
    const kir_kernel *ks[2] = {g4, g8};
    for (int i = 0; i < 2; i++) {
        tir_config base;
        tir_default_config(&tg, &base);
        tune_cand c[8], own, first;
        char why[256] = "", text[256];
        int n = tune_repack_candidates(ks[i], &tg, &base, NULL, 1, NULL, c, 8, why, sizeof why);
        CU_ASSERT(n >= 1 && n <= 5);
        CU_ASSERT_EQUAL(count_distinct(c, n), n);
        int fenced = 0;
        for (int j = 0; j < n; j++) {
            CU_ASSERT_EQUAL(c[j].cfg.repack, 1);
            CU_ASSERT(c[j].model_s > 0 && isfinite(c[j].model_s));
            qk_arena *a = qk_arena_new();
            tir_func *f = tir_build(a, ks[i], &tg, &c[j].cfg, why, sizeof why);
            CU_ASSERT_PTR_NOT_NULL(f);
            int fences = 0;
            for (int d = 0; f && d < f->nnodes; d++)
                fences += f->nodes[d].op == TIR_FENCE;
            CU_ASSERT_EQUAL(fences > 0, c[j].cfg.fence);
            fenced += c[j].cfg.fence;
            qk_arena_free(a);
        }
        CU_ASSERT_EQUAL(fenced, 1);
        CU_ASSERT_EQUAL(tune_repack_candidates(ks[i], &tg, &base, NULL, 1, NULL, &first, 1, why, sizeof why), 1);
        tir_config want = base;
        want.repack = 1;
        tir_settle_config(ks[i], &tg, &want);
        char a[256];
        tir_config_print(&first.cfg, text, sizeof text);
        tir_config_print(&want, a, sizeof a);
        CU_ASSERT_STRING_EQUAL(text, a);
        CU_ASSERT_EQUAL(tune_candidates(ks[i], &tg, &base, NULL, 1, NULL, &own, 1), 1);
        if (!(c[0].model_s < own.model_s))
            printf("\n  %s: row-interleaved %.3g s, own layout %.3g s (modelled)\n", ks[i]->name, c[0].model_s,
                   own.model_s);
        CU_ASSERT(c[0].model_s < own.model_s);
    }
    tir_config base;
    tune_cand c[4];
    char why[256] = "";
    tir_default_config(&tg, &base);
    /* f32 activations: q8_0's 8-bit codes have no f32 form; the sign
     * bits of xnor (and q4_0's 4-bit codes) do */
    CU_ASSERT_EQUAL(tune_repack_candidates(f8, &tg, &base, NULL, 1, NULL, c, 4, why, sizeof why), 0);
    CU_ASSERT(strstr(why, "repack=") != NULL && strstr(why, "nor of f32 work") != NULL);
    CU_ASSERT(tune_repack_candidates(gbf, &tg, &base, NULL, 1, NULL, c, 4, why, sizeof why) >= 1);
    CU_ASSERT(tune_repack_candidates(f4, &tg, &base, NULL, 1, NULL, c, 4, why, sizeof why) >= 1);
    why[0] = 0;
    tir_default_config(&gpu, &base);
    CU_ASSERT_EQUAL(tune_repack_candidates(g4, &gpu, &base, NULL, 1, NULL, c, 4, why, sizeof why), 0);
    CU_ASSERT(strstr(why, "CPU kernels only") != NULL);
    qkc_program_destroy(p);
}

static void test_search_space(void)
{
    qkc_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, search_src, "search.qk", &p), QKC_OK);
    const kir_program *kp = rt_program_kir(p);
    qk_target tg;
    qk_target_named("x86-64-v4", &tg);
    tune_cand *c = malloc(MAX_CANDS * sizeof *c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    struct {
        const char *kernel;
        int idot, inner, unroll, par;
    } want[] = {{"gemv", 0, 0, 0, 1},
                {"gemm", 0, 1, 0, 1},
                {"dense", 0, 1, 1, 1},
                {"qgemv", 1, 0, 0, 1},
                {"pinned", 0, 0, 0, 0}};
    for (int w = 0; w < QK_COUNT(want); w++) {
        const kir_kernel *k = kir_find_kernel(kp, want[w].kernel);
        CU_ASSERT_PTR_NOT_NULL_FATAL(k);
        tir_config base;
        tir_default_config(&tg, &base);
        tir_apply_schedule(k, &base);
        int n = tune_candidates(k, &tg, &base, NULL, 1, NULL, c, MAX_CANDS);
        int idot = 0, inner = 0, unroll = 0, par = 0;
        for (int j = 0; j < n; j++) {
            idot |= c[j].cfg.idot != c[0].cfg.idot || c[j].cfg.idot_bytes != c[0].cfg.idot_bytes;
            inner |= c[j].cfg.tile_inner != c[0].cfg.tile_inner;
            unroll |= c[j].cfg.unroll != c[0].cfg.unroll;
            par |= c[j].cfg.tile_par != c[0].cfg.tile_par;
        }
        printf("\n  %-7s %3d candidates: idot %s, tile_inner %s, unroll %s, tile_par %s", want[w].kernel, n,
               idot ? "searched" : "fixed", inner ? "searched" : "fixed", unroll ? "searched" : "fixed",
               par ? "searched" : "fixed");
        CU_ASSERT_EQUAL(idot, want[w].idot);
        CU_ASSERT_EQUAL(inner, want[w].inner);
        CU_ASSERT_EQUAL(unroll, want[w].unroll);
        CU_ASSERT_EQUAL(par, want[w].par);
    }
    printf("\n");
    free(c);
    qkc_program_destroy(p);
}

/* The model prefers what it should: a GEMM register tile over a single
 * point, and on the DOT4 path over the f32 path when the target has
 * VNNI; more threads are never modelled slower for a large GEMV. */
static void test_model_sense(void)
{
    qkc_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, search_src, "search.qk", &p), QKC_OK);
    const kir_program *kp = rt_program_kir(p);
    qk_target tg;
    qk_target_named("x86-64-v4", &tg);
    tir_config cfg;
    tir_default_config(&tg, &cfg);
    const kir_kernel *gemm = kir_find_kernel(kp, "dense"), *qg = kir_find_kernel(kp, "qgemv");
    const kir_kernel *gemv = kir_find_kernel(kp, "gemv");
    tir_config one = cfg, tile = cfg;
    one.tile_par = one.tile_inner = 1;
    tile.tile_par = tile.tile_inner = 4;
    CU_ASSERT(tune_model(gemm, &tg, &tile, NULL, 1, NULL) < tune_model(gemm, &tg, &one, NULL, 1, NULL));
    tir_config f32 = cfg, dot = cfg;
    f32.idot = 0;
    dot.idot = 1;
    tg.features |= QK_FEAT_AVX512VNNI;
    CU_ASSERT(tune_model(qg, &tg, &dot, NULL, 1, NULL) < tune_model(qg, &tg, &f32, NULL, 1, NULL));
    CU_ASSERT(tune_model(gemv, &tg, &cfg, NULL, 2, NULL) <= tune_model(gemv, &tg, &cfg, NULL, 1, NULL));
    tune_limits slow = {.dram_bw = 1e9, .l3_bw = 2e9, .l2_bw = 4e9, .f32_flops = 1e11, .int8_ops = 4e11};
    int64_t big[4];
    model_dims(gemv, big);
    for (int i = 0; i < gemv->nsyms; i++)
        big[i] = 16384;
    CU_ASSERT(tune_model(gemv, &tg, &cfg, big, 1, &slow) > tune_model(gemv, &tg, &cfg, big, 1, NULL));
    qkc_program_destroy(p);
}

/* ---- small batches: the register tile along M and its remainder ---- */

static const char *const small_m_src = LIBRARY "kernel gemm_i8(W: q4_0[N, K], x: f32[M, K]) -> y: f32[M, N] {\n"
                                               "  xq[m, k] = quantize(x[m, k], q8_0)\n"
                                               "  y[m, n] = sum(k) W[n, k] * xq[m, k]\n"
                                               "}\n";

/* One configuration of gemm_i8 against the reference for M = 1..17
 * (N = 37, K = 101: ragged along every index), so every remainder tile
 * of 4 and 8 points (tir_build.c emit_lhs) runs. Returns the failures. */
static int check_small_m(qkc_program *p, const char *config)
{
    qkc_kernel_options o = {.dims = "N=37,K=101,M=1", .threads = 2, .config = config};
    qkc_kernel *k = NULL;
    if (qkc_kernel_get_ex(p, "gemm_i8", &o, &k) != QKC_OK) {
        fprintf(stderr, "\n  FAIL [%s] compile: %s\n", config, qkc_errmsg(ctx));
        return 1;
    }
    int failed = 0;
    for (int64_t m = 1; m <= 17; m++) {
        int64_t dims[8] = {0};
        for (int i = 0; i < qkc_kernel_ndims(k) && i < 8; i++) {
            const char *d = qkc_kernel_dim_name(k, i);
            dims[i] = strcmp(d, "M") == 0 ? m : strcmp(d, "N") == 0 ? 37 : 101;
        }
        rtt_rng r = {0x5a11 + (uint64_t)m};
        rtt_args a;
        char why[1024] = "";
        if (rtt_args_make(p, k, dims, &r, &a, why, sizeof why) != 0) {
            fprintf(stderr, "\n  FAIL [%s] M=%lld: %s\n", config, (long long)m, why);
            failed++;
            continue;
        }
        qkc_launch_options lo = {.threads = 2};
        if (qkc_reference(k, a.ref, a.n) != QKC_OK)
            snprintf(why, sizeof why, "reference: %s", qkc_errmsg(ctx));
        else if (qkc_launch(k, a.t, a.n, &lo) != QKC_OK)
            snprintf(why, sizeof why, "launch: %s", qkc_errmsg(ctx));
        else
            rtt_compare(&a, why, sizeof why);
        if (why[0]) {
            fprintf(stderr, "\n  FAIL [%s] M=%lld: %s\n", config, (long long)m, why);
            failed++;
        }
        rtt_args_free(&a);
    }
    return failed;
}

/* Tiles of 4 and 8 along M (tile_par x tile_inner within 12 accumulators,
 * so AVX2 keeps them), on the integer-dot and the f32 path. */
static void test_small_m(void)
{
    qkc_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, small_m_src, "small_m.qk", &p), QKC_OK);
    const char *configs[] = {"tile_par=2 tile_inner=4", "tile_par=1 tile_inner=8", "tile_par=2 tile_inner=4 idot=0",
                             "tile_par=1 tile_inner=8 idot=0"};
    for (int i = 0; i < QK_COUNT(configs); i++)
        CU_ASSERT_EQUAL(check_small_m(p, configs[i]), 0);
    qkc_program_destroy(p);
}

/* The model counts the passes over W's tile that the remainder tiles
 * make: for M = 2 or 3 it keeps a tile along M (not one row at a time),
 * and it ranks a tile of 4 over single rows at M = 3. */
static void test_small_m_model(void)
{
    qkc_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, small_m_src, "small_m.qk", &p), QKC_OK);
    const kir_kernel *k = kir_find_kernel(rt_program_kir(p), "gemm_i8");
    CU_ASSERT_PTR_NOT_NULL_FATAL(k);
    qk_target tg;
    qk_target_named("x86-64-v4", &tg);
    tg.features |= QK_FEAT_AVX512VNNI;
    for (int64_t m = 2; m <= 3; m++) {
        int64_t dims[8];
        for (int i = 0; i < k->nsyms; i++)
            dims[i] = strcmp(k->syms[i], "M") == 0 ? m : 8192;
        tir_config base, one, four;
        tir_default_config(&tg, &base);
        tune_cand best;
        CU_ASSERT_EQUAL_FATAL(tune_candidates(k, &tg, &base, dims, 1, NULL, &best, 1), 1);
        CU_ASSERT(best.cfg.tile_inner >= 2);
        one = four = best.cfg;
        one.tile_inner = 1;
        four.tile_inner = 4;
        CU_ASSERT(tune_model(k, &tg, &four, dims, 1, NULL) < tune_model(k, &tg, &one, dims, 1, NULL));
    }
    qkc_program_destroy(p);
}

/* Records are keyed by the runtime's kernel hash. */
static void test_kernel_hash(void)
{
    qkc_program *p = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, search_src, "search.qk", &p), QKC_OK);
    const kir_program *kp = rt_program_kir(p);
    for (int i = 0; i < kp->nkernels; i++) {
        char a[17], b[17];
        tune_kernel_hash(kp->kernels[i], a);
        rt_kernel_hash(kp->kernels[i], b);
        CU_ASSERT_STRING_EQUAL(a, b);
        CU_ASSERT_EQUAL(strlen(a), 16);
    }
    char g[17], q[17];
    tune_kernel_hash(kir_find_kernel(kp, "gemv"), g);
    tune_kernel_hash(kir_find_kernel(kp, "pinned"), q);
    CU_ASSERT_STRING_NOT_EQUAL(g, q);
    qkc_program_destroy(p);
}

int main(void)
{
    qkc_ctx_options o = {.threads = 2, .cache_dir = "", .tuning_db = ""};
    if (qkc_ctx_create(&o, &ctx) != QKC_OK || CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("tune", NULL, NULL);
    CU_add_test(s, "Spearman rank correlation", test_rank_corr);
    CU_add_test(s, "candidates: legal, sorted, distinct, text round trip", test_candidates);
    CU_add_test(s, "what the search varies per kernel", test_search_space);
    CU_add_test(s, "prefetch: the builder's choice settled, printed, parsed back", test_prefetch_settle);
    CU_add_test(s, "the model's preferences", test_model_sense);
    CU_add_test(s, "row-interleaved candidates (any layout)", test_repack_candidates);
    CU_add_test(s, "row-interleaved GEMV: row groups by the image's registers", test_rowpack_groups);
    CU_add_test(s, "8-bit minifloat GEMV: chunk pairs in unpack order with byte permutes", test_paired_chunks);
    CU_add_test(s, "kernel hash = the runtime's", test_kernel_hash);
    CU_add_test(s, "small M: every remainder tile along M vs the reference", test_small_m);
    CU_add_test(s, "small M: the model keeps a tile along M", test_small_m_model);
    CU_add_test(s, "every dsl/ format: tuner candidates vs the reference", test_every_format);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    qkc_ctx_destroy(ctx);
    return failures != 0;
}
