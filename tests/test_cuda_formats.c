/* test_cuda_formats.c — every format of the standard library (dsl/*.qk)
 * on the GPU targets, with no GPU needed: a GEMV (x: f32[K]), a GEMM
 * (x: f32[M, K]) and, for formats with integer codes, a GEMM over int8
 * activations (xq[m, k] = quantize(x[m, k], q8_0)), each lowered to tiled
 * IR for sm_80 and sm_90, emitted as CUDA C, compiled by NVRTC for
 * compute_80 / compute_90 and accepted by ptxas -arch=sm_80 / sm_90.
 * Kernels go to NVRTC and ptxas in batches (one translation unit each,
 * support/cuda_host.h) on two threads; a batch that fails is retried
 * kernel by kernel to name the culprit.
 *
 * Then every sm_90 kernel's CUDA C is compiled for the host with g++ and
 * run over an emulated grid, phase by phase as a launch would, on shapes
 * that are not multiples of any block or tile, against the reference
 * interpreter with the CLI's tolerance. Kernels with inline PTX (asm:
 * mma, ldmatrix, cp.async) cannot run on the host; they are counted and
 * left to the PTX checks.
 *
 * Needs no LLVM (registered in builds with -DQKC_WITH_LLVM=OFF). Without
 * NVRTC or ptxas the PTX checks print "skipped: no CUDA toolkit (...)";
 * without g++ the host runs print "skipped: ...". */
#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/cuda/cuda_internal.h"
#include "compiler/format.h"
#include "frontend/frontend.h"
#include "support/cuda_host.h"
#include "support/lib_formats.h"
#include "support/rt_test.h"

#ifndef QKC_PTXAS
#define QKC_PTXAS ""
#endif

#define DSL_DIR QKC_SOURCE_DIR "/dsl"
#define MAX_FORMATS 64
#define MAX_JOBS (MAX_FORMATS * 3)
#define BATCH 12 /* kernels per NVRTC call */

static const int sms[2] = {80, 90};

/* One kernel of one format: its tiled IR and CUDA C per target. */
typedef struct job {
    char name[160];          /* kernel_format: the CUDA kernel's name */
    const rtt_format *fmt;
    const kir_kernel *k;
    tir_func *f[2];          /* sm_80, sm_90 */
    char *cuda[2];
} job;

static rtt_format formats[MAX_FORMATS];
static int nformats;
static kir_program *programs[MAX_FORMATS];
static job jobs[MAX_JOBS];
static int njobs;
static const char *ptx_skip; /* why the PTX checks were skipped */

/* ---- building every kernel ---- */

static void kernel_source(const rtt_format *l, char *out, size_t n)
{
    char w[160], book[96];
    rtt_weight_type(l, w, sizeof w, book, sizeof book);
    int q = rtt_integer_code(l) && !l->vq;
    snprintf(out, n,
             "import \"%s/%s\"\nimport \"%s/ggml.qk\"\n"
             "kernel gemv(x: f32[K], W: %s[N, K]%s) -> y: f32[N] {\n"
             "  y[n] = sum(k) x[k] * W[n, k]\n"
             "}\n"
             "kernel gemm(x: f32[M, K], W: %s[N, K]%s, b: f32[N]) -> y: f32[M, N] {\n"
             "  y[m, n] = relu(sum(k) x[m, k] * W[n, k] + b[n])\n"
             "}\n"
             "%s%s%s%s",
             DSL_DIR, l->file, DSL_DIR, w, book, w, book, q ? "kernel gemmq(x: f32[M, K], W: " : "", q ? w : "",
             q ? "[N, K]) -> y: f32[M, N] {\n  xq[m, k] = quantize(x[m, k], q8_0)\n" : "",
             q ? "  y[m, n] = sum(k) xq[m, k] * W[n, k]\n}\n" : "");
}

static kir_program *compile_source(const char *src)
{
    qk_diags d;
    qk_diags_init(&d);
    kir_program *p = qk_frontend_compile(src, strlen(src), "cuda_formats.qk", DSL_DIR, &d);
    if (!p) {
        qk_buf b = {0};
        qk_diags_render(&d, &b);
        printf("\n%s\n", b.s ? b.s : "");
        qk_buf_free(&b);
    }
    qk_diags_free(&d);
    return p;
}

/* Lowers j->k for target t (index ti) and emits its CUDA C. 0 or -1. */
static int build_one(kir_program *p, job *j, int ti)
{
    qk_target t;
    char tname[16], err[2048] = "";
    snprintf(tname, sizeof tname, "sm_%d", sms[ti]);
    CU_ASSERT_FATAL(qk_target_named(tname, &t) == 0);
    tir_config cfg;
    tir_default_config(&t, &cfg);
    tir_apply_schedule(j->k, &cfg);
    tir_func *f = tir_build(p->arena, j->k, &t, &cfg, err, sizeof err);
    if (f && tir_verify(f, err, sizeof err) != 0)
        f = NULL;
    if (!f) {
        printf("\n  %s for %s: tiled IR: %s\n", j->name, tname, err);
        return -1;
    }
    f->name = j->name;
    qk_buf b = {0};
    if (cuda_emit_source(f, sms[ti], &b, err, sizeof err) != 0) {
        printf("\n  %s for %s: CUDA C: %s\n", j->name, tname, err);
        qk_buf_free(&b);
        return -1;
    }
    j->f[ti] = f;
    j->cuda[ti] = qk_buf_take(&b);
    return 0;
}

/* Every format's kernels for both targets: tiled IR and CUDA C. */
static void test_build_all(void)
{
    nformats = rtt_lib_formats(DSL_DIR, formats, MAX_FORMATS);
    CU_ASSERT_FATAL(nformats >= 30);
    int failed = 0, nq = 0;
    for (int i = 0; i < nformats; i++) {
        char src[2048];
        kernel_source(&formats[i], src, sizeof src);
        kir_program *p = programs[i] = compile_source(src);
        CU_ASSERT_FATAL(p != NULL);
        for (int g = 0; g < p->nkernels; g++) {
            job *j = &jobs[njobs++];
            j->fmt = &formats[i];
            j->k = p->kernels[g];
            snprintf(j->name, sizeof j->name, "%s_%s", j->k->name, formats[i].name);
            nq += strcmp(j->k->name, "gemmq") == 0;
            for (int t = 0; t < 2; t++)
                failed += build_one(p, j, t) != 0;
        }
    }
    printf("\n  %d formats, %d kernels (%d with int8-quantized activations) x sm_80/sm_90: %d failed to build",
           nformats, njobs, nq, failed);
    CU_ASSERT(failed == 0);
    CU_ASSERT(nq >= 15);
}

/* ---- NVRTC and ptxas, in batches on two threads ---- */

typedef struct ptx_task {
    void *state;   /* the cuda backend state of this target */
    int ti;        /* target index */
    int first, n;  /* jobs [first, first + n) */
    int failed, checked;
    int no_nvrtc;  /* NVRTC missing: skip */
} ptx_task;

/* Compiles jobs [first, first+n) for target ti as one unit and checks the
 * PTX with ptxas; 0, -1 on a failure (printed only when n == 1), or 1
 * when NVRTC is missing. */
static int ptx_batch(ptx_task *t, int first, int n)
{
    const char *srcs[BATCH];
    int m = 0;
    for (int i = 0; i < n; i++)
        if (jobs[first + i].cuda[t->ti])
            srcs[m++] = jobs[first + i].cuda[t->ti];
    if (m == 0)
        return 0;
    qk_buf src = {0}, log = {0};
    rtt_cuda_batch(&src, srcs, m);
    char err[8192] = "", *ptx = NULL;
    size_t len = 0;
    int rc = cuda_nvrtc_compile(t->state, src.s, n == 1 ? jobs[first].name : "batch", sms[t->ti], &ptx, &len, err,
                                sizeof err);
    if (rc != 0 && strstr(err, "NVRTC not found")) {
        qk_buf_free(&src);
        return 1;
    }
    for (int i = 0; rc == 0 && i < n; i++) { /* every kernel is in the PTX */
        char entry[200];
        snprintf(entry, sizeof entry, ".entry %s(", jobs[first + i].name);
        if (jobs[first + i].cuda[t->ti] && !strstr(ptx, entry)) {
            snprintf(err, sizeof err, "no %s in the PTX", entry);
            rc = -1;
        }
    }
    int ps = rc == 0 ? rtt_ptxas(rtt_ptxas_path(QKC_PTXAS), ptx, sms[t->ti], &log) : 0;
    if (n == 1 && rc != 0)
        printf("\n  %s: NVRTC for compute_%d: %.3000s\n", jobs[first].name, sms[t->ti], err);
    if (n == 1 && ps != 0)
        printf("\n  %s: ptxas -arch=sm_%d exit %d: %.3000s\n", jobs[first].name, sms[t->ti], ps, log.s ? log.s : "");
    free(ptx);
    qk_buf_free(&src);
    qk_buf_free(&log);
    return rc != 0 || ps != 0 ? -1 : 0;
}

static void *ptx_worker(void *arg)
{
    ptx_task *t = arg;
    for (int b = t->first; b < t->first + t->n && !t->no_nvrtc; b += BATCH) {
        int n = t->first + t->n - b < BATCH ? t->first + t->n - b : BATCH;
        int rc = ptx_batch(t, b, n);
        if (rc == 1) {
            t->no_nvrtc = 1;
            break;
        }
        for (int i = 0; rc != 0 && i < n; i++) /* name the culprits */
            t->failed += ptx_batch(t, b + i, 1) != 0;
        for (int i = 0; i < n; i++)
            t->checked += jobs[b + i].cuda[t->ti] != NULL;
    }
    return NULL;
}

static void test_ptx_all(void)
{
    if (!rtt_ptxas_path(QKC_PTXAS)) {
        ptx_skip = "ptxas not found";
        printf("\n  skipped: no CUDA toolkit (ptxas not found)\n");
        return;
    }
    ptx_task tasks[4];
    pthread_t th[4];
    int nt = 0;
    for (int ti = 0; ti < 2; ti++) {
        qk_target tg;
        char tname[16], err[512];
        snprintf(tname, sizeof tname, "sm_%d", sms[ti]);
        CU_ASSERT_FATAL(qk_target_named(tname, &tg) == 0);
        void *st = NULL;
        CU_ASSERT_FATAL(qk_backend_cuda.create(&tg, &st, err, sizeof err) == 0);
        int half = njobs / 2; /* two threads per target on one state (compile is thread-safe) */
        tasks[nt] = (ptx_task){.state = st, .ti = ti, .first = 0, .n = half};
        tasks[nt + 1] = (ptx_task){.state = st, .ti = ti, .first = half, .n = njobs - half};
        nt += 2;
    }
    for (int i = 0; i < nt; i += 2) { /* one target at a time, its halves in parallel */
        pthread_create(&th[i], NULL, ptx_worker, &tasks[i]);
        pthread_create(&th[i + 1], NULL, ptx_worker, &tasks[i + 1]);
        pthread_join(th[i], NULL);
        pthread_join(th[i + 1], NULL);
    }
    int failed = 0, checked = 0, no_nvrtc = 0;
    for (int i = 0; i < nt; i++) {
        failed += tasks[i].failed;
        checked += tasks[i].checked;
        no_nvrtc |= tasks[i].no_nvrtc;
    }
    qk_backend_cuda.destroy(tasks[0].state);
    qk_backend_cuda.destroy(tasks[2].state);
    if (no_nvrtc) {
        ptx_skip = "NVRTC not found";
        printf("\n  skipped: no CUDA toolkit (NVRTC not found)\n");
        return;
    }
    printf("\n  %d kernel versions through NVRTC (compute_80/90) and ptxas (sm_80/90): %d failed", checked, failed);
    CU_ASSERT(failed == 0);
    CU_ASSERT(checked == 2 * njobs);
}

/* ---- host runs of the sm_90 CUDA C against the reference ---- */

typedef struct run_data {
    kir_view views[RTT_MAX_T];
    kir_view ref[RTT_MAX_T]; /* results of the reference run */
    int64_t dims[64];
    void *bufs[2 * RTT_MAX_T];
    int nbufs;
} run_data;

static void *keep(run_data *r, void *p)
{
    r->bufs[r->nbufs++] = p;
    return p;
}

/* Dims: K two blocks (at least 128) plus 37, N = 37, M = 5. */
static void pick_dims(const kir_kernel *k, const rtt_format *l, int64_t *dims)
{
    int64_t B = l->block > 128 ? l->block : 128;
    for (int s = 0; s < k->nsyms; s++)
        dims[s] = !strcmp(k->syms[s], "K") ? 2 * B + 37 : !strcmp(k->syms[s], "N") ? 37 : 5;
}

/* Random inputs (codebooks before the weights that use them), zeroed
 * results; dense tensors row-major. */
static void make_inputs(const kir_kernel *k, run_data *r, rtt_rng *rng)
{
    int n = k->nparams + k->nresults;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            const kir_tensor *t = &k->tensors[i];
            if ((pass == 0) != (t->fmt == NULL))
                continue;
            kir_view *v = &r->views[i];
            v->rank = t->rank;
            int64_t count = 1;
            for (int d = t->rank - 1; d >= 0; d--) {
                v->shape[d] = kir_dim_value(t->dims[d], r->dims);
                v->stride[d] = count;
                count *= v->shape[d];
            }
            int64_t cols = t->rank ? v->shape[t->rank - 1] : 1, rows = count / (cols ? cols : 1);
            if (!t->fmt) {
                size_t es = (size_t)qk_dtype_size(t->dtype);
                v->data = keep(r, calloc((size_t)count + 1, es));
                for (int64_t e = 0; i < k->nparams && e < count; e++)
                    qk_dtype_store(t->dtype, v->data, e, rtt_uniform(rng, -1, 1));
                r->ref[i] = *v;
                if (i >= k->nparams)
                    r->ref[i].data = keep(r, calloc((size_t)count + 1, es));
                continue;
            }
            float *src = malloc((size_t)count * sizeof *src);
            for (int64_t e = 0; e < count; e++)
                src[e] = (float)rtt_uniform(rng, -1, 1);
            v->data = keep(r, calloc(1, (size_t)qk_format_size(t->fmt, rows, cols) + 64));
            qk_pack_opts po = {.codebook = t->book >= 0 ? r->views[t->book].data : NULL};
            char err[256];
            CU_ASSERT(qk_format_pack(t->fmt, src, rows, cols, v->data, &po, err, sizeof err) == 0);
            free(src);
            r->ref[i] = *v;
        }
}

/* The arguments of tir.h's ABI (as runtime/launch.c lays them out). */
static int call_args(const kir_kernel *k, const tir_func *f, run_data *r, uintptr_t *av)
{
    int n = 0, nt = k->nparams + k->nresults;
    for (int i = 0; i < nt; i++)
        av[n++] = (uintptr_t)r->views[i].data;
    for (int s = 0; s < k->nsyms; s++)
        av[n++] = (uintptr_t)r->dims[s];
    for (int i = 0; i < nt; i++)
        for (int d = 0; !k->tensors[i].fmt && d + 1 < r->views[i].rank; d++)
            av[n++] = (uintptr_t)r->views[i].stride[d];
    for (int j = 0; j < f->nscratch; j++)
        av[n++] = (uintptr_t)keep(r, calloc(1, (size_t)tir_scratch_bytes(f, k, j, r->dims) + 64));
    av[n++] = 0;
    av[n++] = 0;
    return n;
}

/* Normwise error of every result against the reference: |y - ref| /
 * (|ref| + tiny) over the whole tensor must be <= 1e-4. */
static double result_error(const kir_kernel *k, const run_data *r)
{
    double worst = 0;
    for (int i = k->nparams; i < k->nparams + k->nresults; i++) {
        int64_t count = 1;
        for (int d = 0; d < r->views[i].rank; d++)
            count *= r->views[i].shape[d];
        double num = 0, den = 0;
        for (int64_t e = 0; e < count; e++) {
            double a = ((float *)r->views[i].data)[e], b = ((float *)r->ref[i].data)[e];
            num += (a - b) * (a - b);
            den += b * b;
        }
        double err = sqrt(num) / (sqrt(den) + 1e-30);
        worst = err > worst || isnan(err) ? err : worst;
    }
    return worst;
}

/* Runs job j's sm_90 kernel from lib on the host and the reference; the
 * normwise error, or -1 when something could not run (printed). */
static double run_job(rtt_emu *m, const job *j, uint64_t seed)
{
    const kir_kernel *k = j->k;
    const tir_func *f = j->f[1];
    run_data r = {0};
    rtt_rng rng = {seed};
    pick_dims(k, j->fmt, r.dims);
    make_inputs(k, &r, &rng);
    uintptr_t av[64];
    int nargs = call_args(k, f, &r, av);
    double err = -1;
    char why[512] = "";
    if (nargs != f->nargs)
        snprintf(why, sizeof why, "the tiled IR has %d arguments, the test laid out %d", f->nargs, nargs);
    else if (ref_run(k, r.ref, r.dims, why, sizeof why) == 0) {
        int rc = 0;
        for (int p = 0; rc == 0 && p < f->nphases; p++) {
            int64_t lo, hi;
            tir_phase_items(f, r.dims, p, &lo, &hi);
            rc = rtt_emu_run(m, j->name, nargs, av, lo, hi);
        }
        if (rc == 0)
            err = result_error(k, &r);
        else
            snprintf(why, sizeof why, "no kernel %s in the host library", j->name);
    }
    if (err < 0)
        printf("\n  %s: %s", j->name, why);
    for (int i = 0; i < r.nbufs; i++)
        free(r.bufs[i]);
    return err;
}

/* 1 when job j's sm_90 CUDA C can run on the host: no inline PTX. */
static int host_runnable(const job *j)
{
    return j->cuda[1] && !strstr(j->cuda[1], "asm(") && !strstr(j->cuda[1], "asm volatile");
}

/* g++ on one half of the sm_90 kernels (a thread each: g++ is the slow part). */
typedef struct emu_task {
    int first, n; /* jobs [first, first + n) */
    rtt_emu m;
    int rc;
    char why[2048];
} emu_task;

static void *emu_worker(void *arg)
{
    emu_task *t = arg;
    const char *srcs[MAX_JOBS];
    int n = 0;
    for (int i = t->first; i < t->first + t->n; i++)
        if (host_runnable(&jobs[i]))
            srcs[n++] = jobs[i].cuda[1];
    qk_buf src = {0};
    rtt_cuda_batch(&src, srcs, n);
    t->rc = n ? rtt_emu_open(src.s, &t->m, t->why, sizeof t->why) : 0;
    qk_buf_free(&src);
    return NULL;
}

static void test_host_runs(void)
{
    CU_ASSERT_FATAL(njobs > 1);
    emu_task tasks[2] = {{.first = 0, .n = njobs / 2}, {.first = njobs / 2, .n = njobs - njobs / 2}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, emu_worker, &tasks[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    if (tasks[0].rc == 1) {
        printf("\n  skipped: %s\n", tasks[0].why);
        return;
    }
    for (int i = 0; i < 2; i++)
        if (tasks[i].rc != 0)
            printf("\n  %s\n", tasks[i].why);
    CU_ASSERT_FATAL(tasks[0].rc == 0 && tasks[1].rc == 0);
    int failed = 0, ran = 0, asm_only = 0;
    double worst = 0;
    for (int i = 0; i < njobs; i++) {
        asm_only += jobs[i].cuda[1] && !host_runnable(&jobs[i]);
        if (!host_runnable(&jobs[i]))
            continue;
        double e = run_job(&tasks[i >= tasks[1].first].m, &jobs[i], 1000 + (uint64_t)i);
        ran++;
        if (e < 0 || !(e <= 1e-4)) {
            if (e >= 0 || isnan(e))
                printf("\n  %s: normwise error %.3g against the reference", jobs[i].name, e);
            failed++;
        } else if (e > worst)
            worst = e;
    }
    rtt_emu_close(&tasks[0].m);
    rtt_emu_close(&tasks[1].m);
    printf("\n  %d sm_90 kernels run on the host (emulated grid, ragged shapes): %d failed, worst normwise error "
           "%.2g; %d with inline PTX checked by NVRTC/ptxas only",
           ran, failed, worst, asm_only);
    CU_ASSERT(failed == 0);
}

static void cleanup(void)
{
    for (int i = 0; i < njobs; i++)
        for (int t = 0; t < 2; t++)
            free(jobs[i].cuda[t]);
    for (int i = 0; i < nformats; i++)
        kir_program_free(programs[i]);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("cuda_formats", NULL, NULL);
    CU_add_test(s, "every format x GEMV/GEMM/int8 GEMM: tiled IR and CUDA C for sm_80/sm_90", test_build_all);
    CU_add_test(s, "NVRTC compute_80/90 + ptxas sm_80/90", test_ptx_all);
    CU_add_test(s, "host runs of the sm_90 CUDA C against the reference", test_host_runs);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    if (ptx_skip)
        printf("skipped: no CUDA toolkit (%s)\n", ptx_skip);
    cleanup();
    CU_cleanup_registry();
    return failures != 0;
}
