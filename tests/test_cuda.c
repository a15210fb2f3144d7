/* test_cuda.c — the CUDA backend: tiled IR built by hand (and by
 * tir_build for sm_90) -> CUDA C (structure checked) -> NVRTC PTX for
 * compute_80 and compute_90 -> ptxas for sm_80 / sm_90. Launch is checked
 * for its "no CUDA driver" failure here; on a machine with libcuda.so.1 the
 * GEMV is run on the device and compared with the host.
 *
 * Where NVRTC or ptxas is missing the affected checks print
 * "skipped: no CUDA toolkit (...)" to stdout and do not fail. */
#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/backend.h"
#include "backends/cuda/cuda_internal.h"
#include "compiler/format.h"
#include "frontend/frontend.h"
#include "support/cuda_host.h"
#include "support/kir_fixture.h"

#ifndef QKC_PTXAS
#define QKC_PTXAS ""
#endif

/* ---- building tiled IR by hand ---- */

static void set_args(tir_func *f, int n, const tir_arg *args) {
    f->nargs = n;
    f->args = qk_alloc(f->arena, (size_t)n * sizeof *f->args);
    memcpy(f->args, args, (size_t)n * sizeof *args);
    f->arg_begin = n - 2;
    f->arg_end = n - 1;
}

static int arg(tir_func *f, int b, int i) {
    int id = tir_emit(f, b, TIR_ARG, tir_t(f->args[i].s, 1), -1, -1, -1, -1);
    f->nodes[id].imm = i;
    f->nodes[id].name = f->args[i].name;
    return id;
}

static int op2(tir_func *f, int b, tir_op op, int x, int y) {
    return tir_emit(f, b, op, f->nodes[x].type, x, y, -1, -1);
}

static int op1(tir_func *f, int b, tir_op op, tir_scalar s, int x) {
    return tir_emit(f, b, op, tir_t(s, 1), x, -1, -1, -1);
}

static int i64c(tir_func *f, int b, int64_t v) { return tir_const_i(f, b, TS_I64, 1, v); }

/* The grid loop over [begin, end); returns its induction variable. */
static int grid_loop(tir_func *f, int *body) {
    int beg = arg(f, f->entry, f->arg_begin), end = arg(f, f->entry, f->arg_end);
    return tir_loop(f, f->entry, beg, end, i64c(f, f->entry, 1), TL_PARALLEL, "item", body);
}

/* y[n] = sum(k) x[k] * W[n, k], one row per work item. */
static tir_func *build_gemv(qk_arena *a) {
    tir_func *f = tir_func_new(a, "gemv");
    tir_arg args[] = {{"x", TS_PTR, QK_DT_F32, 1}, {"W", TS_PTR, QK_DT_F32, 1}, {"y", TS_PTR, QK_DT_F32, 0},
                      {"N", TS_I64, QK_DT_NONE, 0}, {"K", TS_I64, QK_DT_NONE, 0},
                      {"begin", TS_I64, QK_DT_NONE, 0}, {"end", TS_I64, QK_DT_NONE, 0}};
    set_args(f, QK_COUNT(args), args);
    int e = f->entry, x = arg(f, e, 0), w = arg(f, e, 1), y = arg(f, e, 2), kk = arg(f, e, 4);
    int c0 = i64c(f, e, 0), c1 = i64c(f, e, 1), c4 = i64c(f, e, 4);
    int g, kb;
    int n = grid_loop(f, &g);
    int acc = tir_emit(f, g, TIR_VAR, tir_t(TS_F32, 1), tir_const_f(f, g, 1, 0.0), -1, -1, -1);
    int k = tir_loop(f, g, c0, kk, c1, TL_SERIAL, "k", &kb);
    int xv = tir_emit(f, kb, TIR_LOAD, tir_t(TS_F32, 1), x, op2(f, kb, TIR_MUL, k, c4), -1, -1);
    int woff = op2(f, kb, TIR_MUL, op2(f, kb, TIR_ADD, op2(f, kb, TIR_MUL, n, kk), k), c4);
    int wv = tir_emit(f, kb, TIR_LOAD, tir_t(TS_F32, 1), w, woff, -1, -1);
    int cur = op1(f, kb, TIR_VGET, TS_F32, acc);
    tir_emit(f, kb, TIR_VSET, tir_t(TS_VOID, 1), acc, tir_emit(f, kb, TIR_FMA, tir_t(TS_F32, 1), xv, wv, cur, -1), -1,
             -1);
    tir_emit(f, g, TIR_STORE, tir_t(TS_VOID, 1), y, op2(f, g, TIR_MUL, n, c4), op1(f, g, TIR_VGET, TS_F32, acc), -1);
    return f;
}

/* dst[i] = f16(rint(exp(src[i]) * 2) ...) with masked load and store. */
static tir_func *build_half(qk_arena *a) {
    tir_func *f = tir_func_new(a, "half_ops");
    tir_arg args[] = {{"src", TS_PTR, QK_DT_F16, 1}, {"dst", TS_PTR, QK_DT_F16, 0}, {"n", TS_I64, QK_DT_NONE, 0},
                      {"begin", TS_I64, QK_DT_NONE, 0}, {"end", TS_I64, QK_DT_NONE, 0}};
    set_args(f, QK_COUNT(args), args);
    int e = f->entry, src = arg(f, e, 0), dst = arg(f, e, 1), nn = arg(f, e, 2), c2 = i64c(f, e, 2);
    int g;
    int i = grid_loop(f, &g);
    int m = tir_emit(f, g, TIR_ILT, tir_t(TS_I1, 1), i, nn, -1, -1);
    int off = op2(f, g, TIR_MUL, i, c2);
    int h = tir_emit(f, g, TIR_LOAD, tir_t(TS_I16, 1), src, off, m, -1);
    int v = op1(f, g, TIR_H2F, TS_F32, h);
    v = op2(f, g, TIR_FMUL, op1(f, g, TIR_FEXP, TS_F32, v), tir_const_f(f, g, 1, 2.0));
    v = op1(f, g, TIR_FRINT, TS_F32, v);
    v = op2(f, g, TIR_FSUB, v, op1(f, g, TIR_FSQRT, TS_F32, op1(f, g, TIR_FABS, TS_F32, v)));
    v = op2(f, g, TIR_FDIV, op1(f, g, TIR_FNEG, TS_F32, v), tir_const_f(f, g, 1, 0.1));
    v = op2(f, g, TIR_FMIN, op2(f, g, TIR_FMAX, v, tir_const_f(f, g, 1, -65504.0)), tir_const_f(f, g, 1, 1e30));
    tir_emit(f, g, TIR_STORE, tir_t(TS_VOID, 1), dst, off, op1(f, g, TIR_F2H, TS_I16, v), m);
    return f;
}

/* 4-bit codes, offset 8, one f32 scale per 32: y[i] = (code - 8) * s[i/32]. */
static tir_func *build_decode(qk_arena *a) {
    tir_func *f = tir_func_new(a, "decode4");
    tir_arg args[] = {{"W", TS_PTR, QK_DT_U8, 1}, {"s", TS_PTR, QK_DT_F32, 1}, {"y", TS_PTR, QK_DT_F32, 0},
                      {"begin", TS_I64, QK_DT_NONE, 0}, {"end", TS_I64, QK_DT_NONE, 0}};
    set_args(f, QK_COUNT(args), args);
    int e = f->entry, w = arg(f, e, 0), s = arg(f, e, 1), y = arg(f, e, 2);
    int g;
    int i = grid_loop(f, &g);
    int byte = tir_emit(f, g, TIR_LOAD, tir_t(TS_I8, 1), w, op2(f, g, TIR_SHR, i, i64c(f, g, 1)), -1, -1);
    int z = op1(f, g, TIR_ZEXT, TS_I32, byte);
    int i32 = op1(f, g, TIR_TRUNC, TS_I32, i);
    int sh = op2(f, g, TIR_MUL, op2(f, g, TIR_AND, i32, tir_const_i(f, g, TS_I32, 1, 1)),
                 tir_const_i(f, g, TS_I32, 1, 4));
    int code = op2(f, g, TIR_AND, op2(f, g, TIR_SHR, z, sh), tir_const_i(f, g, TS_I32, 1, 15));
    int q = op2(f, g, TIR_SUB, code, tir_const_i(f, g, TS_I32, 1, 8));
    int soff = op2(f, g, TIR_MUL, op2(f, g, TIR_SHR, i, i64c(f, g, 5)), i64c(f, g, 4));
    int sc = tir_emit(f, g, TIR_LOAD, tir_t(TS_F32, 1), s, soff, -1, -1);
    int v = op2(f, g, TIR_FMUL, op1(f, g, TIR_SITOFP, TS_F32, q), sc);
    tir_emit(f, g, TIR_STORE, tir_t(TS_VOID, 1), y, op2(f, g, TIR_MUL, i, i64c(f, g, 4)), v, -1);
    return f;
}

/* Integer ops, conversions, selects, one-lane vector ops, if/else and an
 * unrolled loop: with the functions above, every op of the tiled IR. */
static void sink_ints(tir_func *f, int g, int i, int out) {
    int a = op1(f, g, TIR_TRUNC, TS_I32, i), b = tir_const_i(f, g, TS_I32, 1, -3);
    int v = op2(f, g, TIR_DIV, a, b);
    int c3 = tir_const_i(f, g, TS_I32, 1, 3);
    v = op2(f, g, TIR_XOR, op2(f, g, TIR_REM, a, b), op2(f, g, TIR_OR, v, op2(f, g, TIR_SHL, a, c3)));
    v = op2(f, g, TIR_MAX, op2(f, g, TIR_MIN, v, a), op2(f, g, TIR_SAR, b, tir_const_i(f, g, TS_I32, 1, 1)));
    int i8 = op1(f, g, TIR_TRUNC, TS_I8, v);
    uint8_t tab[32]; /* a byte table: the index is taken mod 32 */
    for (int j = 0; j < 32; j++)
        tab[j] = (uint8_t)(j * 37 + 200);
    i8 = op2(f, g, TIR_XOR, i8, tir_lut(f, g, i8, 32, tab));
    int i16 = op1(f, g, TIR_SEXT, TS_I16, i8);
    int back = op1(f, g, TIR_SEXT, TS_I32, i16);
    int x = op1(f, g, TIR_UITOFP, TS_F32, op2(f, g, TIR_AND, back, tir_const_i(f, g, TS_I32, 1, 255)));
    int r = op1(f, g, TIR_FPTOSI, TS_I32, x);
    int fb = op1(f, g, TIR_BITCAST, TS_F32, r);
    int ib = op1(f, g, TIR_BITCAST, TS_I32, fb);
    int lt = tir_emit(f, g, TIR_FLT, tir_t(TS_I1, 1), fb, x, -1, -1);
    int sel = tir_emit(f, g, TIR_SELECT, tir_t(TS_F32, 1), lt, op1(f, g, TIR_SITOFP, TS_F32, ib), x, -1);
    int32_t lane0 = 0;
    int sp = op1(f, g, TIR_SPLAT, TS_F32, sel);
    int hs = op1(f, g, TIR_HADD, TS_F32, tir_shuffle(f, g, sp, 1, &lane0));
    hs = op2(f, g, TIR_FADD, hs, tir_const_f(f, g, 1, 0.25));
    int c7 = tir_const_lanes(f, g, TS_I32, 1, (int32_t[]){7});
    int t, el;
    tir_if(f, g, tir_emit(f, g, TIR_ILT, tir_t(TS_I1, 1), a, c7, -1, -1), &t, &el);
    int off = op2(f, t, TIR_MUL, i, i64c(f, t, 4));
    tir_emit(f, t, TIR_STORE, tir_t(TS_VOID, 1), out, off, hs, -1);
    tir_emit(f, el, TIR_STORE, tir_t(TS_VOID, 1), out, op2(f, el, TIR_MUL, i, i64c(f, el, 4)),
             tir_const_f(f, el, 1, -0.0), -1);
}

static tir_func *build_sink(qk_arena *a) {
    tir_func *f = tir_func_new(a, "9all ops"); /* also checks name sanitizing */
    tir_arg args[] = {{"out", TS_PTR, QK_DT_F32, 0}, {"begin", TS_I64, QK_DT_NONE, 0}, {"end", TS_I64, QK_DT_NONE, 0}};
    set_args(f, QK_COUNT(args), args);
    int out = arg(f, f->entry, 0);
    int g, ub;
    int i = grid_loop(f, &g);
    sink_ints(f, g, i, out);
    int acc = tir_emit(f, g, TIR_VAR, tir_t(TS_I64, 1), i64c(f, g, 0), -1, -1, -1);
    int u = tir_loop(f, g, i64c(f, g, 0), i64c(f, g, 4), i64c(f, g, 1), TL_UNROLL, "u", &ub);
    tir_emit(f, ub, TIR_VSET, tir_t(TS_VOID, 1), acc, op2(f, ub, TIR_ADD, op1(f, ub, TIR_VGET, TS_I64, acc), u), -1,
             -1);
    /* popcnt, ieq and gather feed only the unused accumulator */
    int pc = op1(f, ub, TIR_POPCNT, TS_I64, u);
    int eq = tir_emit(f, ub, TIR_IEQ, tir_t(TS_I1, 1), pc, u, -1, -1);
    int ga = tir_emit(f, ub, TIR_GATHER, tir_t(TS_F32, 1), out, op2(f, ub, TIR_MUL, u, i64c(f, ub, 4)), -1, -1);
    int gi = op1(f, ub, TIR_SEXT, TS_I64, op1(f, ub, TIR_FPTOSI, TS_I32, ga));
    int pick = tir_emit(f, ub, TIR_SELECT, tir_t(TS_I64, 1), eq, pc, gi, -1);
    tir_emit(f, ub, TIR_VSET, tir_t(TS_VOID, 1), acc, op2(f, ub, TIR_ADD, op1(f, ub, TIR_VGET, TS_I64, acc), pick), -1,
             -1);
    return f;
}

/* ---- helpers around the backend ---- */

static const char *skip_reason; /* set when NVRTC is missing */

static void *state_for(const char *target) {
    qk_target t;
    CU_ASSERT_FATAL(qk_target_named(target, &t) == 0);
    void *st = NULL;
    char err[512];
    CU_ASSERT_FATAL(qk_backend_cuda.create(&t, &st, err, sizeof err) == 0);
    return st;
}

static char *emit_cuda(tir_func *f) {
    char err[512] = "";
    CU_ASSERT_FATAL(tir_verify(f, err, sizeof err) == 0);
    qk_buf b = {0};
    int rc = qk_backend_cuda.emit(NULL, f, QK_EMIT_CUDA, &b, err, sizeof err);
    if (rc)
        printf("\nemit failed: %s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    return qk_buf_take(&b);
}

/* ptxas -arch=sm_<sm> on ptx: its exit status (0 = valid); 0 with a
 * "skipped" line where there is no ptxas. */
static int run_ptxas(const char *ptx, int sm) {
    const char *ptxas = rtt_ptxas_path(QKC_PTXAS);
    if (!ptxas) {
        printf("\n  skipped: no CUDA toolkit (ptxas not found)\n");
        return 0;
    }
    return rtt_ptxas(ptxas, ptx, sm, NULL);
}

/* Compiles f for target; 1 with code on success, 0 when NVRTC is missing
 * (a skip line is printed). Failures other than a missing NVRTC fail. */
static int compile_for(void *st, tir_func *f, qk_code *code) {
    char err[4096] = "";
    int rc = qk_backend_cuda.compile(st, f, code, err, sizeof err);
    if (rc && strstr(err, "NVRTC not found")) {
        skip_reason = "NVRTC not found";
        printf("\n  skipped: no CUDA toolkit (%s)\n", err);
        return 0;
    }
    if (rc)
        printf("\ncompile failed: %s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    return 1;
}

/* NVRTC for compute_80 and compute_90, then ptxas for sm_80 and sm_90. */
static void check_ptx(tir_func *f) {
    static const char *const targets[] = {"sm_80", "sm_90"};
    static const int sms[] = {80, 90};
    for (int i = 0; i < 2; i++) {
        void *st = state_for(targets[i]);
        qk_code code = {0};
        if (compile_for(st, f, &code)) {
            cuda_code *cc = code.priv;
            char want[64], entry[300];
            snprintf(want, sizeof want, ".target sm_%d", sms[i]);
            snprintf(entry, sizeof entry, ".entry %s(", cc->kname);
            CU_ASSERT(strstr(cc->ptx, want) != NULL);
            CU_ASSERT(strstr(cc->ptx, entry) != NULL);
            int ps = run_ptxas(cc->ptx, sms[i]);
            if (ps != 0)
                printf("\nptxas -arch=sm_%d exit %d on:\n%s\n", sms[i], ps, cc->ptx);
            CU_ASSERT(ps == 0);
            qk_backend_cuda.release(st, &code);
        }
        qk_backend_cuda.destroy(st);
    }
}

/* ---- tests ---- */

static void test_gemv_source(void) {
    qk_arena *a = qk_arena_new();
    char *src = emit_cuda(build_gemv(a));
    CU_ASSERT(strstr(src, "extern \"C\" __global__ void __launch_bounds__(128) gemv(") != NULL);
    CU_ASSERT(strstr(src, "blockIdx.x * (long long)blockDim.x + threadIdx.x") != NULL);
    CU_ASSERT(strstr(src, "(long long)gridDim.x * blockDim.x") != NULL);
    CU_ASSERT(strstr(src, "fmaf(") != NULL);
    CU_ASSERT(strstr(src, "const unsigned char *a0 /* x: f32 */") != NULL);
    CU_ASSERT(strstr(src, "long long a3 /* N */") != NULL);
    CU_ASSERT(strstr(src, "cuda_fp16.h") == NULL); /* only when f16 is used */
    free(src);
    qk_arena_free(a);
}

static void test_half_source(void) {
    qk_arena *a = qk_arena_new();
    char *src = emit_cuda(build_half(a));
    CU_ASSERT(strstr(src, "#include <cuda_fp16.h>") != NULL);
    CU_ASSERT(strstr(src, "__half2float(__ushort_as_half(") != NULL);
    CU_ASSERT(strstr(src, "__half_as_ushort(__float2half_rn(") != NULL);
    CU_ASSERT(strstr(src, " : (unsigned short)0;") != NULL); /* masked load */
    CU_ASSERT(strstr(src, ") *(unsigned short *)(") != NULL);  /* masked store: if (m) *(T *)... */
    CU_ASSERT(strstr(src, "expf(") && strstr(src, "rintf("));
    free(src);
    qk_arena_free(a);
}

static void test_all_ops_covered(void) {
    qk_arena *a = qk_arena_new();
    tir_func *fs[] = {build_gemv(a), build_half(a), build_decode(a), build_sink(a)};
    int seen[TIR_OP_COUNT] = {0};
    for (int i = 0; i < QK_COUNT(fs); i++)
        for (int id = 0; id < fs[i]->nnodes; id++)
            seen[fs[i]->nodes[id].op] = 1;
    for (int op = 0; op < TIR_OP_COUNT; op++) {
        if (op == TIR_DOT4) /* byte vectors: CPU code only (GPU configurations never set idot) */
            continue;
        if (op == TIR_PREFETCH || op == TIR_FENCE) /* row-interleaved weights (prefetch=D, fence=1): CPU code
                                                      only; the emitter drops them */
            continue;
        if (op == TIR_PERM) /* the row-interleaved layout's f32 form: CPU code only; refused below */
            continue;
        if (op == TIR_LANEID || op == TIR_INSERT || op == TIR_EXTRACT || op == TIR_MMA)
            continue; /* warp-level tensor-core code: tests/test_cuda_mma.c */
        if (!seen[op])
            printf("\nop %s is not covered\n", tir_op_name(op));
        CU_ASSERT(seen[op]);
    }
    char *src = emit_cuda(fs[3]);
    CU_ASSERT(strstr(src, "_9all_ops(") != NULL);
    CU_ASSERT(strstr(src, "#pragma unroll") != NULL);
    CU_ASSERT(strstr(src, "} else {") != NULL);
    CU_ASSERT(strstr(src, "__uint_as_float(0x80000000u)") != NULL); /* -0.0f stays exact */
    free(src);
    qk_arena_free(a);
}

/* The f32 form's perm (CPU code only, always 2 or more lanes) is refused
 * with a message, not emitted wrong. */
static void test_perm_refused(void) {
    qk_arena *a = qk_arena_new();
    tir_func *f = build_gemv(a);
    int e = f->entry, t = tir_const_f(f, e, 16, 1.0), ix = tir_const_i(f, e, TS_I32, 16, 3);
    tir_emit(f, e, TIR_PERM, tir_t(TS_F32, 16), t, ix, -1, -1);
    char err[512] = "";
    CU_ASSERT_FATAL(tir_verify(f, err, sizeof err) == 0);
    qk_buf b = {0};
    CU_ASSERT(qk_backend_cuda.emit(NULL, f, QK_EMIT_CUDA, &b, err, sizeof err) != 0);
    CU_ASSERT(strstr(err, "one lane per thread") != NULL); /* a perm has 2 or more lanes */
    qk_buf_free(&b);
    qk_arena_free(a);
}

static void test_ptx_gemv(void) {
    qk_arena *a = qk_arena_new();
    check_ptx(build_gemv(a));
    qk_arena_free(a);
}

static void test_ptx_half(void) {
    qk_arena *a = qk_arena_new();
    check_ptx(build_half(a));
    qk_arena_free(a);
}

static void test_ptx_decode(void) {
    qk_arena *a = qk_arena_new();
    check_ptx(build_decode(a));
    qk_arena_free(a);
}

static void test_ptx_all_ops(void) {
    qk_arena *a = qk_arena_new();
    check_ptx(build_sink(a));
    qk_arena_free(a);
}

static void test_emit_ptx_stage(void) {
    qk_arena *a = qk_arena_new();
    tir_func *f = build_gemv(a);
    void *st = state_for("sm_90");
    qk_buf b = {0};
    char err[4096] = "";
    int rc = qk_backend_cuda.emit(st, f, QK_EMIT_PTX, &b, err, sizeof err);
    if (rc && strstr(err, "NVRTC not found"))
        printf("\n  skipped: no CUDA toolkit (%s)\n", err);
    else {
        CU_ASSERT(rc == 0);
        CU_ASSERT(b.s && strstr(b.s, ".target sm_90") && strstr(b.s, ".entry gemv("));
    }
    qk_buf_free(&b);
    CU_ASSERT(qk_backend_cuda.emit(st, f, QK_EMIT_LLVM, &b, err, sizeof err) == -1);
    qk_buf_free(&b);
    qk_backend_cuda.destroy(st);
    qk_arena_free(a);
}

typedef struct compile_job {
    void *st;
    tir_func *f;
    int rc;
    char err[4096];
} compile_job;

static void *compile_thread(void *p) {
    compile_job *j = p;
    for (int i = 0; i < 3 && j->rc == 0; i++) {
        qk_code code = {0};
        j->rc = qk_backend_cuda.compile(j->st, j->f, &code, j->err, sizeof j->err);
        if (j->rc == 0)
            qk_backend_cuda.release(j->st, &code);
    }
    return NULL;
}

/* Several threads compile on one state; the first lazily loads NVRTC. */
static void test_compile_threads(void) {
    qk_arena *a = qk_arena_new();
    tir_func *fs[] = {build_gemv(a), build_half(a), build_decode(a), build_sink(a)};
    void *st = state_for("sm_90");
    compile_job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (compile_job){.st = st, .f = fs[i]};
        CU_ASSERT_FATAL(pthread_create(&th[i], NULL, compile_thread, &jobs[i]) == 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        if (jobs[i].rc && strstr(jobs[i].err, "NVRTC not found")) {
            printf("\n  skipped: no CUDA toolkit (%s)\n", jobs[i].err);
            continue;
        }
        if (jobs[i].rc)
            printf("\nthread %d: %s\n", i, jobs[i].err);
        CU_ASSERT(jobs[i].rc == 0);
    }
    qk_backend_cuda.destroy(st);
    qk_arena_free(a);
}

static void test_lanes_rejected(void) {
    qk_arena *a = qk_arena_new();
    tir_func *f = tir_func_new(a, "vec");
    tir_arg args[] = {{"begin", TS_I64, QK_DT_NONE, 0}, {"end", TS_I64, QK_DT_NONE, 0}};
    set_args(f, 2, args);
    int x = tir_const_f(f, f->entry, 16, 1.0);
    int id = tir_emit(f, f->entry, TIR_FADD, tir_t(TS_F32, 16), x, x, -1, -1);
    char err[512] = "", want[128];
    qk_buf b = {0};
    CU_ASSERT(qk_backend_cuda.emit(NULL, f, QK_EMIT_CUDA, &b, err, sizeof err) == -1);
    snprintf(want, sizeof want, "the CUDA backend emits one lane per thread; got f32x16 at node %d", x);
    CU_ASSERT_STRING_EQUAL(err, want);
    void *st = state_for("sm_80");
    qk_code code = {0};
    err[0] = 0;
    CU_ASSERT(qk_backend_cuda.compile(st, f, &code, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "one lane per thread") != NULL);
    qk_backend_cuda.destroy(st);
    qk_buf_free(&b);
    (void)id;
    qk_arena_free(a);
}

static void test_cpu_target_rejected(void) {
    qk_target t;
    CU_ASSERT_FATAL(qk_target_named("x86-64-v3", &t) == 0);
    void *st = NULL;
    char err[256] = "";
    CU_ASSERT(qk_backend_cuda.create(&t, &st, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "GPU target") != NULL);
}

/* ---- running the emitted CUDA C on the host ----
 * Without a GPU, the semantics of the emitted C are still checked: the
 * source is compiled as host C++ (g++) with a prelude that defines the few
 * CUDA names it uses, and the kernel is called once per (block, thread) of
 * a small grid, which the grid-stride loop must cover exactly. */

/* The host run's includes and globals; rtt_cuda_shims follows. */
static const char emu_prelude[] =
    "#include <math.h>\n#include <string.h>\n"
    "struct qk_dim3 { unsigned x; };\n"
    "extern \"C\" { qk_dim3 blockIdx, blockDim, gridDim, threadIdx; }\n";

typedef struct emu {
    void *lib;
    void *fn;
    unsigned *block, *bdim, *grid, *thread; /* the .x of the prelude's globals */
} emu;

/* Compiles f's CUDA C for the host; 0, or -1 after printing a skip line
 * when g++ is missing. */
static int emu_open(tir_func *f, emu *m) {
    if (system("g++ --version >/dev/null 2>&1") != 0) {
        printf("\n  skipped: no g++ for the host run of the emitted CUDA C\n");
        return -1;
    }
    char *src = emit_cuda(f), *inc = strstr(src, "#include <cuda_fp16.h>");
    if (inc)
        memcpy(inc, "//", 2);
    char dir[] = "/tmp/qkc_emu_XXXXXX", cc[64], so[64], cmd[256];
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    snprintf(cc, sizeof cc, "%s/k.cc", dir);
    snprintf(so, sizeof so, "%s/k.so", dir);
    FILE *fp = fopen(cc, "w");
    CU_ASSERT_FATAL(fp != NULL);
    fprintf(fp, "%s%s%s", emu_prelude, rtt_cuda_shims, src);
    fclose(fp);
    snprintf(cmd, sizeof cmd, "g++ -std=c++17 -O1 -ffp-contract=off -shared -fPIC -o %s %s", so, cc);
    int rc = system(cmd);
    CU_ASSERT_FATAL(rc == 0);
    m->lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    CU_ASSERT_FATAL(m->lib != NULL);
    char *kname = cuda_kernel_name(f);
    m->fn = dlsym(m->lib, kname);
    m->block = dlsym(m->lib, "blockIdx");
    m->bdim = dlsym(m->lib, "blockDim");
    m->grid = dlsym(m->lib, "gridDim");
    m->thread = dlsym(m->lib, "threadIdx");
    CU_ASSERT_FATAL(m->fn && m->block && m->bdim && m->grid && m->thread);
    unlink(cc);
    unlink(so);
    rmdir(dir);
    free(kname);
    free(src);
    return 0;
}

/* Sets up the thread (b, t) of a grid of 3 blocks of 2 threads; returns
 * 0 when every thread has been visited. */
static int emu_thread(emu *m, int step) {
    if (step >= 6)
        return 0;
    *m->grid = 3;
    *m->bdim = 2;
    *m->block = (unsigned)(step / 2);
    *m->thread = (unsigned)(step % 2);
    return 1;
}

static void test_host_gemv(void) {
    qk_arena *a = qk_arena_new();
    emu m;
    if (emu_open(build_gemv(a), &m) == 0) {
        enum { N = 37, K = 19 };
        float x[K], w[N * K], y[N] = {0};
        for (int i = 0; i < K; i++)
            x[i] = (float)(i % 7) * 0.37f - 1;
        for (int i = 0; i < N * K; i++)
            w[i] = (float)(i % 11) * 0.13f - 0.5f;
        void (*fn)(const void *, const void *, void *, long long, long long, long long, long long);
        memcpy(&fn, &m.fn, sizeof fn);
        for (int s = 0; emu_thread(&m, s); s++)
            fn(x, w, y, N, K, 0, N);
        for (int n = 0; n < N; n++) {
            float acc = 0;
            for (int k = 0; k < K; k++)
                acc = fmaf(x[k], w[n * K + k], acc);
            CU_ASSERT(y[n] == acc);
        }
        dlclose(m.lib);
    }
    qk_arena_free(a);
}

static void test_host_half(void) {
    qk_arena *a = qk_arena_new();
    emu m;
    if (emu_open(build_half(a), &m) == 0) {
        enum { N = 50, END = 64 };
        uint16_t src[N], dst[END];
        for (int i = 0; i < N; i++)
            src[i] = qk_f32_to_f16((float)(i - 25) * 0.21f);
        for (int i = 0; i < END; i++)
            dst[i] = 0xAAAA;
        void (*fn)(const void *, void *, long long, long long, long long);
        memcpy(&fn, &m.fn, sizeof fn);
        for (int s = 0; emu_thread(&m, s); s++)
            fn(src, dst, N, 0, END);
        for (int i = 0; i < END; i++) {
            if (i >= N) {
                CU_ASSERT(dst[i] == 0xAAAA); /* masked off */
                continue;
            }
            float v = rintf(expf(qk_f16_to_f32(src[i])) * 2.0f);
            v = -(v - sqrtf(fabsf(v))) / 0.1f;
            v = fminf(fmaxf(v, -65504.0f), 1e30f);
            CU_ASSERT(dst[i] == qk_f32_to_f16(v));
        }
        dlclose(m.lib);
    }
    qk_arena_free(a);
}

static void test_host_decode(void) {
    qk_arena *a = qk_arena_new();
    emu m;
    if (emu_open(build_decode(a), &m) == 0) {
        enum { ITEMS = 100 };
        uint8_t w[ITEMS / 2];
        float s[4] = {0.5f, -2.0f, 0.125f, 3.0f}, y[ITEMS];
        for (int i = 0; i < ITEMS / 2; i++)
            w[i] = (uint8_t)(i * 37 + 11);
        void (*fn)(const void *, const void *, void *, long long, long long);
        memcpy(&fn, &m.fn, sizeof fn);
        for (int k = 0; emu_thread(&m, k); k++)
            fn(w, s, y, 0, ITEMS);
        for (int i = 0; i < ITEMS; i++) {
            int code = (w[i / 2] >> (4 * (i & 1))) & 15;
            CU_ASSERT(y[i] == (float)(code - 8) * s[i / 32]);
        }
        dlclose(m.lib);
    }
    qk_arena_free(a);
}

/* What build_sink computes for item i, written in plain C. */
static float sink_ref(int64_t i) {
    int32_t a = (int32_t)i, b = -3;
    int32_t v = a / b;
    v = (a % b) ^ (v | (int32_t)((uint32_t)a << 3));
    int32_t mn = v < a ? v : a, sa = b >> 1;
    v = mn > sa ? mn : sa;
    uint8_t lut = (uint8_t)(((uint32_t)v & 31) * 37 + 200);
    int32_t back = (int16_t)(int8_t)((uint8_t)v ^ lut);
    float x = (float)(uint32_t)(back & 255);
    int32_t r = (int32_t)x;
    float fb;
    memcpy(&fb, &r, 4);
    int32_t ib;
    memcpy(&ib, &fb, 4);
    float sel = fb < x ? (float)ib : x;
    return a < 7 ? sel + 0.25f : -0.0f;
}

/* Negative work items exercise the signed ops. */
static void test_host_all_ops(void) {
    qk_arena *a = qk_arena_new();
    emu m;
    if (emu_open(build_sink(a), &m) == 0) {
        float out[40];
        void (*fn)(void *, long long, long long);
        memcpy(&fn, &m.fn, sizeof fn);
        for (int k = 0; emu_thread(&m, k); k++)
            fn(out + 20, -20, 20);
        for (int i = -20; i < 20; i++) {
            float want = sink_ref(i);
            CU_ASSERT(memcmp(&out[i + 20], &want, 4) == 0);
            if (memcmp(&out[i + 20], &want, 4) != 0)
                printf("\nitem %d: got %g want %g\n", i, out[i + 20], want);
        }
        dlclose(m.lib);
    }
    qk_arena_free(a);
}

/* Host pointers and values in the libffi layout the runtime passes. */
typedef struct gemv_call {
    float *x, *w, *y;
    int64_t n, k, begin, end;
    void *av[7];
    int64_t bytes[7];
} gemv_call;

static void gemv_call_init(gemv_call *c, int64_t n, int64_t k) {
    *c = (gemv_call){.x = calloc(k, 4), .w = calloc(n * k, 4), .y = calloc(n, 4), .n = n, .k = k, .end = n};
    for (int64_t i = 0; i < k; i++)
        c->x[i] = (float)(i % 7) - 3;
    for (int64_t i = 0; i < n * k; i++)
        c->w[i] = (float)(i % 5) * 0.5f;
    void *vals[] = {&c->x, &c->w, &c->y, &c->n, &c->k, &c->begin, &c->end};
    int64_t bytes[] = {k * 4, n * k * 4, n * 4, 0, 0, 0, 0};
    memcpy(c->av, vals, sizeof vals);
    memcpy(c->bytes, bytes, sizeof bytes);
}

static void gemv_call_free(gemv_call *c) {
    free(c->x);
    free(c->w);
    free(c->y);
}

/* Launches the GEMV on a fresh sm_90 state; 0 or -1 with err. */
static int launch_gemv(gemv_call *c, char *err, size_t errsz) {
    qk_arena *a = qk_arena_new();
    tir_func *f = build_gemv(a);
    void *st = state_for("sm_90");
    qk_code code = {0};
    char cerr[4096];
    if (qk_backend_cuda.compile(st, f, &code, cerr, sizeof cerr) != 0)
        code.priv = NULL; /* no NVRTC: the driver check still comes first */
    int rc = qk_backend_cuda.launch(st, f, &code, c->av, c->bytes, NULL, err, errsz);
    qk_backend_cuda.release(st, &code);
    qk_backend_cuda.destroy(st);
    qk_arena_free(a);
    return rc;
}

static int have_driver(void) {
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h)
        dlclose(h);
    return h != NULL;
}

static void test_launch(void) {
    gemv_call c;
    gemv_call_init(&c, 300, 77);
    char err[1024] = "";
    int rc = launch_gemv(&c, err, sizeof err);
    if (!have_driver() || getenv("QKC_LIBCUDA")) {
        CU_ASSERT(rc == -1);
        CU_ASSERT(strncmp(err, "no CUDA driver", 14) == 0);
        printf("\n  (no libcuda.so.1: checked the \"no CUDA driver\" failure: %s)\n", err);
    } else if (rc != 0 && strncmp(err, "no CUDA device", 14) == 0) {
        printf("\n  skipped: a CUDA driver but no device (%s)\n", err);
    } else {
        if (rc)
            printf("\nlaunch failed: %s\n", err);
        CU_ASSERT_FATAL(rc == 0);
        for (int64_t n = 0; n < c.n; n++) {
            double s = 0;
            for (int64_t k = 0; k < c.k; k++)
                s += (double)c.x[k] * c.w[n * c.k + k];
            CU_ASSERT_DOUBLE_EQUAL(c.y[n], s, 1e-3 * (1 + (s < 0 ? -s : s)));
        }
    }
    gemv_call_free(&c);
}

static void test_launch_env(void) {
    const char *paths[] = {"/nonexistent/libcuda.so.1", "/usr/local/cuda/lib64/stubs/libcuda.so"};
    for (int i = 0; i < 2; i++) {
        if (i == 1 && access(paths[i], R_OK) != 0)
            continue;
        setenv("QKC_LIBCUDA", paths[i], 1);
        gemv_call c;
        gemv_call_init(&c, 10, 10);
        char err[1024] = "";
        CU_ASSERT(launch_gemv(&c, err, sizeof err) == -1);
        CU_ASSERT(strncmp(err, "no CUDA driver", 14) == 0);
        printf("\n  QKC_LIBCUDA=%s: %s\n", paths[i], err);
        gemv_call_free(&c);
    }
    unsetenv("QKC_LIBCUDA");
}

/* Runs the builder's q4 GEMV on the host (emulated grid) against the
 * unpacked weights; K = 70 is not a multiple of the block. Every argument
 * is a pointer or an i64, passed alike in integer registers, so one
 * 7-word call type fits the kernel whatever its argument order. */
static void host_run_qgemv(tir_func *f, const qk_format *fmt) {
    emu m;
    if (f->nargs != 7 || emu_open(f, &m) != 0)
        return;
    enum { N = 5, K = 70 };
    float x[K], w[N * K], wd[N * K], y[N] = {0};
    for (int i = 0; i < K; i++)
        x[i] = (float)((i * 7) % 13) * 0.25f - 1.5f;
    for (int i = 0; i < N * K; i++)
        w[i] = (float)((i * 5) % 17) * 0.1f - 0.8f;
    uint8_t *wq = calloc(1, (size_t)qk_format_size(fmt, N, K));
    qk_format_pack(fmt, w, N, K, wq, NULL, NULL, 0);
    qk_format_unpack(fmt, wq, N, K, wd, NULL);
    uintptr_t av[7];
    for (int i = 0; i < 7; i++) {
        const char *nm = f->args[i].name;
        av[i] = !strcmp(nm, "x") ? (uintptr_t)x : !strcmp(nm, "W") ? (uintptr_t)wq : !strcmp(nm, "y") ? (uintptr_t)y
              : !strcmp(nm, "K") ? K : !strcmp(nm, "N") ? N : !strcmp(nm, "begin") ? 0 : N; /* end: one item per row */
    }
    void (*fn)(uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t);
    memcpy(&fn, &m.fn, sizeof fn);
    for (int s = 0; emu_thread(&m, s); s++)
        fn(av[0], av[1], av[2], av[3], av[4], av[5], av[6]);
    for (int n = 0; n < N; n++) {
        double ref = 0;
        for (int k = 0; k < K; k++)
            ref += (double)x[k] * wd[n * K + k];
        CU_ASSERT_DOUBLE_EQUAL(y[n], ref, 1e-4 * (1 + fabs(ref)));
    }
    free(wq);
    dlclose(m.lib);
}

/* y[n] = sum(k) x[k] * W[n, k] with W in a 4-bit block format, lowered by
 * tir_build for sm_90. */
static void test_tir_build_sm90(void) {
    kfx *fx = kfx_new("qgemv");
    qk_format *fmt = kfx_format(fx->arena, "q4", QK_CODE_OFFSET, 4, 8, 32, QK_DT_F16, QK_DT_NONE);
    kfx_param(fx, "x", QK_DT_F32, "K");
    kfx_qparam(fx, "W", fmt, "N, K");
    kfx_result(fx, "y", QK_DT_F32, "N");
    kfx_var(fx, "n", "N", 0);
    kfx_var(fx, "k", "K", 1);
    kfx_stmt(fx, "y", "n", kfx_sum(fx, "k", kfx_bin(fx, KB_MUL, kfx_load(fx, "x", "k"), kfx_load(fx, "W", "n, k"))));
    qk_target t;
    CU_ASSERT_FATAL(qk_target_named("sm_90", &t) == 0);
    tir_config cfg;
    tir_default_config(&t, &cfg);
    char err[1024] = "";
    tir_func *f = tir_build(fx->arena, fx->k, &t, &cfg, err, sizeof err);
    if (!f)
        printf("\ntir_build failed: %s\n", err);
    CU_ASSERT_FATAL(f != NULL);
    char *src = emit_cuda(f);
    CU_ASSERT(strstr(src, "__global__") && strstr(src, "gridDim.x"));
    free(src);
    check_ptx(f);
    host_run_qgemv(f, fmt);
    kfx_free(fx);
}

/* .qk source -> frontend -> tir_build (schedule applied) for sm_90 ->
 * CUDA C -> PTX -> ptxas. */
static void test_frontend_sm90(void) {
    static const char src[] =
        "import ggml\n"
        "format q8 { code = int8; block = 32; scale = f32 }\n"
        "kernel gemv(x: f32[K], W: q4_0[N, K], b: f32[N]) -> y: f32[N] {\n"
        "  y[n] = sum(k) x[k] * W[n, k] + b[n]\n"
        "}\n"
        "schedule gemv { tile n = 16, k = 256; parallel n }\n"
        "kernel gemm_relu(x: f32[M, K], W: q8[N, K], b: f32[N]) -> y: f32[M, N] {\n"
        "  y[m, n] = relu(sum(k) x[m, k] * W[n, k] + b[n])\n"
        "}\n";
    qk_diags d;
    qk_diags_init(&d);
    kir_program *p = qk_frontend_compile(src, sizeof src - 1, "cuda_test.qk", NULL, &d);
    if (!p) {
        qk_buf b = {0};
        qk_diags_render(&d, &b);
        printf("\n%s\n", b.s ? b.s : "");
        qk_buf_free(&b);
    }
    CU_ASSERT_FATAL(p != NULL);
    qk_target t;
    CU_ASSERT_FATAL(qk_target_named("sm_90", &t) == 0);
    CU_ASSERT(p->nkernels == 2);
    for (int i = 0; i < p->nkernels; i++) {
        tir_config cfg;
        tir_default_config(&t, &cfg);
        tir_apply_schedule(p->kernels[i], &cfg);
        char err[1024] = "";
        tir_func *f = tir_build(p->arena, p->kernels[i], &t, &cfg, err, sizeof err);
        if (!f)
            printf("\ntir_build %s: %s\n", p->kernels[i]->name, err);
        CU_ASSERT_FATAL(f != NULL);
        char *cu = emit_cuda(f);
        CU_ASSERT(strstr(cu, "__global__") != NULL);
        free(cu);
        check_ptx(f);
    }
    kir_program_free(p);
    qk_diags_free(&d);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("cuda", NULL, NULL);
    CU_add_test(s, "gemv CUDA C structure", test_gemv_source);
    CU_add_test(s, "f16 + masked load/store CUDA C", test_half_source);
    CU_add_test(s, "every tiled-IR op is emitted", test_all_ops_covered);
    CU_add_test(s, "perm (CPU code only) refused with a message", test_perm_refused);
    CU_add_test(s, "gemv: NVRTC + ptxas sm_80/sm_90", test_ptx_gemv);
    CU_add_test(s, "f16 masked: NVRTC + ptxas sm_80/sm_90", test_ptx_half);
    CU_add_test(s, "int decode: NVRTC + ptxas sm_80/sm_90", test_ptx_decode);
    CU_add_test(s, "all ops: NVRTC + ptxas sm_80/sm_90", test_ptx_all_ops);
    CU_add_test(s, "host run of the emitted C: gemv", test_host_gemv);
    CU_add_test(s, "host run of the emitted C: f16 masked", test_host_half);
    CU_add_test(s, "host run of the emitted C: int decode", test_host_decode);
    CU_add_test(s, "host run of the emitted C: all ops, negative items", test_host_all_ops);
    CU_add_test(s, "emit --stage=ptx", test_emit_ptx_stage);
    CU_add_test(s, "compile from 4 threads on one state", test_compile_threads);
    CU_add_test(s, "lanes > 1 rejected", test_lanes_rejected);
    CU_add_test(s, "CPU target rejected", test_cpu_target_rejected);
    CU_add_test(s, "launch: no driver / on the device", test_launch);
    CU_add_test(s, "launch: QKC_LIBCUDA nonexistent or stub", test_launch_env);
    CU_add_test(s, "tir_build sm_90 -> CUDA -> PTX", test_tir_build_sm90);
    CU_add_test(s, ".qk source -> frontend -> sm_90 PTX", test_frontend_sm90);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    if (skip_reason)
        printf("skipped: no CUDA toolkit (%s)\n", skip_reason);
    CU_cleanup_registry();
    return failures != 0;
}
