/* rt_test.c — see rt_test.h. */
#include "support/rt_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/base.h"

uint64_t rtt_next(rtt_rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double rtt_uniform(rtt_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * ((double)(rtt_next(r) >> 11) * (1.0 / 9007199254740991.0));
}

int64_t rtt_int(rtt_rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rtt_next(r) % (uint64_t)(hi - lo + 1));
}

size_t rtt_dtype_size(qkc_dtype t)
{
    return t == QKC_F32 || t == QKC_I32 ? 4 : t == QKC_F16 || t == QKC_BF16 ? 2 : 1;
}

/* Evaluates a declared dim text ("N", "H-2", "64", "N+1"). */
static int eval_dim(const qkc_kernel *k, const int64_t *dims, const char *text, int64_t *out)
{
    int64_t v = 0, sign = 1;
    for (const char *p = text; *p;) {
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789");
        if (n == 0) {
            sign = *p == '-' ? -1 : *p == '+' ? 1 : sign;
            p++;
            continue;
        }
        int found = 0;
        for (int i = 0; i < qkc_kernel_ndims(k) && !found; i++)
            if (strlen(qkc_kernel_dim_name(k, i)) == n && strncmp(qkc_kernel_dim_name(k, i), p, n) == 0) {
                v += sign * dims[i];
                found = 1;
            }
        if (!found)
            v += sign * strtoll(p, NULL, 10);
        p += n;
    }
    *out = v;
    return 0;
}

static void fill_dense(rtt_rng *r, qkc_dtype t, void *d, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double u = rtt_uniform(r, -1, 1);
        switch (t) {
        case QKC_F32: ((float *)d)[i] = (float)u; break;
        case QKC_F16: ((uint16_t *)d)[i] = qk_f32_to_f16((float)u); break;
        case QKC_BF16: ((uint16_t *)d)[i] = qk_f32_to_bf16((float)u); break;
        case QKC_I8: ((int8_t *)d)[i] = (int8_t)lrint(u * 8); break;
        case QKC_I32: ((int32_t *)d)[i] = (int32_t)lrint(u * 100); break;
        case QKC_U8: ((uint8_t *)d)[i] = (uint8_t)lrint((u + 1) * 7.5); break;
        default: break;
        }
    }
}

static int fill_packed(const qkc_program *p, rtt_rng *r, rtt_args *a, int i, int64_t rows, int64_t cols)
{
    int64_t n = rows * cols;
    float *src = malloc((size_t)(n > 0 ? n : 1) * sizeof *src);
    for (int64_t j = 0; j < n; j++)
        src[j] = (float)rtt_uniform(r, -1, 1);
    qkc_pack_options o = {0};
    if (a->info[i].codebook >= 0) {
        o.codebook = a->t[a->info[i].codebook].data;
        o.codebook_bytes = a->bytes[a->info[i].codebook];
    }
    qkc_status st = qkc_pack_ex(p, a->info[i].format, src, rows, cols, a->t[i].data, a->bytes[i], &o);
    free(src);
    return st == QKC_OK ? 0 : -1;
}

/* n bytes that end where a PROT_NONE page begins (a->t[i].data). */
static void *guarded_alloc(rtt_args *a, int i, size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), body = (n + pg - 1) / pg * pg;
    if (!body)
        body = pg;
    uint8_t *m = mmap(NULL, body + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    if (mprotect(m + body, pg, PROT_NONE) != 0) {
        munmap(m, body + pg);
        return NULL;
    }
    a->map[i] = m;
    a->mapsz[i] = body + pg;
    return m + body - n;
}

static void guarded_free(rtt_args *a, int i)
{
    if (a->map[i])
        munmap(a->map[i], a->mapsz[i]);
    a->map[i] = NULL;
}

/* Shape, size and buffers of tensor i. */
static int make_one(const qkc_program *p, const qkc_kernel *k, const int64_t *dims, rtt_rng *r, rtt_args *a, int i)
{
    qkc_param_info *in = &a->info[i];
    qkc_tensor *t = &a->t[i];
    t->dtype = in->dtype;
    t->rank = in->rank;
    int64_t elems = 1, rows = 1;
    for (int d = 0; d < in->rank; d++) {
        eval_dim(k, dims, in->dims[d], &t->shape[d]);
        elems *= t->shape[d];
        rows *= d + 1 < in->rank ? t->shape[d] : 1;
    }
    int64_t cols = in->rank ? t->shape[in->rank - 1] : 1;
    if (in->dtype == QKC_PACKED) {
        if (qkc_format_size(p, in->format, rows, cols, &a->bytes[i]) != QKC_OK)
            return -1;
    } else {
        a->bytes[i] = (size_t)elems * rtt_dtype_size(in->dtype);
    }
    t->data = guarded_alloc(a, i, a->bytes[i]);
    if (!t->data)
        return -1;
    a->ref[i] = *t;
    a->ref[i].data = calloc(1, a->bytes[i] + 1);
    if (in->is_result) {
        memset(t->data, 0xff, a->bytes[i]);
        return 0;
    }
    int rc = in->dtype == QKC_PACKED ? fill_packed(p, r, a, i, rows, cols) : (fill_dense(r, in->dtype, t->data, elems), 0);
    if (rc == 0 && in->repack_rows) { /* weights the kernel reads row-interleaved */
        size_t rb = 0;
        void *rp = NULL;
        if (qkc_kernel_repacked_size(k, i, rows, cols, &rb) != QKC_OK || !(rp = malloc(rb + 1)) ||
            qkc_kernel_repack(k, i, t->data, a->bytes[i], rows, cols, rp, rb) != QKC_OK) {
            free(rp);
            return -1;
        }
        guarded_free(a, i);
        if (!(t->data = guarded_alloc(a, i, rb))) {
            free(rp);
            return -1;
        }
        memcpy(t->data, rp, rb);
        free(rp);
        a->bytes[i] = rb;
        free(a->ref[i].data);
        a->ref[i].data = calloc(1, rb + 1);
    }
    memcpy(a->ref[i].data, t->data, a->bytes[i]);
    return rc;
}

int rtt_args_make(const qkc_program *p, const qkc_kernel *k, const int64_t *dims, rtt_rng *rng, rtt_args *a,
                  char *err, size_t errsz)
{
    memset(a, 0, sizeof *a);
    a->n = qkc_kernel_nparams(k);
    if (a->n > RTT_MAX_T) {
        snprintf(err, errsz, "too many tensors");
        return -1;
    }
    for (int i = 0; i < a->n; i++)
        qkc_kernel_param(k, i, &a->info[i]);
    for (int pass = 0; pass < 2; pass++) /* dense first: codebooks exist before what is packed with them */
        for (int i = 0; i < a->n; i++)
            if ((a->info[i].dtype == QKC_PACKED) == pass && make_one(p, k, dims, rng, a, i) != 0) {
                snprintf(err, errsz, "cannot build argument %s", a->info[i].name);
                return -1;
            }
    return 0;
}

void rtt_args_free(rtt_args *a)
{
    for (int i = 0; i < a->n; i++) {
        guarded_free(a, i);
        free(a->ref[i].data);
    }
    a->n = 0;
}

void rtt_args_clear_results(rtt_args *a)
{
    for (int i = 0; i < a->n; i++)
        if (a->info[i].is_result)
            memset(a->t[i].data, 0xff, a->bytes[i]);
}

static double load(qkc_dtype t, const void *d, int64_t i)
{
    switch (t) {
    case QKC_F32: return ((const float *)d)[i];
    case QKC_F16: return qk_f16_to_f32(((const uint16_t *)d)[i]);
    case QKC_BF16: return qk_bf16_to_f32(((const uint16_t *)d)[i]);
    case QKC_I8: return ((const int8_t *)d)[i];
    case QKC_I32: return ((const int32_t *)d)[i];
    case QKC_U8: return ((const uint8_t *)d)[i];
    default: return 0;
    }
}

/* 0 when result i passes; else describes it into msg. */
static int compare_one(const rtt_args *a, int i, char *msg, size_t n)
{
    qkc_dtype t = a->t[i].dtype;
    int64_t cnt = (int64_t)(a->bytes[i] / rtt_dtype_size(t)), worst = -1;
    double maxerr = 0, maxref = 0;
    for (int64_t j = 0; j < cnt; j++) {
        double y = load(t, a->t[i].data, j), r = load(t, a->ref[i].data, j), e = fabs(y - r);
        if (isnan(e))
            e = INFINITY;
        if (e > maxerr || worst < 0)
            worst = j;
        maxerr = fmax(maxerr, e);
        maxref = fmax(maxref, fabs(r));
    }
    double rel = maxref > 0 ? maxerr / maxref : maxerr;
    double tol = t == QKC_F32 ? 1e-4 : t == QKC_F16 ? 4e-3 : t == QKC_BF16 ? 3e-2 : 1;
    int isint = t == QKC_I8 || t == QKC_I32 || t == QKC_U8;
    if (isint ? maxerr <= tol : rel <= tol)
        return 0;
    snprintf(msg, n, "result %s: max abs err %.3g, rel err %.3g > tol %.0e (worst element %lld: got %.6g, ref %.6g)",
             a->info[i].name, maxerr, rel, tol, (long long)worst, worst >= 0 ? load(t, a->t[i].data, worst) : 0.0,
             worst >= 0 ? load(t, a->ref[i].data, worst) : 0.0);
    return 1;
}

int rtt_compare(const rtt_args *a, char *msg, size_t n)
{
    if (n)
        msg[0] = 0;
    for (int i = 0; i < a->n; i++)
        if (a->info[i].is_result && compare_one(a, i, msg, n))
            return 1;
    return 0;
}
