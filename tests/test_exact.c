/* test_exact.c — the standard library's external formats, loaded from the
 * DSL (dsl/ggml.qk, dsl/mx.qk, dsl/nv.qk), against their external
 * definitions: ../shared/FORMATS.md (ggml block structs, OCP MX, NVFP4),
 * ggml's block structs for the ggml formats FORMATS.md does not list, and
 * the OCP minifloat rules. Every expected value and byte is recomputed here
 * from those definitions, never from compiler/format.c:
 *   - decode: random raw blocks written byte by byte as the external
 *     struct lays them out, decoded by this file's own decoders, against
 *     qk_format_get (exact, in double) and qk_format_unpack (its f32
 *     rounding);
 *   - pack: qk_format_pack's bytes re-decoded by this file's decoders; the
 *     code of every element the nearest one for the unrounded block scale
 *     (and min) as ggml's reference quantizer computes it, where codes come
 *     from x * (1 / d) with that d (the ggml formats with f16 block
 *     scales), and within one code of the nearest for the stored scale;
 *     else (e8m0, ue4m3, sub-block scales) the nearest for the stored
 *     scales; the block scales ggml's reference quantizer picks, and for
 *     q4_0 / q8_0 every byte equal to what ggml's reference quantizer
 *     writes;
 *   - sizes: bytes per block and bits per weight;
 *   - the OCP element and scale types (E2M1, E3M2, E2M3, E4M3, E5M2, E8M0,
 *     UE4M3) against the values FORMATS.md lists. */
#include "compiler/kir.h"
#include "frontend/frontend.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef QKC_SOURCE_DIR
#define QKC_SOURCE_DIR "."
#endif
#define DSL_DIR QKC_SOURCE_DIR "/dsl"
#define MAX_REPORTS 4

/* ---- random numbers (fixed seeds) ---- */

static uint64_t rng_state = 1;
static void seed(uint64_t s)
{
    rng_state = s * 0x9E3779B97F4A7C15ull + 1;
}
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}
static float urand(void) /* [-1, 1) */
{
    return (float)((int32_t)(rnd() % (1u << 24)) - (1 << 23)) / (float)(1 << 23);
}

/* ---- scalar types, from their definitions ---- */

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* IEEE binary16 -> exact value. */
static double f16_value(uint16_t h)
{
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return h >> 15 ? -v : v;
}
static double f16_at(const uint8_t *p)
{
    return f16_value(rd16(p));
}

/* f32 -> binary16, round to nearest even, overflow to inf (ggml's
 * GGML_FP32_TO_FP16). */
static uint16_t f16_bits(float x)
{
    uint16_t s = signbit(x) ? 0x8000 : 0;
    double a = fabs((double)x);
    if (isnan(x))
        return s | 0x7e00;
    if (a >= 65520.0)
        return s | 0x7c00;
    if (a == 0)
        return s;
    int ex;
    frexp(a, &ex);
    int e = ex - 1 < -14 ? -14 : ex - 1; /* floor(log2 a), at least the smallest normal's */
    double n = nearbyint(a / ldexp(1.0, e - 10));
    return (uint16_t)(s | (((uint32_t)(e + 14) << 10) + (uint32_t)n));
}

/* A random f16 from a safe range: +-[2^-10, 2^6), so that every sum of
 * products below stays exact in double. */
static uint16_t f16_safe(void)
{
    return (uint16_t)((rnd() & 1) << 15 | (5 + rnd() % 16) << 10 | rnd() % 1024);
}

typedef enum { MF_FINITE, MF_FN, MF_IEEE } mf_kind;

/* OCP minifloat: sign on top (unless unsigned), ebits exponent, mbits
 * mantissa; subnormals at exponent 0; FN: all ones is NaN; IEEE: all-ones
 * exponent is inf (mantissa 0) or NaN. */
static double minifloat(int ebits, int mbits, int bias, mf_kind k, int is_unsigned, uint32_t c)
{
    int emax = (1 << ebits) - 1;
    int e = (int)(c >> mbits) & emax, m = (int)c & ((1 << mbits) - 1);
    int neg = !is_unsigned && (c >> (ebits + mbits)) & 1;
    double v;
    if (k == MF_FN && e == emax && m == (1 << mbits) - 1)
        return NAN;
    if (k == MF_IEEE && e == emax)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, 1 - bias - mbits);
    else
        v = ldexp((1 << mbits) + m, e - bias - mbits);
    return neg ? -v : v;
}
static double e2m1(uint32_t c)
{
    return minifloat(2, 1, 1, MF_FINITE, 0, c);
}
static double e3m2(uint32_t c)
{
    return minifloat(3, 2, 3, MF_FINITE, 0, c);
}
static double e2m3(uint32_t c)
{
    return minifloat(2, 3, 1, MF_FINITE, 0, c);
}
static double e4m3(uint32_t c)
{
    return minifloat(4, 3, 7, MF_FN, 0, c);
}
static double e5m2(uint32_t c)
{
    return minifloat(5, 2, 15, MF_IEEE, 0, c);
}
static double ue4m3(uint32_t c)
{
    return minifloat(4, 3, 7, MF_FN, 1, c);
}
static double e8m0(uint32_t e)
{
    return e == 255 ? NAN : ldexp(1.0, (int)e - 127);
}
static double mxint8_elem(uint32_t c)
{
    return (int8_t)c / 64.0;
}

/* Equal values (NaN equals NaN; the sign of a zero is not compared). */
static int same(double a, double b)
{
    return (isnan(a) && isnan(b)) || a == b;
}
/* Equal values, the sign of a zero included. */
static int same_signed(double a, double b)
{
    return same(a, b) && (a != 0 || signbit(a) == signbit(b));
}

/* ---- the external formats ---- */

typedef struct xfmt xfmt;
struct xfmt {
    const char *name;
    int required;          /* must be in dsl/ */
    int block, bytes;      /* elements and bytes per block */
    double bpw;            /* bits per weight */
    int hdr;               /* bytes before the first row (f32 tensor scale) */
    int ncodes;            /* codes an element may take (quantizer) */
    int f16at[2];          /* offsets of f16 block scales (-1: none) */
    double maxrel;         /* quantizer sanity: relative RMS error bound */
    /* raw code of element i, and the value of element i with code c */
    int (*code)(const xfmt *x, const uint8_t *blk, int i);
    double (*value)(const xfmt *x, const uint8_t *blk, int i, int c, double t);
    void (*fill)(const xfmt *x, uint8_t *blk); /* extra fill after random bytes */
    double (*elem)(uint32_t c);               /* MX / NV element type */
    int cbits;                                /* MX canonical: code width */
};

/* ggml nibble order (q4_0): element i < 16 in lo(qs[i]), else hi(qs[i-16]). */
static int nib16(const uint8_t *qs, int i)
{
    return i < 16 ? qs[i] & 15 : qs[i - 16] >> 4;
}

static int code_q4_0(const xfmt *x, const uint8_t *b, int i)
{
    return nib16(b + 2, i);
}
static double val_q4_0(const xfmt *x, const uint8_t *b, int i, int c, double t)
{
    return (c - 8) * f16_at(b);
}
static int code_q4_1(const xfmt *x, const uint8_t *b, int i)
{
    return nib16(b + 4, i);
}
static double val_q4_1(const xfmt *x, const uint8_t *b, int i, int c, double t)
{
    return c * f16_at(b) + f16_at(b + 2);
}
static int code_q5_0(const xfmt *x, const uint8_t *b, int i)
{
    return nib16(b + 6, i) | (int)((rd32(b + 2) >> i) & 1) << 4;
}
static double val_q5_0(const xfmt *x, const uint8_t *b, int i, int c, double t)
{
    return (c - 16) * f16_at(b);
}
static int code_q5_1(const xfmt *x, const uint8_t *b, int i)
{
    return nib16(b + 8, i) | (int)((rd32(b + 4) >> i) & 1) << 4;
}
static double val_q5_1(const xfmt *x, const uint8_t *b, int i, int c, double t)
{
    return c * f16_at(b) + f16_at(b + 2);
}
static int code_q8_0(const xfmt *x, const uint8_t *b, int i)
{
    return b[2 + i];
}
static double val_q8_0(const xfmt *x, const uint8_t *b, int i, int c, double t)
{
    return (int8_t)c * f16_at(b);
}

/* ggml's kvalues_iq4nl. */
static const int iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
static double val_iq4_nl(const xfmt *x, const uint8_t *b, int i, int c, double t)
{
    return iq4nl_values[c] * f16_at(b);
}

static int code_tq2_0(const xfmt *x, const uint8_t *b, int i)
{
    return b[(i / 128) * 32 + i % 32] >> (2 * ((i / 32) % 4)) & 3;
}
static double val_tq2_0(const xfmt *x, const uint8_t *b, int i, int c, double t)
{
    return (c - 1) * f16_at(b + 64);
}

/* FORMATS.md: code in {0, 1, 2}; a random byte of four such codes. */
static void fill_tq2_0(const xfmt *x, uint8_t *b)
{
    for (int i = 0; i < 64; i++)
        b[i] = (uint8_t)(rnd() % 3 | (rnd() % 3) << 2 | (rnd() % 3) << 4 | (rnd() % 3) << 6);
}

/* tq1_0: digit n of byte q is ((q * 3^n mod 256) * 3) >> 8; elements
 * 0..159: byte i%32, digit i/32; 160..239: byte 32 + t%16, digit t/16;
 * 240..255: byte 48 + t%4, digit t/4. */
static void tq1_pos(int i, int *byte, int *digit)
{
    if (i < 160)
        *byte = i % 32, *digit = i / 32;
    else if (i < 240)
        *byte = 32 + (i - 160) % 16, *digit = (i - 160) / 16;
    else
        *byte = 48 + (i - 240) % 4, *digit = (i - 240) / 4;
}
static int tq1_digit(uint8_t q, int n)
{
    static const int pow3[5] = {1, 3, 9, 27, 81};
    return (((q * pow3[n]) & 255) * 3) >> 8;
}
static int code_tq1_0(const xfmt *x, const uint8_t *b, int i)
{
    int byte, digit;
    tq1_pos(i, &byte, &digit);
    return tq1_digit(b[byte], digit);
}
static double val_tq1_0(const xfmt *x, const uint8_t *b, int i, int c, double t)
{
    return (c - 1) * f16_at(b + 52);
}

static int code_mxfp4(const xfmt *x, const uint8_t *b, int i)
{
    return nib16(b + 1, i);
}
static double val_e8m0_block(const xfmt *x, const uint8_t *b, int i, int c, double t)
{
    return x->elem((uint32_t)c) * e8m0(b[0]);
}

/* nvfp4_ggml: u8 d[4]; u8 qs[32]; sub-block s = i/16, j = i%16: j < 8 in
 * lo(qs[8s+j]), else hi(qs[8s+j-8]). */
static int code_nvfp4_ggml(const xfmt *x, const uint8_t *b, int i)
{
    int s = i / 16, j = i % 16;
    return j < 8 ? b[4 + 8 * s + j] & 15 : b[4 + 8 * s + j - 8] >> 4;
}
static double val_nvfp4_ggml(const xfmt *x, const uint8_t *b, int i, int c, double t)
{
    return e2m1((uint32_t)c) * ue4m3(b[i / 16]) * t;
}

/* nvfp4 (nv.qk): f32 tensor scale in the tensor header; blocks of 16 as
 * [UE4M3 scale][8 code bytes, element 2j in the low nibble of byte j]. */
static double val_nvfp4(const xfmt *x, const uint8_t *b, int i, int c, double t)
{
    return e2m1((uint32_t)c) * ue4m3(b[0]) * t;
}

/* q2_K: u8 scales[16]; u8 qs[64]; f16 d; f16 dmin. */
static int code_q2_K(const xfmt *x, const uint8_t *b, int i)
{
    return b[16 + 32 * (i / 128) + i % 32] >> (2 * ((i % 128) / 32)) & 3;
}
static double val_q2_K(const xfmt *x, const uint8_t *b, int i, int c, double t)
{
    int s = b[i / 16];
    return f16_at(b + 80) * (s & 15) * c - f16_at(b + 82) * (s >> 4);
}

/* q4_K scale packing (FORMATS.md), sub-block j of 8. */
static void k4_scale(const uint8_t *s, int j, int *sc, int *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
        *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}
/* The inverse: 12 bytes from 8 scales and 8 mins of 6 bits. */
static void k4_pack(uint8_t *s, const int *sc, const int *m)
{
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
}
static void fill_k4(const xfmt *x, uint8_t *b)
{
    int sc[8], m[8];
    for (int j = 0; j < 8; j++)
        sc[j] = (int)(rnd() % 64), m[j] = (int)(rnd() % 64);
    k4_pack(b + 4, sc, m);
    for (int j = 0; j < 8; j++) { /* the test's own packing against FORMATS.md's rule */
        int s2, m2;
        k4_scale(b + 4, j, &s2, &m2);
        CU_ASSERT(s2 == sc[j] && m2 == m[j]);
    }
}
static double val_k4(const uint8_t *b, int i, int c)
{
    int sc, m;
    k4_scale(b + 4, i / 32, &sc, &m);
    return f16_at(b) * sc * c - f16_at(b + 2) * m;
}
static int code_q4_K(const xfmt *x, const uint8_t *b, int i)
{
    return b[16 + 32 * (i / 64) + i % 32] >> (4 * ((i / 32) % 2)) & 15;
}
static double val_q4_K(const xfmt *x, const uint8_t *b, int i, int c, double t)
{
    return val_k4(b, i, c);
}
/* q5_K: f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]. */
static int code_q5_K(const xfmt *x, const uint8_t *b, int i)
{
    int lo = b[48 + 32 * (i / 64) + i % 32] >> (4 * ((i / 32) % 2)) & 15;
    return lo | ((b[16 + i % 32] >> (i / 32)) & 1) << 4;
}
static double val_q5_K(const xfmt *x, const uint8_t *b, int i, int c, double t)
{
    return val_k4(b, i, c);
}

/* MX canonical layout (mx.qk, format.h): [e8m0][codes, LSB-first bits]. */
static int code_mx(const xfmt *x, const uint8_t *b, int i)
{
    int c = 0;
    for (int k = 0; k < x->cbits; k++) {
        int bit = 8 + i * x->cbits + k;
        c |= (b[bit / 8] >> (bit % 8) & 1) << k;
    }
    return c;
}

/* Scales of the E8M0 formats: mostly a moderate range, sometimes the ends
 * (0, 254) and NaN (255). */
static void fill_e8m0(const xfmt *x, uint8_t *b)
{
    static const uint8_t ends[] = {0, 1, 127, 254, 255};
    b[0] = rnd() % 4 == 0 ? ends[rnd() % 5] : (uint8_t)(100 + rnd() % 50);
}
/* UE4M3 sub-block scales of nvfp4_ggml: top bit 0, not the NaN 0x7f. */
static void fill_ue4m3x4(const xfmt *x, uint8_t *b)
{
    for (int s = 0; s < 4; s++)
        b[s] = (uint8_t)(rnd() % 127);
}

static void fill_ue4m3(const xfmt *x, uint8_t *b)
{
    b[0] = (uint8_t)(rnd() % 127);
}

#define F16NONE {-1, -1}
static const xfmt xfmts[] = {
    {"q4_0", 1, 32, 18, 4.5, 0, 16, {0, -1}, 0.15, code_q4_0, val_q4_0, NULL, NULL, 0},
    {"q4_1", 1, 32, 20, 5.0, 0, 16, {0, 2}, 0.15, code_q4_1, val_q4_1, NULL, NULL, 0},
    {"q5_0", 1, 32, 22, 5.5, 0, 32, {0, -1}, 0.08, code_q5_0, val_q5_0, NULL, NULL, 0},
    {"q5_1", 0, 32, 24, 6.0, 0, 32, {0, 2}, 0.08, code_q5_1, val_q5_1, NULL, NULL, 0},
    {"q8_0", 1, 32, 34, 8.5, 0, 256, {0, -1}, 0.01, code_q8_0, val_q8_0, NULL, NULL, 0},
    {"iq4_nl", 0, 32, 18, 4.5, 0, 16, {0, -1}, 0.15, code_q4_0, val_iq4_nl, NULL, NULL, 0},
    {"tq2_0", 1, 256, 66, 2.0625, 0, 3, {64, -1}, 0.7, code_tq2_0, val_tq2_0, fill_tq2_0, NULL, 0},
    {"tq1_0", 0, 256, 54, 1.6875, 0, 3, {52, -1}, 0.7, code_tq1_0, val_tq1_0, NULL, NULL, 0},
    {"mxfp4", 1, 32, 17, 4.25, 0, 16, F16NONE, 0.25, code_mxfp4, val_e8m0_block, fill_e8m0, e2m1, 0},
    {"nvfp4_ggml", 0, 64, 36, 4.5, 0, 16, F16NONE, 0.25, code_nvfp4_ggml, val_nvfp4_ggml, fill_ue4m3x4, e2m1, 0},
    {"q2_K", 0, 256, 84, 2.625, 0, 4, {80, 82}, 0.6, code_q2_K, val_q2_K, NULL, NULL, 0},
    {"q4_K", 1, 256, 144, 4.5, 0, 16, {0, 2}, 0.15, code_q4_K, val_q4_K, fill_k4, NULL, 0},
    {"q5_K", 0, 256, 176, 5.5, 0, 32, {0, 2}, 0.08, code_q5_K, val_q5_K, fill_k4, NULL, 0},
    {"mxfp4_e2m1", 0, 32, 17, 4.25, 0, 16, F16NONE, 0.25, code_mx, val_e8m0_block, fill_e8m0, e2m1, 4},
    {"mxfp6_e3m2", 0, 32, 25, 6.25, 0, 64, F16NONE, 0.12, code_mx, val_e8m0_block, fill_e8m0, e3m2, 6},
    {"mxfp6_e2m3", 0, 32, 25, 6.25, 0, 64, F16NONE, 0.1, code_mx, val_e8m0_block, fill_e8m0, e2m3, 6},
    {"mxfp8_e4m3", 0, 32, 33, 8.25, 0, 256, F16NONE, 0.05, code_mx, val_e8m0_block, fill_e8m0, e4m3, 8},
    {"mxfp8_e5m2", 0, 32, 33, 8.25, 0, 256, F16NONE, 0.1, code_mx, val_e8m0_block, fill_e8m0, e5m2, 8},
    {"mxint8", 0, 32, 33, 8.25, 0, 256, F16NONE, 0.02, code_mx, val_e8m0_block, fill_e8m0, mxint8_elem, 8},
    {"nvfp4", 0, 16, 9, 4.5, 4, 16, F16NONE, 0.25, code_mx, val_nvfp4, fill_ue4m3, e2m1, 4},
};

/* ---- the library, loaded from dsl/ ---- */

static const char *const lib_files[] = {"ggml", "mx", "nv"};
static kir_program *progs[QK_COUNT(lib_files)];

static int load_library(void)
{
    for (int i = 0; i < QK_COUNT(lib_files); i++) {
        char path[512], src[64];
        snprintf(path, sizeof path, "%s/%s.qk", DSL_DIR, lib_files[i]);
        if (access(path, R_OK) != 0) {
            printf("\n  skipped: %s not in the library\n", path);
            continue;
        }
        snprintf(src, sizeof src, "import %s\n", lib_files[i]);
        qk_diags d;
        qk_diags_init(&d);
        progs[i] = qk_frontend_compile(src, strlen(src), "exact.qk", DSL_DIR, &d);
        if (!progs[i]) {
            qk_buf b = {0};
            qk_diags_render(&d, &b);
            fprintf(stderr, "\nimport %s failed:\n%s", lib_files[i], b.s ? b.s : "");
            qk_buf_free(&b);
        }
        qk_diags_free(&d);
    }
    return 0;
}
static int free_library(void)
{
    for (int i = 0; i < QK_COUNT(lib_files); i++)
        kir_program_free(progs[i]);
    return 0;
}

static const qk_format *find(const char *name)
{
    for (int i = 0; i < QK_COUNT(lib_files); i++) {
        const qk_format *f = progs[i] ? kir_find_format(progs[i], name) : NULL;
        if (f)
            return f;
    }
    return NULL;
}

/* The format named by x, or NULL after a failure (required) or a printed
 * skip (optional). */
static const qk_format *lookup(const xfmt *x)
{
    const qk_format *f = find(x->name);
    if (!f && x->required) {
        fprintf(stderr, "\n  %s: required format missing from dsl/\n", x->name);
        CU_FAIL("required format missing");
    } else if (!f)
        printf("\n  skipped: %s not in dsl/", x->name);
    return f;
}

static void dump_block(const char *what, const uint8_t *b, int n)
{
    fprintf(stderr, "    %s:", what);
    for (int i = 0; i < n; i++)
        fprintf(stderr, "%s%02x", i % 32 ? " " : "\n      ", b[i]);
    fprintf(stderr, "\n");
}

/* ---- 1. decode of hand-built blocks ---- */

static void fill_block(const xfmt *x, uint8_t *b)
{
    for (int i = 0; i < x->bytes; i++)
        b[i] = (uint8_t)rnd();
    for (int s = 0; s < 2; s++)
        if (x->f16at[s] >= 0)
            wr16(b + x->f16at[s], f16_safe());
    if (x->fill)
        x->fill(x, b);
}

/* A random per-tensor f32 scale (power-of-two-ish, exact products). */
static float random_tensor_scale(void)
{
    return ldexpf(1.0f + (float)(rnd() % 8) / 8.0f, (int)(rnd() % 9) - 4);
}

static double tensor_scale_of(const xfmt *x, const uint8_t *buf)
{
    if (!x->hdr)
        return 1.0;
    float t;
    uint32_t u = rd32(buf);
    memcpy(&t, &u, 4);
    return t;
}

/* Compares every element of rows x K against x's definition; returns the
 * number of mismatches. */
static int compare_decode(const xfmt *x, const qk_format *f, const uint8_t *buf, int rows, int64_t K)
{
    float *out = malloc(sizeof(float) * (size_t)(rows * K));
    qk_format_unpack(f, buf, rows, K, out, NULL);
    double t = tensor_scale_of(x, buf);
    int bad = 0;
    for (int r = 0; r < rows; r++)
        for (int64_t k = 0; k < K; k++) {
            const uint8_t *blk = buf + x->hdr + ((size_t)r * (size_t)(K / x->block) + (size_t)(k / x->block)) * x->bytes;
            int i = (int)(k % x->block), c = x->code(x, blk, i);
            double want = x->value(x, blk, i, c, t);
            double got = qk_format_get(f, buf, r, K, k, NULL);
            float gotf = out[r * K + k];
            if (same(want, got) && same((float)want, gotf))
                continue;
            if (bad++ < MAX_REPORTS) {
                fprintf(stderr, "\n  %s: row %d block %lld element %d (code %d): want %.17g, get %.17g, unpack %.9g\n",
                        x->name, r, (long long)(k / x->block), i, c, want, got, gotf);
                dump_block("block bytes", blk, x->bytes);
            }
        }
    free(out);
    return bad;
}

static void decode_one(const xfmt *x, const qk_format *f)
{
    int rows = 3, nb = x->block >= 256 ? 3 : 5;
    int64_t K = (int64_t)nb * x->block;
    size_t size = (size_t)x->hdr + (size_t)rows * nb * x->bytes;
    if (qk_format_size(f, rows, K) != (int64_t)size) {
        fprintf(stderr, "\n  %s: size %lld, FORMATS.md %zu: decode not checked\n", x->name,
                (long long)qk_format_size(f, rows, K), size);
        CU_FAIL("size differs");
        return;
    }
    uint8_t *buf = malloc(size);
    if (x->hdr) {
        float t = random_tensor_scale();
        memcpy(buf, &t, 4);
    }
    for (int b = 0; b < rows * nb; b++)
        fill_block(x, buf + x->hdr + (size_t)b * x->bytes);
    int bad = compare_decode(x, f, buf, rows, K);
    if (bad)
        fprintf(stderr, "  %s: %d of %lld elements decode wrong\n", x->name, bad, (long long)(rows * K));
    CU_ASSERT_EQUAL(bad, 0);
    free(buf);
}

static void test_decode(void)
{
    seed(1);
    for (int i = 0; i < QK_COUNT(xfmts); i++) {
        const qk_format *f = lookup(&xfmts[i]);
        if (f)
            decode_one(&xfmts[i], f);
    }
}

/* Every code of the 8- and 6-bit MX elements, in order, under a few
 * scales (the random blocks above may miss the NaN / inf codes). */
static void test_decode_all_codes(void)
{
    for (int i = 0; i < QK_COUNT(xfmts); i++) {
        const xfmt *x = &xfmts[i];
        if (x->fill != fill_e8m0 || x->code != code_mx)
            continue;
        const qk_format *f = lookup(x);
        if (!f)
            continue;
        int ncodes = 1 << x->cbits, nb = ncodes / 32 * 3;
        int64_t K = (int64_t)nb * 32;
        size_t size = (size_t)nb * x->bytes;
        if (qk_format_size(f, 1, K) != (int64_t)size) {
            CU_FAIL("size differs");
            continue;
        }
        uint8_t *buf = calloc(1, size);
        for (int k = 0; k < K; k++) { /* code k % ncodes at element k */
            int bit = (k / 32) * x->bytes * 8 + 8 + (k % 32) * x->cbits;
            for (int j = 0; j < x->cbits; j++)
                buf[(bit + j) / 8] |= (uint8_t)(((k % ncodes) >> j & 1) << ((bit + j) % 8));
        }
        for (int b = 0; b < nb; b++)
            buf[(size_t)b * x->bytes] = (uint8_t)(b < nb / 3 ? 127 : b < 2 * nb / 3 ? 120 : 135);
        CU_ASSERT_EQUAL(compare_decode(x, f, buf, 1, K), 0);
        free(buf);
    }
}

/* ---- 3. sizes ---- */

static void test_sizes(void)
{
    for (int i = 0; i < QK_COUNT(xfmts); i++) {
        const xfmt *x = &xfmts[i];
        const qk_format *f = lookup(x);
        if (!f)
            continue;
        int64_t want = (int64_t)x->hdr + 5LL * 7 * x->bytes;
        int64_t got = qk_format_size(f, 5, 7LL * x->block);
        double bpw = qk_format_bits_per_weight(f);
        if (f->block != x->block || got != want || bpw != x->bpw)
            fprintf(stderr, "\n  %s: block %d (want %d), size of 5 rows x 7 blocks %lld (want %lld), %g bits/weight (want %g)\n",
                    x->name, f->block, x->block, (long long)got, (long long)want, bpw, x->bpw);
        CU_ASSERT_EQUAL(f->block, x->block);
        CU_ASSERT_EQUAL(got, want);
        CU_ASSERT_EQUAL(qk_format_row_bytes(f, 7LL * x->block), 7LL * x->bytes);
        CU_ASSERT_DOUBLE_EQUAL(bpw, x->bpw, 0);
    }
}

/* ---- 2. packing ---- */

/* Test data: uniform rows at different magnitudes; row 0 block 1 all
 * zeros; row 1 block 0 = (j - 16) / 16, whose q4_0 codes fall on ties;
 * row 3 with one outlier per block. */
static float *make_data(int rows, int64_t K, int B)
{
    float *x = malloc(sizeof(float) * (size_t)(rows * K));
    for (int r = 0; r < rows; r++)
        for (int64_t k = 0; k < K; k++) {
            float v = urand() * ldexpf(1.0f, r % 3 - 1);
            if (r == 0 && k / B == 1)
                v = 0;
            if (r == 1 && k < B)
                v = (float)((int)(k % 32) - 16) * 0.0625f;
            if (r == 3 && k % B == (k / B * 7) % B)
                v *= 6;
            x[r * K + k] = v;
        }
    return x;
}

/* 1 if the value of code c is the nearest of all codes to v (up to a
 * tiny relative tolerance for the quantizer's f32 arithmetic). */
static int is_nearest(const xfmt *x, const uint8_t *blk, int i, int c, double t, double v)
{
    double best = INFINITY, vmax = 0;
    for (int c2 = 0; c2 < x->ncodes; c2++) {
        double w = x->value(x, blk, i, c2, t);
        if (!isfinite(w))
            continue;
        best = fmin(best, fabs(v - w));
        vmax = fmax(vmax, fabs(w));
    }
    double got = fabs(v - x->value(x, blk, i, c, t));
    return got <= best + 1e-6 * (fabs(v) + vmax);
}

typedef struct pack_stats {
    int inconsistent, not_nearest, far, bad_code;
    double err2, sig2;
} pack_stats;

/* How a format's codes are computed (see raw_rules below): the value of
 * code c is unit(c) * d + m for the block's unrounded d and m. */
typedef struct raw_rule {
    const char *name;
    void (*params)(const float *x, int n, float *d, float *m); /* f32, as ggml */
    double (*unit)(int c);
    const char *what;
} raw_rule;
static const raw_rule *raw_rule_of(const char *name);

/* Index of the code whose value is nearest to v (the first on ties), with
 * value(c) = x->value(...) (stored scales) or unit(c) * d + m (rr). */
static int nearest_code(const xfmt *x, const uint8_t *blk, int i, double t, const raw_rule *rr, double d, double m,
                        double v)
{
    int best = 0;
    double bd = INFINITY;
    for (int c = 0; c < x->ncodes; c++) {
        double w = rr ? rr->unit(c) * d + m : x->value(x, blk, i, c, t);
        if (isfinite(w) && fabs(v - w) < bd)
            bd = fabs(v - w), best = c;
    }
    return best;
}

/* 1 if no code's value lies strictly between those of codes a and b:
 * they are at most one code step apart. */
static int one_step(const xfmt *x, const raw_rule *rr, int a, int b)
{
    double ua = rr->unit(a), ub = rr->unit(b);
    for (int c = 0; c < x->ncodes; c++)
        if (rr->unit(c) > fmin(ua, ub) && rr->unit(c) < fmax(ua, ub))
            return 0;
    return 1;
}

/* Code c of element i: decodes as unpack says, is a valid code, and is
 * the nearest code (a) for the unrounded d, m of the block (rr, when the
 * format has a rule and d is usable), then also within one code of the
 * nearest for the stored scale, or (b) for the stored scales. */
static void check_element(const xfmt *x, const uint8_t *blk, int i, double t, float src, float unpacked,
                          pack_stats *st, int r, int64_t b, const raw_rule *rr, float d, float m)
{
    int c = x->code(x, blk, i);
    double v = x->value(x, blk, i, c, t);
    st->err2 += (v - src) * (v - src);
    st->sig2 += (double)src * src;
    if (!same((float)v, unpacked) && st->inconsistent++ < MAX_REPORTS)
        fprintf(stderr, "\n  %s: packed row %d block %lld element %d: bytes decode (FORMATS.md) to %.9g, unpack %.9g\n",
                x->name, r, (long long)b, i, (float)v, unpacked);
    if (c >= x->ncodes) {
        if (st->bad_code++ < MAX_REPORTS)
            fprintf(stderr, "\n  %s: packed row %d block %lld element %d: code %d outside 0..%d\n", x->name, r,
                    (long long)b, i, c, x->ncodes - 1);
        return;
    }
    if (rr && d != 0 && isfinite(d)) {
        double vmax = 0;
        for (int c2 = 0; c2 < x->ncodes; c2++)
            vmax = fmax(vmax, fabs(rr->unit(c2) * d + m));
        int want = nearest_code(x, blk, i, t, rr, d, m, src);
        double got = fabs(src - (rr->unit(c) * d + m)), best = fabs(src - (rr->unit(want) * d + m));
        if (got > best + 1e-6 * (fabs(src) + vmax) && st->not_nearest++ < MAX_REPORTS) {
            fprintf(stderr, "\n  %s: packed row %d block %lld element %d: x = %.9g got code %d, the nearest for the "
                            "unrounded d = %.9g, m = %.9g (%s) is %d\n",
                    x->name, r, (long long)b, i, src, c, d, m, rr->what, want);
            dump_block("block bytes", blk, x->bytes);
        }
        int ns = nearest_code(x, blk, i, t, NULL, 0, 0, src);
        if (!one_step(x, rr, c, ns) && st->far++ < MAX_REPORTS)
            fprintf(stderr, "\n  %s: packed row %d block %lld element %d: x = %.9g got code %d, more than one code "
                            "from %d, the nearest for the stored scale\n",
                    x->name, r, (long long)b, i, src, c, ns);
    } else if (!is_nearest(x, blk, i, c, t, src) && st->not_nearest++ < MAX_REPORTS) {
        fprintf(stderr, "\n  %s: packed row %d block %lld element %d: x = %.9g got code %d (value %.9g), not the nearest\n",
                x->name, r, (long long)b, i, src, c, v);
        dump_block("block bytes", blk, x->bytes);
    }
}

/* Packs rows of test data; returns the packed tensor (caller frees). */
static uint8_t *pack(const qk_format *f, const float *src, int rows, int64_t K, size_t size)
{
    uint8_t *buf = malloc(size);
    for (size_t i = 0; i < size; i++) /* garbage: the packer must write every bit */
        buf[i] = (uint8_t)(0xA5 ^ i);
    qk_pack_opts opts = {0};
    char err[256] = "";
    int rc = qk_format_pack(f, src, rows, K, buf, &opts, err, sizeof err);
    if (rc != 0)
        fprintf(stderr, "\n  %s: qk_format_pack failed: %s\n", f->name, err);
    CU_ASSERT_EQUAL(rc, 0);
    return buf;
}

static void pack_consistency(const xfmt *x, const qk_format *f, const float *src, const uint8_t *buf, int rows,
                             int64_t K)
{
    float *out = malloc(sizeof(float) * (size_t)(rows * K));
    qk_format_unpack(f, buf, rows, K, out, NULL);
    double t = tensor_scale_of(x, buf);
    const raw_rule *rr = raw_rule_of(x->name);
    pack_stats st = {0};
    for (int r = 0; r < rows; r++)
        for (int64_t b = 0; b < K / x->block; b++) {
            const uint8_t *blk = buf + x->hdr + ((size_t)r * (size_t)(K / x->block) + (size_t)b) * x->bytes;
            const float *xb = src + r * K + b * x->block;
            float d = 0, m = 0;
            if (rr)
                rr->params(xb, x->block, &d, &m);
            for (int e = 0; e < x->block; e++)
                check_element(x, blk, e, t, xb[e], out[r * K + b * x->block + e], &st, r, b, rr, d, m);
        }
    double rel = sqrt(st.err2 / st.sig2);
    if (st.inconsistent || st.not_nearest || st.far || st.bad_code || rel > x->maxrel)
        fprintf(stderr, "  %s: %d inconsistent, %d not nearest, %d more than one code from the nearest for the stored "
                        "scale, %d bad codes, relative RMS error %.4f (bound %.2f)\n",
                x->name, st.inconsistent, st.not_nearest, st.far, st.bad_code, rel, x->maxrel);
    CU_ASSERT_EQUAL(st.inconsistent, 0);
    CU_ASSERT_EQUAL(st.not_nearest, 0);
    CU_ASSERT_EQUAL(st.far, 0);
    CU_ASSERT_EQUAL(st.bad_code, 0);
    CU_ASSERT(rel <= x->maxrel);
    free(out);
}

/* ---- ggml's reference quantizers (ggml-quants.c), in f32 ---- */

/* The element of largest |x| (first on ties), signed. */
static float signed_absmax(const float *x, int n)
{
    float amax = 0, max = 0;
    for (int j = 0; j < n; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    return max;
}
static float absmax(const float *x, int n)
{
    float amax = 0;
    for (int j = 0; j < n; j++)
        amax = fmaxf(amax, fabsf(x[j]));
    return amax;
}

static void ggml_q4_0(const float *x, uint8_t *y)
{
    const float d = signed_absmax(x, 32) / -8;
    const float id = d ? 1.0f / d : 0.0f;
    wr16(y, f16_bits(d));
    for (int j = 0; j < 16; j++) {
        const float x0 = x[j] * id, x1 = x[16 + j] * id;
        const int xi0 = (int8_t)(x0 + 8.5f) < 15 ? (int8_t)(x0 + 8.5f) : 15;
        const int xi1 = (int8_t)(x1 + 8.5f) < 15 ? (int8_t)(x1 + 8.5f) : 15;
        y[2 + j] = (uint8_t)(xi0 | xi1 << 4);
    }
}

static void ggml_q4_1(const float *x, uint8_t *y)
{
    float min = INFINITY, max = -INFINITY;
    for (int j = 0; j < 32; j++) {
        min = fminf(min, x[j]);
        max = fmaxf(max, x[j]);
    }
    const float d = (max - min) / 15;
    const float id = d ? 1.0f / d : 0.0f;
    wr16(y, f16_bits(d));
    wr16(y + 2, f16_bits(min));
    for (int j = 0; j < 16; j++) {
        const int xi0 = (int8_t)((x[j] - min) * id + 0.5f), xi1 = (int8_t)((x[16 + j] - min) * id + 0.5f);
        y[4 + j] = (uint8_t)((xi0 < 15 ? xi0 : 15) | (xi1 < 15 ? xi1 : 15) << 4);
    }
}

static void ggml_q5_0(const float *x, uint8_t *y)
{
    const float d = signed_absmax(x, 32) / -16;
    const float id = d ? 1.0f / d : 0.0f;
    uint32_t qh = 0;
    wr16(y, f16_bits(d));
    for (int j = 0; j < 16; j++) {
        int xi0 = (int8_t)(x[j] * id + 16.5f), xi1 = (int8_t)(x[16 + j] * id + 16.5f);
        xi0 = xi0 < 31 ? xi0 : 31;
        xi1 = xi1 < 31 ? xi1 : 31;
        y[6 + j] = (uint8_t)((xi0 & 15) | (xi1 & 15) << 4);
        qh |= (uint32_t)(xi0 >> 4 & 1) << j | (uint32_t)(xi1 >> 4 & 1) << (j + 16);
    }
    for (int j = 0; j < 4; j++)
        y[2 + j] = (uint8_t)(qh >> (8 * j));
}

static void ggml_q8_0(const float *x, uint8_t *y)
{
    const float d = absmax(x, 32) / 127;
    const float id = d ? 1.0f / d : 0.0f;
    wr16(y, f16_bits(d));
    for (int j = 0; j < 32; j++)
        y[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
}

static void ggml_tq2_0(const float *x, uint8_t *y)
{
    const float d = absmax(x, 256);
    const float id = d ? 1.0f / d : 0.0f;
    for (int j = 0; j < 64; j += 32)
        for (int m = 0; m < 32; m++) {
            int q = 0;
            for (int n = 0; n < 4; n++)
                q += (int)(lroundf(x[128 * (j / 32) + m + n * 32] * id) + 1) << (2 * n);
            y[j + m] = (uint8_t)q;
        }
    wr16(y + 64, f16_bits(d));
}

/* tq1_0: q = sum of digits d_n 3^(4-n) (4-digit tail: d_4 = 0), stored as
 * ceil(q * 256 / 243). */
static uint8_t tq1_byte(const int *digits, int n)
{
    int q = 0;
    for (int i = 0; i < 5; i++)
        q = q * 3 + (i < n ? digits[i] : 0);
    return (uint8_t)((q * 256 + 242) / 243);
}
static void ggml_tq1_0(const float *x, uint8_t *y)
{
    const float d = absmax(x, 256);
    const float id = d ? 1.0f / d : 0.0f;
    for (int byte = 0; byte < 52; byte++) {
        int digits[5], n = byte < 48 ? 5 : 4;
        for (int dg = 0; dg < n; dg++) {
            int i = byte < 32 ? 32 * dg + byte : byte < 48 ? 160 + 16 * dg + byte - 32 : 240 + 4 * dg + byte - 48;
            digits[dg] = (int)lroundf(x[i] * id) + 1;
        }
        y[byte] = tq1_byte(digits, n);
    }
    wr16(y + 52, f16_bits(d));
}

static void ggml_mxfp4(const float *x, uint8_t *y)
{
    static const int8_t kv[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
    const float amax = absmax(x, 32);
    const uint8_t e = amax > 0.0f ? (uint8_t)(floorf(log2f(amax)) - 2 + 127) : 0;
    const float d = ldexpf(1.0f, e - 128);
    y[0] = e;
    for (int j = 0; j < 32; j++) {
        int best = 0;
        float best_err = fabsf(kv[0] * d - x[j]);
        for (int i = 1; i < 16; i++)
            if (fabsf(kv[i] * d - x[j]) < best_err) {
                best = i;
                best_err = fabsf(kv[i] * d - x[j]);
            }
        y[1 + j % 16] = (uint8_t)(j < 16 ? best : y[1 + j % 16] | best << 4);
    }
}

typedef struct ggml_ref {
    const char *name;
    void (*quantize)(const float *x, uint8_t *y);
    int asserted; /* 1: qkc must write ggml's bytes; 0: differences are reported as notes */
} ggml_ref;

static const ggml_ref ggml_refs[] = {
    {"q4_0", ggml_q4_0, 1}, {"q8_0", ggml_q8_0, 1}, {"q4_1", ggml_q4_1, 0}, {"q5_0", ggml_q5_0, 0},
    {"tq2_0", ggml_tq2_0, 0}, {"tq1_0", ggml_tq1_0, 0}, {"mxfp4", ggml_mxfp4, 0},
};

/* ---- the unrounded scales codes are computed with ----
 * ggml's reference quantizers compute d (and q4_1 / q5_1's min) in f32,
 * store them rounded to f16, and take the codes from x * (1 / d) with the
 * unrounded d and min; qkc's quantizer does the same for float block
 * scales (spec UPDATE 2). So a code is the nearest for the unrounded d,
 * not always for the stored one. */

static void rp_q4_0(const float *x, int n, float *d, float *m)
{
    *d = signed_absmax(x, n) / -8, *m = 0;
}
static void rp_q5_0(const float *x, int n, float *d, float *m)
{
    *d = signed_absmax(x, n) / -16, *m = 0;
}
static void rp_q8_0(const float *x, int n, float *d, float *m)
{
    *d = absmax(x, n) / 127, *m = 0;
}
static void rp_tq(const float *x, int n, float *d, float *m)
{
    *d = absmax(x, n), *m = 0;
}
static void rp_minmax(const float *x, int n, int top, float *d, float *m)
{
    float min = INFINITY, max = -INFINITY;
    for (int j = 0; j < n; j++)
        min = fminf(min, x[j]), max = fmaxf(max, x[j]);
    *d = (max - min) / (float)top, *m = min;
}
static void rp_q4_1(const float *x, int n, float *d, float *m)
{
    rp_minmax(x, n, 15, d, m);
}
static void rp_q5_1(const float *x, int n, float *d, float *m)
{
    rp_minmax(x, n, 31, d, m);
}
static void rp_iq4_nl(const float *x, int n, float *d, float *m)
{
    *d = absmax(x, n) / 127, *m = 0; /* largest |table value| */
}

static double u_off8(int c)
{
    return c - 8;
}
static double u_off16(int c)
{
    return c - 16;
}
static double u_int8(int c)
{
    return (int8_t)c;
}
static double u_plain(int c)
{
    return c;
}
static double u_tern(int c)
{
    return c - 1;
}
static double u_iq4nl(int c)
{
    return iq4nl_values[c];
}

static const raw_rule raw_rules[] = {
    {"q4_0", rp_q4_0, u_off8, "ggml: max / -8"},
    {"q5_0", rp_q5_0, u_off16, "ggml: max / -16"},
    {"q8_0", rp_q8_0, u_int8, "ggml: amax / 127"},
    {"q4_1", rp_q4_1, u_plain, "ggml: (max - min) / 15, f32 min"},
    {"q5_1", rp_q5_1, u_plain, "ggml: (max - min) / 31, f32 min"},
    {"tq2_0", rp_tq, u_tern, "ggml: amax"},
    {"tq1_0", rp_tq, u_tern, "ggml: amax"},
    {"iq4_nl", rp_iq4_nl, u_iq4nl, "qkc's table rule: amax / 127, not ggml's scale search"},
};

static const raw_rule *raw_rule_of(const char *name)
{
    for (int i = 0; i < QK_COUNT(raw_rules); i++)
        if (!strcmp(raw_rules[i].name, name))
            return &raw_rules[i];
    return NULL;
}

/* Compares every byte of a packed tensor with ggml's reference quantizer;
 * returns the number of bytes that differ. */
static int compare_ggml(const xfmt *x, const ggml_ref *g, const float *src, const uint8_t *buf, int rows, int64_t K)
{
    int nb = (int)(K / x->block), bad = 0;
    uint8_t want[512];
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) {
            const uint8_t *blk = buf + ((size_t)r * nb + b) * x->bytes;
            g->quantize(src + r * K + (int64_t)b * x->block, want);
            for (int i = 0; i < x->bytes; i++)
                if (want[i] != blk[i] && bad++ < MAX_REPORTS && g->asserted)
                    fprintf(stderr, "\n  %s: row %d block %d byte %d: ggml writes 0x%02x, qkc 0x%02x", x->name, r, b, i,
                            want[i], blk[i]);
        }
    if (bad)
        fprintf(stderr, "\n  %s%s: %d of %lld bytes differ from ggml's reference quantizer\n", g->asserted ? "" : "note: ",
                x->name, bad, (long long)(rows * nb * x->bytes));
    return bad;
}

/* The block scale FORMATS.md / qkc's quantizer rules give, per format;
 * returns the number of blocks whose stored scale differs. */
static int check_scales(const xfmt *x, const float *src, const uint8_t *buf, int rows, int64_t K)
{
    int nb = (int)(K / x->block), bad = 0;
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) {
            const float *v = src + r * K + (int64_t)b * x->block;
            const uint8_t *blk = buf + x->hdr + ((size_t)r * nb + b) * x->bytes;
            uint32_t want, got;
            if (!strcmp(x->name, "q4_0") || !strcmp(x->name, "q5_0")) { /* ggml: max / -8, max / -16 */
                want = f16_bits(signed_absmax(v, 32) / (x->ncodes == 16 ? -8.0f : -16.0f));
                got = rd16(blk);
            } else if (!strcmp(x->name, "q8_0")) { /* ggml: absmax / 127 */
                want = f16_bits(absmax(v, 32) / 127.0f);
                got = rd16(blk);
            } else if (!strcmp(x->name, "tq2_0") || !strcmp(x->name, "tq1_0")) { /* ggml: absmax */
                want = f16_bits(absmax(v, 256));
                got = rd16(blk + x->f16at[0]);
            } else
                return 0;
            if (want != got && bad++ < MAX_REPORTS)
                fprintf(stderr, "\n  %s: row %d block %d: scale 0x%04x (%.9g), ggml's rule gives 0x%04x (%.9g)", x->name, r,
                        b, got, f16_value((uint16_t)got), want, f16_value((uint16_t)want));
        }
    if (bad)
        fprintf(stderr, "\n  %s: %d of %d block scales differ from ggml's rule\n", x->name, bad, rows * nb);
    return bad;
}

/* qkc's rule for E8M0 block scales of minifloat elements (the spec and
 * mx.qk): the smallest power of two >= amax / largest finite element,
 * amax / max computed in f32. */
static int check_e8m0_scales(const xfmt *x, const float *src, const uint8_t *buf, int rows, int64_t K)
{
    double maxfin = 0;
    for (int c = 0; c < x->ncodes; c++)
        if (isfinite(x->elem((uint32_t)c)))
            maxfin = fmax(maxfin, x->elem((uint32_t)c));
    int nb = (int)(K / x->block), bad = 0;
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) {
            float d = absmax(src + r * K + (int64_t)b * x->block, x->block) / (float)maxfin;
            if (d == 0)
                continue;
            int ex;
            double m = frexp(d, &ex);
            int want = 127 + (m == 0.5 ? ex - 1 : ex);
            int got = buf[((size_t)r * nb + b) * x->bytes];
            if (want != got && bad++ < MAX_REPORTS)
                fprintf(stderr, "\n  %s: row %d block %d: e8m0 scale %d, smallest power of two >= amax/%g is 2^%d", x->name,
                        r, b, got, maxfin, want - 127);
        }
    return bad;
}

static void pack_one(const xfmt *x, const qk_format *f)
{
    int rows = 4, nb = x->block >= 256 ? 3 : 5;
    int64_t K = (int64_t)nb * x->block;
    size_t size = (size_t)x->hdr + (size_t)rows * nb * x->bytes;
    if (qk_format_size(f, rows, K) != (int64_t)size) {
        CU_FAIL("size differs; pack not checked");
        return;
    }
    float *src = make_data(rows, K, x->block);
    uint8_t *buf = pack(f, src, rows, K, size);
    pack_consistency(x, f, src, buf, rows, K);
    CU_ASSERT_EQUAL(check_scales(x, src, buf, rows, K), 0);
    if (x->fill == fill_e8m0 && x->elem != mxint8_elem)
        CU_ASSERT_EQUAL(check_e8m0_scales(x, src, buf, rows, K), 0);
    for (int g = 0; g < QK_COUNT(ggml_refs); g++)
        if (!strcmp(ggml_refs[g].name, x->name)) {
            int bad = compare_ggml(x, &ggml_refs[g], src, buf, rows, K);
            if (ggml_refs[g].asserted)
                CU_ASSERT_EQUAL(bad, 0);
        }
    free(buf);
    free(src);
}

static void test_pack(void)
{
    seed(2);
    for (int i = 0; i < QK_COUNT(xfmts); i++) {
        const qk_format *f = lookup(&xfmts[i]);
        if (f)
            pack_one(&xfmts[i], f);
    }
}

/* tq1_0's bytes are the canonical base-3 encoding of their digits
 * (ceil(q * 256 / 243)): what ggml writes and reads back. */
static void test_tq1_0_canonical(void)
{
    const xfmt *x = NULL;
    for (int i = 0; i < QK_COUNT(xfmts); i++)
        if (!strcmp(xfmts[i].name, "tq1_0"))
            x = &xfmts[i];
    const qk_format *f = lookup(x);
    if (!f)
        return;
    int rows = 3, bad = 0;
    int64_t K = 512;
    float *src = make_data(rows, K, 256);
    uint8_t *buf = pack(f, src, rows, K, (size_t)rows * 2 * 54);
    for (int b = 0; b < rows * 2; b++)
        for (int byte = 0; byte < 52; byte++) {
            uint8_t q = buf[b * 54 + byte];
            int digits[5], n = byte < 48 ? 5 : 4;
            for (int dg = 0; dg < 5; dg++)
                digits[dg] = tq1_digit(q, dg);
            if (tq1_byte(digits, n) != q && bad++ < MAX_REPORTS)
                fprintf(stderr, "\n  tq1_0: block %d byte %d = 0x%02x is not the canonical encoding of its digits", b, byte, q);
        }
    CU_ASSERT_EQUAL(bad, 0);
    free(buf);
    free(src);
}

/* tq2_0 code 3 is outside FORMATS.md's {0, 1, 2}; ggml's decoder
 * (dequantize_row_tq2_0: (q - 1) * d) reads it as 2 * d. Reported as a
 * note, not asserted: qkc may define it otherwise (format.h). */
static void test_tq2_0_code3(void)
{
    const qk_format *f = find("tq2_0");
    if (!f)
        return;
    uint8_t blk[66];
    memset(blk, 0xff, 64);
    wr16(blk + 64, 0x3c00); /* d = 1 */
    double got = qk_format_get(f, blk, 0, 256, 5, NULL);
    if (got != 2.0)
        printf("\n  note: tq2_0 code 3 decodes to %g; ggml's dequantize_row_tq2_0 gives (3 - 1) * d = 2\n", got);
}

/* ---- 4. the OCP types ---- */

/* FORMATS.md's facts about the element types, on this file's decoder. */
static void test_ocp_definitions(void)
{
    static const double e2m1_pos[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
    for (uint32_t c = 0; c < 16; c++)
        CU_ASSERT(same(e2m1(c), c < 8 ? e2m1_pos[c] : -e2m1_pos[c - 8]));
    CU_ASSERT(signbit(e2m1(8)));
    CU_ASSERT_EQUAL(e4m3(0x7e), 448);
    CU_ASSERT(isnan(e4m3(0x7f)) && isnan(e4m3(0xff)));
    CU_ASSERT_EQUAL(e5m2(0x7b), 57344);
    CU_ASSERT(isinf(e5m2(0x7c)) && e5m2(0xfc) < 0 && isnan(e5m2(0x7d)));
    CU_ASSERT_EQUAL(e3m2(0x1f), 28);
    CU_ASSERT_EQUAL(e2m3(0x1f), 7.5);
    CU_ASSERT_EQUAL(ue4m3(0x7e), 448);
    CU_ASSERT(isnan(ue4m3(0x7f)));
    CU_ASSERT_EQUAL(e8m0(127), 1);
    CU_ASSERT_EQUAL(f16_value(0x3c00), 1);
    CU_ASSERT_EQUAL(f16_value(0x7bff), 65504);
    CU_ASSERT_EQUAL(f16_value(0x0001), ldexp(1, -24));
    CU_ASSERT_EQUAL(f16_bits(1.0f + ldexpf(1, -11)), 0x3c00);              /* tie to even */
    CU_ASSERT_EQUAL(f16_bits(1.0f + 3 * ldexpf(1, -11)), 0x3c02);          /* tie to even */
    CU_ASSERT_EQUAL(f16_bits(ldexpf(1, -25) * 3), 0x0002);                  /* subnormal tie */
    CU_ASSERT_EQUAL(f16_bits(65519.0f), 0x7bff);
}

typedef struct mf_case {
    const char *name;
    int ebits, mbits, bias;
    qk_mf_special sp;
    mf_kind k;
} mf_case;

/* qk_minifloat_decode and qk_num_decode against the definitions, every code. */
static void test_ocp_codecs(void)
{
    static const mf_case cases[] = {
        {"e2m1", 2, 1, 1, QK_MF_FINITE, MF_FINITE}, {"e3m2", 3, 2, 3, QK_MF_FINITE, MF_FINITE},
        {"e2m3", 2, 3, 1, QK_MF_FINITE, MF_FINITE}, {"e4m3", 4, 3, 7, QK_MF_FN, MF_FN},
        {"e5m2", 5, 2, 15, QK_MF_IEEE, MF_IEEE},
    };
    for (int i = 0; i < QK_COUNT(cases); i++) {
        const mf_case *m = &cases[i];
        for (uint32_t c = 0; c < 1u << (1 + m->ebits + m->mbits); c++) {
            double want = minifloat(m->ebits, m->mbits, m->bias, m->k, 0, c);
            double got = qk_minifloat_decode(m->ebits, m->mbits, m->bias, m->sp, 0, c);
            if (!same_signed(want, got))
                fprintf(stderr, "\n  %s code 0x%02x: want %g, got %g", m->name, c, want, got);
            CU_ASSERT(same_signed(want, got));
        }
    }
    for (uint32_t c = 0; c < 256; c++) {
        CU_ASSERT(same(qk_num_decode(QK_NUM_E8M0, c), e8m0(c)));
        CU_ASSERT(same(qk_num_decode(QK_NUM_E4M3, c), e4m3(c)));
    }
    for (uint32_t c = 0; c < 128; c++)
        CU_ASSERT(same(qk_num_decode(QK_NUM_UE4M3, c), ue4m3(c)));
    for (uint32_t c = 0; c < 65536; c++)
        if (!same(qk_num_decode(QK_NUM_F16, c), f16_value((uint16_t)c))) {
            CU_FAIL("f16 decode");
            break;
        }
}

/* The MX formats' descriptors: the element type FORMATS.md names. */
static void test_mx_descriptors(void)
{
    static const struct {
        const char *name;
        int ebits, mbits, bias;
        qk_mf_special sp;
    } want[] = {
        {"mxfp4", 2, 1, 1, QK_MF_FINITE},      {"mxfp4_e2m1", 2, 1, 1, QK_MF_FINITE},
        {"mxfp6_e3m2", 3, 2, 3, QK_MF_FINITE}, {"mxfp6_e2m3", 2, 3, 1, QK_MF_FINITE},
        {"mxfp8_e4m3", 4, 3, 7, QK_MF_FN},     {"mxfp8_e5m2", 5, 2, 15, QK_MF_IEEE},
    };
    for (int i = 0; i < QK_COUNT(want); i++) {
        const qk_format *f = find(want[i].name);
        if (!f) {
            printf("\n  skipped: %s not in dsl/", want[i].name);
            continue;
        }
        CU_ASSERT_EQUAL(f->code, QK_CODE_MINIFLOAT);
        CU_ASSERT(f->ebits == want[i].ebits && f->mbits == want[i].mbits && f->bias == want[i].bias);
        CU_ASSERT_EQUAL(f->special, want[i].sp);
        CU_ASSERT_EQUAL(f->block, 32);
        CU_ASSERT_EQUAL(f->scale_per, QK_PER_BLOCK);
        CU_ASSERT_EQUAL(f->scale_num, QK_NUM_E8M0);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("exact", load_library, free_library);
    CU_add_test(s, "OCP definitions (test decoders)", test_ocp_definitions);
    CU_add_test(s, "OCP codecs", test_ocp_codecs);
    CU_add_test(s, "sizes", test_sizes);
    CU_add_test(s, "MX descriptors", test_mx_descriptors);
    CU_add_test(s, "decode hand-built blocks", test_decode);
    CU_add_test(s, "decode every MX code", test_decode_all_codes);
    CU_add_test(s, "pack", test_pack);
    CU_add_test(s, "tq1_0 canonical bytes", test_tq1_0_canonical);
    CU_add_test(s, "tq2_0 code 3 (note)", test_tq2_0_code3);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}
