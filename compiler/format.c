/* format.c — the format descriptor at run time: validation and canonical
 * layout (qk_format_finish), exact decode of one element (qk_format_get),
 * the round-to-nearest quantizer (qk_format_pack) and its inverse.
 *
 * This file is the definition of every format's bytes: the reference
 * interpreter decodes through qk_format_get, the packers of the runtime
 * quantize through qk_format_pack, and the tiled-IR decode lowering must
 * agree with both. Nothing here knows a format by name. Scales and zero
 * points are read and written through an aligned local copy, because the
 * canonical layout has no alignment (a q4_0 block is 18 bytes). */
#include "compiler/format.h"

#include <float.h>
#include <math.h>
#include <string.h>

static int err_out(char *err, size_t errsz, const char *fmt, const char *name, int v)
{
    if (err && errsz)
        snprintf(err, errsz, fmt, name ? name : "?", v);
    return -1;
}

static int scale_dtype_ok(qk_dtype t)
{
    return t == QK_DT_F32 || t == QK_DT_F16 || t == QK_DT_BF16;
}

static int zero_dtype_ok(qk_dtype t)
{
    return t == QK_DT_U8 || t == QK_DT_I8 || t == QK_DT_F16 || t == QK_DT_F32;
}

int qk_format_finish(qk_format *f, char *err, size_t errsz)
{
    if (f->bits < 1 || f->bits > 8)
        return err_out(err, errsz, "format '%s': code width %d is not in 1..8", f->name, f->bits);
    if (f->block < 1 || f->block > QK_MAX_BLOCK)
        return err_out(err, errsz, "format '%s': block %d is not in 1..4096", f->name, f->block);
    if (f->code == QK_CODE_OFFSET && (f->offset < 0 || f->offset > (1 << f->bits) - 1))
        return err_out(err, errsz, "format '%s': offset %d does not fit the code width", f->name, f->offset);
    if (f->code != QK_CODE_SINT && f->code != QK_CODE_UINT && f->code != QK_CODE_OFFSET)
        return err_out(err, errsz, "format '%s': unknown code kind %d", f->name, (int)f->code);
    if (f->scale == QK_SCALE_BLOCK && !scale_dtype_ok(f->scale_dtype))
        return err_out(err, errsz, "format '%s': scale dtype %d must be f32, f16 or bf16", f->name,
                       (int)f->scale_dtype);
    if (f->zero == QK_ZERO_BLOCK && !zero_dtype_ok(f->zero_dtype))
        return err_out(err, errsz, "format '%s': zero dtype %d must be u8, i8, f16 or f32", f->name,
                       (int)f->zero_dtype);
    int sbytes = f->scale == QK_SCALE_BLOCK ? qk_dtype_size(f->scale_dtype) : 0;
    int zbytes = f->zero == QK_ZERO_BLOCK ? qk_dtype_size(f->zero_dtype) : 0;
    f->scale_off = 0;
    f->zero_off = sbytes;
    f->codes_off = sbytes + zbytes;
    f->code_bytes = (f->block * f->bits + 7) / 8;
    f->block_bytes = f->codes_off + f->code_bytes;
    return 0;
}

void qk_format_code_range(const qk_format *f, int *lo, int *hi)
{
    int n = 1 << f->bits;
    switch (f->code) {
    case QK_CODE_SINT: *lo = -n / 2, *hi = n / 2 - 1; break;
    case QK_CODE_OFFSET: *lo = -f->offset, *hi = n - 1 - f->offset; break;
    default: *lo = 0, *hi = n - 1; break;
    }
}

int qk_format_codeval(const qk_format *f, unsigned code)
{
    int n = 1 << f->bits;
    int c = (int)(code & (unsigned)(n - 1));
    if (f->code == QK_CODE_SINT)
        return c >= n / 2 ? c - n : c;
    if (f->code == QK_CODE_OFFSET)
        return c - f->offset;
    return c;
}

/* The raw bits-wide code whose codeval is v (v within the code range). */
static unsigned code_of(const qk_format *f, int v)
{
    unsigned mask = (1u << f->bits) - 1;
    if (f->code == QK_CODE_OFFSET)
        v += f->offset;
    return (unsigned)v & mask;
}

int64_t qk_format_row_bytes(const qk_format *f, int64_t k)
{
    return (k + f->block - 1) / f->block * f->block_bytes;
}

int64_t qk_format_size(const qk_format *f, int64_t rows, int64_t k)
{
    return rows * qk_format_row_bytes(f, k);
}

/* Reads a scalar of dtype t stored at p (any alignment). */
static double load_unaligned(qk_dtype t, const uint8_t *p)
{
    _Alignas(8) uint8_t tmp[8];
    memcpy(tmp, p, (size_t)qk_dtype_size(t));
    return qk_dtype_load(t, tmp, 0);
}

/* Stores v at p with dtype t's rounding; returns the value as stored. */
static double store_unaligned(qk_dtype t, uint8_t *p, double v)
{
    _Alignas(8) uint8_t tmp[8];
    qk_dtype_store(t, tmp, 0, v);
    memcpy(p, tmp, (size_t)qk_dtype_size(t));
    return qk_dtype_load(t, tmp, 0);
}

/* Bits [e*bits, (e+1)*bits) of the code bytes, LSB-first. A code spans at
 * most two bytes, and the second one exists whenever it is needed. */
static unsigned get_code(const uint8_t *codes, int bits, int e)
{
    int pos = e * bits, byte = pos / 8, shift = pos % 8;
    unsigned w = codes[byte];
    if (shift + bits > 8)
        w |= (unsigned)codes[byte + 1] << 8;
    return (w >> shift) & ((1u << bits) - 1);
}

/* ORs a code into zeroed code bytes. */
static void put_code(uint8_t *codes, int bits, int e, unsigned code)
{
    int pos = e * bits, byte = pos / 8, shift = pos % 8;
    unsigned w = code << shift;
    codes[byte] |= (uint8_t)(w & 0xff);
    if (shift + bits > 8)
        codes[byte + 1] |= (uint8_t)(w >> 8);
}

static double block_scale(const qk_format *f, const uint8_t *blk)
{
    return f->scale == QK_SCALE_BLOCK ? load_unaligned(f->scale_dtype, blk + f->scale_off) : 1.0;
}

static double block_zero(const qk_format *f, const uint8_t *blk)
{
    return f->zero == QK_ZERO_BLOCK ? load_unaligned(f->zero_dtype, blk + f->zero_off) : 0.0;
}

double qk_format_get(const qk_format *f, const uint8_t *row, int64_t k)
{
    int64_t b = k / f->block;
    const uint8_t *blk = row + b * f->block_bytes;
    int e = (int)(k - b * f->block);
    int cv = qk_format_codeval(f, get_code(blk + f->codes_off, f->bits, e));
    return (cv - block_zero(f, blk)) * block_scale(f, blk);
}

double qk_format_bits_per_weight(const qk_format *f)
{
    return f->block_bytes * 8.0 / f->block;
}

/* ---- the quantizer ---- */

/* Largest finite value of a scale dtype: scales saturate there instead of
 * becoming infinite (an infinite scale would decode 0 codes as NaN). */
static double finite_max(qk_dtype t)
{
    switch (t) {
    case QK_DT_F16: return 65504.0;
    case QK_DT_BF16: return 0x1.fep127;
    default: return FLT_MAX;
    }
}

/* Stores the block scale d (saturated to the dtype's finite range) and
 * returns it as stored; 1 when the format has no scale. */
static double put_scale(const qk_format *f, uint8_t *blk, double d)
{
    if (f->scale != QK_SCALE_BLOCK)
        return 1.0;
    double m = finite_max(f->scale_dtype);
    d = d > m ? m : d < -m ? -m : d;
    return store_unaligned(f->scale_dtype, blk + f->scale_off, d);
}

/* clamp(round_half_even(q)) in [lo, hi]; NaN counts as 0. */
static int quant(double q, int lo, int hi)
{
    if (isnan(q))
        q = 0;
    q = nearbyint(q);
    return q < lo ? lo : q > hi ? hi : (int)q;
}

/* Absmax scale of a block without zero point (see docs/formats.md): the
 * element of largest magnitude maps exactly onto an end of the code range,
 * onto lo when the range is wider below (int4: -8, as ggml's q4_0). */
static double absmax_scale(const float *x, int n, int lo, int hi)
{
    if (lo == 0) {
        double mx = 0;
        for (int i = 0; i < n; i++)
            if (x[i] > mx)
                mx = x[i];
        return mx / hi;
    }
    double m = 0;
    for (int i = 0; i < n; i++)
        if (fabs(x[i]) > fabs(m))
            m = x[i];
    if (-lo > hi || m < 0)
        return m / lo;
    return m / hi;
}

/* Block range [min(xmin, 0), max(xmax, 0)], NaNs skipped. */
static void block_minmax(const float *x, int n, double *mn, double *mx)
{
    *mn = 0, *mx = 0;
    for (int i = 0; i < n; i++) {
        if (x[i] < *mn)
            *mn = x[i];
        if (x[i] > *mx)
            *mx = x[i];
    }
}

/* Chooses and stores scale and zero point of one block; returns them as
 * stored in *d and *z. */
static void choose_params(const qk_format *f, const float *x, int n, uint8_t *blk, double *d, double *z)
{
    int lo, hi;
    qk_format_code_range(f, &lo, &hi);
    *z = 0;
    if (f->zero != QK_ZERO_BLOCK) {
        *d = put_scale(f, blk, f->scale == QK_SCALE_BLOCK ? absmax_scale(x, n, lo, hi) : 1.0);
        return;
    }
    double mn, mx;
    block_minmax(x, n, &mn, &mx);
    double dd = f->scale == QK_SCALE_BLOCK ? (mx - mn) / (hi - lo) : 1.0;
    *d = put_scale(f, blk, dd);
    double zr = dd != 0 && isfinite(dd) ? lo - mn / dd : 0;
    *z = store_unaligned(f->zero_dtype, blk + f->zero_off, zr);
}

/* Quantizes n <= block values into one zeroed block. */
static void pack_block(const qk_format *f, const float *x, int n, uint8_t *blk)
{
    int lo, hi;
    qk_format_code_range(f, &lo, &hi);
    double d, z;
    choose_params(f, x, n, blk, &d, &z);
    uint8_t *codes = blk + f->codes_off;
    for (int i = 0; i < n; i++) {
        int cv;
        if (d == 0 || !isfinite(d))
            cv = quant(z, lo, hi); /* every code decodes to 0 (or d is unusable) */
        else
            cv = quant(x[i] / d + z, lo, hi);
        put_code(codes, f->bits, i, code_of(f, cv));
    }
}

void qk_format_pack(const qk_format *f, const float *src, int64_t rows, int64_t k, uint8_t *dst)
{
    int64_t nblocks = (k + f->block - 1) / f->block;
    memset(dst, 0, (size_t)qk_format_size(f, rows, k));
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t b = 0; b < nblocks; b++) {
            int64_t first = b * f->block;
            int n = (int)(k - first < f->block ? k - first : f->block);
            pack_block(f, src + r * k + first, n, dst + (r * nblocks + b) * f->block_bytes);
        }
    }
}

void qk_format_unpack(const qk_format *f, const uint8_t *src, int64_t rows, int64_t k, float *dst)
{
    int64_t rb = qk_format_row_bytes(f, k);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < k; i++)
            dst[r * k + i] = (float)qk_format_get(f, src + r * rb, i);
}

void qk_format_print(const qk_format *f, qk_buf *out)
{
    qk_buf_printf(out, "format %s { code = ", f->name ? f->name : "?");
    if (f->code == QK_CODE_SINT)
        qk_buf_printf(out, "int%d", f->bits);
    else
        qk_buf_printf(out, "uint%d", f->bits);
    if (f->code == QK_CODE_OFFSET)
        qk_buf_printf(out, " offset %d", f->offset);
    qk_buf_printf(out, "; block = %d", f->block);
    if (f->scale == QK_SCALE_BLOCK)
        qk_buf_printf(out, "; scale = %s", qk_dtype_name(f->scale_dtype));
    if (f->zero == QK_ZERO_BLOCK)
        qk_buf_printf(out, "; zero = %s", qk_dtype_name(f->zero_dtype));
    qk_buf_printf(out, " }  # %.2f bits/weight", qk_format_bits_per_weight(f));
}
