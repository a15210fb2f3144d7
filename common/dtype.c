/* dtype.c — the dense element types: names and sizes from one table, exact
 * loads, rounded stores, and binary16/bfloat16 conversions. */
#include "common/base.h"

#include <math.h>
#include <string.h>

static const struct {
    const char *name;
    int size, is_float;
} dtypes[] = {
#define QK_DT_ROW(id, name, size, isfloat) {name, size, isfloat},
    QK_DTYPES(QK_DT_ROW)
#undef QK_DT_ROW
};
_Static_assert(QK_COUNT(dtypes) == QK_DT_COUNT, "dtype table size");

const char *qk_dtype_name(qk_dtype t)
{
    return t >= 0 && t < QK_DT_COUNT ? dtypes[t].name : "?";
}

int qk_dtype_size(qk_dtype t)
{
    return t >= 0 && t < QK_DT_COUNT ? dtypes[t].size : 0;
}

int qk_dtype_is_float(qk_dtype t)
{
    return t >= 0 && t < QK_DT_COUNT && dtypes[t].is_float;
}

qk_dtype qk_dtype_from_name(const char *name)
{
    for (int i = 0; i < QK_DT_COUNT; i++)
        if (strcmp(dtypes[i].name, name) == 0)
            return (qk_dtype)i;
    return QK_DT_NONE;
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t qk_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t exp = (x >> 23) & 0xffu, man = x & 0x7fffffu;
    if (exp == 0xff) /* inf or NaN (keep a quiet NaN) */
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) { /* subnormal or zero in binary16 */
        if (e < -10)
            return (uint16_t)sign;
        man |= 0x800000u;
        int shift = 14 - e;
        uint32_t half = 1u << (shift - 1);
        uint32_t r = man >> shift, rem = man & ((1u << shift) - 1);
        if (rem > half || (rem == half && (r & 1)))
            r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1)))
        r++; /* may carry into the exponent, up to infinity: correct */
    return (uint16_t)(sign | r);
}

float qk_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f)
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        float v = ldexpf((float)man, -24);
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp - 15 + 127) << 23) | (man << 13));
}

uint16_t qk_f32_to_bf16(float f)
{
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

float qk_bf16_to_f32(uint16_t h)
{
    return bits_f32((uint32_t)h << 16);
}

double qk_dtype_load(qk_dtype t, const void *base, int64_t i)
{
    switch (t) {
    case QK_DT_F32: return ((const float *)base)[i];
    case QK_DT_F16: return qk_f16_to_f32(((const uint16_t *)base)[i]);
    case QK_DT_BF16: return qk_bf16_to_f32(((const uint16_t *)base)[i]);
    case QK_DT_I8: return ((const int8_t *)base)[i];
    case QK_DT_I32: return ((const int32_t *)base)[i];
    case QK_DT_U8: return ((const uint8_t *)base)[i];
    default: qk_bug("load of dtype %d", (int)t);
    }
}

static double round_sat(double v, double lo, double hi)
{
    if (isnan(v))
        return 0;
    v = nearbyint(v); /* default rounding mode: half to even */
    return v < lo ? lo : v > hi ? hi : v;
}

void qk_dtype_store(qk_dtype t, void *base, int64_t i, double v)
{
    switch (t) {
    case QK_DT_F32: ((float *)base)[i] = (float)v; break;
    case QK_DT_F16: ((uint16_t *)base)[i] = qk_f32_to_f16((float)v); break;
    case QK_DT_BF16: ((uint16_t *)base)[i] = qk_f32_to_bf16((float)v); break;
    case QK_DT_I8: ((int8_t *)base)[i] = (int8_t)round_sat(v, -128, 127); break;
    case QK_DT_I32: ((int32_t *)base)[i] = (int32_t)round_sat(v, -2147483648.0, 2147483647.0); break;
    case QK_DT_U8: ((uint8_t *)base)[i] = (uint8_t)round_sat(v, 0, 255); break;
    default: qk_bug("store of dtype %d", (int)t);
    }
}
