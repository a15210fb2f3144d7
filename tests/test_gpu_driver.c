/* test_gpu_driver.c — the CUDA driver code (backends/cuda/driver.c and
 * libqkc_rt's rt_cuda.c) against a stand-in libcuda (fake_libcuda.c,
 * built next to the tests and named by QKC_LIBCUDA), so that it runs
 * without a GPU: cuInit failures are "no CUDA driver" (QKC_ERR_NO_DEVICE)
 * in the JIT and in libqkc_rt; describing the device retains no context;
 * a device older than the target is refused, and timing or probing on a
 * device of another architecture; PTX the driver rejects for its .version
 * names that version and the driver's; a sticky error refuses every later
 * launch; scratch buffers are not copied, aliasing arguments share one
 * device buffer; timed launches wait once per
 * batch and use cuEventElapsedTime_v2; the PTX cache key names NVRTC's
 * version; AOT CUDA versions are chosen by compute capability, and
 * libqkc_rt's launches handle scratch, aliases, PTX versions and sticky
 * errors as the JIT's. Launches
 * need a kernel compiled by NVRTC: without it they print "skipped: ...". */
#include <CUnit/Basic.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qkc.h"
#include "qkc_aot.h"
#include "runtime/device.h"
#include "runtime/runtime.h"
#include "support/rt_test.h"

#define FAKE_LIB QKC_BINARY_DIR "/libqkc_fake_cuda.so"

typedef struct fake_counts {
    int init, ctx_retain, htod, dtoh, memset, dtod, launches, event_sync, ctx_sync, streams, module_loads;
} fake_counts;

static fake_counts *(*counts_fn)(void);
static void (*reset_fn)(void);

static const char *gemv_src = "import ggml\n"
                              "kernel gemv(W: q4_0[N, K], x: f32[K]) -> y: f32[N] {\n"
                              "  y[n] = sum(k) W[n, k] * x[k]\n"
                              "}\n";
/* With a scratch buffer (the quantized x). */
static const char *gemv_q8_src = "import ggml\n"
                                 "kernel gemv(W: q4_0[N, K], x: f32[K]) -> y: f32[N] {\n"
                                 "  xq[k] = quantize(x[k], q8_0)\n"
                                 "  y[n] = sum(k) W[n, k] * xq[k]\n"
                                 "}\n";

/* Sets the fake's knobs; NULL unsets. */
static void fake_env(const char *init, const char *cc, const char *module, const char *launch)
{
    const char *names[] = {"FAKE_CUDA_INIT", "FAKE_CUDA_CC", "FAKE_CUDA_MODULE", "FAKE_CUDA_LAUNCH"};
    const char *vals[] = {init, cc, module, launch};
    for (int i = 0; i < 4; i++)
        if (vals[i])
            setenv(names[i], vals[i], 1);
        else
            unsetenv(names[i]);
    unsetenv("FAKE_CUDA_VERSION");
    reset_fn();
}

static qkc_ctx *ctx_for(const char *target)
{
    qkc_ctx_options o = {.target = target, .threads = 1, .cache_dir = "", .tuning_db = ""};
    qkc_ctx *ctx = NULL;
    CU_ASSERT_EQUAL(qkc_ctx_create(&o, &ctx), QKC_OK);
    return ctx;
}

/* The gemv of ctx with arguments; 0, or -1 (printed skip) without code. */
typedef struct gemv_run {
    qkc_program *p;
    qkc_kernel *k;
    rtt_args a;
} gemv_run;

static int gemv_make_from(qkc_ctx *ctx, const char *src, gemv_run *g)
{
    memset(g, 0, sizeof *g);
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, src, "gemv.qk", &g->p), QKC_OK);
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(g->p, "gemv", &g->k), QKC_OK);
    if (!g->k->entry->has_code) {
        printf("skipped: no GPU code (%s) ", g->k->entry->code_err ? g->k->entry->code_err : "?");
        qkc_program_destroy(g->p);
        return -1;
    }
    int64_t dims[2] = {64, 64};
    rtt_rng rng = {3};
    char err[512];
    CU_ASSERT_EQUAL_FATAL(rtt_args_make(g->p, g->k, dims, &rng, &g->a, err, sizeof err), 0);
    return 0;
}

static int gemv_make(qkc_ctx *ctx, gemv_run *g) { return gemv_make_from(ctx, gemv_src, g); }

static void gemv_free(gemv_run *g)
{
    rtt_args_free(&g->a);
    qkc_program_destroy(g->p);
}

static qkc_status gemv_launch(gemv_run *g)
{
    qkc_status st = qkc_launch(g->k, g->a.t, g->a.n, NULL);
    if (getenv("TEST_VERBOSE"))
        printf("\n  launch: %d %s\n", st, st ? qkc_errmsg(g->p->ctx) : "");
    return st;
}

/* ---- tests ---- */

/* Every cuInit failure is "no CUDA driver (...)" -> QKC_ERR_NO_DEVICE. */
static void test_init_failure(void)
{
    fake_env("803", NULL, NULL, NULL);
    qkc_ctx *ctx = ctx_for("sm_90");
    qk_probe_result r;
    CU_ASSERT_EQUAL(qk_device_probe(ctx, 1, &r), QKC_ERR_NO_DEVICE);
    const char *m = qkc_errmsg(ctx);
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "no CUDA driver (cuInit failed"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m, "CUresult 803"));
    qkc_ctx_destroy(ctx);
    char err[512] = "";
    CU_ASSERT_PTR_NULL(qkc_rt_gpu_new(err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no CUDA driver (cuInit failed"));
    fake_env("999", NULL, NULL, NULL);
    CU_ASSERT_PTR_NULL(qkc_rt_gpu_new(err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "no CUDA driver"));
}

/* The device's description comes without retaining its context. */
static void test_describe(void)
{
    fake_env(NULL, "90", NULL, NULL);
    qkc_ctx *ctx = ctx_for("sm_90");
    qk_target t;
    qk_device_target(ctx, &t);
    CU_ASSERT_STRING_EQUAL(t.cpu, "Fake GPU");
    CU_ASSERT_EQUAL(t.sm_count, 7);
    CU_ASSERT_EQUAL(counts_fn()->ctx_retain, 0);
    qkc_ctx_destroy(ctx);
    fake_env(NULL, "80", NULL, NULL); /* another architecture: the preset stays */
    ctx = ctx_for("sm_90");
    qk_device_target(ctx, &t);
    CU_ASSERT_EQUAL(t.sm_count, 132);
    qkc_ctx_destroy(ctx);
}

/* Probe and timing refuse a device of another architecture. */
static void test_probe_mismatch(void)
{
    fake_env(NULL, "90", NULL, NULL);
    qkc_ctx *ctx = ctx_for("sm_80");
    qk_probe_result r;
    CU_ASSERT_EQUAL(qk_device_probe(ctx, 1, &r), QKC_ERR_TARGET);
    CU_ASSERT_PTR_NOT_NULL(strstr(qkc_errmsg(ctx), "is sm_90"));
    CU_ASSERT_PTR_NOT_NULL(strstr(qkc_errmsg(ctx), "--target sm_90"));
    qkc_ctx_destroy(ctx);
    ctx = ctx_for("sm_90"); /* the same device as its own target: measured */
    CU_ASSERT_EQUAL(qk_device_probe(ctx, 1, &r), QKC_OK);
    CU_ASSERT(r.read_bw[QK_PROBE_DRAM][0] > 0);
    CU_ASSERT_EQUAL(counts_fn()->event_sync, 1); /* one wait for the 5 copies */
    qkc_ctx_destroy(ctx);
}

/* A launch on a device older than the target is refused as no device. */
static void test_old_device(void)
{
    fake_env(NULL, "80", NULL, NULL);
    qkc_ctx *ctx = ctx_for("sm_90");
    gemv_run g;
    if (gemv_make(ctx, &g) == 0) {
        CU_ASSERT_EQUAL(gemv_launch(&g), QKC_ERR_NO_DEVICE);
        CU_ASSERT_PTR_NOT_NULL(strstr(qkc_errmsg(ctx), "code for sm_90 cannot run on this machine"));
        CU_ASSERT_EQUAL(counts_fn()->launches, 0);
        gemv_free(&g);
    }
    qkc_ctx_destroy(ctx);
}

/* CUDA_ERROR_UNSUPPORTED_PTX_VERSION names the PTX's and driver's versions. */
static void test_ptx_version(void)
{
    fake_env(NULL, "90", "222", NULL);
    setenv("FAKE_CUDA_VERSION", "12040", 1);
    qkc_ctx *ctx = ctx_for("sm_90");
    gemv_run g;
    if (gemv_make(ctx, &g) == 0) {
        CU_ASSERT_EQUAL(gemv_launch(&g), QKC_ERR_NO_DEVICE);
        const char *m = qkc_errmsg(ctx);
        CU_ASSERT_PTR_NOT_NULL(strstr(m, "PTX .version "));
        CU_ASSERT_PTR_NOT_NULL(strstr(m, "this driver supports CUDA 12.4"));
        CU_ASSERT_PTR_NULL(strstr(m, "PTX .version ?"));
        gemv_free(&g);
    }
    qkc_ctx_destroy(ctx);
    unsetenv("FAKE_CUDA_VERSION");
}

/* After an illegal address every launch is refused, with a reason. */
static void test_sticky(void)
{
    fake_env(NULL, "90", NULL, "700");
    qkc_ctx *ctx = ctx_for("sm_90");
    gemv_run g;
    if (gemv_make(ctx, &g) == 0) {
        CU_ASSERT_NOT_EQUAL(gemv_launch(&g), QKC_OK);
        CU_ASSERT_PTR_NOT_NULL(strstr(qkc_errmsg(ctx), "restart the process"));
        unsetenv("FAKE_CUDA_LAUNCH");
        int launches = counts_fn()->launches;
        CU_ASSERT_NOT_EQUAL(gemv_launch(&g), QKC_OK);
        CU_ASSERT_PTR_NOT_NULL(strstr(qkc_errmsg(ctx), "unusable after an earlier error"));
        CU_ASSERT_EQUAL(counts_fn()->launches, launches); /* refused before launching */
        gemv_free(&g);
    }
    qkc_ctx_destroy(ctx);
}

/* One launch of f through the backend's hook (the runtime refuses a GPU
 * launch of more than one phase, as quantize() makes): 64-byte host
 * buffers for every pointer (alias: one buffer for all), one work item. */
static int hook_launch(qkc_ctx *ctx, const tir_func *f, qk_code *code, int alias, char *err, size_t errsz)
{
    void *state = NULL;
    if (rt_backend_state(ctx, &state, err, errsz))
        return -1;
    int n = f->nargs;
    void **args = calloc((size_t)n, sizeof *args), **host = calloc((size_t)n, sizeof *host);
    int64_t *ints = calloc((size_t)n, sizeof *ints), *bytes = calloc((size_t)n, sizeof *bytes);
    for (int i = 0; i < n; i++) {
        if (f->args[i].s == TS_PTR) {
            host[i] = alias && i > 0 ? NULL : calloc(1, 64);
            bytes[i] = 64;
            args[i] = alias ? &host[0] : &host[i];
        } else {
            args[i] = &ints[i];
        }
    }
    ints[f->arg_end] = 1;
    int rc = ctx->backend->launch(state, f, code, args, bytes, NULL, err, errsz);
    for (int i = 0; i < n; i++)
        free(host[i]);
    free(args), free(host), free(ints), free(bytes);
    return rc;
}

/* Pointer arguments of f, and those that are written (results, scratch). */
static void count_ptrs(const tir_func *f, int *ptrs, int *outs)
{
    *ptrs = *outs = 0;
    for (int i = 0; i < f->nargs; i++) {
        *ptrs += f->args[i].s == TS_PTR;
        *outs += f->args[i].s == TS_PTR && !f->args[i].is_const;
    }
}

/* Inputs and the result are copied, the scratch of quantize() is not. */
static void test_scratch(void)
{
    fake_env(NULL, "90", NULL, NULL);
    qkc_ctx *ctx = ctx_for("sm_90");
    gemv_run g;
    if (gemv_make_from(ctx, gemv_q8_src, &g) == 0) {
        const tir_func *f = g.k->entry->f;
        int ptrs, outs;
        count_ptrs(f, &ptrs, &outs);
        CU_ASSERT(f->nscratch >= 1);
        char err[1024] = "";
        CU_ASSERT_EQUAL(hook_launch(ctx, f, &g.k->entry->code, 0, err, sizeof err), 0);
        fake_counts *c = counts_fn();
        CU_ASSERT_EQUAL(c->htod, ptrs - f->nscratch); /* W, x, y */
        CU_ASSERT_EQUAL(c->dtoh, outs - f->nscratch); /* y */
        CU_ASSERT_EQUAL(c->memset, f->nscratch);
        CU_ASSERT_EQUAL(c->ctx_retain, 1);
        gemv_free(&g);
    }
    qkc_ctx_destroy(ctx);
}

/* A kernel with a quantize() temp runs in two phases through qkc_launch:
 * one kernel launch per phase, the buffers copied in and out once and the
 * scratch kept on the device between the launches, one wait. */
static void test_phases(void)
{
    fake_env(NULL, "90", NULL, NULL);
    qkc_ctx *ctx = ctx_for("sm_90");
    gemv_run g;
    if (gemv_make_from(ctx, gemv_q8_src, &g) == 0) {
        const tir_func *f = g.k->entry->f;
        int ptrs, outs;
        count_ptrs(f, &ptrs, &outs);
        CU_ASSERT_EQUAL(f->nphases, 2);
        CU_ASSERT_EQUAL(gemv_launch(&g), QKC_OK);
        fake_counts *c = counts_fn();
        CU_ASSERT_EQUAL(c->launches, f->nphases);
        CU_ASSERT_EQUAL(c->htod, ptrs - f->nscratch);
        CU_ASSERT_EQUAL(c->memset, f->nscratch);
        CU_ASSERT_EQUAL(c->dtoh, outs - f->nscratch);
        CU_ASSERT_EQUAL(c->ctx_sync, 1);
        gemv_free(&g);
    }
    qkc_ctx_destroy(ctx);
}

/* Arguments on one host buffer share one device buffer. */
static void test_alias(void)
{
    fake_env(NULL, "90", NULL, NULL);
    qkc_ctx *ctx = ctx_for("sm_90");
    gemv_run g;
    if (gemv_make(ctx, &g) == 0) {
        char err[1024] = "";
        CU_ASSERT_EQUAL(hook_launch(ctx, g.k->entry->f, &g.k->entry->code, 1, err, sizeof err), 0);
        CU_ASSERT_EQUAL(counts_fn()->htod, 1);
        CU_ASSERT_EQUAL(counts_fn()->dtoh, 1); /* y, from the shared buffer */
        gemv_free(&g);
    }
    qkc_ctx_destroy(ctx);
}

/* Timed launches: one wait for the batch, times from cuEventElapsedTime_v2. */
static void test_timed(void)
{
    fake_env(NULL, "90", NULL, NULL);
    qkc_ctx *ctx = ctx_for("sm_90");
    gemv_run g;
    if (gemv_make(ctx, &g) == 0) {
        double s[5] = {0};
        qk_device_timing tm = {.copies = 2, .reps = 5, .seconds = s};
        CU_ASSERT_EQUAL(qk_device_time(g.k, g.a.t, g.a.n, &tm), QKC_OK);
        fake_counts *c = counts_fn();
        CU_ASSERT_EQUAL(c->event_sync, 1);
        CU_ASSERT_EQUAL(c->streams, 1);
        CU_ASSERT_EQUAL(c->launches, 2 + 1 + 5); /* warm-up per set, filler, reps */
        for (int i = 0; i < 5; i++)
            CU_ASSERT_DOUBLE_EQUAL(s[i], 0.5e-3, 1e-9);
        gemv_free(&g);
    }
    qkc_ctx_destroy(ctx);
}

/* The PTX cache key names the NVRTC that made the PTX. */
static void test_cache_key(void)
{
    qkc_ctx *ctx = ctx_for("sm_90");
    void *state = NULL;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(rt_backend_state(ctx, &state, err, sizeof err), 0);
    const char *tag = ctx->backend->obj_tag(state);
    const char *v = strstr(tag, "nvrtc=");
    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    v += strlen("nvrtc=");
    CU_ASSERT((*v >= '1' && *v <= '9') || strncmp(v, "none", 4) == 0);
    if (strncmp(v, "none", 4) == 0)
        printf("skipped: no NVRTC, its version not checked ");
    qkc_ctx_destroy(ctx);
}

/* libqkc_rt takes the first CUDA version the device is new enough for. */
static void test_aot_select(void)
{
    fake_env(NULL, "80", NULL, NULL); /* before the runtime's once-per-process probe */
    const char *ptx90 = ".version 8.0\n.target sm_90\n.visible .entry k()\n{\n ret;\n}\n";
    const char *ptx80 = ".version 8.0\n.target sm_80\n.visible .entry k()\n{\n ret;\n}\n";
    qkc_aot_variant vs[2] = {
        {.isa = "sm_90", .kind = QKC_AOT_CUDA, .gpu_code = ptx90, .gpu_symbol = "k", .gpu_block = 128},
        {.isa = "sm_80", .kind = QKC_AOT_CUDA, .gpu_code = ptx80, .gpu_symbol = "k", .gpu_block = 128},
    };
    qkc_aot_kernel k = {.abi = QKC_AOT_ABI, .name = "k", .nvariants = 2, .variants = vs};
    char err[1024] = "";
    const qkc_aot_variant *v = qkc_rt_select(&k, err, sizeof err);
    CU_ASSERT_PTR_EQUAL(v, &vs[1]);
    k.nvariants = 1;
    CU_ASSERT_PTR_NULL(qkc_rt_select(&k, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "the CUDA device is sm_80, older than sm_90's sm_90"));
}

/* ---- libqkc_rt launches ---- */

static const char *aot_ptx = ".version 8.0\n.target sm_80\n.visible .entry k()\n{\n ret;\n}\n";
static const qkc_aot_tensor aot_tensors[3] = {
    {.name = "x", .kind = QKC_AOT_PARAM, .dtype = "f32", .elem_bytes = 4, .rank = 1, .dims = {{0, 0}}, .book = -1},
    {.name = "y", .kind = QKC_AOT_RESULT, .dtype = "f32", .elem_bytes = 4, .rank = 1, .dims = {{0, 0}}, .book = -1},
    {.name = "t", .kind = QKC_AOT_TEMP, .dtype = "f32", .elem_bytes = 4, .rank = 1, .dims = {{0, 0}}, .book = -1},
};
static const qkc_aot_grid aot_grid = {.extent = {0, 0}, .tile = 1, .phase = 0};
static const qkc_aot_scratch aot_scratch = {.tensor = 2, .kind = QKC_AOT_SCRATCH_DENSE};
static const char *const aot_dim_names[] = {"N"};

/* y = f(x) over N, with the dense temp t as scratch; one sm_80 version. */
static int aot_run(qkc_rt_gpu *gpu, float *x, float *y, char *err, size_t errsz)
{
    static const qkc_aot_variant v = {.isa = "sm_80", .kind = QKC_AOT_CUDA, .gpu_symbol = "k", .gpu_block = 128,
                                      .ngrids = 1, .grids = &aot_grid, .nphases = 1, .nscratch = 1,
                                      .scratch = &aot_scratch};
    qkc_aot_variant var = v;
    var.gpu_code = aot_ptx;
    var.gpu_code_bytes = (int64_t)strlen(aot_ptx) + 1;
    qkc_aot_kernel k = {.abi = QKC_AOT_ABI, .name = "k", .nparams = 1, .nresults = 1, .ntensors = 3,
                        .tensors = aot_tensors, .ndims = 1, .dim_names = aot_dim_names, .nvariants = 1,
                        .variants = &var};
    qkc_aot_arg argv[3] = {{.p = x}, {.p = y}, {.i = 16}};
    qkc_rt_opts o = {.gpu = gpu, .err = err, .errsz = errsz};
    return qkc_rt_launch(&k, argv, &o);
}

/* libqkc_rt: scratch is not copied, aliases share a buffer, PTX too new
 * for the driver and sticky errors are reported as in the JIT. */
static void test_aot_launch(void)
{
    fake_env(NULL, "80", NULL, NULL);
    char err[1024] = "";
    qkc_rt_gpu *gpu = qkc_rt_gpu_new(err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gpu);
    float x[16] = {0}, y[16] = {0};
    CU_ASSERT_EQUAL(aot_run(gpu, x, y, err, sizeof err), QKC_RT_OK);
    fake_counts *c = counts_fn();
    CU_ASSERT_EQUAL(c->htod, 2); /* x, y */
    CU_ASSERT_EQUAL(c->memset, 1); /* t */
    CU_ASSERT_EQUAL(c->dtoh, 1);   /* y */
    reset_fn();
    CU_ASSERT_EQUAL(aot_run(gpu, x, x, err, sizeof err), QKC_RT_OK); /* in place */
    CU_ASSERT_EQUAL(c->htod, 1);
    CU_ASSERT_EQUAL(c->dtoh, 1);
    qkc_rt_gpu_free(gpu);

    fake_env(NULL, "80", "222", NULL);
    setenv("FAKE_CUDA_VERSION", "12080", 1);
    gpu = qkc_rt_gpu_new(err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gpu);
    CU_ASSERT_EQUAL(aot_run(gpu, x, y, err, sizeof err), QKC_RT_ERR_NO_DEVICE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "PTX .version 8.0 cannot run on this machine"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "this driver supports CUDA 12.8"));
    qkc_rt_gpu_free(gpu);
    unsetenv("FAKE_CUDA_VERSION");

    fake_env(NULL, "80", NULL, "700");
    gpu = qkc_rt_gpu_new(err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(gpu);
    CU_ASSERT_NOT_EQUAL(aot_run(gpu, x, y, err, sizeof err), QKC_RT_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "restart the process"));
    unsetenv("FAKE_CUDA_LAUNCH");
    int launches = c->launches;
    CU_ASSERT_NOT_EQUAL(aot_run(gpu, x, y, err, sizeof err), QKC_RT_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unusable after an earlier error"));
    CU_ASSERT_EQUAL(c->launches, launches);
    qkc_rt_gpu_free(gpu);
}

int main(void)
{
    void *fake = dlopen(FAKE_LIB, RTLD_NOW | RTLD_LOCAL);
    if (fake) {
        counts_fn = (fake_counts * (*)(void)) dlsym(fake, "fake_cuda_counts");
        reset_fn = (void (*)(void))dlsym(fake, "fake_cuda_reset");
    }
    if (!counts_fn || !reset_fn) {
        printf("skipped: no stand-in driver %s (%s)\n", FAKE_LIB, dlerror());
        return 0;
    }
    setenv("QKC_LIBCUDA", FAKE_LIB, 1);
    if (getenv("QKC_AOT_ISA"))
        unsetenv("QKC_AOT_ISA");
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("gpu driver (stand-in libcuda)", NULL, NULL);
    CU_add_test(s, "AOT: CUDA versions by compute capability", test_aot_select);
    CU_add_test(s, "AOT: scratch, aliases, PTX version, sticky errors", test_aot_launch);
    CU_add_test(s, "cuInit failures are 'no CUDA driver'", test_init_failure);
    CU_add_test(s, "describe retains no context", test_describe);
    CU_add_test(s, "probe on another architecture is refused", test_probe_mismatch);
    CU_add_test(s, "a device older than the target is refused", test_old_device);
    CU_add_test(s, "PTX too new for the driver", test_ptx_version);
    CU_add_test(s, "sticky errors refuse later launches", test_sticky);
    CU_add_test(s, "scratch buffers are not copied", test_scratch);
    CU_add_test(s, "quantize() temps: one launch per phase, buffers on the device between", test_phases);
    CU_add_test(s, "aliasing arguments share a device buffer", test_alias);
    CU_add_test(s, "timed launches: one wait, cuEventElapsedTime_v2", test_timed);
    CU_add_test(s, "the PTX cache key names NVRTC's version", test_cache_key);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}
