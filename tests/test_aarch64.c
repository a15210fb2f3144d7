/* test_aarch64.c — AArch64 code from the LLVM backend, checked on any
 * machine without running it (running it under qemu is test_aot's part):
 *
 *   - the aarch64[+dotprod][+sve] presets, and that their code never runs
 *     on another architecture;
 *   - every dsl/ format's GEMV and GEMM lowered for aarch64+dotprod to
 *     assembly with NEON vector registers and no x86 instruction, and the
 *     int8-activation GEMV of every format with an integer image to sdot;
 *   - the signed x signed integer dot (the one sdot does), built for a
 *     host that is told it has sdot and no vpdpbusd, JIT-run on the host
 *     with the generic DOT4 lowering and compared with the reference for
 *     every format: the builder's re-signing of unsigned codes is exact;
 *   - no file in backends/ names a dsl/ format.
 *
 * Formats are read from dsl/, so a format added there is covered without
 * touching this file. */
#include <CUnit/Basic.h>
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backends/backend.h"
#include "compiler/kir.h"
#include "compiler/tir.h"
#include "frontend/frontend.h"
#include "qkc.h"
#include "runtime/runtime.h"
#include "support/lib_formats.h"
#include "support/rt_test.h"

#define DSL_DIR QKC_SOURCE_DIR "/dsl"
#define MAX_FORMATS 128

static rtt_format formats[MAX_FORMATS];
static int nformats;

/* ---- the library (as test_library.c reads it) ---- */

static kir_program *compile_src(const char *src, char *why, size_t n)
{
    qk_diags d;
    qk_diags_init(&d);
    kir_program *p = qk_frontend_compile(src, strlen(src), "a64.qk", DSL_DIR, &d);
    if (!p) {
        qk_buf b = {0};
        qk_diags_render(&d, &b);
        snprintf(why, n, "does not compile: %s", b.s ? b.s : "");
        qk_buf_free(&b);
    }
    qk_diags_free(&d);
    return p;
}

static void load_library(void)
{
    if (nformats)
        return;
    int n = rtt_lib_formats(DSL_DIR, formats, MAX_FORMATS);
    CU_ASSERT_FATAL(n > 0);
    nformats = n;
}

/* GEMV and GEMM with f32 activations (test_library.c's kernels), and a
 * GEMV with q8_0 activations (`igemv`; not for codebook formats). */
static void kernel_source(const rtt_format *l, char *out, size_t n)
{
    char w[160], book[96];
    rtt_weight_type(l, w, sizeof w, book, sizeof book);
    int len = snprintf(out, n,
                       "import \"%s/%s\"\nimport \"%s/ggml.qk\"\n"
                       "kernel gemv(x: f32[K], W: %s[N, K]%s) -> y: f32[N] {\n"
                       "  y[n] = sum(k) x[k] * W[n, k]\n"
                       "}\n"
                       "kernel gemm(x: f32[M, K], W: %s[N, K]%s, b: f32[N]) -> y: f32[M, N] {\n"
                       "  y[m, n] = relu(sum(k) x[m, k] * W[n, k] + b[n])\n"
                       "}\n",
                       DSL_DIR, l->file, DSL_DIR, w, book, w, book);
    if (!l->vq && len > 0 && (size_t)len < n)
        snprintf(out + len, n - (size_t)len,
                 "kernel igemv(W: %s[N, K], xq: q8_0[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * xq[k] }\n", w);
}

/* ---- AArch64 assembly through the backend's emit hook ---- */

typedef struct a64 {
    qk_target t;
    void *state;
} a64;

static int a64_open(a64 *s, const char *name)
{
    char err[1024] = "";
    if (qk_target_named(name, &s->t) != 0)
        return -1;
    if (qk_backend_llvm.create(&s->t, &s->state, err, sizeof err) != 0) {
        fprintf(stderr, "\nbackend for %s: %s\n", name, err);
        return -1;
    }
    return 0;
}

static void a64_close(a64 *s)
{
    qk_backend_llvm.destroy(s->state);
}

/* Assembly of kernel kname of p for s's target (malloc'd), or NULL with
 * why. *dot: the tiled IR has integer dot products. */
static char *kernel_asm(const a64 *s, const kir_program *p, const char *kname, int *dot, char *why, size_t n)
{
    const kir_kernel *k = kir_find_kernel(p, kname);
    if (!k) {
        snprintf(why, n, "no kernel %s", kname);
        return NULL;
    }
    tir_config cfg;
    tir_default_config(&s->t, &cfg);
    tir_apply_schedule(k, &cfg);
    cfg.tile_par = cfg.tile_inner = cfg.unroll = 1; /* small tiles: the same instructions, less code to emit */
    qk_arena *a = qk_arena_new();
    char err[1024] = "";
    tir_func *f = tir_build(a, k, &s->t, &cfg, err, sizeof err);
    char *text = NULL;
    if (!f || tir_verify(f, err, sizeof err) != 0)
        snprintf(why, n, "tiled IR: %s", err);
    else {
        *dot = 0;
        for (int i = 0; i < f->nnodes; i++)
            *dot |= f->nodes[i].op == TIR_DOT4;
        qk_buf out = {0};
        if (qk_backend_llvm.emit(s->state, f, QK_EMIT_ASM, &out, err, sizeof err) == 0)
            text = qk_buf_take(&out);
        else
            snprintf(why, n, "emit: %s", err);
        qk_buf_free(&out);
    }
    qk_arena_free(a);
    return text;
}

/* 1 if the text has a NEON vector register with a .4s or .16b arrangement
 * ("v17.4s", "v3.16b"). */
static int has_neon(const char *s)
{
    for (const char *p = s; (p = strchr(p, 'v')); p++) {
        if (p > s && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
            continue;
        const char *q = p + 1;
        int d = 0;
        while (isdigit((unsigned char)*q))
            q++, d++;
        if (d >= 1 && d <= 2 && atoi(p + 1) < 32 && (strncmp(q, ".4s", 3) == 0 || strncmp(q, ".16b", 4) == 0))
            return 1;
    }
    return 0;
}

/* An x86 register or mnemonic in the text, or NULL. */
static const char *x86_word(const char *s)
{
    static const char *const words[] = {"%rax", "%rsp", "%rdi", "%xmm", "%ymm", "%zmm", "vpdpbusd", "vfmadd",
                                        "vmovups", "vpbroadcast", "movq\t%", "retq"};
    for (int i = 0; i < QK_COUNT(words); i++)
        if (strstr(s, words[i]))
            return words[i];
    return NULL;
}

static int has_insn(const char *s, const char *mnemonic)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\t%s\t", mnemonic);
    return strstr(s, pat) != NULL;
}

/* ---- tests ---- */

static void test_presets(void)
{
    qk_target t;
    CU_ASSERT_EQUAL(qk_target_named("aarch64", &t), 0);
    CU_ASSERT_STRING_EQUAL(t.name, "aarch64");
    CU_ASSERT_EQUAL(t.kind, QK_TARGET_CPU);
    CU_ASSERT_EQUAL(t.features, QK_FEAT_NEON);
    CU_ASSERT_EQUAL(t.vector_bits, 128);
    CU_ASSERT_EQUAL(t.vector_regs, 32);
    CU_ASSERT(t.l1 > 0 && t.l2 > t.l1 && t.l3 > t.l2 && t.line == 64 && t.cores >= 1);
    tir_config cfg;
    tir_default_config(&t, &cfg);
    CU_ASSERT_EQUAL(cfg.lanes, 4);
    CU_ASSERT_EQUAL(qk_target_named("aarch64+dotprod", &t), 0);
    CU_ASSERT_EQUAL(t.features, QK_FEAT_NEON | QK_FEAT_DOTPROD);
    CU_ASSERT_EQUAL(qk_target_named("aarch64+sve", &t), 0);
    CU_ASSERT_EQUAL(t.features, QK_FEAT_NEON | QK_FEAT_SVE);
    CU_ASSERT_EQUAL(t.vector_bits, 128);
    /* suffixes in any order; one canonical name */
    CU_ASSERT_EQUAL(qk_target_named("aarch64+sve+dotprod", &t), 0);
    CU_ASSERT_STRING_EQUAL(t.name, "aarch64+dotprod+sve");
    CU_ASSERT_EQUAL(t.features, QK_FEAT_NEON | QK_FEAT_DOTPROD | QK_FEAT_SVE);
    static const char *const bad[] = {"aarch64+", "aarch64+i8mm", "aarch64dotprod", "aarch64+dotprod+", "aarch64+sve2",
                                      "aarch64++sve"};
    for (int i = 0; i < QK_COUNT(bad); i++) {
        CU_ASSERT_EQUAL(qk_target_named(bad[i], &t), -1);
        if (qk_target_named(bad[i], &t) != -1)
            printf("\n  '%s' accepted\n", bad[i]);
    }
    char fp[512];
    CU_ASSERT_EQUAL(qk_target_named("aarch64+dotprod+sve", &t), 0);
    qk_target_fingerprint(&t, fp, sizeof fp);
    CU_ASSERT_PTR_NOT_NULL(strstr(fp, "neon,dotprod,sve"));
    /* the public API takes the names too */
    qkc_ctx *ctx = NULL;
    qkc_ctx_options o = {.target = "aarch64+dotprod"};
    CU_ASSERT_EQUAL(qkc_ctx_create(&o, &ctx), QKC_OK);
    CU_ASSERT_STRING_EQUAL(qkc_ctx_target(ctx), "aarch64+dotprod");
    qkc_ctx_destroy(ctx);
    o.target = "aarch64+avx2";
    CU_ASSERT_EQUAL(qkc_ctx_create(&o, &ctx), QKC_ERR_TARGET);
}

/* AArch64 presets run only on AArch64; x86 ones only on x86-64. */
static void test_runs_here(void)
{
    qk_target t;
    char why[256] = "";
    qk_target_host(&t);
    CU_ASSERT_EQUAL(qk_target_runs_here(&t, why, sizeof why), 1);
    CU_ASSERT_EQUAL(qk_target_named("aarch64+dotprod", &t), 0);
#if defined(__aarch64__)
    (void)why;
    CU_ASSERT_EQUAL(qk_target_named("x86-64-v3", &t), 0);
    CU_ASSERT_EQUAL(qk_target_runs_here(&t, why, sizeof why), 0);
#else
    CU_ASSERT_EQUAL(qk_target_runs_here(&t, why, sizeof why), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "aarch64+dotprod"));
    printf("\n  %s\n", why);
#endif
}

/* `qkc emit --target aarch64+dotprod --stage=asm examples/gemv_int8.qk`
 * through the public API: sdot and NEON, nothing of x86. */
static void test_example_asm(void)
{
    qkc_ctx *ctx = NULL;
    qkc_ctx_options o = {.target = "aarch64+dotprod", .tuning_db = "", .cache_dir = ""};
    CU_ASSERT_EQUAL_FATAL(qkc_ctx_create(&o, &ctx), QKC_OK);
    qkc_program *p = NULL;
    qkc_kernel *k = NULL;
    char *text = NULL;
    CU_ASSERT_EQUAL(qkc_program_create_file(ctx, QKC_SOURCE_DIR "/examples/gemv_int8.qk", &p), QKC_OK);
    if (p && qkc_kernel_get(p, "gemv", &k) == QKC_OK)
        CU_ASSERT_EQUAL(qkc_kernel_emit(k, "asm", &text), QKC_OK);
    if (!text)
        fprintf(stderr, "\n%s\n", qkc_errmsg(ctx));
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT(has_insn(text, "sdot"));
    CU_ASSERT(has_neon(text));
    CU_ASSERT_PTR_NULL(x86_word(text));
    int n = 0;
    for (const char *s = text; (s = strstr(s, "\tsdot\t")); s++)
        n++;
    printf("\n  examples/gemv_int8.qk on aarch64+dotprod: %d sdot\n", n);
    free(text);
    qkc_program_destroy(p);
    qkc_ctx_destroy(ctx);
}

/* Checks one kernel's assembly: no x86, NEON registers (when need_neon,
 * or when it has integer dots), sdot for its integer dots (when
 * want_sdot). 0 = pass, else prints why. */
static int check_asm(const a64 *s, const kir_program *p, const rtt_format *l, const char *kname, int need_neon,
                     int want_sdot, int *nsdot)
{
    char why[1024] = "";
    int dot = 0;
    char *text = kernel_asm(s, p, kname, &dot, why, sizeof why);
    const char *x86 = text ? x86_word(text) : NULL;
    int sdot = text && has_insn(text, "sdot");
    int neon = text && has_neon(text);
    if (text && !x86 && (neon || !need_neon) && (!dot || neon) && (!want_sdot || !dot || sdot)) {
        *nsdot += sdot;
        free(text);
        return 0;
    }
    if (!text)
        fprintf(stderr, "\n%s %s on %s: %s\n", l->name, kname, s->t.name, why);
    else
        fprintf(stderr, "\n%s %s on %s: %s\n", l->name, kname, s->t.name,
                x86 ? x86 : !neon ? "no NEON vector register" : "DOT4 without sdot");
    free(text);
    return 1;
}

/* Every format: GEMV and GEMM (f32 activations) and the q8_0-activation
 * GEMV, as AArch64 assembly. On aarch64+dotprod every DOT4 must become
 * sdot; on plain aarch64 (a few of those kernels) the widening fallback
 * must still be NEON code, without sdot.
 * (An int8 GEMV without an integer image, e.g. a table format, may be
 * scalar: two quantized operands of different blocks do not vectorize.) */
static void test_every_format_asm(void)
{
    load_library();
    CU_ASSERT_FATAL(nformats >= 20);
    static const char *const targets[] = {"aarch64+dotprod", "aarch64"};
    int failed = 0, nsdot = 0, kernels = 0, nplain = 0;
    int has_dot[MAX_FORMATS] = {0};
    for (int ti = 0; ti < 2; ti++) {
        a64 s;
        CU_ASSERT_EQUAL_FATAL(a64_open(&s, targets[ti]), 0);
        for (int i = 0; i < nformats; i++) {
            const rtt_format *l = &formats[i];
            char src[2048], why[1024];
            kernel_source(l, src, sizeof src);
            kir_program *p = compile_src(src, why, sizeof why);
            if (!p) {
                fprintf(stderr, "\n%s: %s\n", l->name, why);
                failed++;
                continue;
            }
            if (ti == 0) { /* with dotprod: every kernel; plain: the int8 one (widening) */
                failed += check_asm(&s, p, l, "gemv", 1, 1, &nsdot);
                failed += check_asm(&s, p, l, "gemm", 1, 1, &nsdot);
                kernels += 2;
            }
            int before = nsdot;
            if (!l->vq && (ti == 0 || (has_dot[i] && nplain++ < 4))) {
                failed += check_asm(&s, p, l, "igemv", 0, ti == 0, &nsdot);
                kernels++;
            }
            if (ti == 0)
                has_dot[i] = nsdot != before;
            else if (nsdot != before) {
                fprintf(stderr, "\n%s igemv: sdot on a target without dotprod\n", l->name);
                failed++;
            }
            kir_program_free(p);
        }
        a64_close(&s);
    }
    printf("\n  %d kernels of %d formats as AArch64 assembly; %d int8-activation GEMVs with sdot\n", kernels,
           nformats, nsdot);
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT(nsdot >= 20); /* every int/uint/offset/ternary/binary format but N:M */
}

/* ---- signed x signed dot products, run on the host ---- */

/* A host context whose builder sees a CPU with sdot and no vpdpbusd
 * (test hook: the target is patched before any kernel is built). Its
 * DOT4s are signed x signed and the host lowers them by widening. */
static qkc_ctx *sdot_host_ctx(void)
{
    qkc_ctx *ctx = NULL;
    qkc_ctx_options o = {.threads = 2, .tuning_db = "", .cache_dir = ""};
    if (qkc_ctx_create(&o, &ctx) != QKC_OK)
        return NULL;
    ctx->target.features &= ~(unsigned)(QK_FEAT_AVX512VNNI | QK_FEAT_AVXVNNI);
    ctx->target.features |= QK_FEAT_DOTPROD;
    snprintf(ctx->target.name, sizeof ctx->target.name, "host"); /* the JIT's own CPU */
    return ctx;
}

static int64_t dim_of(const char *name, int64_t K)
{
    return strcmp(name, "K") == 0 ? K : strcmp(name, "N") == 0 ? 37 : strcmp(name, "M") == 0 ? 3 : 0;
}

/* Runs kernel kname of src against the reference; 0 = pass. *ss: the
 * tiled IR has signed x signed DOT4s. */
static int run_ss(qkc_ctx *ctx, const char *src, const char *kname, const char *config, int64_t K, int *ss,
                  char *why, size_t n)
{
    qkc_program *p = NULL;
    qkc_kernel *k = NULL;
    qkc_kernel_options ko = {.config = config};
    if (qkc_program_create(ctx, src, "ss.qk", &p) != QKC_OK || qkc_kernel_get_ex(p, kname, &ko, &k) != QKC_OK) {
        snprintf(why, n, "compile: %s", qkc_errmsg(ctx));
        qkc_program_destroy(p);
        return 1;
    }
    const tir_func *f = k->entry->f;
    *ss = 0;
    for (int i = 0; i < f->nnodes; i++)
        *ss |= f->nodes[i].op == TIR_DOT4 && f->nodes[i].imm == TIR_DOT_SS;
    int64_t dims[8] = {0};
    for (int i = 0; i < qkc_kernel_ndims(k) && i < 8; i++)
        dims[i] = dim_of(qkc_kernel_dim_name(k, i), K);
    rtt_rng r = {0xa64 + (uint64_t)K};
    rtt_args a;
    qkc_launch_options o = {.threads = 2};
    int bad = 1;
    if (rtt_args_make(p, k, dims, &r, &a, why, n) != 0)
        ;
    else if (qkc_reference(k, a.ref, a.n) != QKC_OK)
        snprintf(why, n, "reference: %s", qkc_errmsg(ctx));
    else if (qkc_launch(k, a.t, a.n, &o) != QKC_OK)
        snprintf(why, n, "launch: %s", qkc_errmsg(ctx));
    else
        bad = rtt_compare(&a, why, n);
    rtt_args_free(&a);
    qkc_program_destroy(p);
    return bad;
}

/* 1 (and why, on stderr) unless src's kernel gemv, built with cfg, uses
 * signed x signed dots and matches the reference at K = 2 * 256 + 37. */
static int ss_gemv_fails(qkc_ctx *ctx, const char *src, const char *cfg, const char *label)
{
    char why[1024];
    int ss = 0;
    if (!run_ss(ctx, src, "gemv", cfg, 2 * 256 + 37, &ss, why, sizeof why) && ss)
        return 0;
    fprintf(stderr, "\n%s ('%s', signed x signed): %s\n", label, cfg, ss ? why : "no signed x signed DOT4");
    return 1;
}

/* Every format with an integer image times int8 activations (q8_0 in a
 * GEMV, per-row int8 in a GEMM), signed x signed: 8-bit unsigned and
 * signed codes are re-signed (u ^ 0x80, +128 folded into the offset),
 * narrower ones read as they are. Ragged K: tail blocks too. Then a
 * table whose integer image takes three bytes. */
static void test_signed_dot_exact(void)
{
    load_library();
    qkc_ctx *ctx = sdot_host_ctx();
    CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
    int failed = 0, nss = 0, nrp = 0;
    for (int i = 0; i < nformats; i++) {
        const rtt_format *l = &formats[i];
        if (l->vq)
            continue;
        char src[2048], why[1024];
        snprintf(src, sizeof src,
                 "import \"%s/%s\"\nimport \"%s/ggml.qk\"\nimport \"%s/ternary.qk\"\n"
                 "kernel gemv(W: %s[N, K], xq: q8_0[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * xq[k] }\n"
                 "kernel gemm(xq: act_i8_row[M, K], W: %s[N, K]) -> y: f32[M, N] { y[m, n] = sum(k) xq[m, k] * W[n, k] }\n",
                 DSL_DIR, l->file, DSL_DIR, DSL_DIR, l->name, l->name);
        int64_t B = l->block > 128 ? l->block : 128, K = 2 * B + 37;
        static const char *const kn[] = {"gemv", "gemm"};
        static const char *const cfg[] = {"idot_bytes=16 kblocks=2 tile_par=1", "idot_bytes=16 tile_par=1 tile_inner=2"};
        int any = 0;
        for (int g = 0; g < 2; g++) {
            int ss = 0;
            if (run_ss(ctx, src, kn[g], cfg[g], K, &ss, why, sizeof why)) {
                fprintf(stderr, "\n%s %s (signed x signed): %s\n", l->name, kn[g], why);
                failed++;
            }
            any |= ss;
            /* the same with row-interleaved weights (sdot's 4 rows per 128 bits);
             * a format without the layout is refused with a reason, never run */
            if (run_ss(ctx, src, kn[g], g ? "repack=4 tile_inner=2" : "repack=4", K, &ss, why, sizeof why)) {
                if (!strstr(why, "compile: ") || !strstr(why, "repack=4: ")) {
                    fprintf(stderr, "\n%s %s (signed x signed, repack=4): %s\n", l->name, kn[g], why);
                    failed++;
                }
            } else if (g == 0)
                nrp++;
        }
        if (any) {
            printf("%s%s", nss ? " " : "\n  signed x signed DOT4, exact: ", l->name);
            nss++;
        }
    }
    printf(" (%d formats; %d of them also row-interleaved)\n", nss, nrp);
    /* an integer image of three bytes (tdec_image.planes), bytes 0 and 1
     * reaching 128 and more: each byte re-signed, 128 * 256^p folded into
     * the offset; in blocks of 32 and 256, own layout and repack=4 */
    for (int b = 0; b < 2; b++) {
        char src[1024], why[1024];
        snprintf(src, sizeof src,
                 "import \"%s/ggml.qk\"\n"
                 "format w3 { code = table [-99999, -70000, -32768, -255, -128, -1, 0, 1, 127, 128, 200, 255, 40000,"
                 " 65535, 77777, 99999]; block = %d; scale = f16 }\n"
                 "kernel gemv(W: w3[N, K], xq: q8_0[K]) -> y: f32[N] { y[n] = sum(k) W[n, k] * xq[k] }\n",
                 DSL_DIR, b ? 256 : 32);
        snprintf(why, sizeof why, "w3 (blocks of %d)", b ? 256 : 32);
        failed += ss_gemv_fails(ctx, src, "idot_bytes=16 kblocks=2 tile_par=1", why);
        failed += ss_gemv_fails(ctx, src, "repack=4", why);
    }
    /* k-quant sub-mins summed as dots of their row-interleaved words
     * (rowpack_mins), signed x signed: q2_K's 4-bit ones (bytes below 16
     * read alike as signed), and 8-bit ones under 4-bit codes, which sdot
     * would read as negative (they take the per-group multiply instead);
     * x in int8 blocks of 256 */
    static const char *const kq[] = {"q2_K", "w8"};
    for (int b = 0; b < 2; b++) {
        char src[1024], why[1024];
        snprintf(src, sizeof src,
                 "import \"%s/ggml.qk\"\n"
                 "format xb { code = int8; block = 256; scale = f32 }\n"
                 "format w8 { code = uint4; block = 256; scale = f16 * uint8 per 16; min = -f16 * uint8 }\n"
                 "kernel gemv(W: %s[N, K], x: f32[K]) -> y: f32[N] {\n"
                 "  xq[k] = quantize(x[k], xb)\n  y[n] = sum(k) W[n, k] * xq[k]\n}\n",
                 DSL_DIR, kq[b]);
        snprintf(why, sizeof why, "%s (x in blocks of 256)", kq[b]);
        failed += ss_gemv_fails(ctx, src, "repack=4", why);
    }
    qkc_ctx_destroy(ctx);
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT(nss >= 20);
    CU_ASSERT(nrp >= 20);
}

/* ---- no backend names a format ---- */

static int ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* 1 if word occurs in text as a whole identifier (case-insensitive):
 * "q4_0" in "a q4_0 block" or "Q4_0:", not in "q4_0x" or "xq4_0". */
static int names_word(const char *text, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = text; *p; p++)
        if (strncasecmp(p, word, n) == 0 && (p == text || !ident_char(p[-1])) && !ident_char(p[n]))
            return 1;
    return 0;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    qk_buf b = {0};
    char chunk[4096];
    for (size_t n; (n = fread(chunk, 1, sizeof chunk, f)) > 0;)
        qk_buf_printf(&b, "%.*s", (int)n, chunk);
    fclose(f);
    return qk_buf_take(&b);
}

/* Scans the C sources under dir (recursively) for format names; returns
 * the number of hits (printed) and counts the files. */
static int scan_dir(const char *dir, int *nfiles)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int hits = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            hits += scan_dir(path, nfiles);
            continue;
        }
        size_t len = strlen(e->d_name);
        if (len < 3 || (strcmp(e->d_name + len - 2, ".c") != 0 && strcmp(e->d_name + len - 2, ".h") != 0))
            continue;
        char *text = read_all(path);
        (*nfiles)++;
        for (int i = 0; text && i < nformats; i++)
            if (names_word(text, formats[i].name)) {
                fprintf(stderr, "\n%s names the format %s\n", path, formats[i].name);
                hits++;
            }
        free(text);
    }
    closedir(d);
    return hits;
}

static void test_backends_name_no_format(void)
{
    load_library();
    CU_ASSERT_FATAL(nformats >= 20);
    /* the matcher finds names and only whole ones */
    CU_ASSERT(names_word("decode a Q4_0 block", "q4_0"));
    CU_ASSERT(names_word("q4_K", "q4_K"));
    CU_ASSERT(!names_word("q4_0x xq4_0 q4_01", "q4_0"));
    CU_ASSERT(!names_word("xnor_popcount(nf4x)", "xnor") && !names_word("nf4x", "nf4"));
    int nfiles = 0;
    int hits = scan_dir(QKC_SOURCE_DIR "/backends", &nfiles);
    printf("\n  %d files in backends/ scanned for %d format names\n", nfiles, nformats);
    CU_ASSERT(nfiles >= 8);
    CU_ASSERT_EQUAL(hits, 0);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("aarch64", NULL, NULL);
    CU_add_test(s, "aarch64 presets", test_presets);
    CU_add_test(s, "code for another architecture never runs", test_runs_here);
    CU_add_test(s, "examples/gemv_int8.qk: sdot through the public API", test_example_asm);
    CU_add_test(s, "every dsl/ format as AArch64 NEON assembly", test_every_format_asm);
    CU_add_test(s, "signed x signed integer dots: exact on the host", test_signed_dot_exact);
    CU_add_test(s, "no backend file names a format", test_backends_name_no_format);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}
