/* test_format.c — the format descriptor against its definition in
 * format.h, recomputed here independently: layout sizes for every
 * combination of code, scale, zero point and block; decode of hand-built
 * blocks (raw bytes from a test-local bit writer); the quantizer's
 * guarantees (nearest code for the stored scale and zero, absmax mapping,
 * exact round trips, zeroed padding, all-zero blocks, extreme inputs). */
#include "support/kir_fixture.h"

#include <CUnit/Basic.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const qk_code_kind kinds[] = {QK_CODE_SINT, QK_CODE_UINT, QK_CODE_OFFSET};
static const qk_dtype scales[] = {QK_DT_NONE, QK_DT_F32, QK_DT_F16, QK_DT_BF16};
static const qk_dtype zeros[] = {QK_DT_NONE, QK_DT_U8, QK_DT_I8, QK_DT_F16, QK_DT_F32};
static const int blocks[] = {1, 3, 7, 8, 32, 33, 64, 256};

static uint32_t rng = 99;
static uint32_t rnd(void)
{
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}
static double urand(void) /* [-1, 1) */
{
    return rnd() / 8388608.0 - 1;
}

static qk_format make(qk_code_kind kind, int bits, int block, qk_dtype s, qk_dtype z)
{
    qk_format f = {.name = "t", .code = kind, .bits = bits, .block = block, .scale_dtype = s, .zero_dtype = z};
    f.offset = kind == QK_CODE_OFFSET ? (1 << bits) / 2 - (bits > 2 ? 1 : 0) : 0;
    f.scale = s == QK_DT_NONE ? QK_SCALE_NONE : QK_SCALE_BLOCK;
    f.zero = z == QK_DT_NONE ? QK_ZERO_NONE : QK_ZERO_BLOCK;
    char err[128];
    CU_ASSERT_EQUAL(qk_format_finish(&f, err, sizeof err), 0);
    return f;
}

/* Calls fn for every combination of the test matrix. */
static void for_all(void (*fn)(const qk_format *f))
{
    for (int bits = 1; bits <= 8; bits++)
        for (int ki = 0; ki < QK_COUNT(kinds); ki++)
            for (int si = 0; si < QK_COUNT(scales); si++)
                for (int zi = 0; zi < QK_COUNT(zeros); zi++)
                    for (int bi = 0; bi < QK_COUNT(blocks); bi++) {
                        qk_format f = make(kinds[ki], bits, blocks[bi], scales[si], zeros[zi]);
                        fn(&f);
                    }
}

/* The definition, written independently of format.c. */
static int def_codeval(const qk_format *f, unsigned code)
{
    if (f->code == QK_CODE_SINT)
        return code >= (1u << (f->bits - 1)) ? (int)code - (1 << f->bits) : (int)code;
    if (f->code == QK_CODE_OFFSET)
        return (int)code - f->offset;
    return (int)code;
}

static int dsize(qk_dtype t)
{
    return t == QK_DT_NONE ? 0 : t == QK_DT_F32 ? 4 : t == QK_DT_U8 || t == QK_DT_I8 ? 1 : 2;
}

static void check_layout(const qk_format *f)
{
    int s = dsize(f->scale_dtype), z = dsize(f->zero_dtype);
    int cb = (f->block * f->bits + 7) / 8;
    CU_ASSERT_EQUAL(f->scale_off, 0);
    CU_ASSERT_EQUAL(f->zero_off, s);
    CU_ASSERT_EQUAL(f->codes_off, s + z);
    CU_ASSERT_EQUAL(f->code_bytes, cb);
    CU_ASSERT_EQUAL(f->block_bytes, s + z + cb);
    CU_ASSERT_EQUAL(qk_format_row_bytes(f, 1), s + z + cb);
    CU_ASSERT_EQUAL(qk_format_row_bytes(f, f->block), s + z + cb);
    CU_ASSERT_EQUAL(qk_format_row_bytes(f, f->block + 1), 2 * (s + z + cb));
    CU_ASSERT_EQUAL(qk_format_row_bytes(f, 0), 0);
    CU_ASSERT_EQUAL(qk_format_size(f, 3, 5 * f->block), 15 * (s + z + cb));
    CU_ASSERT_DOUBLE_EQUAL(qk_format_bits_per_weight(f), (s + z + cb) * 8.0 / f->block, 1e-12);
}

static void test_layout(void)
{
    for_all(check_layout);
}

static void test_finish_errors(void)
{
    char err[128];
    qk_format f = make(QK_CODE_UINT, 4, 32, QK_DT_F16, QK_DT_NONE);
    qk_format g = f;
    g.bits = 0;
    CU_ASSERT_EQUAL(qk_format_finish(&g, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "code width 0"));
    g = f, g.bits = 9;
    CU_ASSERT_EQUAL(qk_format_finish(&g, err, sizeof err), -1);
    g = f, g.block = 0;
    CU_ASSERT_EQUAL(qk_format_finish(&g, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "block 0"));
    g = f, g.block = QK_MAX_BLOCK + 1;
    CU_ASSERT_EQUAL(qk_format_finish(&g, err, sizeof err), -1);
    g = f, g.block = QK_MAX_BLOCK;
    CU_ASSERT_EQUAL(qk_format_finish(&g, err, sizeof err), 0);
    g = f, g.code = QK_CODE_OFFSET, g.offset = 16;
    CU_ASSERT_EQUAL(qk_format_finish(&g, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "offset 16"));
    g = f, g.code = QK_CODE_OFFSET, g.offset = -1;
    CU_ASSERT_EQUAL(qk_format_finish(&g, err, sizeof err), -1);
    g = f, g.code = QK_CODE_OFFSET, g.offset = 15;
    CU_ASSERT_EQUAL(qk_format_finish(&g, err, sizeof err), 0);
    g = f, g.scale_dtype = QK_DT_I8;
    CU_ASSERT_EQUAL(qk_format_finish(&g, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "scale dtype"));
    g = f, g.zero = QK_ZERO_BLOCK, g.zero_dtype = QK_DT_BF16;
    CU_ASSERT_EQUAL(qk_format_finish(&g, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "zero dtype"));
    g = f, g.zero = QK_ZERO_BLOCK, g.zero_dtype = QK_DT_I32;
    CU_ASSERT_EQUAL(qk_format_finish(&g, err, sizeof err), -1);
}

static void test_codeval(void)
{
    for (int bits = 1; bits <= 8; bits++)
        for (int ki = 0; ki < QK_COUNT(kinds); ki++) {
            qk_format f = make(kinds[ki], bits, 32, QK_DT_F32, QK_DT_NONE);
            int lo, hi, mn = 1000, mx = -1000;
            qk_format_code_range(&f, &lo, &hi);
            for (unsigned c = 0; c < (1u << bits); c++) {
                int v = qk_format_codeval(&f, c);
                CU_ASSERT_EQUAL(v, def_codeval(&f, c));
                mn = v < mn ? v : mn, mx = v > mx ? v : mx;
            }
            CU_ASSERT_EQUAL(lo, mn);
            CU_ASSERT_EQUAL(hi, mx);
        }
    qk_format i4 = make(QK_CODE_SINT, 4, 32, QK_DT_F32, QK_DT_NONE);
    CU_ASSERT_EQUAL(qk_format_codeval(&i4, 0xf), -1);
    CU_ASSERT_EQUAL(qk_format_codeval(&i4, 0x8), -8);
    CU_ASSERT_EQUAL(qk_format_codeval(&i4, 0x7), 7);
}

/* ---- hand-built blocks ---- */

/* Writes code into bits [e*bits, (e+1)*bits) of p, one bit at a time. */
static void put_bits(uint8_t *p, int bits, int e, unsigned code)
{
    for (int b = 0; b < bits; b++) {
        int pos = e * bits + b;
        if (code >> b & 1)
            p[pos / 8] |= (uint8_t)(1u << (pos % 8));
    }
}

static unsigned get_bits(const uint8_t *p, int bits, int e)
{
    unsigned c = 0;
    for (int b = 0; b < bits; b++) {
        int pos = e * bits + b;
        c |= (unsigned)(p[pos / 8] >> (pos % 8) & 1) << b;
    }
    return c;
}

/* Stores v as dtype t at p (unaligned) and returns the stored value. */
static double put_scalar(qk_dtype t, uint8_t *p, double v)
{
    uint8_t tmp[8];
    switch (t) {
    case QK_DT_F32: { float x = (float)v; memcpy(p, &x, 4); return x; }
    case QK_DT_F16: { uint16_t h = qk_f32_to_f16((float)v); memcpy(p, &h, 2); return qk_f16_to_f32(h); }
    case QK_DT_BF16: { uint16_t h = qk_f32_to_bf16((float)v); memcpy(p, &h, 2); return qk_bf16_to_f32(h); }
    case QK_DT_U8: tmp[0] = (uint8_t)v; *p = tmp[0]; return tmp[0];
    case QK_DT_I8: { int8_t i = (int8_t)v; memcpy(p, &i, 1); return i; }
    default: return 0;
    }
}

static double get_scalar(qk_dtype t, const uint8_t *p)
{
    _Alignas(8) uint8_t tmp[8];
    memcpy(tmp, p, (size_t)dsize(t));
    return qk_dtype_load(t, tmp, 0);
}

static void check_decode(const qk_format *f)
{
    int rows = 2, k = f->block * 2 + (f->block + 1) / 2; /* partial last block */
    int nb = (k + f->block - 1) / f->block;
    uint8_t *buf = calloc((size_t)(rows * nb * f->block_bytes), 1);
    double *want = malloc(sizeof(double) * (size_t)(rows * k));
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) {
            uint8_t *blk = buf + (r * nb + b) * f->block_bytes;
            int sb = dsize(f->scale_dtype), zb = dsize(f->zero_dtype);
            double s = sb ? put_scalar(f->scale_dtype, blk, urand() * 4) : 1;
            double z = 0;
            if (zb)
                z = put_scalar(f->zero_dtype, blk + sb,
                               f->zero_dtype == QK_DT_U8 ? rnd() % 256 : f->zero_dtype == QK_DT_I8 ? (int)(rnd() % 256) - 128 : urand() * 8);
            for (int e = 0; e < f->block && b * f->block + e < k; e++) {
                unsigned code = rnd() & ((1u << f->bits) - 1);
                put_bits(blk + sb + zb, f->bits, e, code);
                want[r * k + b * f->block + e] = (def_codeval(f, code) - z) * s;
            }
        }
    int64_t rb = qk_format_row_bytes(f, k);
    int bad = 0;
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < k; i++)
            bad += qk_format_get(f, buf + r * rb, i) != want[r * k + i];
    CU_ASSERT_EQUAL(bad, 0);
    float *out = malloc(sizeof(float) * (size_t)(rows * k));
    qk_format_unpack(f, buf, rows, k, out);
    for (int i = 0; i < rows * k; i++)
        bad += out[i] != (float)want[i];
    CU_ASSERT_EQUAL(bad, 0);
    free(out), free(buf), free(want);
}

static void test_decode(void)
{
    for_all(check_decode);
}

/* q4_0-style block by hand: f16 scale 2.0, codes 0x0..0xf in order. */
static void test_decode_by_hand(void)
{
    qk_arena *a = qk_arena_new();
    qk_format *q = kfx_format(a, "q4", QK_CODE_OFFSET, 4, 8, 32, QK_DT_F16, QK_DT_NONE);
    uint8_t blk[18] = {0x00, 0x40}; /* 2.0 in binary16 */
    for (int i = 0; i < 16; i++)
        blk[2 + i] = (uint8_t)((2 * i % 16) | ((2 * i + 1) % 16) << 4);
    for (int e = 0; e < 32; e++)
        CU_ASSERT_EQUAL(qk_format_get(q, blk, e), (e % 16 - 8) * 2.0);
    /* 3-bit codes cross byte boundaries: element 2 is bits 6..8. */
    qk_format *u3 = kfx_format(a, "u3", QK_CODE_UINT, 3, 0, 8, QK_DT_NONE, QK_DT_NONE);
    uint8_t c3[3] = {0xc0, 0x01, 0x00}; /* bits 6,7,8 set: element 2 = 7 */
    CU_ASSERT_EQUAL(qk_format_get(u3, c3, 2), 7);
    CU_ASSERT_EQUAL(qk_format_get(u3, c3, 1), 0);
    CU_ASSERT_EQUAL(qk_format_get(u3, c3, 3), 0);
    qk_arena_free(a);
}

/* ---- the quantizer ---- */

typedef struct blockinfo {
    double d, z;
    int n;
} blockinfo;

static blockinfo block_params(const qk_format *f, const uint8_t *blk, int n)
{
    blockinfo bi = {1, 0, n};
    if (f->scale == QK_SCALE_BLOCK)
        bi.d = get_scalar(f->scale_dtype, blk + f->scale_off);
    if (f->zero == QK_ZERO_BLOCK)
        bi.z = get_scalar(f->zero_dtype, blk + f->zero_off);
    return bi;
}

/* Every code is the nearest one to x for the block's stored d and z (up to
 * rounding slack), and padding codes/bits are zero. */
static int check_block(const qk_format *f, const float *x, const uint8_t *blk, blockinfo bi)
{
    int lo, hi, bad = 0;
    qk_format_code_range(f, &lo, &hi);
    for (int e = 0; e < bi.n; e++) {
        double got = qk_format_get(f, blk, e);
        CU_ASSERT(isfinite(got));
        if (!isfinite(x[e]))
            continue;
        double best = INFINITY;
        for (int c = lo; c <= hi; c++)
            best = fmin(best, fabs(x[e] - (c - bi.z) * bi.d));
        double slack = 1e-6 * (fabs(x[e]) + fabs(bi.d) * (hi - lo + fabs(bi.z))) + 1e-30;
        if (fabs(x[e] - got) > best + slack)
            bad++;
    }
    for (int e = bi.n; e < f->block; e++)
        bad += get_bits(blk + f->codes_off, f->bits, e) != 0;
    for (int p = f->block * f->bits; p < f->code_bytes * 8; p++)
        bad += (blk[f->codes_off + p / 8] >> (p % 8) & 1) != 0;
    return bad;
}

/* Without a zero point, the largest-magnitude element maps onto an end
 * of the code range: its reconstruction is within the scale's rounding. */
static int check_absmax(const qk_format *f, const float *x, int n, const uint8_t *blk)
{
    if (f->scale != QK_SCALE_BLOCK || f->zero == QK_ZERO_BLOCK)
        return 0;
    int lo, hi, m = 0;
    qk_format_code_range(f, &lo, &hi);
    for (int e = 0; e < n; e++)
        if (fabs(x[e]) > fabs(x[m]))
            m = e;
    if (lo == 0 && x[m] < 0)
        return 0; /* unsigned without zero point: negatives clamp to 0 */
    double rel = f->scale_dtype == QK_DT_F32 ? 1e-6 : f->scale_dtype == QK_DT_F16 ? 1e-3 : 8e-3;
    double got = qk_format_get(f, blk, m);
    return fabs(got - x[m]) > rel * fabs(x[m]) + 1e-30;
}

static void check_pack(const qk_format *f)
{
    int rows = 3, k = f->block * 2 + (f->block + 2) / 3;
    int nb = (k + f->block - 1) / f->block;
    float *x = malloc(sizeof(float) * (size_t)(rows * k));
    double amp = f->scale == QK_SCALE_BLOCK ? 3 : (1 << f->bits);
    for (int i = 0; i < rows * k; i++)
        x[i] = (float)(urand() * amp);
    for (int i = 0; i < k; i++)
        x[k + i] = (float)fabs(x[k + i]); /* one row of non-negative values */
    size_t size = (size_t)qk_format_size(f, rows, k);
    uint8_t *buf = malloc(size);
    memset(buf, 0xAB, size);
    qk_format_pack(f, x, rows, k, buf);
    int bad = 0, badmax = 0;
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) {
            const uint8_t *blk = buf + (r * nb + b) * f->block_bytes;
            int n = k - b * f->block < f->block ? k - b * f->block : f->block;
            const float *xb = x + r * k + b * f->block;
            bad += check_block(f, xb, blk, block_params(f, blk, n));
            badmax += check_absmax(f, xb, n, blk);
        }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(badmax, 0);
    float *y = malloc(sizeof(float) * (size_t)(rows * k));
    qk_format_unpack(f, buf, rows, k, y);
    for (int i = 0; i < rows * k; i++)
        bad += y[i] != (float)qk_format_get(f, buf + i / k * qk_format_row_bytes(f, k), i % k);
    CU_ASSERT_EQUAL(bad, 0);
    free(x), free(buf), free(y);
}

static void test_pack_nearest(void)
{
    for_all(check_pack);
}

/* |x - x^| <= |d|/2 for in-range values of a symmetric absmax format. */
static void test_pack_error_bound(void)
{
    qk_arena *a = qk_arena_new();
    const qk_format *fs[] = {
        kfx_format(a, "q4_0", QK_CODE_OFFSET, 4, 8, 32, QK_DT_F16, QK_DT_NONE),
        kfx_format(a, "q8_0", QK_CODE_SINT, 8, 0, 32, QK_DT_F16, QK_DT_NONE),
        kfx_format(a, "i3", QK_CODE_SINT, 3, 0, 7, QK_DT_F32, QK_DT_NONE),
        kfx_format(a, "q4_1", QK_CODE_UINT, 4, 0, 32, QK_DT_F16, QK_DT_F16),
        kfx_format(a, "a8", QK_CODE_UINT, 8, 0, 33, QK_DT_BF16, QK_DT_U8),
    };
    enum { K = 1000 };
    float x[K], y[K];
    uint8_t buf[4096];
    for (int i = 0; i < QK_COUNT(fs); i++) {
        const qk_format *f = fs[i];
        for (int j = 0; j < K; j++)
            x[j] = (float)(urand() * 10);
        qk_format_pack(f, x, 1, K, buf);
        qk_format_unpack(f, buf, 1, K, y);
        int lo, hi, bad = 0;
        qk_format_code_range(f, &lo, &hi);
        for (int j = 0; j < K; j++) {
            const uint8_t *blk = buf + j / f->block * f->block_bytes;
            blockinfo bi = block_params(f, blk, f->block);
            double q = x[j] / bi.d + bi.z;
            if (q < lo - 0.5 || q > hi + 0.5)
                continue; /* clamped (only +m for q4_0-style ranges) */
            bad += fabs(x[j] - y[j]) > fabs(bi.d) / 2 * (1 + 1e-5) + 1e-6;
        }
        CU_ASSERT_EQUAL(bad, 0);
    }
    qk_arena_free(a);
}

/* Values that the format represents exactly come back exactly. */
static void test_pack_exact(void)
{
    qk_arena *a = qk_arena_new();
    float x[256], y[256];
    uint8_t buf[2048];
    qk_format *i8 = kfx_format(a, "i8", QK_CODE_SINT, 8, 0, 256, QK_DT_F32, QK_DT_NONE);
    for (int i = 0; i < 256; i++)
        x[i] = (float)((i - 128) * 0.25); /* -32 has the largest magnitude and maps to -128 */
    qk_format_pack(i8, x, 1, 256, buf);
    qk_format_unpack(i8, buf, 1, 256, y);
    CU_ASSERT_EQUAL(memcmp(x, y, sizeof x), 0);
    qk_format *u4 = kfx_format(a, "u4", QK_CODE_UINT, 4, 0, 16, QK_DT_F16, QK_DT_NONE);
    for (int i = 0; i < 16; i++)
        x[i] = (float)(i * 0.5);
    qk_format_pack(u4, x, 1, 16, buf);
    qk_format_unpack(u4, buf, 1, 16, y);
    CU_ASSERT_EQUAL(memcmp(x, y, 16 * sizeof(float)), 0);
    qk_format *a4 = kfx_format(a, "a4", QK_CODE_UINT, 4, 0, 16, QK_DT_F32, QK_DT_F32);
    for (int i = 0; i < 16; i++)
        x[i] = (float)((i - 3) * 0.5);
    qk_format_pack(a4, x, 1, 16, buf);
    qk_format_unpack(a4, buf, 1, 16, y);
    CU_ASSERT_EQUAL(memcmp(x, y, 16 * sizeof(float)), 0);
    qk_format *raw = kfx_format(a, "raw", QK_CODE_SINT, 5, 0, 10, QK_DT_NONE, QK_DT_NONE);
    for (int i = 0; i < 20; i++)
        x[i] = (float)(i - 16 < 15 ? i - 16 : 15);
    qk_format_pack(raw, x, 2, 10, buf);
    qk_format_unpack(raw, buf, 2, 10, y);
    CU_ASSERT_EQUAL(memcmp(x, y, 20 * sizeof(float)), 0);
    /* ggml q4_0 semantics: the largest-magnitude element maps to -8. */
    qk_format *q4 = kfx_format(a, "q4_0", QK_CODE_OFFSET, 4, 8, 32, QK_DT_F16, QK_DT_NONE);
    for (int i = 0; i < 32; i++)
        x[i] = (float)(i - 12);
    x[5] = 40;
    qk_format_pack(q4, x, 1, 32, buf);
    CU_ASSERT_EQUAL(get_scalar(QK_DT_F16, buf), -5.0);
    CU_ASSERT_EQUAL(get_bits(buf + 2, 4, 5), 0); /* code 0 = -8 */
    CU_ASSERT_EQUAL(qk_format_get(q4, buf, 5), 40);
    qk_arena_free(a);
}

static void test_pack_zero_blocks(void)
{
    float x[40] = {0};
    float y[40];
    for (int ki = 0; ki < QK_COUNT(kinds); ki++)
        for (int si = 0; si < QK_COUNT(scales); si++)
            for (int zi = 0; zi < QK_COUNT(zeros); zi++) {
                qk_format f = make(kinds[ki], 4, 8, scales[si], zeros[zi]);
                uint8_t buf[512];
                qk_format_pack(&f, x, 1, 40, buf);
                qk_format_unpack(&f, buf, 1, 40, y);
                for (int i = 0; i < 40; i++)
                    CU_ASSERT_EQUAL(y[i], 0);
            }
}

/* Huge, tiny, infinite and NaN inputs never produce non-finite decodes. */
static void test_pack_extremes(void)
{
    float x[8] = {1e30f, -1e30f, 3, FLT_MAX, -INFINITY, NAN, 1e-30f, 0};
    float tiny[8] = {1e-30f, -1e-31f, 0, 1e-38f, 0, 0, 0, 0};
    for (int si = 1; si < QK_COUNT(scales); si++)
        for (int zi = 0; zi < QK_COUNT(zeros); zi++) {
            qk_format f = make(QK_CODE_SINT, 8, 8, scales[si], zeros[zi]);
            uint8_t buf[64];
            float y[8];
            qk_format_pack(&f, x, 1, 8, buf);
            qk_format_unpack(&f, buf, 1, 8, y);
            for (int i = 0; i < 8; i++)
                CU_ASSERT(!isnan(y[i]));
            qk_format_pack(&f, tiny, 1, 8, buf);
            qk_format_unpack(&f, buf, 1, 8, y);
            for (int i = 0; i < 8; i++)
                CU_ASSERT(isfinite(y[i]) && fabs(y[i]) < 1e-20);
        }
}

static void test_print(void)
{
    qk_arena *a = qk_arena_new();
    qk_buf b = {0};
    qk_format_print(kfx_format(a, "q4_0", QK_CODE_OFFSET, 4, 8, 32, QK_DT_F16, QK_DT_NONE), &b);
    CU_ASSERT_STRING_EQUAL(b.s, "format q4_0 { code = uint4 offset 8; block = 32; scale = f16 }  # 4.50 bits/weight");
    qk_buf_free(&b);
    qk_format_print(kfx_format(a, "q4_1", QK_CODE_UINT, 4, 0, 32, QK_DT_F16, QK_DT_F16), &b);
    CU_ASSERT_STRING_EQUAL(b.s, "format q4_1 { code = uint4; block = 32; scale = f16; zero = f16 }  # 5.00 bits/weight");
    qk_buf_free(&b);
    qk_format_print(kfx_format(a, "w3", QK_CODE_SINT, 3, 0, 7, QK_DT_NONE, QK_DT_NONE), &b);
    CU_ASSERT_STRING_EQUAL(b.s, "format w3 { code = int3; block = 7 }  # 3.43 bits/weight");
    qk_buf_free(&b);
    qk_arena_free(a);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("format", NULL, NULL);
    CU_add_test(s, "layout of every combination", test_layout);
    CU_add_test(s, "finish rejects bad formats", test_finish_errors);
    CU_add_test(s, "codeval and code range", test_codeval);
    CU_add_test(s, "decode hand-built blocks", test_decode);
    CU_add_test(s, "decode by hand", test_decode_by_hand);
    CU_add_test(s, "pack picks nearest codes, zero padding", test_pack_nearest);
    CU_add_test(s, "pack error bound", test_pack_error_bound);
    CU_add_test(s, "pack exact round trips", test_pack_exact);
    CU_add_test(s, "pack all-zero blocks", test_pack_zero_blocks);
    CU_add_test(s, "pack extreme values", test_pack_extremes);
    CU_add_test(s, "print", test_print);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}
