/* pack.c — the format packers of the public API: byte size, f32 -> packed
 * (qk_format_pack) and packed -> f32 (qk_format_unpack), by format name
 * in a program. Sizes are checked before any buffer is touched. */
#include "runtime/runtime.h"

#include <stdlib.h>
#include <string.h>

static qkc_status no_format(const qkc_program *p, const char *name)
{
    qk_buf b = {0};
    for (int i = 0; i < p->kir->nformats; i++)
        qk_buf_printf(&b, "%s%s", i ? ", " : "", p->kir->formats[i]->name);
    char *list = qk_buf_take(&b);
    qkc_status st = rt_fail(p->ctx, QKC_ERR_NOT_FOUND, "no format '%s' in program; formats: %s", name,
                            list[0] ? list : "(none)");
    free(list);
    return st;
}

/* Looks up the format and computes its size for rows x cols. */
static qkc_status lookup(const qkc_program *p, const char *name, int64_t rows, int64_t cols, const qk_format **f,
                         size_t *bytes)
{
    if (!p || !name)
        return rt_fail(p ? p->ctx : NULL, QKC_ERR_INVALID_ARG, "NULL %s", !p ? "program" : "format name");
    if (!p->kir)
        return rt_fail(p->ctx, QKC_ERR_INVALID_ARG, "the program has compile errors: no formats");
    if (rows < 0 || cols < 0)
        return rt_fail(p->ctx, QKC_ERR_SHAPE, "negative size %lld x %lld", (long long)rows, (long long)cols);
    *f = kir_find_format(p->kir, name);
    if (!*f)
        return no_format(p, name);
    int64_t n = qk_format_size(*f, rows, cols);
    if (n < 0 || (uint64_t)n > (uint64_t)SIZE_MAX)
        return rt_fail(p->ctx, QKC_ERR_SHAPE, "format %s: %lld x %lld is too large", name, (long long)rows,
                       (long long)cols);
    *bytes = (size_t)n;
    return QKC_OK;
}

qkc_status qkc_format_size(const qkc_program *p, const char *format, int64_t rows, int64_t cols, size_t *bytes)
{
    if (bytes)
        *bytes = 0;
    if (!bytes)
        return rt_fail(p ? p->ctx : NULL, QKC_ERR_INVALID_ARG, "qkc_format_size: NULL bytes");
    const qk_format *f;
    return lookup(p, format, rows, cols, &f, bytes);
}

/* The codebook given in opts must be there, and large enough, for VQ
 * formats. */
static qkc_status check_book(const qkc_program *p, const qk_format *f, const qkc_pack_options *o, const void **book)
{
    *book = NULL;
    int64_t n = qk_format_codebook_elems(f);
    if (n == 0)
        return QKC_OK;
    size_t need = (size_t)n * (size_t)qk_dtype_size(f->vq_dtype);
    if (!o || !o->codebook)
        return rt_fail(p->ctx, QKC_ERR_INVALID_ARG,
                       "format %s reads a codebook of %lld %s values: pass it in qkc_pack_options.codebook", f->name,
                       (long long)n, qk_dtype_name(f->vq_dtype));
    if (o->codebook_bytes < need)
        return rt_fail(p->ctx, QKC_ERR_SHAPE, "format %s: the codebook needs %zu bytes, got %zu", f->name, need,
                       o->codebook_bytes);
    *book = o->codebook;
    return QKC_OK;
}

qkc_status qkc_pack_ex(const qkc_program *p, const char *format, const float *src, int64_t rows, int64_t cols,
                       void *dst, size_t dst_bytes, const qkc_pack_options *opts)
{
    const qk_format *f = NULL; /* set on QKC_OK (the initializer quiets -O3 warnings) */
    size_t need = 0;
    const void *book;
    qkc_status st = lookup(p, format, rows, cols, &f, &need);
    if (st == QKC_OK)
        st = check_book(p, f, opts, &book);
    if (st != QKC_OK)
        return st;
    if ((!src || !dst) && rows * cols > 0)
        return rt_fail(p->ctx, QKC_ERR_INVALID_ARG, "qkc_pack: NULL %s", !src ? "src" : "dst");
    if (dst_bytes < need)
        return rt_fail(p->ctx, QKC_ERR_SHAPE, "qkc_pack: format %s needs %zu bytes for %lld x %lld, dst has %zu",
                       format, need, (long long)rows, (long long)cols, dst_bytes);
    qk_pack_opts o = {book, opts ? opts->mse : 0};
    char err[512] = "";
    if (rows * cols > 0 && qk_format_pack(f, src, rows, cols, dst, &o, err, sizeof err) != 0)
        return rt_fail(p->ctx, QKC_ERR_INVALID_ARG, "qkc_pack: format %s: %s", format, err);
    return QKC_OK;
}

qkc_status qkc_pack(const qkc_program *p, const char *format, const float *src, int64_t rows, int64_t cols,
                    void *dst, size_t dst_bytes)
{
    return qkc_pack_ex(p, format, src, rows, cols, dst, dst_bytes, NULL);
}

qkc_status qkc_unpack_ex(const qkc_program *p, const char *format, const void *src, size_t src_bytes, int64_t rows,
                         int64_t cols, float *dst, const qkc_pack_options *opts)
{
    const qk_format *f = NULL; /* set on QKC_OK (the initializer quiets -O3 warnings) */
    size_t need = 0;
    const void *book;
    qkc_status st = lookup(p, format, rows, cols, &f, &need);
    if (st == QKC_OK)
        st = check_book(p, f, opts, &book);
    if (st != QKC_OK)
        return st;
    if ((!src || !dst) && rows * cols > 0)
        return rt_fail(p->ctx, QKC_ERR_INVALID_ARG, "qkc_unpack: NULL %s", !src ? "src" : "dst");
    if (src_bytes < need)
        return rt_fail(p->ctx, QKC_ERR_SHAPE, "qkc_unpack: format %s needs %zu bytes for %lld x %lld, src has %zu",
                       format, need, (long long)rows, (long long)cols, src_bytes);
    if (rows * cols > 0)
        qk_format_unpack(f, src, rows, cols, dst, book);
    return QKC_OK;
}

qkc_status qkc_unpack(const qkc_program *p, const char *format, const void *src, size_t src_bytes, int64_t rows,
                      int64_t cols, float *dst)
{
    return qkc_unpack_ex(p, format, src, src_bytes, rows, cols, dst, NULL);
}

qkc_status qkc_format_codebook(const qkc_program *p, const char *format, size_t *elems, qkc_dtype *dtype)
{
    const qk_format *f = NULL; /* set on QKC_OK (the initializer quiets -O3 warnings) */
    size_t need = 0;
    if (!elems || !dtype)
        return rt_fail(p ? p->ctx : NULL, QKC_ERR_INVALID_ARG, "qkc_format_codebook: NULL output");
    qkc_status st = lookup(p, format, 0, 0, &f, &need);
    if (st != QKC_OK)
        return st;
    *elems = (size_t)qk_format_codebook_elems(f);
    *dtype = f->vq_dtype == QK_DT_F32 ? QKC_F32 : QKC_F16;
    return QKC_OK;
}
