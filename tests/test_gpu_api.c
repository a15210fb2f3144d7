/* test_gpu_api.c — the public API where code cannot run, in every build
 * (with or without LLVM):
 *
 *   - an sm_90 context: kernels compile to CUDA C without a GPU, the
 *     reference runs, and a launch either matches the reference (on a GPU)
 *     or returns QKC_ERR_NO_DEVICE with a message; with QKC_LIBCUDA
 *     pointing nowhere it always says "no CUDA driver";
 *   - a host context: built with LLVM, launches match the reference;
 *     built without (-DQKC_WITH_LLVM=OFF), kernels, the tiled IR and the
 *     reference still work and launch, fnptr and emit llvm/asm return
 *     QKC_ERR_UNSUPPORTED with "qkc was built without LLVM". */
#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkc.h"
#include "support/rt_test.h"

#ifndef QKC_WITH_LLVM
#define QKC_WITH_LLVM 1
#endif

static const char SRC[] = "import ggml\n"
                          "kernel gemv(x: f32[K], W: q4_0[N, K], b: f32[N]) -> y: f32[N] {\n"
                          "  y[n] = sum(k) x[k] * W[n, k] + b[n]\n"
                          "}\n";

typedef struct fixture {
    qkc_ctx *ctx;
    qkc_program *p;
    qkc_kernel *k;
    rtt_args a;
} fixture;

/* A context for target, the GEMV and arguments (K = 70, N = 37) whose
 * reference results are computed. */
static void setup(fixture *f, const char *target)
{
    memset(f, 0, sizeof *f);
    qkc_ctx_options o = {.target = target, .threads = 2, .tuning_db = "", .cache_dir = ""};
    CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&o, &f->ctx), QKC_OK);
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(f->ctx, SRC, "gpu_api.qk", &f->p), QKC_OK);
    qkc_status st = qkc_kernel_get(f->p, "gemv", &f->k);
    if (st != QKC_OK)
        printf("\n  %s kernel_get: %s\n", target, qkc_errmsg(f->ctx));
    CU_ASSERT_EQUAL_FATAL(st, QKC_OK);
    int64_t dims[2];
    for (int i = 0; i < qkc_kernel_ndims(f->k); i++)
        dims[i] = strcmp(qkc_kernel_dim_name(f->k, i), "K") == 0 ? 70 : 37;
    rtt_rng rng = {7};
    char err[512] = "";
    CU_ASSERT_EQUAL_FATAL(rtt_args_make(f->p, f->k, dims, &rng, &f->a, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(qkc_reference(f->k, f->a.ref, f->a.n), QKC_OK);
}

static void teardown(fixture *f)
{
    rtt_args_free(&f->a);
    qkc_program_destroy(f->p);
    qkc_ctx_destroy(f->ctx);
}

/* Launches f's kernel; QKC_OK only when the results match the reference. */
static qkc_status launch_checked(fixture *f)
{
    qkc_status st = qkc_launch(f->k, f->a.t, f->a.n, NULL);
    char msg[512] = "";
    if (st == QKC_OK && rtt_compare(&f->a, msg, sizeof msg) != 0) {
        printf("\n  %s\n", msg);
        return QKC_ERR_INTERNAL;
    }
    return st;
}

static void test_gpu_launch(void)
{
    fixture f;
    setup(&f, "sm_90");
    char *text = NULL;
    CU_ASSERT_EQUAL(qkc_kernel_emit(f.k, "cuda", &text), QKC_OK);
    CU_ASSERT(text && strstr(text, "__global__"));
    free(text);
    qkc_status st = launch_checked(&f);
    if (st == QKC_OK) {
        printf("\n  ran on the GPU and matched the reference");
    } else {
        CU_ASSERT_EQUAL(st, QKC_ERR_NO_DEVICE);
        const char *m = qkc_errmsg(f.ctx);
        CU_ASSERT(strstr(m, "no CUDA driver") || strstr(m, "no CUDA device") || strstr(m, "NVRTC not found"));
        printf("\n  %s: %s", qkc_strerror(st), m);
    }
    teardown(&f);
}

static void test_gpu_no_driver(void)
{
    setenv("QKC_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
    fixture f;
    setup(&f, "sm_90");
    CU_ASSERT_EQUAL(qkc_launch(f.k, f.a.t, f.a.n, NULL), QKC_ERR_NO_DEVICE);
    CU_ASSERT(strstr(qkc_errmsg(f.ctx), "no CUDA driver") != NULL);
    teardown(&f);
    unsetenv("QKC_LIBCUDA");
}

static void test_host(void)
{
    fixture f;
    setup(&f, "host");
    char *text = NULL;
    CU_ASSERT_EQUAL(qkc_kernel_emit(f.k, "tir", &text), QKC_OK);
    free(text);
    qkc_status st = launch_checked(&f);
    char launch_msg[512];
    snprintf(launch_msg, sizeof launch_msg, "%s", qkc_errmsg(f.ctx));
    void *fn = NULL;
    qkc_status fst = qkc_kernel_fnptr(f.k, &fn);
    qkc_status est = qkc_kernel_emit(f.k, "llvm", &text);
    if (est == QKC_OK)
        free(text);
    if (QKC_WITH_LLVM) {
        CU_ASSERT_EQUAL(st, QKC_OK);
        CU_ASSERT_EQUAL(fst, QKC_OK);
        CU_ASSERT_EQUAL(est, QKC_OK);
    } else {
        CU_ASSERT_EQUAL(st, QKC_ERR_UNSUPPORTED);
        CU_ASSERT(strstr(launch_msg, "qkc was built without LLVM: CPU code generation is unavailable") != NULL);
        printf("\n  launch: %s", launch_msg);
        CU_ASSERT_EQUAL(fst, QKC_ERR_UNSUPPORTED);
        CU_ASSERT_PTR_NULL(fn);
        CU_ASSERT_EQUAL(est, QKC_ERR_UNSUPPORTED);
        CU_ASSERT(strstr(qkc_errmsg(f.ctx), "built without LLVM") != NULL);
    }
    teardown(&f);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("gpu_api", NULL, NULL);
    CU_add_test(s, "sm_90: launch runs or says there is no driver/device", test_gpu_launch);
    CU_add_test(s, "sm_90: QKC_LIBCUDA pointing nowhere: no CUDA driver", test_gpu_no_driver);
    CU_add_test(s, "host: runs with LLVM, says why not without", test_host);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}
