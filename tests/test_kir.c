/* test_kir.c — Kernel IR utilities: golden text of the printer, one broken
 * kernel per verifier rule, and kir_bind's binding, shape, rank, range,
 * empty-shape, codebook-shape and hadamard-extent checks; quantize() and
 * hadamard() statements. Kernels are built by hand (support/kir_fixture.h). */
#include "support/kir_fixture.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

static char err[512];

static char *print(const kir_kernel *k)
{
    static char text[4096];
    qk_buf b = {0};
    kir_print_kernel(k, &b);
    snprintf(text, sizeof text, "%s", b.s);
    qk_buf_free(&b);
    return text;
}

/* A 2-D convolution through a temp, then an epilogue with a scalar. */
static kfx *conv(const char *xidx)
{
    kfx *f = kfx_new("conv");
    kfx_param(f, "x", QK_DT_F16, "C, H, W");
    kfx_param(f, "f", QK_DT_F32, "O, C, 3, 3");
    kfx_param(f, "s", QK_DT_F32, "");
    kfx_result(f, "y", QK_DT_F16, "O, H - 2, W - 2");
    kfx_temp(f, "t", "O, H - 2, W - 2");
    kfx_var(f, "o", "O", 0), kfx_var(f, "h", "H - 2", 0), kfx_var(f, "w", "W - 2", 0);
    kfx_var(f, "c", "C", 1), kfx_var(f, "r", "3", 1), kfx_var(f, "q", "3", 1);
    kfx_stmt(f, "t", "o, h, w",
             kfx_sum(f, "c, r, q", kfx_bin(f, KB_MUL, kfx_load(f, "x", xidx), kfx_load(f, "f", "o, c, r, q"))));
    kfx_var(f, "o", "O", 0), kfx_var(f, "h", "H - 2", 0), kfx_var(f, "w", "W - 2", 0);
    kir_expr *e = kfx_bin(f, KB_MAX, kfx_load(f, "t", "o, h, w"), kfx_bin(f, KB_MUL, kfx_load(f, "s", ""), kfx_const(f, -0.1)));
    kfx_stmt(f, "y", "o, h, w", kfx_cast(f, QK_DT_F16, kfx_un(f, KU_GELU, e)));
    return f;
}

/* ---- printer ---- */

static void test_print_gemv(void)
{
    qk_arena *a = qk_arena_new();
    kfx *f = kfx_gemv(kfx_format(a, "q4_0", QK_CODE_OFFSET, 4, 8, 32, QK_DT_F16, QK_DT_NONE));
    CU_ASSERT_STRING_EQUAL(print(f->k),
                           "kernel gemv(x: f32[K], W: q4_0[N, K], b: f32[N]) -> (y: f32[N])\n"
                           "  y[n] = add(sum(k) mul(load x[k], load W[n, k]), load b[n])  # n < N, k < K\n");
    kfx_free(f);
    qk_arena_free(a);
}

static void test_print_conv(void)
{
    kfx *f = conv("c, h + r, w + q");
    f->k->sched = (kir_sched){.present = 1, .ntiles = 2, .parallel = "o", .unroll = 4};
    f->k->sched.tiles[0].index = "o", f->k->sched.tiles[0].size = 16;
    f->k->sched.tiles[1].index = "w", f->k->sched.tiles[1].size = 8;
    CU_ASSERT_STRING_EQUAL(
        print(f->k),
        "kernel conv(x: f16[C, H, W], f: f32[O, C, 3, 3], s: f32) -> (y: f16[O, H - 2, W - 2])\n"
        "  temp t[O, H - 2, W - 2]\n"
        "  t[o, h, w] = sum(c, r, q) mul(load x[c, h + r, w + q], load f[o, c, r, q])"
        "  # o < O, h < H - 2, w < W - 2, c < C, r < 3, q < 3\n"
        "  y[o, h, w] = cast<f16>(gelu(max(load t[o, h, w], mul(load s, -0.1))))  # o < O, h < H - 2, w < W - 2\n"
        "  schedule { tile o = 16, w = 8; parallel o; unroll 4 }\n");
    kfx_free(f);
}

/* Affine indices with coefficients, negative terms and constants. */
static void test_print_affine(void)
{
    kfx *f = kfx_new("aff");
    kfx_param(f, "x", QK_DT_F32, "N");
    kfx_result(f, "y", QK_DT_I8, "M + 1");
    kfx_var(f, "i", "M + 1", 0);
    kfx_var(f, "j", "4", 1);
    kir_expr *e = kfx_bin(f, KB_SUB, kfx_load(f, "x", "2*i - 1"), kfx_load(f, "x", "-i + 3"));
    e = kfx_bin(f, KB_DIV, e, kfx_load(f, "x", "0"));
    e = kfx_bin(f, KB_MIN, e, kfx_sum(f, "j", kfx_load(f, "x", "3*i - 2*j + 7")));
    kfx_stmt(f, "y", "i", kfx_un(f, KU_NEG, kfx_bin(f, KB_ADD, e, kfx_const(f, 2.5e-7))));
    CU_ASSERT_STRING_EQUAL(print(f->k),
                           "kernel aff(x: f32[N]) -> (y: i8[M + 1])\n"
                           "  y[i] = neg(add(min(div(sub(load x[2*i - 1], load x[-i + 3]), load x[0]), "
                           "sum(j) load x[3*i - 2*j + 7]), 2.5e-07))  # i < M + 1, j < 4\n");
    kfx_free(f);
}

static void test_print_program(void)
{
    qk_arena *a = qk_arena_new();
    qk_format *q = kfx_format(a, "q8_0", QK_CODE_SINT, 8, 0, 32, QK_DT_F16, QK_DT_NONE);
    kfx *f = kfx_gemv(q);
    kir_program p = {.arena = NULL, .nformats = 1, .formats = &q, .nkernels = 1, .kernels = &f->k};
    qk_buf b = {0};
    kir_print_program(&p, &b);
    CU_ASSERT_STRING_EQUAL(b.s, "format q8_0 { code = int8; block = 32; scale = f16 }  # 8.50 bits/weight\n"
                                "\n"
                                "kernel gemv(x: f32[K], W: q8_0[N, K], b: f32[N]) -> (y: f32[N])\n"
                                "  y[n] = add(sum(k) mul(load x[k], load W[n, k]), load b[n])  # n < N, k < K\n");
    qk_buf_free(&b);
    CU_ASSERT_PTR_EQUAL(kir_find_kernel(&p, "gemv"), f->k);
    CU_ASSERT_PTR_NULL(kir_find_kernel(&p, "gemm"));
    CU_ASSERT_PTR_EQUAL(kir_find_format(&p, "q8_0"), q);
    CU_ASSERT_PTR_NULL(kir_find_format(&p, "q4_0"));
    CU_ASSERT_STRING_EQUAL(kir_binop_name(KB_MUL), "*");
    CU_ASSERT_STRING_EQUAL(kir_binop_name(KB_MAX), "max");
    CU_ASSERT_STRING_EQUAL(kir_unop_name(KU_SILU), "silu");
    CU_ASSERT_STRING_EQUAL(kir_unop_name(99), "?");
    kir_program_free(NULL);
    kfx_free(f);
    qk_arena_free(a);
}

/* ---- verifier: one broken variant per rule ---- */

/* Expects kir_verify to fail with a message containing want. */
static void expect_bad(kfx *f, const char *want)
{
    err[0] = 0;
    CU_ASSERT_EQUAL(kir_verify(f->k, err, sizeof err), -1);
    if (!strstr(err, want))
        fprintf(stderr, "\n  expected '%s' in: %s\n", want, err);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
    kfx_free(f);
}

static kir_expr *find_load(kir_expr *e, const char *name, const kir_kernel *k)
{
    if (!e)
        return NULL;
    if (e->kind == KE_LOAD && strcmp(k->tensors[e->tensor].name, name) == 0)
        return e;
    kir_expr *r = find_load(e->a, name, k);
    return r ? r : find_load(e->b, name, k);
}

static void test_verify_good(void)
{
    kfx *f = kfx_gemv(NULL);
    CU_ASSERT_EQUAL(kir_verify(f->k, err, sizeof err), 0);
    kfx_free(f);
    f = conv("c, h + r, w + q");
    CU_ASSERT_EQUAL(kir_verify(f->k, err, sizeof err), 0);
    kfx_free(f);
}

static void test_verify_tensor_id(void)
{
    kfx *f = kfx_gemv(NULL);
    find_load(f->k->stmts[0].rhs, "b", f->k)->tensor = 9;
    expect_bad(f, "load of tensor 9 of 4");
    f = kfx_gemv(NULL);
    f->k->stmts[0].tensor = -1;
    expect_bad(f, "assigns tensor -1");
}

static void test_verify_lhs_rank(void)
{
    kfx *f = kfx_gemv(NULL);
    f->k->stmts[0].nlhs = 0;
    expect_bad(f, "'y' has rank 1 but 0 LHS indices");
}

static void test_verify_foreign_var(void)
{
    kfx *f = conv("c, h + r, w + q");
    kir_expr *t = find_load(f->k->stmts[1].rhs, "t", f->k);
    t->idx[0].terms[0].var = 0; /* statement 0's o */
    expect_bad(f, "uses 'o' of statement 0");
}

static void test_verify_sum_not_reduction(void)
{
    kfx *f = kfx_gemv(NULL);
    f->k->vars[1].is_reduction = 0;
    expect_bad(f, "sum over 'k', which is not a reduction variable");
}

static void test_verify_lhs_reduction(void)
{
    kfx *f = kfx_gemv(NULL);
    f->k->vars[0].is_reduction = 1;
    expect_bad(f, "LHS variable 'n' is a reduction variable");
}

static void test_verify_lhs_distinct(void)
{
    kfx *f = kfx_new("diag");
    kfx_param(f, "x", QK_DT_F32, "N");
    kfx_result(f, "y", QK_DT_F32, "N, N");
    kfx_var(f, "i", "N", 0);
    kfx_stmt(f, "y", "i, i", kfx_load(f, "x", "i"));
    expect_bad(f, "LHS variable 'i' appears twice");
}

static void test_verify_lhs_extent(void)
{
    kfx *f = kfx_gemv(NULL);
    f->k->vars[0].extent = kfx_dim(f, "K");
    expect_bad(f, "LHS variable 'n' does not range over dimension 0 of 'y'");
}

static void test_verify_var_scope(void)
{
    kfx *f = kfx_gemv(NULL);
    kir_expr *b = find_load(f->k->stmts[0].rhs, "b", f->k);
    b->idx[0].terms[0].var = 1; /* k outside sum(k) */
    expect_bad(f, "uses 'k' outside the sum that binds it");
}

static void test_verify_unbound_var(void)
{
    kfx *f = kfx_gemv(NULL);
    kfx_var(f, "z", "N", 0);
    f->k->vars[2].stmt = 0;
    expect_bad(f, "variable 'z' is neither on the LHS nor bound by a sum");
}

static void test_verify_temp_order(void)
{
    kfx *f = kfx_new("order");
    kfx_param(f, "x", QK_DT_F32, "N");
    kfx_result(f, "y", QK_DT_F32, "N");
    kfx_temp(f, "t", "N");
    kfx_var(f, "i", "N", 0);
    kfx_stmt(f, "y", "i", kfx_load(f, "x", "i"));
    kfx_var(f, "i", "N", 0);
    kfx_stmt(f, "t", "i", kfx_load(f, "x", "i"));
    /* now make statement 0 read t, defined by statement 1 */
    f->k->stmts[0].rhs->tensor = 2;
    expect_bad(f, "'t' is read before it is defined (by statement 1)");
}

static void test_verify_result_self_read(void)
{
    kfx *f = kfx_gemv(NULL);
    find_load(f->k->stmts[0].rhs, "b", f->k)->tensor = 3; /* y */
    expect_bad(f, "'y' is read before it is defined (by statement 0)");
}

static void test_verify_quant_rank(void)
{
    qk_arena *a = qk_arena_new();
    qk_format *q = kfx_format(a, "q", QK_CODE_SINT, 4, 0, 32, QK_DT_F16, QK_DT_NONE);
    kfx *f = kfx_gemv(q);
    f->k->tensors[1].rank = 0;
    f->k->tensors[1].dims[0] = (kir_dim){-1, 0};
    expect_bad(f, "quantized tensor 'W' has rank 0");
    f = kfx_gemv(q);
    f->k->tensors[1].dtype = QK_DT_F32;
    expect_bad(f, "quantized tensor 'W' also has dtype f32");
    f = kfx_gemv(NULL);
    f->k->tensors[1].dtype = QK_DT_NONE;
    expect_bad(f, "tensor 'W' has neither a dtype nor a format");
    qk_arena_free(a);
}

static void test_verify_result_dense(void)
{
    qk_arena *a = qk_arena_new();
    kfx *f = kfx_gemv(NULL);
    f->k->tensors[3].fmt = kfx_format(a, "q", QK_CODE_SINT, 4, 0, 32, QK_DT_F16, QK_DT_NONE);
    f->k->tensors[3].dtype = QK_DT_NONE;
    expect_bad(f, "result 'y' is quantized");
    qk_arena_free(a);
}

static void test_verify_assign_param(void)
{
    kfx *f = kfx_gemv(NULL);
    f->k->stmts[0].tensor = 2; /* b */
    expect_bad(f, "parameter 'b' is assigned");
}

static void test_verify_defined_once(void)
{
    kfx *f = kfx_new("twice");
    kfx_param(f, "x", QK_DT_F32, "N");
    kfx_result(f, "y", QK_DT_F32, "N");
    kfx_var(f, "i", "N", 0);
    kfx_stmt(f, "y", "i", kfx_load(f, "x", "i"));
    kfx_var(f, "i", "N", 0);
    kfx_stmt(f, "y", "i", kfx_load(f, "x", "i"));
    expect_bad(f, "result 'y' is defined 2 times, expected once");
    f = kfx_new("never");
    kfx_param(f, "x", QK_DT_F32, "N");
    kfx_result(f, "y", QK_DT_F32, "N");
    kfx_result(f, "z", QK_DT_F32, "N");
    kfx_var(f, "i", "N", 0);
    kfx_stmt(f, "y", "i", kfx_load(f, "x", "i"));
    expect_bad(f, "result 'z' is defined 0 times");
}

static void test_verify_kinds_and_ops(void)
{
    kfx *f = kfx_gemv(NULL);
    f->k->tensors[3].kind = KIR_TEMP;
    expect_bad(f, "tensor 'y' is listed as a result");
    f = kfx_gemv(NULL);
    f->k->stmts[0].rhs->op = KB_COUNT;
    expect_bad(f, "unknown binary op");
    f = kfx_gemv(NULL);
    f->k->stmts[0].rhs->b = NULL;
    expect_bad(f, "missing operand");
    f = kfx_gemv(NULL);
    f->k->tensors[0].dims[0].sym = 7;
    expect_bad(f, "tensor 'x' dimension 0 names symbol 7");
    f = kfx_gemv(NULL);
    f->k->stmts[0].rhs->a->nvars = 0;
    expect_bad(f, "sum without variables");
}

/* ---- kir_bind ---- */

static int bind(kfx *f, kir_view *v, int64_t *dims)
{
    err[0] = 0;
    CU_ASSERT_EQUAL_FATAL(kir_verify(f->k, err, sizeof err), 0);
    return kir_bind(f->k, v, dims, err, sizeof err);
}

#define SHAPE(...) ((int64_t[]){__VA_ARGS__})

static void test_bind_gemv(void)
{
    kfx *f = kfx_gemv(NULL);
    int64_t dims[2];
    kir_view v[4] = {kfx_view(NULL, 1, SHAPE(4096)), kfx_view(NULL, 2, SHAPE(11008, 4096)),
                     kfx_view(NULL, 1, SHAPE(11008)), kfx_view(NULL, 1, SHAPE(11008))};
    CU_ASSERT_EQUAL(bind(f, v, dims), 0);
    CU_ASSERT_EQUAL(dims[0], 4096);  /* K */
    CU_ASSERT_EQUAL(dims[1], 11008); /* N */
    CU_ASSERT_EQUAL(kir_dim_value(f->k->tensors[1].dims[1], dims), 4096);
    CU_ASSERT_EQUAL(kir_dim_value((kir_dim){-1, 7}, dims), 7);
    CU_ASSERT_EQUAL(kir_dim_value((kir_dim){1, -8}, dims), 11000);
    v[1].shape[1] = 4000;
    CU_ASSERT_EQUAL(bind(f, v, dims), -1);
    CU_ASSERT_STRING_EQUAL(err, "shape mismatch: W dimension 1 is 4000 but K = 4096 (from x)");
    v[1].shape[1] = 4096;
    v[3].shape[0] = 5;
    CU_ASSERT_EQUAL(bind(f, v, dims), -1);
    CU_ASSERT_STRING_EQUAL(err, "shape mismatch: y dimension 0 is 5 but N = 11008 (from W)");
    v[3].shape[0] = 11008;
    v[1].rank = 1;
    CU_ASSERT_EQUAL(bind(f, v, dims), -1);
    CU_ASSERT_STRING_EQUAL(err, "tensor 'W' has rank 1, expected 2");
    v[1].rank = 2;
    v[2].shape[0] = -1;
    CU_ASSERT_EQUAL(bind(f, v, dims), -1);
    CU_ASSERT_STRING_EQUAL(err, "tensor 'b' dimension 0 has negative size -1");
    kfx_free(f);
}

static void test_bind_offsets_and_constants(void)
{
    kfx *f = conv("c, h + r, w + q");
    int64_t dims[4];
    kir_view v[4] = {kfx_view(NULL, 3, SHAPE(3, 34, 34)), kfx_view(NULL, 4, SHAPE(8, 3, 3, 3)),
                     kfx_view(NULL, 0, NULL), kfx_view(NULL, 3, SHAPE(8, 32, 32))};
    CU_ASSERT_EQUAL(bind(f, v, dims), 0);
    CU_ASSERT_EQUAL(dims[0], 3);
    CU_ASSERT_EQUAL(dims[1], 34);
    CU_ASSERT_EQUAL(dims[2], 34);
    CU_ASSERT_EQUAL(dims[3], 8);
    v[3].shape[2] = 33;
    CU_ASSERT_EQUAL(bind(f, v, dims), -1);
    CU_ASSERT_STRING_EQUAL(err, "shape mismatch: y dimension 2 is 33 but W - 2 = 32 (W = 34 from x)");
    v[3].shape[2] = 32;
    v[1].shape[3] = 5;
    CU_ASSERT_EQUAL(bind(f, v, dims), -1);
    CU_ASSERT_STRING_EQUAL(err, "shape mismatch: f dimension 3 is 5, expected 3");
    kfx_free(f);

    /* a symbol bound from a dimension with an offset, and a negative one */
    f = kfx_new("pad");
    kfx_param(f, "x", QK_DT_F32, "N + 3");
    kfx_result(f, "y", QK_DT_F32, "N");
    kfx_var(f, "i", "N", 0);
    kfx_stmt(f, "y", "i", kfx_load(f, "x", "i + 3"));
    kir_view p[2] = {kfx_view(NULL, 1, SHAPE(10)), kfx_view(NULL, 1, SHAPE(7))};
    CU_ASSERT_EQUAL(bind(f, p, dims), 0);
    CU_ASSERT_EQUAL(dims[0], 7);
    p[0].shape[0] = 1;
    CU_ASSERT_EQUAL(bind(f, p, dims), -1);
    CU_ASSERT_STRING_EQUAL(err, "negative dimension: 'x' dimension 0 is 1, which makes N = -2");
    kfx_free(f);
}

static void test_bind_unbound_symbol(void)
{
    kfx *f = kfx_new("free");
    kfx_param(f, "x", QK_DT_F32, "N");
    kfx_result(f, "y", QK_DT_F32, "N");
    kfx_var(f, "i", "N", 0);
    kfx_var(f, "j", "Q", 1);
    kfx_stmt(f, "y", "i", kfx_sum(f, "j", kfx_load(f, "x", "i")));
    int64_t dims[2];
    kir_view v[2] = {kfx_view(NULL, 1, SHAPE(4)), kfx_view(NULL, 1, SHAPE(4))};
    CU_ASSERT_EQUAL(bind(f, v, dims), -1);
    CU_ASSERT_STRING_EQUAL(err, "dimension 'Q' is not the size of any parameter or result");
    kfx_free(f);
}

static void test_bind_out_of_range(void)
{
    kfx *f = conv("c, h + r, w + q + 1");
    int64_t dims[4];
    kir_view v[4] = {kfx_view(NULL, 3, SHAPE(3, 34, 34)), kfx_view(NULL, 4, SHAPE(8, 3, 3, 3)),
                     kfx_view(NULL, 0, NULL), kfx_view(NULL, 3, SHAPE(8, 32, 32))};
    CU_ASSERT_EQUAL(bind(f, v, dims), -1);
    CU_ASSERT_STRING_EQUAL(err, "out of range: x[c, h + r, w + q + 1] reaches 34 in dimension 2 of size 34");
    kfx_free(f);

    f = kfx_new("shift");
    kfx_param(f, "x", QK_DT_F32, "N");
    kfx_result(f, "y", QK_DT_F32, "N");
    kfx_var(f, "i", "N", 0);
    kfx_stmt(f, "y", "i", kfx_load(f, "x", "i - 1"));
    f->k->stmts[0].rhs->loc = (qk_loc){"k.qk", 3, 14};
    kir_view s[2] = {kfx_view(NULL, 1, SHAPE(10)), kfx_view(NULL, 1, SHAPE(10))};
    CU_ASSERT_EQUAL(bind(f, s, dims), -1);
    CU_ASSERT_STRING_EQUAL(err, "out of range: x[i - 1] (at k.qk:3:14) reaches -1 in dimension 0 of size 10");
    kfx_free(f);

    /* reversed index: N - 1 - i stays in range */
    f = kfx_new("rev");
    kfx_param(f, "x", QK_DT_F32, "N");
    kfx_result(f, "y", QK_DT_F32, "N");
    kfx_var(f, "i", "N", 0);
    kfx_stmt(f, "y", "i", kfx_load(f, "x", "-i + 9"));
    CU_ASSERT_EQUAL(bind(f, s, dims), 0);
    s[0].shape[0] = s[1].shape[0] = 11;
    CU_ASSERT_EQUAL(bind(f, s, dims), -1);
    CU_ASSERT_STRING_EQUAL(err, "out of range: x[-i + 9] reaches -1 in dimension 0 of size 11");
    kfx_free(f);
}

/* Zero-size dims bind; a statement or sum over an empty range is exempt
 * from the range check, but loads outside an empty sum are not. */
static void test_bind_empty(void)
{
    kfx *f = conv("c, h + r, w + q");
    int64_t dims[4];
    kir_view v[4] = {kfx_view(NULL, 3, SHAPE(3, 2, 34)), kfx_view(NULL, 4, SHAPE(8, 3, 3, 3)),
                     kfx_view(NULL, 0, NULL), kfx_view(NULL, 3, SHAPE(8, 0, 32))};
    CU_ASSERT_EQUAL(bind(f, v, dims), 0);
    CU_ASSERT_EQUAL(dims[1], 2);
    v[0].shape[1] = 1;
    CU_ASSERT_EQUAL(bind(f, v, dims), -1); /* H - 2 = -1 */
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "y dimension 1 is 0 but H - 2 = -1"));
    kfx_free(f);

    f = kfx_new("emptysum");
    kfx_param(f, "x", QK_DT_F32, "K");
    kfx_param(f, "b", QK_DT_F32, "N");
    kfx_result(f, "y", QK_DT_F32, "N");
    kfx_var(f, "n", "N", 0), kfx_var(f, "k", "K", 1);
    kfx_stmt(f, "y", "n", kfx_bin(f, KB_ADD, kfx_sum(f, "k", kfx_load(f, "x", "k + 5")), kfx_load(f, "b", "n + 1")));
    kir_view e[3] = {kfx_view(NULL, 1, SHAPE(0)), kfx_view(NULL, 1, SHAPE(4)), kfx_view(NULL, 1, SHAPE(3))};
    e[2].shape[0] = 4;
    CU_ASSERT_EQUAL(bind(f, e, dims), -1); /* b[n + 1] reaches 4 even though the sum is empty */
    CU_ASSERT_STRING_EQUAL(err, "out of range: b[n + 1] reaches 4 in dimension 0 of size 4");
    kfx_free(f);
}

/* ---- quantize(), hadamard() and codebooks ---- */

static kir_expr *special(kfx *f, kir_expr_kind kind, kir_expr *operand)
{
    kir_expr *e = qk_alloc(f->arena, sizeof *e);
    e->kind = kind;
    e->a = operand;
    return e;
}

/* xq[m, k] = quantize(x[m, k], fmt); y[m, k] = xq[m, k] */
static kfx *quant_kernel(const qk_format *fmt)
{
    kfx *f = kfx_new("quant");
    kfx_param(f, "x", QK_DT_F32, "M, K");
    kfx_result(f, "y", QK_DT_F32, "M, K");
    int t = kfx_temp(f, "xq", "M, K");
    f->k->tensors[t].fmt = fmt;
    f->k->tensors[t].materialized = 1;
    kfx_var(f, "m", "M", 0), kfx_var(f, "k", "K", 0);
    kir_expr *q = special(f, KE_QUANT, kfx_load(f, "x", "m, k"));
    q->fmt = fmt;
    kfx_stmt(f, "xq", "m, k", q);
    kfx_var(f, "m", "M", 0), kfx_var(f, "k", "K", 0);
    kfx_stmt(f, "y", "m, k", kfx_load(f, "xq", "m, k"));
    return f;
}

/* t[i] = hadamard(x[i], i, size, seed); y[j] = t[j] */
static kfx *hadamard_kernel(int64_t size, uint64_t seed)
{
    kfx *f = kfx_new("had");
    kfx_param(f, "x", QK_DT_F32, "K");
    kfx_result(f, "y", QK_DT_F32, "K");
    int t = kfx_temp(f, "t", "K");
    f->k->tensors[t].dtype = QK_DT_F32;
    f->k->tensors[t].materialized = 1;
    int i = kfx_var(f, "i", "K", 0);
    kir_expr *h = special(f, KE_HADAMARD, kfx_load(f, "x", "i"));
    h->hvar = i, h->hsize = size, h->hseed = seed;
    kfx_stmt(f, "t", "i", h);
    kfx_var(f, "j", "K", 0);
    kfx_stmt(f, "y", "j", kfx_load(f, "t", "j"));
    return f;
}

/* A VQ format: bits-bit indices into books codebooks of dim-vectors,
 * block 2*dim, f16 row scale. */
static qk_format *vq_format(qk_arena *a, const char *name, int bits, int dim, int books)
{
    qk_format *q = qk_alloc(a, sizeof *q);
    *q = (qk_format){.name = name, .code = QK_CODE_VQ, .bits = bits, .vq_dim = dim, .vq_books = books,
                     .vq_dtype = QK_DT_F16, .block = 2 * dim, .scale_per = QK_PER_ROW, .scale_num = QK_NUM_F16,
                     .min_sign = 1};
    char e[256];
    if (qk_format_finish(q, e, sizeof e))
        qk_bug("vq_format: %s", e);
    return q;
}

/* y[n] = sum(k) x[k] * W[n, k] with W: fmt(C)[N, K], C: f16[cdims] */
static kfx *vq_gemv(const qk_format *fmt, const char *cdims)
{
    kfx *f = kfx_new("vq");
    kfx_param(f, "x", QK_DT_F32, "K");
    int w = kfx_qparam(f, "W", fmt, "N, K");
    f->k->tensors[w].book = kfx_param(f, "C", QK_DT_F16, cdims);
    kfx_result(f, "y", QK_DT_F32, "N");
    kfx_var(f, "n", "N", 0), kfx_var(f, "k", "K", 1);
    kfx_stmt(f, "y", "n", kfx_sum(f, "k", kfx_bin(f, KB_MUL, kfx_load(f, "x", "k"), kfx_load(f, "W", "n, k"))));
    return f;
}

static void test_print_quant_hadamard(void)
{
    qk_arena *a = qk_arena_new();
    kfx *f = quant_kernel(kfx_format(a, "q8", QK_CODE_SINT, 8, 0, 32, QK_DT_F16, QK_DT_NONE));
    CU_ASSERT_STRING_EQUAL(print(f->k), "kernel quant(x: f32[M, K]) -> (y: f32[M, K])\n"
                                        "  temp xq: q8[M, K]\n"
                                        "  xq[m, k] = quantize(load x[m, k], q8)  # m < M, k < K\n"
                                        "  y[m, k] = load xq[m, k]  # m < M, k < K\n");
    kfx_free(f);
    f = hadamard_kernel(4, 9);
    CU_ASSERT_STRING_EQUAL(print(f->k), "kernel had(x: f32[K]) -> (y: f32[K])\n"
                                        "  temp t: f32[K]\n"
                                        "  t[i] = hadamard(load x[i], i, 4, 9)  # i < K\n"
                                        "  y[j] = load t[j]  # j < K\n");
    kfx_free(f);
    f = vq_gemv(vq_format(a, "aq", 8, 4, 2), "B, E, D");
    CU_ASSERT(strncmp(print(f->k), "kernel vq(x: f32[K], W: aq(C)[N, K], C: f16[B, E, D]) -> (y: f32[N])\n", 68) == 0);
    kfx_free(f);
    qk_arena_free(a);
}

static void test_verify_quant_hadamard(void)
{
    qk_arena *a = qk_arena_new();
    qk_format *q8 = kfx_format(a, "q8", QK_CODE_SINT, 8, 0, 32, QK_DT_F16, QK_DT_NONE);
    kfx *f = quant_kernel(q8);
    CU_ASSERT_EQUAL(kir_verify(f->k, err, sizeof err), 0);
    kfx_free(f);
    f = hadamard_kernel(0, 0);
    CU_ASSERT_EQUAL(kir_verify(f->k, err, sizeof err), 0);
    kfx_free(f);

    f = quant_kernel(q8);
    f->k->tensors[2].materialized = 0;
    expect_bad(f, "temp 'xq' is quantized; only parameters and quantize() temps may be");
    f = quant_kernel(q8);
    f->k->tensors[2].fmt = NULL;
    expect_bad(f, "temp 'xq' does not have the format of its quantize()");
    f = quant_kernel(q8);
    f->k->stmts[1].rhs = kfx_un(f, KU_NEG, f->k->stmts[0].rhs);
    expect_bad(f, "quantize() is not the whole right-hand side of its statement");
    f = quant_kernel(q8);
    f->k->tensors[1].materialized = 1;
    expect_bad(f, "result 'y' is marked materialized");
    f = quant_kernel(kfx_format(a, "qz", QK_CODE_UINT, 4, 0, 32, QK_DT_F16, QK_DT_U8));
    expect_bad(f, "cannot be quantized in a kernel");
    f = quant_kernel(q8);
    int j = kfx_var(f, "j", "K", 1);
    f->k->vars[j].stmt = 0;
    kir_expr *sum = special(f, KE_SUM, f->k->stmts[0].rhs->a);
    sum->nvars = 1;
    sum->vars = qk_alloc(f->arena, sizeof(int));
    sum->vars[0] = j;
    f->k->stmts[0].rhs->a = sum;
    expect_bad(f, "the operand of quantize() contains a sum");

    f = hadamard_kernel(12, 0);
    expect_bad(f, "hadamard() size 12 is not 0 or a power of two");
    f = hadamard_kernel(4, 0);
    f->k->stmts[0].rhs->hvar = 1;
    expect_bad(f, "hadamard() variable 1 is not a left-hand side variable");
    f = hadamard_kernel(4, 0);
    f->k->tensors[2].dtype = QK_DT_NONE;
    expect_bad(f, "hadamard() temp 't' is not a dense f32 tensor");
    f = hadamard_kernel(4, 0);
    f->k->tensors[2].materialized = 0;
    expect_bad(f, "hadamard() defines 't', which is not a materialized temp");
    qk_arena_free(a);
}

static void test_verify_codebooks(void)
{
    qk_arena *a = qk_arena_new();
    qk_format *aq = vq_format(a, "aq", 8, 4, 2), *a1 = vq_format(a, "a1", 4, 4, 1);
    kfx *f = vq_gemv(aq, "B, E, D");
    CU_ASSERT_EQUAL(kir_verify(f->k, err, sizeof err), 0);
    kfx_free(f);
    f = vq_gemv(a1, "E, D");
    CU_ASSERT_EQUAL(kir_verify(f->k, err, sizeof err), 0);
    kfx_free(f);
    f = vq_gemv(aq, "E, D");
    expect_bad(f, "codebook 'C' of 'W' has rank 2");
    f = vq_gemv(aq, "B, E, D");
    f->k->tensors[1].book = -1;
    expect_bad(f, "VQ parameter 'W' has codebook tensor -1");
    f = vq_gemv(aq, "B, E, D");
    f->k->tensors[2].dtype = QK_DT_F32;
    expect_bad(f, "codebook 'C' of 'W' is not a dense f16 tensor");
    qk_arena_free(a);
}

static void test_bind_codebooks(void)
{
    qk_arena *a = qk_arena_new();
    int64_t dims[5];
    kfx *f = vq_gemv(vq_format(a, "aq", 8, 4, 2), "B, E, D");
    kir_view v[4] = {kfx_view(NULL, 1, SHAPE(24)), kfx_view(NULL, 2, SHAPE(3, 24)),
                     kfx_view(NULL, 3, SHAPE(2, 256, 4)), kfx_view(NULL, 1, SHAPE(3))};
    CU_ASSERT_EQUAL(bind(f, v, dims), 0);
    v[2].shape[1] = 255;
    CU_ASSERT_EQUAL(bind(f, v, dims), -1);
    CU_ASSERT_STRING_EQUAL(err, "codebook tensor 'C' has shape [2, 255, 4], format 'aq' needs [2, 256, 4]");
    v[2].shape[1] = 256, v[2].shape[0] = 1;
    CU_ASSERT_EQUAL(bind(f, v, dims), -1);
    CU_ASSERT_STRING_EQUAL(err, "codebook tensor 'C' has shape [1, 256, 4], format 'aq' needs [2, 256, 4]");
    kfx_free(f);

    /* One book: rank 2 [2^bits, dim]; a constant dim is checked as a shape. */
    f = vq_gemv(vq_format(a, "a1", 4, 4, 1), "16, D");
    v[2] = kfx_view(NULL, 2, SHAPE(16, 4));
    CU_ASSERT_EQUAL(bind(f, v, dims), 0);
    v[2].shape[1] = 8;
    CU_ASSERT_EQUAL(bind(f, v, dims), -1);
    CU_ASSERT_STRING_EQUAL(err, "codebook tensor 'C' has shape [16, 8], format 'a1' needs [16, 4]");
    kfx_free(f);
    qk_arena_free(a);
}

static void test_bind_hadamard(void)
{
    int64_t dims[1];
    kir_view v[2] = {kfx_view(NULL, 1, SHAPE(12)), kfx_view(NULL, 1, SHAPE(12))};
    kfx *f = hadamard_kernel(4, 0);
    CU_ASSERT_EQUAL(bind(f, v, dims), 0);
    v[0].shape[0] = v[1].shape[0] = 10;
    CU_ASSERT_EQUAL(bind(f, v, dims), -1);
    CU_ASSERT_STRING_EQUAL(err, "hadamard size 4 does not divide the extent 10 of 'i' (statement 0)");
    kfx_free(f);
    f = hadamard_kernel(0, 3);
    CU_ASSERT_EQUAL(bind(f, v, dims), -1);
    CU_ASSERT_STRING_EQUAL(err, "hadamard over 'i' (statement 0) needs a power-of-two extent, got 10");
    v[0].shape[0] = v[1].shape[0] = 16;
    CU_ASSERT_EQUAL(bind(f, v, dims), 0);
    v[0].shape[0] = v[1].shape[0] = 0; /* empty: nothing to transform */
    CU_ASSERT_EQUAL(bind(f, v, dims), 0);
    kfx_free(f);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite p = CU_add_suite("kir printer", NULL, NULL);
    CU_add_test(p, "gemv", test_print_gemv);
    CU_add_test(p, "conv with temp and schedule", test_print_conv);
    CU_add_test(p, "affine indices and constants", test_print_affine);
    CU_add_test(p, "program, lookups, op names", test_print_program);
    CU_pSuite v = CU_add_suite("kir verifier", NULL, NULL);
    CU_add_test(v, "well-formed kernels pass", test_verify_good);
    CU_add_test(v, "tensor ids in range", test_verify_tensor_id);
    CU_add_test(v, "LHS count matches rank", test_verify_lhs_rank);
    CU_add_test(v, "variables belong to the statement", test_verify_foreign_var);
    CU_add_test(v, "sum variables are reductions", test_verify_sum_not_reduction);
    CU_add_test(v, "LHS variables are not reductions", test_verify_lhs_reduction);
    CU_add_test(v, "LHS variables are distinct", test_verify_lhs_distinct);
    CU_add_test(v, "LHS variables range over their dimension", test_verify_lhs_extent);
    CU_add_test(v, "variables used inside their sum", test_verify_var_scope);
    CU_add_test(v, "every variable is bound", test_verify_unbound_var);
    CU_add_test(v, "temps defined before use", test_verify_temp_order);
    CU_add_test(v, "results read only after definition", test_verify_result_self_read);
    CU_add_test(v, "quantized tensors have rank and no dtype", test_verify_quant_rank);
    CU_add_test(v, "results are dense", test_verify_result_dense);
    CU_add_test(v, "parameters are never assigned", test_verify_assign_param);
    CU_add_test(v, "results defined exactly once", test_verify_defined_once);
    CU_add_test(v, "kinds, ops, operands, symbols", test_verify_kinds_and_ops);
    CU_pSuite b = CU_add_suite("kir_bind", NULL, NULL);
    CU_add_test(b, "gemv binding and errors", test_bind_gemv);
    CU_add_test(b, "offsets and constant dims", test_bind_offsets_and_constants);
    CU_add_test(b, "unbound symbol", test_bind_unbound_symbol);
    CU_add_test(b, "out-of-range affine indices", test_bind_out_of_range);
    CU_add_test(b, "empty shapes", test_bind_empty);
    CU_pSuite q = CU_add_suite("quantize, hadamard, codebooks", NULL, NULL);
    CU_add_test(q, "printer", test_print_quant_hadamard);
    CU_add_test(q, "verifier", test_verify_quant_hadamard);
    CU_add_test(q, "codebook verifier", test_verify_codebooks);
    CU_add_test(q, "bind codebook shapes", test_bind_codebooks);
    CU_add_test(q, "bind hadamard extents", test_bind_hadamard);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}
