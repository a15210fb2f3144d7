/* test_tir.c — the tiled IR: printer (golden text of a hand-built function),
 * verifier (one broken function per rule), and the builder: every tile
 * configuration the schedule can request, on AVX-512 (host) and AVX2
 * (x86-64-v3) vector widths, JIT-compiled and compared with the reference
 * interpreter on ragged shapes. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/tir.h"
#include "qkc.h"
#include "support/rt_test.h"

/* y[i] = x[i] * 2 for i in [begin, end), built by hand. */
static tir_func *tiny(qk_arena *a)
{
    tir_func *f = tir_func_new(a, "tiny");
    f->args = qk_alloc(a, 4 * sizeof *f->args);
    f->args[0] = (tir_arg){"x", TS_PTR, QK_DT_F32, 1};
    f->args[1] = (tir_arg){"y", TS_PTR, QK_DT_F32, 0};
    f->args[2] = (tir_arg){"begin", TS_I64, QK_DT_NONE, 0};
    f->args[3] = (tir_arg){"end", TS_I64, QK_DT_NONE, 0};
    f->nargs = 4;
    f->arg_begin = 2;
    f->arg_end = 3;
    f->cfg = (tir_config){.lanes = 1, .tile_par = 1, .tile_inner = 1, .unroll = 1};
    int b = f->entry, arg[4];
    for (int i = 0; i < 4; i++) {
        arg[i] = tir_emit(f, b, TIR_ARG, tir_t(f->args[i].s, 1), -1, -1, -1, -1);
        f->nodes[arg[i]].imm = i;
    }
    int body;
    int it = tir_loop(f, b, arg[2], arg[3], tir_const_i(f, b, TS_I64, 1, 1), TL_PARALLEL, "i", &body);
    int off = tir_emit(f, body, TIR_MUL, tir_t(TS_I64, 1), it, tir_const_i(f, body, TS_I64, 1, 4), -1, -1);
    int x = tir_emit(f, body, TIR_LOAD, tir_t(TS_F32, 1), arg[0], off, -1, -1);
    int y = tir_emit(f, body, TIR_FMUL, tir_t(TS_F32, 1), x, tir_const_f(f, body, 1, 2.0), -1, -1);
    tir_emit(f, body, TIR_STORE, tir_t(TS_VOID, 1), arg[1], off, y, -1);
    return f;
}

static void test_print_golden(void)
{
    qk_arena *a = qk_arena_new();
    tir_func *f = tiny(a);
    qk_buf out = {0};
    tir_print(f, &out);
    const char *want =
        "func tiny(x: const ptr<f32>, y: ptr<f32>, begin: i64, end: i64)\n"
        "  # config: lanes=1 tile_par=1 tile_inner=1 unroll=1 idot=0 idot_bytes=0 kblocks=0 prefetch=0\n"
        "{\n"
        "  %x: ptr = arg 0\n"
        "  %y: ptr = arg 1\n"
        "  %begin: i64 = arg 2\n"
        "  %end: i64 = arg 3\n"
        "  %4: i64 = const 1\n"
        "  parallel for %i.5 in [%begin, %end) step %4 {\n"
        "    %6: i64 = const 4\n"
        "    %7: i64 = mul %i.5, %6\n"
        "    %8: f32 = load %x, %7\n"
        "    %9: f32 = const 2\n"
        "    %10: f32 = fmul %8, %9\n"
        "    store %y, %7, %10\n"
        "  }\n"
        "}\n";
    CU_ASSERT_STRING_EQUAL(out.s, want);
    if (strcmp(out.s, want))
        printf("\n--- got ---\n%s", out.s);
    char err[256];
    CU_ASSERT_EQUAL(tir_verify(f, err, sizeof err), 0);
    qk_buf_free(&out);
    qk_arena_free(a);
}

/* Each mutation breaks one verifier rule; the message names it. */
static void expect_reject(void (*mutate)(tir_func *), const char *needle)
{
    qk_arena *a = qk_arena_new();
    tir_func *f = tiny(a);
    mutate(f);
    char err[256] = "";
    CU_ASSERT_EQUAL(tir_verify(f, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
    if (!strstr(err, needle))
        printf("\nexpected '%s' in '%s'\n", needle, err);
    qk_arena_free(a);
}

static void m_scope(tir_func *f)
{
    /* use the loop body's offset after the loop */
    tir_emit(f, f->entry, TIR_LOAD, tir_t(TS_F32, 1), 0, 10, -1, -1);
}
static void m_types(tir_func *f)
{
    f->nodes[10].type = tir_t(TS_F32, 16);
}
static void m_const_store(tir_func *f)
{
    f->nodes[11].a[0] = 0;
}
static void m_mask(tir_func *f)
{
    int body = f->nodes[5].body;
    int m = tir_const_i(f, body, TS_I1, 8, 1);
    f->nodes[8].a[2] = m;
    /* keep block order valid: move the mask before the load */
    tir_block *bl = &f->blocks[body];
    int last = bl->ids[bl->n - 1];
    memmove(&bl->ids[1], &bl->ids[0], (size_t)(bl->n - 1) * sizeof bl->ids[0]);
    bl->ids[0] = last;
}
static void m_loop_bounds(tir_func *f)
{
    f->nodes[5].a[2] = tir_const_f(f, f->entry, 1, 1.0);
    tir_block *bl = &f->blocks[f->entry];
    int last = bl->ids[bl->n - 1];
    memmove(&bl->ids[1], &bl->ids[0], (size_t)(bl->n - 1) * sizeof bl->ids[0]);
    bl->ids[0] = last;
}
static void m_ptr(tir_func *f)
{
    f->nodes[8].a[0] = 7;
}
static void m_shuffle(tir_func *f)
{
    int body = f->nodes[5].body;
    int32_t idx[2] = {0, 5};
    tir_shuffle(f, body, 10, 2, idx);
}

/* LUT: a table size that is not a power of two; an f32 table looked up
 * by bytes. */
static void m_lut_size(tir_func *f)
{
    int body = f->nodes[5].body;
    static const uint8_t t[3] = {1, 2, 3};
    tir_lut(f, body, tir_const_i(f, body, TS_I8, 16, 1), 3, t);
}
static void m_lut_kind(tir_func *f)
{
    int body = f->nodes[5].body;
    static const float t[4] = {0, 1, 2, 3};
    tir_lut_f32(f, body, tir_const_i(f, body, TS_I8, 16, 1), 4, t);
}

/* PERM: an index of bytes; a table of 12 lanes (not a power of two). */
static void m_perm_index(tir_func *f)
{
    int body = f->nodes[5].body;
    tir_emit(f, body, TIR_PERM, tir_t(TS_F32, 16), tir_const_f(f, body, 16, 1.0), tir_const_i(f, body, TS_I8, 16, 1),
             -1, -1);
}
static void m_perm_lanes(tir_func *f)
{
    int body = f->nodes[5].body;
    tir_emit(f, body, TIR_PERM, tir_t(TS_F32, 12), tir_const_f(f, body, 12, 1.0), tir_const_i(f, body, TS_I32, 12, 1),
             -1, -1);
}

static void test_verify_rules(void)
{
    expect_reject(m_perm_index, "perm maps");
    expect_reject(m_perm_lanes, "perm maps");
    expect_reject(m_lut_size, "power of two");
    expect_reject(m_lut_kind, "lut maps");
    expect_reject(m_scope, "not defined in an enclosing scope");
    expect_reject(m_types, "same type");
    expect_reject(m_const_store, "const");
    expect_reject(m_mask, "mask");
    expect_reject(m_loop_bounds, "loop bounds");
    expect_reject(m_ptr, "pointer argument");
    expect_reject(m_shuffle, "shuffle index");
}

/* ---- the builder through the JIT, against the reference ---- */

static const char *KERNELS =
    "format q4 { code = int4 offset 8; block = 32; scale = f16 }\n"
    "format q3 { code = uint3; block = 64; scale = bf16; zero = u8 }\n"
    "format q5 { code = int5; block = 24; scale = f32; zero = f16 }\n"
    "format q2 { code = int2; block = 16; scale = f16 }\n"
    "kernel gemv(x: f32[K], W: q4[N, K], b: f32[N]) -> y: f32[N] {\n"
    "  y[n] = sum(k) x[k] * W[n, k] + b[n]\n"
    "}\n"
    "kernel gemm(x: f16[M, K], W: q3[N, K]) -> y: f16[M, N] {\n"
    "  y[m, n] = relu(sum(k) x[m, k] * W[n, k])\n"
    "}\n"
    "kernel ffn(x: f32[M, K], A: q5[N, K], B: q2[N, K]) -> h: f32[M, N] {\n"
    "  g[m, n] = sum(k) x[m, k] * A[n, k]\n"
    "  u[m, n] = sum(k) x[m, k] * B[n, k]\n"
    "  h[m, n] = silu(g[m, n]) * u[m, n]\n"
    "}\n"
    "kernel dense(x: f32[M, K], W: bf16[N, K]) -> y: f32[M, N] {\n"
    "  y[m, n] = sum(k) x[m, k] * W[n, k]\n"
    "}\n";

/* Compiles KERNELS plus one schedule line on target, runs kernel `name` on
 * several ragged shapes, compares with the reference. Returns failures. */
static int run_config(const char *target, const char *name, const char *sched, int threads)
{
    char src[4096];
    snprintf(src, sizeof src, "%s%s\n", KERNELS, sched);
    qkc_ctx_options o = {.target = target, .threads = threads};
    qkc_ctx *ctx = NULL;
    qkc_program *p = NULL;
    qkc_kernel *k = NULL;
    int fails = 0;
    if (qkc_ctx_create(&o, &ctx) != QKC_OK)
        return 1;
    if (qkc_program_create(ctx, src, "tir.qk", &p) != QKC_OK || qkc_kernel_get(p, name, &k) != QKC_OK) {
        printf("\n%s %s [%s]: %s %s\n", target, name, sched, qkc_errmsg(ctx),
               p ? qkc_program_diagnostics_text(p) : "");
        qkc_program_destroy(p);
        qkc_ctx_destroy(ctx);
        return 1;
    }
    static const int64_t shapes[][3] = {{1, 1, 1}, {3, 5, 33}, {7, 13, 97}, {2, 37, 200}, {5, 9, 385}};
    rtt_rng rng = {0x7157 + (uint64_t)strlen(sched)};
    for (int s = 0; s < 5; s++) {
        int64_t dims[8];
        for (int d = 0; d < qkc_kernel_ndims(k); d++) {
            const char *dn = qkc_kernel_dim_name(k, d);
            dims[d] = dn[0] == 'M' ? shapes[s][0] : dn[0] == 'N' ? shapes[s][1] : shapes[s][2];
        }
        rtt_args a;
        char msg[512];
        if (rtt_args_make(p, k, dims, &rng, &a, msg, sizeof msg)) {
            printf("\nargs: %s\n", msg);
            fails++;
            continue;
        }
        qkc_launch_options lo = {.threads = threads};
        if (qkc_launch(k, a.t, a.n, &lo) != QKC_OK || qkc_reference(k, a.ref, a.n) != QKC_OK ||
            rtt_compare(&a, msg, sizeof msg)) {
            printf("\nFAIL %s %s [%s] shape %d: %s %s\n", target, name, sched, s, msg, qkc_errmsg(ctx));
            fails++;
        }
        rtt_args_free(&a);
    }
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
    return fails;
}

static void test_tile_configs(void)
{
    const char *targets[] = {"host", "x86-64-v3"};
    const char *names[] = {"gemv", "gemm", "ffn", "dense"};
    const char *scheds[] = {
        "",
        "schedule %s { tile n = 1 }",
        "schedule %s { tile n = 3, k = 16 }",
        "schedule %s { tile n = 8; unroll 1 }",
        "schedule %s { tile n = 2, m = 3 }",
        "schedule %s { tile n = 16, m = 4; unroll 3 }",
        "schedule %s { parallel m }",
    };
    int cases = 0, fails = 0;
    for (int t = 0; t < 2; t++)
        for (int n = 0; n < 4; n++)
            for (int s = 0; s < 7; s++) {
                char sched[128];
                snprintf(sched, sizeof sched, scheds[s], names[n]);
                if (n == 0 && strstr(sched, " m"))
                    continue; /* gemv has no m */
                fails += run_config(targets[t], names[n], sched, 1 + (s % 3));
                cases++;
            }
    printf("\n  tile configurations: %d kernels x 5 shapes, %d failures\n", cases, fails);
    CU_ASSERT_EQUAL(fails, 0);
}

/* The builder's output for a GEMV on a 512-bit target: a parallel grid, a
 * 16-lane FMA and a byte shuffle from the generic decode. */
static void test_build_structure(void)
{
    qkc_ctx_options o = {.target = "x86-64-v4"};
    qkc_ctx *ctx = NULL;
    qkc_program *p = NULL;
    qkc_kernel *k = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&o, &ctx), QKC_OK);
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, KERNELS, "tir.qk", &p), QKC_OK);
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "gemv", &k), QKC_OK);
    char *text = NULL;
    CU_ASSERT_EQUAL(qkc_kernel_emit(k, "tir", &text), QKC_OK);
    CU_ASSERT_PTR_NOT_NULL(text && strstr(text, "parallel for %item"));
    CU_ASSERT_PTR_NOT_NULL(text && strstr(text, "f32x16 = fma"));
    CU_ASSERT_PTR_NOT_NULL(text && strstr(text, "i8x16 = shuffle"));
    CU_ASSERT_PTR_NOT_NULL(text && strstr(text, "i1x16 = ilt")); /* masked tail */
    free(text);
    text = NULL;
    CU_ASSERT_EQUAL(qkc_kernel_emit(k, "asm", &text), QKC_OK);
    CU_ASSERT_PTR_NOT_NULL(text && strstr(text, "zmm"));
    free(text);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("tir", NULL, NULL);
    CU_add_test(s, "printer golden text", test_print_golden);
    CU_add_test(s, "verifier rules", test_verify_rules);
    CU_add_test(s, "builder structure on x86-64-v4", test_build_structure);
    CU_add_test(s, "tile configurations vs reference", test_tile_configs);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int fails = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
