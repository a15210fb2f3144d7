/* test_format.c — the format descriptor against its definition (format.h,
 * ../shared/FORMATS.md, the quantizer arithmetic of the team spec), with
 * every expected value recomputed here independently: minifloat values
 * from sign/exponent/mantissa formulas, stored numbers, canonical layout
 * sizes, placements and ggml layouts (decoded with FORMATS.md's formulas
 * from random bytes), the quantizer of kernel-quantizable formats
 * repeated byte for byte from the spec (UPDATE 2: ggml's reference
 * arithmetic), and the guarantees of the other quantizers (nearest code
 * for the unrounded scale, q4_1's min, N:M selection, VQ nearest
 * codeword, two-level scales), finish's errors, the printer and kernel
 * quantizability. */
#include "support/kir_fixture.h"
#include "compiler/rowpack.h"

#include <CUnit/Basic.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---- */

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

/* A format with the given code; everything else none. */
static qk_format base(const char *name, qk_code_kind code, int bits, int block)
{
    qk_format f = {.name = name, .code = code, .bits = bits, .block = block};
    f.vq_books = 1;
    f.min_sign = 1;
    f.vq_dtype = QK_DT_F16;
    return f;
}

static void set_mf(qk_format *f, int e, int m, int bias, qk_mf_special sp)
{
    f->ebits = e, f->mbits = m, f->bias = bias, f->special = sp;
    f->bits = 1 + e + m;
}

static void block_scale(qk_format *f, qk_num n)
{
    f->scale_per = QK_PER_BLOCK;
    f->scale_num = n;
}

static int finish(qk_format *f)
{
    char err[256] = "";
    int rc = qk_format_finish(f, err, sizeof err);
    if (rc)
        fprintf(stderr, "unexpected finish error: %s\n", err);
    CU_ASSERT_EQUAL(rc, 0);
    return rc;
}

static void add_piece(qk_format *f, int field, int place, int first, int count, int lo, int width, int byte,
                      int shift, int group)
{
    f->pieces[f->npieces++] = (qk_piece){field, place, first, count, lo, width, byte, shift, group};
    f->explicit_layout = 1;
}

static void put_bits(uint8_t *p, int pos, int w, uint32_t v)
{
    for (int b = 0; b < w; b++)
        if (v >> b & 1)
            p[(pos + b) / 8] |= (uint8_t)(1u << ((pos + b) % 8));
}

static double f16v(const uint8_t *p)
{
    return qk_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

static void fill(float *x, int n, double amp)
{
    for (int i = 0; i < n; i++)
        x[i] = (float)(urand() * amp);
}

static void put_f16(uint8_t *p, float v)
{
    uint16_t h = qk_f32_to_f16(v);
    p[0] = (uint8_t)h, p[1] = (uint8_t)(h >> 8);
}

/* ---- minifloats: the OCP definition ---- */

typedef struct mfdef {
    const char *name;
    int e, m, bias;
    qk_mf_special sp;
    double max;
} mfdef;

static const mfdef mfs[] = {
    {"e2m1", 2, 1, 1, QK_MF_FINITE, 6.0},   {"e3m2", 3, 2, 3, QK_MF_FINITE, 28.0},
    {"e2m3", 2, 3, 1, QK_MF_FINITE, 7.5},   {"e4m3", 4, 3, 7, QK_MF_FN, 448.0},
    {"e5m2", 5, 2, 15, QK_MF_IEEE, 57344.0},
};

/* Value of a code from sign, exponent and mantissa fields. */
static double def_mf(const mfdef *t, int is_unsigned, uint32_t code)
{
    int n = t->e + t->m;
    int s = is_unsigned ? 0 : (int)(code >> n & 1);
    int ex = (int)(code >> t->m) & ((1 << t->e) - 1), man = (int)code & ((1 << t->m) - 1);
    int allones = (1 << t->e) - 1;
    double v;
    if (t->sp == QK_MF_IEEE && ex == allones)
        v = man ? NAN : INFINITY;
    else if (t->sp == QK_MF_FN && ex == allones && man == (1 << t->m) - 1)
        v = NAN;
    else if (ex == 0)
        v = man / pow(2, t->m) * pow(2, 1 - t->bias);
    else
        v = (1 + man / pow(2, t->m)) * pow(2, ex - t->bias);
    return s ? -v : v;
}

static void test_mf_conformance(void)
{
    for (int i = 0; i < QK_COUNT(mfs); i++) {
        const mfdef *t = &mfs[i];
        qk_format f = base(t->name, QK_CODE_MINIFLOAT, 0, 32);
        set_mf(&f, t->e, t->m, t->bias, t->sp);
        finish(&f);
        double mx = 0;
        int bad = 0;
        for (uint32_t c = 0; c < (1u << f.bits); c++) {
            double want = def_mf(t, 0, c);
            double got = qk_minifloat_decode(t->e, t->m, t->bias, t->sp, 0, c);
            double cv = qk_format_codeval(&f, c);
            if (isnan(want)) {
                bad += !isnan(got) || !isnan(cv);
                continue;
            }
            bad += got != want || cv != want || signbit(got) != signbit(want);
            if (isfinite(want)) {
                mx = fmax(mx, want);
                bad += qk_minifloat_encode(t->e, t->m, t->bias, t->sp, 0, want) != c; /* exact values round trip */
            }
        }
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT_EQUAL(mx, t->max); /* FORMATS.md's maxima */
    }
    /* anchors from FORMATS.md */
    CU_ASSERT_EQUAL(qk_minifloat_decode(2, 1, 1, QK_MF_FINITE, 0, 0x8), 0.0);
    CU_ASSERT(signbit(qk_minifloat_decode(2, 1, 1, QK_MF_FINITE, 0, 0x8)));
    CU_ASSERT_EQUAL(qk_minifloat_decode(2, 1, 1, QK_MF_FINITE, 0, 0x1), 0.5);
    CU_ASSERT_EQUAL(qk_minifloat_decode(2, 1, 1, QK_MF_FINITE, 0, 0xf), -6.0);
    CU_ASSERT(isnan(qk_minifloat_decode(4, 3, 7, QK_MF_FN, 0, 0x7f)));
    CU_ASSERT(isnan(qk_minifloat_decode(4, 3, 7, QK_MF_FN, 0, 0xff)));
    CU_ASSERT_EQUAL(qk_minifloat_decode(4, 3, 7, QK_MF_FN, 0, 0x7e), 448.0);
    CU_ASSERT_EQUAL(qk_minifloat_decode(5, 2, 15, QK_MF_IEEE, 0, 0x7c), INFINITY);
    CU_ASSERT_EQUAL(qk_minifloat_decode(5, 2, 15, QK_MF_IEEE, 0, 0xfc), -INFINITY);
    CU_ASSERT(isnan(qk_minifloat_decode(5, 2, 15, QK_MF_IEEE, 0, 0x7d)));
}

/* Code of q by brute force: among the codes with q's sign, the nearest
 * finite value (ties: even code); beyond the largest: the largest. */
static uint32_t def_mf_encode(const mfdef *t, int is_unsigned, double q)
{
    int n = t->e + t->m;
    uint32_t sign = !is_unsigned && signbit(q) ? 1u << n : 0, best = 0;
    double bd = INFINITY;
    if (is_unsigned && q < 0)
        return 0;
    for (uint32_t c = 0; c < (1u << n); c++) {
        double v = def_mf(t, 1, c);
        if (!isfinite(v))
            continue;
        double d = isinf(q) ? (v == t->max ? 0 : 1) : fabs(fabs(q) - v);
        if (d < bd || (d == bd && (c & 1) == 0))
            bd = d, best = c;
    }
    return best | sign;
}

static void test_mf_rounding(void)
{
    for (int i = 0; i < QK_COUNT(mfs); i++) {
        const mfdef *t = &mfs[i];
        int n = t->e + t->m, bad = 0;
        double prev = 0;
        for (uint32_t c = 1; c < (1u << n); c++) { /* positive codes in increasing order */
            double v = def_mf(t, 1, c);
            if (!isfinite(v))
                break;
            double mid = (prev + v) / 2, probes[] = {mid, nextafter(mid, 0), nextafter(mid, INFINITY),
                                                     prev + (v - prev) * 0.3, v};
            for (int k = 0; k < 5; k++)
                for (int s = 0; s < 2; s++) {
                    double q = s ? -probes[k] : probes[k];
                    bad += qk_minifloat_encode(t->e, t->m, t->bias, t->sp, 0, q) != def_mf_encode(t, 0, q);
                }
            /* ties go to the even code */
            uint32_t tie = qk_minifloat_encode(t->e, t->m, t->bias, t->sp, 0, mid);
            bad += (tie & 1) != 0;
            prev = v;
        }
        CU_ASSERT_EQUAL(bad, 0);
        uint32_t maxc = def_mf_encode(t, 0, t->max), sbit = 1u << n;
        double over[] = {t->max * 1.01, t->max * 1.5, t->max * 4, 1e30, INFINITY};
        for (int k = 0; k < 5; k++) {
            CU_ASSERT_EQUAL(qk_minifloat_encode(t->e, t->m, t->bias, t->sp, 0, over[k]), maxc);
            CU_ASSERT_EQUAL(qk_minifloat_encode(t->e, t->m, t->bias, t->sp, 0, -over[k]), maxc | sbit);
        }
        CU_ASSERT_EQUAL(qk_minifloat_encode(t->e, t->m, t->bias, t->sp, 0, -0.0), sbit);
        CU_ASSERT_EQUAL(qk_minifloat_encode(t->e, t->m, t->bias, t->sp, 0, 0.0), 0);
        double minsub = pow(2, 1 - t->bias - t->m);
        CU_ASSERT_EQUAL(qk_minifloat_encode(t->e, t->m, t->bias, t->sp, 0, minsub / 2), 0);      /* tie -> even */
        CU_ASSERT_EQUAL(qk_minifloat_encode(t->e, t->m, t->bias, t->sp, 0, minsub * 0.51), 1);
        CU_ASSERT_EQUAL(qk_minifloat_encode(t->e, t->m, t->bias, t->sp, 0, minsub * 1.5), 2); /* tie -> even */
        uint32_t nan = qk_minifloat_encode(t->e, t->m, t->bias, t->sp, 0, NAN);
        CU_ASSERT(t->sp == QK_MF_FINITE ? nan == 0 : isnan(def_mf(t, 0, nan)));
    }
    /* e4m3 specifics: 464 is the midpoint of 448 and (NaN) 480: saturates */
    CU_ASSERT_EQUAL(qk_minifloat_encode(4, 3, 7, QK_MF_FN, 0, 464), 0x7e);
    CU_ASSERT_EQUAL(qk_minifloat_encode(4, 3, 7, QK_MF_FN, 0, 1.0625), 0x38); /* 1 + 1/16: tie -> 1.0 */
    CU_ASSERT_EQUAL(qk_minifloat_encode(4, 3, 7, QK_MF_FN, 0, 1.1875), 0x3a); /* tie -> 1.25 (even) */
    CU_ASSERT_EQUAL(qk_minifloat_encode(5, 2, 15, QK_MF_IEEE, 0, 61440), 0x7b); /* rounds to inf: saturates */
    CU_ASSERT_EQUAL(qk_minifloat_encode(2, 1, 1, QK_MF_FINITE, 0, 5.0), 0x6);  /* tie 4|6 -> 4 (even) */
    CU_ASSERT_EQUAL(qk_minifloat_encode(2, 1, 1, QK_MF_FINITE, 0, 2.5), 0x4);  /* tie 2|3 -> 2 */
    CU_ASSERT_EQUAL(qk_minifloat_encode(2, 1, 1, QK_MF_FINITE, 0, 0.25), 0x0); /* tie 0|0.5 -> 0 */
    CU_ASSERT_EQUAL(qk_minifloat_encode(2, 1, 1, QK_MF_FINITE, 0, 0.75), 0x2); /* tie 0.5|1 -> 1 */
}

/* ---- stored numbers ---- */

static void test_num_e8m0_ue4m3(void)
{
    for (uint32_t e = 0; e < 255; e++)
        CU_ASSERT_EQUAL(qk_num_decode(QK_NUM_E8M0, e), ldexp(1, (int)e - 127));
    CU_ASSERT(isnan(qk_num_decode(QK_NUM_E8M0, 0xff)));
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_E8M0, 0, 1.0), 127);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_E8M0, 0, 3.0), 129); /* smallest power of two >= 3 is 4 */
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_E8M0, 0, 4.0), 129);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_E8M0, 0, 4.0001), 130);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_E8M0, 0, 0.3), 126); /* 0.5 */
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_E8M0, 0, 0.0), 0);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_E8M0, 0, -5.0), 0);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_E8M0, 0, 1e-300), 0);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_E8M0, 0, 1e300), 254);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_E8M0, 0, INFINITY), 254);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_E8M0, 0, NAN), 0xff);
    for (int i = 0; i < 1000; i++) { /* never below v: nothing clips */
        double v = ldexp(1 + fabs(urand()), (int)(rnd() % 200) - 100);
        uint32_t c = qk_num_encode(QK_NUM_E8M0, 0, v);
        CU_ASSERT(qk_num_decode(QK_NUM_E8M0, c) >= v && qk_num_decode(QK_NUM_E8M0, c) < 2 * v);
    }
    const mfdef *e4m3 = &mfs[3];
    for (uint32_t c = 0; c < 128; c++) {
        double want = def_mf(e4m3, 1, c), got = qk_num_decode(QK_NUM_UE4M3, c);
        CU_ASSERT(isnan(want) ? isnan(got) : got == want);
        CU_ASSERT(isnan(want) ? 1 : qk_num_encode(QK_NUM_UE4M3, 0, want) == c);
        double sw = def_mf(e4m3, 0, c | 0x80), sg = qk_num_decode(QK_NUM_E4M3, c | 0x80);
        CU_ASSERT(isnan(sw) ? isnan(sg) : sg == sw);
    }
    CU_ASSERT(isnan(qk_num_decode(QK_NUM_UE4M3, 0x7f)));
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_UE4M3, 0, -3.0), 0);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_UE4M3, 0, 500.0), 0x7e);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_UE4M3, 0, NAN), 0x7f);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_E4M3, 0, -500.0), 0xfe);
    CU_ASSERT_EQUAL(qk_num_bits(QK_NUM_UE4M3, 0), 8);
    CU_ASSERT_EQUAL(qk_num_bits(QK_NUM_UINT, 6), 6);
    CU_ASSERT_STRING_EQUAL(qk_num_name(QK_NUM_UINT, 6), "uint6");
    CU_ASSERT_STRING_EQUAL(qk_num_name(QK_NUM_UE4M3, 0), "ue4m3");
}

static void test_num_floats_ints(void)
{
    int bad = 0;
    for (int i = 0; i < 5000; i++) {
        float v = (float)(urand() * pow(2, (int)(rnd() % 40) - 25));
        bad += qk_num_encode(QK_NUM_F16, 0, v) != qk_f32_to_f16(v);
        bad += qk_num_encode(QK_NUM_BF16, 0, v) != qk_f32_to_bf16(v);
        bad += qk_num_decode(QK_NUM_F16, qk_f32_to_f16(v)) != qk_f16_to_f32(qk_f32_to_f16(v));
        uint32_t r;
        memcpy(&r, &v, 4);
        bad += qk_num_encode(QK_NUM_F32, 0, v) != r || qk_num_decode(QK_NUM_F32, r) != v;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_F16, 0, 1e6), 0x7bff); /* saturates at 65504 */
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_F16, 0, -INFINITY), 0xfbff);
    CU_ASSERT(isnan(qk_num_decode(QK_NUM_F16, qk_num_encode(QK_NUM_F16, 0, NAN))));
    CU_ASSERT_EQUAL(qk_num_decode(QK_NUM_F32, qk_num_encode(QK_NUM_F32, 0, 1e39)), FLT_MAX);
    CU_ASSERT_EQUAL(qk_num_decode(QK_NUM_BF16, qk_num_encode(QK_NUM_BF16, 0, 1e39)), 0x1.fep127);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_U8, 0, 2.5), 2);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_U8, 0, 3.5), 4);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_U8, 0, 300), 255);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_U8, 0, -5), 0);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_I8, 0, -200), 0x80);
    CU_ASSERT_EQUAL(qk_num_decode(QK_NUM_I8, 0x80), -128);
    CU_ASSERT_EQUAL(qk_num_decode(QK_NUM_I8, 0xff), -1);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_UINT, 6, 70), 63);
    CU_ASSERT_EQUAL(qk_num_encode(QK_NUM_UINT, 6, 12.5), 12);
    CU_ASSERT_EQUAL(qk_num_decode(QK_NUM_UINT, 37), 37);
}

/* ---- codes ---- */

static int def_intval(const qk_format *f, unsigned c)
{
    switch (f->code) {
    case QK_CODE_SINT: return c >= (1u << (f->bits - 1)) ? (int)c - (1 << f->bits) : (int)c;
    case QK_CODE_OFFSET: return (int)c - f->offset;
    case QK_CODE_TERNARY: return (int)c - 1; /* a 2-bit 3 decodes as +2 (ggml's dequantize_row_tq2_0) */
    case QK_CODE_BINARY: return c ? -1 : 1;
    default: return (int)c;
    }
}

static void test_codeval(void)
{
    static const qk_code_kind kinds[] = {QK_CODE_SINT, QK_CODE_UINT, QK_CODE_OFFSET};
    for (int bits = 1; bits <= 8; bits++)
        for (int ki = 0; ki < 3; ki++) {
            qk_format f = base("t", kinds[ki], bits, 32);
            f.offset = kinds[ki] == QK_CODE_OFFSET ? (1 << bits) / 2 : 0;
            finish(&f);
            int lo, hi, mn = 1000, mx = -1000;
            qk_format_code_range(&f, &lo, &hi);
            for (unsigned c = 0; c < (1u << bits); c++) {
                int v = (int)qk_format_codeval(&f, c);
                CU_ASSERT_EQUAL(v, def_intval(&f, c));
                mn = v < mn ? v : mn, mx = v > mx ? v : mx;
            }
            CU_ASSERT_EQUAL(lo, mn);
            CU_ASSERT_EQUAL(hi, mx);
        }
    qk_format t = base("t", QK_CODE_TERNARY, 2, 8), b = base("b", QK_CODE_BINARY, 1, 8);
    finish(&t), finish(&b);
    for (unsigned c = 0; c < 4; c++)
        CU_ASSERT_EQUAL(qk_format_codeval(&t, c), def_intval(&t, c));
    CU_ASSERT_EQUAL(qk_format_codeval(&b, 0), 1);
    CU_ASSERT_EQUAL(qk_format_codeval(&b, 1), -1);
    int lo, hi;
    qk_format_code_range(&t, &lo, &hi);
    CU_ASSERT(lo == -1 && hi == 1);
    double tab[4] = {-1.5, 0.1, 0.3, 7};
    qk_format tf = base("tab", QK_CODE_TABLE, 2, 8);
    tf.table = tab;
    finish(&tf);
    for (unsigned c = 0; c < 4; c++)
        CU_ASSERT_EQUAL(qk_format_codeval(&tf, c), (double)(float)tab[c]);
}

/* ---- canonical layouts and sizes ---- */

static void check_sizes(qk_format *f, int block_bytes, int row_hdr, int tensor_hdr)
{
    if (finish(f))
        return;
    CU_ASSERT_EQUAL(f->block_bytes, block_bytes);
    CU_ASSERT_EQUAL(f->row_header_bytes, row_hdr);
    CU_ASSERT_EQUAL(f->tensor_header_bytes, tensor_hdr);
    CU_ASSERT_DOUBLE_EQUAL(qk_format_bits_per_weight(f), block_bytes * 8.0 / f->block, 1e-12);
    CU_ASSERT_EQUAL(qk_format_row_bytes(f, 1), row_hdr + block_bytes);
    CU_ASSERT_EQUAL(qk_format_row_bytes(f, f->block + 1), row_hdr + 2 * block_bytes);
    CU_ASSERT_EQUAL(qk_format_size(f, 3, 5 * f->block), tensor_hdr + 3 * (row_hdr + 5 * block_bytes));
    /* canonical pieces: fields in order, each from a fresh byte */
    int cursor = 0;
    for (int k = 0; k < f->npieces; k++) {
        const qk_piece *p = &f->pieces[k];
        CU_ASSERT(k == 0 || p->field > f->pieces[k - 1].field);
        CU_ASSERT_EQUAL(p->byte, cursor);
        CU_ASSERT_EQUAL(p->place, QK_PLACE_STREAM);
        cursor += (f->items[p->field] * f->width[p->field] + 7) / 8;
    }
    CU_ASSERT_EQUAL(cursor, block_bytes);
}

static void test_canonical_sizes(void)
{
    static const qk_num scales[] = {QK_NUM_NONE, QK_NUM_F32, QK_NUM_F16, QK_NUM_BF16, QK_NUM_E8M0};
    static const qk_num zeros[] = {QK_NUM_NONE, QK_NUM_U8, QK_NUM_I8, QK_NUM_F16, QK_NUM_F32};
    static const int blocks[] = {1, 3, 7, 8, 32, 33, 256};
    for (int bits = 1; bits <= 8; bits++)
        for (int si = 0; si < 5; si++)
            for (int zi = 0; zi < 5; zi++)
                for (int bi = 0; bi < QK_COUNT(blocks); bi++) {
                    qk_format f = base("t", QK_CODE_UINT, bits, blocks[bi]);
                    if (scales[si])
                        block_scale(&f, scales[si]);
                    f.zero = zeros[zi] ? QK_ZERO_BLOCK : QK_ZERO_NONE;
                    f.zero_num = zeros[zi];
                    int sb = scales[si] == QK_NUM_F32 ? 4 : scales[si] == QK_NUM_E8M0 ? 1 : scales[si] ? 2 : 0;
                    int zb = zeros[zi] == QK_NUM_F32 ? 4 : zeros[zi] == QK_NUM_F16 ? 2 : zeros[zi] ? 1 : 0;
                    check_sizes(&f, sb + zb + (blocks[bi] * bits + 7) / 8, 0, 0);
                }
    qk_format f = base("mxfp4", QK_CODE_MINIFLOAT, 0, 32);
    set_mf(&f, 2, 1, 1, QK_MF_FINITE);
    block_scale(&f, QK_NUM_E8M0);
    check_sizes(&f, 17, 0, 0); /* 4.25 bits/weight */
    f = base("nvfp4", QK_CODE_MINIFLOAT, 0, 16);
    set_mf(&f, 2, 1, 1, QK_MF_FINITE);
    block_scale(&f, QK_NUM_UE4M3);
    f.tensor_scale = 1;
    check_sizes(&f, 9, 0, 4); /* 4.5 bits/weight */
    f = base("tern", QK_CODE_TERNARY, 2, 256);
    f.scale_per = QK_PER_TENSOR, f.scale_num = QK_NUM_F32;
    check_sizes(&f, 64, 0, 4);
    f = base("x8row", QK_CODE_SINT, 8, 64);
    f.scale_per = QK_PER_ROW, f.scale_num = QK_NUM_F16;
    check_sizes(&f, 64, 2, 0);
    f = base("s24", QK_CODE_SINT, 8, 16); /* 8 kept int8, 8 2-bit indices, f16 scale */
    block_scale(&f, QK_NUM_F16);
    f.sp_n = 2, f.sp_m = 4;
    check_sizes(&f, 2 + 8 + 2, 0, 0);
    CU_ASSERT_EQUAL(f.kept, 8);
    CU_ASSERT_EQUAL(f.width[QK_FIELD_INDEX], 2);
    f = base("k4", QK_CODE_UINT, 4, 256); /* q4_K's fields: 2+2+6+6+128 */
    block_scale(&f, QK_NUM_F16);
    f.sub_block = 32, f.sub_num = QK_NUM_UINT, f.sub_bits = 6;
    f.min_num = QK_NUM_F16, f.min_sign = -1, f.submin_num = QK_NUM_UINT, f.submin_bits = 6;
    check_sizes(&f, 144, 0, 0);
    f = base("aqlm", QK_CODE_VQ, 16, 8);
    f.vq_dim = 8;
    f.scale_per = QK_PER_ROW, f.scale_num = QK_NUM_F16;
    check_sizes(&f, 2, 2, 0);
    CU_ASSERT_EQUAL(qk_format_codebook_elems(&f), 65536 * 8);
    f = base("aqlm2x8", QK_CODE_VQ, 8, 16);
    f.vq_dim = 8, f.vq_books = 2;
    check_sizes(&f, 4, 0, 0);
    CU_ASSERT_EQUAL(f.items[QK_FIELD_CODES], 4);
    f = base("e8p", QK_CODE_VQ, 8, 32);
    f.vq_dim = 8, f.vq_signs = 1;
    block_scale(&f, QK_NUM_F16);
    check_sizes(&f, 2 + 4 + 4, 0, 0); /* 4 indices, 4 x 7 sign bits */
    CU_ASSERT_EQUAL(f.width[QK_FIELD_SIGNS], 7);
    CU_ASSERT_EQUAL(qk_format_codebook_elems(&f), 256 * 8);
}

/* ---- finish errors ---- */

typedef struct bad_case {
    void (*mod)(qk_format *f);
    const char *msg;
} bad_case;

static void m_bits0(qk_format *f) { f->bits = 0; }
static void m_bits9(qk_format *f) { f->bits = 9; }
static void m_block0(qk_format *f) { f->block = 0; }
static void m_block_big(qk_format *f) { f->block = QK_MAX_BLOCK + 1; }
static void m_offset(qk_format *f) { f->code = QK_CODE_OFFSET, f->offset = 16; }
static void m_scale_i8(qk_format *f) { f->scale_num = QK_NUM_I8; }
static void m_zero_bf16(qk_format *f) { f->zero = QK_ZERO_BLOCK, f->zero_num = QK_NUM_BF16; }
static void m_ternary3(qk_format *f) { f->code = QK_CODE_TERNARY, f->bits = 3; }
static void m_mf_wide(qk_format *f) { f->code = QK_CODE_MINIFLOAT, f->ebits = 5, f->mbits = 3, f->bits = 9; }
static void m_mf_zero(qk_format *f)
{
    set_mf(f, 2, 1, 1, QK_MF_FINITE);
    f->code = QK_CODE_MINIFLOAT, f->zero = QK_ZERO_BLOCK, f->zero_num = QK_NUM_U8;
}
static void m_table_null(qk_format *f) { f->code = QK_CODE_TABLE; }
static void m_vq_bits(qk_format *f) { f->code = QK_CODE_VQ, f->bits = 17, f->vq_dim = 8; }
static void m_vq_dim(qk_format *f) { f->code = QK_CODE_VQ, f->vq_dim = 65; }
static void m_vq_books(qk_format *f) { f->code = QK_CODE_VQ, f->vq_dim = 8, f->vq_books = 5; }
static void m_vq_block(qk_format *f) { f->code = QK_CODE_VQ, f->vq_dim = 5; }
static void m_vq_signs(qk_format *f) { f->code = QK_CODE_VQ, f->vq_dim = 1, f->vq_signs = 1; }
static void m_sub_div(qk_format *f) { f->sub_block = 5, f->sub_num = QK_NUM_UINT, f->sub_bits = 6; }
static void m_sub_bits(qk_format *f) { f->sub_block = 8, f->sub_num = QK_NUM_UINT, f->sub_bits = 9; }
static void m_submin_alone(qk_format *f) { f->min_num = QK_NUM_F16, f->submin_num = QK_NUM_UINT, f->submin_bits = 6; }
static void m_zero_min(qk_format *f) { f->zero = QK_ZERO_BLOCK, f->zero_num = QK_NUM_U8, f->min_num = QK_NUM_F16; }
static void m_min_u8(qk_format *f) { f->min_num = QK_NUM_U8; }
static void m_min_sint(qk_format *f) { f->code = QK_CODE_SINT, f->min_num = QK_NUM_F16; }
static void m_sparse_nm(qk_format *f) { f->sp_n = 4, f->sp_m = 4; }
static void m_sparse_m(qk_format *f) { f->sp_n = 2, f->sp_m = 17; }
static void m_sparse_block(qk_format *f) { f->sp_n = 2, f->sp_m = 5; }
static void m_sparse_sub(qk_format *f)
{
    f->sub_block = 2, f->sub_num = QK_NUM_UINT, f->sub_bits = 4, f->sp_n = 1, f->sp_m = 4;
}
static void m_row_sub(qk_format *f) { f->scale_per = QK_PER_ROW, f->sub_block = 8, f->sub_num = QK_NUM_F16; }
static void m_piece_missing(qk_format *f)
{
    add_piece(f, QK_FIELD_SCALE, QK_PLACE_STREAM, 0, 1, 0, 16, 0, 0, 0);
    add_piece(f, QK_FIELD_CODES, QK_PLACE_STREAM, 0, 31, 0, 4, 2, 0, 0);
}
static void m_piece_twice(qk_format *f)
{
    add_piece(f, QK_FIELD_SCALE, QK_PLACE_STREAM, 0, 1, 0, 16, 0, 0, 0);
    add_piece(f, QK_FIELD_CODES, QK_PLACE_STREAM, 0, 32, 0, 4, 2, 0, 0);
    add_piece(f, QK_FIELD_CODES, QK_PLACE_STREAM, 3, 1, 0, 2, 30, 0, 0);
}
static void m_piece_overlap(qk_format *f)
{
    add_piece(f, QK_FIELD_SCALE, QK_PLACE_STREAM, 0, 1, 0, 16, 0, 0, 0);
    add_piece(f, QK_FIELD_CODES, QK_PLACE_STREAM, 0, 32, 0, 4, 1, 0, 0);
}
static void m_piece_zero(qk_format *f)
{
    add_piece(f, QK_FIELD_ZERO, QK_PLACE_STREAM, 0, 1, 0, 8, 0, 0, 0);
}
static void m_piece_range(qk_format *f)
{
    add_piece(f, QK_FIELD_SCALE, QK_PLACE_STREAM, 0, 1, 0, 16, 0, 0, 0);
    add_piece(f, QK_FIELD_CODES, QK_PLACE_STREAM, 0, 33, 0, 4, 2, 0, 0);
}
static void m_piece_interleave(qk_format *f)
{
    add_piece(f, QK_FIELD_SCALE, QK_PLACE_STREAM, 0, 1, 0, 16, 0, 0, 0);
    add_piece(f, QK_FIELD_CODES, QK_PLACE_INTERLEAVE, 0, 32, 0, 4, 2, 6, 16);
}
static void m_piece_base3(qk_format *f)
{
    add_piece(f, QK_FIELD_SCALE, QK_PLACE_STREAM, 0, 1, 0, 16, 0, 0, 0);
    add_piece(f, QK_FIELD_CODES, QK_PLACE_BASE3, 0, 32, 0, 4, 2, 0, 8);
}

static void test_finish_errors(void)
{
    static const bad_case cases[] = {
        {m_bits0, "code width 0"},
        {m_bits9, "code width 9"},
        {m_block0, "block 0"},
        {m_block_big, "block 4097"},
        {m_offset, "offset 16"},
        {m_scale_i8, "scale type i8"},
        {m_zero_bf16, "zero type bf16"},
        {m_ternary3, "ternary codes are 2 bits"},
        {m_mf_wide, "minifloat e5m3"},
        {m_mf_zero, "zero points need an integer code"},
        {m_table_null, "table code without values"},
        {m_vq_bits, "vq index width 17"},
        {m_vq_dim, "vq dim 65"},
        {m_vq_books, "vq books 5"},
        {m_vq_block, "not a multiple of the vq dim 5"},
        {m_vq_signs, "vq signs need a dim"},
        {m_sub_div, "sub-block 5 does not divide block 32"},
        {m_sub_bits, "sub-block scale width 9"},
        {m_submin_alone, "two-level min needs a two-level scale"},
        {m_zero_min, "conflicting attributes"},
        {m_min_u8, "min type u8"},
        {m_min_sint, "min needs an unsigned code"},
        {m_sparse_nm, "sparsity 4:4"},
        {m_sparse_m, "sparsity 2:17"},
        {m_sparse_block, "not a multiple of the sparsity group 5"},
        {m_sparse_sub, "sub-block 2 is not a multiple of the sparsity group 4"},
        {m_row_sub, "sub-block scales need a per-block scale"},
        {m_piece_missing, "bit 0 of codes item 31 nowhere"},
        {m_piece_twice, "bit 0 of codes item 3 more than once"},
        {m_piece_overlap, "share bit"},
        {m_piece_zero, "layout places zero, which the format does not have"},
        {m_piece_range, "codes[0:33]"},
        {m_piece_interleave, "do not fit a byte after shift 6"},
        {m_piece_base3, "base3 places whole ternary codes"},
    };
    for (int i = 0; i < QK_COUNT(cases); i++) {
        qk_format f = base("bad", QK_CODE_UINT, 4, 32);
        block_scale(&f, QK_NUM_F16);
        cases[i].mod(&f);
        char err[256] = "";
        CU_ASSERT_EQUAL(qk_format_finish(&f, err, sizeof err), -1);
        if (!strstr(err, cases[i].msg) || !strstr(err, "format 'bad'"))
            fprintf(stderr, "case %d: '%s' lacks '%s'\n", i, err, cases[i].msg);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].msg));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "format 'bad'"));
    }
    qk_format g = base("ok", QK_CODE_OFFSET, 4, QK_MAX_BLOCK);
    g.offset = 15;
    CU_ASSERT_EQUAL(qk_format_finish(&g, NULL, 0), 0);
}

/* ---- the quantizer's arithmetic, from the spec (UPDATE 2: ggml's
 * reference quantizers, generically) ----
 * All in f32. d = the group's unrounded scale; the stored scale d_s is d
 * rounded to the scale type; codes come from q = x * id with id = 1 / d
 * (the UNROUNDED d) for float scale types and id = 1 / d_s for e8m0 (and
 * ue4m3); id = 0 (every code the code of 0) when d or d_s is 0 or not
 * finite. SINT, TERNARY: roundf(q) (half away from zero) clamped to
 * [lo, hi]; UINT, OFFSET: (int)(q + offset + 0.5f) clamped to
 * [0, 2^bits - 1]; BINARY: x < 0 (d: the mean of |x| summed in 16 running
 * sums folded by halves); MINIFLOAT: nearest even of q. So a code
 * is the nearest one for the unrounded d, not necessarily for d_s. */

static int ok(double d)
{
    return d != 0 && isfinite(d);
}

/* Scale types that hold negative values (the OFFSET rule's m / lo). */
static int spec_signed(qk_num n)
{
    return n == QK_NUM_F32 || n == QK_NUM_F16 || n == QK_NUM_BF16 || n == QK_NUM_E4M3;
}

/* The unrounded scale d of a group of n values (no zero point, no min). */
static float spec_scale(const qk_format *f, const float *x, int n)
{
    int lo, hi;
    qk_format_code_range(f, &lo, &hi);
    if (f->code == QK_CODE_BINARY) { /* mean |x|: 16 running sums (x[i] to sum i mod 16), halves folded */
        float s[16] = {0};
        for (int i = 0; i < n; i++)
            s[i & 15] += fabsf(x[i]);
        for (int w = 16; w > 1; w /= 2)
            for (int l = 0; l < w / 2; l++)
                s[l] = s[l] + s[l + w / 2];
        return s[0] / (float)n;
    }
    float a = 0; /* amax */
    for (int i = 0; i < n; i++)
        a = fabsf(x[i]) > a ? fabsf(x[i]) : a;
    if (f->code == QK_CODE_MINIFLOAT) { /* amax / largest finite */
        for (int i = 0; i < QK_COUNT(mfs); i++)
            if (mfs[i].e == f->ebits && mfs[i].m == f->mbits)
                return a / (float)mfs[i].max;
    }
    float m = 0;
    if (lo == 0) { /* UINT: max(0, max x) / hi */
        for (int i = 0; i < n; i++)
            m = x[i] > m ? x[i] : m;
        return m / (float)hi;
    }
    if (f->code != QK_CODE_OFFSET) /* SINT, TERNARY: symmetric, amax / hi */
        return a / (float)hi;
    for (int i = 0; i < n; i++) /* OFFSET: m = the x of largest |x|, the first on ties */
        if (fabsf(x[i]) > fabsf(m))
            m = x[i];
    if (!spec_signed(f->scale_num)) /* unsigned scale: |m| onto the end of m's sign */
        return fabsf(m) / (float)(m < 0 ? -lo : hi);
    return (-lo > hi || m < 0) ? m / (float)lo : m / (float)hi;
}

/* Stored bits of scale d and their value ds. */
static uint32_t spec_store(qk_num num, float d, float *ds)
{
    uint32_t r;
    switch (num) {
    case QK_NUM_F16: r = qk_f32_to_f16(d), *ds = qk_f16_to_f32((uint16_t)r); return r;
    case QK_NUM_BF16: r = qk_f32_to_bf16(d), *ds = qk_bf16_to_f32((uint16_t)r); return r;
    case QK_NUM_E8M0: { /* the smallest power of two >= d */
        int e = -127;
        while (e < 127 && ldexp(1, e) < d)
            e++;
        *ds = (float)ldexp(1, e);
        return (uint32_t)(e + 127);
    }
    default: memcpy(&r, &d, 4), *ds = d; return r;
    }
}

/* The reciprocal codes are computed with: of the unrounded d for float
 * scale types, of the stored ds otherwise; 0 when either is unusable. */
static float spec_recip(qk_num num, float d, float ds)
{
    if (!ok(d) || !ok(ds))
        return 0;
    int is_float = num == QK_NUM_F32 || num == QK_NUM_F16 || num == QK_NUM_BF16;
    return 1.0f / (is_float ? d : ds);
}

/* Raw code of x for reciprocal id (0: the code of 0). */
static uint32_t spec_code(const qk_format *f, float x, float id)
{
    int lo, hi;
    qk_format_code_range(f, &lo, &hi);
    if (id == 0)
        x = 0, id = 1;
    if (f->code == QK_CODE_BINARY)
        return x < 0;
    float q = x * id;
    if (f->code == QK_CODE_MINIFLOAT) {
        for (int i = 0; i < QK_COUNT(mfs); i++)
            if (mfs[i].e == f->ebits && mfs[i].m == f->mbits)
                return def_mf_encode(&mfs[i], 0, q);
    }
    if (f->code == QK_CODE_UINT || f->code == QK_CODE_OFFSET) { /* ggml: (int)(q + 8.5f), at most 15 */
        float t = q + ((float)(f->code == QK_CODE_OFFSET ? f->offset : 0) + 0.5f);
        int top = (1 << f->bits) - 1;
        return (uint32_t)(t < 0 ? 0 : t >= (float)top ? top : (int)t);
    }
    float r = roundf(q); /* SINT, TERNARY: half away from zero */
    int v = r < (float)lo ? lo : r > (float)hi ? hi : (int)r;
    if (f->code == QK_CODE_TERNARY)
        return (uint32_t)(v + 1);
    return (uint32_t)v & ((1u << f->bits) - 1);
}

/* ---- canonical blocks of integer codes: decode and nearest codes ---- */

static const qk_num mat_scales[] = {QK_NUM_NONE, QK_NUM_F32, QK_NUM_F16, QK_NUM_BF16};
static const qk_num mat_zeros[] = {QK_NUM_NONE, QK_NUM_U8, QK_NUM_I8, QK_NUM_F16, QK_NUM_F32};

static int num_size(qk_num n)
{
    return n == QK_NUM_NONE ? 0 : n == QK_NUM_F32 ? 4 : n == QK_NUM_U8 || n == QK_NUM_I8 ? 1 : 2;
}

/* Raw bits of v as type n (test-side: base.h conversions and casts). */
static uint32_t raw_of(qk_num n, double v, double *stored)
{
    switch (n) {
    case QK_NUM_F32: {
        float x = (float)v;
        uint32_t r;
        memcpy(&r, &x, 4);
        *stored = x;
        return r;
    }
    case QK_NUM_F16: *stored = qk_f16_to_f32(qk_f32_to_f16((float)v)); return qk_f32_to_f16((float)v);
    case QK_NUM_BF16: *stored = qk_bf16_to_f32(qk_f32_to_bf16((float)v)); return qk_f32_to_bf16((float)v);
    case QK_NUM_U8: *stored = (uint8_t)v; return (uint8_t)v;
    case QK_NUM_I8: *stored = (int8_t)v; return (uint8_t)(int8_t)v;
    default: *stored = 0; return 0;
    }
}

/* Calls fn for every code kind x width x scale x zero x block. */
static void for_all(void (*fn)(qk_format *f))
{
    static const qk_code_kind kinds[] = {QK_CODE_SINT, QK_CODE_UINT, QK_CODE_OFFSET};
    static const int blocks[] = {1, 7, 8, 33, 64};
    for (int bits = 1; bits <= 8; bits++)
        for (int ki = 0; ki < 3; ki++)
            for (int si = 0; si < 4; si++)
                for (int zi = 0; zi < 5; zi++)
                    for (int bi = 0; bi < QK_COUNT(blocks); bi++) {
                        qk_format f = base("m", kinds[ki], bits, blocks[bi]);
                        f.offset = kinds[ki] == QK_CODE_OFFSET ? (1 << bits) / 2 - (bits > 2) : 0;
                        if (mat_scales[si])
                            block_scale(&f, mat_scales[si]);
                        f.zero = mat_zeros[zi] ? QK_ZERO_BLOCK : QK_ZERO_NONE;
                        f.zero_num = mat_zeros[zi];
                        if (!finish(&f))
                            fn(&f);
                    }
}

/* Random canonical blocks, written with the test's bit writer. */
static void check_decode(qk_format *f)
{
    int rows = 2, k = f->block * 2 + (f->block + 1) / 2, nb = (k + f->block - 1) / f->block;
    int sb = num_size(f->scale_num) * (f->scale_per == QK_PER_BLOCK), zb = num_size(f->zero_num);
    uint8_t *buf = calloc((size_t)(rows * nb * f->block_bytes), 1);
    double *want = malloc(sizeof(double) * (size_t)(rows * k));
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) {
            uint8_t *blk = buf + (r * nb + b) * f->block_bytes;
            double s = 1, z = 0;
            if (sb)
                put_bits(blk, 0, sb * 8, raw_of(f->scale_num, urand() * 4, &s));
            if (zb) {
                double zv = f->zero_num == QK_NUM_U8 ? rnd() % 256 : f->zero_num == QK_NUM_I8 ? (int)(rnd() % 256) - 128 : urand() * 8;
                put_bits(blk, sb * 8, zb * 8, raw_of(f->zero_num, zv, &z));
            }
            for (int e = 0; e < f->block && b * f->block + e < k; e++) {
                unsigned code = rnd() & ((1u << f->bits) - 1);
                put_bits(blk, (sb + zb) * 8 + e * f->bits, f->bits, code);
                want[r * k + b * f->block + e] = (def_intval(f, code) - z) * s;
            }
        }
    int bad = 0;
    float *out = malloc(sizeof(float) * (size_t)(rows * k));
    qk_format_unpack(f, buf, rows, k, out, NULL);
    for (int i = 0; i < rows * k; i++) {
        bad += qk_format_get(f, buf, i / k, k, i % k, NULL) != want[i];
        bad += out[i] != (float)want[i];
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(out), free(buf), free(want);
}

static void test_decode_matrix(void)
{
    for_all(check_decode);
}

/* The unrounded scale of a block's n present values: with a block zero
 * point [min(x, 0), max(x, 0)] onto the code range, else the rules above. */
static float raw_scale(const qk_format *f, const float *v, int n)
{
    if (f->zero != QK_ZERO_BLOCK)
        return spec_scale(f, v, n);
    int lo, hi;
    qk_format_code_range(f, &lo, &hi);
    float mn = 0, mx = 0;
    for (int i = 0; i < n; i++)
        mn = v[i] < mn ? v[i] : mn, mx = v[i] > mx ? v[i] : mx;
    return (mx - mn) / (float)(hi - lo);
}

/* Codeval in [lo, hi] whose value (c - z) * d is nearest to v (the
 * first on ties), and that distance. */
static int nearest_int(int lo, int hi, double z, double d, double v, double *dist)
{
    int best = lo;
    *dist = INFINITY;
    for (int c = lo; c <= hi; c++)
        if (fabs(v - (c - z) * d) < *dist)
            *dist = fabs(v - (c - z) * d), best = c;
    return best;
}

/* Codes come from x * (1 / d) with the UNROUNDED d (ggml's reference
 * arithmetic), so every code is the nearest one to x for the unrounded d
 * and the stored zero point (up to f32 slack), which is not always the
 * nearest for the stored scale d_s: it is within one code of that one.
 * Without a usable scale every code is the code of 0 (nearest to the
 * zero point). Padding elements count as x = 0. */
static void check_nearest(qk_format *f)
{
    int rows = 2, k = f->block * 2 + (f->block + 2) / 3, nb = (k + f->block - 1) / f->block;
    float *x = malloc(sizeof(float) * (size_t)(rows * k));
    fill(x, rows * k, f->scale_per ? 3 : (1 << f->bits));
    for (int i = 0; i < k; i++)
        x[k + i] = fabsf(x[k + i]);
    size_t size = (size_t)qk_format_size(f, rows, k);
    uint8_t *buf = malloc(size);
    memset(buf, 0xAB, size);
    qk_format_pack(f, x, rows, k, buf, NULL, NULL, 0);
    int lo, hi, bad = 0;
    qk_format_code_range(f, &lo, &hi);
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) {
            const uint8_t *blk = buf + (r * nb + b) * f->block_bytes;
            const float *xb = x + r * k + b * f->block;
            int n = k - b * f->block < f->block ? k - b * f->block : f->block;
            double d = f->scale_per ? raw_scale(f, xb, n) : 1;
            double ds = f->scale_per ? qk_num_decode(f->scale_num, qk_format_item(f, blk, QK_FIELD_SCALE, 0)) : 1;
            double z = f->zero ? qk_num_decode(f->zero_num, qk_format_item(f, blk, QK_FIELD_ZERO, 0)) : 0;
            for (int e = 0; e < f->block; e++) {
                double v = e < n ? xb[e] : 0, best, best_s;
                int cv = (int)qk_format_codeval(f, qk_format_item(f, blk, QK_FIELD_CODES, e));
                if (!ok(d) || !ok(ds)) {
                    nearest_int(lo, hi, z, 1, 0, &best);
                    bad += fabs(z - cv) > best + 1e-9;
                    continue;
                }
                nearest_int(lo, hi, z, d, v, &best);
                bad += fabs(v - (cv - z) * d) > best + 1e-6 * (fabs(v) + fabs(d) * (hi - lo + fabs(z))) + 1e-30;
                bad += abs(cv - nearest_int(lo, hi, z, ds, v, &best_s)) > 1;
            }
        }
    CU_ASSERT_EQUAL(bad, 0);
    free(x), free(buf);
}

static void test_nearest_matrix(void)
{
    for_all(check_nearest);
}

/* ---- placements ---- */

/* STREAM: 5-bit items straddle bytes; bit positions by hand. */
static void test_stream(void)
{
    qk_format f = base("u5", QK_CODE_UINT, 5, 8);
    f.bits = 5;
    add_piece(&f, QK_FIELD_CODES, QK_PLACE_STREAM, 0, 8, 0, 5, 1, 3, 0); /* starts at bit 11 */
    if (finish(&f))
        return;
    CU_ASSERT_EQUAL(f.block_bytes, 1 + (3 + 40 + 7) / 8);
    uint8_t blk[8] = {0}, want[8] = {0};
    for (int i = 0; i < 8; i++) {
        qk_format_put_item(&f, blk, QK_FIELD_CODES, i, (uint32_t)(i * 3 + 7) & 31);
        put_bits(want, 11 + 5 * i, 5, (uint32_t)(i * 3 + 7) & 31);
    }
    CU_ASSERT_EQUAL(memcmp(blk, want, sizeof blk), 0);
    for (int i = 0; i < 8; i++) {
        CU_ASSERT_EQUAL(qk_format_item(&f, blk, QK_FIELD_CODES, i), (uint32_t)(i * 3 + 7) & 31);
        CU_ASSERT_EQUAL(qk_format_get(&f, blk, 0, 8, i, NULL), (i * 3 + 7) & 31);
    }
    /* an f32 item split in two pieces of 16 bits, high half first in bytes */
    qk_format g = base("split", QK_CODE_UINT, 8, 4);
    block_scale(&g, QK_NUM_F32);
    add_piece(&g, QK_FIELD_SCALE, QK_PLACE_STREAM, 0, 1, 16, 16, 0, 0, 0);
    add_piece(&g, QK_FIELD_SCALE, QK_PLACE_STREAM, 0, 1, 0, 16, 2, 0, 0);
    add_piece(&g, QK_FIELD_CODES, QK_PLACE_STREAM, 0, 4, 0, 8, 4, 0, 0);
    if (finish(&g))
        return;
    uint8_t b2[8] = {0};
    qk_format_put_item(&g, b2, QK_FIELD_SCALE, 0, 0x12345678);
    CU_ASSERT(b2[0] == 0x34 && b2[1] == 0x12 && b2[2] == 0x78 && b2[3] == 0x56);
    CU_ASSERT_EQUAL(qk_format_item(&g, b2, QK_FIELD_SCALE, 0), 0x12345678);
}

/* INTERLEAVE with shift and group, against the formula in format.h. */
static void test_interleave(void)
{
    qk_format f = base("il", QK_CODE_UINT, 3, 60);
    add_piece(&f, QK_FIELD_CODES, QK_PLACE_INTERLEAVE, 0, 60, 0, 3, 2, 1, 10); /* S = 2 slots per byte */
    if (finish(&f))
        return;
    CU_ASSERT_EQUAL(f.block_bytes, 2 + 30);
    uint8_t blk[40] = {0}, want[40] = {0};
    for (int t = 0; t < 60; t++) {
        uint32_t v = rnd() & 7;
        qk_format_put_item(&f, blk, QK_FIELD_CODES, t, v);
        int byte = 2 + t / 20 * 10 + t % 10, bit = 1 + 3 * ((t / 10) % 2);
        want[byte] |= (uint8_t)(v << bit);
        CU_ASSERT_EQUAL(qk_format_item(&f, blk, QK_FIELD_CODES, t), v);
    }
    CU_ASSERT_EQUAL(memcmp(blk, want, sizeof blk), 0);
}

/* BASE3: ggml tq1_0 bytes, ceil(sum d_n 3^(4-n) * 256 / 243). */
static void test_base3(void)
{
    qk_format f = base("b3", QK_CODE_TERNARY, 2, 45);
    add_piece(&f, QK_FIELD_CODES, QK_PLACE_BASE3, 0, 40, 0, 2, 0, 0, 8);
    add_piece(&f, QK_FIELD_CODES, QK_PLACE_BASE3, 40, 5, 0, 2, 8, 0, 2); /* 2 bytes, 3 + 2 digits */
    if (finish(&f))
        return;
    CU_ASSERT_EQUAL(f.block_bytes, 10);
    int d[45];
    uint8_t blk[10] = {0};
    for (int i = 0; i < 45; i++) {
        d[i] = (int)(rnd() % 3);
        qk_format_put_item(&f, blk, QK_FIELD_CODES, i, (uint32_t)d[i]);
    }
    for (int byte = 0; byte < 10; byte++) {
        int s = 0;
        for (int n = 0; n < 5; n++) {
            int t = byte < 8 ? n * 8 + byte : 40 + n * 2 + (byte - 8);
            int digit = (byte < 8 || t < 45) ? d[t < 45 ? t : 0] : 0;
            if (byte >= 8 && t >= 45)
                digit = 0;
            s = s * 3 + digit;
        }
        CU_ASSERT_EQUAL(blk[byte], (s * 256 + 242) / 243);
    }
    for (int i = 0; i < 45; i++) {
        CU_ASSERT_EQUAL(qk_format_item(&f, blk, QK_FIELD_CODES, i), (uint32_t)d[i]);
        CU_ASSERT_EQUAL(qk_format_get(&f, blk, 0, 45, i, NULL), d[i] - 1);
    }
    /* every byte value decodes through ggml's digit formula */
    for (int q = 0; q < 256; q++) {
        uint8_t one[10] = {(uint8_t)q};
        for (int n = 0; n < 5; n++)
            CU_ASSERT_EQUAL(qk_format_item(&f, one, QK_FIELD_CODES, n * 8), (uint32_t)((q * (int)pow(3, n)) & 255) * 3 >> 8);
    }
}

/* ---- the row-interleaved layout (rowpack.h) of the formats it grows,
 * and the formats it refuses, each with its reason ---- */

static qk_format tq1_0(void);
static qk_format q8_0(void);

/* qk_rowpack_check of f with R = 4, and the reason it gives. */
static int rowpack_ok(const qk_format *f, qk_rowpack *rp, char *why, size_t n)
{
    why[0] = 0;
    return qk_rowpack_check(f, 4, rp, why, n);
}

static void test_rowpack_grown(void)
{
    char why[256];
    qk_rowpack rp;
    /* base-3 digits as 2-bit codes: tq1_0's 54-byte block reads as 2 + 64 */
    qk_format t = tq1_0();
    CU_ASSERT_FATAL(rowpack_ok(&t, &rp, why, sizeof why));
    CU_ASSERT(rp.base3 == 1 && rp.pruned == -1);
    CU_ASSERT_EQUAL(qk_rowpack_size(&t, 4, 4, 256), 4 * (2 + 64));
    CU_ASSERT_EQUAL(qk_format_size(&t, 4, 256), 4 * 54);
    /* N:M stored densely: 2:4 int4 in blocks of 32, 2 + 8 + 4 bytes -> 2 + 16; code 0 is value 0 */
    qk_format s = base("s4", QK_CODE_SINT, 4, 32);
    block_scale(&s, QK_NUM_F16);
    s.sp_n = 2, s.sp_m = 4;
    finish(&s);
    CU_ASSERT_FATAL(rowpack_ok(&s, &rp, why, sizeof why));
    CU_ASSERT(rp.pruned == 0 && rp.base3 == 0);
    CU_ASSERT_EQUAL(qk_format_size(&s, 4, 32), 4 * 14);
    CU_ASSERT_EQUAL(qk_rowpack_size(&s, 4, 4, 32), 4 * 18);
    /* offset codes: the pruned code is the one whose value is 0 (uint4 offset 8: code 8) */
    qk_format o = base("o4", QK_CODE_OFFSET, 4, 32);
    o.offset = 8;
    block_scale(&o, QK_NUM_F16);
    o.sp_n = 2, o.sp_m = 4;
    finish(&o);
    CU_ASSERT(rowpack_ok(&o, &rp, why, sizeof why) && rp.pruned == 8);
    /* a plain format keeps its size */
    qk_format q = q8_0();
    CU_ASSERT(rowpack_ok(&q, &rp, why, sizeof why));
    CU_ASSERT_EQUAL(qk_rowpack_size(&q, 4, 4, 64), qk_format_size(&q, 4, 64));
    /* refused, with the reason */
    static const double nozero[4] = {-1.5, -0.5, 0.5, 1.5};
    qk_format r[3];
    const char *want[3] = {"zero point or min", "no code of value 0", "codebook indices"};
    r[0] = base("nz", QK_CODE_UINT, 4, 32); /* N:M with a zero point: a pruned 0 is no code */
    block_scale(&r[0], QK_NUM_F16);
    r[0].zero = QK_ZERO_BLOCK, r[0].zero_num = QK_NUM_U8;
    r[0].sp_n = 2, r[0].sp_m = 4;
    r[1] = base("nt", QK_CODE_TABLE, 2, 32); /* N:M over a table without 0 */
    r[1].table = nozero;
    block_scale(&r[1], QK_NUM_F16);
    r[1].sp_n = 1, r[1].sp_m = 4;
    r[2] = base("vq", QK_CODE_VQ, 8, 32);
    r[2].vq_dim = 8;
    for (int i = 0; i < 3; i++) {
        if (i < 2)
            finish(&r[i]);
        CU_ASSERT(!rowpack_ok(&r[i], &rp, why, sizeof why));
        if (!strstr(why, want[i]))
            fprintf(stderr, "\n%s: '%s' lacks '%s'\n", r[i].name, why, want[i]);
        CU_ASSERT(strstr(why, want[i]) != NULL);
        CU_ASSERT_EQUAL(qk_rowpack_size(&r[i], 4, 4, 32), -1);
    }
    /* the conversion back refuses what the format cannot hold: a base-3 digit 3 */
    uint8_t own[4 * 54], lay[4 * 66], back[4 * 54];
    for (size_t i = 0; i < sizeof own; i++)
        own[i] = (uint8_t)(rnd() % 243); /* canonical base-3 bytes (digits of values 0..242) */
    qk_rowpack_pack(&t, 4, own, 4, 256, lay);
    CU_ASSERT_EQUAL(qk_rowpack_unpack(&t, 4, lay, 4, 256, back, why, sizeof why), 0);
    lay[4 * 2 + 5] = 0xff; /* row 1's step 0 byte: items 1, 5, 9, 13 coded 3 */
    CU_ASSERT_EQUAL(qk_rowpack_unpack(&t, 4, lay, 4, 256, back, why, sizeof why), -1);
    CU_ASSERT(strstr(why, "row 1, element 1: a 2-bit code 3") != NULL);
}

static qk_format q4_K(void);

/* Sub-block fields of 1-8-bit items that fill 32-bit words go C = 32 / w
 * to a row's word (q2_K's 16 4-bit sub-scales and sub-mins: C = 8), item
 * i of row r at bit ((i / C) R + r) 32 + (i % C) w of the field; other
 * fields stay item-major (q4_K's 6-bit ones). Each item of random blocks
 * is read back at the place rowpack.h gives. */
static void test_rowpack_words(void)
{
    enum { R = 4, ROWS = 8, K = 512, NB = K / 256 };
    qk_format f = base("q2k", QK_CODE_UINT, 2, 256);
    block_scale(&f, QK_NUM_F16);
    f.sub_block = 16, f.sub_num = QK_NUM_UINT, f.sub_bits = 4;
    f.min_num = QK_NUM_F16, f.min_sign = -1, f.submin_num = QK_NUM_UINT, f.submin_bits = 4;
    finish(&f);
    char why[256];
    qk_rowpack rp;
    CU_ASSERT_FATAL(rowpack_ok(&f, &rp, why, sizeof why));
    CU_ASSERT_EQUAL(rp.num_chunk[QK_FIELD_SUBSCALE], 8);
    CU_ASSERT_EQUAL(rp.num_chunk[QK_FIELD_SUBMIN], 8);
    CU_ASSERT_EQUAL(rp.num_chunk[QK_FIELD_SCALE], 1);
    CU_ASSERT_EQUAL_FATAL(qk_rowpack_size(&f, R, ROWS, K), qk_format_size(&f, ROWS, K));
    int64_t n = qk_format_size(&f, ROWS, K);
    uint8_t *own = malloc((size_t)n), *lay = malloc((size_t)n), *back = malloc((size_t)n);
    CU_ASSERT_FATAL(own && lay && back);
    for (int64_t i = 0; i < n; i++)
        own[i] = (uint8_t)rnd();
    qk_rowpack_pack(&f, R, own, ROWS, K, lay);
    int bad = 0;
    for (int r = 0; r < ROWS; r++)
        for (int kb = 0; kb < NB; kb++) {
            const uint8_t *blk = own + f.tensor_header_bytes + ((int64_t)r * NB + kb) * f.block_bytes;
            int64_t gb = f.tensor_header_bytes + (r / R) * (R * rp.row_header + NB * rp.group_block) +
                         R * rp.row_header + kb * rp.group_block;
            for (int fl = QK_FIELD_SUBSCALE; fl <= QK_FIELD_SUBMIN; fl++)
                for (int i = 0; i < 16; i++) {
                    int64_t bit = rp.num_offset[fl] * 8 + ((i / 8) * R + r % R) * 32 + (i % 8) * 4;
                    int got = lay[gb + bit / 8] >> (bit % 8) & 15;
                    bad += got != (int)qk_format_item(&f, blk, fl, i);
                }
        }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(qk_rowpack_unpack(&f, R, lay, ROWS, K, back, why, sizeof why), 0);
    CU_ASSERT(memcmp(own, back, (size_t)n) == 0);
    free(own), free(lay), free(back);
    qk_format q = q4_K(); /* 6-bit items do not fill a word */
    CU_ASSERT_FATAL(rowpack_ok(&q, &rp, why, sizeof why));
    CU_ASSERT(rp.num_chunk[QK_FIELD_SUBSCALE] == 1 && rp.num_chunk[QK_FIELD_SUBMIN] == 1);
}

/* ---- ggml layouts: decode random bytes with FORMATS.md's formulas ---- */

static qk_format q4_0(void)
{
    qk_format f = base("q4_0", QK_CODE_OFFSET, 4, 32);
    f.offset = 8;
    block_scale(&f, QK_NUM_F16);
    add_piece(&f, QK_FIELD_SCALE, QK_PLACE_STREAM, 0, 1, 0, 16, 0, 0, 0);
    add_piece(&f, QK_FIELD_CODES, QK_PLACE_INTERLEAVE, 0, 32, 0, 4, 2, 0, 16);
    finish(&f);
    return f;
}

static qk_format q4_1(void)
{
    qk_format f = base("q4_1", QK_CODE_UINT, 4, 32);
    block_scale(&f, QK_NUM_F16);
    f.min_num = QK_NUM_F16;
    add_piece(&f, QK_FIELD_SCALE, QK_PLACE_STREAM, 0, 1, 0, 16, 0, 0, 0);
    add_piece(&f, QK_FIELD_MIN, QK_PLACE_STREAM, 0, 1, 0, 16, 2, 0, 0);
    add_piece(&f, QK_FIELD_CODES, QK_PLACE_INTERLEAVE, 0, 32, 0, 4, 4, 0, 16);
    finish(&f);
    return f;
}

static qk_format q5_0(void)
{
    qk_format f = base("q5_0", QK_CODE_OFFSET, 5, 32);
    f.offset = 16;
    block_scale(&f, QK_NUM_F16);
    add_piece(&f, QK_FIELD_SCALE, QK_PLACE_STREAM, 0, 1, 0, 16, 0, 0, 0);
    add_piece(&f, QK_FIELD_CODES, QK_PLACE_STREAM, 0, 32, 4, 1, 2, 0, 0);
    add_piece(&f, QK_FIELD_CODES, QK_PLACE_INTERLEAVE, 0, 32, 0, 4, 6, 0, 16);
    finish(&f);
    return f;
}

static qk_format q8_0(void)
{
    qk_format f = base("q8_0", QK_CODE_SINT, 8, 32);
    block_scale(&f, QK_NUM_F16);
    add_piece(&f, QK_FIELD_SCALE, QK_PLACE_STREAM, 0, 1, 0, 16, 0, 0, 0);
    add_piece(&f, QK_FIELD_CODES, QK_PLACE_STREAM, 0, 32, 0, 8, 2, 0, 0);
    finish(&f);
    return f;
}

static qk_format tq2_0(void)
{
    qk_format f = base("tq2_0", QK_CODE_TERNARY, 2, 256);
    block_scale(&f, QK_NUM_F16);
    add_piece(&f, QK_FIELD_CODES, QK_PLACE_INTERLEAVE, 0, 256, 0, 2, 0, 0, 32);
    add_piece(&f, QK_FIELD_SCALE, QK_PLACE_STREAM, 0, 1, 0, 16, 64, 0, 0);
    finish(&f);
    return f;
}

static qk_format tq1_0(void)
{
    qk_format f = base("tq1_0", QK_CODE_TERNARY, 2, 256);
    block_scale(&f, QK_NUM_F16);
    add_piece(&f, QK_FIELD_CODES, QK_PLACE_BASE3, 0, 160, 0, 2, 0, 0, 32);
    add_piece(&f, QK_FIELD_CODES, QK_PLACE_BASE3, 160, 80, 0, 2, 32, 0, 16);
    add_piece(&f, QK_FIELD_CODES, QK_PLACE_BASE3, 240, 16, 0, 2, 48, 0, 4);
    add_piece(&f, QK_FIELD_SCALE, QK_PLACE_STREAM, 0, 1, 0, 16, 52, 0, 0);
    finish(&f);
    return f;
}

static qk_format mxfp4(void)
{
    qk_format f = base("mxfp4", QK_CODE_MINIFLOAT, 0, 32);
    set_mf(&f, 2, 1, 1, QK_MF_FINITE);
    block_scale(&f, QK_NUM_E8M0);
    add_piece(&f, QK_FIELD_SCALE, QK_PLACE_STREAM, 0, 1, 0, 8, 0, 0, 0);
    add_piece(&f, QK_FIELD_CODES, QK_PLACE_INTERLEAVE, 0, 32, 0, 4, 1, 0, 16);
    finish(&f);
    return f;
}

static qk_format q4_K(void)
{
    qk_format f = base("q4_K", QK_CODE_UINT, 4, 256);
    block_scale(&f, QK_NUM_F16);
    f.sub_block = 32, f.sub_num = QK_NUM_UINT, f.sub_bits = 6;
    f.min_num = QK_NUM_F16, f.min_sign = -1, f.submin_num = QK_NUM_UINT, f.submin_bits = 6;
    add_piece(&f, QK_FIELD_SCALE, QK_PLACE_STREAM, 0, 1, 0, 16, 0, 0, 0);
    add_piece(&f, QK_FIELD_MIN, QK_PLACE_STREAM, 0, 1, 0, 16, 2, 0, 0);
    add_piece(&f, QK_FIELD_SUBSCALE, QK_PLACE_INTERLEAVE, 0, 4, 0, 6, 4, 0, 4);
    add_piece(&f, QK_FIELD_SUBMIN, QK_PLACE_INTERLEAVE, 0, 4, 0, 6, 8, 0, 4);
    add_piece(&f, QK_FIELD_SUBSCALE, QK_PLACE_INTERLEAVE, 4, 4, 0, 4, 12, 0, 4);
    add_piece(&f, QK_FIELD_SUBMIN, QK_PLACE_INTERLEAVE, 4, 4, 0, 4, 12, 4, 4);
    add_piece(&f, QK_FIELD_SUBSCALE, QK_PLACE_INTERLEAVE, 4, 4, 4, 2, 4, 6, 4);
    add_piece(&f, QK_FIELD_SUBMIN, QK_PLACE_INTERLEAVE, 4, 4, 4, 2, 8, 6, 4);
    add_piece(&f, QK_FIELD_CODES, QK_PLACE_INTERLEAVE, 0, 256, 0, 4, 16, 0, 32);
    finish(&f);
    return f;
}

/* FORMATS.md: value of element i of one block. */
static double ggml_value(const char *name, const uint8_t *b, int i)
{
    int lo = 0;
    if (!strcmp(name, "q4_0")) {
        lo = i < 16 ? b[2 + i] & 15 : b[2 + i - 16] >> 4;
        return (lo - 8) * f16v(b);
    }
    if (!strcmp(name, "q4_1")) {
        lo = i < 16 ? b[4 + i] & 15 : b[4 + i - 16] >> 4;
        return lo * f16v(b) + f16v(b + 2);
    }
    if (!strcmp(name, "q5_0")) {
        uint32_t h = (uint32_t)b[2] | (uint32_t)b[3] << 8 | (uint32_t)b[4] << 16 | (uint32_t)b[5] << 24;
        lo = i < 16 ? b[6 + i] & 15 : b[6 + i - 16] >> 4;
        return ((lo | (int)((h >> i) & 1) << 4) - 16) * f16v(b);
    }
    if (!strcmp(name, "q8_0"))
        return (int8_t)b[2 + i] * f16v(b);
    if (!strcmp(name, "tq2_0")) {
        int c = b[(i / 128) * 32 + i % 32] >> (2 * ((i / 32) % 4)) & 3; /* 3 reads as +2, as in ggml */
        return (c - 1) * f16v(b + 64);
    }
    if (!strcmp(name, "tq1_0")) {
        int byte, n;
        if (i < 160)
            byte = i % 32, n = i / 32;
        else if (i < 240)
            byte = 32 + (i - 160) % 16, n = (i - 160) / 16;
        else
            byte = 48 + (i - 240) % 4, n = (i - 240) / 4;
        int q = (b[byte] * (int)pow(3, n)) & 255;
        return ((q * 3 >> 8) - 1) * f16v(b + 52);
    }
    if (!strcmp(name, "mxfp4")) {
        int c = i < 16 ? b[1 + i] & 15 : b[1 + i - 16] >> 4;
        return def_mf(&mfs[0], 0, (uint32_t)c) * ldexp(1, b[0] - 127);
    }
    /* q4_K */
    const uint8_t *sc = b + 4;
    int j = i / 32, s, m;
    if (j < 4)
        s = sc[j] & 63, m = sc[j + 4] & 63;
    else
        s = (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4), m = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
    int p = j / 2, code = b[16 + 32 * p + i % 32] >> (4 * (j % 2)) & 15;
    return f16v(b) * s * code - f16v(b + 2) * m;
}

static void check_ggml(qk_format f, int bytes, double bpw)
{
    CU_ASSERT_EQUAL(f.block_bytes, bytes);
    CU_ASSERT_DOUBLE_EQUAL(qk_format_bits_per_weight(&f), bpw, 1e-12);
    int bad = 0;
    uint8_t t[3 * 256];
    for (int rep = 0; rep < 20; rep++) {
        int nb = 3;
        for (int i = 0; i < nb * bytes; i++)
            t[i] = (uint8_t)rnd();
        for (int b = 0; b < nb; b++) { /* finite scales */
            uint8_t *blk = t + b * bytes;
            if (!strcmp(f.name, "tq2_0"))
                put_f16(blk + 64, (float)urand());
            else if (!strcmp(f.name, "tq1_0"))
                put_f16(blk + 52, (float)urand());
            else if (strcmp(f.name, "mxfp4")) {
                put_f16(blk, (float)urand());
                if (f.min_num)
                    put_f16(blk + 2, (float)urand());
            } else if (blk[0] == 0xff) {
                blk[0] = 0x7f;
            }
        }
        for (int k = 0; k < nb * f.block; k++) {
            double want = ggml_value(f.name, t + k / f.block * bytes, k % f.block);
            bad += qk_format_get(&f, t, 0, nb * f.block, k, NULL) != want;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_ggml_layouts(void)
{
    check_ggml(q4_0(), 18, 4.5);
    check_ggml(q4_1(), 20, 5.0);
    check_ggml(q5_0(), 22, 5.5);
    check_ggml(q8_0(), 34, 8.5);
    check_ggml(tq2_0(), 66, 2.0625);
    check_ggml(tq1_0(), 54, 1.6875);
    check_ggml(mxfp4(), 17, 4.25);
    check_ggml(q4_K(), 144, 4.5);
}

/* ---- the quantizer of kernel-quantizable formats, from the spec ---- */

/* Canonical bytes of rows x k per the spec (per-block or per-row scale). */
static void spec_pack(const qk_format *f, const float *x, int rows, int k, uint8_t *out)
{
    int nb = (k + f->block - 1) / f->block;
    int sbits = f->scale_per == QK_PER_BLOCK ? qk_num_bits(f->scale_num, 0) : 0;
    int rh = f->scale_per == QK_PER_ROW ? qk_num_bits(f->scale_num, 0) / 8 : 0;
    int bb = sbits / 8 + (f->block * f->bits + 7) / 8, rb = rh + nb * bb;
    memset(out, 0, (size_t)(rows * rb));
    for (int r = 0; r < rows; r++) {
        float d, ds, id = 1; /* no scale: id = 1 */
        if (rh) {
            d = spec_scale(f, x + r * k, k);
            put_bits(out + r * rb, 0, rh * 8, spec_store(f->scale_num, d, &ds));
            id = spec_recip(f->scale_num, d, ds);
        }
        for (int b = 0; b < nb; b++) {
            uint8_t *blk = out + r * rb + rh + b * bb;
            const float *xb = x + r * k + b * f->block;
            int n = k - b * f->block < f->block ? k - b * f->block : f->block;
            if (sbits) {
                d = spec_scale(f, xb, n);
                put_bits(blk, 0, sbits, spec_store(f->scale_num, d, &ds));
                id = spec_recip(f->scale_num, d, ds);
            }
            for (int e = 0; e < f->block; e++)
                put_bits(blk, sbits + e * f->bits, f->bits, spec_code(f, e < n ? xb[e] : 0.0f, id));
        }
    }
}

/* Integer codes: a row whose q = x * id are exact halves, the ties of the
 * rounding (SINT, TERNARY away from zero; UINT, OFFSET upwards). Each
 * group (block, or row for a per-row scale) starts with an anchor that
 * makes d = 0.25 exactly in every scale type (id = 4); no scale: id = 1. */
static void tie_row(const qk_format *f, float *x, int k)
{
    int lo, hi;
    qk_format_code_range(f, &lo, &hi);
    if (f->code != QK_CODE_SINT && f->code != QK_CODE_UINT && f->code != QK_CODE_OFFSET && f->code != QK_CODE_TERNARY)
        return;
    float u = f->scale_per == QK_PER_NONE ? 1.0f : 0.25f;
    int first = f->code == QK_CODE_OFFSET || lo == 0 ? lo : -hi; /* |c + 0.5| below the anchor's */
    int anchor = f->code == QK_CODE_OFFSET && -lo > hi ? lo : hi;
    int group = f->scale_per == QK_PER_ROW ? k : f->block;
    for (int i = 0; i < k; i++) {
        int c = first + (int)(rnd() % (unsigned)(hi - first));
        x[i] = i % group == 0 && f->scale_per != QK_PER_NONE ? (float)anchor * u : ((float)c + 0.5f) * u;
    }
}

static void check_spec_pack(qk_format f, int rows, int k, double amp)
{
    if (finish(&f))
        return;
    char why[200];
    CU_ASSERT_EQUAL(qk_format_kernel_quantizable(&f, why, sizeof why), 1);
    float *x = malloc(sizeof(float) * (size_t)(rows * k));
    for (int i = 0; i < rows * k; i++)
        x[i] = (float)(urand() * amp);
    x[3] = x[4]; /* a tie of |x| (first wins) */
    x[5] = -x[4];
    for (int i = 0; i < k && rows > 1; i++) /* one row of non-negative values */
        x[k + i] = fabsf(x[k + i]);
    for (int i = 0; i < k && rows > 2; i++) /* one all-zero row */
        x[2 * k + i] = 0;
    if (rows > 3)
        tie_row(&f, x + 3 * k, k);
    size_t size = (size_t)qk_format_size(&f, rows, k);
    uint8_t *got = malloc(size), *want = malloc(size);
    memset(got, 0xAB, size);
    CU_ASSERT_EQUAL(qk_format_pack(&f, x, rows, k, got, NULL, NULL, 0), 0);
    spec_pack(&f, x, rows, k, want);
    int diff = memcmp(got, want, size);
    if (diff)
        fprintf(stderr, "spec pack mismatch for %s\n", f.name);
    CU_ASSERT_EQUAL(diff, 0);
    free(x), free(got), free(want);
}

/* Codes land where rowpack.h says, worked out here from its text alone:
 * with part widths w (widest first) and G = 8 / (narrowest w) steps of 4
 * items a segment, part p's run q of segment g starts at g * (every part's
 * G/S runs) + (the runs of the parts before p) + q runs of 4R bytes (S =
 * 8/w steps a run), and its byte 4r + t holds at bits [w s, w s + w) bits
 * [lo, lo + w) of row r's item 4 (g G + q S + s) + t. Random blocks of
 * q4_0 (one part), q5_0 (4 + 1 bits) and tq2_0 (2 bits), R = 4 and 16;
 * then back through the inverse. */
static void test_rowpack_codes(void)
{
    qk_format fs[] = {q4_0(), q5_0(), tq2_0()};
    for (size_t n = 0; n < sizeof fs / sizeof fs[0]; n++)
        for (int R = 4; R <= 16; R *= 4) {
            const qk_format *f = &fs[n];
            enum { ROWS = 19 };
            int64_t K = 3 * f->block, nb = 3;
            qk_rowpack rp;
            char why[256];
            CU_ASSERT_FATAL(qk_rowpack_check(f, R, &rp, why, sizeof why));
            int64_t own_n = qk_format_size(f, ROWS, K), lay_n = qk_rowpack_size(f, R, ROWS, K);
            uint8_t *own = malloc((size_t)own_n), *lay = malloc((size_t)lay_n), *back = malloc((size_t)own_n);
            CU_ASSERT_FATAL(own && lay && back);
            for (int64_t i = 0; i < own_n; i++)
                own[i] = (uint8_t)rnd();
            qk_rowpack_pack(f, R, own, ROWS, K, lay);
            int widths[4], lows[4], np = 0;
            for (int w = 8, lo = 0; w >= 1; w /= 2)
                if (f->bits - lo >= w)
                    widths[np] = w, lows[np++] = lo, lo += w;
            int G = 8 / widths[np - 1], runs_seg = 0;
            for (int p = 0; p < np; p++)
                runs_seg += G / (8 / widths[p]);
            int bad = 0;
            for (int row = 0; row < ROWS; row++)
                for (int64_t kb = 0; kb < nb; kb++) {
                    const uint8_t *blk = own + f->tensor_header_bytes +
                                         (row * qk_format_row_bytes(f, K)) + f->row_header_bytes + kb * f->block_bytes;
                    const uint8_t *gb = lay + f->tensor_header_bytes +
                                        (row / R) * (R * rp.row_header + nb * rp.group_block) + R * rp.row_header +
                                        kb * rp.group_block + rp.codes;
                    for (int i = 0; i < f->block; i++) {
                        int step = i / 4, t = i % 4, g = step / G, got = 0;
                        for (int p = 0, before = 0; p < np; p++) {
                            int w = widths[p], S = 8 / w, q = step % G / S, sidx = step % G % S;
                            int64_t run = (int64_t)g * runs_seg + before + q;
                            got |= (gb[run * 4 * R + 4 * (row % R) + t] >> (w * sidx) & ((1 << w) - 1)) << lows[p];
                            before += G / S;
                        }
                        bad += got != (int)qk_format_item(f, blk, QK_FIELD_CODES, i);
                    }
                }
            CU_ASSERT_EQUAL(bad, 0);
            CU_ASSERT_EQUAL(qk_rowpack_unpack(f, R, lay, ROWS, K, back, why, sizeof why), 0);
            CU_ASSERT(memcmp(own, back, (size_t)own_n) == 0);
            free(own), free(lay), free(back);
        }
}

/* qk_format_item_bits names the bits qk_format_item joins: for every item
 * of every field of random blocks of formats with streams, interleaved
 * runs, several pieces an item (q5_0's fifth bit, q4_K's 6-bit sub-scales
 * in three pieces) and base-3 digits (tq1_0), the value read at the named
 * places is the item. The row-interleaved conversion reads codes so. */
static void test_item_bits(void)
{
    qk_format fs[] = {q4_0(), q5_0(), q4_K(), tq1_0(), tq2_0(), mxfp4()};
    uint8_t blk[4096];
    int bad = 0, items = 0;
    for (size_t n = 0; n < sizeof fs / sizeof fs[0]; n++) {
        const qk_format *f = &fs[n];
        CU_ASSERT_FATAL(f->block_bytes <= (int)sizeof blk);
        for (int rep = 0; rep < 20; rep++) {
            for (int b = 0; b < f->block_bytes; b++)
                blk[b] = (uint8_t)(f->code == QK_CODE_TERNARY ? rnd() % 243 : rnd());
            for (int fl = 0; fl < QK_FIELD_COUNT; fl++)
                for (int i = 0; i < f->items[fl]; i++) {
                    qk_item_bits ib[QK_MAX_PIECES];
                    int np = qk_format_item_bits(f, fl, i, ib, QK_MAX_PIECES);
                    CU_ASSERT(np >= 1 && np == qk_format_item_bits(f, fl, i, NULL, 0));
                    uint32_t v = 0;
                    for (int k = 0; k < np && k < QK_MAX_PIECES; k++) {
                        uint32_t x;
                        if (ib[k].base3)
                            x = qk_format_base3_digit(blk[ib[k].byte], ib[k].bit);
                        else {
                            uint64_t w = 0;
                            for (int j = 0; j < (ib[k].bit + ib[k].width + 7) / 8; j++)
                                w |= (uint64_t)blk[ib[k].byte + j] << (8 * j);
                            x = (uint32_t)((w >> ib[k].bit) & ((1ull << ib[k].width) - 1));
                        }
                        v |= x << ib[k].lo;
                    }
                    bad += v != qk_format_item(f, blk, fl, i);
                    items++;
                }
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT(items > 10000);
}

static void test_pack_spec(void)
{
    static const qk_num nums[] = {QK_NUM_F32, QK_NUM_F16, QK_NUM_BF16, QK_NUM_E8M0};
    for (int ni = 0; ni < 4; ni++) {
        qk_format f = base("q4", QK_CODE_OFFSET, 4, 32);
        f.offset = 8;
        block_scale(&f, nums[ni]);
        check_spec_pack(f, 4, 77, 3);
        f = base("o3", QK_CODE_OFFSET, 3, 16); /* -lo <= hi: m / lo or m / hi by m's sign */
        f.offset = 3;
        block_scale(&f, nums[ni]);
        check_spec_pack(f, 4, 61, 3);
        f = base("i8", QK_CODE_SINT, 8, 32);
        block_scale(&f, nums[ni]);
        check_spec_pack(f, 4, 100, 5);
        f = base("i3", QK_CODE_SINT, 3, 7);
        block_scale(&f, nums[ni]);
        check_spec_pack(f, 4, 40, 5);
        f = base("u4", QK_CODE_UINT, 4, 16);
        block_scale(&f, nums[ni]);
        check_spec_pack(f, 4, 50, 2);
        f = base("tern", QK_CODE_TERNARY, 2, 64);
        block_scale(&f, nums[ni]);
        check_spec_pack(f, 4, 130, 2);
        f = base("bin", QK_CODE_BINARY, 1, 24);
        block_scale(&f, nums[ni]);
        check_spec_pack(f, 2, 50, 2);
        for (int m = 0; m < QK_COUNT(mfs); m++) {
            f = base(mfs[m].name, QK_CODE_MINIFLOAT, 0, 32);
            set_mf(&f, mfs[m].e, mfs[m].m, mfs[m].bias, mfs[m].sp);
            block_scale(&f, nums[ni]);
            check_spec_pack(f, 3, 70, 4);
        }
        f = base("i8row", QK_CODE_SINT, 8, 16);
        f.scale_per = QK_PER_ROW, f.scale_num = nums[ni];
        check_spec_pack(f, 4, 50, 5);
        f = base("e2m1row", QK_CODE_MINIFLOAT, 0, 8);
        set_mf(&f, 2, 1, 1, QK_MF_FINITE);
        f.scale_per = QK_PER_ROW, f.scale_num = nums[ni];
        check_spec_pack(f, 3, 21, 5);
    }
    qk_format raw = base("raw5", QK_CODE_SINT, 5, 10); /* no scale: id = 1 */
    check_spec_pack(raw, 4, 33, 20);
    qk_format q = mxfp4(); /* explicit layout, same arithmetic: codes are nearest */
    float x[64], y[64];
    for (int i = 0; i < 64; i++)
        x[i] = (float)(urand() * 10);
    uint8_t buf[64];
    qk_format_pack(&q, x, 1, 64, buf, NULL, NULL, 0);
    qk_format_unpack(&q, buf, 1, 64, y, NULL);
    for (int b = 0; b < 2; b++) {
        float ds = (float)ldexp(1, buf[b * 17] - 127);
        for (int e = 0; e < 32; e++)
            CU_ASSERT_EQUAL(y[b * 32 + e], (float)(def_mf(&mfs[0], 0, def_mf_encode(&mfs[0], 0, x[b * 32 + e] / ds)) * ds));
    }
}

/* ---- the other quantizers ---- */

/* Packs and unpacks; returns the max |x - y| / amax over the tensor. */
static double roundtrip(const qk_format *f, const float *x, int rows, int k, float *y, const void *cb)
{
    uint8_t *buf = malloc((size_t)qk_format_size(f, rows, k));
    qk_pack_opts o = {.codebook = cb};
    char err[128];
    CU_ASSERT_EQUAL(qk_format_pack(f, x, rows, k, buf, &o, err, sizeof err), 0);
    qk_format_unpack(f, buf, rows, k, y, cb);
    double worst = 0, amax = 0;
    for (int i = 0; i < rows * k; i++) {
        worst = fmax(worst, fabs(x[i] - y[i]));
        amax = fmax(amax, fabs(x[i]));
        CU_ASSERT_EQUAL(y[i], (float)qk_format_get(f, buf, i / k, k, i % k, cb));
    }
    free(buf);
    return worst / amax;
}

static void test_roundtrip_kinds(void)
{
    enum { R = 3, K = 300 };
    float x[R * K], y[R * K];
    fill(x, R * K, 4);
    qk_format f = q4_0();
    CU_ASSERT(roundtrip(&f, x, R, K, y, NULL) <= 1.0 / 8 + 1e-3); /* d = amax/8; +amax clamps to 7 */
    f = q8_0();
    CU_ASSERT(roundtrip(&f, x, R, K, y, NULL) <= 1.0 / 254 + 1e-3);
    f = q5_0();
    CU_ASSERT(roundtrip(&f, x, R, K, y, NULL) <= 1.0 / 16 + 1e-3);
    f = q4_1();
    CU_ASSERT(roundtrip(&f, x, R, K, y, NULL) <= 1.0 / 15 + 1e-3); /* range 2 amax / 15 / 2 */
    f = tq2_0();
    CU_ASSERT(roundtrip(&f, x, R, K, y, NULL) <= 0.5 + 1e-3);
    f = tq1_0();
    CU_ASSERT(roundtrip(&f, x, R, K, y, NULL) <= 0.5 + 1e-3);
    f = mxfp4();
    CU_ASSERT(roundtrip(&f, x, R, K, y, NULL) <= 0.25 + 1e-3); /* e2m1 spacing 2 at 4..6, d up to 2x */
    f = q4_K();
    CU_ASSERT(roundtrip(&f, x, R, K, y, NULL) <= 0.12);
    /* NVFP4: ue4m3 block scales times a per-tensor f32 */
    f = base("nvfp4", QK_CODE_MINIFLOAT, 0, 16);
    set_mf(&f, 2, 1, 1, QK_MF_FINITE);
    block_scale(&f, QK_NUM_UE4M3);
    f.tensor_scale = 1;
    finish(&f);
    float big[R * K];
    for (int i = 0; i < R * K; i++)
        big[i] = x[i] * 1000;
    CU_ASSERT(roundtrip(&f, big, R, K, y, NULL) <= 0.2);
    /* table (nf4-like, asymmetric), per row f32 */
    static const double tab[16] = {-1, -0.69, -0.52, -0.39, -0.28, -0.18, -0.09, 0,
                                   0.08, 0.16, 0.25, 0.34, 0.44, 0.56, 0.72, 1};
    f = base("tab", QK_CODE_TABLE, 4, 64);
    f.table = tab;
    block_scale(&f, QK_NUM_F16);
    finish(&f);
    CU_ASSERT(roundtrip(&f, x, R, K, y, NULL) <= 0.16); /* half the widest gap */
    /* constant zero point: uint4 with zero 7.5 */
    f = base("z75", QK_CODE_UINT, 4, 32);
    block_scale(&f, QK_NUM_F32);
    f.zero = QK_ZERO_CONST, f.zero_const = 7.5;
    finish(&f);
    CU_ASSERT(roundtrip(&f, x, R, K, y, NULL) <= 1.0 / 15 + 1e-3);
    /* per-tensor scale */
    f = base("i4t", QK_CODE_SINT, 4, 32);
    f.scale_per = QK_PER_TENSOR, f.scale_num = QK_NUM_F32;
    finish(&f);
    CU_ASSERT(roundtrip(&f, x, R, K, y, NULL) <= 1.0 / 8 + 1e-3);
    /* binary: d = mean |x|, signs kept */
    f = base("bin", QK_CODE_BINARY, 1, 32);
    block_scale(&f, QK_NUM_F32);
    finish(&f);
    roundtrip(&f, x, R, K, y, NULL);
    for (int i = 0; i < R * K; i++)
        CU_ASSERT(x[i] == 0 || (x[i] < 0) == (y[i] < 0));
}

/* Block zero points (uint4, f16 scale): every code is the nearest to x for
 * the unrounded d = (max(x, 0) - min(x, 0)) / 15 and the stored zero (and
 * within one code of the nearest for the stored scale); padding codes are
 * the code of 0. */
static void test_zero_point(void)
{
    static const qk_num zn[] = {QK_NUM_U8, QK_NUM_I8, QK_NUM_F16, QK_NUM_F32};
    for (int zi = 0; zi < 4; zi++) {
        qk_format f = base("a4", QK_CODE_UINT, 4, 16);
        block_scale(&f, QK_NUM_F16);
        f.zero = QK_ZERO_BLOCK, f.zero_num = zn[zi];
        if (finish(&f))
            continue;
        float x[40];
        fill(x, 40, 3);
        uint8_t buf[256];
        qk_format_pack(&f, x, 1, 40, buf, NULL, NULL, 0);
        int bad = 0;
        for (int i = 0; i < 40; i++) {
            const uint8_t *blk = buf + i / 16 * f.block_bytes;
            float mn = 0, mx = 0;
            for (int j = i / 16 * 16; j < i / 16 * 16 + 16 && j < 40; j++)
                mn = fminf(mn, x[j]), mx = fmaxf(mx, x[j]);
            double d = (mx - mn) / 15.0f;
            double ds = qk_num_decode(QK_NUM_F16, qk_format_item(&f, blk, QK_FIELD_SCALE, 0));
            double z = qk_num_decode(zn[zi], qk_format_item(&f, blk, QK_FIELD_ZERO, 0));
            int c = (int)qk_format_item(&f, blk, QK_FIELD_CODES, i % 16);
            double best, best_s;
            nearest_int(0, 15, z, d, x[i], &best);
            bad += fabs(x[i] - (c - z) * d) > best + 1e-5 * fabs(d) * 16;
            bad += abs(c - nearest_int(0, 15, z, ds, x[i], &best_s)) > 1;
            bad += qk_format_get(&f, buf, 0, 40, i, NULL) != (c - z) * ds;
        }
        CU_ASSERT_EQUAL(bad, 0);
        const uint8_t *last = buf + 2 * f.block_bytes; /* elements 40..47 are padding */
        double d = qk_num_decode(QK_NUM_F16, qk_format_item(&f, last, QK_FIELD_SCALE, 0));
        double z = qk_num_decode(zn[zi], qk_format_item(&f, last, QK_FIELD_ZERO, 0));
        for (int e = 8; e < 16; e++) {
            uint32_t c = qk_format_item(&f, last, QK_FIELD_CODES, e);
            double q = rint(z);
            CU_ASSERT(fabs(((double)c - z) * d) <= fabs(d) * (fabs(q - z) + 0.5) + 1e-6);
        }
    }
}

/* q4_1 (spec UPDATE 2, ggml's quantize_row_q4_1_ref): min = the block's
 * f32 min, d = (max - min) / 15, both stored as f16; codes
 * (int)((x - min) * (1 / d) + 0.5f), at most 15, with the f32 min and the
 * unrounded d. */
static void test_min(void)
{
    qk_format f = q4_1();
    enum { NB = 64 };
    float x[NB * 32];
    fill(x, NB * 32, 3);
    for (int i = 32; i < 64; i++)
        x[i] = fabsf(x[i]) + 1; /* all positive block: min > 0 */
    uint8_t buf[NB * 20];
    qk_format_pack(&f, x, 1, NB * 32, buf, NULL, NULL, 0);
    int bad = 0;
    for (int b = 0; b < NB; b++) {
        const uint8_t *blk = buf + b * 20;
        float mn = INFINITY, mx = -INFINITY;
        for (int e = 0; e < 32; e++)
            mn = fminf(mn, x[b * 32 + e]), mx = fmaxf(mx, x[b * 32 + e]);
        float d = (mx - mn) / 15, id = d != 0 ? 1.0f / d : 0.0f;
        float ds = qk_f16_to_f32(qk_f32_to_f16(d)), ms = qk_f16_to_f32(qk_f32_to_f16(mn));
        CU_ASSERT_EQUAL(f16v(blk), ds);
        CU_ASSERT_EQUAL(f16v(blk + 2), ms);
        for (int e = 0; e < 32; e++) {
            int c = (int)((x[b * 32 + e] - mn) * id + 0.5f);
            c = c > 15 ? 15 : c;
            if (ggml_value("q4_1", blk, e) != c * (double)ds + ms && bad++ < 4)
                fprintf(stderr, "\n  q4_1 block %d element %d: x = %.9g, min %.9g (stored %.9g), d %.9g: code %g, the "
                                "f32-min rule gives %d\n", b, e, x[b * 32 + e], mn, ms, d, (ggml_value("q4_1", blk, e) - ms) / ds, c);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* q4_K: sub-block scales/mins as 6-bit integers under f16 super values;
 * each code is the nearest for its sub-block's stored scale and min. */
static void test_two_level(void)
{
    qk_format f = q4_K();
    enum { K = 512 };
    float x[K];
    fill(x, K, 2);
    for (int i = 0; i < 32; i++) /* a sub-block of larger range */
        x[64 + i] *= 4;
    uint8_t buf[2 * 144];
    qk_format_pack(&f, x, 1, K, buf, NULL, NULL, 0);
    int bad = 0;
    for (int b = 0; b < 2; b++) {
        const uint8_t *blk = buf + b * 144;
        double d = f16v(blk), dmin = f16v(blk + 2);
        uint32_t smax = 0, mmax = 0;
        for (int j = 0; j < 8; j++) {
            uint32_t s = qk_format_item(&f, blk, QK_FIELD_SUBSCALE, j), m = qk_format_item(&f, blk, QK_FIELD_SUBMIN, j);
            smax = s > smax ? s : smax, mmax = m > mmax ? m : mmax;
            for (int e = 0; e < 32; e++) {
                double v = x[b * 256 + j * 32 + e], best = INFINITY;
                for (int c = 0; c < 16; c++)
                    best = fmin(best, fabs(v - (d * s * c - dmin * m)));
                double got = ggml_value("q4_K", blk, j * 32 + e);
                bad += fabs(v - got) > best + 1e-6;
                bad += got != qk_format_get(&f, buf, 0, K, b * 256 + j * 32 + e, NULL);
            }
        }
        CU_ASSERT(smax >= 62 && smax <= 63); /* the largest sub scale uses the range */
        CU_ASSERT(mmax >= 62 && mmax <= 63);
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* sub-block scales only (no super): NVFP4 as block 64 of ue4m3 per 16 */
    qk_format g = base("nv64", QK_CODE_MINIFLOAT, 0, 64);
    set_mf(&g, 2, 1, 1, QK_MF_FINITE);
    g.scale_per = QK_PER_BLOCK, g.sub_block = 16, g.sub_num = QK_NUM_UE4M3;
    finish(&g);
    CU_ASSERT_EQUAL(g.block_bytes, 4 + 32);
    float y[K];
    CU_ASSERT(roundtrip(&g, x, 1, K, y, NULL) <= 0.2);
    for (int j = 0; j < K / 16; j++) { /* each sub-block scale ~ its amax / 6 */
        float a = 0;
        for (int e = 0; e < 16; e++)
            a = fmaxf(a, fabsf(x[j * 16 + e]));
        uint8_t pb[K];
        qk_format_pack(&g, x, 1, K, pb, NULL, NULL, 0);
        double s = qk_num_decode(QK_NUM_UE4M3, qk_format_item(&g, pb + j / 4 * 36, QK_FIELD_SUBSCALE, j % 4));
        CU_ASSERT(fabs(s - a / 6) <= a / 6 / 16 + 1e-9);
    }
}

/* N:M keeps exactly N items per group, the N largest |x| (ties: the
 * lower position), positions ascending; pruned elements decode to 0. */
static void test_sparse(void)
{
    qk_format f = base("s24", QK_CODE_SINT, 8, 16);
    block_scale(&f, QK_NUM_F32);
    f.sp_n = 2, f.sp_m = 4;
    finish(&f);
    enum { R = 2, K = 70 };
    float x[R * K], y[R * K];
    fill(x, R * K, 3);
    x[0] = 1, x[1] = -1, x[2] = 1, x[3] = 0.5f; /* ties: positions 0 and 1 kept */
    uint8_t buf[1024];
    qk_format_pack(&f, x, R, K, buf, NULL, NULL, 0);
    qk_format_unpack(&f, buf, R, K, y, NULL);
    int bad = 0;
    for (int r = 0; r < R; r++)
        for (int g = 0; g < (K + 3) / 4; g++) {
            int keep[4] = {0}, nz = 0;
            for (int n = 0; n < 2; n++) { /* the 2 largest |x|, first on ties */
                int best = -1;
                for (int p = 0; p < 4; p++) {
                    float v = g * 4 + p < K ? fabsf(x[r * K + g * 4 + p]) : 0;
                    float bv = best < 0 ? -1 : g * 4 + best < K ? fabsf(x[r * K + g * 4 + best]) : 0;
                    if (!keep[p] && v > bv)
                        best = p;
                }
                keep[best] = 1;
            }
            const uint8_t *blk = buf + r * qk_format_row_bytes(&f, K) + (g * 4 / 16) * f.block_bytes;
            int j0 = (g % 4) * 2;
            int i0 = (int)qk_format_item(&f, blk, QK_FIELD_INDEX, j0), i1 = (int)qk_format_item(&f, blk, QK_FIELD_INDEX, j0 + 1);
            bad += !(i0 < i1) || !keep[i0] || !keep[i1];
            for (int p = 0; p < 4 && g * 4 + p < K; p++) {
                float v = y[r * K + g * 4 + p];
                nz += keep[p];
                if (!keep[p])
                    bad += v != 0;
                else
                    bad += fabsf(v - x[r * K + g * 4 + p]) > 3.0f / 127;
            }
            (void)nz;
        }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(y[2], 0);
    CU_ASSERT_EQUAL(y[3], 0);
    CU_ASSERT(y[0] > 0.99f && y[1] < -0.99f);
}

/* ---- VQ ---- */

static double dist2(const float *a, const float *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return s;
}

static void test_vq_nearest(void)
{
    enum { DIM = 4, BITS = 6, NE = 1 << BITS, K = 400 };
    float book[2 * NE * DIM];
    fill(book, 2 * NE * DIM, 1);
    qk_format f = base("vq", QK_CODE_VQ, BITS, 8);
    f.vq_dim = DIM, f.vq_dtype = QK_DT_F32;
    f.scale_per = QK_PER_ROW, f.scale_num = QK_NUM_F32;
    finish(&f);
    float x[2 * K], y[2 * K];
    fill(x, 2 * K, 5);
    uint8_t buf[2048];
    qk_pack_opts o = {.codebook = book};
    CU_ASSERT_EQUAL(qk_format_pack(&f, x, 2, K, buf, &o, NULL, 0), 0);
    qk_format_unpack(&f, buf, 2, K, y, book);
    int bad = 0;
    for (int r = 0; r < 2; r++) {
        float d;
        memcpy(&d, buf + r * qk_format_row_bytes(&f, K), 4);
        double ss = 0, sb = 0; /* d = rms(x) / rms(codebook) */
        for (int i = 0; i < K; i++)
            ss += (double)x[r * K + i] * x[r * K + i];
        for (int i = 0; i < NE * DIM; i++)
            sb += (double)book[i] * book[i];
        CU_ASSERT(fabs(d - sqrt(ss / K) / sqrt(sb / (NE * DIM))) <= 1e-5 * d);
        for (int g = 0; g < K / DIM; g++) {
            float t[DIM];
            for (int i = 0; i < DIM; i++)
                t[i] = x[r * K + g * DIM + i] / d;
            int best = 0;
            for (int c = 1; c < NE; c++)
                if (dist2(t, book + c * DIM, DIM) < dist2(t, book + best * DIM, DIM))
                    best = c;
            for (int i = 0; i < DIM; i++)
                bad += y[r * K + g * DIM + i] != (float)((double)book[best * DIM + i] * d);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* two books summed (f16 codebook): never worse than plain greedy, and the
     * last book is the nearest for the residual of the others */
    qk_format g = base("vq2", QK_CODE_VQ, BITS, 8);
    g.vq_dim = DIM, g.vq_books = 2, g.vq_dtype = QK_DT_F16;
    finish(&g);
    uint16_t hb[2 * NE * DIM];
    float fb[2 * NE * DIM];
    for (int i = 0; i < 2 * NE * DIM; i++)
        hb[i] = qk_f32_to_f16(book[i]), fb[i] = qk_f16_to_f32(hb[i]);
    float xs[K];
    fill(xs, K, 1.5);
    o.codebook = hb;
    CU_ASSERT_EQUAL(qk_format_pack(&g, xs, 1, K, buf, &o, NULL, 0), 0);
    qk_format_unpack(&g, buf, 1, K, y, hb);
    int better = 0; /* groups the refinement passes improved over greedy */
    for (int grp = 0; grp < K / DIM; grp++) {
        const float *t = xs + grp * DIM;
        int i0 = 0;
        for (int c = 1; c < NE; c++)
            if (dist2(t, fb + c * DIM, DIM) < dist2(t, fb + i0 * DIM, DIM))
                i0 = c;
        float r[DIM], sum[DIM];
        for (int i = 0; i < DIM; i++)
            r[i] = t[i] - fb[i0 * DIM + i];
        int i1 = 0;
        for (int c = 1; c < NE; c++)
            if (dist2(r, fb + (NE + c) * DIM, DIM) < dist2(r, fb + (NE + i1) * DIM, DIM))
                i1 = c;
        for (int i = 0; i < DIM; i++)
            sum[i] = fb[i0 * DIM + i] + fb[(NE + i1) * DIM + i];
        CU_ASSERT(dist2(t, y + grp * DIM, DIM) <= dist2(t, sum, DIM) + 1e-9);
        better += dist2(t, y + grp * DIM, DIM) < dist2(t, sum, DIM) - 1e-9;
        const uint8_t *blk = buf + grp / 2 * g.block_bytes;
        int a0 = (int)qk_format_item(&g, blk, QK_FIELD_CODES, (grp % 2) * 2);
        int a1 = (int)qk_format_item(&g, blk, QK_FIELD_CODES, (grp % 2) * 2 + 1);
        for (int i = 0; i < DIM; i++)
            r[i] = t[i] - fb[a0 * DIM + i];
        for (int c = 0; c < NE; c++)
            CU_ASSERT(dist2(r, fb + (NE + a1) * DIM, DIM) <= dist2(r, fb + (NE + c) * DIM, DIM));
    }
    CU_ASSERT(better > 0);
    char err[128] = "";
    CU_ASSERT_EQUAL(qk_format_pack(&g, xs, 1, K, buf, NULL, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "codebook"));
}

/* Signs: magnitudes pick the codeword, signs follow x with an even
 * number of negatives (the smallest |x| lane flips when needed). */
static void test_vq_signs(void)
{
    enum { DIM = 8, NE = 16, K = 64 };
    float book[NE * DIM];
    for (int i = 0; i < NE * DIM; i++)
        book[i] = (float)fabs(urand()) + 0.05f;
    qk_format f = base("e8", QK_CODE_VQ, 4, 16);
    f.vq_dim = DIM, f.vq_signs = 1, f.vq_dtype = QK_DT_F32;
    finish(&f); /* no scale: d = 1 */
    float x[K], y[K];
    fill(x, K, 1);
    uint8_t buf[64];
    qk_pack_opts o = {.codebook = book};
    qk_format_pack(&f, x, 1, K, buf, &o, NULL, 0);
    qk_format_unpack(&f, buf, 1, K, y, book);
    int bad = 0;
    for (int g = 0; g < K / DIM; g++) {
        float a[DIM];
        int neg = 0, small = 0;
        for (int i = 0; i < DIM; i++) {
            a[i] = fabsf(x[g * DIM + i]);
            neg += x[g * DIM + i] < 0;
            if (a[i] < a[small])
                small = i;
        }
        int best = 0;
        for (int c = 1; c < NE; c++)
            if (dist2(a, book + c * DIM, DIM) < dist2(a, book + best * DIM, DIM))
                best = c;
        int yneg = 0;
        for (int i = 0; i < DIM; i++) {
            float v = y[g * DIM + i];
            bad += fabsf(v) != book[best * DIM + i];
            int want = (x[g * DIM + i] < 0) ^ ((neg & 1) && i == small);
            bad += (v < 0) != want;
            yneg += v < 0;
        }
        bad += yneg & 1;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* mse: per block, the squared error is never above the plain scale's. */
static void test_mse(void)
{
    qk_format f = q4_0();
    enum { K = 320 };
    float x[K], y0[K], y1[K];
    for (int i = 0; i < K; i++) /* heavy tails make absmax a poor scale */
        x[i] = (float)(urand() * (rnd() % 16 == 0 ? 8 : 1));
    uint8_t b0[256], b1[256];
    qk_pack_opts mse = {.mse = 1};
    qk_format_pack(&f, x, 1, K, b0, NULL, NULL, 0);
    qk_format_pack(&f, x, 1, K, b1, &mse, NULL, 0);
    qk_format_unpack(&f, b0, 1, K, y0, NULL);
    qk_format_unpack(&f, b1, 1, K, y1, NULL);
    double t0 = 0, t1 = 0;
    for (int b = 0; b < K / 32; b++) {
        double e0 = 0, e1 = 0;
        for (int e = 0; e < 32; e++) {
            int i = b * 32 + e;
            e0 += (x[i] - y0[i]) * (double)(x[i] - y0[i]);
            e1 += (x[i] - y1[i]) * (double)(x[i] - y1[i]);
        }
        CU_ASSERT(e1 <= e0 * (1 + 1e-6));
        t0 += e0, t1 += e1;
    }
    CU_ASSERT(t1 < t0);
}

static void test_pack_edges(void)
{
    /* all-zero input and extremes: never NaN, zeros stay zero */
    qk_format fs[] = {q4_0(), q4_1(), q8_0(), tq1_0(), mxfp4(), q4_K()};
    float z[600] = {0}, y[600];
    for (int i = 0; i < QK_COUNT(fs); i++) {
        roundtrip(&fs[i], z, 1, 300, y, NULL);
        for (int k = 0; k < 300; k++)
            CU_ASSERT_EQUAL(y[k], 0);
        float x[32] = {1e30f, -1e30f, 3, FLT_MAX, -INFINITY, 1e-30f, 0, -2};
        uint8_t buf[512];
        qk_format_pack(&fs[i], x, 1, 32, buf, NULL, NULL, 0);
        qk_format_unpack(&fs[i], buf, 1, 32, y, NULL);
        for (int k = 0; k < 32; k++)
            CU_ASSERT(!isnan(y[k]));
    }
    /* q4_0: the largest-magnitude element maps to -8 (ggml) */
    qk_format q = q4_0();
    float x[32];
    for (int i = 0; i < 32; i++)
        x[i] = (float)(i - 12);
    x[5] = 40;
    uint8_t buf[18];
    qk_format_pack(&q, x, 1, 32, buf, NULL, NULL, 0);
    CU_ASSERT_EQUAL(f16v(buf), -5.0);
    CU_ASSERT_EQUAL(buf[2 + 5] & 15, 0);
    CU_ASSERT_EQUAL(qk_format_get(&q, buf, 0, 32, 5, NULL), 40);
    /* exact values come back exactly: int8 per block f32, amax = 127 / 4
     * so that d = amax / 127 = 0.25 */
    qk_format i8 = base("i8", QK_CODE_SINT, 8, 256);
    block_scale(&i8, QK_NUM_F32);
    finish(&i8);
    float e[256], ey[256];
    for (int i = 0; i < 256; i++)
        e[i] = (float)((i % 255 - 127) * 0.25);
    roundtrip(&i8, e, 1, 256, ey, NULL);
    CU_ASSERT_EQUAL(memcmp(e, ey, sizeof e), 0);
}

/* ---- printer and kernel quantizability ---- */

static void check_print(qk_format f, const char *want)
{
    qk_buf b = {0};
    qk_format_print(&f, &b);
    if (strcmp(b.s, want))
        fprintf(stderr, "print:\n  got  %s\n  want %s\n", b.s, want);
    CU_ASSERT_STRING_EQUAL(b.s, want);
    qk_buf_free(&b);
}

static void test_print(void)
{
    qk_arena *a = qk_arena_new();
    check_print(*kfx_format(a, "q4c", QK_CODE_OFFSET, 4, 8, 32, QK_DT_F16, QK_DT_NONE),
                "format q4c { code = uint4 offset 8; block = 32; scale = f16 }  # 4.50 bits/weight");
    check_print(*kfx_format(a, "a4", QK_CODE_UINT, 4, 0, 32, QK_DT_F16, QK_DT_U8),
                "format a4 { code = uint4; block = 32; scale = f16; zero = u8 }  # 4.75 bits/weight");
    check_print(*kfx_format(a, "w3", QK_CODE_SINT, 3, 0, 7, QK_DT_NONE, QK_DT_NONE),
                "format w3 { code = int3; block = 7 }  # 3.43 bits/weight");
    qk_arena_free(a);
    check_print(q4_0(), "format q4_0 { code = uint4 offset 8; block = 32; scale = f16; "
                        "layout { scale at 0; codes interleave 16 at 2 } }  # 4.50 bits/weight");
    check_print(q5_0(), "format q5_0 { code = uint5 offset 16; block = 32; scale = f16; layout { scale at 0; "
                        "codes bits 4:5 at 2; codes bits 0:4 interleave 16 at 6 } }  # 5.50 bits/weight");
    check_print(tq1_0(), "format tq1_0 { code = ternary; block = 256; scale = f16; layout { codes[0:160] base3 32 at 0; "
                         "codes[160:240] base3 16 at 32; codes[240:256] base3 4 at 48; scale at 52 } }  # 1.69 bits/weight");
    check_print(q4_K(), "format q4_K { code = uint4; block = 256; scale = f16 * uint6 per 32; min = -f16 * uint6; "
                        "layout { scale at 0; min at 2; subscale[0:4] interleave 4 at 4; submin[0:4] interleave 4 at 8; "
                        "subscale[4:8] bits 0:4 interleave 4 at 12; submin[4:8] bits 0:4 interleave 4 at 12 shift 4; "
                        "subscale[4:8] bits 4:6 interleave 4 at 4 shift 6; submin[4:8] bits 4:6 interleave 4 at 8 shift 6; "
                        "codes interleave 32 at 16 } }  # 4.50 bits/weight");
    qk_format f = base("nv", QK_CODE_MINIFLOAT, 0, 16);
    set_mf(&f, 2, 1, 1, QK_MF_FINITE);
    block_scale(&f, QK_NUM_UE4M3);
    f.tensor_scale = 1;
    finish(&f);
    check_print(f, "format nv { code = e2m1; block = 16; scale = ue4m3; tensor_scale = f32 }  # 4.50 bits/weight");
    f = base("aq", QK_CODE_VQ, 8, 8);
    f.vq_dim = 8, f.vq_books = 2, f.vq_dtype = QK_DT_F32;
    f.scale_per = QK_PER_ROW, f.scale_num = QK_NUM_F16;
    finish(&f);
    check_print(f, "format aq { code = vq8 dim 8 books 2; block = 8; scale = f16 per row; codebook = f32 }  # 2.00 bits/weight");
    f = base("sp", QK_CODE_SINT, 8, 16);
    f.scale_per = QK_PER_TENSOR, f.scale_num = QK_NUM_F32;
    f.sp_n = 2, f.sp_m = 4;
    finish(&f);
    check_print(f, "format sp { code = int8; block = 16; scale = f32 per tensor; sparse = 2:4 }  # 5.00 bits/weight");
    static const double tab[2] = {-0.5, 1.25};
    f = base("t1", QK_CODE_TABLE, 1, 8);
    f.table = tab;
    f.zero = QK_ZERO_NONE;
    finish(&f);
    check_print(f, "format t1 { code = table [-0.5, 1.25]; block = 8 }  # 1.00 bits/weight");
    f = base("zc", QK_CODE_UINT, 4, 32);
    f.zero = QK_ZERO_CONST, f.zero_const = 7.5;
    block_scale(&f, QK_NUM_BF16);
    finish(&f);
    check_print(f, "format zc { code = uint4; block = 32; scale = bf16; zero = 7.5 }  # 4.50 bits/weight");
}

static void check_kq(qk_format f, int want, const char *reason)
{
    char why[256] = "";
    CU_ASSERT_EQUAL(qk_format_kernel_quantizable(&f, why, sizeof why), want);
    if (reason)
        CU_ASSERT_PTR_NOT_NULL(strstr(why, reason));
}

static void test_kernel_quantizable(void)
{
    check_kq(q4_0(), 1, NULL);
    check_kq(q8_0(), 1, NULL);
    check_kq(mxfp4(), 1, NULL);
    check_kq(tq2_0(), 1, NULL);
    check_kq(q4_1(), 0, "min");
    check_kq(q4_K(), 0, "sub-block");
    check_kq(tq1_0(), 0, "base-3");
    qk_format f = base("z", QK_CODE_UINT, 4, 32);
    block_scale(&f, QK_NUM_F16);
    f.zero = QK_ZERO_BLOCK, f.zero_num = QK_NUM_U8;
    finish(&f);
    check_kq(f, 0, "zero point");
    f = base("nv", QK_CODE_MINIFLOAT, 0, 16);
    set_mf(&f, 2, 1, 1, QK_MF_FINITE);
    block_scale(&f, QK_NUM_UE4M3);
    finish(&f);
    check_kq(f, 0, "scale type");
    f.scale_num = QK_NUM_E8M0, f.tensor_scale = 1, f.npieces = 0;
    finish(&f);
    check_kq(f, 0, "tensor scale");
    f = base("s", QK_CODE_SINT, 8, 16);
    f.scale_per = QK_PER_ROW, f.scale_num = QK_NUM_F32;
    finish(&f);
    check_kq(f, 1, NULL);
    f.sp_n = 2, f.sp_m = 4, f.npieces = 0; /* rebuild the canonical layout */
    finish(&f);
    check_kq(f, 0, "sparse");
    f = base("t", QK_CODE_TERNARY, 2, 16);
    f.scale_per = QK_PER_TENSOR, f.scale_num = QK_NUM_F32;
    finish(&f);
    check_kq(f, 0, "per-tensor");
    static const double tab[2] = {-1, 1};
    f = base("tb", QK_CODE_TABLE, 1, 16);
    f.table = tab;
    finish(&f);
    check_kq(f, 0, "codebook");
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("format", NULL, NULL);
    CU_add_test(s, "OCP minifloat values, every code", test_mf_conformance);
    CU_add_test(s, "minifloat rounding and saturation", test_mf_rounding);
    CU_add_test(s, "e8m0, ue4m3, e4m3", test_num_e8m0_ue4m3);
    CU_add_test(s, "f32/f16/bf16 and integer numbers", test_num_floats_ints);
    CU_add_test(s, "codeval and code range", test_codeval);
    CU_add_test(s, "canonical layouts and sizes", test_canonical_sizes);
    CU_add_test(s, "finish errors", test_finish_errors);
    CU_add_test(s, "decode canonical blocks (every int combination)", test_decode_matrix);
    CU_add_test(s, "pack picks nearest codes (every int combination)", test_nearest_matrix);
    CU_add_test(s, "stream placement", test_stream);
    CU_add_test(s, "interleave placement", test_interleave);
    CU_add_test(s, "base3 placement", test_base3);
    CU_add_test(s, "ggml layouts decode per FORMATS.md", test_ggml_layouts);
    CU_add_test(s, "kernel-quantizable pack = spec arithmetic", test_pack_spec);
    CU_add_test(s, "round trips of every code kind", test_roundtrip_kinds);
    CU_add_test(s, "zero points", test_zero_point);
    CU_add_test(s, "min (q4_1)", test_min);
    CU_add_test(s, "two-level scales (q4_K, nvfp4 64)", test_two_level);
    CU_add_test(s, "N:M sparsity", test_sparse);
    CU_add_test(s, "VQ nearest codeword", test_vq_nearest);
    CU_add_test(s, "VQ signs", test_vq_signs);
    CU_add_test(s, "mse scale search", test_mse);
    CU_add_test(s, "pack edge cases", test_pack_edges);
    CU_add_test(s, "print", test_print);
    CU_add_test(s, "kernel quantizable", test_kernel_quantizable);
    CU_add_test(s, "row-interleaved layout: base-3 and N:M grow, the refused ones say why", test_rowpack_grown);
    CU_add_test(s, "row-interleaved layout: 4-bit sub-block items go 8 to a row's word", test_rowpack_words);
    CU_add_test(s, "an item's bits as qk_format_item_bits names them", test_item_bits);
    CU_add_test(s, "row-interleaved layout: codes where rowpack.h says, and back", test_rowpack_codes);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}
