/* test_cuda_mma.c — tensor-core code for GPU targets (tir_mma.c, the
 * MMA parts of backends/cuda/emit.c), checked without a GPU:
 *
 *  - structure: kernels from .qk source built for sm_90 call the MMA
 *    helpers, whose inline PTX names the expected instruction;
 *  - NVRTC for compute_80/compute_90 and ptxas for sm_80/sm_90 accept them
 *    ("skipped: no CUDA toolkit (...)" where NVRTC or ptxas is missing);
 *  - host emulation: the emitted CUDA C is compiled by g++ with
 *    -DQKC_HOST_EMU; each warp is 32 pthreads that call the kernel as its
 *    lanes, and the qkc_mma_* helpers are emulated here: every lane
 *    deposits its fragments, one lane assembles the 16 x k, k x 8 and
 *    16 x 8 matrices from the PTX ISA's fragment layouts (written out
 *    below, independently of the builder), multiplies, and every lane
 *    takes back its part of D. Results on random data with ragged M, N, K
 *    are compared with the reference interpreter (ref_run).
 *
 * Without g++ the host runs print "skipped: no g++ ..." and pass. */
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
#include "support/lib_formats.h"

#ifndef QKC_PTXAS
#define QKC_PTXAS ""
#endif

#define DSL_DIR QKC_SOURCE_DIR "/dsl"
#define MAX_FORMATS 128

static const char source[] =
    "import ggml\n"
    "import sparse\n"
    "format q8a { code = int8; block = 32; scale = f32 }\n"
    "kernel w4a16(x: f16[M, K], W: q4_0[N, K]) -> y: f32[M, N] {\n"
    "  y[m, n] = sum(k) x[m, k] * W[n, k]\n"
    "}\n"
    "kernel w4a16t(x: f16[M, K], W: q4_0[N, K]) -> y: f16[N, M] {\n"
    "  y[n, m] = sum(k) W[n, k] * x[m, k]\n"
    "}\n"
    "kernel w4a8(x: f32[M, K], W: q4_0[N, K]) -> y: f32[M, N] {\n"
    "  xq[m, k] = quantize(x[m, k], q8a)\n"
    "  y[m, n] = sum(k) xq[m, k] * W[n, k]\n"
    "}\n"
    "kernel sp24(x: f16[M, K], W: int4_2of4[N, K]) -> y: f32[M, N] {\n"
    "  y[m, n] = sum(k) x[m, k] * W[n, k]\n"
    "}\n"
    "kernel epi(x: f16[M, K], W: q4_0[N, K], b: f32[N]) -> y: f16[M, N] {\n"
    "  y[m, n] = relu(sum(k) x[m, k] * W[n, k] + b[n]) * 0.5\n"
    "}\n"
    "kernel w8a16_f32x(x: f32[M, K], W: q8_0[N, K]) -> y: f32[M, N] {\n"
    "  y[m, n] = sum(k) x[m, k] * W[n, k]\n"
    "}\n";

static kir_program *prog;

static kir_kernel *kernel_in(kir_program *p, const char *name) {
    for (int i = 0; i < p->nkernels; i++)
        if (strcmp(p->kernels[i]->name, name) == 0)
            return p->kernels[i];
    CU_FAIL_FATAL("no such kernel");
    return NULL;
}

static tir_func *build_in(kir_program *p, const char *name) {
    qk_target t;
    CU_ASSERT_FATAL(qk_target_named("sm_90", &t) == 0);
    tir_config cfg;
    tir_default_config(&t, &cfg);
    char err[1024] = "";
    tir_func *f = tir_build(p->arena, kernel_in(p, name), &t, &cfg, err, sizeof err);
    if (!f)
        printf("\ntir_build %s: %s\n", name, err);
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_FATAL(tir_verify(f, err, sizeof err) == 0);
    return f;
}

static tir_func *build(const char *name) { return build_in(prog, name); }

static char *emit_cuda(tir_func *f) {
    char err[512] = "";
    qk_buf b = {0};
    int rc = qk_backend_cuda.emit(NULL, f, QK_EMIT_CUDA, &b, err, sizeof err);
    if (rc)
        printf("\nemit failed: %s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    return qk_buf_take(&b);
}

static int count_op(const tir_func *f, int op) {
    int n = 0;
    for (int id = 0; id < f->nnodes; id++)
        n += f->nodes[id].op == op;
    return n;
}

/* ---- NVRTC + ptxas (as in test_cuda.c) ---- */

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

/* NVRTC for compute_<sm> then ptxas for sm_<sm>; the PTX must hold `want`. */
static void check_ptx(tir_func *f, const char *want) {
    static const char *const targets[] = {"sm_80", "sm_90"};
    static const int sms[] = {80, 90};
    for (int i = 0; i < 2; i++) {
        qk_target t;
        CU_ASSERT_FATAL(qk_target_named(targets[i], &t) == 0);
        void *st = NULL;
        char err[4096] = "";
        CU_ASSERT_FATAL(qk_backend_cuda.create(&t, &st, err, sizeof err) == 0);
        qk_code code = {0};
        int rc = qk_backend_cuda.compile(st, f, &code, err, sizeof err);
        if (rc && strstr(err, "NVRTC not found")) {
            printf("\n  skipped: no CUDA toolkit (%s)\n", err);
            qk_backend_cuda.destroy(st);
            return;
        }
        if (rc)
            printf("\ncompile failed: %s\n", err);
        CU_ASSERT_FATAL(rc == 0);
        cuda_code *cc = code.priv;
        CU_ASSERT(strstr(cc->ptx, want) != NULL);
        int ps = run_ptxas(cc->ptx, sms[i]);
        if (ps != 0)
            printf("\nptxas -arch=sm_%d exit %d\n", sms[i], ps);
        CU_ASSERT(ps == 0);
        qk_backend_cuda.release(st, &code);
        qk_backend_cuda.destroy(st);
    }
}

/* ---- host emulation of the warp ---- */

/* The host run's includes and globals; rtt_cuda_shims follows. */
static const char emu_prelude[] =
    "#include <math.h>\n#include <string.h>\n#include <pthread.h>\n#include <time.h>\n"
    "struct qk_dim3 { unsigned x; };\n"
    "static thread_local qk_dim3 blockIdx, blockDim, gridDim, threadIdx;\n";

/* The warp's MMA, from the PTX ISA's fragment tables (section 9.7.14.5.8,
 * mma.m16n8k16 .f16; 9.7.14.5.9, mma.m16n8k32 .s8), g = lane >> 2,
 * t = lane % 4, element i of a lane's fragment:
 *   f16 A a0..a7: row g + 8 * (i in {2,3,6,7}), col 2t + (i & 1) + 8 * (i >= 4)
 *   f16 B b0..b3: row 2t + (i & 1) + 8 * (i >= 2), col g
 *   s8 A a0..a15: row g + 8 * (i in 4..7 or 12..15), col 4t + (i & 3) + 16 * (i >= 8)
 *   s8 B b0..b7:  row 4t + (i & 3) + 16 * (i >= 4), col g
 *   C/D c0..c3:   row g + 8 * (i >= 2), col 2t + (i & 1)
 * mma.sp m16n8k32 .f16 (9.7.14.6): A is the 16 x 16 matrix of kept items in
 * the f16 A layout; B has 4 words, b0..b7 at row 2t + (i & 1) + 8 * (i >> 1),
 * col g; the metadata comes from lanes t = 0, 1 (selector 0): bits 2j+1:2j
 * of the low half give the position in its group of 4 of kept item 8t + j
 * of row g, the high half the same for row g + 8 (the layout of the PTX
 * ISA's figure "sparse-mma-metadata-16832-f16bf16"); the two positions of
 * a group must increase (valid for .sp and .sp::ordered_metadata).
 * Each matrix cell must be supplied by exactly one (lane, element). */
static const char emu_mma[] =
    "extern \"C\" { int qkc_emu_failed; long qkc_emu_mma_calls; }\n"
    "static pthread_mutex_t emu_mu = PTHREAD_MUTEX_INITIALIZER;\n"
    "static pthread_cond_t emu_cv = PTHREAD_COND_INITIALIZER;\n"
    "static int emu_count, emu_gen;\n"
    "static void emu_barrier(void) {\n"
    "  pthread_mutex_lock(&emu_mu);\n"
    "  int gen = emu_gen;\n"
    "  if (++emu_count == 32) { emu_count = 0; emu_gen++; pthread_cond_broadcast(&emu_cv); }\n"
    "  while (gen == emu_gen && !qkc_emu_failed) {\n"
    "    struct timespec ts; clock_gettime(CLOCK_REALTIME, &ts); ts.tv_sec += 20;\n"
    "    if (pthread_cond_timedwait(&emu_cv, &emu_mu, &ts)) { qkc_emu_failed = 1; pthread_cond_broadcast(&emu_cv); }\n"
    "  }\n"
    "  pthread_mutex_unlock(&emu_mu);\n"
    "}\n"
    "static unsigned emu_a[32][4], emu_b[32][4], emu_c[32][4], emu_d[32][4], emu_e[32];\n"
    "static int lane_(void) { return (int)(threadIdx.x & 31); }\n"
    "static float half_(unsigned w, int i) { unsigned short h = (unsigned short)(w >> (16 * i)); __half x; memcpy(&x, &h, 2); return (float)x; }\n"
    "static int byte_(unsigned w, int i) { return (signed char)(w >> (8 * i)); }\n"
    "static void cover_(int *cnt) { if (++*cnt != 1) qkc_emu_failed = 2; }\n"
    "static void deposit_(const unsigned *a, const unsigned *b, int nb, const unsigned *c, unsigned e) {\n"
    "  int l = lane_(); memcpy(emu_a[l], a, 16); memcpy(emu_b[l], b, 4 * nb); memcpy(emu_c[l], c, 16); emu_e[l] = e;\n"
    "  emu_barrier();\n"
    "}\n"
    "static void take_(unsigned *d) { emu_barrier(); memcpy(d, emu_d[lane_()], 16); emu_barrier(); }\n"
    "static void f16_tile(void) {\n"
    "  double A[16][16], B[16][8], C[16][8]; int ca[16][16] = {{0}}, cb[16][8] = {{0}};\n"
    "  for (int L = 0; L < 32; L++) { int g = L >> 2, t = L & 3;\n"
    "    for (int i = 0; i < 8; i++) { int r = g + 8 * ((i >> 1) & 1), k = 2 * t + (i & 1) + 8 * (i >> 2);\n"
    "      A[r][k] = half_(emu_a[L][i >> 1], i & 1); cover_(&ca[r][k]); }\n"
    "    for (int i = 0; i < 4; i++) { int k = 2 * t + (i & 1) + 8 * (i >> 1);\n"
    "      B[k][g] = half_(emu_b[L][i >> 1], i & 1); cover_(&cb[k][g]); }\n"
    "    for (int i = 0; i < 4; i++) { float v; memcpy(&v, &emu_c[L][i], 4); C[g + 8 * (i >> 1)][2 * t + (i & 1)] = v; } }\n"
    "  for (int L = 0; L < 32; L++) { int g = L >> 2, t = L & 3;\n"
    "    for (int i = 0; i < 4; i++) { int r = g + 8 * (i >> 1), n = 2 * t + (i & 1); double s = C[r][n];\n"
    "      for (int k = 0; k < 16; k++) s += A[r][k] * B[k][n];\n"
    "      float v = (float)s; memcpy(&emu_d[L][i], &v, 4); } }\n"
    "}\n"
    "static void s8_tile(void) {\n"
    "  int A[16][32], B[32][8], C[16][8]; int ca[16][32] = {{0}}, cb[32][8] = {{0}};\n"
    "  for (int L = 0; L < 32; L++) { int g = L >> 2, t = L & 3;\n"
    "    for (int i = 0; i < 16; i++) { int r = g + 8 * ((i >> 2) & 1), k = 4 * t + (i & 3) + 16 * (i >> 3);\n"
    "      A[r][k] = byte_(emu_a[L][i >> 2], i & 3); cover_(&ca[r][k]); }\n"
    "    for (int i = 0; i < 8; i++) { int k = 4 * t + (i & 3) + 16 * (i >> 2);\n"
    "      B[k][g] = byte_(emu_b[L][i >> 2], i & 3); cover_(&cb[k][g]); }\n"
    "    for (int i = 0; i < 4; i++) C[g + 8 * (i >> 1)][2 * t + (i & 1)] = (int)emu_c[L][i]; }\n"
    "  for (int L = 0; L < 32; L++) { int g = L >> 2, t = L & 3;\n"
    "    for (int i = 0; i < 4; i++) { int r = g + 8 * (i >> 1), n = 2 * t + (i & 1); long long s = C[r][n];\n"
    "      for (int k = 0; k < 32; k++) s += A[r][k] * B[k][n];\n"
    "      emu_d[L][i] = (unsigned)s; } }\n"
    "}\n"
    "static void sp_tile(void) {\n"
    "  double Ac[16][16], A[16][32] = {{0}}, B[32][8], C[16][8]; int ca[16][16] = {{0}}, cm[16][16] = {{0}}, cb[32][8] = {{0}};\n"
    "  for (int L = 0; L < 32; L++) { int g = L >> 2, t = L & 3;\n"
    "    for (int i = 0; i < 8; i++) { int r = g + 8 * ((i >> 1) & 1), j = 2 * t + (i & 1) + 8 * (i >> 2);\n"
    "      Ac[r][j] = half_(emu_a[L][i >> 1], i & 1); cover_(&ca[r][j]); }\n"
    "    for (int i = 0; i < 8; i++) { int k = 2 * t + (i & 1) + 8 * (i >> 1);\n"
    "      B[k][g] = half_(emu_b[L][i >> 1], i & 1); cover_(&cb[k][g]); }\n"
    "    for (int i = 0; i < 4; i++) { float v; memcpy(&v, &emu_c[L][i], 4); C[g + 8 * (i >> 1)][2 * t + (i & 1)] = v; } }\n"
    "  for (int L = 0; L < 32; L++) { int g = L >> 2, t = L & 3; if (t > 1) continue;\n"
    "    for (int h = 0; h < 2; h++) for (int j = 0; j < 8; j++) { int r = g + 8 * h, item = 8 * t + j;\n"
    "      int idx = (int)(emu_e[L] >> (16 * h + 2 * j)) & 3, other = (int)(emu_e[L] >> (16 * h + 2 * (j ^ 1))) & 3;\n"
    "      if ((j & 1) == 0 && idx >= other) qkc_emu_failed = 3; /* ordered, distinct */\n"
    "      A[r][4 * (item / 2) + idx] = Ac[r][item]; cover_(&cm[r][item]); } }\n"
    "  for (int L = 0; L < 32; L++) { int g = L >> 2, t = L & 3;\n"
    "    for (int i = 0; i < 4; i++) { int r = g + 8 * (i >> 1), n = 2 * t + (i & 1); double s = C[r][n];\n"
    "      for (int k = 0; k < 32; k++) s += A[r][k] * B[k][n];\n"
    "      float v = (float)s; memcpy(&emu_d[L][i], &v, 4); } }\n"
    "}\n"
    "qkc_f32x4 qkc_mma_sp_f16_m16n8k32(qkc_u32x4 a, qkc_u32x4 b, qkc_f32x4 c, unsigned e) {\n"
    "  deposit_(a.r, b.r, 4, (const unsigned *)c.r, e);\n"
    "  if (lane_() == 0) { sp_tile(); qkc_emu_mma_calls++; }\n"
    "  qkc_f32x4 d; take_((unsigned *)d.r); return d;\n"
    "}\n"
    "qkc_f32x4 qkc_mma_f16_m16n8k16(qkc_u32x4 a, qkc_u32x2 b, qkc_f32x4 c) {\n"
    "  deposit_(a.r, b.r, 2, (const unsigned *)c.r, 0);\n"
    "  if (lane_() == 0) { f16_tile(); qkc_emu_mma_calls++; }\n"
    "  qkc_f32x4 d; take_((unsigned *)d.r); return d;\n"
    "}\n"
    "qkc_u32x4 qkc_mma_s8_m16n8k32(qkc_u32x4 a, qkc_u32x2 b, qkc_u32x4 c) {\n"
    "  deposit_(a.r, b.r, 2, c.r, 0);\n"
    "  if (lane_() == 0) { s8_tile(); qkc_emu_mma_calls++; }\n"
    "  qkc_u32x4 d; take_(d.r); return d;\n"
    "}\n"
    "extern \"C\" void qkc_emu_set(unsigned b, unsigned bd, unsigned gd, unsigned t) {\n"
    "  blockIdx.x = b; blockDim.x = bd; gridDim.x = gd; threadIdx.x = t;\n"
    "}\n";

typedef struct emu {
    void *lib;
    void (*call)(const unsigned long long *);
    void (*set)(unsigned, unsigned, unsigned, unsigned);
    int *failed;
    long *calls;
} emu;

/* `extern "C" void qkc_emu_call(av)`: the kernel called with av[i] cast
 * to each parameter's type. */
static void call_wrapper(const tir_func *f, FILE *fp) {
    char *kname = cuda_kernel_name(f);
    fprintf(fp, "extern \"C\" void qkc_emu_call(const unsigned long long *av) {\n  %s(", kname);
    for (int i = 0; i < f->nargs; i++) {
        const tir_arg *a = &f->args[i];
        const char *ty = a->s != TS_PTR ? "long long" : a->is_const ? "const unsigned char *" : "unsigned char *";
        fprintf(fp, "%s(%s)av[%d]", i ? ", " : "", ty, i);
    }
    fprintf(fp, ");\n}\n");
    free(kname);
}

static int emu_open(tir_func *f, emu *m) {
    if (system("g++ --version >/dev/null 2>&1") != 0) {
        printf("\n  skipped: no g++ for the host emulation of the warp\n");
        return -1;
    }
    char *src = emit_cuda(f), *inc = strstr(src, "#include <cuda_fp16.h>");
    if (inc)
        memcpy(inc, "//", 2);
    char dir[] = "/tmp/qkc_mma_XXXXXX", cc[64], so[64], cmd[256];
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    snprintf(cc, sizeof cc, "%s/k.cc", dir);
    snprintf(so, sizeof so, "%s/k.so", dir);
    FILE *fp = fopen(cc, "w");
    CU_ASSERT_FATAL(fp != NULL);
    fprintf(fp, "%s%s%s%s", emu_prelude, rtt_cuda_shims, src, emu_mma);
    call_wrapper(f, fp);
    fclose(fp);
    snprintf(cmd, sizeof cmd, "g++ -std=c++17 -O0 -ffp-contract=off -DQKC_HOST_EMU -shared -fPIC -pthread -o %s %s", so,
             cc);
    int rc = system(cmd);
    CU_ASSERT_FATAL(rc == 0);
    m->lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    CU_ASSERT_FATAL(m->lib != NULL);
    void *call = dlsym(m->lib, "qkc_emu_call"), *set = dlsym(m->lib, "qkc_emu_set");
    m->failed = dlsym(m->lib, "qkc_emu_failed");
    m->calls = dlsym(m->lib, "qkc_emu_mma_calls");
    CU_ASSERT_FATAL(call && set && m->failed && m->calls);
    memcpy(&m->call, &call, sizeof call);
    memcpy(&m->set, &set, sizeof set);
    unlink(cc);
    unlink(so);
    rmdir(dir);
    free(src);
    return 0;
}

enum { WARPS_PER_BLOCK = 2, BLOCKS = 2 };

typedef struct lane_job {
    emu *m;
    const unsigned long long *av;
    unsigned block, thread;
} lane_job;

static void *lane_main(void *p) {
    lane_job *j = p;
    j->m->set(j->block, 32 * WARPS_PER_BLOCK, BLOCKS, j->thread);
    j->m->call(j->av);
    return NULL;
}

/* Runs every phase over a grid of BLOCKS blocks of WARPS_PER_BLOCK warps;
 * the warps one after another, the 32 lanes of one warp as threads. */
static void emu_run(emu *m, const tir_func *f, const int64_t *dims, unsigned long long *av) {
    for (int p = 0; p < f->nphases; p++) {
        int64_t lo, hi;
        tir_phase_items(f, dims, p, &lo, &hi);
        av[f->arg_begin] = (unsigned long long)lo;
        av[f->arg_end] = (unsigned long long)hi;
        for (int w = 0; w < BLOCKS * WARPS_PER_BLOCK; w++) {
            pthread_t th[32];
            lane_job jobs[32];
            for (int l = 0; l < 32; l++) {
                jobs[l] = (lane_job){m, av, (unsigned)(w / WARPS_PER_BLOCK), (unsigned)(32 * (w % WARPS_PER_BLOCK) + l)};
                CU_ASSERT_FATAL(pthread_create(&th[l], NULL, lane_main, &jobs[l]) == 0);
            }
            for (int l = 0; l < 32; l++)
                pthread_join(th[l], NULL);
        }
    }
}

/* ---- one kernel on random data against the reference ---- */

typedef struct tensor_data {
    void *data;      /* what the kernel and the reference read */
    float *values;   /* params: the decoded values (for the error bound) */
    int64_t rows, cols;
} tensor_data;

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static float urand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) & 0xffffff) / (float)0x1000000 * 2 - 1;
}

/* 1: make_param stores the two kept items of every other group of a 2:4
 * tensor in decreasing position order (the same values). */
static int unsorted_pairs;

/* Rebuilds every block of a packed N:M tensor with the kept items (codes
 * and indices) of groups 0, 2, 4, ... swapped. */
static void swap_kept_pairs(const qk_format *f, uint8_t *data, int64_t rows, int64_t cols) {
    int64_t rb = qk_format_row_bytes(f, cols), nb = (cols + f->block - 1) / f->block;
    uint8_t *tmp = malloc((size_t)f->block_bytes);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t b = 0; b < nb; b++) {
            uint8_t *blk = data + f->tensor_header_bytes + r * rb + f->row_header_bytes + b * f->block_bytes;
            memset(tmp, 0, (size_t)f->block_bytes);
            for (int fl = 0; fl < QK_FIELD_COUNT; fl++)
                for (int i = 0; i < f->items[fl]; i++) {
                    int j = (fl == QK_FIELD_CODES || fl == QK_FIELD_INDEX) && (i / f->sp_n) % 2 == 0 ? i ^ 1 : i;
                    qk_format_put_item(f, tmp, fl, i, qk_format_item(f, blk, fl, j));
                }
            memcpy(blk, tmp, (size_t)f->block_bytes);
        }
    free(tmp);
}

/* Random values of a param [rows, cols]: dense (f16/f32) or packed. */
static tensor_data make_param(const kir_tensor *t, int64_t rows, int64_t cols) {
    tensor_data d = {NULL, malloc((size_t)(rows * cols) * sizeof(float)), rows, cols};
    for (int64_t i = 0; i < rows * cols; i++)
        d.values[i] = urand() * 2;
    if (t->fmt) {
        d.data = calloc(1, (size_t)qk_format_size(t->fmt, rows, cols));
        CU_ASSERT_FATAL(qk_format_pack(t->fmt, d.values, rows, cols, d.data, NULL, NULL, 0) == 0);
        qk_format_unpack(t->fmt, d.data, rows, cols, d.values, NULL);
        if (unsorted_pairs && t->fmt->sp_n == 2) {
            float *before = malloc((size_t)(rows * cols) * sizeof(float));
            memcpy(before, d.values, (size_t)(rows * cols) * sizeof(float));
            swap_kept_pairs(t->fmt, d.data, rows, cols);
            qk_format_unpack(t->fmt, d.data, rows, cols, d.values, NULL);
            CU_ASSERT(memcmp(before, d.values, (size_t)(rows * cols) * sizeof(float)) == 0);
            free(before);
        }
        return d;
    }
    d.data = malloc((size_t)(rows * cols) * qk_dtype_size(t->dtype));
    for (int64_t i = 0; i < rows * cols; i++) {
        qk_dtype_store(t->dtype, d.data, i, d.values[i]);
        d.values[i] = (float)qk_dtype_load(t->dtype, d.data, i);
    }
    return d;
}

static kir_view view_of(const tensor_data *d) {
    kir_view v = {d->data, 2, {d->rows, d->cols}, {d->cols, 1}};
    return v;
}

/* Extent of dim d of tensor t: M, N or K by its symbol's name. */
static int64_t extent(const kir_kernel *k, const kir_tensor *t, int d, int64_t M, int64_t N, int64_t K) {
    const char *s = t->dims[d].sym >= 0 ? k->syms[t->dims[d].sym] : "";
    return !strcmp(s, "M") ? M : !strcmp(s, "N") ? N : !strcmp(s, "K") ? K : t->dims[d].c;
}

/* Runs kernel `name` (params x: [M, K], W: [N, K], then others such as a
 * bias b: [N]; one result y: [M, N] or [N, M]) built for sm_90 on the
 * emulated warp and compares y with ref_run within an f32-summation
 * bound. */
static void check_kernel(kir_program *p, const char *name, int64_t M, int64_t N, int64_t K) {
    kir_kernel *k = kernel_in(p, name);
    tir_func *f = build_in(p, name);
    CU_ASSERT(count_op(f, TIR_MMA) > 0);
    emu m;
    if (emu_open(f, &m) != 0)
        return;
    int nio = k->nparams + k->nresults, yi = k->nparams;
    CU_ASSERT_FATAL(nio <= 8 && k->nresults == 1);
    tensor_data td[8], yref;
    kir_view views[8];
    for (int i = 0; i < nio; i++) {
        const kir_tensor *t = &k->tensors[i];
        int64_t rows = 1, cols = extent(k, t, t->rank - 1, M, N, K);
        for (int d = 0; d + 1 < t->rank; d++)
            rows *= extent(k, t, d, M, N, K);
        if (i == yi) {
            size_t sz = (size_t)(rows * cols) * qk_dtype_size(t->dtype);
            td[i] = (tensor_data){calloc(1, sz), NULL, rows, cols};
            yref = (tensor_data){calloc(1, sz), NULL, rows, cols};
        } else
            td[i] = make_param(t, rows, cols);
        views[i] = i == yi ? view_of(&yref) : view_of(&td[i]);
        views[i].rank = t->rank;
        if (t->rank == 1)
            views[i].shape[0] = cols, views[i].stride[0] = 1;
    }
    int64_t dims[8];
    char err[512] = "";
    CU_ASSERT_FATAL(kir_bind(k, views, dims, err, sizeof err) == 0);
    CU_ASSERT_FATAL(ref_run(k, views, dims, err, sizeof err) == 0);
    unsigned long long av[64] = {0};
    void *scratch[8] = {0};
    CU_ASSERT_FATAL(f->nargs <= 64 && f->nscratch <= 8);
    int a = 0;
    for (int i = 0; i < nio; i++)
        av[a++] = (uintptr_t)td[i].data;
    for (int s = 0; s < k->nsyms; s++)
        av[a++] = (unsigned long long)dims[s];
    for (int i = 0; i < nio; i++)
        if (!k->tensors[i].fmt && k->tensors[i].rank == 2) /* leading stride of each dense rank-2 tensor */
            av[a++] = (unsigned long long)td[i].cols;
    for (int s = 0; s < f->nscratch; s++) {
        scratch[s] = calloc(1, (size_t)tir_scratch_bytes(f, k, s, dims) + 16);
        av[f->scratch[s].arg] = (uintptr_t)scratch[s];
    }
    CU_ASSERT_FATAL(a == (f->nscratch ? f->scratch[0].arg : f->arg_begin));
    emu_run(&m, f, dims, av);
    CU_ASSERT(*m.failed == 0);
    CU_ASSERT(*m.calls > 0);
    const kir_tensor *ty = &k->tensors[yi];
    int ny = extent(k, ty, 0, 0, 1, 0) == 1; /* y[n, m] */
    const tensor_data *x = &td[0], *w = &td[1];
    int bad = 0;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            int64_t at = ny ? j * M + i : i * N + j;
            double got = qk_dtype_load(ty->dtype, td[yi].data, at), want = qk_dtype_load(ty->dtype, yref.data, at);
            double bound = 0;
            for (int64_t kk = 0; kk < K; kk++)
                bound += fabs((double)x->values[i * K + kk] * w->values[j * K + kk]);
            /* f32 sums of a few partials: ~1e-6 of the magnitudes; f16 results: half an ulp of f16 more */
            double tol = 2e-6 * bound + 1e-6 + (ty->dtype == QK_DT_F16 ? fabs(want) / 1024 : 0);
            if (!(fabs(got - want) <= tol) && bad++ < 5)
                printf("\n%s: y at m=%lld n=%lld: %.9g, reference %.9g (tol %.3g)", name, (long long)i, (long long)j,
                       got, want, tol);
        }
    CU_ASSERT(bad == 0);
    for (int s = 0; s < f->nscratch; s++)
        free(scratch[s]);
    for (int i = 0; i < nio; i++)
        free(td[i].data), free(td[i].values);
    free(yref.data);
    dlclose(m.lib);
}

static void check_against_ref(const char *name, int64_t M, int64_t N, int64_t K) {
    check_kernel(prog, name, M, N, K);
}

/* ---- tests ---- */

static void test_structure(void) {
    static const struct {
        const char *kernel, *helper, *ptx;
    } want[] = {
        {"w4a16", "qkc_mma_f16_m16n8k16(", "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"},
        {"w4a16t", "qkc_mma_f16_m16n8k16(", "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"},
        {"w4a8", "qkc_mma_s8_m16n8k32(", "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32"},
        {"sp24", "qkc_mma_sp_f16_m16n8k32(", "mma.sp.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32"},
        {"epi", "qkc_mma_f16_m16n8k16(", "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"},
    };
    for (int i = 0; i < QK_COUNT(want); i++) {
        tir_func *f = build(want[i].kernel);
        char *src = emit_cuda(f);
        CU_ASSERT(strstr(src, want[i].helper) != NULL);
        CU_ASSERT(strstr(src, want[i].ptx) != NULL);
        CU_ASSERT(strstr(src, "#ifndef QKC_HOST_EMU") != NULL);
        CU_ASSERT(strstr(src, "threadIdx.x) >> 5)") != NULL); /* items strided over warps */
        CU_ASSERT(strstr(src, "(one warp per item)") != NULL);
        CU_ASSERT(f->ngrids >= 1 && f->grids[f->ngrids - 1].warp == 1 && f->grids[f->ngrids - 1].tile == 16);
        free(src);
    }
}

/* f32 activations do not fit f16 exactly: the one-lane path stays. */
static void test_fallback(void) {
    tir_func *f = build("w8a16_f32x");
    CU_ASSERT(count_op(f, TIR_MMA) == 0);
    CU_ASSERT(f->grids[0].warp == 0);
    char *src = emit_cuda(f);
    CU_ASSERT(strstr(src, "mma") == NULL);
    free(src);
}

/* `qkc emit --stage=tir` of warp-level code. */
static void test_printer(void) {
    tir_func *f = build("w4a16");
    qk_buf b = {0};
    tir_print(f, &b);
    CU_ASSERT(strstr(b.s, "warp-parallel for") != NULL);
    CU_ASSERT(strstr(b.s, "= laneid") != NULL);
    CU_ASSERT(strstr(b.s, "# mma.sync.aligned.m16n8k16") != NULL);
    CU_ASSERT(strstr(b.s, " lane 3") != NULL);
    qk_buf_free(&b);
}

/* The LLVM backend refuses warp-level code with a message, no crash. */
static void test_llvm_refuses(void) {
    tir_func *f = build("w4a16");
    qk_target t;
    qk_target_host(&t);
    void *st = NULL;
    char err[1024] = "";
    if (qk_backend_llvm.absent) { /* a build without LLVM: no state, a message naming the reason */
        CU_ASSERT(qk_backend_llvm.create(&t, &st, err, sizeof err) == -1);
        CU_ASSERT(strstr(err, "without LLVM") != NULL);
        return;
    }
    CU_ASSERT_FATAL(qk_backend_llvm.create(&t, &st, err, sizeof err) == 0);
    qk_code code = {0};
    CU_ASSERT(qk_backend_llvm.compile(st, f, &code, err, sizeof err) == -1);
    CU_ASSERT(strstr(err, "warp-level GPU code") != NULL);
    qk_backend_llvm.destroy(st);
}

static void test_ptx_f16(void) { check_ptx(build("w4a16"), "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"); }
static void test_ptx_s8(void) { check_ptx(build("w4a8"), "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32"); }
static void test_ptx_epilogue(void) { check_ptx(build("epi"), "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32"); }
static void test_ptx_sp(void) { check_ptx(build("sp24"), "mma.sp.sync.aligned.m16n8k32.row.col.f32.f16.f16.f32"); }

static void test_emu_f16(void) { check_against_ref("w4a16", 5, 37, 109); }
static void test_emu_f16_transposed(void) { check_against_ref("w4a16t", 11, 19, 64); }
static void test_emu_s8(void) { check_against_ref("w4a8", 5, 37, 109); }
static void test_emu_sp(void) { check_against_ref("sp24", 5, 37, 109); }
/* Kept items stored out of position order: A and the metadata are sorted. */
static void test_emu_sp_unsorted(void) {
    unsorted_pairs = 1;
    check_against_ref("sp24", 6, 23, 96);
    unsorted_pairs = 0;
}

static void test_emu_epilogue(void) { check_against_ref("epi", 13, 21, 77); }

/* Every dsl/ format as W, with f16 activations (`a16`) and with q8
 * activations made by quantize() (`a8`): where tir_mma.c picks an MMA the
 * kernel runs on the emulated warp against the reference (K = 2 blocks +
 * 7); the others keep the one-lane path. The formats expected on tensor
 * cores must be among the MMA ones. */
static void test_every_format(void) {
    static rtt_format formats[MAX_FORMATS];
    int n = rtt_lib_formats(DSL_DIR, formats, MAX_FORMATS);
    CU_ASSERT_FATAL(n > 0);
    char got[4096] = "";
    for (int i = 0; i < n; i++) {
        const rtt_format *l = &formats[i];
        if (l->vq)
            continue;
        char src[2048];
        snprintf(src, sizeof src,
                 "import \"%s/%s\"\nformat q8a { code = int8; block = 32; scale = f32 }\n"
                 "kernel a16(x: f16[M, K], W: %s[N, K]) -> y: f32[M, N] { y[m, n] = sum(k) x[m, k] * W[n, k] }\n"
                 "kernel a8(x: f32[M, K], W: %s[N, K]) -> y: f32[M, N] {\n"
                 "  xq[m, k] = quantize(x[m, k], q8a)\n  y[m, n] = sum(k) xq[m, k] * W[n, k]\n}\n",
                 DSL_DIR, l->file, l->name, l->name);
        qk_diags d;
        qk_diags_init(&d);
        kir_program *p = qk_frontend_compile(src, strlen(src), "every.qk", DSL_DIR, &d);
        qk_diags_free(&d);
        CU_ASSERT_FATAL(p != NULL);
        static const char *const kernels[] = {"a16", "a8"};
        for (int j = 0; j < 2; j++) {
            tir_func *f = build_in(p, kernels[j]);
            if (count_op(f, TIR_MMA) == 0)
                continue;
            size_t len = strlen(got);
            snprintf(got + len, sizeof got - len, " %s/%s", l->name, kernels[j]);
            check_kernel(p, kernels[j], 5, 37, 2 * l->block + 7);
        }
        kir_program_free(p);
    }
    printf("\n  on tensor cores:%s\n", got);
    static const char *const want[] = {" q4_0/a16", " q4_0/a8", " q8_0/a16", " q8_0/a8", " iq4_nl/a16",
                                       " mxfp4_e2m1/a16", " nvfp4/a16", " int4_2of4/a16", " int8_2of4/a16"};
    for (int i = 0; i < QK_COUNT(want); i++) {
        char key[64];
        snprintf(key, sizeof key, "%s ", want[i]);
        size_t len = strlen(got);
        got[len] = ' ', got[len + 1] = 0; /* every entry ends with a space */
        if (!strstr(got, key))
            printf("\n  expected on tensor cores: %s\n", want[i]);
        CU_ASSERT(strstr(got, key) != NULL);
        got[len] = 0;
    }
}

int main(void) {
    qk_diags d;
    prog = rtt_compile(source, sizeof source - 1, "cuda_mma_test.qk", NULL, &d);
    if (!prog)
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    CU_pSuite s = CU_add_suite("cuda_mma", NULL, NULL);
    CU_add_test(s, "sm_90 kernels call mma helpers", test_structure);
    CU_add_test(s, "f32 activations fall back to one lane", test_fallback);
    CU_add_test(s, "tiled-IR text of warp-level code", test_printer);
    CU_add_test(s, "LLVM backend refuses warp-level code", test_llvm_refuses);
    CU_add_test(s, "f16 mma: NVRTC + ptxas sm_80/sm_90", test_ptx_f16);
    CU_add_test(s, "s8 mma: NVRTC + ptxas sm_80/sm_90", test_ptx_s8);
    CU_add_test(s, "2:4 mma.sp: NVRTC + ptxas sm_80/sm_90", test_ptx_sp);
    CU_add_test(s, "epilogue: NVRTC + ptxas sm_80/sm_90", test_ptx_epilogue);
    CU_add_test(s, "host warp emulation: f16 x q4_0 vs reference", test_emu_f16);
    CU_add_test(s, "host warp emulation: f16 result y[n, m]", test_emu_f16_transposed);
    CU_add_test(s, "host warp emulation: quantize() s8 x q4_0 vs reference", test_emu_s8);
    CU_add_test(s, "host warp emulation: f16 x 2:4 int4 (mma.sp) vs reference", test_emu_sp);
    CU_add_test(s, "host warp emulation: 2:4 pairs stored unsorted", test_emu_sp_unsorted);
    CU_add_test(s, "host warp emulation: bias + relu epilogue, f16 y", test_emu_epilogue);
    CU_add_test(s, "every dsl/ format: MMA where it fits, vs reference", test_every_format);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    kir_program_free(prog);
    qk_diags_free(&d);
    return failures != 0;
}
