/* test_decode.c — the generic decode/encode lowering (tir_decode.c):
 * for a broad set of formats built here (every code kind, placement,
 * scale scheme, zero point, min, sparsity and codebook shape, including
 * ggml's q4_0, q5_0, q4_K, tq2_0 and tq1_0 layouts), a tiled-IR function
 * that decodes every block with tdec_chunk (constant and run-time first
 * items, 64/16/8/4/1 lanes), tdec_element, tdec_codes and tdec_positions
 * is JIT-compiled by the LLVM backend and compared with qk_format_get /
 * qk_format_item on bytes from qk_format_pack and on random bytes; the
 * compiled quantizer tdec_encode_row must write qk_format_pack's bytes.
 * Also: the verifier rules and the CUDA text of the new ops IEQ, POPCNT
 * and GATHER. */
#include <CUnit/Basic.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backends/backend.h"
#include "compiler/tir_decode.h"
#include "support/cuda_host.h"

/* ---- random numbers (fixed seeds) ---- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static float rng_float(uint64_t *s)
{
    return (float)((double)(rng_next(s) >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* ---- buffers that end at an inaccessible page (over-reads fault) ---- */

typedef struct guarded {
    uint8_t *p; /* the n bytes, ending at the guard page */
    void *map;
    size_t maplen;
} guarded;

static guarded guarded_alloc(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE), body = (n + page - 1) / page * page;
    guarded g = {NULL, NULL, body + page};
    g.map = mmap(NULL, g.maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CU_ASSERT_FATAL(g.map != MAP_FAILED);
    CU_ASSERT_FATAL(mprotect((uint8_t *)g.map + body, page, PROT_NONE) == 0);
    g.p = (uint8_t *)g.map + body - n;
    return g;
}

static void guarded_free(guarded *g)
{
    munmap(g->map, g->maplen);
}

/* ---- formats ---- */

static qk_piece pc(int field, int place, int first, int count, int lo, int width, int byte, int shift, int group)
{
    return (qk_piece){field, place, first, count, lo, width, byte, shift, group};
}

static const double nf4_table[16] = {-1.0,
                                     -0.6961928009986877,
                                     -0.5250730514526367,
                                     -0.39491748809814453,
                                     -0.28444138169288635,
                                     -0.18477343022823334,
                                     -0.09105003625154495,
                                     0.0,
                                     0.07958029955625534,
                                     0.16093020141124725,
                                     0.24611230194568634,
                                     0.33791524171066284,
                                     0.44070982933044434,
                                     0.5626170039176941,
                                     0.7229568362236023,
                                     1.0};
static const double dup_table[4] = {-1.5, 0.25, 0.25, 3.0};
static double big_table[256];

typedef struct fcase {
    const char *name;
    qk_format f;
} fcase;

static qk_format base(qk_code_kind code, int bits, int block)
{
    qk_format f = {0};
    f.code = code;
    f.bits = bits;
    f.block = block;
    f.min_sign = 1;
    return f;
}

static qk_format with_scale(qk_format f, qk_per per, qk_num n)
{
    f.scale_per = per;
    f.scale_num = n;
    return f;
}

static qk_format minifloat(int e, int m, int bias, qk_mf_special sp, int block)
{
    qk_format f = base(QK_CODE_MINIFLOAT, 1 + e + m, block);
    f.ebits = e, f.mbits = m, f.bias = bias, f.special = sp;
    return f;
}

static qk_format offset_code(int bits, int offset, int block)
{
    qk_format f = base(QK_CODE_OFFSET, bits, block);
    f.offset = offset;
    return f;
}

static void layout(qk_format *f, int n, const qk_piece *p)
{
    f->explicit_layout = 1;
    f->npieces = n;
    memcpy(f->pieces, p, (size_t)n * sizeof *p);
}

static qk_format q4_0(void)
{
    qk_format f = with_scale(offset_code(4, 8, 32), QK_PER_BLOCK, QK_NUM_F16);
    qk_piece p[] = {pc(QK_FIELD_SCALE, 0, 0, 1, 0, 16, 0, 0, 0), pc(QK_FIELD_CODES, 1, 0, 32, 0, 4, 2, 0, 16)};
    layout(&f, 2, p);
    return f;
}

static qk_format q4_1(void)
{
    qk_format f = with_scale(base(QK_CODE_UINT, 4, 32), QK_PER_BLOCK, QK_NUM_F16);
    f.min_num = QK_NUM_F16;
    qk_piece p[] = {pc(QK_FIELD_SCALE, 0, 0, 1, 0, 16, 0, 0, 0), pc(QK_FIELD_MIN, 0, 0, 1, 0, 16, 2, 0, 0),
                    pc(QK_FIELD_CODES, 1, 0, 32, 0, 4, 4, 0, 16)};
    layout(&f, 3, p);
    return f;
}

static qk_format q5_0(void)
{
    qk_format f = with_scale(offset_code(5, 16, 32), QK_PER_BLOCK, QK_NUM_F16);
    qk_piece p[] = {pc(QK_FIELD_SCALE, 0, 0, 1, 0, 16, 0, 0, 0), pc(QK_FIELD_CODES, 0, 0, 32, 4, 1, 2, 0, 0),
                    pc(QK_FIELD_CODES, 1, 0, 32, 0, 4, 6, 0, 16)};
    layout(&f, 3, p);
    return f;
}

static qk_format tq2_0(void)
{
    qk_format f = with_scale(base(QK_CODE_TERNARY, 2, 256), QK_PER_BLOCK, QK_NUM_F16);
    qk_piece p[] = {pc(QK_FIELD_CODES, 1, 0, 256, 0, 2, 0, 0, 32), pc(QK_FIELD_SCALE, 0, 0, 1, 0, 16, 64, 0, 0)};
    layout(&f, 2, p);
    return f;
}

static qk_format tq1_0(void)
{
    qk_format f = with_scale(base(QK_CODE_TERNARY, 2, 256), QK_PER_BLOCK, QK_NUM_F16);
    qk_piece p[] = {pc(QK_FIELD_CODES, 2, 0, 160, 0, 2, 0, 0, 32), pc(QK_FIELD_CODES, 2, 160, 80, 0, 2, 32, 0, 16),
                    pc(QK_FIELD_CODES, 2, 240, 16, 0, 2, 48, 0, 4), pc(QK_FIELD_SCALE, 0, 0, 1, 0, 16, 52, 0, 0)};
    layout(&f, 4, p);
    return f;
}

static qk_format q4_K(void)
{
    qk_format f = with_scale(base(QK_CODE_UINT, 4, 256), QK_PER_BLOCK, QK_NUM_F16);
    f.sub_block = 32, f.sub_num = QK_NUM_UINT, f.sub_bits = 6;
    f.min_num = QK_NUM_F16, f.min_sign = -1, f.submin_num = QK_NUM_UINT, f.submin_bits = 6;
    qk_piece p[] = {
        pc(QK_FIELD_SCALE, 0, 0, 1, 0, 16, 0, 0, 0),    pc(QK_FIELD_MIN, 0, 0, 1, 0, 16, 2, 0, 0),
        pc(QK_FIELD_SUBSCALE, 1, 0, 4, 0, 6, 4, 0, 4),  pc(QK_FIELD_SUBMIN, 1, 0, 4, 0, 6, 8, 0, 4),
        pc(QK_FIELD_SUBSCALE, 1, 4, 4, 0, 4, 12, 0, 4), pc(QK_FIELD_SUBMIN, 1, 4, 4, 0, 4, 12, 4, 4),
        pc(QK_FIELD_SUBSCALE, 1, 4, 4, 4, 2, 4, 6, 4),  pc(QK_FIELD_SUBMIN, 1, 4, 4, 4, 2, 8, 6, 4),
        pc(QK_FIELD_CODES, 1, 0, 256, 0, 4, 16, 0, 32),
    };
    layout(&f, 9, p);
    return f;
}

static qk_format mxfp4(void)
{
    qk_format f = with_scale(minifloat(2, 1, 1, QK_MF_FINITE, 32), QK_PER_BLOCK, QK_NUM_E8M0);
    qk_piece p[] = {pc(QK_FIELD_SCALE, 0, 0, 1, 0, 8, 0, 0, 0), pc(QK_FIELD_CODES, 1, 0, 32, 0, 4, 1, 0, 16)};
    layout(&f, 2, p);
    return f;
}

static qk_format nvfp4(void)
{
    qk_format f = with_scale(minifloat(2, 1, 1, QK_MF_FINITE, 16), QK_PER_BLOCK, QK_NUM_UE4M3);
    f.tensor_scale = 1;
    return f;
}

/* ue4m3 per 16 inside 64-element blocks (no super scale). */
static qk_format nvfp4_sub(void)
{
    qk_format f = with_scale(minifloat(2, 1, 1, QK_MF_FINITE, 64), QK_PER_BLOCK, QK_NUM_NONE);
    f.sub_block = 16, f.sub_num = QK_NUM_UE4M3;
    return f;
}

/* f32 sub-block scales streamed from bit 3: 32-bit items over 5 bytes. */
static qk_format f32_subs(void)
{
    qk_format f = with_scale(base(QK_CODE_SINT, 3, 32), QK_PER_BLOCK, QK_NUM_NONE);
    f.sub_block = 8, f.sub_num = QK_NUM_F32;
    qk_piece p[] = {pc(QK_FIELD_SUBSCALE, 0, 0, 4, 0, 32, 0, 3, 0), pc(QK_FIELD_CODES, 0, 0, 32, 0, 3, 17, 5, 0)};
    layout(&f, 2, p);
    return f;
}

/* One f32 scale per element, streamed from bit 4: 64 lanes span more
 * than 256 bytes (the decode gathers instead of loading a window). */
static qk_format f32_per1(void)
{
    qk_format f = with_scale(base(QK_CODE_UINT, 2, 72), QK_PER_BLOCK, QK_NUM_NONE);
    f.sub_block = 1, f.sub_num = QK_NUM_F32;
    qk_piece p[] = {pc(QK_FIELD_SUBSCALE, 0, 0, 72, 0, 32, 0, 4, 0), pc(QK_FIELD_CODES, 0, 0, 72, 0, 2, 289, 0, 0)};
    layout(&f, 2, p);
    return f;
}

static qk_format table_fmt(int bits, const double *t, int block, qk_num scale)
{
    qk_format f = with_scale(base(QK_CODE_TABLE, bits, block), scale ? QK_PER_BLOCK : QK_PER_NONE, scale);
    f.table = t;
    return f;
}

static qk_format vq(int bits, int dim, int books, int signs, qk_dtype dt, int block)
{
    qk_format f = base(QK_CODE_VQ, bits, block);
    f.vq_dim = dim, f.vq_books = books, f.vq_signs = signs, f.vq_dtype = dt;
    return f;
}

static qk_format sparse(qk_format f, int n, int m)
{
    f.sp_n = n, f.sp_m = m;
    return f;
}

static qk_format zero_block(qk_format f, qk_num z)
{
    f.zero = QK_ZERO_BLOCK;
    f.zero_num = z;
    return f;
}

static qk_format zero_const(qk_format f, double z)
{
    f.zero = QK_ZERO_CONST;
    f.zero_const = z;
    return f;
}

/* Explicit stream pieces that start mid-byte and straddle bytes. */
static qk_format odd_stream(void)
{
    qk_format f = with_scale(base(QK_CODE_SINT, 5, 24), QK_PER_BLOCK, QK_NUM_BF16);
    qk_piece p[] = {pc(QK_FIELD_CODES, 0, 0, 10, 0, 5, 0, 3, 0), pc(QK_FIELD_SCALE, 0, 0, 1, 0, 16, 7, 1, 0),
                    pc(QK_FIELD_CODES, 0, 10, 14, 2, 3, 9, 1, 0), pc(QK_FIELD_CODES, 0, 10, 14, 0, 2, 15, 0, 0)};
    layout(&f, 4, p);
    return f;
}

static qk_format two_level_sparse(void)
{
    qk_format f = with_scale(base(QK_CODE_UINT, 4, 32), QK_PER_BLOCK, QK_NUM_F16);
    f.sub_block = 16, f.sub_num = QK_NUM_UINT, f.sub_bits = 4;
    f.min_num = QK_NUM_BF16, f.min_sign = -1, f.submin_num = QK_NUM_UINT, f.submin_bits = 5;
    return sparse(f, 2, 4);
}

static int build_cases(fcase *c)
{
    int n = 0;
    for (int i = 0; i < 256; i++)
        big_table[i] = (i - 100) * 0.37 + (i % 7) * 0.01;
    c[n++] = (fcase){"q4_0", q4_0()};
    c[n++] = (fcase){"q4_1", q4_1()};
    c[n++] = (fcase){"q5_0", q5_0()};
    c[n++] = (fcase){"q8_0", with_scale(base(QK_CODE_SINT, 8, 32), QK_PER_BLOCK, QK_NUM_F16)};
    c[n++] = (fcase){"tq2_0", tq2_0()};
    c[n++] = (fcase){"tq1_0", tq1_0()};
    c[n++] = (fcase){"q4_K", q4_K()};
    c[n++] = (fcase){"mxfp4", mxfp4()};
    c[n++] = (fcase){"nvfp4", nvfp4()};
    c[n++] = (fcase){"nvfp4_sub", nvfp4_sub()};
    c[n++] = (fcase){"f32_subs", f32_subs()};
    c[n++] = (fcase){"f32_per1", f32_per1()};
    c[n++] = (fcase){"e4m3_e8m0", with_scale(minifloat(4, 3, 7, QK_MF_FN, 32), QK_PER_BLOCK, QK_NUM_E8M0)};
    c[n++] = (fcase){"e5m2_row_f32", with_scale(minifloat(5, 2, 15, QK_MF_IEEE, 32), QK_PER_ROW, QK_NUM_F32)};
    c[n++] = (fcase){"e3m2_tensor", with_scale(minifloat(3, 2, 3, QK_MF_FINITE, 16), QK_PER_TENSOR, QK_NUM_F16)};
    c[n++] = (fcase){"e2m3_none", minifloat(2, 3, 1, QK_MF_FINITE, 8)};
    c[n++] = (fcase){"nf4", table_fmt(4, nf4_table, 64, QK_NUM_F16)};
    c[n++] = (fcase){"table8", table_fmt(8, big_table, 8, QK_NUM_F32)};
    c[n++] = (fcase){"table2_dup", table_fmt(2, dup_table, 16, QK_NUM_E4M3)};
    c[n++] = (fcase){"vq_2x8_row", with_scale(vq(8, 8, 2, 0, QK_DT_F16, 32), QK_PER_ROW, QK_NUM_F16)};
    c[n++] = (fcase){"vq_1x16", vq(16, 8, 1, 0, QK_DT_F16, 16)};
    c[n++] = (fcase){"vq_signs", with_scale(vq(8, 8, 1, 1, QK_DT_F32, 32), QK_PER_BLOCK, QK_NUM_F16)};
    c[n++] = (fcase){"vq_signs33", with_scale(vq(4, 33, 3, 1, QK_DT_F16, 66), QK_PER_BLOCK, QK_NUM_BF16)};
    c[n++] = (fcase){"vq_dim1_4books", vq(3, 1, 4, 0, QK_DT_F32, 8)};
    c[n++] = (fcase){"sparse_2_4_q8", sparse(with_scale(base(QK_CODE_SINT, 8, 32), QK_PER_BLOCK, QK_NUM_F16), 2, 4)};
    c[n++] = (fcase){"sparse_3_8_tern", sparse(with_scale(base(QK_CODE_TERNARY, 2, 16), QK_PER_ROW, QK_NUM_F32), 3, 8)};
    c[n++] = (fcase){"sparse_two_level", two_level_sparse()};
    c[n++] = (fcase){"zero_u8", zero_block(with_scale(base(QK_CODE_UINT, 4, 32), QK_PER_BLOCK, QK_NUM_F16), QK_NUM_U8)};
    c[n++] = (fcase){"zero_i8", zero_block(with_scale(base(QK_CODE_SINT, 4, 16), QK_PER_BLOCK, QK_NUM_F32), QK_NUM_I8)};
    c[n++] = (fcase){"zero_f16", zero_block(with_scale(base(QK_CODE_UINT, 3, 24), QK_PER_BLOCK, QK_NUM_BF16), QK_NUM_F16)};
    c[n++] = (fcase){"zero_f32", zero_block(with_scale(offset_code(6, 20, 8), QK_PER_BLOCK, QK_NUM_F16), QK_NUM_F32)};
    c[n++] = (fcase){"zero_const", zero_const(with_scale(base(QK_CODE_UINT, 4, 32), QK_PER_BLOCK, QK_NUM_F16), 7.5)};
    c[n++] = (fcase){"int3_bf16", with_scale(base(QK_CODE_SINT, 3, 40), QK_PER_BLOCK, QK_NUM_BF16)};
    c[n++] = (fcase){"uint7_e8m0", with_scale(base(QK_CODE_UINT, 7, 16), QK_PER_BLOCK, QK_NUM_E8M0)};
    c[n++] = (fcase){"odd_stream", odd_stream()};
    c[n++] = (fcase){"binary_row", with_scale(base(QK_CODE_BINARY, 1, 64), QK_PER_ROW, QK_NUM_F16)};
    c[n++] = (fcase){"binary_block", with_scale(base(QK_CODE_BINARY, 1, 24), QK_PER_BLOCK, QK_NUM_F32)};
    c[n++] = (fcase){"int4_tensor", with_scale(base(QK_CODE_SINT, 4, 32), QK_PER_TENSOR, QK_NUM_F32)};
    c[n++] = (fcase){"int8_none", base(QK_CODE_SINT, 8, 16)};
    c[n++] = (fcase){"tern_e8m0", with_scale(base(QK_CODE_TERNARY, 2, 32), QK_PER_BLOCK, QK_NUM_E8M0)};
    return n;
}

static void finish(fcase *c)
{
    char err[256] = "";
    c->f.name = c->name;
    int rc = qk_format_finish(&c->f, err, sizeof err);
    if (rc)
        printf("\n%s: %s\n", c->name, err);
    CU_ASSERT_FATAL(rc == 0);
}

/* ---- building test functions ---- */

enum { A_PACKED, A_BOOK, A_OUT, A_BEGIN, A_END, NARGS };

typedef struct tf {
    tir_func *f;
    int arg[NARGS];
} tf;

static void tf_init(tf *t, qk_arena *a, const char *name)
{
    static const tir_arg args[NARGS] = {{"packed", TS_PTR, QK_DT_U8, 1},
                                        {"book", TS_PTR, QK_DT_U8, 1},
                                        {"out", TS_PTR, QK_DT_F32, 0},
                                        {"begin", TS_I64, QK_DT_NONE, 0},
                                        {"end", TS_I64, QK_DT_NONE, 0}};
    tir_func *f = tir_func_new(a, name);
    f->args = qk_alloc(a, sizeof args);
    memcpy(f->args, args, sizeof args);
    f->nargs = NARGS;
    f->arg_begin = A_BEGIN;
    f->arg_end = A_END;
    f->cfg = (tir_config){.lanes = 16, .tile_par = 1, .tile_inner = 1, .unroll = 1};
    for (int i = 0; i < NARGS; i++) {
        t->arg[i] = tir_emit(f, f->entry, TIR_ARG, tir_t(args[i].s, 1), -1, -1, -1, -1);
        f->nodes[t->arg[i]].imm = i;
    }
    t->f = f;
}

static int c64(tir_func *f, int b, int64_t v)
{
    return tir_const_i(f, b, TS_I64, 1, v);
}

static int bin(tir_func *f, int b, tir_op op, int x, int y)
{
    return tir_emit(f, b, op, f->nodes[x].type, x, y, -1, -1);
}

static int loop(tir_func *f, int b, int lo, int hi, int step, tir_loop_kind kind, const char *name, int *body)
{
    return tir_loop(f, b, lo, hi, step, kind, name, body);
}

/* What a region of the output holds. */
/* R_PAIRED: values of 16-lane chunk pairs decoded with TDEC_PAIRED where
 * the pass's target allows it (tdec_paired_ok), lane l of half h holding
 * item tdec_paired_item(l, h) of the pair; elsewhere in sequence */
typedef enum { R_VALUES, R_CODES, R_POSITIONS, R_FACTORED, R_ELEMENTS, R_PAIRED } rkind;

typedef struct region {
    rkind kind;
    int lanes, stride, is_const;
    int64_t base; /* first f32 of the output */
} region;

typedef struct geom {
    const qk_format *fm;
    int64_t rows, k, nblocks, rowbytes;
    int lut_f32; /* tdec_src.lut_f32: 0 = select trees and arithmetic */
    int byte_perm; /* tdec_src.byte_perm */
} geom;

static int region_items(const geom *g, rkind kind)
{
    if (kind == R_CODES)
        return g->fm->items[QK_FIELD_CODES];
    return g->fm->sp_n ? g->fm->kept : g->fm->block;
}

/* f32 x lanes of one chunk of a region. */
static int chunk_value(tir_func *f, int b, const tdec_src *s, const region *rg, int kb, int first, int fc)
{
    int v;
    tir_type t;
    switch (rg->kind) {
    case R_CODES: v = tdec_codes(f, b, s, kb, first, fc, rg->lanes); break;
    case R_POSITIONS: v = tdec_positions(f, b, s, kb, first, fc, rg->lanes); break;
    case R_FACTORED: {
        int u = tdec_chunk(f, b, s, kb, first, fc, rg->lanes, TDEC_UNSCALED);
        int sc = tdec_scale(f, b, s, kb);
        if (rg->lanes > 1)
            sc = tir_emit(f, b, TIR_SPLAT, tir_t(TS_F32, rg->lanes), sc, -1, -1, -1);
        return bin(f, b, TIR_FMUL, u, sc);
    }
    case R_PAIRED:
        return tdec_chunk(f, b, s, kb, first, fc, rg->lanes,
                          tdec_paired_ok(s->fmt, rg->lanes, s->lut_f32, s->byte_perm) ? TDEC_PAIRED : 0);
    default: return tdec_chunk(f, b, s, kb, first, fc, rg->lanes, 0);
    }
    t = f->nodes[v].type;
    return tir_emit(f, b, TIR_SITOFP, tir_t(TS_F32, t.lanes), v, -1, -1, -1);
}

/* Constant-first chunks of a region: every chunk for 8 lanes or more,
 * else at most 16 spread over the block (the first and last included);
 * returns how many, firsts in out. */
static int const_firsts(int n, const region *rg, int *out)
{
    int all = (n + rg->stride - 1) / rg->stride, cnt = 0;
    int want = rg->lanes >= 8 || all <= 16 ? all : 16;
    for (int i = 0; i < want; i++) {
        int c = want > 1 ? (int)((int64_t)i * (all - 1) / (want - 1)) : 0;
        out[cnt++] = c * rg->stride;
    }
    return cnt;
}

/* Mask of lanes first + l < n (first: i64 node). */
static int tail_mask(tir_func *f, int b, int first, int lanes, int n)
{
    if (lanes == 1)
        return tir_emit(f, b, TIR_ILT, tir_t(TS_I1, 1), first, c64(f, b, n), -1, -1);
    int32_t io[64];
    for (int l = 0; l < lanes; l++)
        io[l] = l;
    int iv = tir_emit(f, b, TIR_SPLAT, tir_t(TS_I64, lanes), first, -1, -1, -1);
    iv = bin(f, b, TIR_ADD, iv, tir_const_lanes(f, b, TS_I64, lanes, io));
    int lim = tir_const_i(f, b, TS_I64, lanes, n);
    return tir_emit(f, b, TIR_ILT, tir_t(TS_I1, lanes), iv, lim, -1, -1);
}

static void store_chunk(tir_func *f, int b, int out, const region *rg, int slot, int first, int v, int mask)
{
    int off = bin(f, b, TIR_ADD, slot, first);
    off = bin(f, b, TIR_MUL, bin(f, b, TIR_ADD, off, c64(f, b, rg->base)), c64(f, b, 4));
    tir_emit(f, b, TIR_STORE, tir_t(TS_VOID, 1), out, off, v, mask);
}

/* Every block of the row: chunks of the region. */
static void emit_region(tf *t, int b, const tdec_src *s, const geom *g, const region *rg, int r)
{
    tir_func *f = t->f;
    int n = region_items(g, rg->kind), kbody;
    int kb = loop(f, b, c64(f, b, 0), c64(f, b, g->nblocks), c64(f, b, 1), TL_SERIAL, "kb", &kbody);
    int slot = bin(f, kbody, TIR_MUL, bin(f, kbody, TIR_ADD, bin(f, kbody, TIR_MUL, r, c64(f, kbody, g->nblocks)), kb),
                   c64(f, kbody, n));
    if (rg->is_const) {
        int firsts[QK_MAX_BLOCK], nf = const_firsts(n, rg, firsts);
        for (int i = 0; i < nf; i++) {
            int first = firsts[i], fn = c64(f, kbody, first);
            int v = chunk_value(f, kbody, s, rg, kb, fn, first);
            int mask = first + rg->lanes > n ? tail_mask(f, kbody, fn, rg->lanes, n) : -1;
            store_chunk(f, kbody, t->arg[A_OUT], rg, slot, fn, v, mask);
        }
        return;
    }
    int cb;
    int first = loop(f, kbody, c64(f, kbody, 0), c64(f, kbody, n), c64(f, kbody, rg->stride), TL_SERIAL, "c", &cb);
    int v = chunk_value(f, cb, s, rg, kb, first, -1);
    store_chunk(f, cb, t->arg[A_OUT], rg, slot, first, v, tail_mask(f, cb, first, rg->lanes, n));
}

static void emit_elements(tf *t, int b, const tdec_src *s, const geom *g, const region *rg, int r)
{
    tir_func *f = t->f;
    int body;
    int k = loop(f, b, c64(f, b, 0), c64(f, b, g->k), c64(f, b, 1), TL_SERIAL, "k", &body);
    int v = tdec_element(f, body, s, k);
    int slot = bin(f, body, TIR_MUL, r, c64(f, body, g->k));
    store_chunk(f, body, t->arg[A_OUT], rg, slot, k, v, -1);
}

static tir_func *decode_func(qk_arena *a, const geom *g, const region *rg, int nreg)
{
    tf t;
    tf_init(&t, a, "decode");
    tir_func *f = t.f;
    int body;
    int r = loop(f, f->entry, t.arg[A_BEGIN], t.arg[A_END], c64(f, f->entry, 1), TL_PARALLEL, "r", &body);
    int row = bin(f, body, TIR_ADD, bin(f, body, TIR_MUL, r, c64(f, body, g->rowbytes)),
                  c64(f, body, g->fm->tensor_header_bytes));
    tdec_src s = {g->fm, t.arg[A_PACKED], row, g->fm->code == QK_CODE_VQ ? t.arg[A_BOOK] : -1, g->lut_f32 > 0, g->lut_f32,
                  g->byte_perm};
    for (int i = 0; i < nreg; i++) {
        if (rg[i].kind == R_ELEMENTS)
            emit_elements(&t, body, &s, g, &rg[i], r);
        else
            emit_region(&t, body, &s, g, &rg[i], r);
    }
    return f;
}

/* ---- running ---- */

typedef void (*decode_fn)(const uint8_t *, const void *, float *, int64_t, int64_t);

typedef struct jit {
    void *st;
    qk_code code;
} jit;

static void *jit_compile(jit *j, tir_func *f)
{
    char err[1024] = "";
    int rc = tir_verify(f, err, sizeof err);
    if (rc)
        printf("\n%s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    qk_target t;
    qk_target_host(&t);
    CU_ASSERT_FATAL(qk_backend_llvm.create(&t, &j->st, err, sizeof err) == 0);
    rc = qk_backend_llvm.compile(j->st, f, &j->code, err, sizeof err);
    if (rc)
        printf("\ncompile: %s\n", err);
    CU_ASSERT_FATAL(rc == 0);
    return j->code.fn;
}

static void jit_free(jit *j)
{
    qk_backend_llvm.release(j->st, &j->code);
    qk_backend_llvm.destroy(j->st);
}

/* Distance in units in the last place (0 when equal or both NaN). */
static int64_t ulps(float a, float b)
{
    if (a == b || (isnan(a) && isnan(b)))
        return 0;
    if (isnan(a) || isnan(b))
        return INT64_MAX;
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    int64_t oa = ia < 0 ? (int64_t)INT32_MIN - ia : ia, ob = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
    return oa > ob ? oa - ob : ob - oa;
}

/* Products of several scale terms, a float zero point subtracted in f32
 * and sums of more than two codebooks may round differently from the
 * exact double formula. */
static int tolerance(const qk_format *f)
{
    int reordered = f->sub_block || f->min_num || f->tensor_scale || (f->code == QK_CODE_VQ && f->vq_books > 2);
    int zero_float = f->zero == QK_ZERO_CONST || (f->zero == QK_ZERO_BLOCK && (f->zero_num == QK_NUM_F16 ||
                                                                               f->zero_num == QK_NUM_F32));
    return reordered || zero_float ? 2 : 0;
}

typedef struct dataset {
    const char *what;
    const uint8_t *packed;
    const void *book;
} dataset;

static const uint8_t *block_at(const geom *g, const uint8_t *p, int64_t r, int64_t kb)
{
    return p + g->fm->tensor_header_bytes + r * g->rowbytes + g->fm->row_header_bytes + kb * g->fm->block_bytes;
}

/* The kept item j of a block is reached by qk_format_get at its position
 * unless an earlier item of its group has the same index (random bytes). */
static int kept_pos(const qk_format *f, const uint8_t *blk, int j)
{
    int g = j / f->sp_n, idx = (int)qk_format_item(f, blk, QK_FIELD_INDEX, j);
    for (int i = g * f->sp_n; i < j; i++)
        if ((int)qk_format_item(f, blk, QK_FIELD_INDEX, i) == idx)
            return -1;
    return g * f->sp_m + idx;
}

/* Expected value of item j of block kb of row r for a region; 0 = skip. */
static int expect_item(const geom *g, const dataset *ds, rkind kind, int64_t r, int64_t kb, int j, float *want)
{
    const qk_format *f = g->fm;
    const uint8_t *blk = block_at(g, ds->packed, r, kb);
    if (kind == R_CODES) {
        *want = (float)qk_format_item(f, blk, QK_FIELD_CODES, j);
        return 1;
    }
    int pos = f->sp_n ? kept_pos(f, blk, j) : j;
    if (kind == R_POSITIONS) {
        *want = (float)(j / f->sp_n * f->sp_m + (int)qk_format_item(f, blk, QK_FIELD_INDEX, j));
        return 1;
    }
    if (pos < 0)
        return 0;
    *want = (float)qk_format_get(f, ds->packed, r, g->k, kb * f->block + pos, ds->book);
    return 1;
}

/* Items of a region that its chunks write. */
static void written_items(const geom *g, const region *rg, int n, char *w)
{
    if (rg->kind == R_ELEMENTS || !rg->is_const) {
        memset(w, 1, (size_t)n);
        return;
    }
    int firsts[QK_MAX_BLOCK], nf = const_firsts(n, rg, firsts);
    memset(w, 0, (size_t)n);
    for (int i = 0; i < nf; i++)
        for (int l = 0; l < rg->lanes && firsts[i] + l < n; l++)
            w[firsts[i] + l] = 1;
}

static int check_region(const geom *g, const dataset *ds, const region *rg, const float *out)
{
    int tol = rg->kind == R_FACTORED ? 2 : tolerance(g->fm), bad = 0;
    int64_t nb = rg->kind == R_ELEMENTS ? 1 : g->nblocks;
    int n = rg->kind == R_ELEMENTS ? (int)g->k : region_items(g, rg->kind);
    char *w = malloc((size_t)n);
    written_items(g, rg, n, w);
    for (int64_t r = 0; r < g->rows; r++) {
        for (int64_t kb = 0; kb < nb; kb++)
            for (int j = 0; j < n; j++) {
                float want, got = out[rg->base + (r * nb + kb) * n + j];
                if (!w[j])
                    continue;
                int item = j; /* a paired chunk's lane j holds item `item` */
                if (rg->kind == R_PAIRED && tdec_paired_ok(g->fm, rg->lanes, g->lut_f32, g->byte_perm))
                    item = j - j % (2 * rg->lanes) + tdec_paired_item(j % rg->lanes, j % (2 * rg->lanes) / rg->lanes);
                if (rg->kind == R_ELEMENTS)
                    want = (float)qk_format_get(g->fm, ds->packed, r, g->k, j, ds->book);
                else if (!expect_item(g, ds, rg->kind, r, kb, item, &want))
                    continue;
                if (ulps(want, got) <= tol)
                    continue;
                if (bad++ < 4)
                    printf("\n  %s %s: region kind %d lanes %d %s stride %d: row %lld block %lld item %d: got %.9g "
                           "want %.9g",
                           g->fm->name, ds->what, rg->kind, rg->lanes, rg->is_const ? "const" : "rt", rg->stride,
                           (long long)r, (long long)kb, j, got, want);
            }
    }
    free(w);
    return bad;
}

/* ---- decode test ---- */

static int64_t region_size(const geom *g, rkind kind)
{
    return kind == R_ELEMENTS ? g->rows * g->k : g->rows * g->nblocks * region_items(g, kind);
}

static int plan_regions(const geom *g, region *rg)
{
    static const struct {
        int lanes, stride, is_const;
    } shapes[] = {{64, 61, 1}, {16, 16, 1}, {8, 7, 1}, {4, 4, 1}, {1, 1, 1},
                  {16, 15, 0}, {8, 8, 0}, {4, 3, 0}, {1, 1, 0}};
    const qk_format *f = g->fm;
    int n = 0;
    int64_t at = 0;
    for (int i = 0; i < QK_COUNT(shapes); i++)
        rg[n++] = (region){R_VALUES, shapes[i].lanes, shapes[i].stride, shapes[i].is_const, 0};
    rg[n++] = (region){R_CODES, 8, 8, 1, 0};
    rg[n++] = (region){R_CODES, 4, 3, 0, 0};
    if (f->sp_n) {
        rg[n++] = (region){R_POSITIONS, 8, 8, 1, 0};
        rg[n++] = (region){R_POSITIONS, 4, 3, 0, 0};
    }
    if (tdec_scale_factorable(f))
        rg[n++] = (region){R_FACTORED, 8, 8, 1, 0};
    if (tdec_paired_ok(f, 16, 64, 1))
        rg[n++] = (region){R_PAIRED, 16, 16, 1, 0};
    rg[n++] = (region){R_ELEMENTS, 1, 1, 0, 0};
    for (int i = 0; i < n; i++) {
        rg[i].base = at;
        at += region_size(g, rg[i].kind);
    }
    return n;
}

static void *make_book(const qk_format *f, uint64_t *seed)
{
    int64_t n = qk_format_codebook_elems(f);
    if (!n)
        return NULL;
    if (f->vq_dtype == QK_DT_F16) {
        uint16_t *b = malloc((size_t)n * 2);
        for (int64_t i = 0; i < n; i++)
            b[i] = qk_f32_to_f16(rng_float(seed) * 2.0f);
        return b;
    }
    float *b = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++)
        b[i] = rng_float(seed) * 2.0f;
    return b;
}

static int run_dataset(decode_fn fn, const geom *g, const dataset *ds, const region *rg, int nreg, int64_t total)
{
    float *out = calloc((size_t)total, sizeof *out);
    fn(ds->packed, ds->book, out, 0, g->rows);
    int bad = 0;
    for (int i = 0; i < nreg; i++)
        bad += check_region(g, ds, &rg[i], out);
    free(out);
    return bad;
}

/* One format's inputs: packed random values and random bytes. */
typedef struct fdata {
    geom g;
    guarded gp, gn;
    void *book;
    dataset ds[2];
} fdata;

static void fdata_init(fdata *d, fcase *c, uint64_t seed)
{
    finish(c);
    const qk_format *f = &c->f;
    geom g = {f, 2, 2 * f->block + f->block / 2 + 1, 0, 0};
    g.nblocks = (g.k + f->block - 1) / f->block;
    g.rowbytes = qk_format_row_bytes(f, g.k);
    d->g = g;
    int64_t size = qk_format_size(f, g.rows, g.k);
    d->gp = guarded_alloc((size_t)size), d->gn = guarded_alloc((size_t)size);
    float *x = malloc(sizeof(float) * (size_t)(g.rows * g.k));
    for (int64_t i = 0; i < g.rows * g.k; i++)
        x[i] = rng_float(&seed) * (1.0f + (float)(i % 5));
    for (int64_t i = 0; i < size; i++)
        d->gn.p[i] = (uint8_t)rng_next(&seed);
    d->book = make_book(f, &seed);
    qk_pack_opts opts = {d->book, 0};
    char err[256] = "";
    CU_ASSERT_FATAL(qk_format_pack(f, x, g.rows, g.k, d->gp.p, &opts, err, sizeof err) == 0);
    free(x);
    d->ds[0] = (dataset){"packed", d->gp.p, d->book};
    d->ds[1] = (dataset){"random bytes", d->gn.p, d->book};
}

static void fdata_free(fdata *d)
{
    guarded_free(&d->gp), guarded_free(&d->gn);
    free(d->book);
}

/* Runs fn on both datasets; the number of mismatches. */
static int fdata_check(fdata *d, decode_fn fn, const region *rg, int nreg)
{
    int64_t total = rg[nreg - 1].base + region_size(&d->g, rg[nreg - 1].kind);
    int bad = run_dataset(fn, &d->g, &d->ds[0], rg, nreg, total) + run_dataset(fn, &d->g, &d->ds[1], rg, nreg, total);
    if (bad)
        printf("\n  %s: %d mismatches\n", d->g.fm->name, bad);
    return bad;
}

static void test_one_format(fcase *c, uint64_t seed)
{
    fdata d;
    fdata_init(&d, c, seed);
    region rg[24];
    int nreg = plan_regions(&d.g, rg);
    /* decoded as for a GPU thread (select trees, arithmetic, byte loads),
     * then as for a CPU: wide loads, f32 table lookups (LUT) of up to 64
     * entries for tables and minifloats (vpermps and vpermi2ps on AVX-512,
     * a gather elsewhere), 8-bit minifloat scales from a 256-entry table;
     * then also with whole-vector byte shuffles (AVX512-VBMI: bytes
     * widened by a shuffle and a shift, 8-bit minifloats put in the high
     * bytes of words for pairs of chunks; LLVM lowers the shuffles on any
     * host) */
    for (int pass = 0; pass < 3; pass++) {
        qk_arena *a = qk_arena_new();
        jit j;
        d.g.lut_f32 = pass ? 64 : 0;
        d.g.byte_perm = pass == 2;
        decode_fn fn = (decode_fn)jit_compile(&j, decode_func(a, &d.g, rg, nreg));
        CU_ASSERT(fdata_check(&d, fn, rg, nreg) == 0);
        jit_free(&j);
        qk_arena_free(a);
    }
    fdata_free(&d);
}

static void test_decode_formats(void)
{
    fcase c[64];
    int n = build_cases(c);
    for (int i = 0; i < n; i++)
        test_one_format(&c[i], 0x9e3779b97f4a7c15ull + (uint64_t)i);
}

/* ---- encode test ---- */

enum { E_X, E_DST, E_BEGIN, E_END, E_NARGS };

static tir_func *encode_func(qk_arena *a, const geom *g, int lanes)
{
    static const tir_arg args[E_NARGS] = {{"x", TS_PTR, QK_DT_F32, 1},
                                          {"dst", TS_PTR, QK_DT_U8, 0},
                                          {"begin", TS_I64, QK_DT_NONE, 0},
                                          {"end", TS_I64, QK_DT_NONE, 0}};
    tir_func *f = tir_func_new(a, "encode");
    f->args = qk_alloc(a, sizeof args);
    memcpy(f->args, args, sizeof args);
    f->nargs = E_NARGS, f->arg_begin = E_BEGIN, f->arg_end = E_END;
    f->cfg = (tir_config){.lanes = 16, .tile_par = 1, .tile_inner = 1, .unroll = 1};
    int arg[E_NARGS], body;
    for (int i = 0; i < E_NARGS; i++) {
        arg[i] = tir_emit(f, f->entry, TIR_ARG, tir_t(args[i].s, 1), -1, -1, -1, -1);
        f->nodes[arg[i]].imm = i;
    }
    int r = loop(f, f->entry, arg[E_BEGIN], arg[E_END], c64(f, f->entry, 1), TL_PARALLEL, "r", &body);
    int row = bin(f, body, TIR_ADD, bin(f, body, TIR_MUL, r, c64(f, body, g->rowbytes)),
                  c64(f, body, g->fm->tensor_header_bytes));
    int xoff = bin(f, body, TIR_MUL, r, c64(f, body, g->k * 4));
    tdec_src s = {g->fm, arg[E_DST], row, -1};
    tdec_encode_row(f, body, &s, arg[E_X], xoff, c64(f, body, g->k), lanes);
    return f;
}

/* Rows of inputs with the edge cases of the quantizer rules: ties of |x|
 * between signs, zeros, NaN and infinities, tiny and huge values. */
static void fill_encode_input(float *x, int64_t rows, int64_t k, uint64_t *seed)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t i = 0; i < k; i++) {
            float v = rng_float(seed) * (float)(1 + r);
            switch (r) {
            case 1: v = (i % 3 == 0) ? 3.0f : (i % 3 == 1 ? -3.0f : v); break;
            case 2: v = 0.0f; break;
            case 3: v = i == 5 ? NAN : v; break;
            case 4: v = i == 7 ? INFINITY : (i == 9 ? -INFINITY : v); break;
            case 5: v *= 1e-39f; break;
            case 6: v *= 3e37f; break;
            case 7: v = -fabsf(v); break;
            case 8: v = fabsf(v) * 1e5f; break;
            case 9: v = (float)((int)(i % 5) - 2) * 0.5f; break; /* amax 1: ties of x / d */
            case 10: v = (float)((int)(i % 17) - 8) + 0.5f; break; /* ties without a scale */
            default: break;
            }
            x[r * k + i] = v;
        }
}

/* One kernel-quantizable format's inputs and qk_format_pack's bytes. */
typedef struct edata {
    geom g;
    float *x;
    uint8_t *want;
    guarded got;
    int64_t size;
} edata;

typedef void (*encode_fn)(const float *, uint8_t *, int64_t, int64_t);

static void edata_init(edata *e, fcase *c, uint64_t seed)
{
    finish(c);
    const qk_format *f = &c->f;
    char why[256];
    CU_ASSERT_FATAL(qk_format_kernel_quantizable(f, why, sizeof why));
    geom g = {f, 11, 3 * f->block + f->block / 3 + 2, 0, 0};
    g.nblocks = (g.k + f->block - 1) / f->block;
    g.rowbytes = qk_format_row_bytes(f, g.k);
    e->g = g;
    e->size = qk_format_size(f, g.rows, g.k);
    e->x = malloc(sizeof(float) * (size_t)(g.rows * g.k));
    fill_encode_input(e->x, g.rows, g.k, &seed);
    e->got = guarded_alloc((size_t)e->size);
    e->want = malloc((size_t)e->size);
    char err[256];
    CU_ASSERT_FATAL(qk_format_pack(f, e->x, g.rows, g.k, e->want, NULL, err, sizeof err) == 0);
}

/* Runs fn on garbage-filled rows; the number of bytes that differ. */
static int edata_check(edata *e, encode_fn fn)
{
    const qk_format *f = e->g.fm;
    uint8_t *got = e->got.p;
    memset(got, 0xa5, (size_t)e->size);
    memset(got, 0, (size_t)f->tensor_header_bytes);
    fn(e->x, got, 0, e->g.rows);
    int bad = 0;
    for (int64_t i = 0; i < e->size; i++)
        if (got[i] != e->want[i] && bad++ < 4)
            printf("\n  %s: byte %lld (row %lld): got %02x want %02x", f->name, (long long)i,
                   (long long)((i - f->tensor_header_bytes) / e->g.rowbytes), got[i], e->want[i]);
    return bad;
}

static void edata_free(edata *e)
{
    guarded_free(&e->got);
    free(e->x), free(e->want);
}

/* Scalar loops (lanes 1) and the vector encoder of byte codes (4, 16
 * f32 lanes; formats without byte codes take the scalar loops there
 * too): the same bytes as qk_format_pack. */
static void test_encode_one(fcase *c, uint64_t seed)
{
    edata e;
    edata_init(&e, c, seed);
    static const int lanes[] = {1, 4, 8, 16};
    for (int i = 0; i < 4; i++) {
        qk_arena *a = qk_arena_new();
        jit j;
        encode_fn fn = (encode_fn)jit_compile(&j, encode_func(a, &e.g, lanes[i]));
        int bad = edata_check(&e, fn);
        if (bad)
            printf("\n  (%d lanes)", lanes[i]);
        CU_ASSERT(bad == 0);
        jit_free(&j);
        qk_arena_free(a);
    }
    edata_free(&e);
}

static int encode_cases(fcase *c)
{
    fcase list[] = {
        {"q8_0", with_scale(base(QK_CODE_SINT, 8, 32), QK_PER_BLOCK, QK_NUM_F16)},
        {"q4_0", q4_0()},
        {"q5_0", q5_0()},
        {"tq2_0", tq2_0()},
        {"mxfp4", mxfp4()},
        {"int3_bf16", with_scale(base(QK_CODE_SINT, 3, 40), QK_PER_BLOCK, QK_NUM_BF16)},
        {"uint4_f32", with_scale(base(QK_CODE_UINT, 4, 32), QK_PER_BLOCK, QK_NUM_F32)},
        {"uint7_e8m0", with_scale(base(QK_CODE_UINT, 7, 16), QK_PER_BLOCK, QK_NUM_E8M0)},
        {"int8_row_f32", with_scale(base(QK_CODE_SINT, 8, 64), QK_PER_ROW, QK_NUM_F32)},
        {"uint8_f16", with_scale(base(QK_CODE_UINT, 8, 64), QK_PER_BLOCK, QK_NUM_F16)},
        {"int8_b8_f32", with_scale(base(QK_CODE_SINT, 8, 8), QK_PER_BLOCK, QK_NUM_F32)},
        {"int2_e8m0", with_scale(base(QK_CODE_SINT, 2, 8), QK_PER_BLOCK, QK_NUM_E8M0)},
        {"tern_row_bf16", with_scale(base(QK_CODE_TERNARY, 2, 16), QK_PER_ROW, QK_NUM_BF16)},
        {"binary_row", with_scale(base(QK_CODE_BINARY, 1, 64), QK_PER_ROW, QK_NUM_F16)},
        {"binary_block", with_scale(base(QK_CODE_BINARY, 1, 24), QK_PER_BLOCK, QK_NUM_F32)},
        {"binary_b32", with_scale(base(QK_CODE_BINARY, 1, 32), QK_PER_BLOCK, QK_NUM_F16)},
        {"binary_none", base(QK_CODE_BINARY, 1, 64)},
        {"e4m3_f16", with_scale(minifloat(4, 3, 7, QK_MF_FN, 32), QK_PER_BLOCK, QK_NUM_F16)},
        {"e5m2_row", with_scale(minifloat(5, 2, 15, QK_MF_IEEE, 32), QK_PER_ROW, QK_NUM_F32)},
        {"e3m2_e8m0", with_scale(minifloat(3, 2, 3, QK_MF_FINITE, 32), QK_PER_BLOCK, QK_NUM_E8M0)},
        {"e2m3_bf16", with_scale(minifloat(2, 3, 1, QK_MF_FINITE, 16), QK_PER_BLOCK, QK_NUM_BF16)},
        {"e4m3_none", minifloat(4, 3, 7, QK_MF_FN, 16)},
        {"int8_none", base(QK_CODE_SINT, 8, 16)},
        {"offset5_none", offset_code(5, 3, 8)},
        {"offset4_e8m0", with_scale(offset_code(4, 8, 32), QK_PER_BLOCK, QK_NUM_E8M0)},
        {"offset3_row_bf16", with_scale(offset_code(3, 2, 16), QK_PER_ROW, QK_NUM_BF16)},
        {"odd_stream", odd_stream()},
    };
    memcpy(c, list, sizeof list);
    return QK_COUNT(list);
}

static void test_encode_formats(void)
{
    fcase c[32];
    int n = encode_cases(c);
    for (int i = 0; i < n; i++)
        test_encode_one(&c[i], 0x1234567ull + (uint64_t)i);
}

/* ---- the new ops ---- */

static tir_func *ops_func(qk_arena *a, int lanes, int bad)
{
    tf t;
    tf_init(&t, a, "ops");
    tir_func *f = t.f;
    int b = f->entry;
    int32_t offs[16];
    for (int l = 0; l < lanes; l++)
        offs[l] = 3 * l + 1;
    int o = lanes > 1 ? tir_const_lanes(f, b, TS_I64, lanes, offs) : c64(f, b, 1);
    int g = tir_emit(f, b, TIR_GATHER, tir_t(TS_I8, lanes), t.arg[A_PACKED], bad == 1 ? c64(f, b, 0) : o, -1, -1);
    int w = tir_emit(f, b, TIR_ZEXT, tir_t(TS_I32, lanes), g, -1, -1, -1);
    int p = tir_emit(f, b, TIR_POPCNT, tir_t(bad == 2 ? TS_I64 : TS_I32, lanes), w, -1, -1, -1);
    int e = tir_emit(f, b, TIR_IEQ, tir_t(TS_I1, lanes), p, bad == 3 ? o : w, -1, -1);
    int v = tir_emit(f, b, TIR_SELECT, tir_t(TS_F32, lanes), e, tir_const_f(f, b, lanes, 1.0),
                     tir_const_f(f, b, lanes, 0.0), -1);
    tir_emit(f, b, TIR_STORE, tir_t(TS_VOID, 1), t.arg[A_OUT], c64(f, b, 0), v, -1);
    return f;
}

static void test_new_ops(void)
{
    const char *want[] = {NULL, "gather offsets", "popcnt", "ieq"};
    for (int bad = 0; bad < 4; bad++) {
        qk_arena *a = qk_arena_new();
        char err[256] = "";
        int rc = tir_verify(ops_func(a, 8, bad), err, sizeof err);
        CU_ASSERT_EQUAL(rc, bad ? -1 : 0);
        if (bad)
            CU_ASSERT_PTR_NOT_NULL(strstr(err, want[bad]));
        qk_arena_free(a);
    }
    /* run: lane l is 1 when popcount(byte[3l+1]) == byte[3l+1] (0 or 1) */
    qk_arena *a = qk_arena_new();
    jit j;
    decode_fn fn = (decode_fn)jit_compile(&j, ops_func(a, 8, 0));
    uint8_t bytes[32];
    for (int i = 0; i < 32; i++)
        bytes[i] = (uint8_t)(i * 37 % 4);
    float out[8];
    fn(bytes, NULL, out, 0, 1);
    for (int l = 0; l < 8; l++) {
        int x = bytes[3 * l + 1];
        CU_ASSERT_EQUAL(out[l], __builtin_popcount(x) == x ? 1.0f : 0.0f);
    }
    jit_free(&j);
    /* CUDA text of one lane */
    qk_buf b = {0};
    char err[256] = "";
    CU_ASSERT_EQUAL(qk_backend_cuda.emit(NULL, ops_func(a, 1, 0), QK_EMIT_CUDA, &b, err, sizeof err), 0);
    CU_ASSERT(b.s && strstr(b.s, "__popc("));
    CU_ASSERT(b.s && strstr(b.s, " == "));
    qk_buf_free(&b);
    qk_arena_free(a);
}

/* A mask to an integer: out's first two bytes get the i16 whose bit l is
 * byte[l] < 0, for 16 lanes; bad 1 and 2 take a result type of other bits. */
static tir_func *mask_func(qk_arena *a, int bad)
{
    tf t;
    tf_init(&t, a, "mask");
    tir_func *f = t.f;
    int b = f->entry;
    int v = tir_emit(f, b, TIR_LOAD, tir_t(TS_I8, 16), t.arg[A_PACKED], c64(f, b, 0), -1, -1);
    int m = tir_emit(f, b, TIR_ILT, tir_t(TS_I1, 16), v, tir_const_i(f, b, TS_I8, 16, 0), -1, -1);
    tir_type to = bad == 1 ? tir_t(TS_I8, 1) : bad == 2 ? tir_t(TS_I8, 2) : tir_t(TS_I16, 1);
    int bits = tir_emit(f, b, TIR_BITCAST, to, m, -1, -1, -1);
    tir_emit(f, b, TIR_STORE, tir_t(TS_VOID, 1), t.arg[A_OUT], c64(f, b, 0), bits, -1);
    return f;
}

static void test_mask_bitcast(void)
{
    for (int bad = 1; bad < 3; bad++) {
        qk_arena *a = qk_arena_new();
        char err[256] = "";
        CU_ASSERT_EQUAL(tir_verify(mask_func(a, bad), err, sizeof err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "bitcast"));
        qk_arena_free(a);
    }
    qk_arena *a = qk_arena_new();
    jit j;
    decode_fn fn = (decode_fn)jit_compile(&j, mask_func(a, 0));
    uint64_t seed = 0x5eed;
    for (int round = 0; round < 8; round++) {
        int8_t bytes[16];
        uint16_t want = 0;
        for (int l = 0; l < 16; l++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            bytes[l] = (int8_t)(seed >> 56);
            want |= (uint16_t)((bytes[l] < 0) << l);
        }
        uint16_t out[2] = {0xa5a5, 0xa5a5};
        fn((const uint8_t *)bytes, NULL, (float *)out, 0, 1);
        CU_ASSERT_EQUAL(out[0], want);
        CU_ASSERT_EQUAL(out[1], 0xa5a5);
    }
    jit_free(&j);
    qk_arena_free(a);
}

/* ---- the CUDA text, run on the host ----
 * Without a GPU the emitted CUDA C is still checked: like test_cuda.c, it
 * is compiled as host C++ with a prelude for the few CUDA names it uses
 * and called as one thread of a one-block grid (the grid-stride loop then
 * covers every row). Every format's one-lane decoders and every encoder
 * go into one source file, compiled once. */

/* The host run's includes and globals; rtt_cuda_shims follows. */
static const char emu_prelude[] =
    "#include <math.h>\n#include <string.h>\n"
    "struct qk_dim3 { unsigned x; };\n"
    "extern \"C\" { qk_dim3 blockIdx = {0}, blockDim = {1}, gridDim = {1}, threadIdx = {0}; }\n";

/* Appends f's CUDA C (one lane) to src under the kernel name `name`. */
static void append_cuda(tir_func *f, const char *name, qk_buf *src)
{
    f->name = name;
    char err[512] = "";
    int rc = tir_verify(f, err, sizeof err);
    qk_buf b = {0};
    if (!rc)
        rc = qk_backend_cuda.emit(NULL, f, QK_EMIT_CUDA, &b, err, sizeof err);
    if (rc)
        printf("\n  %s: %s\n", name, err);
    CU_ASSERT_FATAL(rc == 0);
    char *inc = strstr(b.s, "#include <cuda_fp16.h>");
    if (inc)
        memcpy(inc, "//", 2);
    qk_buf_puts(src, b.s);
    qk_buf_free(&b);
}

/* Compiles src as host C++ into a shared object; NULL (after printing a
 * skip line) when there is no g++. */
static void *emu_build(const char *src)
{
    if (system("g++ --version >/dev/null 2>&1") != 0) {
        printf("\n  skipped: no g++ for the host run of the emitted CUDA C\n");
        return NULL;
    }
    char dir[] = "/tmp/qkc_decode_emu_XXXXXX", cc[64], so[64], cmd[256];
    CU_ASSERT_FATAL(mkdtemp(dir) != NULL);
    snprintf(cc, sizeof cc, "%s/k.cc", dir);
    snprintf(so, sizeof so, "%s/k.so", dir);
    FILE *fp = fopen(cc, "w");
    CU_ASSERT_FATAL(fp != NULL);
    fprintf(fp, "%s%s%s", emu_prelude, rtt_cuda_shims, src);
    fclose(fp);
    snprintf(cmd, sizeof cmd, "g++ -std=c++17 -O0 -ffp-contract=off -shared -fPIC -o %s %s", so, cc);
    CU_ASSERT_FATAL(system(cmd) == 0);
    void *lib = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    CU_ASSERT_FATAL(lib != NULL);
    if (!getenv("QKC_KEEP_EMU"))
        unlink(cc), unlink(so), rmdir(dir);
    return lib;
}

static int plan_regions_1lane(const geom *g, region *rg)
{
    int n = 0;
    int64_t at = 0;
    rg[n++] = (region){R_VALUES, 1, 1, 1, 0};
    rg[n++] = (region){R_VALUES, 1, 1, 0, 0};
    rg[n++] = (region){R_CODES, 1, 1, 0, 0};
    if (g->fm->sp_n)
        rg[n++] = (region){R_POSITIONS, 1, 1, 0, 0};
    rg[n++] = (region){R_ELEMENTS, 1, 1, 0, 0};
    for (int i = 0; i < n; i++) {
        rg[i].base = at;
        at += region_size(g, rg[i].kind);
    }
    return n;
}

typedef struct emu_case {
    fcase c;
    fdata d;
    region rg[8];
    int nreg;
    char name[32];
} emu_case;

static void test_cuda_host_run(void)
{
    static emu_case dec[64];
    static fcase cases[64], enc[32];
    static edata ed[32];
    char names[32][32];
    int nd = build_cases(cases), ne = encode_cases(enc);
    qk_arena *a = qk_arena_new();
    qk_buf src = {0};
    for (int i = 0; i < nd; i++) {
        dec[i].c = cases[i];
        emu_case *e = &dec[i];
        fdata_init(&e->d, &e->c, 0x51ed270b27ull + (uint64_t)i);
        e->nreg = plan_regions_1lane(&e->d.g, e->rg);
        snprintf(e->name, sizeof e->name, "dec_%d", i);
        append_cuda(decode_func(a, &e->d.g, e->rg, e->nreg), e->name, &src);
    }
    for (int i = 0; i < ne; i++) {
        edata_init(&ed[i], &enc[i], 0x2545f491ull + (uint64_t)i);
        snprintf(names[i], sizeof names[i], "enc_%d", i);
        append_cuda(encode_func(a, &ed[i].g, 1), names[i], &src);
    }
    void *lib = emu_build(src.s);
    for (int i = 0; lib && i < nd; i++) {
        decode_fn fn = (decode_fn)dlsym(lib, dec[i].name);
        CU_ASSERT_FATAL(fn != NULL);
        CU_ASSERT(fdata_check(&dec[i].d, fn, dec[i].rg, dec[i].nreg) == 0);
    }
    for (int i = 0; lib && i < ne; i++) {
        encode_fn fn = (encode_fn)dlsym(lib, names[i]);
        CU_ASSERT_FATAL(fn != NULL);
        CU_ASSERT(edata_check(&ed[i], fn) == 0);
    }
    if (lib)
        dlclose(lib);
    for (int i = 0; i < nd; i++)
        fdata_free(&dec[i].d);
    for (int i = 0; i < ne; i++)
        edata_free(&ed[i]);
    qk_buf_free(&src);
    qk_arena_free(a);
}

/* Integer images of tables (tdec_int_image): every code's u, read from
 * its byte planes, times scale_img plus the offset gives the code's f32
 * value exactly. nf4's f32 values are integers times 2^-27 spanning 2^28:
 * four planes, none with three; a span past 2^32 has none; a signed
 * (dot4.ss) image whose flipped top plane would move the offset past an
 * int is refused. */
static void test_int_images(void)
{
    qk_format nf4 = table_fmt(4, nf4_table, 64, QK_NUM_F16);
    tdec_image img;
    CU_ASSERT(!tdec_int_image(&nf4, 256, 3, &img));
    CU_ASSERT_FATAL(tdec_int_image(&nf4, 256, TDEC_PLANES, &img));
    CU_ASSERT_EQUAL(img.kind, TDEC_IMG_LUT);
    CU_ASSERT_EQUAL(img.planes, 4);
    CU_ASSERT_EQUAL(img.scale_img, ldexp(1.0, -27));
    int exact = 0;
    for (int c = 0; c < 16; c++) {
        double u = 0;
        for (int p = 0; p < img.planes; p++)
            u += ldexp(p ? img.hi[p - 1][c] : img.lut[c], 8 * p);
        exact += img.scale_img * (u + img.off) == (float)nf4_table[c];
    }
    CU_ASSERT_EQUAL(exact, 16);
    /* read as signed bytes (dot4.ss): the same values */
    CU_ASSERT_FATAL(tdec_image_signed(&nf4, &img));
    exact = 0;
    for (int c = 0; c < 16; c++) {
        double u = 0;
        for (int p = 0; p < img.planes; p++)
            u += ldexp((int8_t)(p ? img.hi[p - 1][c] : img.lut[c]), 8 * p);
        exact += img.scale_img * (u + img.off) == (float)nf4_table[c];
    }
    CU_ASSERT_EQUAL(exact, 16);
    /* u up to 3 * 2^30, offset 0: four planes, the top one reaching 192;
     * flipping every plane adds 128 * (1 + 256 + 256^2 + 256^3) > 2^31 */
    static const double wide[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 3221225472.0};
    qk_format fw = table_fmt(4, wide, 32, QK_NUM_F16);
    CU_ASSERT_FATAL(tdec_int_image(&fw, 256, TDEC_PLANES, &img));
    CU_ASSERT_EQUAL(img.planes, 4);
    CU_ASSERT(!tdec_image_signed(&fw, &img));
    static const double wider[16] = {-4294967296.0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 4294967296.0};
    qk_format fx = table_fmt(4, wider, 32, QK_NUM_F16);
    CU_ASSERT(!tdec_int_image(&fx, 256, TDEC_PLANES, &img));
}

/* Sign-magnitude images (tdec_int_image_sgn): e4m3 has no plain image
 * (its NaN codes), and one of 128 entries read at the code's low 7 bits:
 * every code's value is scale_img times its magnitude's integer, negated
 * by bit 7, exactly; its magnitudes reach 448 * 2^9 < 2^18, three planes
 * with the top bit free; 0x7F and 0xFF are flagged there and nothing
 * else is. Two planes are too few; e5m2 (infinities) and 6-bit e2m3
 * are refused; e4m3 without NaNs has the image without flags. */
static void test_sgn_images(void)
{
    qk_format e4 = with_scale(minifloat(4, 3, 7, QK_MF_FN, 32), QK_PER_BLOCK, QK_NUM_E8M0);
    tdec_image img;
    CU_ASSERT(!tdec_int_image(&e4, 256, TDEC_PLANES, &img));
    CU_ASSERT(!tdec_int_image_sgn(&e4, 2, &img));
    CU_ASSERT_FATAL(tdec_int_image_sgn(&e4, TDEC_PLANES, &img));
    CU_ASSERT(img.sgn && img.nanflag && img.kind == TDEC_IMG_LUT && img.nlut == 128 && img.off == 0);
    CU_ASSERT_EQUAL(img.planes, 3);
    CU_ASSERT_EQUAL(img.scale_img, ldexp(1.0, -9));
    CU_ASSERT_EQUAL(img.umax, 448u << 9);
    int exact = 0, flags = 0;
    for (int c = 0; c < 256; c++) {
        int m = c & 0x7F;
        uint32_t u = img.lut[m] | (uint32_t)img.hi[0][m] << 8 | (uint32_t)img.hi[1][m] << 16;
        double v = (float)qk_format_codeval(&e4, (uint32_t)c);
        int flag = (u >> 23) & 1;
        flags += flag;
        if (isnan(v))
            exact += flag;
        else
            exact += !flag && (c & 0x80 ? -1.0 : 1.0) * img.scale_img * u == v;
    }
    CU_ASSERT_EQUAL(exact, 256);
    CU_ASSERT_EQUAL(flags, 2);
    qk_format e5 = with_scale(minifloat(5, 2, 15, QK_MF_IEEE, 32), QK_PER_BLOCK, QK_NUM_E8M0);
    CU_ASSERT(!tdec_int_image_sgn(&e5, TDEC_PLANES, &img));
    qk_format e23 = with_scale(minifloat(2, 3, 1, QK_MF_FINITE, 32), QK_PER_BLOCK, QK_NUM_E8M0);
    CU_ASSERT(!tdec_int_image_sgn(&e23, TDEC_PLANES, &img));
    /* e4m3 without NaNs: the same image, no flags (but it has a plain one) */
    qk_format e4f = with_scale(minifloat(4, 3, 7, QK_MF_FINITE, 32), QK_PER_BLOCK, QK_NUM_E8M0);
    CU_ASSERT_FATAL(tdec_int_image_sgn(&e4f, TDEC_PLANES, &img));
    CU_ASSERT(img.sgn && !img.nanflag && img.planes == 3);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("decode", NULL, NULL);
    CU_add_test(s, "new ops: verifier, LLVM, CUDA text", test_new_ops);
    CU_add_test(s, "bitcast of a mask to an integer", test_mask_bitcast);
    CU_add_test(s, "decode of every format vs qk_format_get", test_decode_formats);
    CU_add_test(s, "integer images of tables: planes, exactness, signed", test_int_images);
    CU_add_test(s, "sign-magnitude images: e4m3 exact, NaN flags, refusals", test_sgn_images);
    CU_add_test(s, "encode vs qk_format_pack", test_encode_formats);
    CU_add_test(s, "CUDA C of one lane, run on the host", test_cuda_host_run);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}
