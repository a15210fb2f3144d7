/* rt_pack.c — the packers of kernels built ahead of time: byte size, f32
 * -> packed and packed -> f32 for a quantized tensor of a descriptor.
 *
 * The tensor's format is deserialized from the descriptor and handed to
 * compiler/format.c, the code qkc_pack uses, with the same options
 * (round to nearest, no MSE search, the codebook for VQ formats), so the
 * bytes are those of the JIT API. rows = the product of the shape but its
 * last dim, K = the last dim. Sizes are checked before any buffer is
 * touched. */
#include "runtime/rt/rt_internal.h"
#include "compiler/rowpack.h"

#include <stdlib.h>
#include <string.h>

/* A quantized tensor's format and size for shape. */
typedef struct packing {
    qk_format f;
    double *table; /* owned: free after the last use of f */
    int64_t rows, K, bytes;
} packing;

static const char *tname(const qkc_aot_tensor *t)
{
    return t->name ? t->name : "?";
}

/* Deserializes tensor's format and sizes shape: 0, or a status with err. */
static int open_packing(const qkc_aot_kernel *k, int tensor, const int64_t *shape, packing *p, char *err,
                        size_t errsz)
{
    memset(p, 0, sizeof *p);
    if (!k || !shape)
        return qkrt_fail(err, errsz, QKC_RT_ERR_INVALID_ARG, "NULL %s", !k ? "kernel" : "shape");
    if (!qkrt_abi_ok(k))
        return qkrt_bad_abi(k, err, errsz);
    if (tensor < 0 || tensor >= k->ntensors || !k->tensors)
        return qkrt_fail(err, errsz, QKC_RT_ERR_INVALID_ARG, "kernel '%s' has no tensor %d", qkrt_name(k), tensor);
    const qkc_aot_tensor *t = &k->tensors[tensor];
    if (!t->format || t->format_bytes <= 0)
        return qkrt_fail(err, errsz, QKC_RT_ERR_INVALID_ARG, "kernel '%s': tensor '%s' is not quantized", qkrt_name(k),
                         tname(t));
    if (t->rank < 1 || t->rank > QKC_AOT_MAX_RANK)
        return qkrt_fail(err, errsz, QKC_RT_ERR_INTERNAL, "kernel '%s': tensor '%s' has rank %lld", qkrt_name(k),
                         tname(t), (long long)t->rank);
    p->rows = 1;
    for (int64_t d = 0; d < t->rank; d++) {
        if (shape[d] < 0)
            return qkrt_fail(err, errsz, QKC_RT_ERR_SHAPE, "kernel '%s': tensor '%s': dim %lld has negative size %lld",
                             qkrt_name(k), tname(t), (long long)d, (long long)shape[d]);
        if (d + 1 < t->rank)
            p->rows = p->rows < 0 ? -1 : qkrt_mul(p->rows, shape[d]);
    }
    p->K = shape[t->rank - 1];
    char why[256] = "";
    if (qk_format_deserialize(t->format, (size_t)t->format_bytes, &p->f, &p->table, why, sizeof why) != 0)
        return qkrt_fail(err, errsz, QKC_RT_ERR_INTERNAL, "kernel '%s': the format of tensor '%s': %s", qkrt_name(k),
                         tname(t), why);
    p->bytes = p->rows < 0 ? -1 : qkrt_format_bytes(&p->f, p->rows, p->K);
    if (p->bytes < 0 || qkrt_mul(p->rows, p->K) < 0 || (uint64_t)qkrt_mul(p->rows, p->K) > SIZE_MAX / sizeof(float))
        return qkrt_fail(err, errsz, QKC_RT_ERR_SHAPE, "kernel '%s': tensor '%s' is too large for this shape",
                         qkrt_name(k), tname(t));
    return QKC_RT_OK;
}

/* VQ formats read their books: they must be given. */
static int need_book(const qkc_aot_kernel *k, int tensor, const packing *p, const void *codebook, char *err,
                     size_t errsz)
{
    if (qk_format_codebook_elems(&p->f) == 0 || codebook)
        return QKC_RT_OK;
    return qkrt_fail(err, errsz, QKC_RT_ERR_UNSUPPORTED,
                     "kernel '%s': tensor '%s' has a vq format: pass its codebook of %lld %s values", qkrt_name(k),
                     tname(&k->tensors[tensor]), (long long)qk_format_codebook_elems(&p->f),
                     p->f.vq_dtype == QK_DT_F32 ? "f32" : "f16");
}

int64_t qkc_rt_packed_bytes(const qkc_aot_kernel *k, int tensor, const int64_t *shape)
{
    packing p;
    int st = open_packing(k, tensor, shape, &p, NULL, 0);
    free(p.table);
    return st == QKC_RT_OK ? p.bytes : -1;
}

int qkc_rt_pack(const qkc_aot_kernel *k, int tensor, const float *src, const int64_t *shape, void *dst,
                int64_t dst_bytes, const void *codebook, char *err, size_t errsz)
{
    packing p;
    int st = open_packing(k, tensor, shape, &p, err, errsz);
    if (st == QKC_RT_OK)
        st = need_book(k, tensor, &p, codebook, err, errsz);
    if (st == QKC_RT_OK && ((!dst && p.bytes > 0) || (!src && p.rows * p.K > 0)))
        st = qkrt_fail(err, errsz, QKC_RT_ERR_INVALID_ARG, "qkc_rt_pack: NULL %s", !dst ? "dst" : "src");
    if (st == QKC_RT_OK && dst_bytes < p.bytes)
        st = qkrt_fail(err, errsz, QKC_RT_ERR_SHAPE, "qkc_rt_pack: tensor '%s' needs %lld bytes, dst has %lld",
                       tname(&k->tensors[tensor]), (long long)p.bytes, (long long)dst_bytes);
    if (st == QKC_RT_OK && p.rows * p.K == 0 && p.bytes > 0)
        memset(dst, 0, (size_t)p.bytes); /* no values: only the (zero) headers */
    else if (st == QKC_RT_OK && p.rows * p.K > 0) {
        qk_pack_opts o = {qk_format_codebook_elems(&p.f) ? codebook : NULL, 0};
        char why[256] = "";
        if (qk_format_pack(&p.f, src, p.rows, p.K, dst, &o, why, sizeof why) != 0)
            st = qkrt_fail(err, errsz, QKC_RT_ERR_INVALID_ARG, "qkc_rt_pack: tensor '%s': %s",
                           tname(&k->tensors[tensor]), why);
    }
    free(p.table);
    return st;
}

int qkc_rt_unpack(const qkc_aot_kernel *k, int tensor, const void *src, int64_t src_bytes, const int64_t *shape,
                  float *dst, const void *codebook, char *err, size_t errsz)
{
    packing p;
    int st = open_packing(k, tensor, shape, &p, err, errsz);
    if (st == QKC_RT_OK)
        st = need_book(k, tensor, &p, codebook, err, errsz);
    if (st == QKC_RT_OK && (!src || !dst) && p.rows * p.K > 0)
        st = qkrt_fail(err, errsz, QKC_RT_ERR_INVALID_ARG, "qkc_rt_unpack: NULL %s", !src ? "src" : "dst");
    if (st == QKC_RT_OK && src_bytes < p.bytes)
        st = qkrt_fail(err, errsz, QKC_RT_ERR_SHAPE, "qkc_rt_unpack: tensor '%s' needs %lld bytes, src has %lld",
                       tname(&k->tensors[tensor]), (long long)p.bytes, (long long)src_bytes);
    if (st == QKC_RT_OK && p.rows * p.K > 0)
        qk_format_unpack(&p.f, src, p.rows, p.K, dst, qk_format_codebook_elems(&p.f) ? codebook : NULL);
    free(p.table);
    return st;
}

/* ---- the row-interleaved layout of the version that runs ---- */

/* The format and sizes of tensor at shape, and the rows R the selected
 * version reads it in (0: the format's own bytes) with that size. */
static int open_repack(const qkc_aot_kernel *k, int tensor, const int64_t *shape, packing *p, int *R,
                       int64_t *bytes, char *err, size_t errsz)
{
    *R = 0;
    *bytes = -1;
    int st = open_packing(k, tensor, shape, p, err, errsz);
    const qkc_aot_variant *v = NULL;
    if (st == QKC_RT_OK)
        st = qkrt_select(k, &v, err, errsz);
    if (st != QKC_RT_OK)
        return st;
    int damaged;
    const int64_t *lay = qkrt_layout(k, v, &damaged);
    int64_t rows = lay ? lay[1] : 0;
    *bytes = p->bytes;
    if (!damaged && (!lay || lay[0] != tensor))
        return QKC_RT_OK;
    if (damaged || (rows != 4 && rows != 8 && rows != 16) || !qk_rowpack_check(&p->f, (int)rows, NULL, NULL, 0))
        return qkrt_fail(err, errsz, QKC_RT_ERR_INTERNAL,
                         "kernel '%s' (%s): damaged descriptor (tensor '%s' read in %lld-row groups)", qkrt_name(k),
                         v->isa ? v->isa : "?", tname(&k->tensors[tensor]), (long long)rows);
    /* the layout pads rows to a group of R and grows base-3 and N:M codes
     * less than 2x: bound it before qk_rowpack_size multiplies */
    if (qkrt_mul(qkrt_format_bytes(&p->f, qkrt_add(p->rows, rows), p->K), 4) < 0)
        return qkrt_fail(err, errsz, QKC_RT_ERR_SHAPE, "kernel '%s': tensor '%s' is too large for this shape",
                         qkrt_name(k), tname(&k->tensors[tensor]));
    *R = (int)rows;
    *bytes = qk_rowpack_size(&p->f, *R, p->rows, p->K);
    return QKC_RT_OK;
}

int64_t qkc_rt_repacked_bytes(const qkc_aot_kernel *k, int tensor, const int64_t *shape)
{
    packing p;
    int R;
    int64_t bytes;
    int st = open_repack(k, tensor, shape, &p, &R, &bytes, NULL, 0);
    free(p.table);
    return st == QKC_RT_OK ? bytes : -1;
}

int qkc_rt_repack(const qkc_aot_kernel *k, int tensor, const void *src, int64_t src_bytes, const int64_t *shape,
                  void *dst, int64_t dst_bytes, char *err, size_t errsz)
{
    packing p;
    int R;
    int64_t bytes;
    int st = open_repack(k, tensor, shape, &p, &R, &bytes, err, errsz);
    if (st == QKC_RT_OK && (!src || !dst) && bytes > 0)
        st = qkrt_fail(err, errsz, QKC_RT_ERR_INVALID_ARG, "qkc_rt_repack: NULL %s", !src ? "src" : "dst");
    if (st == QKC_RT_OK && src_bytes < p.bytes)
        st = qkrt_fail(err, errsz, QKC_RT_ERR_SHAPE, "qkc_rt_repack: tensor '%s' needs %lld bytes of its format, src has %lld",
                       tname(&k->tensors[tensor]), (long long)p.bytes, (long long)src_bytes);
    if (st == QKC_RT_OK && dst_bytes < bytes)
        st = qkrt_fail(err, errsz, QKC_RT_ERR_SHAPE, "qkc_rt_repack: tensor '%s' needs %lld bytes, dst has %lld",
                       tname(&k->tensors[tensor]), (long long)bytes, (long long)dst_bytes);
    if (st == QKC_RT_OK && bytes > 0) {
        if (R)
            qk_rowpack_pack(&p.f, R, src, p.rows, p.K, dst);
        else
            memmove(dst, src, (size_t)bytes);
    }
    free(p.table);
    return st;
}
