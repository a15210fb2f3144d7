/* test_diff.c — the randomized differential suite: random formats x
 * random kernel templates (generated as DSL text) x random dims that are
 * not multiples of any tile x random thread counts, each compiled with
 * the JIT and compared with qkc_reference under the CLI's tolerances.
 *
 *   QKC_DIFF_CASES=n   number of cases (default 200)
 *   QKC_SEED=s         replay a run (the seed is printed at the start)
 *   QKC_DIFF_ONLY=i    run only case i of that seed
 *
 * Every failing case prints its full description (template, format,
 * dims, threads, source) and the line to replay it. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qkc.h"
#include "support/rt_test.h"

#define SRC_MAX 4096
#define QK_COUNT_(a) ((int)(sizeof(a) / sizeof((a)[0])))

typedef struct diff_case {
    int index;
    const char *tmpl;
    char format[256]; /* the format declaration (may be empty) */
    char source[SRC_MAX];
    int threads;
    int64_t dims[8]; /* by name: see dim_value() */
} diff_case;

/* ---- random formats ---- */

static const int block_sizes[] = {1, 3, 8, 16, 24, 32, 48, 64, 100, 128, 256};
static const char *const zero_types[] = {"u8", "i8", "f16", "f32"};
static const char *const scale_types[] = {"f32", "f16", "bf16", "none"};

/* "format F { code = ...; block = ...; scale = ...[; zero = ...] }" */
static void random_format(rtt_rng *r, char *out, size_t n)
{
    int bits = (int)rtt_int(r, 1, 8), kind = (int)rtt_int(r, 0, 2);
    int block = block_sizes[rtt_int(r, 0, QK_COUNT_(block_sizes) - 1)];
    char code[32];
    if (kind == 0)
        snprintf(code, sizeof code, "int%d", bits);
    else if (kind == 1)
        snprintf(code, sizeof code, "uint%d", bits);
    else
        snprintf(code, sizeof code, "uint%d offset %d", bits, (int)rtt_int(r, 0, (1 << bits) - 1));
    const char *scale = scale_types[rtt_int(r, 0, 3)];
    int zero = (int)rtt_int(r, -1, 3); /* -1: none */
    int len = snprintf(out, n, "format F { code = %s; block = %d; scale = %s", code, block, scale);
    if (zero >= 0)
        len += snprintf(out + len, n - (size_t)len, "; zero = %s", zero_types[zero]);
    snprintf(out + len, n - (size_t)len, " }\n");
}

/* ---- kernel templates (the format, when used, is named F) ---- */

static const char *const acts[] = {"relu", "gelu", "silu", "tanh"};

typedef struct tmpl {
    const char *name;
    int quantized; /* uses format F */
    const char *text; /* %s: an activation, where the template has one */
} tmpl;

static const tmpl templates[] = {
    {"gemv", 1,
     "kernel k(x: f32[K], W: F[N, K]) -> y: f32[N] {\n"
     "  y[n] = sum(k) x[k] * W[n, k]\n}\n"},
    {"gemv_bias_act", 1,
     "kernel k(x: f32[K], W: F[N, K], b: f32[N]) -> y: f32[N] {\n"
     "  y[n] = %s(sum(k) x[k] * W[n, k] + b[n])\n}\n"},
    {"gemm_bias_relu", 1,
     "kernel k(x: f32[M, K], W: F[N, K], b: f32[N]) -> y: f32[M, N] {\n"
     "  y[m, n] = relu(sum(k) x[m, k] * W[n, k] + b[n])\n}\n"},
    {"batched_gemv_two_results", 1,
     "kernel k(x: f32[B, K], W: F[N, K]) -> (y: f32[B, N], z: f32[B, N]) {\n"
     "  t[i, n] = sum(k) x[i, k] * W[n, k]\n"
     "  y[i, n] = t[i, n]\n"
     "  z[i, n] = %s(t[i, n]) * 0.5\n}\n"},
    {"f16_in_out", 1,
     "kernel k(x: f16[M, K], W: F[N, K]) -> y: f16[M, N] {\n"
     "  y[m, n] = f16(sum(k) x[m, k] * W[n, k])\n}\n"},
    {"bf16_in_out", 1,
     "kernel k(x: bf16[M, K], W: F[N, K], b: bf16[N]) -> y: bf16[M, N] {\n"
     "  y[m, n] = bf16(%s(sum(k) x[m, k] * W[n, k] + b[n]))\n}\n"},
    {"dense_gemm", 0,
     "kernel k(x: f32[M, K], w: f32[N, K]) -> y: f32[M, N] {\n"
     "  y[m, n] = sum(k) x[m, k] * w[n, k]\n}\n"},
    {"fused_two_contractions", 1,
     "kernel k(x: f32[M, K], Wg: F[N, K], Wu: F[N, K]) -> h: f32[M, N] {\n"
     "  g[m, n] = sum(k) x[m, k] * Wg[n, k]\n"
     "  u[m, n] = sum(k) x[m, k] * Wu[n, k]\n"
     "  h[m, n] = %s(g[m, n]) * u[m, n]\n}\n"},
    {"elementwise", 0,
     "kernel k(x: f32[M, N], b: f32[N]) -> y: f32[M, N] {\n"
     "  y[m, n] = max(%s(x[m, n]) * 2 - b[n], -0.5)\n}\n"},
    {"conv_dense", 0,
     "kernel k(x: f32[C, L], f: f32[O, C, 3]) -> y: f32[O, L-2] {\n"
     "  y[o, l] = sum(c, r) x[c, l + r] * f[o, c, r]\n}\n"},
    {"conv_quantized", 1,
     "kernel k(x: f32[C, L], f: F[O, 5]) -> y: f32[O, C, L-4] {\n"
     "  y[o, c, l] = %s(sum(r) x[c, l + r] * f[o, r])\n}\n"},
};

/* ---- dims ---- */

static const char dim_names[] = "MNKBCLO";
static const int64_t dim_hi[] = {9, 70, 700, 9, 8, 40, 20};
static const int64_t dim_lo[] = {1, 1, 1, 1, 1, 5, 1};
static const int64_t specials[] = {1, 2, 3, 5, 7, 13, 17, 31, 61, 97, 127, 251, 509, 691};

/* Uniform in [lo, hi], or (30%) a special value (1 or a prime) in range. */
static int64_t random_dim(rtt_rng *r, int64_t lo, int64_t hi)
{
    if (rtt_int(r, 0, 9) < 3) {
        int64_t v = specials[rtt_int(r, 0, QK_COUNT_(specials) - 1)];
        if (v >= lo && v <= hi)
            return v;
    }
    return rtt_int(r, lo, hi);
}

static int64_t dim_value(const diff_case *c, const char *name)
{
    const char *p = strchr(dim_names, name[0]);
    return p && name[1] == 0 ? c->dims[p - dim_names] : -1;
}

/* A schedule block for kernel k (indexes n and k), in a quarter of the
 * cases that have both: the builder must clamp whatever it is asked. */
static void random_schedule(rtt_rng *r, char *out, size_t n)
{
    static const int tn[] = {1, 2, 3, 4, 5, 8, 16, 32}, tk[] = {1, 8, 16, 32, 64, 100, 256};
    snprintf(out, n, "schedule k { tile n = %d, k = %d; parallel n%s }\n", tn[rtt_int(r, 0, QK_COUNT_(tn) - 1)],
             tk[rtt_int(r, 0, QK_COUNT_(tk) - 1)], rtt_int(r, 0, 1) ? "; unroll 2" : "");
}

/* ---- one case ---- */

static void make_case(uint64_t seed, int index, diff_case *c)
{
    rtt_rng r = {seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(index + 1))};
    memset(c, 0, sizeof *c);
    c->index = index;
    const tmpl *t = &templates[rtt_int(&r, 0, QK_COUNT_(templates) - 1)];
    c->tmpl = t->name;
    if (t->quantized)
        random_format(&r, c->format, sizeof c->format);
    for (int i = 0; i < 7; i++)
        c->dims[i] = random_dim(&r, dim_lo[i], dim_hi[i]);
    c->threads = (int)rtt_int(&r, 1, 4);
    int len = snprintf(c->source, SRC_MAX, "%s", c->format);
    len += snprintf(c->source + len, SRC_MAX - (size_t)len, t->text, acts[rtt_int(&r, 0, 3)]);
    if (strstr(t->text, "sum(k)") && strstr(t->text, "[n]") && rtt_int(&r, 0, 3) == 0)
        random_schedule(&r, c->source + len, SRC_MAX - (size_t)len);
}

static void describe(const diff_case *c, qkc_kernel *k, uint64_t seed, const char *why)
{
    fprintf(stderr, "\nFAIL case %d: template %s, threads %d, dims", c->index, c->tmpl, c->threads);
    for (int i = 0; k && i < qkc_kernel_ndims(k); i++)
        fprintf(stderr, " %s=%lld", qkc_kernel_dim_name(k, i), (long long)dim_value(c, qkc_kernel_dim_name(k, i)));
    fprintf(stderr, "\n  %s\n  source:\n%s  replay: QKC_SEED=%llu QKC_DIFF_ONLY=%d\n", why, c->source,
            (unsigned long long)seed, c->index);
}

/* Runs one case; 0 = pass. */
static int run_case(qkc_ctx *ctx, uint64_t seed, const diff_case *c)
{
    qkc_program *p = NULL;
    qkc_kernel *k = NULL;
    char msg[1024] = "";
    int bad = 1;
    if (qkc_program_create(ctx, c->source, "diff.qk", &p) != QKC_OK || qkc_kernel_get(p, "k", &k) != QKC_OK) {
        snprintf(msg, sizeof msg, "compile: %s", qkc_errmsg(ctx));
        describe(c, k, seed, msg);
        qkc_program_destroy(p);
        return 1;
    }
    int64_t dims[8];
    for (int i = 0; i < qkc_kernel_ndims(k) && i < 8; i++)
        dims[i] = dim_value(c, qkc_kernel_dim_name(k, i));
    rtt_rng r = {seed + (uint64_t)c->index};
    rtt_args a;
    qkc_launch_options o = {.threads = c->threads};
    if (rtt_args_make(p, k, dims, &r, &a, msg, sizeof msg) != 0)
        ;
    else if (qkc_reference(k, a.ref, a.n) != QKC_OK)
        snprintf(msg, sizeof msg, "reference: %s", qkc_errmsg(ctx));
    else if (qkc_launch(k, a.t, a.n, &o) != QKC_OK)
        snprintf(msg, sizeof msg, "launch: %s", qkc_errmsg(ctx));
    else
        bad = rtt_compare(&a, msg, sizeof msg);
    if (bad)
        describe(c, k, seed, msg);
    rtt_args_free(&a);
    qkc_program_destroy(p);
    return bad;
}

static uint64_t env_u64(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : def;
}

static void test_diff(void)
{
    uint64_t seed = env_u64("QKC_SEED", (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20));
    int n = (int)env_u64("QKC_DIFF_CASES", 200);
    int only = getenv("QKC_DIFF_ONLY") ? (int)env_u64("QKC_DIFF_ONLY", 0) : -1;
    printf("\ndiff: seed %llu, %d cases (QKC_SEED=%llu to replay)\n", (unsigned long long)seed, n,
           (unsigned long long)seed);
    qkc_ctx *ctx = NULL;
    qkc_ctx_options opts = {.threads = 4};
    CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&opts, &ctx), QKC_OK);
    int passed = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        if (only >= 0 && i != only)
            continue;
        diff_case c;
        make_case(seed, i, &c);
        if (run_case(ctx, seed, &c))
            failed++;
        else
            passed++;
    }
    qkc_ctx_destroy(ctx);
    printf("diff: %d passed, %d failed (seed %llu)\n", passed, failed, (unsigned long long)seed);
    CU_ASSERT_EQUAL(failed, 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("diff", NULL, NULL);
    CU_add_test(s, "random kernels vs the reference", test_diff);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}
