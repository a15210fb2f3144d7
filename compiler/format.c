/* format.c — the format descriptor at run time: stored numbers (qk_num_)
 * and OCP minifloats, validation and layouts (qk_format_finish), items
 * of fields across pieces and placements, exact decode of one element
 * (qk_format_get), the quantizer (qk_format_pack) and its inverse, the
 * DSL printer.
 *
 * This file is the definition of every format's bytes: the reference
 * interpreter decodes through qk_format_get, the runtime's packers
 * quantize through qk_format_pack, and the tiled-IR decode lowering
 * (tir_decode.c) must agree with both; for kernel-quantizable formats its
 * encoder must write the bytes qk_format_pack writes, so the quantizer
 * arithmetic of those formats is f32, sequential in element order (see
 * the comment above qk_format_pack). Nothing here knows a format by name.
 * Stored scalars are read and written as raw items, so no alignment is
 * ever needed. */
#include "compiler/format.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const field_names[] = {
#define QK_FIELD_NAME(id, name) name,
    QK_FIELDS(QK_FIELD_NAME)
#undef QK_FIELD_NAME
};
_Static_assert(sizeof field_names / sizeof field_names[0] == QK_FIELD_COUNT, "field table");

/* "format 'NAME': " + message into err; returns -1. */
static int fail(char *err, size_t errsz, const qk_format *f, const char *fmt, ...)
{
    if (!err || !errsz)
        return -1;
    int n = snprintf(err, errsz, "format '%s': ", f->name ? f->name : "?");
    if (n >= 0 && (size_t)n < errsz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errsz - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- minifloats ---- */

typedef struct mf_type {
    int ebits, mbits, bias;
    qk_mf_special sp;
} mf_type;

/* Magnitude bits of the largest finite value. */
static uint32_t mf_max_code(mf_type m)
{
    uint32_t all = (1u << (m.ebits + m.mbits)) - 1;
    if (m.sp == QK_MF_FINITE)
        return all;
    if (m.sp == QK_MF_FN)
        return all - 1;
    return all - (1u << m.mbits);
}

static int mf_has_nan(mf_type m)
{
    return m.sp == QK_MF_FN || (m.sp == QK_MF_IEEE && m.mbits > 0);
}

/* Value of magnitude bits c (no sign). */
static double mf_magnitude(mf_type m, uint32_t c)
{
    uint32_t emask = (1u << m.ebits) - 1, mmask = (1u << m.mbits) - 1;
    uint32_t e = (c >> m.mbits) & emask, man = c & mmask;
    if (m.sp == QK_MF_IEEE && e == emask)
        return man ? NAN : INFINITY;
    if (m.sp == QK_MF_FN && e == emask && man == mmask)
        return NAN;
    if (e == 0)
        return ldexp((double)man, 1 - m.bias - m.mbits);
    return ldexp((double)(man | (1u << m.mbits)), (int)e - m.bias - m.mbits);
}

/* Magnitude bits nearest to a >= 0 (round half to even on the mantissa,
 * saturating to the largest finite value). */
static uint32_t mf_round(mf_type m, double a)
{
    uint32_t maxc = mf_max_code(m);
    double maxv = mf_magnitude(m, maxc);
    if (a >= maxv)
        return maxc;
    if (a == 0)
        return 0;
    int e;
    frexp(a, &e);
    int ex = e - 1 < 1 - m.bias ? 1 - m.bias : e - 1; /* subnormals share the lowest binade */
    double q = ldexp(1.0, ex - m.mbits);              /* spacing of that binade */
    double n = nearbyint(a / q);                      /* a / q is exact */
    if (n * q > maxv)
        return maxc;
    /* n in [2^mbits, 2^(mbits+1)], or below 2^mbits for subnormals; the
     * carry of n == 2^(mbits+1) into the exponent falls out of the sum. */
    return ((uint32_t)(ex + m.bias - 1) << m.mbits) + (uint32_t)n;
}

double qk_minifloat_decode(int ebits, int mbits, int bias, qk_mf_special sp, int is_unsigned, uint32_t code)
{
    mf_type m = {ebits, mbits, bias, sp};
    uint32_t mag = code & ((1u << (ebits + mbits)) - 1);
    double v = mf_magnitude(m, mag);
    if (!is_unsigned && (code >> (ebits + mbits) & 1))
        return -v;
    return v;
}

uint32_t qk_minifloat_encode(int ebits, int mbits, int bias, qk_mf_special sp, int is_unsigned, double v)
{
    mf_type m = {ebits, mbits, bias, sp};
    if (isnan(v))
        return mf_has_nan(m) ? (1u << (ebits + mbits)) - 1 : 0;
    int neg = signbit(v) != 0;
    if (neg && is_unsigned)
        return 0;
    uint32_t mag = mf_round(m, fabs(v));
    return neg ? mag | 1u << (ebits + mbits) : mag;
}

static double mf_max_value(int ebits, int mbits, int bias, qk_mf_special sp)
{
    mf_type m = {ebits, mbits, bias, sp};
    return mf_magnitude(m, mf_max_code(m));
}

/* ---- qk_num ---- */

static const mf_type mf_f16 = {5, 10, 15, QK_MF_IEEE}, mf_bf16 = {8, 7, 127, QK_MF_IEEE},
                     mf_e4m3 = {4, 3, 7, QK_MF_FN};

const char *qk_num_name(qk_num n, int bits)
{
    static const char *const uints[] = {"uint0", "uint1", "uint2", "uint3", "uint4",
                                        "uint5", "uint6", "uint7", "uint8"};
    switch (n) {
    case QK_NUM_F32: return "f32";
    case QK_NUM_F16: return "f16";
    case QK_NUM_BF16: return "bf16";
    case QK_NUM_E8M0: return "e8m0";
    case QK_NUM_UE4M3: return "ue4m3";
    case QK_NUM_E4M3: return "e4m3";
    case QK_NUM_U8: return "u8";
    case QK_NUM_I8: return "i8";
    case QK_NUM_UINT: return bits >= 0 && bits <= 8 ? uints[bits] : "uint?";
    default: return "none";
    }
}

int qk_num_bits(qk_num n, int bits)
{
    switch (n) {
    case QK_NUM_F32: return 32;
    case QK_NUM_F16:
    case QK_NUM_BF16: return 16;
    case QK_NUM_UINT: return bits;
    case QK_NUM_NONE: return 0;
    default: return 8;
    }
}

static int num_bytes(qk_num n, int bits)
{
    return (qk_num_bits(n, bits) + 7) / 8;
}

/* The float-like types a scale or min may have. */
static int num_is_float(qk_num n)
{
    return n == QK_NUM_F32 || n == QK_NUM_F16 || n == QK_NUM_BF16 || n == QK_NUM_E8M0 || n == QK_NUM_UE4M3 ||
           n == QK_NUM_E4M3;
}

/* Largest finite value of a type. */
static double num_max(qk_num n, int bits)
{
    switch (n) {
    case QK_NUM_F32: return FLT_MAX;
    case QK_NUM_F16: return 65504.0;
    case QK_NUM_BF16: return 0x1.fep127;
    case QK_NUM_E8M0: return 0x1p127;
    case QK_NUM_UE4M3:
    case QK_NUM_E4M3: return 448.0;
    case QK_NUM_U8: return 255.0;
    case QK_NUM_I8: return 127.0;
    case QK_NUM_UINT: return (double)((1u << bits) - 1);
    default: return 1.0;
    }
}

double qk_num_decode(qk_num n, uint32_t raw)
{
    switch (n) {
    case QK_NUM_F32: {
        float x;
        memcpy(&x, &raw, 4);
        return x;
    }
    case QK_NUM_F16: return qk_f16_to_f32((uint16_t)raw);
    case QK_NUM_BF16: return qk_bf16_to_f32((uint16_t)raw);
    case QK_NUM_E8M0: return (raw & 0xff) == 0xff ? NAN : ldexp(1.0, (int)(raw & 0xff) - 127);
    case QK_NUM_UE4M3: return qk_minifloat_decode(4, 3, 7, QK_MF_FN, 1, raw & 0x7f);
    case QK_NUM_E4M3: return qk_minifloat_decode(4, 3, 7, QK_MF_FN, 0, raw & 0xff);
    case QK_NUM_U8: return raw & 0xff;
    case QK_NUM_I8: return (int8_t)(uint8_t)raw;
    case QK_NUM_UINT: return raw;
    default: return 1.0;
    }
}

/* e8m0: the smallest power of two >= v, inside [2^-127, 2^127]. */
static uint32_t e8m0_encode(double v)
{
    if (isnan(v))
        return 0xff;
    if (!(v > 0x1p-127))
        return 0;
    if (v >= 0x1p127)
        return 254;
    int e;
    double fr = frexp(v, &e);
    int p = fr == 0.5 ? e - 1 : e;
    return (uint32_t)(p + 127);
}

/* Round half to even into [lo, hi]; NaN -> 0. */
static int32_t sat_round(double v, int32_t lo, int32_t hi)
{
    if (isnan(v))
        return 0;
    v = nearbyint(v);
    return v < lo ? lo : v > hi ? hi : (int32_t)v;
}

static uint32_t mf_encode_t(mf_type m, int uns, double v)
{
    return qk_minifloat_encode(m.ebits, m.mbits, m.bias, m.sp, uns, v);
}

uint32_t qk_num_encode(qk_num n, int bits, double v)
{
    switch (n) {
    case QK_NUM_F32: {
        float x = (float)v;
        if (isinf(x) || (isnan(x) && !isnan(v)))
            x = copysignf(FLT_MAX, x);
        uint32_t r;
        memcpy(&r, &x, 4);
        return r;
    }
    case QK_NUM_F16: return mf_encode_t(mf_f16, 0, v);
    case QK_NUM_BF16: return mf_encode_t(mf_bf16, 0, v);
    case QK_NUM_E8M0: return e8m0_encode(v);
    case QK_NUM_UE4M3: return mf_encode_t(mf_e4m3, 1, v);
    case QK_NUM_E4M3: return mf_encode_t(mf_e4m3, 0, v);
    case QK_NUM_U8: return (uint32_t)sat_round(v, 0, 255);
    case QK_NUM_I8: return (uint32_t)(uint8_t)(int8_t)sat_round(v, -128, 127);
    case QK_NUM_UINT: return (uint32_t)sat_round(v, 0, (int32_t)((1u << bits) - 1));
    default: return 0;
    }
}

/* The value v becomes when stored as n, as f32. */
static float num_round(qk_num n, int bits, float v)
{
    return (float)qk_num_decode(n, qk_num_encode(n, bits, v));
}

/* ---- codes ---- */

void qk_format_code_range(const qk_format *f, int *lo, int *hi)
{
    int n = f->bits >= 1 && f->bits <= 16 ? 1 << f->bits : 2;
    switch (f->code) {
    case QK_CODE_SINT: *lo = -n / 2, *hi = n / 2 - 1; break;
    case QK_CODE_UINT: *lo = 0, *hi = n - 1; break;
    case QK_CODE_OFFSET: *lo = -f->offset, *hi = n - 1 - f->offset; break;
    case QK_CODE_TERNARY:
    case QK_CODE_BINARY: *lo = -1, *hi = 1; break;
    default: *lo = 0, *hi = 0; break;
    }
}

double qk_format_codeval(const qk_format *f, uint32_t code)
{
    uint32_t mask = f->bits >= 32 ? 0xffffffffu : (1u << f->bits) - 1;
    uint32_t c = code & mask;
    switch (f->code) {
    case QK_CODE_SINT: return c >= (1u << (f->bits - 1)) ? (double)c - (double)(1u << f->bits) : (double)c;
    case QK_CODE_UINT: return c;
    case QK_CODE_OFFSET: return (double)c - f->offset;
    case QK_CODE_TERNARY: return (double)c - 1; /* a 2-bit 3 is +2, as ggml decodes it */
    case QK_CODE_BINARY: return c & 1 ? -1.0 : 1.0;
    case QK_CODE_MINIFLOAT: return qk_minifloat_decode(f->ebits, f->mbits, f->bias, f->special, 0, c);
    case QK_CODE_TABLE: return f->table ? (float)f->table[c] : NAN;
    default: return NAN;
    }
}

/* The raw code whose codeval is v (integer kinds, v in range). */
static uint32_t code_of(const qk_format *f, int v)
{
    switch (f->code) {
    case QK_CODE_OFFSET: return (uint32_t)(v + f->offset);
    case QK_CODE_TERNARY: return (uint32_t)(v + 1);
    case QK_CODE_BINARY: return v < 0 ? 1u : 0u;
    default: return (uint32_t)v & ((1u << f->bits) - 1);
    }
}

/* ---- pieces and items ---- */

static const int pow3[5] = {1, 3, 9, 27, 81};

static uint32_t base3_digit(uint8_t q, int n)
{
    return (uint32_t)(((q * pow3[n]) & 255) * 3) >> 8;
}

/* Adds digit d at position n to the byte q (whose sum of digits * 3^(4-n)
 * is recovered exactly as q * 243 >> 8). */
static uint8_t base3_add(uint8_t q, int n, uint32_t d)
{
    uint32_t s = ((uint32_t)q * 243) >> 8;
    s += d * (uint32_t)pow3[4 - n];
    return (uint8_t)((s * 256 + 242) / 243);
}

/* Byte and bit (BASE3: digit) of item t of a piece (t relative to first). */
static void piece_pos(const qk_piece *p, int t, int *byte, int *bit)
{
    if (p->place == QK_PLACE_STREAM) {
        int64_t pos = (int64_t)p->byte * 8 + p->shift + (int64_t)t * p->width;
        *byte = (int)(pos / 8), *bit = (int)(pos % 8);
        return;
    }
    int slots = p->place == QK_PLACE_BASE3 ? 5 : (8 - p->shift) / p->width;
    *byte = p->byte + t / (p->group * slots) * p->group + t % p->group;
    *bit = p->place == QK_PLACE_BASE3 ? (t / p->group) % slots : p->shift + p->width * ((t / p->group) % slots);
}

static uint32_t piece_get(const qk_piece *p, const uint8_t *blk, int t)
{
    int byte, bit;
    piece_pos(p, t, &byte, &bit);
    if (p->place == QK_PLACE_BASE3)
        return base3_digit(blk[byte], bit);
    uint64_t w = 0;
    int nb = (bit + p->width + 7) / 8;
    for (int i = 0; i < nb; i++)
        w |= (uint64_t)blk[byte + i] << (8 * i);
    return (uint32_t)((w >> bit) & ((1ull << p->width) - 1));
}

static void piece_put(const qk_piece *p, uint8_t *blk, int t, uint32_t v)
{
    int byte, bit;
    piece_pos(p, t, &byte, &bit);
    if (p->place == QK_PLACE_BASE3) {
        blk[byte] = base3_add(blk[byte], bit, v);
        return;
    }
    uint64_t w = (uint64_t)v << bit;
    int nb = (bit + p->width + 7) / 8;
    for (int i = 0; i < nb; i++)
        blk[byte + i] |= (uint8_t)(w >> (8 * i));
}

uint32_t qk_format_item(const qk_format *f, const uint8_t *blk, int fl, int i)
{
    uint32_t v = 0;
    for (int k = 0; k < f->npieces; k++) {
        const qk_piece *p = &f->pieces[k];
        if (p->field == fl && i >= p->first && i < p->first + p->count)
            v |= piece_get(p, blk, i - p->first) << p->lo;
    }
    return v;
}

uint32_t qk_format_base3_digit(uint8_t q, int place)
{
    return base3_digit(q, place);
}

int qk_format_item_bits(const qk_format *f, int fl, int i, qk_item_bits *out, int max)
{
    int n = 0;
    for (int k = 0; k < f->npieces; k++) {
        const qk_piece *p = &f->pieces[k];
        if (p->field != fl || i < p->first || i >= p->first + p->count)
            continue;
        if (n < max) {
            qk_item_bits *b = &out[n];
            piece_pos(p, i - p->first, &b->byte, &b->bit);
            b->width = p->width;
            b->lo = p->lo;
            b->base3 = p->place == QK_PLACE_BASE3;
        }
        n++;
    }
    return n;
}

void qk_format_put_item(const qk_format *f, uint8_t *blk, int fl, int i, uint32_t v)
{
    for (int k = 0; k < f->npieces; k++) {
        const qk_piece *p = &f->pieces[k];
        if (p->field == fl && i >= p->first && i < p->first + p->count)
            piece_put(p, blk, i - p->first, (uint32_t)((v >> p->lo) & ((1ull << p->width) - 1)));
    }
}

/* ---- qk_format_finish: validation ---- */

static int check_code(qk_format *f, char *err, size_t errsz)
{
    switch (f->code) {
    case QK_CODE_SINT:
    case QK_CODE_UINT:
    case QK_CODE_OFFSET:
        if (f->bits < 1 || f->bits > 8)
            return fail(err, errsz, f, "code width %d is not in 1..8", f->bits);
        if (f->code == QK_CODE_OFFSET && (f->offset < 0 || f->offset > (1 << f->bits) - 1))
            return fail(err, errsz, f, "offset %d does not fit the code width %d", f->offset, f->bits);
        return 0;
    case QK_CODE_TERNARY:
        f->bits = f->bits ? f->bits : 2;
        return f->bits == 2 ? 0 : fail(err, errsz, f, "ternary codes are 2 bits wide, not %d", f->bits);
    case QK_CODE_BINARY:
        f->bits = f->bits ? f->bits : 1;
        return f->bits == 1 ? 0 : fail(err, errsz, f, "binary codes are 1 bit wide, not %d", f->bits);
    case QK_CODE_MINIFLOAT:
        if (f->ebits < 1 || f->mbits < 0 || 1 + f->ebits + f->mbits > 8)
            return fail(err, errsz, f, "minifloat e%dm%d does not fit 8 bits", f->ebits, f->mbits);
        f->bits = f->bits ? f->bits : 1 + f->ebits + f->mbits;
        if (f->bits != 1 + f->ebits + f->mbits)
            return fail(err, errsz, f, "minifloat e%dm%d is %d bits wide, not %d", f->ebits, f->mbits,
                        1 + f->ebits + f->mbits, f->bits);
        if (f->special != QK_MF_FINITE && f->special != QK_MF_FN && f->special != QK_MF_IEEE)
            return fail(err, errsz, f, "unknown minifloat special values %d", (int)f->special);
        return 0;
    case QK_CODE_TABLE:
        if (f->bits < 1 || f->bits > 8)
            return fail(err, errsz, f, "table code width %d is not in 1..8", f->bits);
        return f->table ? 0 : fail(err, errsz, f, "table code without values");
    case QK_CODE_VQ:
        if (f->bits < 1 || f->bits > 16)
            return fail(err, errsz, f, "vq index width %d is not in 1..16", f->bits);
        if (f->vq_dim < 1 || f->vq_dim > 64)
            return fail(err, errsz, f, "vq dim %d is not in 1..64", f->vq_dim);
        if (f->vq_books < 1 || f->vq_books > QK_MAX_VQ_BOOKS)
            return fail(err, errsz, f, "vq books %d is not in 1..%d", f->vq_books, QK_MAX_VQ_BOOKS);
        if (f->vq_dtype != QK_DT_F16 && f->vq_dtype != QK_DT_F32)
            return fail(err, errsz, f, "codebook type must be f16 or f32");
        if (f->vq_signs && (f->vq_dim < 2 || f->vq_dim > 33))
            return fail(err, errsz, f, "vq signs need a dim in 2..33, not %d", f->vq_dim);
        return 0;
    default: return fail(err, errsz, f, "unknown code kind %d", (int)f->code);
    }
}

static int check_sub_num(const qk_format *f, qk_num n, int bits, const char *what, char *err, size_t errsz)
{
    if (n == QK_NUM_UINT && (bits < 1 || bits > 8))
        return fail(err, errsz, f, "%s width %d is not in 1..8", what, bits);
    if (n != QK_NUM_UINT && !num_is_float(n))
        return fail(err, errsz, f, "%s type must be uintN or f32, f16, bf16, e8m0, ue4m3, e4m3", what);
    return 0;
}

static int check_scale(qk_format *f, char *err, size_t errsz)
{
    if (f->scale_per < QK_PER_NONE || f->scale_per > QK_PER_BLOCK)
        return fail(err, errsz, f, "unknown scale kind %d", (int)f->scale_per);
    if (f->sub_block && f->scale_per != QK_PER_BLOCK)
        return fail(err, errsz, f, "sub-block scales need a per-block scale");
    if (f->scale_per == QK_PER_NONE)
        return 0;
    if (!num_is_float(f->scale_num) && !(f->scale_num == QK_NUM_NONE && f->sub_block))
        return fail(err, errsz, f, "scale type %s must be f32, f16, bf16, e8m0, ue4m3 or e4m3",
                    qk_num_name(f->scale_num, 0));
    if (!f->sub_block)
        return 0;
    if (f->sub_block < 1 || f->sub_block > f->block || f->block % f->sub_block)
        return fail(err, errsz, f, "sub-block %d does not divide block %d", f->sub_block, f->block);
    return check_sub_num(f, f->sub_num, f->sub_bits, "sub-block scale", err, errsz);
}

static int has_min(const qk_format *f)
{
    return f->min_num != QK_NUM_NONE || f->submin_num != QK_NUM_NONE;
}

static int check_min(qk_format *f, char *err, size_t errsz)
{
    if (!has_min(f))
        return 0;
    if (!num_is_float(f->min_num))
        return fail(err, errsz, f, "min type %s must be f32, f16, bf16, e8m0, ue4m3 or e4m3",
                    qk_num_name(f->min_num, 0));
    if (f->code != QK_CODE_UINT)
        return fail(err, errsz, f, "min needs an unsigned code (uintN)");
    if (f->zero != QK_ZERO_NONE)
        return fail(err, errsz, f, "conflicting attributes: zero and min");
    f->min_sign = f->min_sign < 0 ? -1 : 1;
    if (f->submin_num == QK_NUM_NONE)
        return 0;
    if (!f->sub_block)
        return fail(err, errsz, f, "two-level min needs a two-level scale (scale = NUM * SUB per N)");
    return check_sub_num(f, f->submin_num, f->submin_bits, "sub-block min", err, errsz);
}

static int check_zero(qk_format *f, char *err, size_t errsz)
{
    if (f->zero == QK_ZERO_NONE)
        return 0;
    if (f->code != QK_CODE_SINT && f->code != QK_CODE_UINT && f->code != QK_CODE_OFFSET &&
        f->code != QK_CODE_TERNARY)
        return fail(err, errsz, f, "zero points need an integer code");
    if (f->sub_block)
        return fail(err, errsz, f, "zero points cannot be combined with sub-block scales");
    if (f->zero == QK_ZERO_CONST)
        return isfinite(f->zero_const) ? 0 : fail(err, errsz, f, "constant zero point is not finite");
    if (f->zero != QK_ZERO_BLOCK)
        return fail(err, errsz, f, "unknown zero point kind %d", (int)f->zero);
    qk_num z = f->zero_num;
    if (z != QK_NUM_U8 && z != QK_NUM_I8 && z != QK_NUM_F16 && z != QK_NUM_F32)
        return fail(err, errsz, f, "zero type %s must be u8, i8, f16 or f32", qk_num_name(z, 0));
    return 0;
}

static int check_sparse(qk_format *f, char *err, size_t errsz)
{
    if (!f->sp_n) {
        f->sp_m = 0;
        return 0;
    }
    if (f->sp_n < 1 || f->sp_m > 16 || f->sp_n >= f->sp_m)
        return fail(err, errsz, f, "sparsity %d:%d needs 1 <= N < M <= 16", f->sp_n, f->sp_m);
    if (f->block % f->sp_m)
        return fail(err, errsz, f, "block %d is not a multiple of the sparsity group %d", f->block, f->sp_m);
    if (f->sub_block % f->sp_m)
        return fail(err, errsz, f, "sub-block %d is not a multiple of the sparsity group %d", f->sub_block,
                    f->sp_m);
    if (f->code == QK_CODE_VQ)
        return fail(err, errsz, f, "sparsity cannot be combined with vq codes");
    return 0;
}

static int check_attrs(qk_format *f, char *err, size_t errsz)
{
    if (check_code(f, err, errsz))
        return -1;
    if (f->block < 1 || f->block > QK_MAX_BLOCK)
        return fail(err, errsz, f, "block %d is not in 1..%d", f->block, QK_MAX_BLOCK);
    if (f->code == QK_CODE_VQ && f->block % f->vq_dim)
        return fail(err, errsz, f, "block %d is not a multiple of the vq dim %d", f->block, f->vq_dim);
    if (f->code == QK_CODE_VQ && f->sub_block)
        return fail(err, errsz, f, "vq codes cannot have sub-block scales");
    if (check_scale(f, err, errsz) || check_zero(f, err, errsz) || check_min(f, err, errsz) ||
        check_sparse(f, err, errsz))
        return -1;
    if (f->tensor_scale != 0 && f->tensor_scale != 1)
        return fail(err, errsz, f, "tensor_scale must be 0 or 1");
    return 0;
}

/* ---- qk_format_finish: fields and layout ---- */

static void set_field(qk_format *f, int fl, int items, int width)
{
    f->items[fl] = items;
    f->width[fl] = width;
}

static void fill_fields(qk_format *f)
{
    memset(f->items, 0, sizeof f->items);
    memset(f->width, 0, sizeof f->width);
    f->kept = f->sp_n ? f->block / f->sp_m * f->sp_n : f->block;
    if (f->scale_per == QK_PER_BLOCK && f->scale_num != QK_NUM_NONE)
        set_field(f, QK_FIELD_SCALE, 1, qk_num_bits(f->scale_num, 0));
    if (f->zero == QK_ZERO_BLOCK)
        set_field(f, QK_FIELD_ZERO, 1, qk_num_bits(f->zero_num, 0));
    if (f->min_num != QK_NUM_NONE)
        set_field(f, QK_FIELD_MIN, 1, qk_num_bits(f->min_num, 0));
    if (f->sub_block)
        set_field(f, QK_FIELD_SUBSCALE, f->block / f->sub_block, qk_num_bits(f->sub_num, f->sub_bits));
    if (f->submin_num != QK_NUM_NONE)
        set_field(f, QK_FIELD_SUBMIN, f->block / f->sub_block, qk_num_bits(f->submin_num, f->submin_bits));
    if (f->code == QK_CODE_VQ)
        set_field(f, QK_FIELD_CODES, f->block / f->vq_dim * f->vq_books, f->bits);
    else
        set_field(f, QK_FIELD_CODES, f->kept, f->bits);
    if (f->sp_n) {
        int w = 0;
        while ((1 << w) < f->sp_m)
            w++;
        set_field(f, QK_FIELD_INDEX, f->kept, w);
    }
    if (f->code == QK_CODE_VQ && f->vq_signs)
        set_field(f, QK_FIELD_SIGNS, f->block / f->vq_dim, f->vq_dim - 1);
}

/* Every field in qk_field order, each on a fresh byte, packed LSB-first. */
static void canonical_layout(qk_format *f)
{
    int cursor = 0;
    f->npieces = 0;
    for (int fl = 0; fl < QK_FIELD_COUNT; fl++) {
        if (!f->items[fl])
            continue;
        f->pieces[f->npieces++] = (qk_piece){.field = fl, .place = QK_PLACE_STREAM, .first = 0,
                                             .count = f->items[fl], .lo = 0, .width = f->width[fl],
                                             .byte = cursor};
        cursor += (f->items[fl] * f->width[fl] + 7) / 8;
    }
}

static int check_piece(const qk_format *f, int k, char *err, size_t errsz)
{
    const qk_piece *p = &f->pieces[k];
    if (p->field < 0 || p->field >= QK_FIELD_COUNT)
        return fail(err, errsz, f, "layout item %d: unknown field %d", k + 1, p->field);
    const char *fn = field_names[p->field];
    int items = f->items[p->field], width = f->width[p->field];
    if (!items)
        return fail(err, errsz, f, "layout places %s, which the format does not have", fn);
    if (p->first < 0 || p->count < 1 || p->first + p->count > items)
        return fail(err, errsz, f, "layout item %s[%d:%d] is outside items 0..%d", fn, p->first,
                    p->first + p->count, items);
    if (p->lo < 0 || p->width < 1 || p->lo + p->width > width)
        return fail(err, errsz, f, "layout item %s bits %d:%d is outside bits 0..%d", fn, p->lo, p->lo + p->width,
                    width);
    if (p->byte < 0 || p->shift < 0 || p->shift > 7)
        return fail(err, errsz, f, "layout item %s: bad position (byte %d, shift %d)", fn, p->byte, p->shift);
    if (p->place == QK_PLACE_STREAM)
        return 0;
    if (p->group < 1)
        return fail(err, errsz, f, "layout item %s: group %d must be >= 1", fn, p->group);
    if (p->place == QK_PLACE_INTERLEAVE) {
        if (p->width > 8 - p->shift)
            return fail(err, errsz, f, "layout item %s: %d bits do not fit a byte after shift %d", fn, p->width,
                        p->shift);
        return 0;
    }
    if (p->place != QK_PLACE_BASE3)
        return fail(err, errsz, f, "layout item %s: unknown placement %d", fn, p->place);
    if (p->field != QK_FIELD_CODES || f->code != QK_CODE_TERNARY || p->lo != 0 || p->width != 2 || p->shift)
        return fail(err, errsz, f, "layout item %s: base3 places whole ternary codes, without shift", fn);
    return 0;
}

/* Number of bytes a piece reaches into (its last byte + 1). */
static int piece_end(const qk_piece *p)
{
    int end = 0;
    for (int t = 0; t < p->count; t++) {
        int byte, bit;
        piece_pos(p, t, &byte, &bit);
        int last = p->place == QK_PLACE_BASE3 ? byte : byte + (bit + p->width - 1) / 8;
        end = last + 1 > end ? last + 1 : end;
    }
    return end;
}

/* Marks the block bits a piece occupies (BASE3: whole bytes) in occ
 * (owner piece + 1); reports a bit owned by another piece. */
static int mark_bytes(const qk_format *f, int k, uint8_t *occ, char *err, size_t errsz)
{
    const qk_piece *p = &f->pieces[k];
    for (int t = 0; t < p->count; t++) {
        int byte, bit, n = p->place == QK_PLACE_BASE3 ? 8 : p->width;
        piece_pos(p, t, &byte, &bit);
        int first = p->place == QK_PLACE_BASE3 ? byte * 8 : byte * 8 + bit;
        for (int b = first; b < first + n; b++) {
            int mine = p->place == QK_PLACE_BASE3 && occ[b] == k + 1;
            if (occ[b] && !mine)
                return fail(err, errsz, f, "layout: %s and %s share bit %d of byte %d", field_names[p->field],
                            field_names[f->pieces[occ[b] - 1].field], b % 8, b / 8);
            occ[b] = (uint8_t)(k + 1);
        }
    }
    return 0;
}

/* Every bit of every item of every field is placed exactly once. */
static int check_coverage(const qk_format *f, char *err, size_t errsz)
{
    int rc = 0;
    for (int fl = 0; fl < QK_FIELD_COUNT && !rc; fl++) {
        int n = f->items[fl] * f->width[fl];
        if (!n)
            continue;
        uint8_t *cnt = qk_xcalloc((size_t)n, 1);
        for (int k = 0; k < f->npieces; k++) {
            const qk_piece *p = &f->pieces[k];
            if (p->field == fl)
                for (int i = p->first; i < p->first + p->count; i++)
                    for (int b = p->lo; b < p->lo + p->width; b++)
                        cnt[i * f->width[fl] + b]++;
        }
        for (int i = 0; i < n && !rc; i++)
            if (cnt[i] != 1)
                rc = fail(err, errsz, f, "layout places bit %d of %s item %d %s", i % f->width[fl], field_names[fl],
                          i / f->width[fl], cnt[i] ? "more than once" : "nowhere");
        free(cnt);
    }
    return rc;
}

static int check_layout(qk_format *f, char *err, size_t errsz)
{
    if (f->npieces < 1 || f->npieces > QK_MAX_PIECES)
        return fail(err, errsz, f, "layout has %d items (1..%d)", f->npieces, QK_MAX_PIECES);
    int end = 0;
    for (int k = 0; k < f->npieces; k++) {
        if (check_piece(f, k, err, errsz))
            return -1;
        int e = piece_end(&f->pieces[k]);
        end = e > end ? e : end;
    }
    if (check_coverage(f, err, errsz))
        return -1;
    uint8_t *occ = qk_xcalloc((size_t)end * 8, 1);
    int rc = 0;
    for (int k = 0; k < f->npieces && !rc; k++)
        rc = mark_bytes(f, k, occ, err, errsz);
    free(occ);
    f->block_bytes = end;
    return rc;
}

int qk_format_finish(qk_format *f, char *err, size_t errsz)
{
    if (check_attrs(f, err, errsz))
        return -1;
    fill_fields(f);
    if (f->npieces == 0)
        canonical_layout(f);
    if (check_layout(f, err, errsz))
        return -1;
    f->row_header_bytes = f->scale_per == QK_PER_ROW ? num_bytes(f->scale_num, 0) : 0;
    f->tensor_header_bytes = (f->scale_per == QK_PER_TENSOR ? num_bytes(f->scale_num, 0) : 0) +
                             (f->tensor_scale ? 4 : 0);
    return 0;
}

/* ---- sizes ---- */

int64_t qk_format_row_bytes(const qk_format *f, int64_t k)
{
    return f->row_header_bytes + (k + f->block - 1) / f->block * f->block_bytes;
}

int64_t qk_format_size(const qk_format *f, int64_t rows, int64_t k)
{
    return f->tensor_header_bytes + rows * qk_format_row_bytes(f, k);
}

int64_t qk_format_codebook_elems(const qk_format *f)
{
    if (f->code != QK_CODE_VQ)
        return 0;
    return (int64_t)f->vq_books * ((int64_t)1 << f->bits) * f->vq_dim;
}

double qk_format_bits_per_weight(const qk_format *f)
{
    return f->block_bytes * 8.0 / f->block;
}

/* ---- decode ---- */

/* A little-endian stored number of type n at p. */
static uint32_t raw_at(const uint8_t *p, int nbytes)
{
    uint32_t v = 0;
    for (int i = 0; i < nbytes; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static void raw_put(uint8_t *p, int nbytes, uint32_t v)
{
    for (int i = 0; i < nbytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static double num_at(qk_num n, const uint8_t *p)
{
    return qk_num_decode(n, raw_at(p, num_bytes(n, 0)));
}

static double field_value(const qk_format *f, const uint8_t *blk, int fl, int i, qk_num n)
{
    return qk_num_decode(n, qk_format_item(f, blk, fl, i));
}

static double cb_elem(const qk_format *f, const void *cb, int64_t i)
{
    if (f->vq_dtype == QK_DT_F16)
        return qk_f16_to_f32(((const uint16_t *)cb)[i]);
    return ((const float *)cb)[i];
}

static int parity(uint32_t s)
{
    int p = 0;
    for (; s; s &= s - 1)
        p ^= 1;
    return p;
}

/* Codebook value of dense element e of a VQ block. */
static double vq_value(const qk_format *f, const uint8_t *blk, int e, const void *cb)
{
    if (!cb)
        return NAN;
    int g = e / f->vq_dim, t = e % f->vq_dim;
    double c = 0;
    for (int b = 0; b < f->vq_books; b++) {
        int64_t idx = qk_format_item(f, blk, QK_FIELD_CODES, g * f->vq_books + b);
        c += cb_elem(f, cb, (((int64_t)b << f->bits) + idx) * f->vq_dim + t);
    }
    if (f->vq_signs) {
        uint32_t s = qk_format_item(f, blk, QK_FIELD_SIGNS, g);
        int neg = t < f->vq_dim - 1 ? (int)(s >> t & 1) : parity(s);
        c = neg ? -c : c;
    }
    return c;
}

/* The kept item holding dense element e, or -1 when it was pruned. */
static int sparse_find(const qk_format *f, const uint8_t *blk, int e)
{
    int g = e / f->sp_m, pos = e % f->sp_m;
    for (int j = g * f->sp_n; j < (g + 1) * f->sp_n; j++)
        if ((int)qk_format_item(f, blk, QK_FIELD_INDEX, j) == pos)
            return j;
    return -1;
}

static double elem_zero(const qk_format *f, const uint8_t *blk)
{
    if (f->zero == QK_ZERO_CONST)
        return f->zero_const;
    if (f->zero == QK_ZERO_BLOCK)
        return field_value(f, blk, QK_FIELD_ZERO, 0, f->zero_num);
    return 0;
}

static double elem_scale(const qk_format *f, const uint8_t *tensor, const uint8_t *row, const uint8_t *blk, int e)
{
    if (f->scale_per == QK_PER_TENSOR)
        return num_at(f->scale_num, tensor);
    if (f->scale_per == QK_PER_ROW)
        return num_at(f->scale_num, row);
    if (f->scale_per != QK_PER_BLOCK)
        return 1;
    double s = f->scale_num != QK_NUM_NONE ? field_value(f, blk, QK_FIELD_SCALE, 0, f->scale_num) : 1;
    if (f->sub_block)
        s *= field_value(f, blk, QK_FIELD_SUBSCALE, e / f->sub_block, f->sub_num);
    return s;
}

/* min_sign * min of element e (0 without a min). */
static double elem_min(const qk_format *f, const uint8_t *blk, int e)
{
    if (!has_min(f))
        return 0;
    double m = field_value(f, blk, QK_FIELD_MIN, 0, f->min_num);
    if (f->submin_num != QK_NUM_NONE)
        m *= field_value(f, blk, QK_FIELD_SUBMIN, e / f->sub_block, f->submin_num);
    return f->min_sign * m;
}

static double tensor_scale_value(const qk_format *f, const uint8_t *tensor)
{
    int off = f->scale_per == QK_PER_TENSOR ? num_bytes(f->scale_num, 0) : 0;
    return num_at(QK_NUM_F32, tensor + off);
}

double qk_format_get(const qk_format *f, const uint8_t *tensor, int64_t row, int64_t klen, int64_t k,
                     const void *codebook)
{
    const uint8_t *rowp = tensor + f->tensor_header_bytes + row * qk_format_row_bytes(f, klen);
    const uint8_t *blk = rowp + f->row_header_bytes + k / f->block * f->block_bytes;
    int e = (int)(k % f->block);
    double c;
    if (f->code == QK_CODE_VQ) {
        c = vq_value(f, blk, e, codebook);
    } else {
        int j = f->sp_n ? sparse_find(f, blk, e) : e;
        if (j < 0)
            return 0.0;
        c = qk_format_codeval(f, qk_format_item(f, blk, QK_FIELD_CODES, j));
    }
    double v = (c - elem_zero(f, blk)) * elem_scale(f, tensor, rowp, blk, e) + elem_min(f, blk, e);
    if (f->tensor_scale)
        v *= tensor_scale_value(f, tensor);
    return v;
}

void qk_format_unpack(const qk_format *f, const uint8_t *src, int64_t rows, int64_t k, float *dst,
                      const void *codebook)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < k; i++)
            dst[r * k + i] = (float)qk_format_get(f, src, r, k, i, codebook);
}

/* ---- the quantizer ----
 *
 * Arithmetic of formats that pass qk_format_kernel_quantizable() (the
 * compiled encoder tdec_encode_row() repeats it bit for bit), all in
 * f32, sequential in element order, over the group (the block, or the
 * whole row for a per-row scale; padding elements are not part of it):
 *   int kinds: lo, hi = the code range. UINT: d = max(0, max x) / hi;
 *     SINT, TERNARY (symmetric): d = amax / hi (ggml q8_0, tq2_0);
 *     OFFSET: m = the x of largest |x| (the first on ties),
 *     d = (-lo > hi || m < 0) ? m / lo : m / hi (ggml q4_0: max / -8),
 *     or |m| / (m < 0 ? -lo : hi) when the scale type is unsigned.
 *   BINARY: d = (sum |x|) / n, the sum in abs_sum16's order.
 *   MINIFLOAT: d = amax / maxfinite.
 *   d_s = the decoded qk_num_encode(scale_num, d) (1 without a scale).
 *   id = 1 / d for float scale types (the unrounded d, as ggml's
 *     reference quantizers), 1 / d_s for the others (e8m0, ue4m3); 0 when
 *     d or d_s is 0 or not finite: then every code is the code of 0.
 *   code of q = x * id: SINT, TERNARY roundf(q) (half away from zero)
 *     clamped to [lo, hi]; UINT, OFFSET (int)(q + offset + 0.5f) clamped
 *     to [0, 2^bits - 1] (ggml's +8.5f); BINARY x < 0; MINIFLOAT
 *     qk_minifloat_encode(q). A NaN q counts as 0.
 * NaNs are skipped by the maxima. Padding elements get the code of x = 0.
 *
 * Other formats (not compiled) use the same rules where they apply plus:
 * zero points from the group's [min(x, 0), max(x, 0)] range; mins (uint
 * codes) from the group's actual min and max; TABLE d = amax / max|table|
 * and the nearest table value; two-level scales and mins per sub-block,
 * the super value = the largest sub value / the sub type's largest value;
 * N:M keeps the N largest |x| of each M (ties: the lower position);
 * VQ d = rms(x) / rms(codebook) and the nearest codeword. */

typedef struct pk_ctx {
    const qk_format *f;
    int mse;
    int lo, hi;        /* integer code range */
    float gid;         /* reciprocal of the row/tensor scale (see recip), 1 without one */
    float *book;       /* VQ: the codebook as f32 */
    double book_rms;   /* VQ: sqrt(sum over books of mean square) */
    /* one block */
    float x[QK_MAX_BLOCK]; /* item values (kept items; padding 0) */
    int pos[QK_MAX_BLOCK]; /* dense position of each item */
    int nitems, npresent;  /* items, and dense elements present */
    float tmp[QK_MAX_BLOCK];
    float dense[QK_MAX_BLOCK];
    /* two-level: per sub-block wanted scale and min, stored scale and min */
    float sc[QK_MAX_BLOCK], mn[QK_MAX_BLOCK], s_st[QK_MAX_BLOCK], m_st[QK_MAX_BLOCK];
} pk_ctx;

static int d_ok(float d)
{
    return d != 0 && isfinite(d);
}

static float amax_of(const float *v, int n)
{
    float a = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(v[i]) > a)
            a = fabsf(v[i]);
    return a;
}

static float table_amax(const qk_format *f)
{
    float a = 0;
    for (int i = 0; i < 1 << f->bits; i++)
        if (fabsf((float)f->table[i]) > a)
            a = fabsf((float)f->table[i]);
    return a;
}

static float mf_maxf(const qk_format *f)
{
    return (float)mf_max_value(f->ebits, f->mbits, f->bias, f->special);
}

/* 1 if a scale type can hold negative values. */
static int num_signed(qk_num n)
{
    return n == QK_NUM_F32 || n == QK_NUM_F16 || n == QK_NUM_BF16 || n == QK_NUM_E4M3 || n == QK_NUM_I8;
}

/* The reciprocal the codes are computed with: of the unrounded scale for
 * float scale types (as ggml's reference quantizers do: x * (1/d) with d
 * before its f16 rounding), else of the stored one (e8m0, ue4m3: powers
 * and steps that the unrounded value would not match). 0 for no usable
 * scale. */
static float recip(qk_num n, float raw, float stored)
{
    float d = n == QK_NUM_F32 || n == QK_NUM_F16 || n == QK_NUM_BF16 ? raw : stored;
    return d_ok(d) && d_ok(stored) ? 1.0f / d : 0.0f;
}

/* The absmax rule of integer kinds (see the comment above). */
static float int_scale(const pk_ctx *c, const float *v, int n)
{
    float m = 0;
    if (c->lo == 0) {
        for (int i = 0; i < n; i++)
            if (v[i] > m)
                m = v[i];
        return m / (float)c->hi;
    }
    if (c->f->code != QK_CODE_OFFSET) /* symmetric codes: ggml q8_0 (absmax / 127), tq2_0 (absmax) */
        return amax_of(v, n) / (float)c->hi;
    for (int i = 0; i < n; i++)
        if (fabsf(v[i]) > fabsf(m))
            m = v[i];
    if (!num_signed(c->f->scale_num)) /* a positive scale that still maps m onto an end */
        return fabsf(m) / (float)(m < 0 ? -c->lo : c->hi);
    return (-c->lo > c->hi || m < 0) ? m / (float)c->lo : m / (float)c->hi; /* ggml q4_0: max / -8 */
}

static float vq_scale(const pk_ctx *c, const float *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    if (!n || !(c->book_rms > 0))
        return 0;
    return (float)(sqrt(s / n) / c->book_rms);
}

/* sum |v| in a fixed order that vectors of 16, 8, 4 or 1 lanes compute
 * alike (tir_decode.c's abs_sum16, for quantize() in kernels): lane l of
 * 16 adds v[l], v[l + 16], ... in turn, then lane l adds lane l + w for
 * w = 8, 4, 2, 1. */
static float abs_sum16(const float *v, int n)
{
    float s[16] = {0};
    for (int i = 0; i < n; i++)
        s[i % 16] += fabsf(v[i]);
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++)
            s[l] += s[l + w];
    return s[0];
}

/* Single-level scale of a group of n present values (no zero, no min). */
static float rule_scale(const pk_ctx *c, const float *v, int n)
{
    const qk_format *f = c->f;
    switch (f->code) {
    case QK_CODE_BINARY: return n ? abs_sum16(v, n) / (float)n : 0;
    case QK_CODE_MINIFLOAT: return amax_of(v, n) / mf_maxf(f);
    case QK_CODE_TABLE: return amax_of(v, n) / table_amax(f);
    case QK_CODE_VQ: return vq_scale(c, v, n);
    default: return int_scale(c, v, n);
    }
}

/* A non-negative scale that maps the group into the code range (sub-block
 * scales: their types may be unsigned). */
static float abs_scale(const pk_ctx *c, const float *v, int n)
{
    const qk_format *f = c->f;
    if (f->code == QK_CODE_BINARY || f->code == QK_CODE_MINIFLOAT || f->code == QK_CODE_TABLE)
        return rule_scale(c, v, n);
    if (c->lo == 0)
        return int_scale(c, v, n);
    int r = c->hi > 0 && c->hi < -c->lo ? c->hi : -c->lo;
    return amax_of(v, n) / (float)r;
}

/* Scale of a group with a zero point: [min(x,0), max(x,0)] onto the code
 * range (block zero), or around the constant zero point. */
static float zero_scale(const pk_ctx *c, const float *v, int n)
{
    float mn = 0, mx = 0;
    for (int i = 0; i < n; i++) {
        mn = v[i] < mn ? v[i] : mn;
        mx = v[i] > mx ? v[i] : mx;
    }
    if (c->f->zero == QK_ZERO_BLOCK)
        return (mx - mn) / (float)(c->hi - c->lo);
    float z = (float)c->f->zero_const, d = 0;
    if (c->hi > z)
        d = mx / ((float)c->hi - z);
    if (c->lo < z && mn / ((float)c->lo - z) > d)
        d = mn / ((float)c->lo - z);
    return d;
}

static void minmax_of(const float *v, int n, float *mn, float *mx)
{
    *mn = n ? INFINITY : 0, *mx = n ? -INFINITY : 0;
    for (int i = 0; i < n; i++) {
        *mn = v[i] < *mn ? v[i] : *mn;
        *mx = v[i] > *mx ? v[i] : *mx;
    }
    if (*mn > *mx) /* only NaNs */
        *mn = *mx = 0;
}

/* The scale of a whole group (row, tensor or block) before storing. */
static float group_scale(const pk_ctx *c, const float *v, int n)
{
    const qk_format *f = c->f;
    if (f->zero != QK_ZERO_NONE)
        return zero_scale(c, v, n);
    if (has_min(f)) {
        float mn, mx;
        minmax_of(v, n, &mn, &mx);
        return (mx - mn) / (float)c->hi;
    }
    return rule_scale(c, v, n);
}

/* Index of the table value nearest to q (the first on ties). */
static uint32_t table_code(const qk_format *f, float q)
{
    uint32_t best = 0;
    float bd = INFINITY;
    for (int i = 0; i < 1 << f->bits; i++) {
        float dd = fabsf(q - (float)f->table[i]);
        if (dd < bd)
            bd = dd, best = (uint32_t)i;
    }
    return best;
}

/* Code of q, a value in code units (x already divided by the scale). */
static uint32_t code_for(const pk_ctx *c, float q)
{
    const qk_format *f = c->f;
    switch (f->code) {
    case QK_CODE_BINARY: return q < 0 ? 1u : 0u;
    case QK_CODE_MINIFLOAT: return qk_minifloat_encode(f->ebits, f->mbits, f->bias, f->special, 0, q);
    case QK_CODE_TABLE: return table_code(f, q);
    case QK_CODE_UINT:
    case QK_CODE_OFFSET: { /* ggml: (int)(q + offset + 0.5f), clamped to the code */
        float t = isnan(q) ? 0.0f : q + ((float)(f->code == QK_CODE_OFFSET ? f->offset : 0) + 0.5f);
        float mx = (float)((1u << f->bits) - 1);
        float r = t < 0 ? 0.0f : t > mx ? mx : truncf(t);
        return (uint32_t)r;
    }
    default: { /* symmetric codes: round half away from zero (roundf) */
        float r = isnan(q) ? 0 : roundf(q);
        int v = r < (float)c->lo ? c->lo : r > (float)c->hi ? c->hi : (int)r;
        return code_of(f, v);
    }
    }
}

/* Code of x for the reciprocal id of the scale (see recip), zero z and
 * additive min mval (stored). */
static uint32_t quant(const pk_ctx *c, float x, float id, float z, float mval)
{
    const qk_format *f = c->f;
    if (!d_ok(id))
        return code_for(c, f->zero != QK_ZERO_NONE ? z : 0.0f);
    float q = x;
    if (has_min(f))
        q -= mval;
    q *= id;
    if (f->zero != QK_ZERO_NONE)
        q += z;
    return code_for(c, q);
}

/* Present values of the block's items (sub-block sb, or all when -1). */
static int present_values(pk_ctx *c, int sb, float *out)
{
    int n = 0;
    for (int i = 0; i < c->nitems; i++)
        if (c->pos[i] < c->npresent && (sb < 0 || c->pos[i] / c->f->sub_block == sb))
            out[n++] = c->x[i];
    return n;
}

/* Stores the block's scale d (per block) and returns it as stored. */
static float put_scale(const pk_ctx *c, uint8_t *blk, float d)
{
    uint32_t raw = qk_num_encode(c->f->scale_num, 0, d);
    qk_format_put_item(c->f, blk, QK_FIELD_SCALE, 0, raw);
    return (float)qk_num_decode(c->f->scale_num, raw);
}

/* Squared error of the block's items for scale d (stored). */
static double block_error(const pk_ctx *c, float d)
{
    double e = 0;
    for (int i = 0; i < c->nitems; i++) {
        if (c->pos[i] >= c->npresent)
            continue;
        double v = qk_format_codeval(c->f, quant(c, c->x[i], 1.0f / d, 0, 0)) * d;
        e += (v - c->x[i]) * (v - c->x[i]);
    }
    return e;
}

/* mse option: candidates d * (0.5 + 0.025 i), i = 0..30, each rounded to
 * the scale type; the one of least squared error wins (the first on ties). */
static float mse_scale(const pk_ctx *c, float d)
{
    float best = d;
    double be = INFINITY;
    for (int i = 0; i <= 30; i++) {
        float ds = num_round(c->f->scale_num, 0, (float)(d * ((20 + i) / 40.0)));
        if (!d_ok(ds))
            continue;
        double e = block_error(c, ds);
        if (e < be)
            be = e, best = (float)(d * ((20 + i) / 40.0));
    }
    return best;
}

/* Zero point of the block for scale d; stored, returned as stored. */
static float put_zero(pk_ctx *c, uint8_t *blk, float d)
{
    const qk_format *f = c->f;
    if (f->zero == QK_ZERO_CONST)
        return (float)f->zero_const;
    int n = present_values(c, -1, c->tmp);
    float mn = 0;
    for (int i = 0; i < n; i++)
        mn = c->tmp[i] < mn ? c->tmp[i] : mn;
    float z = d_ok(d) ? (float)c->lo - mn / d : 0;
    uint32_t raw = qk_num_encode(f->zero_num, 0, z);
    qk_format_put_item(f, blk, QK_FIELD_ZERO, 0, raw);
    return (float)qk_num_decode(f->zero_num, raw);
}

/* Single-level block min: the block's minimum value; stored, returns
 * min_sign * stored. */
static float put_min(pk_ctx *c, uint8_t *blk)
{
    const qk_format *f = c->f;
    int n = present_values(c, -1, c->tmp);
    float mn, mx;
    minmax_of(c->tmp, n, &mn, &mx);
    uint32_t raw = qk_num_encode(f->min_num, 0, (float)f->min_sign * mn);
    qk_format_put_item(f, blk, QK_FIELD_MIN, 0, raw);
    return (float)f->min_sign * (float)qk_num_decode(f->min_num, raw);
}

static void put_codes(const pk_ctx *c, uint8_t *blk, float id, float z, float mval)
{
    for (int i = 0; i < c->nitems; i++) {
        float x = c->pos[i] < c->npresent ? c->x[i] : 0.0f;
        qk_format_put_item(c->f, blk, QK_FIELD_CODES, i, quant(c, x, id, z, mval));
    }
}

/* Single-level block: gd is the row/tensor scale as stored (or 1). */
static void pack_single(pk_ctx *c, uint8_t *blk, float gd)
{
    const qk_format *f = c->f;
    float d = gd, id = c->gid;
    if (f->scale_per == QK_PER_BLOCK) {
        int n = present_values(c, -1, c->tmp);
        float raw = group_scale(c, c->tmp, n);
        if (c->mse && f->zero == QK_ZERO_NONE && !has_min(f))
            raw = mse_scale(c, raw);
        d = put_scale(c, blk, raw);
        id = recip(f->scale_num, raw, d);
    }
    float z = f->zero != QK_ZERO_NONE ? put_zero(c, blk, d) : 0;
    float mval = 0; /* codes from the f32 min, as ggml (q4_1); the stored min is rounded */
    if (has_min(f)) {
        put_min(c, blk);
        int n = present_values(c, -1, c->tmp);
        float lo, hi;
        minmax_of(c->tmp, n, &lo, &hi);
        mval = lo;
    }
    put_codes(c, blk, id, z, mval);
}

/* ---- two-level scales and mins ---- */

/* Largest value of a sub-block type (the divisor of the super value). */
static float sub_max(qk_num n, int bits)
{
    return (float)num_max(n, bits);
}

/* Stores n sub values v (already divided by the stored super value) in
 * field fl; returns each as stored, times the super value, in out. */
static void put_subs(const pk_ctx *c, uint8_t *blk, int fl, qk_num num, int bits, const float *v, float sup,
                     int n, float *out)
{
    for (int j = 0; j < n; j++) {
        uint32_t raw = d_ok(sup) ? qk_num_encode(num, bits, v[j] / sup) : 0;
        qk_format_put_item(c->f, blk, fl, j, raw);
        out[j] = sup * (float)qk_num_decode(num, raw);
    }
}

/* The super value of a field: max |v| / largest sub value, stored in
 * field fl as type num; 1 when the format has none. */
static float put_super(const pk_ctx *c, uint8_t *blk, int fl, qk_num num, qk_num sub, int sub_bits,
                       const float *v, int n)
{
    if (num == QK_NUM_NONE)
        return 1;
    float m = amax_of(v, n);
    uint32_t raw = qk_num_encode(num, 0, m / sub_max(sub, sub_bits));
    qk_format_put_item(c->f, blk, fl, 0, raw);
    return (float)qk_num_decode(num, raw);
}

/* Sub-block ranges: the wanted scale sc[j] and (with a two-level min)
 * min value mn[j] (value = code * sc + mn). */
static void sub_ranges(pk_ctx *c, float *sc, float *mn, float blockmin)
{
    const qk_format *f = c->f;
    int nsub = f->block / f->sub_block;
    for (int j = 0; j < nsub; j++) {
        int n = present_values(c, j, c->tmp);
        if (!has_min(f)) {
            sc[j] = abs_scale(c, c->tmp, n);
            continue;
        }
        float lo, hi;
        minmax_of(c->tmp, n, &lo, &hi);
        if (f->submin_num == QK_NUM_NONE) {
            lo = blockmin;
        } else if (f->submin_num == QK_NUM_UINT) { /* unsigned: min_sign * mn >= 0 */
            lo = f->min_sign < 0 ? fminf(lo, 0) : fmaxf(lo, 0);
        }
        hi = fmaxf(hi, lo);
        sc[j] = (hi - lo) / (float)c->hi;
        mn[j] = lo;
    }
}

static void pack_two_level(pk_ctx *c, uint8_t *blk)
{
    const qk_format *f = c->f;
    int nsub = f->block / f->sub_block;
    float *sc = c->sc, *mn = c->mn, *s_st = c->s_st, *m_st = c->m_st;
    float bmin = 0;
    if (has_min(f) && f->submin_num == QK_NUM_NONE)
        bmin = put_min(c, blk);
    sub_ranges(c, sc, mn, bmin);
    float sup = put_super(c, blk, QK_FIELD_SCALE, f->scale_num, f->sub_num, f->sub_bits, sc, nsub);
    put_subs(c, blk, QK_FIELD_SUBSCALE, f->sub_num, f->sub_bits, sc, sup, nsub, s_st);
    for (int j = 0; j < nsub; j++)
        m_st[j] = bmin;
    if (f->submin_num != QK_NUM_NONE) {
        for (int j = 0; j < nsub; j++)
            mn[j] *= (float)f->min_sign; /* stored magnitudes */
        float msup = put_super(c, blk, QK_FIELD_MIN, f->min_num, f->submin_num, f->submin_bits, mn, nsub);
        put_subs(c, blk, QK_FIELD_SUBMIN, f->submin_num, f->submin_bits, mn, msup, nsub, m_st);
        for (int j = 0; j < nsub; j++)
            m_st[j] *= (float)f->min_sign;
    }
    for (int i = 0; i < c->nitems; i++) {
        int j = c->pos[i] / f->sub_block;
        float x = c->pos[i] < c->npresent ? c->x[i] : 0.0f;
        qk_format_put_item(f, blk, QK_FIELD_CODES, i, quant(c, x, d_ok(s_st[j]) ? 1.0f / s_st[j] : 0.0f, 0, m_st[j]));
    }
}

/* ---- N:M selection ---- */

/* Keeps the sp_n largest |x| of each group of sp_m dense values xd
 * (ties: the lower position), in ascending position order; writes the
 * index field and fills the items. */
static void sparse_select(pk_ctx *c, const float *xd, uint8_t *blk)
{
    const qk_format *f = c->f;
    int j = 0;
    for (int g = 0; g < f->block / f->sp_m; g++) {
        int chosen[16] = {0}, picks[16];
        for (int k = 0; k < f->sp_n; k++) {
            int best = -1;
            for (int p = 0; p < f->sp_m; p++)
                if (!chosen[p] && (best < 0 || fabsf(xd[g * f->sp_m + p]) > fabsf(xd[g * f->sp_m + best])))
                    best = p;
            chosen[best] = 1;
            picks[k] = best;
        }
        for (int a = 1; a < f->sp_n; a++) /* insertion sort, ascending */
            for (int b = a; b > 0 && picks[b - 1] > picks[b]; b--) {
                int t = picks[b];
                picks[b] = picks[b - 1], picks[b - 1] = t;
            }
        for (int k = 0; k < f->sp_n; k++, j++) {
            c->pos[j] = g * f->sp_m + picks[k];
            c->x[j] = xd[c->pos[j]];
            qk_format_put_item(f, blk, QK_FIELD_INDEX, j, (uint32_t)picks[k]);
        }
    }
    c->nitems = j;
}

/* ---- VQ ---- */

static const float *book_entry(const pk_ctx *c, int b, int idx)
{
    return c->book + ((((int64_t)b << c->f->bits) + idx) * c->f->vq_dim);
}

/* Nearest entry of book b to r (squared distance, the first on ties). */
static int vq_nearest(const pk_ctx *c, int b, const float *r)
{
    int best = 0, dim = c->f->vq_dim;
    double bd = INFINITY;
    for (int i = 0; i < 1 << c->f->bits; i++) {
        const float *e = book_entry(c, b, i);
        double s = 0;
        for (int t = 0; t < dim && s < bd; t++)
            s += ((double)r[t] - e[t]) * ((double)r[t] - e[t]);
        if (s < bd)
            bd = s, best = i;
    }
    return best;
}

static void vq_residual(const pk_ctx *c, float *r, int b, int idx, float sign)
{
    const float *e = book_entry(c, b, idx);
    for (int t = 0; t < c->f->vq_dim; t++)
        r[t] += sign * e[t];
}

/* Indices for target y: book by book on the residual, then two passes
 * that re-pick each book with the others fixed. */
static void vq_choose(const pk_ctx *c, const float *y, int *idx)
{
    const qk_format *f = c->f;
    float r[64];
    memcpy(r, y, sizeof(float) * (size_t)f->vq_dim);
    for (int b = 0; b < f->vq_books; b++) {
        idx[b] = vq_nearest(c, b, r);
        vq_residual(c, r, b, idx[b], -1);
    }
    for (int pass = 0; pass < 2 && f->vq_books > 1; pass++)
        for (int b = 0; b < f->vq_books; b++) {
            vq_residual(c, r, b, idx[b], +1);
            idx[b] = vq_nearest(c, b, r);
            vq_residual(c, r, b, idx[b], -1);
        }
}

/* Sign bits of y: lane t negative -> bit t; an odd count of negatives
 * flips the lane of smallest |y| (the first on ties) so the parity holds. */
static uint32_t vq_signs(const qk_format *f, const float *y)
{
    int neg[64], count = 0, small = 0;
    for (int t = 0; t < f->vq_dim; t++) {
        neg[t] = y[t] < 0;
        count += neg[t];
        if (fabsf(y[t]) < fabsf(y[small]))
            small = t;
    }
    if (count & 1)
        neg[small] ^= 1;
    uint32_t s = 0;
    for (int t = 0; t < f->vq_dim - 1; t++)
        s |= (uint32_t)neg[t] << t;
    return s;
}

static void pack_vq(pk_ctx *c, uint8_t *blk, float gd)
{
    const qk_format *f = c->f;
    float d = gd;
    if (f->scale_per == QK_PER_BLOCK) {
        int n = present_values(c, -1, c->tmp);
        d = put_scale(c, blk, rule_scale(c, c->tmp, n));
    }
    for (int g = 0; g < f->block / f->vq_dim; g++) {
        float y[64], a[64];
        int idx[QK_MAX_VQ_BOOKS];
        for (int t = 0; t < f->vq_dim; t++) {
            int e = g * f->vq_dim + t;
            y[t] = e < c->npresent && d_ok(d) ? c->x[e] / d : 0.0f;
            a[t] = f->vq_signs ? fabsf(y[t]) : y[t];
        }
        vq_choose(c, a, idx);
        for (int b = 0; b < f->vq_books; b++)
            qk_format_put_item(f, blk, QK_FIELD_CODES, g * f->vq_books + b, (uint32_t)idx[b]);
        if (f->vq_signs)
            qk_format_put_item(f, blk, QK_FIELD_SIGNS, g, vq_signs(f, y));
    }
}

/* ---- driver ---- */

/* Quantizes block xd (n present values) into the zeroed block blk. */
static void pack_block(pk_ctx *c, const float *xd, int n, uint8_t *blk, float gd)
{
    const qk_format *f = c->f;
    float *dense = c->dense;
    for (int e = 0; e < f->block; e++)
        dense[e] = e < n ? xd[e] : 0.0f;
    c->npresent = n;
    if (f->sp_n) {
        sparse_select(c, dense, blk);
    } else {
        for (int e = 0; e < f->block; e++)
            c->x[e] = dense[e], c->pos[e] = e;
        c->nitems = f->block;
    }
    if (f->code == QK_CODE_VQ)
        pack_vq(c, blk, gd);
    else if (f->sub_block)
        pack_two_level(c, blk);
    else
        pack_single(c, blk, gd);
}

/* Scale of a row or the whole tensor: stored at p, returned as stored. */
static float put_group_scale(const pk_ctx *c, const float *x, int64_t n, uint8_t *p)
{
    const qk_format *f = c->f;
    float d = f->code == QK_CODE_VQ ? vq_scale(c, x, (int)n) : group_scale(c, x, (int)n);
    uint32_t raw = qk_num_encode(f->scale_num, 0, d);
    raw_put(p, num_bytes(f->scale_num, 0), raw);
    float st = (float)qk_num_decode(f->scale_num, raw);
    ((pk_ctx *)c)->gid = recip(f->scale_num, d, st);
    return st;
}

/* The extra per-tensor scale t: amax / (largest code magnitude * largest
 * block scale worth using), so that block scales of narrow types (ue4m3)
 * keep their range; the input is then divided by t. */
static float tensor_scale_for(const pk_ctx *c, const float *x, int64_t n)
{
    const qk_format *f = c->f;
    float a = 0;
    for (int64_t i = 0; i < n; i++)
        a = fabsf(x[i]) > a ? fabsf(x[i]) : a;
    double cmax = f->code == QK_CODE_MINIFLOAT ? mf_maxf(f)
                  : f->code == QK_CODE_TABLE   ? table_amax(f)
                  : f->code == QK_CODE_VQ      ? 1
                                               : (c->hi > -c->lo ? c->hi : -c->lo);
    qk_num sn = f->sub_block && f->scale_num == QK_NUM_NONE ? f->sub_num : f->scale_num;
    double smax = f->scale_per != QK_PER_NONE ? num_max(sn, f->sub_bits) : 1;
    smax = smax > 65536 ? 1 : smax;
    float t = (float)(a / (cmax * smax));
    return d_ok(t) ? t : 1.0f;
}

static void setup_book(pk_ctx *c, const void *cb)
{
    const qk_format *f = c->f;
    int64_t n = qk_format_codebook_elems(f), per = n / f->vq_books;
    c->book = qk_xmalloc(sizeof(float) * (size_t)n);
    double ms = 0;
    for (int b = 0; b < f->vq_books; b++) {
        double s = 0;
        for (int64_t i = 0; i < per; i++) {
            c->book[b * per + i] = (float)cb_elem(f, cb, b * per + i);
            s += (double)c->book[b * per + i] * c->book[b * per + i];
        }
        ms += s / (double)per;
    }
    c->book_rms = sqrt(ms);
}

/* Quantizes the rows (x already divided by the tensor scale). */
static void pack_rows(pk_ctx *c, const float *x, int64_t rows, int64_t k, uint8_t *dst)
{
    const qk_format *f = c->f;
    float gd = 1;
    if (f->scale_per == QK_PER_TENSOR)
        gd = put_group_scale(c, x, rows * k, dst);
    int64_t nb = (k + f->block - 1) / f->block, rb = qk_format_row_bytes(f, k);
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *rowp = dst + f->tensor_header_bytes + r * rb;
        if (f->scale_per == QK_PER_ROW)
            gd = put_group_scale(c, x + r * k, k, rowp);
        for (int64_t b = 0; b < nb; b++) {
            int64_t first = b * f->block;
            int n = (int)(k - first < f->block ? k - first : f->block);
            pack_block(c, x + r * k + first, n, rowp + f->row_header_bytes + b * f->block_bytes, gd);
        }
    }
}

int qk_format_pack(const qk_format *f, const float *src, int64_t rows, int64_t k, uint8_t *dst,
                   const qk_pack_opts *opts, char *err, size_t errsz)
{
    if (f->code == QK_CODE_VQ && !(opts && opts->codebook))
        return fail(err, errsz, f, "quantizing a vq format needs its codebook");
    memset(dst, 0, (size_t)qk_format_size(f, rows, k));
    pk_ctx *c = qk_xcalloc(1, sizeof *c);
    c->f = f;
    c->mse = opts && opts->mse;
    c->gid = 1.0f;
    qk_format_code_range(f, &c->lo, &c->hi);
    if (f->code == QK_CODE_VQ)
        setup_book(c, opts->codebook);
    const float *x = src;
    float *scaled = NULL;
    if (f->tensor_scale) {
        float t = tensor_scale_for(c, src, rows * k);
        raw_put(dst + f->tensor_header_bytes - 4, 4, qk_num_encode(QK_NUM_F32, 0, t));
        scaled = qk_xmalloc(sizeof(float) * (size_t)(rows * k + 1));
        for (int64_t i = 0; i < rows * k; i++)
            scaled[i] = src[i] / t;
        x = scaled;
    }
    pack_rows(c, x, rows, k, dst);
    free(scaled);
    free(c->book);
    free(c);
    return 0;
}

/* ---- kernel quantization ---- */

static int piece_has_base3(const qk_format *f)
{
    for (int k = 0; k < f->npieces; k++)
        if (f->pieces[k].place == QK_PLACE_BASE3)
            return 1;
    return 0;
}

static const char *why_not_kernel(const qk_format *f)
{
    if (f->code == QK_CODE_TABLE || f->code == QK_CODE_VQ)
        return "its code is a codebook lookup";
    if (f->scale_per == QK_PER_TENSOR)
        return "it has a per-tensor scale";
    if (f->sub_block)
        return "it has sub-block scales";
    if (f->scale_per != QK_PER_NONE && f->scale_num != QK_NUM_F32 && f->scale_num != QK_NUM_F16 &&
        f->scale_num != QK_NUM_BF16 && f->scale_num != QK_NUM_E8M0)
        return "its scale type is not f32, f16, bf16 or e8m0";
    if (f->zero != QK_ZERO_NONE)
        return "it has a zero point";
    if (has_min(f))
        return "it has a min";
    if (f->tensor_scale)
        return "it has a tensor scale";
    if (f->sp_n)
        return "it is sparse";
    if (piece_has_base3(f))
        return "its layout has base-3 digits";
    return NULL;
}

int qk_format_kernel_quantizable(const qk_format *f, char *why, size_t whysz)
{
    const char *r = why_not_kernel(f);
    if (!r)
        return 1;
    fail(why, whysz, f, "cannot be quantized in a kernel: %s", r);
    return 0;
}

/* ---- printer ---- */

static const char *mf_name(const qk_format *f)
{
    static const struct {
        int e, m, bias;
        qk_mf_special sp;
        const char *name;
    } names[] = {{2, 1, 1, QK_MF_FINITE, "e2m1"}, {3, 2, 3, QK_MF_FINITE, "e3m2"}, {2, 3, 1, QK_MF_FINITE, "e2m3"},
                 {4, 3, 7, QK_MF_FN, "e4m3"},     {5, 2, 15, QK_MF_IEEE, "e5m2"}};
    for (int i = 0; i < QK_COUNT(names); i++)
        if (names[i].e == f->ebits && names[i].m == f->mbits && names[i].bias == f->bias && names[i].sp == f->special)
            return names[i].name;
    return "minifloat?";
}

static void print_code(const qk_format *f, qk_buf *out)
{
    switch (f->code) {
    case QK_CODE_SINT: qk_buf_printf(out, "int%d", f->bits); break;
    case QK_CODE_UINT: qk_buf_printf(out, "uint%d", f->bits); break;
    case QK_CODE_OFFSET: qk_buf_printf(out, "uint%d offset %d", f->bits, f->offset); break;
    case QK_CODE_TERNARY: qk_buf_puts(out, "ternary"); break;
    case QK_CODE_BINARY: qk_buf_puts(out, "binary"); break;
    case QK_CODE_MINIFLOAT: qk_buf_puts(out, mf_name(f)); break;
    case QK_CODE_TABLE:
        qk_buf_puts(out, "table [");
        for (int i = 0; i < 1 << f->bits; i++)
            qk_buf_printf(out, "%s%.17g", i ? ", " : "", f->table[i]);
        qk_buf_puts(out, "]");
        break;
    case QK_CODE_VQ:
        qk_buf_printf(out, "vq%d dim %d", f->bits, f->vq_dim);
        if (f->vq_books > 1)
            qk_buf_printf(out, " books %d", f->vq_books);
        if (f->vq_signs)
            qk_buf_puts(out, " signs");
        break;
    }
}

static void print_scale(const qk_format *f, qk_buf *out)
{
    static const char *const per[] = {"", " per tensor", " per row", ""};
    if (f->scale_per == QK_PER_NONE)
        return;
    qk_buf_puts(out, "; scale = ");
    if (!f->sub_block) {
        qk_buf_printf(out, "%s%s", qk_num_name(f->scale_num, 0), per[f->scale_per]);
        return;
    }
    if (f->scale_num != QK_NUM_NONE)
        qk_buf_printf(out, "%s * ", qk_num_name(f->scale_num, 0));
    qk_buf_printf(out, "%s per %d", qk_num_name(f->sub_num, f->sub_bits), f->sub_block);
}

static void print_min_zero(const qk_format *f, qk_buf *out)
{
    if (has_min(f)) {
        qk_buf_printf(out, "; min = %s%s", f->min_sign < 0 ? "-" : "", qk_num_name(f->min_num, 0));
        if (f->submin_num != QK_NUM_NONE)
            qk_buf_printf(out, " * %s", qk_num_name(f->submin_num, f->submin_bits));
    }
    if (f->zero == QK_ZERO_BLOCK)
        qk_buf_printf(out, "; zero = %s", qk_num_name(f->zero_num, 0));
    else if (f->zero == QK_ZERO_CONST)
        qk_buf_printf(out, "; zero = %.17g", f->zero_const);
}

static void print_piece(const qk_format *f, const qk_piece *p, qk_buf *out)
{
    qk_buf_puts(out, field_names[p->field]);
    if (p->first != 0 || p->count != f->items[p->field])
        qk_buf_printf(out, "[%d:%d]", p->first, p->first + p->count);
    if (p->lo != 0 || p->width != f->width[p->field])
        qk_buf_printf(out, " bits %d:%d", p->lo, p->lo + p->width);
    if (p->place == QK_PLACE_INTERLEAVE)
        qk_buf_printf(out, " interleave %d", p->group);
    else if (p->place == QK_PLACE_BASE3)
        qk_buf_printf(out, " base3 %d", p->group);
    qk_buf_printf(out, " at %d", p->byte);
    if (p->shift)
        qk_buf_printf(out, " shift %d", p->shift);
}

void qk_format_print(const qk_format *f, qk_buf *out)
{
    qk_buf_printf(out, "format %s { code = ", f->name ? f->name : "?");
    print_code(f, out);
    qk_buf_printf(out, "; block = %d", f->block);
    print_scale(f, out);
    print_min_zero(f, out);
    if (f->tensor_scale)
        qk_buf_puts(out, "; tensor_scale = f32");
    if (f->sp_n)
        qk_buf_printf(out, "; sparse = %d:%d", f->sp_n, f->sp_m);
    if (f->code == QK_CODE_VQ && f->vq_dtype == QK_DT_F32)
        qk_buf_puts(out, "; codebook = f32");
    if (f->explicit_layout) {
        qk_buf_puts(out, "; layout { ");
        for (int k = 0; k < f->npieces; k++) {
            qk_buf_puts(out, k ? "; " : "");
            print_piece(f, &f->pieces[k], out);
        }
        qk_buf_puts(out, " }");
    }
    qk_buf_printf(out, " }  # %.2f bits/weight", qk_format_bits_per_weight(f));
}

/* ---- serialized formats ---- */

#define QK_FORMAT_IMAGE_MAGIC 0x51464d54u /* "QFMT" */
#define QK_FORMAT_IMAGE_VERSION 1u

typedef struct image_header {
    uint32_t magic, version, struct_bytes, table_values;
} image_header;

void qk_format_serialize(const qk_format *f, qk_buf *out)
{
    qk_format flat = *f;
    flat.name = NULL;
    flat.table = NULL;
    memset(&flat.loc, 0, sizeof flat.loc);
    image_header h = {QK_FORMAT_IMAGE_MAGIC, QK_FORMAT_IMAGE_VERSION, (uint32_t)sizeof flat,
                      f->code == QK_CODE_TABLE && f->table ? 1u << f->bits : 0};
    qk_buf_append(out, &h, sizeof h);
    qk_buf_append(out, &flat, sizeof flat);
    if (h.table_values)
        qk_buf_append(out, f->table, h.table_values * sizeof(double));
}

int qk_format_deserialize(const void *data, size_t n, qk_format *f, double **table, char *err, size_t errsz)
{
    image_header h;
    *table = NULL;
    if (!data || n < sizeof h) {
        snprintf(err, errsz, "format image of %zu bytes is too short", n);
        return -1;
    }
    memcpy(&h, data, sizeof h);
    if (h.magic != QK_FORMAT_IMAGE_MAGIC || h.version != QK_FORMAT_IMAGE_VERSION || h.struct_bytes != sizeof *f) {
        snprintf(err, errsz, "format image from another qkc version (magic %08x, version %u, %u bytes)", h.magic,
                 h.version, h.struct_bytes);
        return -1;
    }
    if (h.table_values > 256 || n != sizeof h + sizeof *f + (size_t)h.table_values * sizeof(double)) {
        snprintf(err, errsz, "format image is damaged (%zu bytes, %u table values)", n, h.table_values);
        return -1;
    }
    memcpy(f, (const char *)data + sizeof h, sizeof *f);
    f->name = "";
    if ((f->code == QK_CODE_TABLE) != (h.table_values != 0) || f->bits < 1 || f->bits > 16 ||
        (h.table_values && h.table_values != 1u << f->bits) || f->block < 1 || f->block > QK_MAX_BLOCK ||
        f->npieces < 0 || f->npieces > QK_MAX_PIECES || f->block_bytes < 0) {
        snprintf(err, errsz, "format image is damaged (inconsistent fields)");
        return -1;
    }
    if (h.table_values) {
        double *t = malloc(h.table_values * sizeof *t);
        if (!t) {
            snprintf(err, errsz, "out of memory");
            return -1;
        }
        memcpy(t, (const char *)data + sizeof h + sizeof *f, h.table_values * sizeof *t);
        f->table = t;
        *table = t;
    }
    return 0;
}
