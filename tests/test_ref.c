/* test_ref.c — the reference interpreter against expected results computed
 * here by plain C loops: dense and quantized GEMV, strides, result dtype
 * rounding and casts, every operator against libm, temps, nested sums,
 * affine indices, reading back results, empty shapes and bad views. */
#include "support/kir_fixture.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char err[512];

/* Binds the views and runs the kernel; returns ref_run's status. */
static int run(kfx *f, kir_view *views)
{
    int64_t dims[KFX_MAX];
    err[0] = 0;
    CU_ASSERT_EQUAL_FATAL(kir_verify(f->k, err, sizeof err), 0);
    if (kir_bind(f->k, views, dims, err, sizeof err))
        return -1;
    return ref_run(f->k, views, dims, err, sizeof err);
}

static uint32_t rng = 12345;
static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) / 16777216.0 * 2 - 1);
}

static void test_dense_gemv(void)
{
    enum { N = 7, K = 13 };
    float x[K], W[N][K], b[N], y[N];
    for (int k = 0; k < K; k++)
        x[k] = frand();
    for (int n = 0; n < N; n++) {
        b[n] = frand();
        for (int k = 0; k < K; k++)
            W[n][k] = frand();
    }
    kfx *f = kfx_gemv(NULL);
    kir_view v[4] = {kfx_view(x, 1, (int64_t[]){K}), kfx_view(W, 2, (int64_t[]){N, K}),
                     kfx_view(b, 1, (int64_t[]){N}), kfx_view(y, 1, (int64_t[]){N})};
    CU_ASSERT_EQUAL(run(f, v), 0);
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int k = 0; k < K; k++)
            s += (double)x[k] * W[n][k];
        CU_ASSERT_EQUAL(y[n], (float)(s + b[n]));
    }
    kfx_free(f);
}

/* Quantized W (q4_0 layout), K not a multiple of the block. */
static void test_quant_gemv(void)
{
    enum { N = 5, K = 77 };
    qk_arena *a = qk_arena_new();
    qk_format *q = kfx_format(a, "q4_0", QK_CODE_OFFSET, 4, 8, 32, QK_DT_F16, QK_DT_NONE);
    float x[K], Wf[N * K], b[N], y[N];
    for (int i = 0; i < N * K; i++)
        Wf[i] = frand();
    for (int k = 0; k < K; k++)
        x[k] = frand();
    for (int n = 0; n < N; n++)
        b[n] = frand();
    uint8_t *W = malloc((size_t)qk_format_size(q, N, K));
    qk_format_pack(q, Wf, N, K, W, NULL, NULL, 0);
    kfx *f = kfx_gemv(q);
    kir_view v[4] = {kfx_view(x, 1, (int64_t[]){K}), kfx_view(W, 2, (int64_t[]){N, K}),
                     kfx_view(b, 1, (int64_t[]){N}), kfx_view(y, 1, (int64_t[]){N})};
    CU_ASSERT_EQUAL(run(f, v), 0);
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int k = 0; k < K; k++)
            s += (double)x[k] * qk_format_get(q, W, n, K, k, NULL);
        CU_ASSERT_EQUAL(y[n], (float)(s + b[n]));
    }
    free(W);
    kfx_free(f);
    qk_arena_free(a);
}

/* A rank-3 quantized tensor: rows are the linearized leading indices. */
static void test_quant_rank3(void)
{
    enum { A = 3, B = 4, K = 10 };
    qk_arena *a = qk_arena_new();
    qk_format *q = kfx_format(a, "i8b4", QK_CODE_SINT, 8, 0, 4, QK_DT_F32, QK_DT_NONE);
    float Wf[A * B * K], y[A * B * K];
    for (int i = 0; i < A * B * K; i++)
        Wf[i] = frand();
    uint8_t *W = malloc((size_t)qk_format_size(q, A * B, K));
    qk_format_pack(q, Wf, A * B, K, W, NULL, NULL, 0);
    kfx *f = kfx_new("copy3");
    kfx_qparam(f, "W", q, "A, B, K");
    kfx_result(f, "y", QK_DT_F32, "A, B, K");
    kfx_var(f, "i", "A", 0), kfx_var(f, "j", "B", 0), kfx_var(f, "k", "K", 0);
    kfx_stmt(f, "y", "i, j, k", kfx_load(f, "W", "i, j, k"));
    kir_view v[2] = {kfx_view(W, 3, (int64_t[]){A, B, K}), kfx_view(y, 3, (int64_t[]){A, B, K})};
    CU_ASSERT_EQUAL(run(f, v), 0);
    for (int r = 0; r < A * B; r++)
        for (int k = 0; k < K; k++)
            CU_ASSERT_EQUAL(y[r * K + k], (float)qk_format_get(q, W, r, K, k, NULL));
    free(W);
    kfx_free(f);
    qk_arena_free(a);
}

/* Views with padded rows and a strided result. */
static void test_strides(void)
{
    enum { N = 4, K = 5, LD = 8 };
    float x[K], W[N * LD], b[N], y[2 * N];
    for (int i = 0; i < N * LD; i++)
        W[i] = i % LD < K ? frand() : NAN; /* padding must never be read */
    for (int k = 0; k < K; k++)
        x[k] = frand();
    for (int n = 0; n < N; n++)
        b[n] = frand();
    for (int i = 0; i < 2 * N; i++)
        y[i] = -99;
    kfx *f = kfx_gemv(NULL);
    kir_view v[4] = {kfx_view(x, 1, (int64_t[]){K}), kfx_view(W, 2, (int64_t[]){N, K}),
                     kfx_view(b, 1, (int64_t[]){N}), kfx_view(y, 1, (int64_t[]){N})};
    v[1].stride[0] = LD;
    v[3].stride[0] = 2;
    CU_ASSERT_EQUAL(run(f, v), 0);
    for (int n = 0; n < N; n++) {
        double s = 0;
        for (int k = 0; k < K; k++)
            s += (double)x[k] * W[n * LD + k];
        CU_ASSERT_EQUAL(y[2 * n], (float)(s + b[n]));
        CU_ASSERT_EQUAL(y[2 * n + 1], -99);
    }
    kfx_free(f);
}

/* y[i] = x[i] with y of dtype dt; out is the result buffer. */
static int copy_to(qk_dtype dt, const double *x, int n, void *out)
{
    kfx *f = kfx_new("store");
    kfx_param(f, "x", QK_DT_F32, "N");
    kfx_result(f, "y", dt, "N");
    kfx_var(f, "i", "N", 0);
    kfx_stmt(f, "y", "i", kfx_bin(f, KB_ADD, kfx_load(f, "x", "i"), kfx_const(f, 0)));
    float xf[16];
    for (int i = 0; i < n; i++)
        xf[i] = (float)x[i];
    kir_view v[2] = {kfx_view(xf, 1, (int64_t[]){n}), kfx_view(out, 1, (int64_t[]){n})};
    int rc = run(f, v);
    kfx_free(f);
    return rc;
}

static void test_result_dtypes(void)
{
    const double x[] = {2.5, 3.5, -2.5, -200, 1000, 0.49, 1 + 0x1p-11, 1 + 3 * 0x1p-11, 70000, NAN};
    int n = QK_COUNT(x);
    int8_t i8[10];
    CU_ASSERT_EQUAL(copy_to(QK_DT_I8, x, n, i8), 0);
    const int8_t want_i8[] = {2, 4, -2, -128, 127, 0, 1, 1, 127, 0};
    CU_ASSERT_EQUAL(memcmp(i8, want_i8, sizeof want_i8), 0);
    uint8_t u8[10];
    CU_ASSERT_EQUAL(copy_to(QK_DT_U8, x, n, u8), 0);
    const uint8_t want_u8[] = {2, 4, 0, 0, 255, 0, 1, 1, 255, 0};
    CU_ASSERT_EQUAL(memcmp(u8, want_u8, sizeof want_u8), 0);
    int32_t i32[10];
    CU_ASSERT_EQUAL(copy_to(QK_DT_I32, x, n, i32), 0);
    const int32_t want_i32[] = {2, 4, -2, -200, 1000, 0, 1, 1, 70000, 0};
    CU_ASSERT_EQUAL(memcmp(i32, want_i32, sizeof want_i32), 0);
    uint16_t h[10];
    CU_ASSERT_EQUAL(copy_to(QK_DT_F16, x, n, h), 0);
    CU_ASSERT_EQUAL(qk_f16_to_f32(h[0]), 2.5f);
    CU_ASSERT_EQUAL(qk_f16_to_f32(h[6]), 1.0f);              /* tie to even */
    CU_ASSERT_EQUAL(qk_f16_to_f32(h[7]), 1.0f + 0x1p-9f);     /* tie, rounds up to even */
    CU_ASSERT(isinf(qk_f16_to_f32(h[8])));                     /* overflow */
    CU_ASSERT(isnan(qk_f16_to_f32(h[9])));
    uint16_t bf[10];
    CU_ASSERT_EQUAL(copy_to(QK_DT_BF16, x, n, bf), 0);
    CU_ASSERT_EQUAL(qk_bf16_to_f32(bf[3]), -200.0f);
    CU_ASSERT_EQUAL(qk_bf16_to_f32(bf[4]), 1000.0f);
    CU_ASSERT_EQUAL(qk_bf16_to_f32(bf[8]), 70144.0f); /* 8 significant bits */
}

/* y[0] = cast<dt>(c) into an f32 result (exactly representable). */
static float cast_const(qk_dtype dt, double c)
{
    kfx *f = kfx_new("cast");
    kfx_result(f, "y", QK_DT_F32, "1");
    kfx_var(f, "i", "1", 0);
    kfx_stmt(f, "y", "i", kfx_cast(f, dt, kfx_const(f, c)));
    float y = -1;
    kir_view v[1] = {kfx_view(&y, 1, (int64_t[]){1})};
    CU_ASSERT_EQUAL(run(f, v), 0);
    kfx_free(f);
    return y;
}

static void test_casts(void)
{
    CU_ASSERT_EQUAL(cast_const(QK_DT_I8, 2.5), 2);
    CU_ASSERT_EQUAL(cast_const(QK_DT_I8, -130.7), -128);
    CU_ASSERT_EQUAL(cast_const(QK_DT_U8, -3), 0);
    CU_ASSERT_EQUAL(cast_const(QK_DT_U8, 254.5), 254);
    CU_ASSERT_EQUAL(cast_const(QK_DT_I32, 1e12), 2147483647.0f);
    CU_ASSERT_EQUAL(cast_const(QK_DT_I32, -7.5), -8);
    CU_ASSERT_EQUAL(cast_const(QK_DT_F32, 1 + 0x1p-30), 1.0f);
    CU_ASSERT_EQUAL(cast_const(QK_DT_F16, 0.1), qk_f16_to_f32(qk_f32_to_f16(0.1f)));
    /* One rounding step: via f32 this would tie and round down to 1. */
    CU_ASSERT_EQUAL(cast_const(QK_DT_F16, 1 + 0x1p-11 + 0x1p-40), 1.0f + 0x1p-10f);
    CU_ASSERT_EQUAL(cast_const(QK_DT_F16, 0x1p-25 + 0x1p-40), 0x1p-24f); /* subnormal */
    CU_ASSERT_EQUAL(cast_const(QK_DT_F16, 0x1p-26), 0.0f);
    CU_ASSERT(isinf(cast_const(QK_DT_F16, 65520)));
    CU_ASSERT_EQUAL(cast_const(QK_DT_F16, 65519), 65504.0f);
    CU_ASSERT_EQUAL(cast_const(QK_DT_BF16, 1 + 0x1p-8 + 0x1p-40), 1.0f + 0x1p-7f);
    CU_ASSERT_EQUAL(cast_const(QK_DT_BF16, 1 + 0x1p-8), 1.0f);
    CU_ASSERT_EQUAL(cast_const(QK_DT_BF16, -3.0), -3.0f);
}

static double ref_gelu(double x)
{
    return 0.5 * x * (1 + tanh(sqrt(2 / 3.14159265358979323846) * (x + 0.044715 * x * x * x)));
}

/* y[i] = op(x[i]) for every unary op; y[i] = op(x[i], z[i]) for binary. */
static void test_unops(void)
{
    enum { N = 9 };
    const float x[N] = {-3, -1.5f, -0.25f, 0, 0.3f, 1, 2.75f, 10, 100};
    double (*const want[KU_COUNT])(double) = {NULL, NULL, ref_gelu, NULL, exp, tanh, fabs, sqrt};
    for (int op = 0; op < KU_COUNT; op++) {
        kfx *f = kfx_new("un");
        kfx_param(f, "x", QK_DT_F32, "N");
        kfx_result(f, "y", QK_DT_F32, "N");
        kfx_var(f, "i", "N", 0);
        kfx_stmt(f, "y", "i", kfx_un(f, (kir_unop)op, kfx_load(f, "x", "i")));
        float y[N];
        kir_view v[2] = {kfx_view((void *)x, 1, (int64_t[]){N}), kfx_view(y, 1, (int64_t[]){N})};
        CU_ASSERT_EQUAL(run(f, v), 0);
        for (int i = 0; i < N; i++) {
            double xi = x[i], w;
            switch (op) {
            case KU_NEG: w = -xi; break;
            case KU_RELU: w = xi > 0 ? xi : 0; break;
            case KU_SILU: w = xi / (1 + exp(-xi)); break;
            default: w = want[op](xi);
            }
            if (isnan(w)) {
                CU_ASSERT(isnan(y[i]));
            } else {
                CU_ASSERT_EQUAL(y[i], (float)w);
            }
        }
        kfx_free(f);
    }
}

static void test_binops(void)
{
    enum { N = 6 };
    const float x[N] = {1, -2, 3.5f, 0, -0.5f, 7};
    const float z[N] = {3, 5, -1.25f, 2, -0.5f, 0};
    for (int op = 0; op < KB_COUNT; op++) {
        kfx *f = kfx_new("bin");
        kfx_param(f, "x", QK_DT_F32, "N");
        kfx_param(f, "z", QK_DT_F32, "N");
        kfx_result(f, "y", QK_DT_F32, "N");
        kfx_var(f, "i", "N", 0);
        kfx_stmt(f, "y", "i", kfx_bin(f, (kir_binop)op, kfx_load(f, "x", "i"), kfx_load(f, "z", "i")));
        float y[N];
        kir_view v[3] = {kfx_view((void *)x, 1, (int64_t[]){N}), kfx_view((void *)z, 1, (int64_t[]){N}),
                         kfx_view(y, 1, (int64_t[]){N})};
        CU_ASSERT_EQUAL(run(f, v), 0);
        for (int i = 0; i < N; i++) {
            double a = x[i], b = z[i], w;
            switch (op) {
            case KB_ADD: w = a + b; break;
            case KB_SUB: w = a - b; break;
            case KB_MUL: w = a * b; break;
            case KB_DIV: w = a / b; break; /* 7 / 0 = inf */
            case KB_MAX: w = a > b ? a : b; break;
            default: w = a < b ? a : b; break;
            }
            CU_ASSERT_EQUAL(y[i], (float)w);
        }
        kfx_free(f);
    }
}

/* g[m, n] = sum(k) x[m, k] * w[n, k];  y[m] = sum(n) relu(g[m, n]) * 0.5 */
static void test_temps(void)
{
    enum { M = 3, N = 4, K = 5 };
    float x[M][K], w[N][K], y[M];
    for (int m = 0; m < M; m++)
        for (int k = 0; k < K; k++)
            x[m][k] = frand();
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++)
            w[n][k] = frand();
    kfx *f = kfx_new("two");
    kfx_param(f, "x", QK_DT_F32, "M, K");
    kfx_param(f, "w", QK_DT_F32, "N, K");
    kfx_result(f, "y", QK_DT_F32, "M");
    kfx_temp(f, "g", "M, N");
    kfx_var(f, "m", "M", 0), kfx_var(f, "n", "N", 0), kfx_var(f, "k", "K", 1);
    kfx_stmt(f, "g", "m, n", kfx_sum(f, "k", kfx_bin(f, KB_MUL, kfx_load(f, "x", "m, k"), kfx_load(f, "w", "n, k"))));
    kfx_var(f, "m", "M", 0), kfx_var(f, "n", "N", 1);
    kfx_stmt(f, "y", "m",
             kfx_sum(f, "n", kfx_bin(f, KB_MUL, kfx_un(f, KU_RELU, kfx_load(f, "g", "m, n")), kfx_const(f, 0.5))));
    kir_view v[3] = {kfx_view(x, 2, (int64_t[]){M, K}), kfx_view(w, 2, (int64_t[]){N, K}),
                     kfx_view(y, 1, (int64_t[]){M})};
    CU_ASSERT_EQUAL(run(f, v), 0);
    for (int m = 0; m < M; m++) {
        double s = 0;
        for (int n = 0; n < N; n++) {
            double g = 0;
            for (int k = 0; k < K; k++)
                g += (double)x[m][k] * w[n][k];
            s += (g > 0 ? g : 0) * 0.5;
        }
        CU_ASSERT_EQUAL(y[m], (float)s);
    }
    kfx_free(f);
}

/* A later statement reads the stored (rounded) value of a result. */
static void test_read_result(void)
{
    kfx *f = kfx_new("chain");
    kfx_param(f, "x", QK_DT_F32, "N");
    kfx_result(f, "h", QK_DT_F16, "N");
    kfx_result(f, "z", QK_DT_F32, "N");
    kfx_var(f, "i", "N", 0);
    kfx_stmt(f, "h", "i", kfx_bin(f, KB_DIV, kfx_load(f, "x", "i"), kfx_const(f, 3)));
    kfx_var(f, "i", "N", 0);
    kfx_stmt(f, "z", "i", kfx_bin(f, KB_MUL, kfx_load(f, "h", "i"), kfx_const(f, 3)));
    float x[3] = {1, 2, 10}, z[3];
    uint16_t h[3];
    kir_view v[3] = {kfx_view(x, 1, (int64_t[]){3}), kfx_view(h, 1, (int64_t[]){3}), kfx_view(z, 1, (int64_t[]){3})};
    CU_ASSERT_EQUAL(run(f, v), 0);
    for (int i = 0; i < 3; i++) {
        float hr = qk_f16_to_f32(qk_f32_to_f16((float)(x[i] / 3.0)));
        CU_ASSERT_EQUAL(qk_f16_to_f32(h[i]), hr);
        CU_ASSERT_EQUAL(z[i], (float)(hr * 3.0));
    }
    kfx_free(f);
}

/* y[o] = sum(i, j) x[i, j] * i + sum(i) sum(j) x[i, j]: multi-variable and nested sums. */
static void test_nested_sum(void)
{
    enum { A = 4, B = 6 };
    float x[A][B], y[2];
    for (int i = 0; i < A; i++)
        for (int j = 0; j < B; j++)
            x[i][j] = frand();
    kfx *f = kfx_new("nest");
    kfx_param(f, "x", QK_DT_F32, "A, B");
    kfx_param(f, "c", QK_DT_F32, "A");
    kfx_result(f, "y", QK_DT_F32, "2");
    kfx_var(f, "o", "2", 0);
    kfx_var(f, "i", "A", 1), kfx_var(f, "j", "B", 1);
    kir_expr *s1 = kfx_sum(f, "i, j", kfx_bin(f, KB_MUL, kfx_load(f, "x", "i, j"), kfx_load(f, "c", "i")));
    kfx_var(f, "p", "A", 1), kfx_var(f, "q", "B", 1);
    kir_expr *s2 = kfx_sum(f, "p", kfx_sum(f, "q", kfx_load(f, "x", "p, q")));
    kfx_stmt(f, "y", "o", kfx_bin(f, KB_ADD, s1, s2));
    float c[A] = {0, 1, 2, 3};
    kir_view v[3] = {kfx_view(x, 2, (int64_t[]){A, B}), kfx_view(c, 1, (int64_t[]){A}), kfx_view(y, 1, (int64_t[]){2})};
    CU_ASSERT_EQUAL(run(f, v), 0);
    double s = 0, t = 0;
    for (int i = 0; i < A; i++)
        for (int j = 0; j < B; j++)
            s += (double)x[i][j] * i;
    for (int i = 0; i < A; i++)
        for (int j = 0; j < B; j++)
            t += x[i][j];
    CU_ASSERT_EQUAL(y[0], (float)(s + t));
    CU_ASSERT_EQUAL(y[1], (float)(s + t));
    kfx_free(f);
}

/* 1-D convolution y[o] = sum(r) x[o + r] * w[r], y: [N - 2]; and a
 * strided gather z[o] = x[2*o + 1]. */
static void test_conv1d(void)
{
    enum { N = 11 };
    float x[N], w[3] = {0.5f, -1, 2}, y[N - 2];
    for (int i = 0; i < N; i++)
        x[i] = frand();
    kfx *f = kfx_new("conv");
    kfx_param(f, "x", QK_DT_F32, "N");
    kfx_param(f, "w", QK_DT_F32, "3");
    kfx_result(f, "y", QK_DT_F32, "N - 2");
    kfx_var(f, "o", "N - 2", 0), kfx_var(f, "r", "3", 1);
    kfx_stmt(f, "y", "o", kfx_sum(f, "r", kfx_bin(f, KB_MUL, kfx_load(f, "x", "o + r"), kfx_load(f, "w", "r"))));
    kir_view v[3] = {kfx_view(x, 1, (int64_t[]){N}), kfx_view(w, 1, (int64_t[]){3}),
                     kfx_view(y, 1, (int64_t[]){N - 2})};
    CU_ASSERT_EQUAL(run(f, v), 0);
    for (int o = 0; o < N - 2; o++) {
        double s = (double)x[o] * w[0] + (double)x[o + 1] * w[1] + (double)x[o + 2] * w[2];
        CU_ASSERT_EQUAL(y[o], (float)s);
    }
    kfx_free(f);

    f = kfx_new("gather");
    kfx_param(f, "x", QK_DT_F32, "N");
    kfx_result(f, "z", QK_DT_F32, "M");
    kfx_var(f, "o", "M", 0);
    kfx_stmt(f, "z", "o", kfx_load(f, "x", "2*o + 1"));
    float z[5];
    kir_view g[2] = {kfx_view(x, 1, (int64_t[]){N}), kfx_view(z, 1, (int64_t[]){5})};
    CU_ASSERT_EQUAL(run(f, g), 0);
    for (int o = 0; o < 5; o++)
        CU_ASSERT_EQUAL(z[o], x[2 * o + 1]);
    kfx_free(f);
}

/* N = 0: nothing is written (data may be NULL); K = 0: the sum is 0. */
static void test_empty(void)
{
    kfx *f = kfx_gemv(NULL);
    float b[3] = {1, 2, 3}, y[3] = {0, 0, 0};
    kir_view v[4] = {kfx_view(NULL, 1, (int64_t[]){5}), kfx_view(NULL, 2, (int64_t[]){0, 5}),
                     kfx_view(NULL, 1, (int64_t[]){0}), kfx_view(NULL, 1, (int64_t[]){0})};
    float x[5] = {0};
    v[0].data = x;
    CU_ASSERT_EQUAL(run(f, v), 0);
    kir_view w[4] = {kfx_view(NULL, 1, (int64_t[]){0}), kfx_view(NULL, 2, (int64_t[]){3, 0}),
                     kfx_view(b, 1, (int64_t[]){3}), kfx_view(y, 1, (int64_t[]){3})};
    CU_ASSERT_EQUAL(run(f, w), 0);
    for (int n = 0; n < 3; n++)
        CU_ASSERT_EQUAL(y[n], b[n]);
    kfx_free(f);
}

static void test_bad_views(void)
{
    kfx *f = kfx_gemv(NULL);
    float x[4], W[8], b[2], y[2];
    kir_view v[4] = {kfx_view(x, 1, (int64_t[]){4}), kfx_view(W, 2, (int64_t[]){2, 4}),
                     kfx_view(b, 1, (int64_t[]){2}), kfx_view(y, 1, (int64_t[]){2})};
    int64_t dims[2] = {4, 3}; /* symbols: K, N (order of first use); N is wrong */
    CU_ASSERT_EQUAL(ref_run(f->k, v, dims, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "dimension 'N'"));
    v[1].data = NULL;
    CU_ASSERT_EQUAL(run(f, v), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'W' has no data"));
    v[1].data = W;
    v[1].shape[1] = 3;
    CU_ASSERT_EQUAL(run(f, v), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "shape mismatch"));
    kfx_free(f);
}

/* 4096 x 4096 q4_0 GEMV: the oracle must be usable at real sizes (its
 * time is printed, never asserted). */
static void test_large_gemv(void)
{
    enum { N = 4096, K = 4096 };
    qk_arena *a = qk_arena_new();
    qk_format *q = kfx_format(a, "q4_0", QK_CODE_OFFSET, 4, 8, 32, QK_DT_F16, QK_DT_NONE);
    float *Wf = malloc(sizeof(float) * N * K), *x = malloc(sizeof(float) * K);
    float *b = calloc(N, sizeof(float)), *y = malloc(sizeof(float) * N);
    for (int64_t i = 0; i < (int64_t)N * K; i++)
        Wf[i] = frand();
    for (int k = 0; k < K; k++)
        x[k] = frand();
    uint8_t *W = malloc((size_t)qk_format_size(q, N, K));
    qk_format_pack(q, Wf, N, K, W, NULL, NULL, 0);
    kfx *f = kfx_gemv(q);
    kir_view v[4] = {kfx_view(x, 1, (int64_t[]){K}), kfx_view(W, 2, (int64_t[]){N, K}),
                     kfx_view(b, 1, (int64_t[]){N}), kfx_view(y, 1, (int64_t[]){N})};
    CU_ASSERT_EQUAL(run(f, v), 0);
    for (int n = 0; n < N; n += 1021) {
        double s = 0;
        for (int k = 0; k < K; k++)
            s += (double)x[k] * qk_format_get(q, W, n, K, k, NULL);
        CU_ASSERT_EQUAL(y[n], (float)s);
    }
    free(Wf), free(x), free(b), free(y), free(W);
    kfx_free(f);
    qk_arena_free(a);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("ref", NULL, NULL);
    CU_add_test(s, "dense gemv", test_dense_gemv);
    CU_add_test(s, "quantized gemv", test_quant_gemv);
    CU_add_test(s, "quantized rank 3", test_quant_rank3);
    CU_add_test(s, "strides", test_strides);
    CU_add_test(s, "result dtypes", test_result_dtypes);
    CU_add_test(s, "casts", test_casts);
    CU_add_test(s, "unary ops", test_unops);
    CU_add_test(s, "binary ops", test_binops);
    CU_add_test(s, "temps", test_temps);
    CU_add_test(s, "read back a result", test_read_result);
    CU_add_test(s, "nested sums", test_nested_sum);
    CU_add_test(s, "conv1d and strided gather", test_conv1d);
    CU_add_test(s, "empty shapes", test_empty);
    CU_add_test(s, "bad views", test_bad_views);
    CU_add_test(s, "4096x4096 gemv", test_large_gemv);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}
