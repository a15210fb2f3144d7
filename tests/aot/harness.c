/* harness.c — a generic command-line driver for kernels built ahead of
 * time by `qkc build`, used by the AOT tests (native and under qemu).
 *
 * Compiled with -DQKC_AOT_LIST=<prefix>_kernels together with the object
 * `qkc build` wrote and libqkc_rt; the object defines the NULL-terminated
 * list `const qkc_aot_kernel *const <prefix>_kernels[]`. Only qkc_aot.h
 * is included (not the generated header), so one harness serves every
 * build. Plain C11, no compiler library: it cross-compiles for aarch64.
 *
 *   harness list
 *       one line per kernel: "NAME ISA,ISA,... selected=ISA" (none when
 *       no version runs here; the reason on stderr)
 *   harness run KERNEL IN OUT [--threads N]
 *       IN:  int64 ndims, ndims int64 dims, then per param: int64 nbytes
 *            and its bytes (packed bytes, or dense row-major data)
 *       OUT: per result: int64 nbytes and its bytes (row-major)
 *       strides are 0 (row-major); prints "selected=ISA"; --threads N
 *       runs on a qkc_rt_pool of N threads (0: one per core). Packed
 *       params go through qkc_rt_repack first (prints "repack=NAME:R"
 *       where the running version reads NAME row-interleaved)
 *   harness pack KERNEL TENSOR IN OUT
 *       IN:  int64 rank, rank int64 shape, the f32 values, then optionally
 *            int64 nbytes and the codebook (nbytes 0: none)
 *       OUT: the packed bytes (qkc_rt_pack; as many as
 *            qkc_rt_packed_bytes says), then int64 nbytes and the f32
 *            values qkc_rt_unpack decodes from them
 *   harness badargs KERNEL
 *       calls the kernel with a negative dim, a NULL result, bad strides,
 *       another ABI and a NULL argv, each from a valid-looking call, and
 *       the packers with a short buffer, a negative extent, NULL, a dense
 *       tensor and a damaged format image;
 *       prints every status and message; exits 0 only if each returned
 *       the status qkc_aot.h documents for it (never QKC_RT_OK)
 *
 * All integers and floats in the files are little-endian. Exit status:
 * 0 success, 1 failure (the message on stderr), 2 usage. */
#include "qkc_aot.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef QKC_AOT_LIST
#error "compile with -DQKC_AOT_LIST=<prefix>_kernels (the list `qkc build` defines)"
#endif

extern const qkc_aot_kernel *const QKC_AOT_LIST[];

/* ---- files ---- */

typedef struct reader {
    FILE *f;
    const char *path;
    int failed;
} reader;

static int read_bytes(reader *r, void *p, size_t n)
{
    if (!r->failed && n && fread(p, 1, n, r->f) != n)
        r->failed = 1;
    return r->failed ? -1 : 0;
}

static int64_t read_i64(reader *r)
{
    unsigned char b[8] = {0};
    read_bytes(r, b, 8);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | b[i];
    return (int64_t)v;
}

/* 1 if the file has no more bytes. */
static int at_end(reader *r)
{
    int c = fgetc(r->f);
    if (c == EOF)
        return 1;
    ungetc(c, r->f);
    return 0;
}

static void write_i64(FILE *f, int64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)v >> (8 * i));
    fwrite(b, 1, 8, f);
}

/* f32 values from/to little-endian bytes (the host may be either). */
static void f32_from_le(float *dst, const unsigned char *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 | (uint32_t)src[4 * i + 2] << 16 |
                     (uint32_t)src[4 * i + 3] << 24;
        memcpy(&dst[i], &u, 4);
    }
}

static void write_f32(FILE *f, const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        unsigned char b[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                              (unsigned char)(u >> 24)};
        fwrite(b, 1, 4, f);
    }
}

/* Prints "harness: message" to stderr; returns 1. */
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "harness: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

/* ---- kernels ---- */

static const qkc_aot_kernel *find_kernel(const char *name)
{
    for (int i = 0; QKC_AOT_LIST[i]; i++)
        if (strcmp(QKC_AOT_LIST[i]->name, name) == 0)
            return QKC_AOT_LIST[i];
    return NULL;
}

static int64_t extent(qkc_aot_dim d, const int64_t *dims)
{
    return (d.sym >= 0 ? dims[d.sym] : 0) + d.c;
}

/* Extents of tensor t into ext; the element count, -1 if negative or
 * too large. */
static int64_t tensor_extents(const qkc_aot_tensor *t, const int64_t *dims, int64_t *ext)
{
    int64_t n = 1;
    for (int64_t d = 0; d < t->rank; d++) {
        ext[d] = extent(t->dims[d], dims);
        if (ext[d] < 0 || (ext[d] && n > INT64_MAX / 4 / ext[d]))
            return -1;
        n *= ext[d];
    }
    return n;
}

/* Bytes of param/result i for dims: packed size, or dense elements. */
static int64_t tensor_bytes(const qkc_aot_kernel *k, int i, const int64_t *dims)
{
    const qkc_aot_tensor *t = &k->tensors[i];
    int64_t ext[QKC_AOT_MAX_RANK];
    int64_t n = tensor_extents(t, dims, ext);
    if (n < 0)
        return -1;
    if (t->format)
        return qkc_rt_packed_bytes(k, i, ext);
    return n > INT64_MAX / t->elem_bytes ? -1 : n * t->elem_bytes;
}

/* ---- list ---- */

static int cmd_list(void)
{
    for (int i = 0; QKC_AOT_LIST[i]; i++) {
        const qkc_aot_kernel *k = QKC_AOT_LIST[i];
        printf("%s ", k->name);
        for (int64_t v = 0; v < k->nvariants; v++)
            printf("%s%s", v ? "," : "", k->variants[v].isa);
        char err[1024] = "";
        const qkc_aot_variant *sel = qkc_rt_select(k, err, sizeof err);
        printf(" selected=%s\n", sel ? sel->isa : "none");
        if (!sel)
            fprintf(stderr, "harness: %s: %s\n", k->name, err);
    }
    return 0;
}

/* ---- run ---- */

typedef struct buffers {
    int n;
    void **p;
    int64_t *bytes;
} buffers;

static void buffers_free(buffers *b)
{
    for (int i = 0; i < b->n; i++)
        free(b->p[i]);
    free(b->p);
    free(b->bytes);
}

/* Reads ndims, the dims and every param from IN. */
static int read_inputs(const qkc_aot_kernel *k, reader *r, int64_t *dims, buffers *b)
{
    int64_t nd = read_i64(r);
    if (r->failed)
        return fail("%s: no dim count", r->path);
    if (nd != k->ndims)
        return fail("%s: %lld dims, kernel '%s' has %lld", r->path, (long long)nd, k->name, (long long)k->ndims);
    for (int64_t s = 0; s < nd; s++)
        dims[s] = read_i64(r);
    for (int i = 0; i < k->nparams; i++) {
        int64_t nb = read_i64(r), want = tensor_bytes(k, i, dims);
        if (r->failed || nb != want || nb < 0) {
            fprintf(stderr, "harness: %s: param %d '%s': %lld bytes, the kernel needs %lld for these dims\n", r->path,
                    i, k->tensors[i].name, (long long)nb, (long long)want);
            return 1;
        }
        b->bytes[i] = nb;
        b->p[i] = malloc((size_t)nb + 1);
        if (!b->p[i] || read_bytes(r, b->p[i], (size_t)nb) != 0)
            return fail("%s: param '%s' is cut short", r->path, k->tensors[i].name);
    }
    return 0;
}

/* Zero-filled results, row-major. */
static int alloc_results(const qkc_aot_kernel *k, const int64_t *dims, buffers *b)
{
    for (int i = (int)k->nparams; i < b->n; i++) {
        b->bytes[i] = tensor_bytes(k, i, dims);
        b->p[i] = b->bytes[i] >= 0 ? calloc(1, (size_t)b->bytes[i] + 1) : NULL;
        if (!b->p[i])
            return fail("result '%s' cannot be allocated for these dims", k->tensors[i].name);
    }
    return 0;
}

static int write_results(const qkc_aot_kernel *k, const char *path, const buffers *b)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return fail("cannot write %s", path);
    for (int i = (int)k->nparams; i < b->n; i++) {
        write_i64(f, b->bytes[i]);
        fwrite(b->p[i], 1, (size_t)b->bytes[i], f);
    }
    return fclose(f) == 0 ? 0 : fail("cannot write %s", path);
}

/* Launches k on the buffers (strides 0), on a pool of threads if >= 0
 * (0: one per core), else on this thread. */
static int launch(const qkc_aot_kernel *k, const int64_t *dims, const buffers *b, int threads)
{
    int nio = (int)(k->nparams + k->nresults);
    qkc_aot_arg *argv = calloc((size_t)(nio + k->ndims + k->nstrides + 1), sizeof *argv);
    qkc_rt_pool *pool = threads >= 0 ? qkc_rt_pool_new(threads) : NULL;
    if (!argv || (threads >= 0 && !pool))
        return fail("out of memory");
    for (int i = 0; i < nio; i++)
        argv[i].p = b->p[i];
    for (int64_t s = 0; s < k->ndims; s++)
        argv[nio + s].i = dims[s];
    char err[2048] = "";
    qkc_rt_opts o = {pool, NULL, err, sizeof err};
    int st = qkc_rt_launch(k, argv, &o);
    if (st != QKC_RT_OK)
        fprintf(stderr, "harness: %s: status %d: %s\n", k->name, st, err);
    qkc_rt_pool_free(pool);
    free(argv);
    return st == QKC_RT_OK ? 0 : 1;
}

/* Prints "selected=ISA" (none: the reason on stderr, and 1). */
static int report_selection(const qkc_aot_kernel *k)
{
    char err[2048] = "";
    const qkc_aot_variant *v = qkc_rt_select(k, err, sizeof err);
    printf("selected=%s\n", v ? v->isa : "none");
    fflush(stdout);
    return v ? 0 : fail("%s: %s", k->name, err);
}

/* Converts each quantized param to the layout the running version reads
 * (qkc_rt_repack: row-interleaved, or a copy of the format's bytes), as a
 * program built with `qkc build --layout any` does; prints "repack=NAME:R"
 * for each param that version reads row-interleaved. */
static int repack_inputs(const qkc_aot_kernel *k, const int64_t *dims, buffers *b)
{
    const qkc_aot_variant *v = qkc_rt_select(k, NULL, 0);
    for (int i = 0; i < k->nparams; i++) {
        const qkc_aot_tensor *t = &k->tensors[i];
        int64_t ext[QKC_AOT_MAX_RANK];
        if (!t->format || tensor_extents(t, dims, ext) < 0)
            continue;
        if (k->abi >= 2 && v && k->variant_repack[3 * (v - k->variants)] == i)
            printf("repack=%s:%lld\n", t->name, (long long)k->variant_repack[3 * (v - k->variants) + 1]);
        int64_t nb = qkc_rt_repacked_bytes(k, i, ext);
        void *dst = nb >= 0 ? malloc((size_t)nb + 1) : NULL;
        char err[1024] = "";
        int st = dst ? qkc_rt_repack(k, i, b->p[i], b->bytes[i], ext, dst, nb, err, sizeof err) : QKC_RT_ERR_NOMEM;
        if (st != QKC_RT_OK) {
            free(dst);
            return fail("repack '%s': status %d: %s", t->name, st, err);
        }
        free(b->p[i]);
        b->p[i] = dst;
        b->bytes[i] = nb;
    }
    fflush(stdout);
    return 0;
}

static int cmd_run(const qkc_aot_kernel *k, const char *in, const char *out, int threads)
{
    if (report_selection(k) != 0)
        return 1;
    reader r = {fopen(in, "rb"), in, 0};
    if (!r.f)
        return fail("cannot read %s", in);
    int nio = (int)(k->nparams + k->nresults);
    int64_t *dims = calloc((size_t)k->ndims + 1, sizeof *dims);
    buffers b = {nio, calloc((size_t)nio + 1, sizeof(void *)), calloc((size_t)nio + 1, sizeof(int64_t))};
    int rc = !dims || !b.p || !b.bytes ? fail("out of memory") : 0;
    if (rc == 0)
        rc = read_inputs(k, &r, dims, &b);
    fclose(r.f);
    if (rc == 0)
        rc = repack_inputs(k, dims, &b);
    if (rc == 0)
        rc = alloc_results(k, dims, &b);
    if (rc == 0)
        rc = launch(k, dims, &b, threads);
    if (rc == 0)
        rc = write_results(k, out, &b);
    buffers_free(&b);
    free(dims);
    return rc;
}

/* ---- pack ---- */

typedef struct pack_in {
    int64_t shape[QKC_AOT_MAX_RANK];
    int64_t n;       /* values */
    float *src;
    void *book;      /* NULL when none */
} pack_in;

static int read_pack_in(const qkc_aot_tensor *t, reader *r, pack_in *p)
{
    int64_t rank = read_i64(r);
    if (r->failed || rank != t->rank)
        return fail("%s: the rank must be that of tensor '%s'", r->path, t->name);
    p->n = 1;
    for (int64_t d = 0; d < rank; d++) {
        p->shape[d] = read_i64(r);
        if (p->shape[d] < 0 || (p->shape[d] && p->n > INT64_MAX / 4 / p->shape[d]))
            return fail("%s: bad shape", r->path);
        p->n *= p->shape[d];
    }
    unsigned char *raw = malloc((size_t)p->n * 4 + 1);
    p->src = malloc((size_t)p->n * 4 + 1);
    if (!raw || !p->src || read_bytes(r, raw, (size_t)p->n * 4) != 0) {
        free(raw);
        return fail("%s: the f32 values are cut short", r->path);
    }
    f32_from_le(p->src, raw, p->n);
    free(raw);
    int64_t nb = at_end(r) ? 0 : read_i64(r);
    if (nb > 0) {
        p->book = malloc((size_t)nb);
        if (!p->book || read_bytes(r, p->book, (size_t)nb) != 0)
            return fail("%s: the codebook is cut short", r->path);
    }
    return r->failed || nb < 0 ? fail("%s: bad codebook size", r->path) : 0;
}

/* Packs, unpacks and writes both. */
static int pack_out(const qkc_aot_kernel *k, int ti, const pack_in *p, const char *out)
{
    char err[1024] = "";
    int64_t nb = qkc_rt_packed_bytes(k, ti, p->shape); /* -1: qkc_rt_pack says why */
    unsigned char *dst = malloc(nb > 0 ? (size_t)nb : 1);
    float *back = malloc((size_t)p->n * 4 + 1);
    int st = !dst || !back ? QKC_RT_ERR_NOMEM : qkc_rt_pack(k, ti, p->src, p->shape, dst, nb, p->book, err, sizeof err);
    if (st == QKC_RT_OK && nb < 0)
        st = QKC_RT_ERR_INTERNAL;
    if (st == QKC_RT_OK)
        st = qkc_rt_unpack(k, ti, dst, nb, p->shape, back, p->book, err, sizeof err);
    FILE *f = st == QKC_RT_OK ? fopen(out, "wb") : NULL;
    if (f) {
        fwrite(dst, 1, (size_t)nb, f);
        write_i64(f, p->n * 4);
        write_f32(f, back, p->n);
        st = fclose(f) == 0 ? QKC_RT_OK : QKC_RT_ERR_INTERNAL;
    }
    if (st != QKC_RT_OK)
        fprintf(stderr, "harness: pack %s tensor %d: status %d: %s\n", k->name, ti, st, err[0] ? err : "cannot write");
    free(dst);
    free(back);
    return st == QKC_RT_OK ? 0 : 1;
}

static int cmd_pack(const qkc_aot_kernel *k, const char *tensor, const char *in, const char *out)
{
    char *end;
    long ti = strtol(tensor, &end, 10);
    if (*end || ti < 0 || ti >= k->ntensors)
        return fail("%s: no tensor %s", k->name, tensor);
    reader r = {fopen(in, "rb"), in, 0};
    if (!r.f)
        return fail("cannot read %s", in);
    pack_in p = {{0}, 0, NULL, NULL};
    int rc = read_pack_in(&k->tensors[ti], &r, &p);
    fclose(r.f);
    if (rc == 0)
        rc = pack_out(k, (int)ti, &p, out);
    free(p.src);
    free(p.book);
    return rc;
}

/* ---- badargs ---- */

/* A valid-looking call: dims 8 (doubled until every extent is >= 1),
 * zeroed buffers, strides 0. */
typedef struct call {
    const qkc_aot_kernel *k;
    int nio, nargs;
    qkc_aot_arg *argv;
    buffers b;
} call;

static int call_init(call *c, const qkc_aot_kernel *k)
{
    c->k = k;
    c->nio = (int)(k->nparams + k->nresults);
    c->nargs = c->nio + (int)(k->ndims + k->nstrides);
    c->argv = calloc((size_t)c->nargs + 1, sizeof *c->argv);
    c->b = (buffers){c->nio, calloc((size_t)c->nio + 1, sizeof(void *)), calloc((size_t)c->nio + 1, sizeof(int64_t))};
    if (!c->argv || !c->b.p || !c->b.bytes)
        return fail("out of memory");
    int64_t *dims = calloc((size_t)k->ndims + 1, sizeof *dims);
    for (int64_t v = 8, ok = 0; !ok && v <= 1024; v *= 2) {
        ok = 1;
        for (int64_t s = 0; s < k->ndims; s++)
            dims[s] = v;
        for (int i = 0; i < c->nio; i++) {
            int64_t ext[QKC_AOT_MAX_RANK];
            ok &= tensor_extents(&k->tensors[i], dims, ext) > 0;
        }
    }
    for (int64_t s = 0; s < k->ndims; s++)
        c->argv[c->nio + s].i = dims[s];
    for (int i = 0; i < c->nio; i++) {
        c->b.bytes[i] = tensor_bytes(k, i, dims);
        c->b.p[i] = c->b.bytes[i] >= 0 ? calloc(1, (size_t)c->b.bytes[i] + 64) : NULL;
        c->argv[i].p = c->b.p[i];
    }
    free(dims);
    return 0;
}

static void call_free(call *c)
{
    buffers_free(&c->b);
    free(c->argv);
}

/* One bad call: prints its status; 1 unless it is the expected one. */
static int expect(const char *what, const qkc_aot_kernel *k, const qkc_aot_arg *argv, int want)
{
    char err[1024] = "";
    qkc_rt_opts o = {NULL, NULL, err, sizeof err};
    int st = qkc_rt_launch(k, argv, &o);
    printf("%s: status %d (expected %d): %s\n", what, st, want, err);
    return st == want && st != QKC_RT_OK ? 0 : 1;
}

/* Slot of the first stride of a dim with more than one row and rows of
 * more than one element (a non-zero stride below that span overlaps);
 * -1 if none. *span: the row-major span inside it. */
static int overlap_slot(const call *c, int64_t *span)
{
    const qkc_aot_kernel *k = c->k;
    const int64_t *dims = &c->argv[c->nio].i;
    int slot = 0;
    for (int i = 0; i < c->nio; i++) {
        const qkc_aot_tensor *t = &k->tensors[i];
        if (t->format || t->rank < 2)
            continue;
        for (int64_t d = 0; d + 1 < t->rank; d++, slot++) {
            int64_t inner = 1;
            for (int64_t e = d + 1; e < t->rank; e++)
                inner *= extent(t->dims[e], dims);
            if (extent(t->dims[d], dims) > 1 && inner > 1) {
                *span = inner;
                return slot;
            }
        }
    }
    return -1;
}

static int first_nonempty_result(const call *c)
{
    for (int i = (int)c->k->nparams; i < c->nio; i++)
        if (c->b.bytes[i] > 0)
            return i;
    return -1;
}

/* One bad packer call: 1 unless it returned a non-zero status. */
static int expect_pack(const char *what, int st, const char *err)
{
    printf("%s: status %d: %s\n", what, st, err);
    return st != QKC_RT_OK ? 0 : 1;
}

/* The packers of the first quantized param: a buffer one byte short, a
 * negative extent, a dense tensor, a NULL source and a damaged format
 * image, each refused with a status and a message. */
static int bad_packs(const qkc_aot_kernel *k)
{
    int q = -1, dense = -1;
    for (int i = 0; i < k->nparams; i++) {
        if (k->tensors[i].format && q < 0)
            q = i;
        if (!k->tensors[i].format && dense < 0)
            dense = i;
    }
    if (q < 0) {
        printf("packers: skipped (no quantized param)\n");
        return 0;
    }
    const qkc_aot_tensor *t = &k->tensors[q];
    int64_t shape[QKC_AOT_MAX_RANK], n = 1;
    for (int d = 0; d < t->rank; d++)
        n *= shape[d] = 70;
    int64_t bytes = qkc_rt_packed_bytes(k, q, shape);
    float *src = calloc((size_t)n, sizeof *src);
    unsigned char *dst = calloc((size_t)(bytes > 0 ? bytes : 1), 1);
    char err[1024] = "";
    int bad = bytes > 0 ? 0 : 1;
    bad |= expect_pack("pack into a buffer one byte short", qkc_rt_pack(k, q, src, shape, dst, bytes - 1, NULL, err, sizeof err), err);
    int64_t neg[QKC_AOT_MAX_RANK];
    memcpy(neg, shape, sizeof neg);
    neg[0] = -1;
    bad |= expect_pack("pack with a negative extent", qkc_rt_pack(k, q, src, neg, dst, bytes, NULL, err, sizeof err), err);
    bad |= qkc_rt_packed_bytes(k, q, neg) == -1 ? 0 : 1;
    bad |= expect_pack("pack from NULL", qkc_rt_pack(k, q, NULL, shape, dst, bytes, NULL, err, sizeof err), err);
    if (dense >= 0)
        bad |= expect_pack("pack of a dense tensor",
                           qkc_rt_pack(k, dense, src, shape, dst, bytes, NULL, err, sizeof err), err);
    bad |= expect_pack("pack of tensor index -1", qkc_rt_pack(k, -1, src, shape, dst, bytes, NULL, err, sizeof err), err);
    /* a damaged format image: a copy of the descriptor with the image cut short */
    qkc_aot_tensor *ts = malloc(sizeof *ts * (size_t)k->ntensors);
    memcpy(ts, k->tensors, sizeof *ts * (size_t)k->ntensors);
    ts[q].format_bytes /= 2;
    qkc_aot_kernel cut = *k;
    cut.tensors = ts;
    bad |= expect_pack("pack with a damaged format image",
                       qkc_rt_pack(&cut, q, src, shape, dst, bytes, NULL, err, sizeof err), err);
    bad |= expect_pack("unpack with a damaged format image",
                       qkc_rt_unpack(&cut, q, dst, bytes, shape, src, NULL, err, sizeof err), err);
    /* the repacker: short buffers, NULL, a dense tensor, a damaged layout entry */
    int64_t rbytes = qkc_rt_repacked_bytes(k, q, shape);
    unsigned char *rdst = calloc((size_t)(rbytes > 0 ? rbytes : 1), 1);
    bad |= rbytes > 0 ? 0 : 1;
    bad |= expect_pack("repack into a buffer one byte short",
                       qkc_rt_repack(k, q, dst, bytes, shape, rdst, rbytes - 1, err, sizeof err), err);
    bad |= expect_pack("repack from a source one byte short",
                       qkc_rt_repack(k, q, dst, bytes - 1, shape, rdst, rbytes, err, sizeof err), err);
    bad |= expect_pack("repack from NULL", qkc_rt_repack(k, q, NULL, bytes, shape, rdst, rbytes, err, sizeof err), err);
    bad |= expect_pack("repack with a negative extent",
                       qkc_rt_repack(k, q, dst, bytes, neg, rdst, rbytes, err, sizeof err), err);
    bad |= qkc_rt_repacked_bytes(k, q, neg) == -1 ? 0 : 1;
    if (dense >= 0)
        bad |= expect_pack("repack of a dense tensor",
                           qkc_rt_repack(k, dense, dst, bytes, shape, rdst, rbytes, err, sizeof err), err);
    if (k->abi >= 2) { /* a version said to read the tensor in groups of 3 rows */
        int64_t *vr = malloc(sizeof *vr * 3 * (size_t)k->nvariants);
        for (int64_t v = 0; v < k->nvariants; v++) {
            vr[3 * v] = q;
            vr[3 * v + 1] = 3;
            vr[3 * v + 2] = k->variant_repack[3 * v + 2];
        }
        qkc_aot_kernel odd = *k;
        odd.variant_repack = vr;
        bad |= expect_pack("repack for a damaged layout entry",
                           qkc_rt_repack(&odd, q, dst, bytes, shape, rdst, rbytes, err, sizeof err), err);
        free(vr);
    } else
        printf("repack for a damaged layout entry: skipped (ABI 1: no version reads a row-interleaved layout)\n");
    free(rdst);
    free(ts);
    free(src);
    free(dst);
    return bad;
}

static int cmd_badargs(const qkc_aot_kernel *k)
{
    call c;
    if (call_init(&c, k) != 0)
        return 1;
    char err[1024] = "";
    qkc_rt_opts o = {NULL, NULL, err, sizeof err};
    int st = qkc_rt_launch(k, c.argv, &o);
    printf("valid-looking call: status %d%s%s\n", st, st ? ": " : "", err);
    int bad = 0;
    qkc_aot_arg *a = malloc(((size_t)c.nargs + 1) * sizeof *a);
    int strides = c.nio + (int)k->ndims;

    memcpy(a, c.argv, (size_t)c.nargs * sizeof *a);
    if (k->ndims > 0) {
        a[c.nio].i = -1;
        bad |= expect("negative dim", k, a, QKC_RT_ERR_SHAPE);
    } else
        printf("negative dim: skipped (the kernel has no dims)\n");

    memcpy(a, c.argv, (size_t)c.nargs * sizeof *a);
    int res = first_nonempty_result(&c);
    if (res >= 0) {
        a[res].p = NULL;
        bad |= expect("NULL result", k, a, QKC_RT_ERR_INVALID_ARG);
    } else
        printf("NULL result: skipped (no non-empty result)\n");

    memcpy(a, c.argv, (size_t)c.nargs * sizeof *a);
    int64_t span = 0;
    int slot = overlap_slot(&c, &span);
    if (k->nstrides > 0) {
        a[strides].i = -1;
        bad |= expect("negative stride", k, a, QKC_RT_ERR_SHAPE);
    } else
        printf("negative stride: skipped (the kernel takes no strides)\n");
    memcpy(a, c.argv, (size_t)c.nargs * sizeof *a);
    if (slot >= 0) {
        a[strides + slot].i = span - 1;
        bad |= expect("overlapping stride", k, a, QKC_RT_ERR_SHAPE);
    } else
        printf("overlapping stride: skipped (no strided dim with rows of several elements)\n");

    bad |= bad_packs(k);

    qkc_aot_kernel other = *k;
    other.abi = QKC_AOT_ABI + 1;
    bad |= expect("other ABI", &other, c.argv, QKC_RT_ERR_UNSUPPORTED);
    if (k->abi >= 2) { /* ABI 2 without its per-version layout table: the SUMS scratch cannot be sized */
        qkc_aot_kernel nolayout = *k;
        nolayout.variant_repack = NULL;
        bad |= expect("ABI 2 without its layout table", &nolayout, c.argv, QKC_RT_ERR_INTERNAL);
    } else
        printf("ABI 2 without its layout table: skipped (an ABI 1 descriptor)\n");
    if (c.nargs > 0)
        bad |= expect("NULL argv", k, NULL, QKC_RT_ERR_INVALID_ARG);
    free(a);
    call_free(&c);
    printf("%s\n", bad ? "FAILED: a bad call did not return its status" : "all bad calls refused");
    return bad;
}

/* ---- main ---- */

static int usage(void)
{
    fprintf(stderr, "usage: harness list\n"
                    "       harness run KERNEL IN OUT [--threads N]\n"
                    "       harness pack KERNEL TENSOR_INDEX IN OUT\n"
                    "       harness badargs KERNEL\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "list") == 0)
        return cmd_list();
    if (argc < 3)
        return usage();
    const qkc_aot_kernel *k = find_kernel(argv[2]);
    if (!k)
        return fail("no kernel '%s' in this build", argv[2]);
    if (strcmp(argv[1], "run") == 0 && (argc == 5 || (argc == 7 && strcmp(argv[5], "--threads") == 0)))
        return cmd_run(k, argv[3], argv[4], argc == 7 ? atoi(argv[6]) : -1);
    if (strcmp(argv[1], "pack") == 0 && argc == 6)
        return cmd_pack(k, argv[3], argv[4], argv[5]);
    if (strcmp(argv[1], "badargs") == 0 && argc == 3)
        return cmd_badargs(k);
    return usage();
}
