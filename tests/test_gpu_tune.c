/* test_gpu_tune.c — the tuner on GPU targets, without a GPU
 * (compiler/tune.c's GPU search and model, compiler/tune_gpu.c's
 * legality, backends/cuda/ptxas.c's register report):
 *
 *  - ptxas -v reports are parsed (registers, shared memory, spills);
 *  - the limits: registers per thread, registers x threads per block,
 *    static shared memory per block, each rejected with its reason;
 *  - on the sm_80 and sm_90 presets, for a q4_0 GEMV, an f32 x q4_0 GEMM
 *    (the general path: tile_par x tile_inner outputs per thread) and the
 *    f16 x q4_0 tensor-core GEMM (mma.sync; nothing to tune), the
 *    candidate list is non-empty and ranked, every candidate the check
 *    keeps fits the target, and the registers come from ptxas ("skipped:
 *    no ptxas" where the toolkit or NVRTC is missing: then the estimate
 *    is checked instead);
 *  - a fake target with 1024 registers per block rejects every
 *    candidate, with the reason. */
#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/cuda/cuda_internal.h"
#include "compiler/tune.h"
#include "frontend/frontend.h"
#include "support/lib_formats.h"

static const char source[] = "import ggml\n"
                             "kernel gemv(x: f32[K], W: q4_0[N, K]) -> y: f32[N] {\n"
                             "  y[n] = sum(k) x[k] * W[n, k]\n"
                             "}\n"
                             "kernel gemm(x: f32[M, K], W: q4_0[N, K]) -> y: f32[M, N] {\n"
                             "  y[m, n] = sum(k) x[m, k] * W[n, k]\n"
                             "}\n"
                             "kernel w4a16(x: f16[M, K], W: q4_0[N, K]) -> y: f32[M, N] {\n"
                             "  y[m, n] = sum(k) x[m, k] * W[n, k]\n"
                             "}\n";

static kir_program *prog;

/* Dimension values in the kernel's symbol order (K, M, N as they occur). */
static void dims_of(const kir_kernel *k, int64_t *dims)
{
    for (int i = 0; i < k->nsyms; i++)
        dims[i] = strcmp(k->syms[i], "M") == 0 ? 64 : 4096;
}

/* ---- the usage callback: the CUDA backend's resources hook ---- */

typedef struct usage_ctx {
    void *state;
    int calls, failed;
    char first_err[256];
} usage_ctx;

static int backend_usage(void *arg, const tir_func *f, tune_gpu_usage *u, char *err, size_t n)
{
    usage_ctx *c = arg;
    qk_resources r = {0};
    c->calls++;
    if (qk_backend_cuda.resources(c->state, f, &r, err, n) != 0) {
        if (!c->failed++)
            snprintf(c->first_err, sizeof c->first_err, "%s", err);
        return -1;
    }
    qk_resources_usage(&r, u);
    return 0;
}

static int have_ptxas(void)
{
    char path[1024];
    return cuda_ptxas_path(path, sizeof path) == 0;
}

/* ---- tests ---- */

static void test_block(void) { CU_ASSERT(TUNE_GPU_BLOCK == CUDA_BLOCK); }

static void test_parse(void)
{
    qk_resources r = {0};
    const char *v12 = "ptxas info    : 0 bytes gmem\n"
                      "ptxas info    : Compiling entry function 'gemv' for 'sm_90'\n"
                      "ptxas info    : Function properties for gemv\n"
                      "    0 bytes stack frame, 24 bytes spill stores, 24 bytes spill loads\n"
                      "ptxas info    : Used 128 registers, used 1 barriers, 4096 bytes smem\n";
    CU_ASSERT(cuda_ptxas_parse(v12, &r) == 0);
    CU_ASSERT(r.regs == 128 && r.smem == 4096 && r.spill == 24);
    const char *old = "ptxas info    : Used 40 registers, 360 bytes cmem[0]\n";
    CU_ASSERT(cuda_ptxas_parse(old, &r) == 0);
    CU_ASSERT(r.regs == 40 && r.smem == 0 && r.spill == 0);
    CU_ASSERT(cuda_ptxas_parse("ptxas fatal   : Unresolved extern function 'f'\n", &r) == -1);
    CU_ASSERT(cuda_ptxas_parse("", &r) == -1);
}

static void test_fits(void)
{
    qk_target t;
    CU_ASSERT_FATAL(qk_target_named("sm_90", &t) == 0);
    char why[192] = "";
    tune_gpu_usage u = {.regs = 255, .smem = 48 * 1024, .block = 128, .from_ptxas = 1};
    CU_ASSERT(tune_gpu_fits(&t, &u, why, sizeof why) == 1);
    u.regs = 256;
    CU_ASSERT(tune_gpu_fits(&t, &u, why, sizeof why) == 0);
    CU_ASSERT(strstr(why, "per thread") != NULL);
    u.regs = 128;
    u.block = 1024; /* 128 x 1024 > 65536 */
    CU_ASSERT(tune_gpu_fits(&t, &u, why, sizeof why) == 0);
    CU_ASSERT(strstr(why, "registers per block") != NULL);
    u.block = 128;
    u.smem = 48 * 1024 + 1;
    CU_ASSERT(tune_gpu_fits(&t, &u, why, sizeof why) == 0);
    CU_ASSERT(strstr(why, "shared memory") != NULL);
}

/* The best max candidates of kernel name on target tname, checked with
 * usage from fn; asserts what holds for every kernel. Returns the count.
 * (NVRTC takes up to 3 s for the largest tiles: the tests check the
 * model's first few, as `qkc tune` checks its --top.) */
static int check_kernel(const char *tname, const char *name, int max, tune_gpu_usage_fn fn, usage_ctx *uc,
                        tune_cand *c, tune_gpu_verdict *v, int *legal)
{
    qk_target t;
    CU_ASSERT_FATAL(qk_target_named(tname, &t) == 0);
    const kir_kernel *k = kir_find_kernel(prog, name);
    CU_ASSERT_FATAL(k != NULL);
    int64_t dims[8];
    dims_of(k, dims);
    tir_config base;
    tir_default_config(&t, &base);
    int n = tune_candidates(k, &t, &base, dims, 1, NULL, c, max);
    CU_ASSERT(n >= 1 && n <= max);
    for (int i = 0; i < n; i++) {
        CU_ASSERT(c[i].model_s > 0 && isfinite(c[i].model_s));
        CU_ASSERT(i == 0 || c[i - 1].model_s <= c[i].model_s);
        CU_ASSERT(c[i].cfg.tile_par * c[i].cfg.tile_inner <= 64 && c[i].cfg.lanes == 1);
    }
    *legal = tune_gpu_check(k, &t, c, n, fn, uc, v);
    CU_ASSERT(*legal >= 1);
    for (int i = 0; i < n; i++) {
        char why[192];
        CU_ASSERT(v[i].legal == (i < *legal));
        CU_ASSERT(v[i].legal == tune_gpu_fits(&t, &v[i].use, why, sizeof why));
        CU_ASSERT(v[i].legal || v[i].why[0]);
        CU_ASSERT(v[i].use.regs > 0 && v[i].use.block == TUNE_GPU_BLOCK);
        if (v[i].legal) {
            CU_ASSERT(v[i].use.regs <= t.regs_per_thread && v[i].use.regs * v[i].use.block <= t.regs_per_block &&
                      v[i].use.smem <= t.smem_per_block);
        }
        printf("\n  %s %s tile_par=%d tile_inner=%d: %d registers (%s), %d B smem, %d B spill, %s", tname, name,
               c[i].cfg.tile_par, c[i].cfg.tile_inner, v[i].use.regs, v[i].use.from_ptxas ? "ptxas" : "estimate",
               v[i].use.smem, v[i].use.spill, v[i].legal ? "legal" : v[i].why);
    }
    return n;
}

static void candidates_on(const char *tname)
{
    qk_target t;
    CU_ASSERT_FATAL(qk_target_named(tname, &t) == 0);
    usage_ctx uc = {0};
    char err[256] = "";
    CU_ASSERT_FATAL(qk_backend_cuda.create(&t, &uc.state, err, sizeof err) == 0);
    tune_cand c[64];
    tune_gpu_verdict v[64];
    int legal = 0;
    int ptxas = have_ptxas();
    int n = check_kernel(tname, "gemv", 4, backend_usage, &uc, c, v, &legal);
    CU_ASSERT(n == 4); /* tile_par 1..16 build distinct code */
    /* N = 4096 rows cannot fill the GPU one per thread: more rows per thread only lose */
    CU_ASSERT(c[0].cfg.tile_par == 1);
    n = check_kernel(tname, "gemm", 5, backend_usage, &uc, c, v, &legal);
    CU_ASSERT(n == 5); /* tile_par x tile_inner */
    n = check_kernel(tname, "w4a16", 8, backend_usage, &uc, c, v, &legal);
    CU_ASSERT(n == 1); /* tensor-core tiles take nothing from the configuration */
    if (ptxas && uc.failed && strstr(uc.first_err, "NVRTC"))
        printf("\n  skipped: no NVRTC (%s): registers estimated", uc.first_err);
    else if (ptxas) {
        CU_ASSERT(uc.failed == 0); /* every register count came from ptxas */
    } else
        printf("\n  skipped: no ptxas (%s): registers estimated", uc.first_err);
    CU_ASSERT(uc.calls > 0);
    qk_backend_cuda.destroy(uc.state);
}

static void test_sm80(void) { candidates_on("sm_80"); }
static void test_sm90(void) { candidates_on("sm_90"); }

/* Without an assembler the estimate decides, and says so. */
static void test_estimate(void)
{
    tune_cand c[64];
    tune_gpu_verdict v[64];
    int legal = 0;
    int n = check_kernel("sm_90", "gemm", 64, NULL, NULL, c, v, &legal);
    CU_ASSERT(n >= 12); /* tile_par 1..16 x tile_inner 1..8, at most 64 outputs */
    for (int i = 0; i < n; i++) {
        CU_ASSERT(v[i].use.from_ptxas == 0 && v[i].estimate[0]);
        CU_ASSERT(v[i].use.regs >= 32 && v[i].use.regs <= 255);
    }
    CU_ASSERT(legal == n);
}

/* A target with 1024 registers per block: nothing fits, each says why. */
static void test_forced_illegal(void)
{
    qk_target t;
    CU_ASSERT_FATAL(qk_target_named("sm_90", &t) == 0);
    t.regs_per_block = 1024;
    const kir_kernel *k = kir_find_kernel(prog, "gemv");
    int64_t dims[8];
    dims_of(k, dims);
    tir_config base;
    tir_default_config(&t, &base);
    tune_cand c[64];
    tune_gpu_verdict v[64];
    int n = tune_candidates(k, &t, &base, dims, 1, NULL, c, 3);
    usage_ctx uc = {0};
    char err[256] = "";
    CU_ASSERT_FATAL(qk_backend_cuda.create(&t, &uc.state, err, sizeof err) == 0);
    CU_ASSERT(n >= 1);
    CU_ASSERT(tune_gpu_check(k, &t, c, n, backend_usage, &uc, v) == 0);
    for (int i = 0; i < n; i++) {
        CU_ASSERT(!v[i].legal);
        CU_ASSERT(strstr(v[i].why, "registers per block") != NULL);
    }
    printf("\n  rejected: %s", n ? v[0].why : "-");
    qk_backend_cuda.destroy(uc.state);
}

int main(void)
{
    qk_diags d;
    prog = rtt_compile(source, sizeof source - 1, "gpu_tune_test.qk", NULL, &d);
    if (!prog)
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("gpu_tune", NULL, NULL);
    CU_add_test(s, "TUNE_GPU_BLOCK is the CUDA backend's block", test_block);
    CU_add_test(s, "ptxas -v reports", test_parse);
    CU_add_test(s, "limits: registers per thread and block, shared memory", test_fits);
    CU_add_test(s, "sm_80: ranked, legal, registers from ptxas", test_sm80);
    CU_add_test(s, "sm_90: ranked, legal, registers from ptxas", test_sm90);
    CU_add_test(s, "no assembler: the estimate", test_estimate);
    CU_add_test(s, "1024 registers per block: every candidate rejected", test_forced_illegal);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    qk_diags_free(&d);
    kir_program_free(prog);
    return fails ? 1 : 0;
}
