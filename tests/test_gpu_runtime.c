/* test_gpu_runtime.c — the GPU runtime around the CUDA backend: the
 * sm_80/sm_90 target presets, the driver API slice (every symbol exists
 * in the toolkit's stub library), PTX in the on-disk kernel cache (a
 * second compile is a hit, needs no NVRTC, and garbage is rejected), and
 * the device calls of runtime/device.h (timed launch, copy-bandwidth
 * probe): without a driver they fail with QKC_ERR_NO_DEVICE and "no CUDA
 * driver"; with a device they run and the timed launch's results match
 * the reference. Parts needing NVRTC or a device print "skipped: ...". */
#include <CUnit/Basic.h>
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/cuda/cuda_api.h"
#include "qkc.h"
#include "runtime/device.h"
#include "runtime/runtime.h"
#include "support/rt_test.h"

static const char *gemv_src = "import ggml\n"
                              "kernel gemv(x: f32[K], W: q4_0[N, K]) -> y: f32[N] {\n"
                              "  y[n] = sum(k) x[k] * W[n, k]\n"
                              "}\n";

/* ---- presets ---- */

static void test_presets(void)
{
    qk_target t;
    CU_ASSERT_EQUAL_FATAL(qk_target_named("sm_80", &t), 0);
    CU_ASSERT_EQUAL(t.kind, QK_TARGET_GPU);
    CU_ASSERT_EQUAL(t.sm, 80);
    CU_ASSERT_EQUAL(t.warp, 32);
    CU_ASSERT_EQUAL(t.sm_count, 108);
    CU_ASSERT_EQUAL(t.l2, 40LL << 20);
    CU_ASSERT_EQUAL(t.smem_per_sm, 164 * 1024);
    CU_ASSERT_EQUAL(t.smem_optin, 163 * 1024);
    CU_ASSERT_EQUAL(t.smem_per_block, 48 * 1024);
    CU_ASSERT_EQUAL(t.regs_per_sm, 65536);
    CU_ASSERT_EQUAL(t.regs_per_block, 65536);
    CU_ASSERT_EQUAL(t.regs_per_thread, 255);
    CU_ASSERT_EQUAL_FATAL(qk_target_named("sm_90", &t), 0);
    CU_ASSERT_EQUAL(t.sm, 90);
    CU_ASSERT_EQUAL(t.sm_count, 132);
    CU_ASSERT_EQUAL(t.l2, 50LL << 20);
    CU_ASSERT_EQUAL(t.smem_per_sm, 228 * 1024);
    CU_ASSERT_EQUAL(t.smem_optin, 227 * 1024);
    CU_ASSERT(t.smem_optin <= t.smem_per_sm && t.smem_per_block <= t.smem_optin);
    CU_ASSERT_EQUAL(t.cpu[0], 0); /* a preset names no device */
    qk_buf b = {0};
    qk_target_print(&t, &b);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.s, "132 SMs"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.s, "227 KiB opt-in"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.s, "L2 50 MiB"));
    qk_buf_free(&b);
    CU_ASSERT_EQUAL(qk_target_named("sm_70", &t), -1);
    CU_ASSERT_EQUAL(qk_target_named("sm_900", &t), -1);
}

static void test_preset_list(void)
{
    int gpus = 0, n = 0;
    for (; qk_target_presets[n]; n++) {
        qk_target t;
        CU_ASSERT_EQUAL(qk_target_named(qk_target_presets[n], &t), 0);
        gpus += t.kind == QK_TARGET_GPU;
    }
    CU_ASSERT(n >= 6);
    CU_ASSERT_EQUAL(gpus, 2);
}

/* ---- the driver API slice ---- */

typedef struct api_slots {
    CUDA_API_FIELDS
} api_slots;

static const char *resolve_all(void *lib, api_slots *s)
{
    CUDA_API_RESOLVE(lib, s)
    return NULL;
}

/* Every symbol driver.c and libqkc_rt resolve exists in the toolkit's
 * stub, i.e. in the driver API of that CUDA version. */
static void test_api_symbols(void)
{
    void *lib = dlopen("/usr/local/cuda/lib64/stubs/libcuda.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        printf("skipped: no CUDA toolkit stub library (/usr/local/cuda/lib64/stubs/libcuda.so) ");
        return;
    }
    api_slots s;
    const char *missing = resolve_all(lib, &s);
    CU_ASSERT_PTR_NULL(missing);
    if (missing)
        printf("\n  missing in the stub: %s\n", missing);
    dlclose(lib);
}

/* ---- PTX in the disk cache ---- */

static qkc_ctx *gpu_ctx(const char *target, const char *cache_dir)
{
    qkc_ctx_options o = {.target = target, .threads = 1, .cache_dir = cache_dir, .tuning_db = ""};
    qkc_ctx *ctx = NULL;
    CU_ASSERT_EQUAL(qkc_ctx_create(&o, &ctx), QKC_OK);
    return ctx;
}

static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strlen(e->d_name) > strlen(suffix) && strcmp(e->d_name + strlen(e->d_name) - strlen(suffix), suffix) == 0;
    if (d)
        closedir(d);
    return n;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* The PTX of gemv from a fresh context on dir (malloc'd; NULL when the
 * kernel has no code, e.g. without NVRTC: *why says so). */
static char *gemv_ptx(const char *dir, qkc_ctx **keep, qkc_program **pout, qkc_kernel **kout, char *why, size_t n)
{
    qkc_ctx *ctx = gpu_ctx("sm_90", dir);
    qkc_program *p = NULL;
    qkc_kernel *k = NULL;
    char *ptx = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, gemv_src, "gemv.qk", &p), QKC_OK);
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "gemv", &k), QKC_OK);
    if (!k->entry->has_code)
        snprintf(why, n, "%s", k->entry->code_err ? k->entry->code_err : "no code");
    else
        CU_ASSERT_EQUAL(qkc_kernel_emit(k, "ptx", &ptx), QKC_OK);
    if (keep) {
        *keep = ctx;
        *pout = p;
        *kout = k;
        return ptx;
    }
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
    return ptx;
}

static void test_disk_cache(void)
{
    char dir[] = "/tmp/qkc-gpu-cache-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char why[1024] = "";
    char *first = gemv_ptx(dir, NULL, NULL, NULL, why, sizeof why);
    if (!first) {
        printf("skipped: no PTX (%s) ", why);
        remove_dir(dir);
        return;
    }
    CU_ASSERT_EQUAL(count_files(dir, ".o"), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(first, ".entry gemv"));
    /* a fresh context: the same PTX, served from the file */
    qkc_ctx *ctx = NULL;
    qkc_program *p = NULL;
    qkc_kernel *k = NULL;
    char *second = gemv_ptx(dir, &ctx, &p, &k, why, sizeof why);
    CU_ASSERT_PTR_NOT_NULL_FATAL(second);
    CU_ASSERT_STRING_EQUAL(first, second);
    CU_ASSERT_EQUAL(count_files(dir, ".o"), 1);
    /* the same entry through rt_compile_cached: a hit, with the same code */
    void *state = NULL;
    char err[1024] = "";
    CU_ASSERT_EQUAL_FATAL(rt_backend_state(ctx, &state, err, sizeof err), 0);
    rt_entry e = {.hash = k->entry->hash, .key = k->entry->key, .f = k->entry->f};
    int hit = 0;
    CU_ASSERT_EQUAL(rt_compile_cached(ctx->backend, state, dir, &e, &hit, err, sizeof err), 0);
    CU_ASSERT_EQUAL(hit, 1);
    qk_buf b = {0};
    CU_ASSERT_EQUAL(ctx->backend->code_text(state, &e.code, QK_EMIT_PTX, &b), 0);
    CU_ASSERT_STRING_EQUAL(b.s, first);
    qk_buf_free(&b);
    ctx->backend->release(state, &e.code);
    /* code without the text of a stage */
    CU_ASSERT_EQUAL(ctx->backend->code_text(state, &e.code, QK_EMIT_PTX, &b), -1);
    free(first);
    free(second);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
    remove_dir(dir);
}

/* load_obj takes only text that defines the kernel. */
static void test_load_obj_rejects(void)
{
    qkc_ctx *ctx = gpu_ctx("sm_80", "");
    qkc_program *p = NULL;
    qkc_kernel *k = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, gemv_src, "gemv.qk", &p), QKC_OK);
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "gemv", &k), QKC_OK);
    void *state = NULL;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(rt_backend_state(ctx, &state, err, sizeof err), 0);
    const qk_backend *be = ctx->backend;
    CU_ASSERT_PTR_NOT_NULL(be->obj_tag(state));
    CU_ASSERT_PTR_NOT_NULL(strstr(be->obj_tag(state), "compute_80"));
    qk_code c = {0};
    const char bin[] = {'.', 'e', 0, 'g', 'e', 'm', 'v'};
    CU_ASSERT_EQUAL(be->load_obj(state, k->entry->f, bin, sizeof bin, &c, err, sizeof err), -1);
    CU_ASSERT_EQUAL(be->load_obj(state, k->entry->f, "", 0, &c, err, sizeof err), -1);
    const char *other = ".visible .entry other()\n{\n ret;\n}\n";
    CU_ASSERT_EQUAL(be->load_obj(state, k->entry->f, other, strlen(other), &c, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "gemv"));
    const char *ok = ".visible .entry gemv()\n{\n ret;\n}\n";
    CU_ASSERT_EQUAL(be->load_obj(state, k->entry->f, ok, strlen(ok), &c, err, sizeof err), 0);
    be->release(state, &c);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* ---- device calls ---- */

/* A GPU context forced to have no driver: QKC_LIBCUDA names a missing
 * file (then only that is tried). */
static qkc_ctx *no_driver_ctx(void)
{
    setenv("QKC_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
    qkc_ctx *ctx = gpu_ctx("sm_90", "");
    return ctx;
}

static void test_no_driver(void)
{
    const char *saved = getenv("QKC_LIBCUDA");
    char *keep = saved ? strdup(saved) : NULL;
    qkc_ctx *ctx = no_driver_ctx();
    qk_target t;
    qk_device_target(ctx, &t); /* the preset stays */
    CU_ASSERT_EQUAL(t.sm_count, 132);
    CU_ASSERT_EQUAL(t.cpu[0], 0);
    qk_probe_result r;
    CU_ASSERT_EQUAL(qk_device_probe(ctx, 1, &r), QKC_ERR_NO_DEVICE);
    CU_ASSERT_PTR_NOT_NULL(strstr(qkc_errmsg(ctx), "no CUDA driver"));
    qkc_program *p = NULL;
    qkc_kernel *k = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, gemv_src, "gemv.qk", &p), QKC_OK);
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "gemv", &k), QKC_OK);
    int64_t dims[2] = {64, 8}; /* K, N */
    rtt_rng rng = {7};
    rtt_args a;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(rtt_args_make(p, k, dims, &rng, &a, err, sizeof err), 0);
    double s[2];
    qk_device_timing tm = {.copies = 2, .reps = 2, .seconds = s};
    qkc_status st = qk_device_time(k, a.t, a.n, &tm);
    CU_ASSERT(st == QKC_ERR_NO_DEVICE);
    CU_ASSERT(strstr(qkc_errmsg(ctx), "no CUDA driver") || strstr(qkc_errmsg(ctx), "NVRTC not found"));
    tm.reps = 0;
    CU_ASSERT_EQUAL(qk_device_time(k, a.t, a.n, &tm), QKC_ERR_INVALID_ARG);
    CU_ASSERT_EQUAL(qk_device_time(k, a.t, a.n, NULL), QKC_ERR_INVALID_ARG);
    rtt_args_free(&a);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
    if (keep)
        setenv("QKC_LIBCUDA", keep, 1);
    else
        unsetenv("QKC_LIBCUDA");
    free(keep);
}

/* CPU targets have no device hooks. */
static void test_cpu_target(void)
{
    qkc_ctx *ctx = gpu_ctx("host", "");
    qk_probe_result r;
    CU_ASSERT_EQUAL(qk_device_probe(ctx, 1, &r), QKC_ERR_UNSUPPORTED);
    qkc_program *p = NULL;
    qkc_kernel *k = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, gemv_src, "gemv.qk", &p), QKC_OK);
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "gemv", &k), QKC_OK);
    int64_t dims[2] = {64, 8};
    rtt_rng rng = {7};
    rtt_args a;
    char err[512];
    CU_ASSERT_EQUAL_FATAL(rtt_args_make(p, k, dims, &rng, &a, err, sizeof err), 0);
    double s[1];
    qk_device_timing tm = {.copies = 1, .reps = 1, .seconds = s};
    CU_ASSERT_EQUAL(qk_device_time(k, a.t, a.n, &tm), QKC_ERR_UNSUPPORTED);
    rtt_args_free(&a);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* With a device: the probe measures a positive bandwidth, the timed
 * launch positive times and the reference's results (ragged shape). */
static void test_device(void)
{
    qkc_ctx *ctx = gpu_ctx("sm_90", "");
    qk_probe_result r;
    qkc_status st = qk_device_probe(ctx, 1, &r);
    if (st == QKC_ERR_NO_DEVICE) {
        printf("skipped: no CUDA device (%s) ", qkc_errmsg(ctx));
        qkc_ctx_destroy(ctx);
        return;
    }
    CU_ASSERT_EQUAL_FATAL(st, QKC_OK);
    CU_ASSERT(r.read_bw[QK_PROBE_DRAM][0] > 0);
    CU_ASSERT_EQUAL(r.threads, 0);
    qk_target t;
    qk_device_target(ctx, &t);
    CU_ASSERT(t.warp > 0 && t.sm_count > 0 && t.l2 > 0);
    qkc_program *p = NULL;
    qkc_kernel *k = NULL;
    CU_ASSERT_EQUAL_FATAL(qkc_program_create(ctx, gemv_src, "gemv.qk", &p), QKC_OK);
    CU_ASSERT_EQUAL_FATAL(qkc_kernel_get(p, "gemv", &k), QKC_OK);
    int64_t dims[2] = {320, 77}; /* K (10 blocks), N ragged */
    rtt_rng rng = {11};
    rtt_args a;
    char err[512], msg[512];
    CU_ASSERT_EQUAL_FATAL(rtt_args_make(p, k, dims, &rng, &a, err, sizeof err), 0);
    CU_ASSERT_EQUAL_FATAL(qkc_reference(k, a.ref, a.n), QKC_OK);
    double s[5];
    qk_device_timing tm = {.copies = 3, .reps = 5, .seconds = s};
    st = qk_device_time(k, a.t, a.n, &tm);
    CU_ASSERT_EQUAL(st, QKC_OK);
    if (st != QKC_OK)
        printf("\n  %s\n", qkc_errmsg(ctx));
    for (int i = 0; st == QKC_OK && i < 5; i++)
        CU_ASSERT(s[i] > 0);
    CU_ASSERT_EQUAL(rtt_compare(&a, msg, sizeof msg), 0);
    rtt_args_free(&a);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("gpu runtime", NULL, NULL);
    CU_add_test(s, "sm_80 and sm_90 presets", test_presets);
    CU_add_test(s, "the preset list", test_preset_list);
    CU_add_test(s, "driver API symbols exist in the stub", test_api_symbols);
    CU_add_test(s, "PTX in the disk cache", test_disk_cache);
    CU_add_test(s, "cached PTX that is not the kernel's is rejected", test_load_obj_rejects);
    CU_add_test(s, "no driver: device calls fail cleanly", test_no_driver);
    CU_add_test(s, "CPU targets have no device calls", test_cpu_target);
    CU_add_test(s, "on a device: probe and timed launch", test_device);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}
