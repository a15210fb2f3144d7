/* test_api.c — the public API of libqkc (include/qkc.h), through the
 * runtime: every status code, NULL handles, diagnostics, introspection,
 * launch validation, raw function pointers, packers, the kernel cache and
 * concurrent compile + launch from several threads on one context. */
#include <CUnit/Basic.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qkc.h"
#include "runtime/runtime.h"
#include "support/rt_test.h"

static const char *SRC =
    "format q4 { code = uint4 offset 8; block = 32; scale = f16 }\n"
    "format q8 { code = int8; block = 32; scale = f32 }\n"
    "kernel gemv(x: f32[K], W: q4[N, K], b: f32[N]) -> y: f32[N] {\n"
    "  y[n] = sum(k) x[k] * W[n, k] + b[n]\n"
    "}\n"
    "kernel shift(x: f32[N]) -> y: f32[N] {\n"
    "  y[i] = x[i + 1]\n"
    "}\n"
    "kernel mm(x: f32[M, K], w: f32[N, K]) -> y: f32[M, N] {\n"
    "  y[m, n] = sum(k) x[m, k] * w[n, k]\n"
    "}\n";

static qkc_ctx *new_ctx(const char *target, int threads)
{
    qkc_ctx *ctx = NULL;
    qkc_ctx_options o = {.target = target, .threads = threads};
    CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&o, &ctx), QKC_OK);
    return ctx;
}

static qkc_program *new_prog(qkc_ctx *ctx, const char *src)
{
    qkc_program *p = NULL;
    qkc_status st = qkc_program_create(ctx, src, "test.qk", &p);
    if (st != QKC_OK)
        fprintf(stderr, "%s\n", qkc_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(st, QKC_OK);
    return p;
}

/* ---- version, status names ---- */

static void test_strerror(void)
{
    CU_ASSERT_STRING_EQUAL(qkc_version(), "0.2.0");
    for (int s = QKC_OK; s <= QKC_ERR_INTERNAL; s++) {
        const char *m = qkc_strerror((qkc_status)s);
        CU_ASSERT_PTR_NOT_NULL_FATAL(m);
        CU_ASSERT(strlen(m) > 0);
        for (int t = QKC_OK; t < s; t++)
            CU_ASSERT(strcmp(m, qkc_strerror((qkc_status)t)) != 0);
    }
    CU_ASSERT_PTR_NOT_NULL(qkc_strerror((qkc_status)999));
    CU_ASSERT_PTR_NOT_NULL(qkc_strerror((qkc_status)-1));
}

/* ---- NULL handles ---- */

static void test_null_handles(void)
{
    qkc_ctx_destroy(NULL);
    qkc_program_destroy(NULL);
    CU_ASSERT_EQUAL(qkc_ctx_create(NULL, NULL), QKC_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(qkc_ctx_target(NULL));
    CU_ASSERT_PTR_NOT_NULL(qkc_errmsg(NULL));
    qkc_program *p = (qkc_program *)1;
    CU_ASSERT_EQUAL(qkc_program_create(NULL, SRC, NULL, &p), QKC_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_EQUAL(qkc_program_create_file(NULL, "x.qk", &p), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qkc_program_ndiagnostics(NULL), 0);
    CU_ASSERT_STRING_EQUAL(qkc_program_diagnostics_text(NULL), "");
    CU_ASSERT_EQUAL(qkc_program_nkernels(NULL), 0);
    CU_ASSERT_PTR_NULL(qkc_program_kernel_name(NULL, 0));
    qkc_diagnostic d;
    CU_ASSERT_EQUAL(qkc_program_diagnostic(NULL, 0, &d), QKC_ERR_INVALID_ARG);
    qkc_kernel *k = (qkc_kernel *)1;
    CU_ASSERT_EQUAL(qkc_kernel_get(NULL, "gemv", &k), QKC_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT_PTR_NULL(qkc_kernel_name(NULL));
    CU_ASSERT_EQUAL(qkc_kernel_nparams(NULL), 0);
    CU_ASSERT_EQUAL(qkc_kernel_ndims(NULL), 0);
    CU_ASSERT_PTR_NULL(qkc_kernel_dim_name(NULL, 0));
    CU_ASSERT_PTR_NULL(qkc_kernel_c_signature(NULL));
    qkc_param_info pi;
    CU_ASSERT_EQUAL(qkc_kernel_param(NULL, 0, &pi), QKC_ERR_INVALID_ARG);
    void *fn;
    CU_ASSERT_EQUAL(qkc_kernel_fnptr(NULL, &fn), QKC_ERR_INVALID_ARG);
    int64_t items;
    CU_ASSERT_EQUAL(qkc_kernel_work_items(NULL, NULL, &items), QKC_ERR_INVALID_ARG);
    char *text;
    CU_ASSERT_EQUAL(qkc_kernel_emit(NULL, "kir", &text), QKC_ERR_INVALID_ARG);
    qkc_tensor t = {0};
    CU_ASSERT_EQUAL(qkc_launch(NULL, &t, 1, NULL), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qkc_reference(NULL, &t, 1), QKC_ERR_INVALID_ARG);
    size_t bytes;
    float f = 0;
    CU_ASSERT_EQUAL(qkc_format_size(NULL, "q4", 1, 32, &bytes), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qkc_pack(NULL, "q4", &f, 1, 1, &bytes, sizeof bytes), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qkc_unpack(NULL, "q4", &bytes, sizeof bytes, 1, 1, &f), QKC_ERR_INVALID_ARG);
}

static void test_null_args_with_ctx(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 2);
    qkc_program *p = NULL;
    CU_ASSERT_EQUAL(qkc_program_create(ctx, NULL, NULL, &p), QKC_ERR_INVALID_ARG);
    CU_ASSERT(strstr(qkc_errmsg(ctx), "source") != NULL);
    CU_ASSERT_EQUAL(qkc_program_create(ctx, SRC, NULL, NULL), QKC_ERR_INVALID_ARG);
    p = new_prog(ctx, SRC);
    qkc_kernel *k = NULL;
    CU_ASSERT_EQUAL(qkc_kernel_get(p, NULL, &k), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qkc_kernel_get(p, "gemv", NULL), QKC_ERR_INVALID_ARG);
    qkc_ctx_options bad = {.threads = -1};
    qkc_ctx *c2 = NULL;
    CU_ASSERT_EQUAL(qkc_ctx_create(&bad, &c2), QKC_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(c2);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* ---- contexts and targets ---- */

static void test_targets(void)
{
    qkc_ctx *ctx = NULL;
    qkc_ctx_options o = {.target = "pdp11"};
    CU_ASSERT_EQUAL(qkc_ctx_create(&o, &ctx), QKC_ERR_TARGET);
    CU_ASSERT_PTR_NULL(ctx);
    CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(NULL, &ctx), QKC_OK);
    CU_ASSERT_STRING_EQUAL(qkc_ctx_target(ctx), "host");
    CU_ASSERT_STRING_EQUAL(qkc_errmsg(ctx), "");
    qkc_ctx_destroy(ctx);
    /* A GPU context creates and parses programs without a GPU. */
    ctx = new_ctx("sm_90", 1);
    CU_ASSERT_STRING_EQUAL(qkc_ctx_target(ctx), "sm_90");
    qkc_program *p = new_prog(ctx, SRC);
    CU_ASSERT_EQUAL(qkc_program_nkernels(p), 3);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* ---- files and diagnostics ---- */

static void test_io(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 1);
    qkc_program *p = (qkc_program *)1;
    CU_ASSERT_EQUAL(qkc_program_create_file(ctx, "/nonexistent/dir/x.qk", &p), QKC_ERR_IO);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT(strstr(qkc_errmsg(ctx), "/nonexistent/dir/x.qk") != NULL);
    CU_ASSERT_EQUAL(qkc_program_create_file(ctx, QKC_SOURCE_DIR "/examples/q4_gemv.qk", &p), QKC_OK);
    CU_ASSERT_EQUAL(qkc_program_nkernels(p), 1);
    CU_ASSERT_STRING_EQUAL(qkc_program_kernel_name(p, 0), "gemv");
    CU_ASSERT_PTR_NULL(qkc_program_kernel_name(p, 1));
    CU_ASSERT_PTR_NULL(qkc_program_kernel_name(p, -1));
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

static void test_compile_error(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 1);
    qkc_program *p = NULL;
    const char *bad = "kernel bad(x: f32[N]) -> y: f32[N] {\n  y[i] = x[i] +* 2\n}\n";
    CU_ASSERT_EQUAL(qkc_program_create(ctx, bad, "bad.qk", &p), QKC_ERR_COMPILE);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT(strstr(qkc_errmsg(ctx), "error") != NULL);
    CU_ASSERT(qkc_program_ndiagnostics(p) >= 1);
    qkc_diagnostic d;
    CU_ASSERT_EQUAL_FATAL(qkc_program_diagnostic(p, 0, &d), QKC_OK);
    CU_ASSERT_EQUAL(d.severity, QKC_SEV_ERROR);
    CU_ASSERT_EQUAL(d.line, 2);
    CU_ASSERT(d.col > 1);
    CU_ASSERT_PTR_NOT_NULL(d.message);
    CU_ASSERT(d.file && strcmp(d.file, "bad.qk") == 0);
    CU_ASSERT_EQUAL(qkc_program_diagnostic(p, 99, &d), QKC_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(qkc_program_diagnostic(p, 0, NULL), QKC_ERR_INVALID_ARG);
    const char *text = qkc_program_diagnostics_text(p);
    CU_ASSERT(strstr(text, "bad.qk:2:") != NULL);
    CU_ASSERT(strstr(text, "error:") != NULL);
    CU_ASSERT(strchr(text, '^') != NULL);
    CU_ASSERT_EQUAL(qkc_program_nkernels(p), 0);
    qkc_kernel *k = NULL;
    CU_ASSERT_EQUAL(qkc_kernel_get(p, "bad", &k), QKC_ERR_INVALID_ARG);
    size_t bytes;
    CU_ASSERT_EQUAL(qkc_format_size(p, "q4", 1, 1, &bytes), QKC_ERR_INVALID_ARG);
    qkc_program_destroy(p);
    p = new_prog(ctx, SRC);
    CU_ASSERT_EQUAL(qkc_program_ndiagnostics(p), 0);
    CU_ASSERT_STRING_EQUAL(qkc_program_diagnostics_text(p), "");
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* ---- kernels: lookup, introspection ---- */

static void test_not_found(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 1);
    qkc_program *p = new_prog(ctx, SRC);
    qkc_kernel *k = NULL;
    CU_ASSERT_EQUAL(qkc_kernel_get(p, "nope", &k), QKC_ERR_NOT_FOUND);
    CU_ASSERT_PTR_NULL(k);
    CU_ASSERT_STRING_EQUAL(qkc_errmsg(ctx), "no kernel 'nope' in program; kernels: gemv, shift, mm");
    size_t bytes;
    CU_ASSERT_EQUAL(qkc_format_size(p, "q5", 1, 32, &bytes), QKC_ERR_NOT_FOUND);
    CU_ASSERT(strstr(qkc_errmsg(ctx), "q4") != NULL);
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "gemv", &k), QKC_OK);
    qkc_param_info pi;
    CU_ASSERT_EQUAL(qkc_kernel_param(k, 4, &pi), QKC_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(qkc_kernel_param(k, -1, &pi), QKC_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(qkc_kernel_param(k, 0, NULL), QKC_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NULL(qkc_kernel_dim_name(k, 2));
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

static void test_introspection(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 1);
    qkc_program *p = new_prog(ctx, SRC);
    qkc_kernel *k = NULL, *k2 = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "gemv", &k), QKC_OK);
    CU_ASSERT_EQUAL(qkc_kernel_get(p, "gemv", &k2), QKC_OK);
    CU_ASSERT_PTR_EQUAL(k, k2);
    CU_ASSERT_STRING_EQUAL(qkc_kernel_name(k), "gemv");
    CU_ASSERT_EQUAL(qkc_kernel_nparams(k), 4);
    qkc_param_info pi;
    CU_ASSERT_EQUAL(qkc_kernel_param(k, 1, &pi), QKC_OK);
    CU_ASSERT_STRING_EQUAL(pi.name, "W");
    CU_ASSERT_EQUAL(pi.dtype, QKC_PACKED);
    CU_ASSERT_STRING_EQUAL(pi.format, "q4");
    CU_ASSERT_EQUAL(pi.rank, 2);
    CU_ASSERT_STRING_EQUAL(pi.dims[0], "N");
    CU_ASSERT_STRING_EQUAL(pi.dims[1], "K");
    CU_ASSERT_FALSE(pi.is_result);
    CU_ASSERT_EQUAL(qkc_kernel_param(k, 3, &pi), QKC_OK);
    CU_ASSERT_STRING_EQUAL(pi.name, "y");
    CU_ASSERT_TRUE(pi.is_result);
    CU_ASSERT_EQUAL(pi.dtype, QKC_F32);
    CU_ASSERT_PTR_NULL(pi.format);
    CU_ASSERT_EQUAL(qkc_kernel_ndims(k), 2);
    CU_ASSERT_STRING_EQUAL(qkc_kernel_dim_name(k, 0), "K");
    CU_ASSERT_STRING_EQUAL(qkc_kernel_dim_name(k, 1), "N");
    CU_ASSERT_STRING_EQUAL(qkc_kernel_c_signature(k),
                           "void gemv(const float *x, const uint8_t *W, const float *b, float *y, int64_t K, "
                           "int64_t N, int64_t begin, int64_t end)");
    qkc_kernel *mm = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "mm", &mm), QKC_OK);
    CU_ASSERT(strstr(qkc_kernel_c_signature(mm), "int64_t x_stride0") != NULL);
    qkc_program *pc = new_prog(ctx, "kernel cv(x: f32[H]) -> y: f32[H-2] {\n  y[h] = x[h + 2]\n}\n");
    qkc_kernel *kc = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(pc, "cv", &kc), QKC_OK);
    CU_ASSERT_EQUAL(qkc_kernel_param(kc, 1, &pi), QKC_OK);
    CU_ASSERT_STRING_EQUAL(pi.dims[0], "H-2");
    qkc_program_destroy(pc);
    int64_t dims[2] = {64, 40}, items = -1;
    CU_ASSERT_EQUAL(qkc_kernel_work_items(k, dims, &items), QKC_OK);
    CU_ASSERT(items >= 1 && items <= 40);
    dims[1] = -1;
    CU_ASSERT_EQUAL(qkc_kernel_work_items(k, dims, &items), QKC_ERR_SHAPE);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

static void test_emit(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 1);
    qkc_program *p = new_prog(ctx, SRC);
    qkc_kernel *k = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "gemv", &k), QKC_OK);
    static const char *const ok[] = {"ast", "kir", "tir", "llvm", "asm"};
    for (int i = 0; i < 5; i++) {
        char *text = NULL;
        qkc_status st = qkc_kernel_emit(k, ok[i], &text);
        if (st != QKC_OK)
            fprintf(stderr, "emit %s: %s\n", ok[i], qkc_errmsg(ctx));
        CU_ASSERT_EQUAL(st, QKC_OK);
        CU_ASSERT(text && strlen(text) > 0);
        free(text);
    }
    char *text = (char *)1;
    CU_ASSERT_EQUAL(qkc_kernel_emit(k, "ptx", &text), QKC_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NULL(text);
    CU_ASSERT(strstr(qkc_errmsg(ctx), "GPU target") != NULL);
    CU_ASSERT_EQUAL(qkc_kernel_emit(k, "cuda", &text), QKC_ERR_UNSUPPORTED);
    CU_ASSERT_EQUAL(qkc_kernel_emit(k, "bogus", &text), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qkc_kernel_emit(k, NULL, &text), QKC_ERR_INVALID_ARG);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* ---- launches ---- */

typedef struct gemv_bufs {
    float x[64], b[40], y[40], yref[40];
    uint8_t W[40 * 2 * 18];
    qkc_tensor t[4];
} gemv_bufs;

/* gemv with K = 64, N = 40, random contents. */
static void gemv_setup(qkc_program *p, gemv_bufs *g, uint64_t seed)
{
    rtt_rng r = {seed};
    float w[40 * 64];
    for (int i = 0; i < 64; i++)
        g->x[i] = (float)rtt_uniform(&r, -1, 1);
    for (int i = 0; i < 40; i++)
        g->b[i] = (float)rtt_uniform(&r, -1, 1);
    for (int i = 0; i < 40 * 64; i++)
        w[i] = (float)rtt_uniform(&r, -1, 1);
    size_t bytes = 0;
    CU_ASSERT_EQUAL(qkc_format_size(p, "q4", 40, 64, &bytes), QKC_OK);
    CU_ASSERT_EQUAL_FATAL(bytes, sizeof g->W);
    CU_ASSERT_EQUAL(qkc_pack(p, "q4", w, 40, 64, g->W, sizeof g->W), QKC_OK);
    g->t[0] = (qkc_tensor){g->x, QKC_F32, 1, {64}};
    g->t[1] = (qkc_tensor){g->W, QKC_PACKED, 2, {40, 64}};
    g->t[2] = (qkc_tensor){g->b, QKC_F32, 1, {40}};
    g->t[3] = (qkc_tensor){g->y, QKC_F32, 1, {40}};
}

static void test_launch_gemv(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 4);
    qkc_program *p = new_prog(ctx, SRC);
    qkc_kernel *k = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "gemv", &k), QKC_OK);
    gemv_bufs g;
    gemv_setup(p, &g, 7);
    CU_ASSERT_EQUAL_FATAL(qkc_reference(k, g.t, 4), QKC_OK);
    memcpy(g.yref, g.y, sizeof g.y);
    for (int threads = 0; threads <= 4; threads++) {
        memset(g.y, 0xff, sizeof g.y);
        qkc_launch_options o = {.threads = threads};
        CU_ASSERT_EQUAL(qkc_launch(k, g.t, 4, &o), QKC_OK);
        double maxerr = 0, maxref = 0;
        for (int i = 0; i < 40; i++) {
            double e = g.y[i] - g.yref[i];
            maxerr = e < 0 ? (-e > maxerr ? -e : maxerr) : (e > maxerr ? e : maxerr);
            maxref = g.yref[i] > maxref ? g.yref[i] : (-g.yref[i] > maxref ? -g.yref[i] : maxref);
            CU_ASSERT(g.y[i] == g.y[i]); /* no NaN: every output written */
        }
        CU_ASSERT(maxerr <= 1e-4 * maxref);
    }
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* Expects st on a launch and on a reference run with args. */
static void expect_both(qkc_kernel *k, qkc_tensor *t, int n, qkc_status st, const char *what)
{
    qkc_status a = qkc_launch(k, t, n, NULL), b = qkc_reference(k, t, n);
    if (a != st || b != st)
        fprintf(stderr, "\n  %s: launch %s, reference %s, expected %s\n", what, qkc_strerror(a), qkc_strerror(b),
                qkc_strerror(st));
    CU_ASSERT_EQUAL(a, st);
    CU_ASSERT_EQUAL(b, st);
}

static void test_launch_validation(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 2);
    qkc_program *p = new_prog(ctx, SRC);
    qkc_kernel *k = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "gemv", &k), QKC_OK);
    gemv_bufs g;
    gemv_setup(p, &g, 1);
    expect_both(k, g.t, 3, QKC_ERR_SHAPE, "nargs");
    CU_ASSERT(strstr(qkc_errmsg(ctx), "takes 4 tensors") != NULL);
    expect_both(k, NULL, 4, QKC_ERR_INVALID_ARG, "NULL args");
    qkc_tensor t[4];
    memcpy(t, g.t, sizeof t);
    t[0].rank = 2, t[0].shape[1] = 1;
    expect_both(k, t, 4, QKC_ERR_SHAPE, "rank");
    memcpy(t, g.t, sizeof t);
    t[0].shape[0] = 63; /* K from x disagrees with W */
    expect_both(k, t, 4, QKC_ERR_SHAPE, "shape");
    memcpy(t, g.t, sizeof t);
    t[3].shape[0] = -1;
    expect_both(k, t, 4, QKC_ERR_SHAPE, "negative shape");
    memcpy(t, g.t, sizeof t);
    t[0].strides[0] = 2;
    expect_both(k, t, 4, QKC_ERR_SHAPE, "inner stride");
    CU_ASSERT(strstr(qkc_errmsg(ctx), "innermost stride") != NULL);
    memcpy(t, g.t, sizeof t);
    t[0].strides[0] = -1;
    expect_both(k, t, 4, QKC_ERR_SHAPE, "negative stride");
    memcpy(t, g.t, sizeof t);
    t[0].dtype = QKC_F16;
    expect_both(k, t, 4, QKC_ERR_DTYPE, "dense dtype");
    memcpy(t, g.t, sizeof t);
    t[1].dtype = QKC_U8;
    expect_both(k, t, 4, QKC_ERR_DTYPE, "packed dtype");
    CU_ASSERT(strstr(qkc_errmsg(ctx), "QKC_PACKED") != NULL);
    memcpy(t, g.t, sizeof t);
    t[2].dtype = QKC_PACKED;
    expect_both(k, t, 4, QKC_ERR_DTYPE, "dense as packed");
    memcpy(t, g.t, sizeof t);
    t[3].data = NULL;
    expect_both(k, t, 4, QKC_ERR_INVALID_ARG, "NULL data");
    qkc_launch_options o = {.threads = -1};
    CU_ASSERT_EQUAL(qkc_launch(k, g.t, 4, &o), QKC_ERR_INVALID_ARG);
    /* empty tensors: N = 0, NULL data is fine */
    memcpy(t, g.t, sizeof t);
    t[1].shape[0] = 0, t[2].shape[0] = 0, t[3].shape[0] = 0;
    t[1].data = t[2].data = t[3].data = NULL;
    expect_both(k, t, 4, QKC_OK, "empty");
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* y[i] = x[i + 1] with x and y both [N]: reads x[N], out of range. */
static void test_affine_range(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 1);
    qkc_program *p = new_prog(ctx, SRC);
    qkc_kernel *k = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "shift", &k), QKC_OK);
    float x[8] = {0}, y[8];
    qkc_tensor t[2] = {{x, QKC_F32, 1, {8}}, {y, QKC_F32, 1, {8}}};
    expect_both(k, t, 2, QKC_ERR_SHAPE, "affine index out of range");
    CU_ASSERT(strlen(qkc_errmsg(ctx)) > 0);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* Strided (non-contiguous) rows on a dense GEMM match the reference. */
static void test_strided(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 2);
    qkc_program *p = new_prog(ctx, SRC);
    qkc_kernel *k = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "mm", &k), QKC_OK);
    enum { M = 5, N = 7, K = 13, LD = 20 };
    float x[M * LD], w[N * K], y[M * N], yr[M * N];
    rtt_rng r = {3};
    for (int i = 0; i < M * LD; i++)
        x[i] = (float)rtt_uniform(&r, -1, 1);
    for (int i = 0; i < N * K; i++)
        w[i] = (float)rtt_uniform(&r, -1, 1);
    qkc_tensor t[3] = {{x, QKC_F32, 2, {M, K}, {LD, 1}}, {w, QKC_F32, 2, {N, K}}, {y, QKC_F32, 2, {M, N}}};
    CU_ASSERT_EQUAL_FATAL(qkc_reference(k, t, 3), QKC_OK);
    memcpy(yr, y, sizeof y);
    memset(y, 0xff, sizeof y);
    CU_ASSERT_EQUAL_FATAL(qkc_launch(k, t, 3, NULL), QKC_OK);
    for (int i = 0; i < M * N; i++)
        CU_ASSERT_DOUBLE_EQUAL(y[i], yr[i], 1e-4);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

typedef void (*gemv_fn)(const float *, const uint8_t *, const float *, float *, int64_t, int64_t, int64_t,
                        int64_t);

static void test_fnptr(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 3);
    qkc_program *p = new_prog(ctx, SRC);
    qkc_kernel *k = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "gemv", &k), QKC_OK);
    void *fn = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_fnptr(k, &fn), QKC_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(fn);
    gemv_bufs g;
    gemv_setup(p, &g, 11);
    CU_ASSERT_EQUAL_FATAL(qkc_launch(k, g.t, 4, NULL), QKC_OK);
    memcpy(g.yref, g.y, sizeof g.y);
    int64_t dims[2] = {64, 40}, items = 0; /* K, N */
    CU_ASSERT_EQUAL(qkc_kernel_work_items(k, dims, &items), QKC_OK);
    memset(g.y, 0, sizeof g.y);
    ((gemv_fn)fn)(g.x, g.W, g.b, g.y, 64, 40, 0, items);
    CU_ASSERT_EQUAL(memcmp(g.y, g.yref, sizeof g.y), 0);
    memset(g.y, 0, sizeof g.y); /* two disjoint halves */
    ((gemv_fn)fn)(g.x, g.W, g.b, g.y, 64, 40, 0, items / 2);
    ((gemv_fn)fn)(g.x, g.W, g.b, g.y, 64, 40, items / 2, items);
    CU_ASSERT_EQUAL(memcmp(g.y, g.yref, sizeof g.y), 0);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* A GPU target: kernels compile (CUDA C) without a GPU; launching reports
 * QKC_ERR_NO_DEVICE here, or runs and matches the reference on a GPU. */
static void test_gpu_target(void)
{
    qkc_ctx *ctx = new_ctx("sm_90", 1);
    qkc_program *p = new_prog(ctx, SRC);
    qkc_kernel *k = NULL;
    qkc_status st = qkc_kernel_get(p, "gemv", &k);
    if (st != QKC_OK)
        fprintf(stderr, "\n  sm_90 kernel_get: %s\n", qkc_errmsg(ctx));
    CU_ASSERT_EQUAL_FATAL(st, QKC_OK);
    void *fn = (void *)1;
    CU_ASSERT_EQUAL(qkc_kernel_fnptr(k, &fn), QKC_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NULL(fn);
    char *text = NULL;
    CU_ASSERT_EQUAL(qkc_kernel_emit(k, "cuda", &text), QKC_OK);
    CU_ASSERT(text && strstr(text, "__global__") != NULL);
    free(text);
    CU_ASSERT_EQUAL(qkc_kernel_emit(k, "asm", &text), QKC_ERR_UNSUPPORTED);
    gemv_bufs g;
    gemv_setup(p, &g, 5);
    CU_ASSERT_EQUAL_FATAL(qkc_reference(k, g.t, 4), QKC_OK);
    memcpy(g.yref, g.y, sizeof g.y);
    memset(g.y, 0xff, sizeof g.y);
    st = qkc_launch(k, g.t, 4, NULL);
    if (st == QKC_OK) {
        for (int i = 0; i < 40; i++)
            CU_ASSERT_DOUBLE_EQUAL(g.y[i], g.yref[i], 1e-3);
    } else {
        CU_ASSERT_EQUAL(st, QKC_ERR_NO_DEVICE);
        CU_ASSERT(strlen(qkc_errmsg(ctx)) > 0);
    }
    /* validation still comes first */
    CU_ASSERT_EQUAL(qkc_launch(k, g.t, 2, NULL), QKC_ERR_SHAPE);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* ---- codebooks, quantizer options, phases: bad input ---- */

static const char VQ_SRC[] = "format vq { code = vq4 dim 2; block = 8; scale = f16 per row }\n"
                             "format q8 { code = int8; block = 32; scale = f16 }\n"
                             "kernel g(x: f32[K], W: vq(C)[N, K], C: f16[16, 2]) -> y: f32[N] {\n"
                             "  y[n] = sum(k) x[k] * W[n, k]\n"
                             "}\n"
                             "kernel gs(x: f32[K], W: vq(C)[N, K], C: f16[S, 2]) -> y: f32[N] {\n"
                             "  y[n] = sum(k) x[k] * W[n, k]\n"
                             "}\n"
                             "kernel qd(x: f32[K], W: q8[N, K]) -> y: f32[N] {\n"
                             "  xq[k] = quantize(x[k], q8)\n"
                             "  y[n] = sum(k) xq[k] * W[n, k]\n"
                             "}\n";

static void test_codebook_errors(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 1);
    qkc_program *p = new_prog(ctx, VQ_SRC);
    size_t elems = 0, bytes = 0;
    qkc_dtype dt;
    CU_ASSERT_EQUAL(qkc_format_codebook(p, "vq", NULL, &dt), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qkc_format_codebook(p, "nope", &elems, &dt), QKC_ERR_NOT_FOUND);
    CU_ASSERT_EQUAL(qkc_format_codebook(p, "vq", &elems, &dt), QKC_OK);
    CU_ASSERT_EQUAL(elems, 32);
    CU_ASSERT_EQUAL(dt, QKC_F16);
    CU_ASSERT_EQUAL(qkc_format_codebook(p, "q8", &elems, &dt), QKC_OK);
    CU_ASSERT_EQUAL(elems, 0);
    enum { R = 3, C = 20 };
    float src[R * C], back[R * C];
    rtt_rng r = {5};
    for (int i = 0; i < R * C; i++)
        src[i] = (float)rtt_uniform(&r, -1, 1);
    uint16_t book[32];
    for (int i = 0; i < 32; i++)
        book[i] = qk_f32_to_f16((float)rtt_uniform(&r, -1, 1));
    CU_ASSERT_EQUAL_FATAL(qkc_format_size(p, "vq", R, C, &bytes), QKC_OK);
    uint8_t *buf = malloc(bytes);
    /* no codebook, a short one: clear errors, nothing written */
    CU_ASSERT_EQUAL(qkc_pack(p, "vq", src, R, C, buf, bytes), QKC_ERR_INVALID_ARG);
    CU_ASSERT(strstr(qkc_errmsg(ctx), "codebook") != NULL);
    qkc_pack_options o = {book, sizeof book - 2, 0};
    CU_ASSERT_EQUAL(qkc_pack_ex(p, "vq", src, R, C, buf, bytes, &o), QKC_ERR_SHAPE);
    CU_ASSERT(strstr(qkc_errmsg(ctx), "64 bytes") != NULL);
    CU_ASSERT_EQUAL(qkc_unpack(p, "vq", buf, bytes, R, C, back), QKC_ERR_INVALID_ARG);
    o.codebook_bytes = sizeof book;
    CU_ASSERT_EQUAL(qkc_pack_ex(p, "vq", src, R, C, buf, bytes, &o), QKC_OK);
    CU_ASSERT_EQUAL(qkc_unpack_ex(p, "vq", buf, bytes, R, C, back, &o), QKC_OK);
    /* a launch whose codebook tensor has the wrong shape is refused before any memory is read */
    qkc_kernel *k = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "gs", &k), QKC_OK);
    qkc_param_info in;
    CU_ASSERT_EQUAL(qkc_kernel_param(k, 1, &in), QKC_OK);
    CU_ASSERT_EQUAL(in.codebook, 2);
    float x[C], y[R];
    qkc_tensor t[4] = {
        {x, QKC_F32, 1, {C}, {0}}, {buf, QKC_PACKED, 2, {R, C}, {0}}, {book, QKC_F16, 2, {8, 2}, {0}},
        {y, QKC_F32, 1, {R}, {0}}};
    CU_ASSERT_EQUAL(qkc_launch(k, t, 4, NULL), QKC_ERR_SHAPE);
    CU_ASSERT(strstr(qkc_errmsg(ctx), "codebook tensor 'C'") != NULL);
    t[2].shape[0] = 16;
    CU_ASSERT_EQUAL(qkc_launch(k, t, 4, NULL), QKC_OK);
    /* quantize() kernels run in phases with scratch: no raw pointer */
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "qd", &k), QKC_OK);
    void *fn = (void *)1;
    CU_ASSERT_EQUAL(qkc_kernel_fnptr(k, &fn), QKC_ERR_UNSUPPORTED);
    CU_ASSERT_PTR_NULL(fn);
    CU_ASSERT(strstr(qkc_errmsg(ctx), "qkc_launch") != NULL);
    free(buf);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* ---- packers ---- */

static void test_pack_roundtrip(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 1);
    qkc_program *p = new_prog(ctx, SRC);
    enum { R = 3, C = 70 };
    float src[R * C], back[R * C], back2[R * C];
    rtt_rng r = {9};
    for (int i = 0; i < R * C; i++)
        src[i] = (float)rtt_uniform(&r, -2, 2);
    size_t bytes = 0;
    CU_ASSERT_EQUAL_FATAL(qkc_format_size(p, "q8", R, C, &bytes), QKC_OK);
    CU_ASSERT_EQUAL(bytes, (size_t)(R * 3 * (4 + 32))); /* 3 blocks of f32 scale + 32 codes per row */
    uint8_t *buf = malloc(bytes), *buf2 = malloc(bytes);
    CU_ASSERT_EQUAL(qkc_pack(p, "q8", src, R, C, buf, bytes - 1), QKC_ERR_SHAPE);
    CU_ASSERT_EQUAL(qkc_pack(p, "q8", src, R, C, buf, bytes), QKC_OK);
    CU_ASSERT_EQUAL(qkc_unpack(p, "q8", buf, bytes - 1, R, C, back), QKC_ERR_SHAPE);
    CU_ASSERT_EQUAL(qkc_unpack(p, "q8", buf, bytes, R, C, back), QKC_OK);
    for (int i = 0; i < R * C; i++)
        CU_ASSERT(back[i] - src[i] <= 2.0 / 127 && src[i] - back[i] <= 2.0 / 127);
    /* decoded values are representable: packing them again is exact */
    CU_ASSERT_EQUAL(qkc_pack(p, "q8", back, R, C, buf2, bytes), QKC_OK);
    CU_ASSERT_EQUAL(qkc_unpack(p, "q8", buf2, bytes, R, C, back2), QKC_OK);
    CU_ASSERT_EQUAL(memcmp(back, back2, sizeof back), 0);
    CU_ASSERT_EQUAL(qkc_format_size(p, "q8", -1, C, &bytes), QKC_ERR_SHAPE);
    CU_ASSERT_EQUAL(qkc_pack(p, "q8", NULL, R, C, buf, bytes), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qkc_format_size(p, "q8", R, C, NULL), QKC_ERR_INVALID_ARG);
    free(buf);
    free(buf2);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* ---- the cache ---- */

/* qkc_kernel_get_ex: explicit configurations, shapes and the tuning
 * database; every bad option is an error with a message, never a crash. */
static void test_kernel_options(void)
{
    char dir[] = "/tmp/qkc-api-XXXXXX", db[64];
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    snprintf(db, sizeof db, "%s/bad.db", dir);
    FILE *f = fopen(db, "wb");
    CU_ASSERT_FATAL(f != NULL);
    for (int i = 0; i < 4096; i++)
        fputc((i * 7919) & 0xff, f); /* not a database */
    fclose(f);
    qkc_ctx *ctx = NULL;
    qkc_ctx_options o = {.threads = 2, .tuning_db = db, .cache_dir = ""};
    CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&o, &ctx), QKC_OK);
    qkc_program *p = new_prog(ctx, SRC);
    static const struct {
        const char *config, *dims, *want;
    } bad[] = {
        {"tile_par=0", NULL, "out of range"},   {"tile_par=abc", NULL, "integer"},
        {"frob=1", NULL, "unknown key"},        {"tile_par", NULL, "key=value"},
        {"idot=2", NULL, "out of range"},       {"tile.n=0", NULL, "tile request"},
        {NULL, "Q=4", "no dimension 'Q'"},      {NULL, "N=abc", "not a dimension value"},
        {NULL, "N=-1", "not a dimension value"}, {NULL, "N", "NAME=VALUE"},
    };
    for (int i = 0; i < QK_COUNT(bad); i++) {
        qkc_kernel *k = (qkc_kernel *)1;
        qkc_kernel_options ko = {.config = bad[i].config, .dims = bad[i].dims};
        CU_ASSERT_EQUAL(qkc_kernel_get_ex(p, "gemv", &ko, &k), QKC_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NULL(k);
        if (!strstr(qkc_errmsg(ctx), bad[i].want))
            printf("\n'%s' / '%s': message '%s' lacks '%s'\n", bad[i].config ? bad[i].config : "",
                   bad[i].dims ? bad[i].dims : "", qkc_errmsg(ctx), bad[i].want);
        CU_ASSERT(strstr(qkc_errmsg(ctx), bad[i].want) != NULL);
    }
    qkc_kernel *k = NULL;
    qkc_kernel_options neg = {.threads = -1};
    CU_ASSERT_EQUAL(qkc_kernel_get_ex(p, "gemv", &neg, &k), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qkc_kernel_get_ex(p, NULL, NULL, &k), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qkc_kernel_config(NULL, NULL, NULL), QKC_ERR_INVALID_ARG);
    /* an explicit configuration is used as given, and computes the same */
    qkc_kernel_options ex = {.config = "tile_par=2 unroll=1 idot=0", .dims = "N=40,K=100"};
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get_ex(p, "gemv", &ex, &k), QKC_OK);
    const char *cfg = NULL, *origin = NULL;
    CU_ASSERT_EQUAL(qkc_kernel_config(k, &cfg, &origin), QKC_OK);
    CU_ASSERT(cfg && strstr(cfg, "tile_par=2") && strstr(cfg, "idot=0"));
    CU_ASSERT(origin && strcmp(origin, "explicit") == 0);
    gemv_bufs g;
    gemv_setup(p, &g, 2);
    CU_ASSERT_EQUAL(qkc_launch(k, g.t, 4, NULL), QKC_OK);
    memcpy(g.yref, g.y, sizeof g.y);
    CU_ASSERT_EQUAL(qkc_reference(k, g.t, 4), QKC_OK);
    for (int i = 0; i < 40; i++)
        CU_ASSERT_DOUBLE_EQUAL(g.y[i], g.yref[i], 1e-4);
    /* a corrupt tuning database: the model decides, with a warning */
    qkc_kernel *km = NULL;
    CU_ASSERT_EQUAL(qkc_kernel_get(p, "mm", &km), QKC_OK);
    CU_ASSERT_EQUAL(qkc_kernel_config(km, &cfg, &origin), QKC_OK);
    CU_ASSERT(origin && strncmp(origin, "model; warning: tuning database not used", 40) == 0);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
    remove(db);
    rmdir(dir);
}

/* Row-interleaved weights (repack=R): every bad request of the layout's
 * calls returns a status and a message, never touches memory it was not
 * given, and a kernel that cannot take the layout is refused with the rule. */
static void test_repack_errors(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 1);
    qkc_program *p = new_prog(ctx, "format q4 { code = uint4 offset 8; block = 32; scale = f16 }\n"
                                   "format q8 { code = int8; block = 32; scale = f32 }\n"
                                   "kernel gv(W: q4[N, K], xq: q8[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * xq[k] }\n"
                                   "kernel gf(W: q4[N, K], x: f32[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * x[k] }\n"
                                   "format i8s { code = int8; block = 32; scale = f16 }\n"
                                   "kernel gz(W: i8s[N, K], x: f32[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * x[k] }\n");
    qkc_kernel *k = NULL, *plain = NULL;
    qkc_kernel_options ko = {.config = "repack=4"};
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get_ex(p, "gv", &ko, &k), QKC_OK);
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "gv", &plain), QKC_OK);
    qkc_param_info pi;
    CU_ASSERT_EQUAL(qkc_kernel_param(k, 0, &pi), QKC_OK);
    CU_ASSERT_EQUAL(pi.repack_rows, 4);
    CU_ASSERT_EQUAL(qkc_kernel_param(k, 1, &pi), QKC_OK);
    CU_ASSERT_EQUAL(pi.repack_rows, 0);
    size_t n = 0, sb = 0;
    CU_ASSERT_EQUAL(qkc_format_size(p, "q4", 6, 64, &sb), QKC_OK);
    CU_ASSERT_EQUAL(qkc_kernel_repacked_size(k, 0, 6, 64, &n), QKC_OK);
    CU_ASSERT_EQUAL(n, 8 * 2 * 18); /* 6 rows padded to 8, 2 blocks of 18 bytes each */
    CU_ASSERT_EQUAL(qkc_kernel_repacked_size(NULL, 0, 6, 64, &n), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qkc_kernel_repacked_size(k, 0, 6, 64, NULL), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qkc_kernel_repacked_size(k, 1, 6, 64, &n), QKC_ERR_INVALID_ARG);
    CU_ASSERT(strstr(qkc_errmsg(ctx), "not read row-interleaved") != NULL);
    CU_ASSERT_EQUAL(qkc_kernel_repacked_size(k, 7, 6, 64, &n), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qkc_kernel_repacked_size(k, -1, 6, 64, &n), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qkc_kernel_repacked_size(plain, 0, 6, 64, &n), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qkc_kernel_repacked_size(k, 0, -6, 64, &n), QKC_ERR_SHAPE);
    CU_ASSERT_EQUAL(qkc_kernel_repacked_size(k, 0, 6, 0, &n), QKC_ERR_SHAPE);
    CU_ASSERT(strstr(qkc_errmsg(ctx), "bad shape") != NULL);
    uint8_t src[512] = {0}, dst[512];
    CU_ASSERT_EQUAL(qkc_kernel_repack(k, 0, NULL, sb, 6, 64, dst, n), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qkc_kernel_repack(k, 0, src, sb, 6, 64, NULL, n), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qkc_kernel_repack(k, 0, src, sb - 1, 6, 64, dst, n), QKC_ERR_SHAPE);
    CU_ASSERT(strstr(qkc_errmsg(ctx), "src has") != NULL);
    CU_ASSERT_EQUAL(qkc_kernel_repack(k, 0, src, sb, 6, 64, dst, n - 1), QKC_ERR_SHAPE);
    CU_ASSERT(strstr(qkc_errmsg(ctx), "dst has") != NULL);
    CU_ASSERT_EQUAL(qkc_kernel_unrepack(k, 0, src, n - 1, 6, 64, dst, sb), QKC_ERR_SHAPE);
    CU_ASSERT_EQUAL(qkc_kernel_unrepack(k, 0, src, n, 6, 64, dst, sb - 1), QKC_ERR_SHAPE);
    CU_ASSERT_EQUAL(qkc_kernel_repack(k, 0, src, sb, 6, 64, dst, n), QKC_OK);
    /* kernels the layout does not fit, and bad values: refused with the rule */
    static const struct {
        const char *kernel, *config, *want;
        qkc_status st;
    } bad[] = {
        {"gz", "repack=4", "repack=4: the statement is not one sum", QKC_ERR_UNSUPPORTED},
        {"gv", "repack=3", "repack=3: rows per group are 4, 8 or 16", QKC_ERR_INVALID_ARG},
        {"gv", "repack=99", "out of range", QKC_ERR_INVALID_ARG},
        {"gv", "repack=-1", "out of range", QKC_ERR_INVALID_ARG},
        {"gv", "streams=3", "streams=3: runs taken in turn are 1, 2, 4 or 8", QKC_ERR_INVALID_ARG},
        {"gv", "streams=16", "out of range", QKC_ERR_INVALID_ARG},
        {"gv", "streams=-2", "out of range", QKC_ERR_INVALID_ARG},
        {"gv", "prefetch=100", "prefetch=100: bytes ahead are a multiple of 64", QKC_ERR_INVALID_ARG},
        {"gv", "prefetch=131072", "out of range", QKC_ERR_INVALID_ARG},
        {"gv", "prefetch=1024", "software prefetch applies to row-interleaved weights", QKC_ERR_UNSUPPORTED},
        {"gv", "prefetch=-1", "out of range", QKC_ERR_INVALID_ARG}, /* -1 is the default, never given */
        {"gv", "repack=4 prefetch=64k", "'prefetch' needs an integer value, got '64k'", QKC_ERR_INVALID_ARG},
        {"gv", "prefetch=64", "to popcount reductions of sign-bit weights", QKC_ERR_UNSUPPORTED},
        {"gv", "fence=1", "fence: a scheduling boundary applies to the loop blocks of row-interleaved weights",
         QKC_ERR_UNSUPPORTED},
        {"gv", "fence=2", "out of range", QKC_ERR_INVALID_ARG},
        {"gv", "repack=4 fence=yes", "'fence' needs an integer value, got 'yes'", QKC_ERR_INVALID_ARG},
    };
    for (int i = 0; i < QK_COUNT(bad); i++) {
        qkc_kernel *kb = (qkc_kernel *)1;
        qkc_kernel_options o = {.config = bad[i].config};
        qkc_status st = qkc_kernel_get_ex(p, bad[i].kernel, &o, &kb);
        CU_ASSERT_EQUAL(st, bad[i].st);
        CU_ASSERT_PTR_NULL(kb);
        if (!strstr(qkc_errmsg(ctx), bad[i].want))
            printf("\n'%s': message '%s' lacks '%s'\n", bad[i].config, qkc_errmsg(ctx), bad[i].want);
        CU_ASSERT(strstr(qkc_errmsg(ctx), bad[i].want) != NULL);
    }
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* qkc_kernel_options.any_layout: without a record the model reads an
 * integer-dot kernel's weights row-interleaved, the caller converts them
 * (qkc_kernel_repack) and gets the reference's results on a ragged shape,
 * the same as the own-layout kernel on the format's bytes; a kernel that
 * cannot take the layout, and an explicit configuration, keep their own. */
static void test_any_layout(void)
{
    enum { N = 37, K = 301 };
    qkc_ctx *ctx = NULL;
    qkc_ctx_options co = {.threads = 2, .tuning_db = "", .cache_dir = ""};
    CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&co, &ctx), QKC_OK);
    qkc_program *p = new_prog(ctx, "format q4 { code = uint4 offset 8; block = 32; scale = f16 }\n"
                                   "format q8 { code = int8; block = 32; scale = f32 }\n"
                                   "kernel gv(W: q4[N, K], xq: q8[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * xq[k] }\n"
                                   "kernel gf(W: q4[N, K], x: f32[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * x[k] }\n"
                                   "format i8s { code = int8; block = 32; scale = f16 }\n"
                                   "kernel gz(W: i8s[N, K], x: f32[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * x[k] }\n");
    qkc_kernel *k = NULL, *own = NULL;
    qkc_kernel_options any = {.dims = "N=4096,K=4096", .any_layout = 1}, plain = {.dims = "N=4096,K=4096"};
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get_ex(p, "gv", &any, &k), QKC_OK);
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get_ex(p, "gv", &plain, &own), QKC_OK);
    const char *cfg = NULL, *origin = NULL;
    qkc_param_info pi, po;
    CU_ASSERT_EQUAL(qkc_kernel_param(k, 0, &pi), QKC_OK);
    CU_ASSERT_EQUAL(qkc_kernel_param(own, 0, &po), QKC_OK);
    CU_ASSERT_EQUAL(po.repack_rows, 0);
    CU_ASSERT_EQUAL(qkc_kernel_config(k, &cfg, &origin), QKC_OK);
    int R = pi.repack_rows;
    qkc_kernel *kr = NULL; /* whether the host's kernel can read the layout at all */
    qkc_kernel_options rq = {.config = "repack=1"};
    qkc_status can = qkc_kernel_get_ex(p, "gv", &rq, &kr);
    CU_ASSERT_EQUAL(R != 0, can == QKC_OK);
    if (R == 0) /* a CPU without 4-byte dot products or 256-bit vectors: no layout to choose */
        printf("\n  any_layout: the host's kernel keeps the own layout (%s: %s)\n", origin, cfg);
    else {
        CU_ASSERT(R == 4 || R == 8 || R == 16);
        CU_ASSERT(strstr(cfg, "repack=") != NULL);
        CU_ASSERT_STRING_EQUAL(origin, "model, row-interleaved weights");
    }
    static float w[N * K], xf[K];
    for (int i = 0; i < N * K; i++)
        w[i] = (float)sin(0.013 * i * i + 0.7);
    for (int i = 0; i < K; i++)
        xf[i] = (float)cos(0.29 * i);
    size_t sb = 0, xb = 0, rb = 0;
    CU_ASSERT_EQUAL_FATAL(qkc_format_size(p, "q4", N, K, &sb), QKC_OK);
    CU_ASSERT_EQUAL_FATAL(qkc_format_size(p, "q8", 1, K, &xb), QKC_OK);
    uint8_t *wq = malloc(sb), *xq = malloc(xb);
    CU_ASSERT_FATAL(wq && xq);
    CU_ASSERT_EQUAL_FATAL(qkc_pack(p, "q4", w, N, K, wq, sb), QKC_OK);
    CU_ASSERT_EQUAL_FATAL(qkc_pack(p, "q8", xf, 1, K, xq, xb), QKC_OK);
    uint8_t *wk = wq;
    if (R) {
        CU_ASSERT_EQUAL_FATAL(qkc_kernel_repacked_size(k, 0, N, K, &rb), QKC_OK);
        wk = malloc(rb);
        CU_ASSERT_FATAL(wk != NULL);
        CU_ASSERT_EQUAL_FATAL(qkc_kernel_repack(k, 0, wq, sb, N, K, wk, rb), QKC_OK);
    }
    float y[N], yr[N], yo[N];
    qkc_tensor t[3] = {{.dtype = QKC_PACKED, .rank = 2, .shape = {N, K}, .data = wk},
                       {.dtype = QKC_PACKED, .rank = 1, .shape = {K}, .data = xq},
                       {.dtype = QKC_F32, .rank = 1, .shape = {N}, .data = yr}};
    CU_ASSERT_EQUAL(qkc_reference(k, t, 3), QKC_OK);
    t[2].data = y;
    CU_ASSERT_EQUAL(qkc_launch(k, t, 3, NULL), QKC_OK);
    t[0].data = wq;
    t[2].data = yo;
    CU_ASSERT_EQUAL(qkc_launch(own, t, 3, NULL), QKC_OK);
    double maxref = 0, e1 = 0, e2 = 0;
    for (int i = 0; i < N; i++) {
        maxref = fmax(maxref, fabs(yr[i]));
        e1 = fmax(e1, fabs(y[i] - yr[i]));
        e2 = fmax(e2, fabs(yo[i] - yr[i]));
    }
    CU_ASSERT(maxref > 0 && e1 <= 1e-4 * maxref && e2 <= 1e-4 * maxref);
    if (wk != wq)
        free(wk);
    free(wq);
    free(xq);
    /* f32 x: q4's codes have the layout's f32 form, so the model reads
     * them row-interleaved too; i8s's 8-bit codes have none: its own layout */
    qkc_kernel *kf = NULL, *kz = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get_ex(p, "gf", &any, &kf), QKC_OK);
    CU_ASSERT_EQUAL(qkc_kernel_param(kf, 0, &pi), QKC_OK);
    CU_ASSERT(pi.repack_rows == 4 || pi.repack_rows == 8 || pi.repack_rows == 16);
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get_ex(p, "gz", &any, &kz), QKC_OK);
    CU_ASSERT_EQUAL(qkc_kernel_param(kz, 0, &pi), QKC_OK);
    CU_ASSERT_EQUAL(pi.repack_rows, 0);
    CU_ASSERT_EQUAL(qkc_kernel_config(kz, &cfg, &origin), QKC_OK);
    CU_ASSERT_STRING_EQUAL(origin, "model");
    /* any_layout is 0 or 1: another value is refused, saying what the two mean */
    static const int badv[] = {2, -1};
    for (int i = 0; i < 2; i++) {
        qkc_kernel *kb = (qkc_kernel *)1;
        qkc_kernel_options o = {.any_layout = badv[i]};
        CU_ASSERT_EQUAL(qkc_kernel_get_ex(p, "gv", &o, &kb), QKC_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NULL(kb);
        CU_ASSERT(strstr(qkc_errmsg(ctx), "any_layout = ") && strstr(qkc_errmsg(ctx), "qkc_kernel_repack"));
    }
    /* an explicit configuration says the layout itself */
    qkc_kernel_options ex = {.config = "tile_par=4", .any_layout = 1};
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get_ex(p, "gv", &ex, &kf), QKC_OK);
    CU_ASSERT_EQUAL(qkc_kernel_param(kf, 0, &pi), QKC_OK);
    CU_ASSERT_EQUAL(pi.repack_rows, 0);
    CU_ASSERT_EQUAL(qkc_kernel_config(kf, &cfg, &origin), QKC_OK);
    CU_ASSERT_STRING_EQUAL(origin, "explicit");
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* The row-interleaved layouts that grow (base-3 digits as 2-bit codes,
 * N:M codes stored densely): their sizes, a round trip that keeps every
 * value, and states the format cannot hold (a code 3 among base-3 digits,
 * three non-zero codes in a 2:4 group) refused by qkc_kernel_unrepack and
 * qkc_reference with the row and element, while the same bytes less the
 * bad state are accepted. */
static void test_repack_grown(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 1);
    qkc_program *p = new_prog(
        ctx, "format t1 { code = ternary; block = 256; scale = f16\n"
             "  layout { codes[0:160] base3 32; codes[160:240] base3 16; codes[240:256] base3 4; scale } }\n"
             "format s4 { code = int4; block = 32; scale = f16; sparse = 2:4 }\n"
             "format q8 { code = int8; block = 32; scale = f32 }\n"
             "format tm { code = ternary; block = 64; scale = f16; layout { codes[0:60] base3 12; codes[60:64]; scale } }\n"
             "kernel gm(W: tm[N, K], xq: q8[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * xq[k] }\n"
             "kernel gt(W: t1[N, K], xq: q8[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * xq[k] }\n"
             "kernel gs(W: s4[N, K], xq: q8[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * xq[k] }\n");
    static const struct {
        const char *kernel, *fmt;
        int64_t K;
        size_t own, grown; /* bytes of 4 rows */
        uint8_t bad;       /* a code byte with a state the format cannot hold */
        const char *why;
    } c[] = {
        {"gt", "t1", 256, 4 * 54, 4 * (2 + 64), 0xff, "a 2-bit code 3 where base-3 digits are 0..2"},
        {"gs", "s4", 64, 4 * 2 * 14, 4 * 2 * (2 + 16), 0x11, "more non-zero codes in a group"},
    };
    for (int i = 0; i < QK_COUNT(c); i++) {
        enum { N = 4 };
        int64_t K = c[i].K;
        qkc_kernel *k = NULL;
        qkc_kernel_options ko = {.config = "repack=4"};
        CU_ASSERT_EQUAL_FATAL(qkc_kernel_get_ex(p, c[i].kernel, &ko, &k), QKC_OK);
        size_t sb = 0, rb = 0;
        CU_ASSERT_EQUAL(qkc_format_size(p, c[i].fmt, N, K, &sb), QKC_OK);
        CU_ASSERT_EQUAL(sb, c[i].own);
        CU_ASSERT_EQUAL(qkc_kernel_repacked_size(k, 0, N, K, &rb), QKC_OK);
        CU_ASSERT_EQUAL(rb, c[i].grown);
        float w[N * 256], a[N * 256], b[N * 256], xf[256], y[N];
        uint8_t own[1024], own2[1024], rp[1024], xq[512];
        CU_ASSERT_FATAL(sb <= sizeof own && rb <= sizeof rp);
        for (int j = 0; j < N * K; j++) /* every 2:4 group's kept pair has a zero now and then */
            w[j] = j % 7 == 3 ? 0.0f : (float)sin(0.37 * j + i);
        for (int j = 0; j < K; j++)
            xf[j] = (float)cos(0.11 * j);
        size_t xb = 0;
        CU_ASSERT_EQUAL_FATAL(qkc_format_size(p, "q8", 1, K, &xb), QKC_OK);
        CU_ASSERT_EQUAL_FATAL(qkc_pack(p, "q8", xf, 1, K, xq, xb), QKC_OK);
        CU_ASSERT_EQUAL_FATAL(qkc_pack(p, c[i].fmt, w, N, K, own, sb), QKC_OK);
        CU_ASSERT_EQUAL_FATAL(qkc_kernel_repack(k, 0, own, sb, N, K, rp, rb), QKC_OK);
        CU_ASSERT_EQUAL_FATAL(qkc_kernel_unrepack(k, 0, rp, rb, N, K, own2, sb), QKC_OK);
        CU_ASSERT_EQUAL(qkc_unpack(p, c[i].fmt, own, sb, N, K, a), QKC_OK);
        CU_ASSERT_EQUAL(qkc_unpack(p, c[i].fmt, own2, sb, N, K, b), QKC_OK);
        CU_ASSERT(memcmp(a, b, (size_t)(N * K) * sizeof *a) == 0);
        qkc_tensor t[3] = {{.dtype = QKC_PACKED, .rank = 2, .shape = {N, K}, .data = rp},
                           {.dtype = QKC_PACKED, .rank = 1, .shape = {K}, .data = xq},
                           {.dtype = QKC_F32, .rank = 1, .shape = {N}, .data = y}};
        CU_ASSERT_EQUAL(qkc_reference(k, t, 3), QKC_OK);
        /* row 0's first code bytes (items 0..3 at step 0; each row's 2-byte scale comes first) */
        uint8_t keep[4];
        memcpy(keep, rp + 8, 4);
        memset(rp + 8, c[i].bad, 4);
        CU_ASSERT_EQUAL(qkc_kernel_unrepack(k, 0, rp, rb, N, K, own2, sb), QKC_ERR_INVALID_ARG);
        CU_ASSERT(strstr(qkc_errmsg(ctx), c[i].why) != NULL);
        CU_ASSERT(strstr(qkc_errmsg(ctx), "row 0, element 0") != NULL);
        CU_ASSERT_EQUAL(qkc_reference(k, t, 3), QKC_ERR_INVALID_ARG);
        CU_ASSERT(strstr(qkc_errmsg(ctx), c[i].why) != NULL);
        memcpy(rp + 8, keep, 4);
        CU_ASSERT_EQUAL(qkc_kernel_unrepack(k, 0, rp, rb, N, K, own2, sb), QKC_OK);
    }
    /* a ternary format with base-3 digits and plain 2-bit codes: a code 3
     * among the plain ones is a state the format holds (+2), accepted */
    {
        enum { N = 4, K = 64 };
        qkc_kernel *k = NULL;
        qkc_kernel_options ko = {.config = "repack=4"};
        CU_ASSERT_EQUAL_FATAL(qkc_kernel_get_ex(p, "gm", &ko, &k), QKC_OK);
        size_t sb = 0, rb = 0;
        CU_ASSERT_EQUAL(qkc_format_size(p, "tm", N, K, &sb), QKC_OK);
        CU_ASSERT_EQUAL(sb, N * 15);
        CU_ASSERT_EQUAL(qkc_kernel_repacked_size(k, 0, N, K, &rb), QKC_OK);
        CU_ASSERT_EQUAL(rb, N * (2 + 16));
        float w[N * K], v[N * K];
        uint8_t own[N * 15], rp[N * 18];
        for (int j = 0; j < N * K; j++)
            w[j] = (float)(j % 3) - 1;
        CU_ASSERT_EQUAL_FATAL(qkc_pack(p, "tm", w, N, K, own, sb), QKC_OK);
        CU_ASSERT_EQUAL_FATAL(qkc_kernel_repack(k, 0, own, sb, N, K, rp, rb), QKC_OK);
        /* row 0, item 60 (step 15: segment 3 of 16 bytes, bits 6..7 of row 0's byte 0) */
        rp[8 + 3 * 16] |= 0xc0;
        CU_ASSERT_EQUAL(qkc_kernel_unrepack(k, 0, rp, rb, N, K, own, sb), QKC_OK);
        CU_ASSERT_EQUAL(qkc_unpack(p, "tm", own, sb, N, K, v), QKC_OK);
        CU_ASSERT(v[59] > 0 && v[60] == 2 * v[59]); /* w[59] = +1 */
        /* the kernel reads that +2 as the reference does */
        float xf[K], y[N], yr[N];
        uint8_t xq[2 * 36]; /* q8: an f32 scale and 32 bytes a block */
        for (int j = 0; j < K; j++)
            xf[j] = (float)cos(0.3 * j);
        CU_ASSERT_EQUAL_FATAL(qkc_pack(p, "q8", xf, 1, K, xq, sizeof xq), QKC_OK);
        qkc_tensor t[3] = {{.dtype = QKC_PACKED, .rank = 2, .shape = {N, K}, .data = rp},
                           {.dtype = QKC_PACKED, .rank = 1, .shape = {K}, .data = xq},
                           {.dtype = QKC_F32, .rank = 1, .shape = {N}, .data = yr}};
        CU_ASSERT_EQUAL(qkc_reference(k, t, 3), QKC_OK);
        t[2].data = y;
        CU_ASSERT_EQUAL(qkc_launch(k, t, 3, NULL), QKC_OK);
        for (int r = 0; r < N; r++)
            CU_ASSERT(fabsf(y[r] - yr[r]) <= 1e-5f * (1 + fabsf(yr[r])));
        /* and a 3 among its base-3 digits is refused */
        rp[8] |= 0x03;
        CU_ASSERT_EQUAL(qkc_kernel_unrepack(k, 0, rp, rb, N, K, own, sb), QKC_ERR_INVALID_ARG);
        CU_ASSERT(strstr(qkc_errmsg(ctx), "row 0, element 0: a 2-bit code 3 where base-3") != NULL);
    }
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* Sets to 1 every bit of each row's last block (rows of rb bytes, K
 * values) that no value of the row depends on: the padding of a partial
 * block, found by flipping each bit and unpacking. */
static void poison_padding(qkc_program *p, const char *fmt, uint8_t *w, int rows, int K, size_t rb, size_t bb)
{
    float ref[256], got[256];
    for (int r = 0; r < rows; r++) {
        uint8_t *row = w + (size_t)r * rb;
        CU_ASSERT_EQUAL_FATAL(qkc_unpack(p, fmt, row, rb, 1, K, ref), QKC_OK);
        for (size_t bit = 8 * (rb - bb); bit < 8 * rb; bit++) {
            uint8_t m = (uint8_t)(1u << (bit % 8));
            if (row[bit / 8] & m)
                continue;
            row[bit / 8] |= m;
            CU_ASSERT_EQUAL_FATAL(qkc_unpack(p, fmt, row, rb, 1, K, got), QKC_OK);
            if (memcmp(ref, got, (size_t)K * sizeof *ref) != 0)
                row[bit / 8] &= (uint8_t)~m;
        }
    }
}

/* Integer-dot kernels whose int8 operand is a quantize()d temp run the
 * partial last block as a whole one (tir_build.c idot_padded): whatever
 * the weights' padding bits hold, y matches the reference on the clean
 * weights. Ragged K, the format's own layout and row-interleaved ones. */
static void test_padding_ignored(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 1);
    qkc_program *p = new_prog(ctx, "format q4 { code = uint4 offset 8; block = 32; scale = f16 }\n"
                                   "format q41 { code = uint4; block = 32; scale = f16; min = f16 }\n"
                                   "format q8 { code = int8; block = 32; scale = f32 }\n"
                                   "kernel g4(W: q4[N, K], x: f32[K]) -> y: f32[N] {\n"
                                   "  xq[k] = quantize(x[k], q8)\n  y[n] = sum(k) W[n, k] * xq[k]\n}\n"
                                   "kernel g41(W: q41[N, K], x: f32[K]) -> y: f32[N] {\n"
                                   "  xq[k] = quantize(x[k], q8)\n  y[n] = sum(k) W[n, k] * xq[k]\n}\n"
                                   "kernel gp(W: q4[N, K], xq: q8[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * xq[k] }\n");
    /* gp: the int8 operand is a parameter, whose padding is poisoned too (the masked tail reads it as 0) */
    static const char *const kernels[] = {"g4", "g41", "gp"}, *const fmts[] = {"q4", "q41", "q4"};
    static const char *const configs[] = {"", "kblocks=2", "repack=4", "repack=16"};
    static const int Ks[] = {1, 33, 95};
    enum { N = 37 };
    float x[128], src[N * 128], y[N], yref[N];
    uint8_t xq[4 * 36], xbad[4 * 36];
    uint64_t seed = 12345;
    for (size_t i = 0; i < QK_COUNT(src); i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        src[i] = (float)((double)(seed >> 11) / 9007199254740992.0 * 2 - 1);
    }
    memcpy(x, src, sizeof x);
    for (int f = 0; f < 3; f++)
        for (int ki = 0; ki < QK_COUNT(Ks); ki++) {
            int K = Ks[ki];
            size_t wb, rb, bb, rpb;
            CU_ASSERT_EQUAL_FATAL(qkc_format_size(p, fmts[f], N, K, &wb), QKC_OK);
            CU_ASSERT_EQUAL_FATAL(qkc_format_size(p, fmts[f], 1, K, &rb), QKC_OK);
            CU_ASSERT_EQUAL_FATAL(qkc_format_size(p, fmts[f], 1, 32, &bb), QKC_OK);
            uint8_t *clean = malloc(wb), *bad = malloc(wb), *rp = malloc(4 * wb + 1024);
            CU_ASSERT_FATAL(clean && bad && rp);
            CU_ASSERT_EQUAL_FATAL(qkc_pack(p, fmts[f], src, N, K, clean, wb), QKC_OK);
            memcpy(bad, clean, wb);
            poison_padding(p, fmts[f], bad, N, K, rb, bb);
            CU_ASSERT(K % 32 == 0 || memcmp(bad, clean, wb) != 0); /* some padding bit was set */
            size_t xb, xbb;
            CU_ASSERT_EQUAL_FATAL(qkc_format_size(p, "q8", 1, K, &xb), QKC_OK);
            CU_ASSERT_EQUAL_FATAL(qkc_format_size(p, "q8", 1, 32, &xbb), QKC_OK);
            CU_ASSERT_FATAL(xb <= sizeof xq);
            CU_ASSERT_EQUAL_FATAL(qkc_pack(p, "q8", x, 1, K, xq, xb), QKC_OK);
            memcpy(xbad, xq, xb);
            poison_padding(p, "q8", xbad, 1, K, xb, xbb);
            for (int c = 0; c < QK_COUNT(configs); c++) {
                qkc_kernel *k = NULL;
                qkc_kernel_options ko = {.config = configs[c]};
                CU_ASSERT_EQUAL_FATAL(qkc_kernel_get_ex(p, kernels[f], &ko, &k), QKC_OK);
                qkc_param_info pi;
                CU_ASSERT_EQUAL_FATAL(qkc_kernel_param(k, 0, &pi), QKC_OK);
                /* the reference on the clean weights (in the kernel's layout: it reads that) */
                qkc_tensor t[3] = {{.dtype = QKC_PACKED, .rank = 2, .shape = {N, K}, .data = clean},
                                   {.dtype = QKC_F32, .rank = 1, .shape = {K}, .data = x},
                                   {.dtype = QKC_F32, .rank = 1, .shape = {N}, .data = yref}};
                if (f == 2)
                    t[1].dtype = QKC_PACKED, t[1].data = xq;
                if (pi.repack_rows) {
                    CU_ASSERT_EQUAL_FATAL(qkc_kernel_repacked_size(k, 0, N, K, &rpb), QKC_OK);
                    CU_ASSERT_FATAL(rpb <= 4 * wb + 1024);
                    CU_ASSERT_EQUAL_FATAL(qkc_kernel_repack(k, 0, clean, wb, N, K, rp, rpb), QKC_OK);
                    t[0].data = rp;
                }
                CU_ASSERT_EQUAL_FATAL(qkc_reference(k, t, 3), QKC_OK);
                t[0].data = bad;
                if (f == 2)
                    t[1].data = xbad;
                if (pi.repack_rows) {
                    CU_ASSERT_EQUAL_FATAL(qkc_kernel_repack(k, 0, bad, wb, N, K, rp, rpb), QKC_OK);
                    t[0].data = rp;
                }
                t[2].data = y;
                memset(y, 0xff, sizeof y);
                CU_ASSERT_EQUAL_FATAL(qkc_launch(k, t, 3, NULL), QKC_OK);
                double maxerr = 0, maxref = 0;
                for (int i = 0; i < N; i++) {
                    maxerr = fmax(maxerr, fabs((double)y[i] - yref[i]));
                    maxref = fmax(maxref, fabs((double)yref[i]));
                    CU_ASSERT(y[i] == y[i]);
                }
                if (!(maxerr <= 1e-4 * maxref + 1e-6))
                    printf("\n  %s K=%d '%s': max err %g (max |y| %g)\n", kernels[f], K, configs[c], maxerr, maxref);
                CU_ASSERT(maxerr <= 1e-4 * maxref + 1e-6);
            }
            free(clean), free(bad), free(rp);
        }
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

static void test_cache(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 1);
    qkc_program *p1 = new_prog(ctx, SRC), *p2 = new_prog(ctx, SRC);
    qkc_kernel *k1 = NULL, *k2 = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p1, "gemv", &k1), QKC_OK);
    int64_t hits = ctx->cache.hits;
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p2, "gemv", &k2), QKC_OK);
    CU_ASSERT_EQUAL(ctx->cache.hits, hits + 1);
    void *f1, *f2;
    qkc_kernel_fnptr(k1, &f1);
    qkc_kernel_fnptr(k2, &f2);
    CU_ASSERT_PTR_EQUAL(f1, f2);
    qkc_program_destroy(p1); /* the entry outlives the first program */
    gemv_bufs g;
    gemv_setup(p2, &g, 2);
    CU_ASSERT_EQUAL(qkc_launch(k2, g.t, 4, NULL), QKC_OK);
    memcpy(g.yref, g.y, sizeof g.y);
    CU_ASSERT_EQUAL(qkc_reference(k2, g.t, 4), QKC_OK);
    for (int i = 0; i < 40; i++)
        CU_ASSERT_DOUBLE_EQUAL(g.y[i], g.yref[i], 1e-4);
    qkc_program_destroy(p2);
    /* constants that print alike still get their own kernels */
    qkc_program *pa = new_prog(ctx, "kernel s(x: f32[N]) -> y: f32[N] {\n  y[n] = x[n] * 0.1\n}\n");
    qkc_program *pb = new_prog(ctx, "kernel s(x: f32[N]) -> y: f32[N] {\n  y[n] = x[n] * 0.10000001\n}\n");
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(pa, "s", &k1), QKC_OK);
    hits = ctx->cache.hits;
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(pb, "s", &k2), QKC_OK);
    CU_ASSERT_EQUAL(ctx->cache.hits, hits);
    qkc_program_destroy(pa);
    qkc_program_destroy(pb);
    qkc_ctx_destroy(ctx);
}

/* ---- threads ---- */

typedef struct thread_job {
    qkc_ctx *ctx;
    int id;
    int failures;
    char msg[512];
} thread_job;

/* Each thread's own program variant. */
static char *variant_source(int id)
{
    static const char *const epi[] = {"", " + b[n]", "", " + b[n]"};
    static const char *const act[] = {"", "", "relu", "silu"};
    char *s = malloc(1024);
    snprintf(s, 1024,
             "format f%d { code = int%d; block = %d; scale = f16 }\n"
             "kernel g%d(x: f32[K], W: f%d[N, K], b: f32[N]) -> y: f32[N] {\n"
             "  y[n] = %s(sum(k) x[k] * W[n, k]%s)\n"
             "}\n",
             id, 4 + id, 16 << (id % 3), id, id, act[id % 4], epi[id % 4]);
    return s;
}

static int run_variant(thread_job *j, qkc_program *p, qkc_kernel *k, int rep)
{
    int64_t dims[2] = {37 + 13 * j->id + rep, 29 + rep}; /* K, N by first appearance */
    rtt_rng r = {(uint64_t)(j->id * 1000 + rep)};
    rtt_args a;
    char err[512];
    if (rtt_args_make(p, k, dims, &r, &a, err, sizeof err) != 0)
        return snprintf(j->msg, sizeof j->msg, "%s", err), 1;
    qkc_launch_options o = {.threads = 1 + rep % 3};
    int bad = qkc_launch(k, a.t, a.n, &o) != QKC_OK || qkc_reference(k, a.ref, a.n) != QKC_OK;
    if (bad)
        snprintf(j->msg, sizeof j->msg, "launch: %s", qkc_errmsg(j->ctx));
    else if (rtt_compare(&a, err, sizeof err))
        bad = 1, snprintf(j->msg, sizeof j->msg, "%s", err);
    rtt_args_free(&a);
    return bad;
}

static void *thread_main(void *arg)
{
    thread_job *j = arg;
    char *src = variant_source(j->id), name[16];
    snprintf(name, sizeof name, "g%d", j->id);
    qkc_program *p = NULL;
    qkc_kernel *k = NULL;
    if (qkc_program_create(j->ctx, src, NULL, &p) != QKC_OK || qkc_kernel_get(p, name, &k) != QKC_OK) {
        snprintf(j->msg, sizeof j->msg, "compile: %s", qkc_errmsg(j->ctx));
        j->failures++;
    }
    for (int rep = 0; k && rep < 20 && !j->failures; rep++)
        j->failures += run_variant(j, p, k, rep);
    /* per-thread messages: this thread's error, not another's */
    char want[64];
    snprintf(want, sizeof want, "no kernel 'missing%d'", j->id);
    snprintf(name, sizeof name, "missing%d", j->id);
    if (p && qkc_kernel_get(p, name, &k) == QKC_ERR_NOT_FOUND && !strstr(qkc_errmsg(j->ctx), want))
        j->failures++, snprintf(j->msg, sizeof j->msg, "errmsg of another thread: %s", qkc_errmsg(j->ctx));
    qkc_program_destroy(p);
    free(src);
    return NULL;
}

static void test_threads(void)
{
    qkc_ctx *ctx = new_ctx(NULL, 3);
    enum { T = 4 };
    pthread_t th[T];
    thread_job jobs[T];
    for (int i = 0; i < T; i++) {
        jobs[i] = (thread_job){ctx, i, 0, ""};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, thread_main, &jobs[i]), 0);
    }
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].failures)
            fprintf(stderr, "\n  thread %d: %s\n", i, jobs[i].msg);
        CU_ASSERT_EQUAL(jobs[i].failures, 0);
    }
    qkc_ctx_destroy(ctx);
}

/* ---- the thread pool (internal): every item exactly once, on several threads ---- */

typedef struct pool_probe {
    pthread_mutex_t mu;
    int hits[1000];
    pthread_t seen[8];
    int nseen;
} pool_probe;

static void probe_task(void *arg, int64_t b, int64_t e)
{
    pool_probe *pp = arg;
    struct timespec ts = {0, 200000};
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&pp->mu);
    for (int64_t i = b; i < e; i++)
        pp->hits[i]++;
    int known = 0;
    for (int i = 0; i < pp->nseen; i++)
        known |= pthread_equal(pp->seen[i], pthread_self());
    if (!known && pp->nseen < 8)
        pp->seen[pp->nseen++] = pthread_self();
    pthread_mutex_unlock(&pp->mu);
}

static void test_pool(void)
{
    rt_pool *pool = rt_pool_new(3);
    for (int run = 0; run < 3; run++) {
        pool_probe pp = {.nseen = 0};
        pthread_mutex_init(&pp.mu, NULL);
        CU_ASSERT_EQUAL(rt_pool_run(pool, 3, 1000, probe_task, &pp), 0);
        for (int i = 0; i < 1000; i++)
            CU_ASSERT_EQUAL(pp.hits[i], 1);
        CU_ASSERT(pp.nseen >= 2);
        pthread_mutex_destroy(&pp.mu);
    }
    pool_probe one = {.nseen = 0};
    pthread_mutex_init(&one.mu, NULL);
    CU_ASSERT_EQUAL(rt_pool_run(pool, 1, 10, probe_task, &one), 0);
    CU_ASSERT_EQUAL(one.nseen, 1);
    CU_ASSERT(pthread_equal(one.seen[0], pthread_self()));
    pthread_mutex_destroy(&one.mu);
    rt_pool_free(pool);
    rt_pool_free(NULL);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("api", NULL, NULL);
    CU_add_test(s, "strerror and version", test_strerror);
    CU_add_test(s, "NULL handles", test_null_handles);
    CU_add_test(s, "NULL arguments with a context", test_null_args_with_ctx);
    CU_add_test(s, "targets", test_targets);
    CU_add_test(s, "I/O errors", test_io);
    CU_add_test(s, "compile errors and diagnostics", test_compile_error);
    CU_add_test(s, "not found", test_not_found);
    CU_add_test(s, "introspection", test_introspection);
    CU_add_test(s, "emit", test_emit);
    CU_add_test(s, "launch gemv", test_launch_gemv);
    CU_add_test(s, "launch validation", test_launch_validation);
    CU_add_test(s, "row-interleaved weights: bad requests", test_repack_errors);
    CU_add_test(s, "any_layout: the model's row-interleaved choice, converted by the caller", test_any_layout);
    CU_add_test(s, "row-interleaved layouts that grow (base-3, N:M): sizes, values, states refused",
                test_repack_grown);
    CU_add_test(s, "integer dots ignore the weights' padding bits", test_padding_ignored);
    CU_add_test(s, "affine index out of range", test_affine_range);
    CU_add_test(s, "strided tensors", test_strided);
    CU_add_test(s, "raw function pointer", test_fnptr);
    CU_add_test(s, "codebooks, quantizer options, phases: bad input", test_codebook_errors);
    CU_add_test(s, "GPU target", test_gpu_target);
    CU_add_test(s, "pack and unpack", test_pack_roundtrip);
    CU_add_test(s, "kernel options: configurations, shapes, a corrupt tuning database", test_kernel_options);
    CU_add_test(s, "kernel cache", test_cache);
    CU_add_test(s, "thread pool", test_pool);
    CU_add_test(s, "4 threads compile and launch", test_threads);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}
