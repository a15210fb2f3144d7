/* inputs.c — random kernel inputs and the comparison of results with the
 * reference, shared by `qkc run` and `qkc bench` (and `qkc tune`'s checks
 * follow the same rules).
 *
 * Inputs are uniform in [-1, 1] from the caller's seeded generator
 * (integers: small ranges); quantized parameters are packed from random
 * f32 with qkc_pack_ex (vector codebooks from their codebook parameter,
 * which must be made first; their tensors repeat a tile of 64K packed
 * weights, cli_pack_random). Tolerances by result dtype: f32 1e-4, f16
 * 4e-3, bf16 3e-2 normwise (max|y - ref| / max|ref|); integer results:
 * max abs error <= 1. */
#include "cli/cli.h"
#include "common/base.h"
#include "runtime/runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int dim_index(const qkc_kernel *k, const char *name, size_t len)
{
    for (int i = 0; i < qkc_kernel_ndims(k); i++) {
        const char *d = qkc_kernel_dim_name(k, i);
        if (strlen(d) == len && strncmp(d, name, len) == 0)
            return i;
    }
    return -1;
}

int cli_eval_dim(const qkc_kernel *k, const int64_t *dims, const char *text, int64_t *out)
{
    int64_t v = 0;
    int sign = 1;
    for (const char *p = text; *p;) {
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789");
        if (n == 0) {
            if (*p != '+' && *p != '-' && *p != ' ')
                return -1;
            sign = *p == '-' ? -1 : *p == '+' ? 1 : sign;
            p++;
            continue;
        }
        int i = dim_index(k, p, n);
        char *end;
        int64_t t = i >= 0 ? dims[i] : (int64_t)strtoll(p, &end, 10);
        if (i < 0 && end != p + n)
            return -1;
        v += sign * t;
        p += n;
    }
    *out = v;
    return 0;
}

void cli_fill_dense(cli_rng *rng, qkc_dtype t, void *data, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double u = cli_rng_uniform(rng, -1, 1);
        switch (t) {
        case QKC_F32: ((float *)data)[i] = (float)u; break;
        case QKC_F16: ((uint16_t *)data)[i] = qk_f32_to_f16((float)u); break;
        case QKC_BF16: ((uint16_t *)data)[i] = qk_f32_to_bf16((float)u); break;
        case QKC_I8: ((int8_t *)data)[i] = (int8_t)lrint(u * 8); break;
        case QKC_I32: ((int32_t *)data)[i] = (int32_t)lrint(u * 100); break;
        case QKC_U8: ((uint8_t *)data)[i] = (uint8_t)lrint((u + 1) * 7.5); break;
        default: break;
        }
    }
}

static int pack_all(qkc_program *p, const char *format, int64_t rows, int64_t cols, const void *book,
                    size_t book_bytes, cli_rng *r, void *dst, size_t bytes, char *err, size_t errsz)
{
    int64_t n = rows * cols;
    float *src = malloc((size_t)(n > 0 ? n : 1) * sizeof *src);
    if (!src)
        return snprintf(err, errsz, "out of memory packing %s (%lld values)", format, (long long)n), -1;
    for (int64_t j = 0; j < n; j++)
        src[j] = (float)cli_rng_uniform(r, -1, 1);
    qkc_pack_options o = {.codebook = book, .codebook_bytes = book_bytes};
    qkc_status st = qkc_pack_ex(p, format, src, rows, cols, dst, bytes, &o);
    free(src);
    if (st != QKC_OK)
        snprintf(err, errsz, "packing %s: %s", format, qkc_errmsg(p->ctx));
    return st == QKC_OK ? 0 : -1;
}

int cli_pack_random(qkc_program *p, const char *format, int64_t rows, int64_t cols, const void *book,
                    size_t book_bytes, int64_t tile_rows, int64_t tile_blocks, cli_rng *r, void *dst, size_t bytes,
                    char *err, size_t errsz)
{
    const qk_format *f = kir_find_format(p->kir, format);
    if (!f)
        return snprintf(err, errsz, "no format '%s'", format), -1;
    if (tile_rows <= 0 || rows == 0 || cols == 0)
        return pack_all(p, format, rows, cols, book, book_bytes, r, dst, bytes, err, errsz);
    int64_t nb = (cols + f->block - 1) / f->block;
    int64_t R0 = rows < tile_rows ? rows : tile_rows;
    int64_t K0 = tile_blocks > 0 && nb > tile_blocks ? tile_blocks * (int64_t)f->block : cols;
    int64_t nb0 = (K0 + f->block - 1) / f->block;
    size_t hb = (size_t)f->tensor_header_bytes, rh = (size_t)f->row_header_bytes, bb = (size_t)f->block_bytes;
    size_t small = (size_t)qk_format_size(f, R0, K0);
    if (hb + (size_t)rows * (rh + (size_t)nb * bb) != bytes)
        return snprintf(err, errsz, "format %s: unexpected packed size", format), -1;
    uint8_t *s = malloc(small ? small : 1), *d0 = dst;
    if (!s)
        return snprintf(err, errsz, "out of memory packing %s", format), -1;
    if (pack_all(p, format, R0, K0, book, book_bytes, r, s, small, err, errsz) != 0)
        return free(s), -1;
    memcpy(d0, s, hb);
    for (int64_t row = 0; row < rows; row++) {
        const uint8_t *src = s + hb + (size_t)(row % R0) * (rh + (size_t)nb0 * bb);
        uint8_t *d = d0 + hb + (size_t)row * (rh + (size_t)nb * bb);
        memcpy(d, src, rh);
        for (int64_t b = 0; b < nb; b++)
            memcpy(d + rh + (size_t)b * bb, src + rh + (size_t)(b % nb0) * bb, bb);
    }
    free(s);
    return 0;
}

/* Weights a vector-codebook tensor's tile holds (its rows cycle; a
 * quantizer that searches 65536 codewords per group of 8 packs them in
 * seconds). Every other format is packed whole. */
#define CLI_VQ_TILE_VALUES 65536

static int fill_packed(const cli_inputs *in, int i, int64_t rows, int64_t cols)
{
    const qkc_param_info *pi = &in->info[i];
    const void *book = NULL;
    size_t book_bytes = 0;
    int64_t tile_rows = 0;
    if (pi->codebook >= 0) {
        book = in->args[pi->codebook].data;
        book_bytes = in->bytes[pi->codebook];
        tile_rows = cols > 0 ? (CLI_VQ_TILE_VALUES + cols - 1) / cols : 1;
    }
    char err[512];
    if (cli_pack_random(in->p, pi->format, rows, cols, book, book_bytes, tile_rows, 0, in->rng, in->args[i].data,
                        in->bytes[i], err, sizeof err) != 0)
        return cli_error("%s: %s", pi->name, err);
    if (!pi->repack_rows)
        return 0;
    /* the kernel reads these weights row-interleaved: convert them */
    size_t rb;
    if (qkc_kernel_repacked_size(in->k, i, rows, cols, &rb) != QKC_OK)
        return cli_error("%s", qkc_errmsg(in->ctx));
    void *rp = cli_alloc(rb);
    if (!rp)
        return cli_error("out of memory repacking %s (%zu bytes)", pi->name, rb);
    if (qkc_kernel_repack(in->k, i, in->args[i].data, in->bytes[i], rows, cols, rp, rb) != QKC_OK) {
        free(rp);
        return cli_error("repacking %s: %s", pi->name, qkc_errmsg(in->ctx));
    }
    free(in->args[i].data);
    in->args[i].data = rp;
    in->bytes[i] = rb;
    return 0;
}

int cli_make_input(const cli_inputs *in, int i)
{
    const qkc_param_info *pi = &in->info[i];
    qkc_tensor *t = &in->args[i];
    t->dtype = pi->dtype;
    t->rank = pi->rank;
    int64_t elems = 1, rows = 1;
    for (int d = 0; d < pi->rank; d++) {
        if (cli_eval_dim(in->k, in->dims, pi->dims[d], &t->shape[d]) != 0)
            return cli_error("%s: cannot size dim '%s' from --dims", pi->name, pi->dims[d]);
        if (t->shape[d] < 0)
            t->shape[d] = 0; /* empty: the launch's shape check explains what does not fit */
        elems *= t->shape[d];
        rows *= d + 1 < pi->rank ? t->shape[d] : 1;
    }
    int64_t cols = pi->rank ? t->shape[pi->rank - 1] : 1;
    if (pi->dtype == QKC_PACKED && qkc_format_size(in->p, pi->format, rows, cols, &in->bytes[i]) != QKC_OK)
        return cli_error("%s", qkc_errmsg(in->ctx));
    if (pi->dtype != QKC_PACKED)
        in->bytes[i] = (size_t)elems * cli_dtype_size(pi->dtype);
    t->data = cli_alloc(in->bytes[i]);
    if (!t->data)
        return cli_error("out of memory for %s (%zu bytes)", pi->name, in->bytes[i]);
    if (pi->is_result) {
        memset(t->data, 0xff, in->bytes[i]); /* NaN for floats: unwritten outputs fail the check */
        return 0;
    }
    if (pi->dtype == QKC_PACKED)
        return fill_packed(in, i, rows, cols);
    cli_fill_dense(in->rng, pi->dtype, t->data, elems);
    return 0;
}

int cli_dtype_is_int(qkc_dtype t)
{
    return t == QKC_I8 || t == QKC_I32 || t == QKC_U8;
}

static double load_elem(qkc_dtype t, const void *d, int64_t i)
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

double cli_result_error(const qkc_tensor *y, const void *ref, size_t bytes, double *maxerr, double *tol)
{
    int64_t n = (int64_t)(bytes / cli_dtype_size(y->dtype));
    double err = 0, maxref = 0;
    for (int64_t j = 0; j < n; j++) {
        double a = load_elem(y->dtype, y->data, j), r = load_elem(y->dtype, ref, j);
        double e = fabs(a - r);
        err = isnan(e) ? INFINITY : fmax(err, e);
        maxref = fmax(maxref, fabs(r));
    }
    qkc_dtype t = y->dtype;
    *tol = t == QKC_F32 ? 1e-4 : t == QKC_F16 ? 4e-3 : t == QKC_BF16 ? 3e-2 : 1;
    if (maxerr)
        *maxerr = err;
    return cli_dtype_is_int(t) || maxref == 0 ? err : err / maxref;
}
