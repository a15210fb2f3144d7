/* test_fuzz_frontend.c — a deterministic mutation fuzzer for the frontend.
 * Mutates the sources of examples/, dsl/ and tests/diag/ (byte flips,
 * deletions, token insertions, duplications, splices) and compiles each
 * result, checking that the frontend never crashes and that it keeps its
 * contract: NULL comes with at least one error, a program with none, and
 * every kernel of a program passes kir_verify.
 *
 *   QKC_FUZZ_ITERS  number of mutants (default 3000)
 *   QKC_SEED        seed to replay (default 20240917; printed either way)
 * A failing mutant is written to /tmp/qkc_fuzz_fail.qk. */
#include "frontend/frontend.h"

#include <CUnit/Basic.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#ifndef QKC_SOURCE_DIR
#define QKC_SOURCE_DIR "."
#endif

typedef struct corpus_file {
    char *path, *text;
    size_t len;
} corpus_file;

static corpus_file corpus[512];
static int ncorpus;

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static size_t below(size_t n)
{
    return n ? (size_t)(rnd() % n) : 0;
}

static void load_dir(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", QKC_SOURCE_DIR, dir);
    DIR *d = opendir(path);
    if (!d)
        return;
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t l = strlen(e->d_name);
        if (l > 3 && strcmp(e->d_name + l - 3, ".qk") == 0)
            names[n++] = qk_xstrdup(e->d_name);
    }
    closedir(d);
    for (int i = 0; i < n; i++) { /* sort: readdir order must not change the run */
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    }
    for (int i = 0; i < n && ncorpus < QK_COUNT(corpus); i++) {
        corpus_file *c = &corpus[ncorpus];
        snprintf(path, sizeof path, "%s/%s/%s", QKC_SOURCE_DIR, dir, names[i]);
        c->text = qk_read_file(path, &c->len);
        c->path = qk_xstrdup(path);
        ncorpus += c->text != NULL;
        free(names[i]);
    }
}

static const char *const snippets[] = {
    "[", "]", "(", ")", "{", "}", ",", ";", ":", "=", "+", "-", "*", "/", "->", "\n", " ", "#", "//", "\"",
    "sum(k) ", "sum(k, k)", "kernel ", "format ", "schedule ", "import ", "import ggml\n", "tile n = 4",
    "parallel k", "unroll 0", "code = int9", "block = 0", "offset 300", "scale = f16", "zero = u8", "x[k]",
    "W[n, k + 1]", "relu(", "max(1)", "f16(", "99999999999999999999999", "1e999", "0", "1.5e-3", "K-2",
    "n", "k", "t[i, j] = ", "y[] = 1", "\0", "\xff\xfe", "\xc3\xa9", "@", "\t", "\r\n", "2 * n + 1",
    "-(-(-1))", "q4_0", "f32", "u8", "[A, B, C, D, E, F, G, H, I]",
    "quantize(x[k], q8_0)", "hadamard(x[k], k, 16, 7)", "quantize(", "hadamard(", "layout { ", "layout {}",
    "codes interleave 16", "codes[0:160] base3 32", "bits 4:5", " at 3 shift 4", "per 32", " * uint6", "per row",
    "sparse = 2:4", "code = vq8 dim 8 books 2 signs", "table [1, -1]", "(C)", "pad 2", "min = -f16", "zero = 7.5",
    "e2m1", "nf4", "ternary", "codebook = f32", "tensor_scale = f32", "subscale[4:8]",
};

/* One random edit of buf (len bytes, capacity cap). */
static size_t mutate_once(char *buf, size_t len, size_t cap)
{
    size_t pos = below(len + 1);
    switch (below(6)) {
    case 0: /* flip a byte */
        if (len)
            buf[below(len)] ^= (char)(1u << below(8));
        return len;
    case 1: { /* delete a range */
        size_t n = below(len - pos < 16 ? len - pos + 1 : 17);
        memmove(buf + pos, buf + pos + n, len - pos - n);
        return len - n;
    }
    case 2:
    case 3: { /* insert a snippet */
        const char *s = snippets[below(QK_COUNT(snippets))];
        size_t n = s[0] ? strlen(s) : 1;
        if (len + n > cap)
            return len;
        memmove(buf + pos + n, buf + pos, len - pos);
        memcpy(buf + pos, s, n);
        return len + n;
    }
    case 4: { /* duplicate a range */
        size_t n = below(len - pos < 64 ? len - pos + 1 : 65);
        if (len + n > cap)
            return len;
        memmove(buf + pos + n, buf + pos, len - pos);
        return len + n;
    }
    default: { /* splice a piece of another file */
        const corpus_file *o = &corpus[below((size_t)ncorpus)];
        size_t from = below(o->len), n = below(o->len - from < 80 ? o->len - from + 1 : 81);
        if (len + n > cap)
            return len;
        memmove(buf + pos + n, buf + pos, len - pos);
        memcpy(buf + pos, o->text + from, n);
        return len + n;
    }
    }
}

/* Compiles one input; returns 1 when the frontend kept its contract. */
static int run_one(const char *src, size_t len, const char *name)
{
    qk_diags d;
    qk_diags_init(&d);
    kir_program *p = qk_frontend_compile(src, len, name, NULL, &d);
    int good = p ? d.nerrors == 0 : d.nerrors > 0;
    for (int i = 0; p && i < p->nkernels; i++) {
        char err[256];
        if (kir_verify(p->kernels[i], err, sizeof err) != 0) {
            fprintf(stderr, "\nkir_verify: %s\n", err);
            good = 0;
        }
    }
    qk_buf out = {0};
    qk_diags_render(&d, &out);
    if (p)
        kir_print_program(p, &out);
    qk_buf_free(&out);
    kir_program_free(p);
    qk_diags_free(&d);
    return good;
}

static void save_failure(const char *buf, size_t len)
{
    FILE *f = fopen("/tmp/qkc_fuzz_fail.qk", "wb");
    if (f) {
        fwrite(buf, 1, len, f);
        fclose(f);
    }
}

static void test_mutants(void)
{
    const char *s = getenv("QKC_SEED"), *it = getenv("QKC_FUZZ_ITERS");
    uint64_t seed = s ? strtoull(s, NULL, 0) : 20240917;
    long iters = it ? strtol(it, NULL, 0) : 3000;
    printf("\n  fuzz: seed %llu, %ld iterations (replay with QKC_SEED=%llu)\n", (unsigned long long)seed, iters,
           (unsigned long long)seed);
    CU_ASSERT_FATAL(ncorpus > 0);
    rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
    int bad = 0;
    for (long i = 0; i < iters && bad < 5; i++) {
        const corpus_file *c = &corpus[below((size_t)ncorpus)];
        size_t cap = c->len * 2 + 512, len = c->len;
        char *buf = qk_xmalloc(cap);
        memcpy(buf, c->text, len);
        for (int m = 1 + (int)below(4); m > 0; m--)
            len = mutate_once(buf, len, cap);
        if (!run_one(buf, len, c->path)) {
            fprintf(stderr, "\nfuzz: contract broken at iteration %ld (seed %llu), from %s\n", i,
                    (unsigned long long)seed, c->path);
            save_failure(buf, len);
            bad++;
        }
        free(buf);
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* Inputs built to hit limits: deep nesting, long chains, every byte. */
static void test_extremes(void)
{
    qk_buf b = {0};
    qk_buf_puts(&b, "kernel k(x: f32[N]) -> y: f32[N] { y[n] = ");
    for (int i = 0; i < 100000; i++)
        qk_buf_puts(&b, i % 3 ? "(" : "-");
    CU_ASSERT(run_one(b.s, b.len, "deep.qk"));
    qk_buf_free(&b);
    qk_buf_puts(&b, "kernel k(x: f32[N]) -> y: f32[N] { y[n] = x[n]");
    for (int i = 0; i < 50000; i++)
        qk_buf_puts(&b, " * x[n]");
    qk_buf_puts(&b, " }");
    CU_ASSERT(run_one(b.s, b.len, "long.qk"));
    qk_buf_free(&b);
    qk_buf_puts(&b, "kernel k(x: f32[N]) -> y: f32[N] { y[n] = x[n]");
    for (int i = 0; i < 150; i++)
        qk_buf_printf(&b, " + sum(k%d) x[k%d]", i, i);
    qk_buf_puts(&b, " }");
    CU_ASSERT(run_one(b.s, b.len, "sums.qk"));
    qk_buf_free(&b);
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    CU_ASSERT(run_one(all, sizeof all, "bytes.qk"));
    CU_ASSERT(run_one("", 0, "empty.qk"));
    CU_ASSERT(run_one("kernel", 6, NULL));
}

int main(void)
{
    load_dir("examples");
    load_dir("dsl");
    load_dir("tests/diag");
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("fuzz frontend", NULL, NULL);
    CU_add_test(s, "extreme inputs", test_extremes);
    CU_add_test(s, "mutants", test_mutants);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    for (int i = 0; i < ncorpus; i++) {
        free(corpus[i].path);
        free(corpus[i].text);
    }
    return failures != 0;
}
