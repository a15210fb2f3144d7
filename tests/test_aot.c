/* test_aot.c — kernels built ahead of time by `qkc build`, run by a
 * generic harness (tests/aot/harness.c) linked with only the object and
 * libqkc_rt, compared with the reference interpreter on the same inputs:
 *
 *   - every format of dsl/ in a GEMV and a GEMM kernel, plus an int8-
 *     activation GEMV for every format with integer codes, built for
 *     host, x86-64-v3 and x86-64-v4 in one archive; each version is run
 *     (forced with QKC_AOT_ISA) on shapes that are not multiples of any
 *     block or tile, with one and two threads;
 *   - the dispatcher picks AVX-512 code (zmm registers in its
 *     disassembly) here and the AVX2 version when forced to;
 *   - the packers of libqkc_rt give the JIT API's bytes;
 *   - `qkc build --layout any`: versions that read weights row-interleaved,
 *     fed through qkc_rt_repack, match the reference on every version;
 *   - bad dims, strides and pointers give a status, never a crash;
 *   - the same kernels for aarch64 (+dotprod) run under qemu-aarch64 with
 *     a cross-compiled harness and runtime, when qemu and the cross
 *     compiler are installed (else "skipped" with the reason).
 *
 * The harness's file protocol is described in tests/aot/harness.c. */
#include <CUnit/Basic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qkc.h"
#include "support/lib_formats.h"
#include "support/rt_test.h"

#define DSL_DIR QKC_SOURCE_DIR "/dsl"
#define WORK QKC_BINARY_DIR "/aot-test"
#define MAX_FORMATS 128
#define MAX_KERNELS 512

static rtt_format formats[MAX_FORMATS];
static int nformats;
static char source[1 << 18];
static char kernels[MAX_KERNELS][96];
static int nkernels;
static int built; /* the x86 archive and harness exist */

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && v[0] ? v : def;
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "\ncommand failed (%d): %s\n", rc, cmd);
    return rc;
}

/* ---- the formats and the kernels ---- */

static void load_formats(void)
{
    int n = rtt_lib_formats(DSL_DIR, formats, MAX_FORMATS);
    nformats = n > 0 ? n : 0;
}

static void add(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void add(const char *fmt, ...)
{
    size_t n = strlen(source);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(source + n, sizeof source - n, fmt, ap);
    va_end(ap);
}

/* One source with every kernel: gemv_F, gemm_F, and gemv8_F (int8
 * activations) for formats with integer codes. */
static void make_source(void)
{
    source[0] = 0;
    for (int i = 0; i < nformats; i++)
        add("import \"%s/%s\"\n", DSL_DIR, formats[i].file);
    for (int i = 0; i < nformats && nkernels + 3 <= MAX_KERNELS; i++) {
        const rtt_format *l = &formats[i];
        char w[160], book[96];
        rtt_weight_type(l, w, sizeof w, book, sizeof book);
        add("kernel gemv_%s(x: f32[K], W: %s[N, K]%s) -> y: f32[N] { y[n] = sum(k) x[k] * W[n, k] }\n", l->name, w,
            book);
        add("kernel gemm_%s(x: f32[M, K], W: %s[N, K]%s, b: f32[N]) -> y: f32[M, N] {\n"
            "  y[m, n] = relu(sum(k) x[m, k] * W[n, k] + b[n])\n}\n",
            l->name, w, book);
        snprintf(kernels[nkernels++], 96, "gemv_%s", l->name);
        snprintf(kernels[nkernels++], 96, "gemm_%s", l->name);
        if (rtt_integer_code(l)) {
            add("kernel gemv8_%s(W: %s[N, K], xq: act_i8_b32[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * xq[k] }\n",
                l->name, l->name);
            snprintf(kernels[nkernels++], 96, "gemv8_%s", l->name);
        }
    }
    if (!strstr(source, "ggml.qk"))
        add("import \"%s/ggml.qk\"\n", DSL_DIR);
    /* fused temps (never stored), a two-statement chain with a stored
     * temp, and quantize() (scratch buffers, two phases) */
    add("kernel ffn_q4_0(x: f16[M, K], Wg: q4_0[N, K], Wu: q4_0[N, K]) -> h: f16[M, N] {\n"
        "  g[m, n] = sum(k) x[m, k] * Wg[n, k]\n  u[m, n] = sum(k) x[m, k] * Wu[n, k]\n"
        "  h[m, n] = f16(silu(g[m, n]) * u[m, n])\n}\n");
    add("kernel mlp_q8_0(x: f32[M, K], W1: q8_0[N, K], b1: f32[N], W2: q4_0[N, N]) -> y: f32[M, N] {\n"
        "  h[m, j] = relu(sum(k) x[m, k] * W1[j, k] + b1[j])\n  y[m, n] = sum(j) h[m, j] * W2[n, j]\n}\n");
    add("kernel gq_q4_0(x: f32[K], W: q4_0[N, K]) -> y: f32[N] {\n"
        "  xq[k] = quantize(x[k], q8_0)\n  y[n] = sum(k) W[n, k] * xq[k]\n}\n");
    snprintf(kernels[nkernels++], 96, "ffn_q4_0");
    snprintf(kernels[nkernels++], 96, "mlp_q8_0");
    snprintf(kernels[nkernels++], 96, "gq_q4_0");
}

static int block_of(const char *kname)
{
    const char *f = strchr(kname, '_') + 1;
    for (int i = 0; i < nformats; i++)
        if (strcmp(formats[i].name, f) == 0)
            return formats[i].block;
    return 32;
}

static int64_t dim_of(const char *name, int64_t K)
{
    return strcmp(name, "K") == 0 ? K : strcmp(name, "N") == 0 ? 37 : strcmp(name, "M") == 0 ? 5 : 1;
}

/* ---- one kernel through the harness ---- */

static int write_inputs(const char *path, const qkc_kernel *k, const int64_t *dims, const rtt_args *a)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int64_t nd = qkc_kernel_ndims(k);
    fwrite(&nd, 8, 1, f);
    fwrite(dims, 8, (size_t)nd, f);
    for (int i = 0; i < a->n; i++) {
        if (a->info[i].is_result)
            continue;
        int64_t nb = (int64_t)a->bytes[i];
        fwrite(&nb, 8, 1, f);
        fwrite(a->t[i].data, 1, a->bytes[i], f);
    }
    return fclose(f);
}

static int read_outputs(const char *path, rtt_args *a, char *why, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, n, "no output file %s", path);
        return -1;
    }
    int bad = 0;
    for (int i = 0; i < a->n && !bad; i++) {
        if (!a->info[i].is_result)
            continue;
        int64_t nb = -1;
        if (fread(&nb, 8, 1, f) != 1 || nb != (int64_t)a->bytes[i] ||
            fread(a->t[i].data, 1, a->bytes[i], f) != a->bytes[i]) {
            snprintf(why, n, "result %d: %lld bytes in the output, expected %zu", i, (long long)nb, a->bytes[i]);
            bad = 1;
        }
    }
    fclose(f);
    return bad ? -1 : 0;
}

/* Runs kernel kname of the build with `runner` (e.g. "env QKC_AOT_ISA=x"
 * + harness path) and compares each result with the reference. Returns
 * 0 = pass; *selected gets the version the harness reported. */
static int check_one(qkc_ctx *ctx, qkc_program *p, const char *kname, const char *runner, const char *tag,
                     int threads, char *selected, size_t selsz, char *why, size_t n)
{
    qkc_kernel *k = NULL;
    if (qkc_kernel_get(p, kname, &k) != QKC_OK) { /* no code: the context's target is foreign */
        snprintf(why, n, "JIT kernel: %s", qkc_errmsg(ctx));
        return 1;
    }
    int64_t K = 2 * (int64_t)(block_of(kname) > 128 ? block_of(kname) : 128) + 37, dims[8] = {0};
    for (int i = 0; i < qkc_kernel_ndims(k) && i < 8; i++)
        dims[i] = dim_of(qkc_kernel_dim_name(k, i), K);
    rtt_rng r = {0xa07 + (uint64_t)K};
    rtt_args a;
    if (rtt_args_make(p, k, dims, &r, &a, why, n) != 0)
        return 1;
    int bad = 1;
    char in[512], out[512], log[512];
    snprintf(in, sizeof in, WORK "/%s.%s.in", kname, tag);
    snprintf(out, sizeof out, WORK "/%s.%s.out", kname, tag);
    snprintf(log, sizeof log, WORK "/%s.%s.log", kname, tag);
    remove(out);
    if (qkc_reference(k, a.ref, a.n) != QKC_OK)
        snprintf(why, n, "reference: %s", qkc_errmsg(ctx));
    else if (write_inputs(in, k, dims, &a) != 0)
        snprintf(why, n, "cannot write %s", in);
    else if (sh("%s run %s %s %s --threads %d > %s 2>&1", runner, kname, in, out, threads, log) != 0) {
        snprintf(why, n, "harness failed: see %s", log);
    } else if (read_outputs(out, &a, why, n) == 0)
        bad = rtt_compare(&a, why, n);
    if (selected) {
        selected[0] = 0;
        FILE *f = fopen(log, "r");
        char line[256];
        while (f && fgets(line, sizeof line, f))
            if (strncmp(line, "selected=", 9) == 0)
                snprintf(selected, selsz, "%.*s", (int)strcspn(line + 9, "\n"), line + 9);
        if (f)
            fclose(f);
    }
    rtt_args_free(&a);
    return bad;
}

/* ---- x86 ---- */

static qkc_ctx *ctx;
static qkc_program *prog;

static int suite_init(void)
{
    mkdir(WORK, 0755);
    load_formats();
    make_source();
    FILE *f = fopen(WORK "/all.qk", "w");
    if (!f)
        return -1;
    fputs(source, f);
    fclose(f);
    /* The reference needs kernel handles but no code: a context for a CPU
     * of another architecture builds the tiled IR without compiling it. */
    qkc_ctx_options o = {.target = "aarch64", .threads = 2, .tuning_db = "", .cache_dir = ""};
    if (qkc_ctx_create(&o, &ctx) != QKC_OK || qkc_program_create(ctx, source, WORK "/all.qk", &prog) != QKC_OK) {
        fprintf(stderr, "%s", prog ? qkc_program_diagnostics_text(prog) : "no context\n");
        return -1;
    }
    return 0;
}

static int suite_clean(void)
{
    qkc_program_destroy(prog);
    qkc_ctx_destroy(ctx);
    return 0;
}

static const char *qkc_bin(void)
{
    return env_or("QKC_BIN", QKC_BINARY_DIR "/qkc");
}

static const char *rt_lib(void)
{
    return env_or("QKC_RT_LIB", QKC_BINARY_DIR "/libqkc_rt.a");
}

static void test_build_x86(void)
{
    CU_ASSERT_FATAL(nformats >= 20);
    printf("\n  %d formats, %d kernels\n", nformats, nkernels);
    CU_ASSERT_EQUAL_FATAL(sh("QKC_TUNE_DB= %s build %s --target host,x86-64-v3,x86-64-v4 -o %s --prefix t -v "
                             "> %s 2>&1",
                             qkc_bin(), WORK "/all.qk", WORK "/libt.a", WORK "/build.log"),
                          0);
    CU_ASSERT_EQUAL_FATAL(sh("cc -std=c11 -O1 -Wall -I%s/include -DQKC_AOT_LIST=t_kernels %s/tests/aot/harness.c "
                             "%s %s -lpthread -ldl -lm -o %s",
                             QKC_SOURCE_DIR, QKC_SOURCE_DIR, WORK "/libt.a", rt_lib(), WORK "/harness"),
                          0);
    /* the header compiles as C and as C++-free C11 with every wrapper */
    CU_ASSERT_EQUAL(sh("printf '#include \"%s\"\\nint main(void){return t_kernels[0]==0;}\\n' > %s && "
                       "cc -std=c11 -Wall -Werror -I%s/include -c %s -o %s",
                       WORK "/libt.h", WORK "/hdr.c", QKC_SOURCE_DIR, WORK "/hdr.c", WORK "/hdr.o"),
                    0);
    /* one relocatable object (-c) links the same way */
    CU_ASSERT_EQUAL(sh("QKC_TUNE_DB= %s build %s --target x86-64-v3,x86-64-v4 -c -o %s --prefix t "
                       "--kernel gemv_q4_0,gq_q4_0 > /dev/null && cc -std=c11 -O1 -I%s/include "
                       "-DQKC_AOT_LIST=t_kernels %s/tests/aot/harness.c %s %s -lpthread -ldl -lm -o %s && %s list",
                       qkc_bin(), WORK "/all.qk", WORK "/one.o", QKC_SOURCE_DIR, QKC_SOURCE_DIR, WORK "/one.o",
                       rt_lib(), WORK "/harness-one", WORK "/harness-one > /dev/null"),
                    0);
    built = 1;
}

static void test_every_version(void)
{
    CU_ASSERT_FATAL(built);
    static const char *const isas[] = {"host", "x86-64-v4", "x86-64-v3"};
    int failed = 0;
    printf("\n  %-24s host v4 v3\n", "kernel");
    for (int i = 0; i < nkernels; i++) {
        printf("  %-24s", kernels[i]);
        for (int v = 0; v < 3; v++) {
            char runner[1024], sel[64], why[1024] = "";
            snprintf(runner, sizeof runner, "QKC_AOT_ISA=%s %s", isas[v], WORK "/harness");
            int bad = check_one(ctx, prog, kernels[i], runner, isas[v], 1 + (i + v) % 2, sel, sizeof sel, why,
                                sizeof why);
            if (!bad && strcmp(sel, isas[v]) != 0) {
                snprintf(why, sizeof why, "ran version '%s', forced '%s'", sel, isas[v]);
                bad = 1;
            }
            printf(" %s", bad ? "FAIL" : "ok");
            if (bad) {
                fprintf(stderr, "\n%s (%s): %s\n", kernels[i], isas[v], why);
                failed++;
            }
        }
        printf("\n");
    }
    CU_ASSERT_EQUAL(failed, 0);
}

/* Without QKC_AOT_ISA the AVX-512 version runs on an AVX-512 machine, and
 * its code uses zmm registers while the x86-64-v3 version's does not. */
static void test_dispatch(void)
{
    CU_ASSERT_FATAL(built);
    char sel[64], why[1024] = "";
    int bad = check_one(ctx, prog, "gemv_q4_0", "env -u QKC_AOT_ISA " WORK "/harness", "auto", 2, sel, sizeof sel,
                        why, sizeof why);
    CU_ASSERT_EQUAL(bad, 0);
    if (bad)
        fprintf(stderr, "\n%s\n", why);
    FILE *cpu = fopen("/proc/cpuinfo", "r");
    char line[4096];
    int avx512 = 0;
    while (cpu && fgets(line, sizeof line, cpu))
        avx512 |= strncmp(line, "flags", 5) == 0 && strstr(line, " avx512f") != NULL;
    if (cpu)
        fclose(cpu);
    printf("\n  auto-selected version: %s (AVX-512 %s)\n", sel, avx512 ? "present" : "absent");
    int want = avx512 ? strcmp(sel, "host") == 0 || strcmp(sel, "x86-64-v4") == 0
                      : strcmp(sel, "x86-64-v3") == 0 || strcmp(sel, "host") == 0;
    CU_ASSERT(want);
    /* the disassembly of each version's entry */
    CU_ASSERT_EQUAL_FATAL(sh("objdump -d --no-show-raw-insn %s > %s", WORK "/libt.a", WORK "/libt.dis"), 0);
    FILE *f = fopen(WORK "/libt.dis", "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    int in_v4 = 0, in_v3 = 0, zmm_v4 = 0, zmm_v3 = 0, ymm_v3 = 0;
    while (fgets(line, sizeof line, f)) {
        if (strchr(line, '<') && strstr(line, ">:")) {
            in_v4 = strstr(line, "gemv_q4_0.x86_64_v4>") != NULL;
            in_v3 = strstr(line, "gemv_q4_0.x86_64_v3>") != NULL;
        }
        zmm_v4 += in_v4 && strstr(line, "zmm");
        zmm_v3 += in_v3 && strstr(line, "zmm");
        ymm_v3 += in_v3 && strstr(line, "ymm");
    }
    fclose(f);
    printf("  gemv_q4_0: x86-64-v4 version %d zmm instructions; x86-64-v3 version %d ymm, %d zmm\n", zmm_v4, ymm_v3,
           zmm_v3);
    CU_ASSERT(zmm_v4 > 0);
    CU_ASSERT(ymm_v3 > 0);
    CU_ASSERT_EQUAL(zmm_v3, 0);
}

/* libqkc_rt's packers give the JIT API's bytes, and unpack agrees. */
static void test_packers(void)
{
    CU_ASSERT_FATAL(built);
    int failed = 0;
    for (int i = 0; i < nformats; i++) {
        const rtt_format *l = &formats[i];
        if (l->vq)
            continue; /* codebook search: covered by the kernels above */
        char kname[96];
        snprintf(kname, sizeof kname, "gemv_%s", l->name);
        int64_t rows = 3, K = 2 * (int64_t)l->block + 5;
        float *src = malloc(sizeof(float) * (size_t)(rows * K));
        rtt_rng r = {77 + (uint64_t)i};
        for (int64_t j = 0; j < rows * K; j++)
            src[j] = (float)rtt_uniform(&r, -2, 2);
        size_t bytes = 0;
        CU_ASSERT_EQUAL_FATAL(qkc_format_size(prog, l->name, rows, K, &bytes), QKC_OK);
        void *jit = malloc(bytes);
        float *jun = malloc(sizeof(float) * (size_t)(rows * K));
        CU_ASSERT_EQUAL_FATAL(qkc_pack(prog, l->name, src, rows, K, jit, bytes), QKC_OK);
        CU_ASSERT_EQUAL_FATAL(qkc_unpack(prog, l->name, jit, bytes, rows, K, jun), QKC_OK);
        FILE *f = fopen(WORK "/pack.in", "wb");
        int64_t hdr[3] = {2, rows, K}, zero = 0;
        fwrite(hdr, 8, 3, f);
        fwrite(src, sizeof(float), (size_t)(rows * K), f);
        fwrite(&zero, 8, 1, f);
        fclose(f);
        int bad = sh("%s pack %s 1 %s %s > /dev/null", WORK "/harness", kname, WORK "/pack.in", WORK "/pack.out");
        f = fopen(WORK "/pack.out", "rb");
        unsigned char *aot = malloc(bytes + 1);
        float *aun = malloc(sizeof(float) * (size_t)(rows * K));
        int64_t nun = 0;
        if (!bad && f && fread(aot, 1, bytes, f) == bytes && fread(&nun, 8, 1, f) == 1 &&
            nun == (int64_t)(sizeof(float) * (size_t)(rows * K)) && fread(aun, 1, (size_t)nun, f) == (size_t)nun) {
            bad = memcmp(aot, jit, bytes) != 0 || memcmp(aun, jun, (size_t)nun) != 0;
            if (bad)
                fprintf(stderr, "\n%s: libqkc_rt's packed bytes or unpacked values differ from the JIT API's\n",
                        l->name);
        } else
            bad = 1;
        if (f)
            fclose(f);
        failed += bad;
        free(src);
        free(jit);
        free(jun);
        free(aot);
        free(aun);
    }
    CU_ASSERT_EQUAL(failed, 0);
}

static void test_bad_args(void)
{
    CU_ASSERT_FATAL(built);
    CU_ASSERT_EQUAL(sh("%s badargs gemm_q4_0 > %s 2>&1", WORK "/harness", WORK "/badargs.log"), 0);
    /* a version this CPU cannot run is refused, not executed; an unknown one is named */
    CU_ASSERT_NOT_EQUAL(sh("QKC_AOT_ISA=sm_99 %s run gemv_q4_0 /dev/null /dev/null > /dev/null 2>&1",
                           WORK "/harness"),
                        0);
}

/* A build for x86-64-v3 and x86-64-v4 only (one object, -c): the
 * dispatcher picks the AVX-512 version where the CPU has AVX-512. */
static void test_dispatch_v3_v4(void)
{
    CU_ASSERT_FATAL(built);
    CU_ASSERT_EQUAL_FATAL(sh("env -u QKC_AOT_ISA %s list > %s 2>&1", WORK "/harness-one", WORK "/one.list"), 0);
    FILE *f = fopen(WORK "/one.list", "r");
    char line[512] = "";
    int v4 = 0, v3 = 0;
    while (f && fgets(line, sizeof line, f)) {
        v4 += strstr(line, "selected=x86-64-v4") != NULL;
        v3 += strstr(line, "selected=x86-64-v3") != NULL;
    }
    if (f)
        fclose(f);
    int avx512 = system("grep -q ' avx512f' /proc/cpuinfo") == 0;
    printf("\n  x86-64-v3 + x86-64-v4 build: %d kernels chose v4, %d chose v3 (AVX-512 %s)\n", v4, v3,
           avx512 ? "present" : "absent");
    CU_ASSERT_EQUAL(v4 + v3, 2);
    CU_ASSERT_EQUAL(avx512 ? v4 : v3, 2);
}

/* `qkc build --layout any`: the int8-activation GEMVs (and the f32 one of
 * q4_0) may read their weights row-interleaved; the harness converts the
 * packer's bytes with qkc_rt_repack as a program would, and every version
 * matches the reference. q4_0's versions, int8 and f32 (the layout's f32
 * form), must really read the layout (16 rows with AVX-512, 8 with AVX2),
 * and the repacker refuses bad calls. */
static void test_layout_any(void)
{
    CU_ASSERT_FATAL(built);
    char list[16384] = "";
    const char *names[MAX_KERNELS];
    int n = 0;
    for (int i = 0; i < nkernels; i++)
        if (strncmp(kernels[i], "gemv8_", 6) == 0 || strcmp(kernels[i], "gq_q4_0") == 0 ||
            strcmp(kernels[i], "gemv_q4_0") == 0) {
            names[n++] = kernels[i];
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", n > 1 ? "," : "", kernels[i]);
        }
    CU_ASSERT_FATAL(n >= 10);
    CU_ASSERT_EQUAL_FATAL(sh("QKC_TUNE_DB= %s build %s --layout any --target host,x86-64-v3,x86-64-v4 -o %s "
                             "--prefix a --kernel %s -v > %s 2>&1 && cc -std=c11 -O1 -Wall -I%s/include "
                             "-DQKC_AOT_LIST=a_kernels %s/tests/aot/harness.c %s %s -lpthread -ldl -lm -o %s",
                             qkc_bin(), WORK "/all.qk", WORK "/liba.a", list, WORK "/build-any.log", QKC_SOURCE_DIR,
                             QKC_SOURCE_DIR, WORK "/liba.a", rt_lib(), WORK "/harness-any"),
                          0);
    static const char *const isas[] = {"host", "x86-64-v4", "x86-64-v3"};
    int failed = 0, interleaved = 0, q4_rows[3] = {0}, f4_rows[3] = {0};
    printf("\n  %-24s host v4 v3 (r: reads the weights row-interleaved)\n", "kernel");
    for (int i = 0; i < n; i++) {
        printf("  %-24s", names[i]);
        for (int v = 0; v < 3; v++) {
            char runner[1024], tag[64], why[1024] = "", sel[64];
            snprintf(runner, sizeof runner, "QKC_AOT_ISA=%s %s", isas[v], WORK "/harness-any");
            snprintf(tag, sizeof tag, "any-%s", isas[v]);
            int bad = check_one(ctx, prog, names[i], runner, tag, 1 + (i + v) % 2, sel, sizeof sel, why, sizeof why);
            char log[512], line[256];
            snprintf(log, sizeof log, WORK "/%s.%s.log", names[i], tag);
            FILE *f = fopen(log, "r");
            int rows = 0;
            while (f && fgets(line, sizeof line, f))
                if (strncmp(line, "repack=W:", 9) == 0)
                    rows = atoi(line + 9);
            if (f)
                fclose(f);
            interleaved += rows > 0;
            if (strcmp(names[i], "gq_q4_0") == 0)
                q4_rows[v] = rows;
            if (strcmp(names[i], "gemv_q4_0") == 0)
                f4_rows[v] = rows;
            printf(" %s%s", bad ? "FAIL" : "ok", rows ? "r" : " ");
            if (bad) {
                fprintf(stderr, "\n%s (%s, --layout any): %s\n", names[i], isas[v], why);
                failed++;
            }
        }
        printf("\n");
    }
    int avx512 = system("grep -q ' avx512f' /proc/cpuinfo") == 0;
    printf("  %d of %d runs read row-interleaved weights; gq_q4_0: host %d rows, v4 %d, v3 %d\n", interleaved, 3 * n,
           q4_rows[0], q4_rows[1], q4_rows[2]);
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT(interleaved >= n);
    CU_ASSERT_EQUAL(q4_rows[1], 16);
    CU_ASSERT_EQUAL(q4_rows[2], 8);
    /* q4_0 times f32 x: the layout's f32 form */
    CU_ASSERT_EQUAL(f4_rows[1], 16);
    CU_ASSERT_EQUAL(f4_rows[2], 8);
    CU_ASSERT_EQUAL(q4_rows[0], avx512 ? 16 : 8);
    CU_ASSERT_EQUAL(sh("%s badargs gq_q4_0 > %s 2>&1", WORK "/harness-any", WORK "/badargs-any.log"), 0);
    /* without --layout any no version reads it, and the header has no repacker */
    CU_ASSERT_NOT_EQUAL(system("grep -q '_repack(' " WORK "/libt.h"), 0);
    CU_ASSERT_EQUAL(system("grep -q 'a_gq_q4_0_W_repack(' " WORK "/liba.h"), 0);
}

/* A GPU version (PTX from NVRTC, embedded) where there is no CUDA driver:
 * a clear NO_DEVICE status, never a crash. */
static void test_gpu_without_driver(void)
{
    CU_ASSERT_FATAL(built);
    if (system("ls /usr/local/cuda/lib64/libnvrtc.so* > /dev/null 2>&1") != 0) {
        printf("\n  skipped: NVRTC not installed (/usr/local/cuda), so no PTX can be built\n");
        CU_PASS("skipped");
        return;
    }
    if (system("ldconfig -p 2>/dev/null | grep -q 'libcuda.so.1'") == 0) {
        printf("\n  skipped: this machine has a CUDA driver (the GPU test suite covers it)\n");
        CU_PASS("skipped");
        return;
    }
    CU_ASSERT_EQUAL_FATAL(sh("QKC_TUNE_DB= %s build %s --target sm_90 -c -o %s --prefix t --kernel gemv_q4_0 "
                             "> /dev/null && cc -std=c11 -O1 -I%s/include -DQKC_AOT_LIST=t_kernels "
                             "%s/tests/aot/harness.c %s %s -lpthread -ldl -lm -o %s",
                             qkc_bin(), WORK "/all.qk", WORK "/gpu.o", QKC_SOURCE_DIR, QKC_SOURCE_DIR,
                             WORK "/gpu.o", rt_lib(), WORK "/harness-gpu"),
                          0);
    char why[1024] = "";
    int rc = check_one(ctx, prog, "gemv_q4_0", WORK "/harness-gpu", "gpu", 1, NULL, 0, why, sizeof why);
    CU_ASSERT_NOT_EQUAL(rc, 0); /* it cannot have run */
    int clean = sh("grep -q 'no CUDA driver' %s", WORK "/gemv_q4_0.gpu.log") == 0 &&
                sh("grep -q -i 'segmentation\\|core dumped' %s", WORK "/gemv_q4_0.gpu.log") != 0;
    printf("\n  sm_90 version without a driver: %s\n", clean ? "\"no CUDA driver\" reported" : "unclear failure");
    CU_ASSERT(clean);
}

/* ---- aarch64 under qemu ---- */

static int have(const char *prog_name)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s > /dev/null 2>&1", prog_name);
    return system(cmd) == 0;
}

static void test_aarch64_qemu(void)
{
    if (!have("qemu-aarch64") || !have("aarch64-linux-gnu-gcc")) {
        printf("\n  skipped: qemu-aarch64 or aarch64-linux-gnu-gcc not installed "
               "(apt-get install qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross)\n");
        CU_PASS("skipped");
        return;
    }
    CU_ASSERT_EQUAL_FATAL(sh("QKC_TUNE_DB= %s build %s --target aarch64,aarch64+dotprod -o %s --prefix t "
                             "> %s 2>&1",
                             qkc_bin(), WORK "/all.qk", WORK "/liba64.a", WORK "/a64-build.log"),
                          0);
    CU_ASSERT_EQUAL_FATAL(
        sh("cd %s && aarch64-linux-gnu-gcc -std=c11 -O1 -D_GNU_SOURCE -DQKC_VERSION='\"aot-test\"' -I. -Iinclude "
           "-DQKC_AOT_LIST=t_kernels tests/aot/harness.c runtime/rt/*.c common/arena.c common/buf.c common/dtype.c "
           "compiler/format.c compiler/rowpack.c %s -lpthread -ldl -lm -o %s",
           QKC_SOURCE_DIR, WORK "/liba64.a", WORK "/harness-a64"),
        0);
    /* sdot in the +dotprod versions, and none in the plain NEON ones */
    CU_ASSERT_EQUAL(sh("aarch64-linux-gnu-objdump -d %s > %s", WORK "/liba64.a", WORK "/a64.dis"), 0);
    FILE *dis = fopen(WORK "/a64.dis", "r");
    char line[4096];
    int in_dot = 0, in_neon = 0, sdot = 0, sdot_neon = 0, neon = 0;
    while (dis && fgets(line, sizeof line, dis)) {
        if (strchr(line, '<') && strstr(line, ">:")) {
            in_dot = strstr(line, ".aarch64_dotprod>") != NULL;
            in_neon = strstr(line, ".aarch64>") != NULL;
        }
        sdot += in_dot && strstr(line, "\tsdot\t");
        sdot_neon += in_neon && strstr(line, "\tsdot\t");
        neon += (in_dot || in_neon) && strstr(line, ".4s");
    }
    if (dis)
        fclose(dis);
    printf("\n  aarch64 disassembly: %d sdot in +dotprod versions, %d in plain ones, %d .4s vector instructions\n",
           sdot, sdot_neon, neon);
    CU_ASSERT(sdot > 0);
    CU_ASSERT_EQUAL(sdot_neon, 0);
    CU_ASSERT(neon > 0);
    static const char *const isas[] = {"aarch64+dotprod", "aarch64"};
    int failed = 0;
    printf("\n  %-24s +dotprod neon\n", "kernel (qemu-aarch64)");
    for (int i = 0; i < nkernels; i++) {
        printf("  %-24s", kernels[i]);
        for (int v = 0; v < 2; v++) {
            /* the dot-product version also on every kernel; plain NEON on a sample */
            if (v == 1 && i % 3 != 0) {
                printf("   -");
                continue;
            }
            char runner[1024], sel[64], why[1024] = "";
            snprintf(runner, sizeof runner, "QKC_AOT_ISA=%s qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu %s",
                     isas[v], WORK "/harness-a64");
            int bad = check_one(ctx, prog, kernels[i], runner, isas[v] + 7 /* "" or "+dotprod" */, 1, sel,
                                sizeof sel, why, sizeof why);
            if (!bad && strcmp(sel, isas[v]) != 0) {
                snprintf(why, sizeof why, "ran version '%s', forced '%s'", sel, isas[v]);
                bad = 1;
            }
            printf(" %s", bad ? "FAIL" : "ok");
            if (bad) {
                fprintf(stderr, "\n%s (%s): %s\n", kernels[i], isas[v], why);
                failed++;
            }
        }
        printf("\n");
    }
    CU_ASSERT_EQUAL(failed, 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("aot", suite_init, suite_clean);
    CU_add_test(s, "qkc build for host, x86-64-v3, x86-64-v4 and the harness", test_build_x86);
    CU_add_test(s, "every format, every x86 version, against the reference", test_every_version);
    CU_add_test(s, "dispatch: AVX-512 here, AVX2 when forced", test_dispatch);
    CU_add_test(s, "libqkc_rt packers give the JIT API's bytes", test_packers);
    CU_add_test(s, "bad dims, strides and pointers", test_bad_args);
    CU_add_test(s, "x86-64-v3 + x86-64-v4 object: AVX-512 chosen where present", test_dispatch_v3_v4);
    CU_add_test(s, "--layout any: row-interleaved weights through qkc_rt_repack", test_layout_any);
    CU_add_test(s, "a GPU version without a CUDA driver: a clear status", test_gpu_without_driver);
    CU_add_test(s, "aarch64 (+dotprod) under qemu", test_aarch64_qemu);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}
