/* util.c — helpers shared by the qkc commands: a portable PRNG
 * (splitmix64), strict number parsing, file I/O, loading a program with
 * its diagnostics printed. */
#include "cli/cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t cli_rng_next(cli_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi] from the top 53 bits. */
double cli_rng_uniform(cli_rng *r, double lo, double hi)
{
    double u = (double)(cli_rng_next(r) >> 11) * (1.0 / 9007199254740991.0);
    return lo + (hi - lo) * u;
}

int cli_parse_i64(const char *s, int64_t *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("qkc: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_load(const char *path, const char *target, int threads, qkc_ctx **ctx, qkc_program **prog)
{
    *prog = NULL;
    qkc_ctx_options o = {.target = target, .threads = threads};
    qkc_status st = qkc_ctx_create(&o, ctx);
    if (st != QKC_OK)
        return st == QKC_ERR_TARGET ? cli_error("unknown target '%s' (targets: host, x86-64-v3, x86-64-v4, aarch64[+dotprod][+sve], sm_80, sm_90)", target)
                                    : cli_error("cannot create a context: %s", qkc_strerror(st));
    st = qkc_program_create_file(*ctx, path, prog);
    if (*prog)
        fputs(qkc_program_diagnostics_text(*prog), stderr);
    if (st == QKC_ERR_COMPILE)
        return 1;
    if (st != QKC_OK)
        return cli_error("%s", qkc_errmsg(*ctx));
    return 0;
}

/* cli.h: beyond 3 x L3 and the probe's 256 MiB DRAM working set. */
int cli_cold_copies(double set_bytes, int64_t l3, int max)
{
    double span = 3.0 * (double)(l3 > 0 ? l3 : 32 << 20);
    span = span > 256.0 * (1 << 20) ? span : 256.0 * (1 << 20);
    double want = ceil(span / (set_bytes > 1 ? set_bytes : 1)) + 1;
    return want < 2 ? 2 : want > max ? max : (int)want;
}

/* Tensors start on a cache line: glibc's large malloc() returns 16 mod 64,
 * and every 64-byte vector load of such weights then spans two lines,
 * which costs a core up to half its DRAM read rate (docs/performance.md,
 * "Weights on a cache line"). Free with free(). */
void *cli_alloc(size_t n)
{
    size_t line = 64, r = (n ? n : 1) + line - 1;
    return r < n ? NULL : aligned_alloc(line, r / line * line);
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int cli_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return cli_error("cannot write '%s': %s", path, strerror(errno));
    size_t w = fwrite(data, 1, n, f);
    int bad = fclose(f) != 0 || w != n;
    return bad ? cli_error("cannot write '%s': %s", path, strerror(errno)) : 0;
}

void *cli_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    *n = len;
    return buf;
}

size_t cli_dtype_size(qkc_dtype t)
{
    switch (t) {
    case QKC_F32: case QKC_I32: return 4;
    case QKC_F16: case QKC_BF16: return 2;
    default: return 1;
    }
}

const char *cli_dtype_name(qkc_dtype t)
{
    static const char *const names[] = {"f32", "f16", "bf16", "i8", "i32", "u8"};
    return t >= QKC_F32 && t <= QKC_U8 ? names[t] : t == QKC_PACKED ? "packed" : "?";
}

void cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

int cli_isatty(FILE *f)
{
    return isatty(fileno(f));
}
