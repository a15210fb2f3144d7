/* inputs.c — random kernel inputs and the comparison of results with the
 * reference, shared by `qkc run` and `qkc bench` (and `qkc tune`'s checks
 * follow the same rules).
 *
 * Inputs are uniform in [-1, 1] from the caller's seeded generator
 * (integers: small ranges); quantized parameters are packed from random
 * f32 with qkc_pack_ex (vector codebooks from their codebook parameter,
 * which must be made first). Tolerances by result dtype: f32 1e-4, f16
 * 4e-3, bf16 3e-2 normwise (max|y - ref| / max|ref|); integer results:
 * max abs error <= 1. */
#include "cli/cli.h"
#include "common/base.h"

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

static int fill_packed(const cli_inputs *in, int i, int64_t rows, int64_t cols)
{
    const qkc_param_info *pi = &in->info[i];
    int64_t n = rows * cols;
    float *src = malloc((size_t)(n > 0 ? n : 1) * sizeof *src);
    if (!src)
        return cli_error("out of memory packing %s (%lld values)", pi->name, (long long)n);
    for (int64_t j = 0; j < n; j++)
        src[j] = (float)cli_rng_uniform(in->rng, -1, 1);
    qkc_pack_options o = {0};
    if (pi->codebook >= 0) {
        o.codebook = in->args[pi->codebook].data;
        o.codebook_bytes = in->bytes[pi->codebook];
    }
    qkc_status st = qkc_pack_ex(in->p, pi->format, src, rows, cols, in->args[i].data, in->bytes[i], &o);
    free(src);
    if (st != QKC_OK)
        return cli_error("packing %s: %s", pi->name, qkc_errmsg(in->ctx));
    if (!pi->repack_rows)
        return 0;
    /* the kernel reads these weights row-interleaved: convert them */
    size_t rb;
    if (qkc_kernel_repacked_size(in->k, i, rows, cols, &rb) != QKC_OK)
        return cli_error("%s", qkc_errmsg(in->ctx));
    void *rp = malloc(rb ? rb : 1);
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
    t->data = malloc(in->bytes[i] ? in->bytes[i] : 1);
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
