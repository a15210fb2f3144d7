/* sema_format.c — the semantic checks of one format declaration (part of
 * the frontend's third stage, called by sema.c for every format before
 * any kernel is checked). It turns the parsed attributes (ast_format) into
 * a finished qk_format (compiler/format.h):
 *
 *   each attribute on its own (code kinds, scale/min/zero forms, sparsity,
 *   codebook type) -> their combinations (block multiples, zero vs min,
 *   two-level min, codebook on VQ only) -> qk_format_finish with the
 *   canonical layout, which also sizes every field -> an explicit
 *   layout { } resolved into pieces at absolute byte offsets (the cursor
 *   rules of docs/language.md) -> qk_format_finish again on those pieces.
 *
 * Every mistake is reported at the attribute or layout item that causes
 * it; what only qk_format_finish detects is reported at the format (or at
 * `layout`) with its message. */
#include "frontend/ast.h"

#include <stdlib.h>
#include <string.h>

typedef struct fsema {
    qk_arena *a;
    qk_diags *d;
} fsema;

#define ERR(s, loc, ...) qk_error((s)->d, (loc), __VA_ARGS__)

/* ---- format attributes ---- */

/* The 16 NF4 values (QLoRA, Dettmers et al. 2023): quantiles of N(0, 1)
 * scaled to [-1, 1], with an exact 0. */
static const double nf4_values[16] = {
    -1.0,
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
    0.33791524171829224,
    0.44070982933044434,
    0.5626170039176941,
    0.7229568362236023,
    1.0,
};

static const struct minifloat {
    const char *name;
    int ebits, mbits, bias;
    qk_mf_special special;
} minifloats[] = {
    {"e2m1", 2, 1, 1, QK_MF_FINITE}, {"e3m2", 3, 2, 3, QK_MF_FINITE}, {"e2m3", 2, 3, 1, QK_MF_FINITE},
    {"e4m3", 4, 3, 7, QK_MF_FN},     {"e5m2", 5, 2, 15, QK_MF_IEEE},
};

typedef struct num_name {
    const char *name;
    qk_num num;
} num_name;

/* Scale, min and sub-block float types. */
static const num_name float_nums[] = {
    {"f32", QK_NUM_F32},   {"f16", QK_NUM_F16},     {"bf16", QK_NUM_BF16},
    {"e8m0", QK_NUM_E8M0}, {"ue4m3", QK_NUM_UE4M3}, {"e4m3", QK_NUM_E4M3},
};
static const num_name zero_nums[] = {
    {"u8", QK_NUM_U8}, {"i8", QK_NUM_I8}, {"f16", QK_NUM_F16}, {"f32", QK_NUM_F32},
};
#define FLOAT_NUM_LIST "f32, f16, bf16, e8m0, ue4m3, e4m3"

static int find_num(const num_name *t, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0)
            return (int)t[i].num;
    return -1;
}

/* "PREFIX<digits>": the number (capped at 1000), or -1 when name is not
 * of that form. */
static int suffix_width(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0)
        return -1;
    const char *w = name + n;
    size_t nd = strspn(w, "0123456789");
    if (nd == 0 || w[nd] != 0)
        return -1;
    return nd > 3 ? 1000 : atoi(w);
}

/* A sub-block scale or min type: uintN (N = 1..8) or a float type. */
static int check_subnum(fsema *s, ast_word w, qk_num *num, int *bits, const char *what)
{
    int n = suffix_width(w.s, "uint");
    if (n >= 1 && n <= 8) {
        *num = QK_NUM_UINT;
        *bits = n;
        return 0;
    }
    int f = find_num(float_nums, QK_COUNT(float_nums), w.s);
    if (f < 0) {
        ERR(s, w.loc, "unknown sub-block %s type '%s' (expected uint1..uint8, " FLOAT_NUM_LIST ")", what, w.s);
        return -1;
    }
    *num = (qk_num)f;
    *bits = 0;
    return 0;
}

/* Reports a code modifier that the code kind does not take. */
static int check_modifiers(fsema *s, const ast_code *c, int is_int, int is_vq, int is_table)
{
    if (c->has_offset && !is_int)
        ERR(s, c->offset.loc, "'offset' applies only to intN and uintN codes, not '%s'", c->name.s);
    else if (c->has_dim && !is_vq)
        ERR(s, c->dim.loc, "'dim' applies only to vqN codes, not '%s'", c->name.s);
    else if (c->has_books && !is_vq)
        ERR(s, c->books.loc, "'books' applies only to vqN codes, not '%s'", c->name.s);
    else if (c->signs && !is_vq)
        ERR(s, c->signs_loc, "'signs' applies only to vqN codes, not '%s'", c->name.s);
    else if (c->has_table && !is_table)
        ERR(s, c->table_loc, "a value list applies only to 'table' codes, not '%s'", c->name.s);
    else
        return 0;
    return -1;
}

/* intN / uintN [offset C] */
static int check_int_code(fsema *s, ast_format *f, int is_uint)
{
    const ast_code *c = &f->code;
    int bits = suffix_width(c->name.s, is_uint ? "uint" : "int");
    if (bits < 1 || bits > 8) {
        ERR(s, c->name.loc, "bit width %.20s out of range 1..8", c->name.s + (is_uint ? 4 : 3));
        return -1;
    }
    f->f.bits = bits;
    f->f.code = is_uint ? QK_CODE_UINT : QK_CODE_SINT;
    if (!c->has_offset)
        return 0;
    if (c->offset.v < 0 || c->offset.v >= (1LL << bits)) {
        ERR(s, c->offset.loc, "offset %lld out of range 0..%d for %d-bit codes", (long long)c->offset.v,
            (1 << bits) - 1, bits);
        return -1;
    }
    f->f.code = QK_CODE_OFFSET;
    f->f.offset = (int)c->offset.v;
    return 0;
}

/* table [v0, ...]: 2^bits values for bits 1..8. */
static int check_table_code(fsema *s, ast_format *f)
{
    const ast_code *c = &f->code;
    if (!c->has_table) {
        ERR(s, c->name.loc, "'table' needs its values: code = table [v0, v1, ...]");
        return -1;
    }
    int n = c->ntable, bits = 0;
    while (bits < 8 && (1 << bits) < n)
        bits++;
    if (n < 2 || n != 1 << bits) {
        ERR(s, c->table_loc, "table has %d value%s; it needs 2^bits for bits 1..8 (2, 4, 8, ..., 256)", n,
            n == 1 ? "" : "s");
        return -1;
    }
    f->f.code = QK_CODE_TABLE;
    f->f.bits = bits;
    f->f.table = c->table;
    return 0;
}

/* vqB dim D [books C] [signs] */
static int check_vq_code(fsema *s, ast_format *f)
{
    const ast_code *c = &f->code;
    int bits = suffix_width(c->name.s, "vq");
    if (bits < 1 || bits > 16) {
        ERR(s, c->name.loc, "VQ index width %.20s out of range 1..16", c->name.s + 2);
        return -1;
    }
    if (!c->has_dim) {
        ERR(s, c->name.loc, "VQ code '%s' needs 'dim D' (elements per index)", c->name.s);
        return -1;
    }
    if (c->dim.v < 1 || c->dim.v > 64) {
        ERR(s, c->dim.loc, "VQ dim %lld out of range 1..64", (long long)c->dim.v);
        return -1;
    }
    if (c->has_books && (c->books.v < 1 || c->books.v > QK_MAX_VQ_BOOKS)) {
        ERR(s, c->books.loc, "VQ books %lld out of range 1..%d", (long long)c->books.v, QK_MAX_VQ_BOOKS);
        return -1;
    }
    f->f.code = QK_CODE_VQ;
    f->f.bits = bits;
    f->f.vq_dim = (int)c->dim.v;
    f->f.vq_books = c->has_books ? (int)c->books.v : 1;
    f->f.vq_signs = c->signs;
    f->f.vq_dtype = QK_DT_F16;
    return 0;
}

/* Kinds without parameters: ternary, binary, the minifloats, nf4. */
static int check_named_code(fsema *s, ast_format *f)
{
    const char *n = f->code.name.s;
    if (strcmp(n, "ternary") == 0 || strcmp(n, "binary") == 0) {
        f->f.code = n[0] == 't' ? QK_CODE_TERNARY : QK_CODE_BINARY;
        f->f.bits = n[0] == 't' ? 2 : 1;
        return 0;
    }
    if (strcmp(n, "nf4") == 0) {
        double *t = qk_alloc(s->a, sizeof nf4_values);
        memcpy(t, nf4_values, sizeof nf4_values);
        f->f.code = QK_CODE_TABLE;
        f->f.bits = 4;
        f->f.table = t;
        return 0;
    }
    for (int i = 0; i < QK_COUNT(minifloats); i++)
        if (strcmp(n, minifloats[i].name) == 0) {
            f->f.code = QK_CODE_MINIFLOAT;
            f->f.ebits = minifloats[i].ebits;
            f->f.mbits = minifloats[i].mbits;
            f->f.bias = minifloats[i].bias;
            f->f.special = minifloats[i].special;
            f->f.bits = 1 + f->f.ebits + f->f.mbits;
            return 0;
        }
    ERR(s, f->code.name.loc, "unknown code type '%s' (expected intN, uintN, ternary, binary, e2m1, e3m2, e2m3, "
        "e4m3, e5m2, nf4, table or vqN)", n);
    return -1;
}

static int check_code(fsema *s, ast_format *f)
{
    const ast_code *c = &f->code;
    int is_uint = suffix_width(c->name.s, "uint") >= 0, is_int = is_uint || suffix_width(c->name.s, "int") >= 0;
    int is_vq = suffix_width(c->name.s, "vq") >= 0, is_table = strcmp(c->name.s, "table") == 0;
    if (check_modifiers(s, c, is_int, is_vq, is_table) < 0)
        return -1;
    if (is_int)
        return check_int_code(s, f, is_uint);
    if (is_table)
        return check_table_code(s, f);
    if (is_vq)
        return check_vq_code(s, f);
    return check_named_code(s, f);
}

/* "per row" / "per tensor" / "per block" */
static int check_scale_per(fsema *s, ast_format *f)
{
    const ast_scale *sc = &f->scale;
    if (!sc->per.s || strcmp(sc->per.s, "block") == 0)
        f->f.scale_per = QK_PER_BLOCK;
    else if (strcmp(sc->per.s, "row") == 0)
        f->f.scale_per = QK_PER_ROW;
    else if (strcmp(sc->per.s, "tensor") == 0)
        f->f.scale_per = QK_PER_TENSOR;
    else {
        ERR(s, sc->per.loc, "unknown scale granularity '%s' (expected block, row, tensor or a sub-block size)",
            sc->per.s);
        return -1;
    }
    return 0;
}

/* "NUM per INT" (sub-block scales only) or "NUM * SUB per INT". */
static int check_sub_block(fsema *s, ast_format *f, qk_num num)
{
    const ast_scale *sc = &f->scale;
    if (sc->per_n.v < 1 || sc->per_n.v > QK_MAX_BLOCK) {
        ERR(s, sc->per_n.loc, "sub-block size %lld out of range 1..%d", (long long)sc->per_n.v, QK_MAX_BLOCK);
        return -1;
    }
    f->f.scale_per = QK_PER_BLOCK;
    f->f.sub_block = (int)sc->per_n.v;
    if (!sc->sub.s) {
        f->f.scale_num = QK_NUM_NONE;
        f->f.sub_num = num;
        return 0;
    }
    f->f.scale_num = num;
    return check_subnum(s, sc->sub, &f->f.sub_num, &f->f.sub_bits, "scale");
}

/* scale = none | NUM [* SUB] [per block | row | tensor | INT] */
static int check_scale(fsema *s, ast_format *f)
{
    const ast_scale *sc = &f->scale;
    if (!f->has[FA_SCALE] || sc->none)
        return 0;
    int num = find_num(float_nums, QK_COUNT(float_nums), sc->num.s);
    if (num < 0) {
        ERR(s, sc->num.loc, "unknown scale type '%s' (expected " FLOAT_NUM_LIST " or none)", sc->num.s);
        return -1;
    }
    if (sc->sub.s && !sc->has_per_n) {
        ERR(s, sc->per.s ? sc->per.loc : sc->sub.loc,
            "a two-level scale is per sub-block: write 'scale = %s * %s per N' (N = the sub-block size)", sc->num.s,
            sc->sub.s);
        return -1;
    }
    if (sc->has_per_n)
        return check_sub_block(s, f, (qk_num)num);
    f->f.scale_num = (qk_num)num;
    return check_scale_per(s, f);
}

/* min = [-] NUM [* SUB] */
static int check_min(fsema *s, ast_format *f)
{
    const ast_min *m = &f->min;
    if (!f->has[FA_MIN])
        return 0;
    int num = find_num(float_nums, QK_COUNT(float_nums), m->num.s);
    if (num < 0) {
        ERR(s, m->num.loc, "unknown min type '%s' (expected " FLOAT_NUM_LIST ")", m->num.s);
        return -1;
    }
    f->f.min_num = (qk_num)num;
    f->f.min_sign = m->neg ? -1 : 1;
    if (!m->sub.s)
        return 0;
    if (f->f.sub_block == 0 || f->f.scale_num == QK_NUM_NONE) {
        ERR(s, m->sub.loc, "a two-level min needs a two-level scale ('scale = NUM * SUB per N')");
        return -1;
    }
    return check_subnum(s, m->sub, &f->f.submin_num, &f->f.submin_bits, "min");
}

/* zero = u8 | i8 | f16 | f32 | none | NUMBER */
static int check_zero(fsema *s, ast_format *f)
{
    const ast_zero *z = &f->zero;
    if (!f->has[FA_ZERO] || (z->type.s && strcmp(z->type.s, "none") == 0))
        return 0;
    if (!z->type.s) {
        f->f.zero = QK_ZERO_CONST;
        f->f.zero_const = z->value;
        return 0;
    }
    int num = find_num(zero_nums, QK_COUNT(zero_nums), z->type.s);
    if (num < 0) {
        ERR(s, z->type.loc, "unknown zero-point type '%s' (expected u8, i8, f16, f32, none or a number)",
            z->type.s);
        return -1;
    }
    f->f.zero = QK_ZERO_BLOCK;
    f->f.zero_num = (qk_num)num;
    return 0;
}

/* tensor_scale = f32; codebook = f16 | f32; sparse = N:M */
static int check_extras(fsema *s, ast_format *f)
{
    int bad = 0;
    if (f->has[FA_TENSOR_SCALE]) {
        if (strcmp(f->tensor_scale.s, "f32") != 0)
            bad = -1, ERR(s, f->tensor_scale.loc, "unknown tensor scale type '%s' (expected f32)", f->tensor_scale.s);
        f->f.tensor_scale = 1;
    }
    if (f->has[FA_CODEBOOK]) {
        const char *n = f->codebook.s;
        if (strcmp(n, "f16") != 0 && strcmp(n, "f32") != 0)
            bad = -1, ERR(s, f->codebook.loc, "unknown codebook type '%s' (expected f16 or f32)", n);
        f->f.vq_dtype = strcmp(n, "f32") == 0 ? QK_DT_F32 : QK_DT_F16;
    }
    if (!f->has[FA_SPARSE])
        return bad;
    if (f->sp_m.v < 2 || f->sp_m.v > 16)
        return ERR(s, f->sp_m.loc, "sparsity group M = %lld out of range 2..16", (long long)f->sp_m.v), -1;
    if (f->sp_n.v < 1 || f->sp_n.v >= f->sp_m.v)
        return ERR(s, f->sp_n.loc, "sparsity N = %lld out of range 1..%lld (N < M)", (long long)f->sp_n.v,
                   (long long)f->sp_m.v - 1), -1;
    f->f.sp_n = (int)f->sp_n.v;
    f->f.sp_m = (int)f->sp_m.v;
    return bad;
}

/* 1 when a comes after b in the source. */
static int later(qk_loc a, qk_loc b)
{
    return a.line > b.line || (a.line == b.line && a.col > b.col);
}

/* Combinations that no single attribute can check. */
static int check_combinations(fsema *s, ast_format *f)
{
    qk_format *q = &f->f;
    if (f->has[FA_ZERO] && q->zero != QK_ZERO_NONE && q->min_num != QK_NUM_NONE) {
        int z_last = later(f->key_loc[FA_ZERO], f->key_loc[FA_MIN]);
        ERR(s, f->key_loc[z_last ? FA_ZERO : FA_MIN], "format '%s' has both 'zero' and 'min' (use one of them)",
            f->name);
        return -1;
    }
    if (f->has[FA_CODEBOOK] && q->code != QK_CODE_VQ) {
        ERR(s, f->key_loc[FA_CODEBOOK], "'codebook' applies only to VQ codes (vqN), not '%s'", f->code.name.s);
        return -1;
    }
    if (q->code == QK_CODE_VQ && q->block % q->vq_dim != 0) {
        ERR(s, f->block.loc, "block %d is not a multiple of the VQ dim %d", q->block, q->vq_dim);
        return -1;
    }
    if (q->sub_block && q->block % q->sub_block != 0) {
        ERR(s, f->scale.per_n.loc, "block %d is not a multiple of the sub-block size %d", q->block, q->sub_block);
        return -1;
    }
    if (q->sp_m && q->block % q->sp_m != 0) {
        ERR(s, f->block.loc, "block %d is not a multiple of the sparsity group %d", q->block, q->sp_m);
        return -1;
    }
    if (q->sp_m && q->sub_block % q->sp_m != 0) {
        ERR(s, f->scale.per_n.loc, "sub-block size %d is not a multiple of the sparsity group %d", q->sub_block,
            q->sp_m);
        return -1;
    }
    return 0;
}

/* ---- layouts ---- */

static const char *const field_names[QK_FIELD_COUNT] = {
#define FIELD_NAME(id, name) name,
    QK_FIELDS(FIELD_NAME)
#undef FIELD_NAME
};

/* State while resolving one layout { ... }. */
typedef struct lctx {
    fsema *s;
    ast_format *f;
    const qk_format *canon; /* the same format, finished with the canonical layout */
    int cursor;             /* bytes */
    unsigned char *placed[QK_FIELD_COUNT]; /* items * width flags per field */
} lctx;

#define LAYOUT_MAX_BYTE 65535

static int field_lookup(const char *name)
{
    for (int i = 0; i < QK_FIELD_COUNT; i++)
        if (strcmp(field_names[i], name) == 0)
            return i;
    return -1;
}

/* One past the last byte a piece touches (format.h placement rules). */
static int piece_end(const qk_piece *pc)
{
    if (pc->place == QK_PLACE_STREAM)
        return (pc->byte * 8 + pc->shift + pc->count * pc->width + 7) / 8;
    int slots = pc->place == QK_PLACE_BASE3 ? 5 : (8 - pc->shift) / pc->width;
    int run = pc->group * slots, last = (pc->count - 1) / run, left = pc->count - last * run;
    return pc->byte + last * pc->group + (left < pc->group ? left : pc->group);
}

/* Items [A:B] and bits LO:HI of one layout item. */
static int piece_ranges(lctx *L, const ast_litem *it, int fl, qk_piece *pc)
{
    int n = L->canon->items[fl], w = L->canon->width[fl];
    pc->first = 0, pc->count = n, pc->lo = 0, pc->width = w;
    if (it->has_range) {
        if (it->a.v < 0 || it->a.v >= it->b.v || it->b.v > n)
            return ERR(L->s, it->a.loc, "item range [%lld:%lld] out of range: '%s' has %d item%s", (long long)it->a.v,
                       (long long)it->b.v, field_names[fl], n, n == 1 ? "" : "s"), -1;
        pc->first = (int)it->a.v, pc->count = (int)(it->b.v - it->a.v);
    }
    if (it->has_bits) {
        if (it->lo.v < 0 || it->lo.v >= it->hi.v || it->hi.v > w)
            return ERR(L->s, it->lo.loc, "bit range %lld:%lld out of range: '%s' items have %d bit%s",
                       (long long)it->lo.v, (long long)it->hi.v, field_names[fl], w, w == 1 ? "" : "s"), -1;
        pc->lo = (int)it->lo.v, pc->width = (int)(it->hi.v - it->lo.v);
    }
    return 0;
}

/* Placement, group, at and shift of one layout item. */
static int piece_position(lctx *L, const ast_litem *it, qk_piece *pc)
{
    if (it->has_shift && !it->has_at)
        return ERR(L->s, it->shift.loc, "'shift' needs an explicit position: 'at BYTE shift S'"), -1;
    if (it->has_at && (it->at.v < 0 || it->at.v > LAYOUT_MAX_BYTE))
        return ERR(L->s, it->at.loc, "byte offset %lld out of range 0..%d", (long long)it->at.v, LAYOUT_MAX_BYTE), -1;
    if (it->has_shift && (it->shift.v < 0 || it->shift.v > 7))
        return ERR(L->s, it->shift.loc, "bit shift %lld out of range 0..7", (long long)it->shift.v), -1;
    pc->place = it->place;
    pc->byte = it->has_at ? (int)it->at.v : L->cursor;
    pc->shift = it->has_shift ? (int)it->shift.v : 0;
    if (it->place == QK_PLACE_STREAM)
        return 0;
    if (it->group.v < 1 || it->group.v > LAYOUT_MAX_BYTE)
        return ERR(L->s, it->group.loc, "group size %lld out of range 1..%d", (long long)it->group.v,
                   LAYOUT_MAX_BYTE), -1;
    pc->group = (int)it->group.v;
    if (it->place == QK_PLACE_INTERLEAVE && pc->width > 8 - pc->shift)
        return ERR(L->s, it->place_loc, "interleaved items must fit in one byte (%d bits at shift %d do not)",
                   pc->width, pc->shift), -1;
    return 0;
}

/* Marks the piece's item bits placed; reports a bit placed twice. */
static int mark_placed(lctx *L, const ast_litem *it, const qk_piece *pc)
{
    int w = L->canon->width[pc->field];
    unsigned char **bits = &L->placed[pc->field];
    if (!*bits)
        *bits = qk_alloc(L->s->a, (size_t)L->canon->items[pc->field] * (size_t)w + 1);
    for (int i = pc->first; i < pc->first + pc->count; i++)
        for (int b = pc->lo; b < pc->lo + pc->width; b++) {
            if ((*bits)[i * w + b])
                return ERR(L->s, it->loc, "bit %d of '%s' item %d is placed twice by the layout", b,
                           field_names[pc->field], i), -1;
            (*bits)[i * w + b] = 1;
        }
    return 0;
}

/* Resolves one layout item into a piece (or advances the cursor). */
static int layout_piece(lctx *L, const ast_litem *it)
{
    qk_format *q = &L->f->f;
    if (it->is_pad) {
        if (it->pad.v < 0 || it->pad.v > LAYOUT_MAX_BYTE - L->cursor)
            return ERR(L->s, it->pad.loc, "pad %lld out of range 0..%d", (long long)it->pad.v,
                       LAYOUT_MAX_BYTE - L->cursor), -1;
        L->cursor += (int)it->pad.v;
        return 0;
    }
    int fl = field_lookup(it->field.s);
    if (fl < 0)
        return ERR(L->s, it->field.loc, "unknown layout field '%s' (expected scale, zero, min, subscale, submin, "
                   "codes, index or signs)", it->field.s), -1;
    if (L->canon->items[fl] == 0)
        return ERR(L->s, it->field.loc, "format '%s' has no '%s' field", L->f->name, it->field.s), -1;
    if (q->npieces == QK_MAX_PIECES)
        return ERR(L->s, it->loc, "layout has more than %d pieces", QK_MAX_PIECES), -1;
    qk_piece pc = {.field = fl};
    if (piece_ranges(L, it, fl, &pc) < 0 || piece_position(L, it, &pc) < 0 || mark_placed(L, it, &pc) < 0)
        return -1;
    int end = piece_end(&pc);
    L->cursor = end > L->cursor ? end : L->cursor;
    q->pieces[q->npieces++] = pc;
    return 0;
}

/* Every bit of every item of every field is placed. */
static int check_all_placed(lctx *L)
{
    for (int fl = 0; fl < QK_FIELD_COUNT; fl++) {
        int n = L->canon->items[fl], w = L->canon->width[fl];
        for (int i = 0; i < n * w; i++)
            if (!L->placed[fl] || !L->placed[fl][i])
                return ERR(L->s, L->f->key_loc[FA_LAYOUT], "the layout of format '%s' does not place bit %d of "
                           "'%s' item %d", L->f->name, i % w, field_names[fl], i / w), -1;
    }
    return 0;
}

/* Builds the explicit pieces of f from its layout items, then lets
 * qk_format_finish verify them. canon: f finished canonically. */
static int check_layout(fsema *s, ast_format *f, const qk_format *canon)
{
    lctx L = {.s = s, .f = f, .canon = canon};
    f->f.explicit_layout = 1;
    f->f.npieces = 0;
    for (int i = 0; i < f->nlayout; i++)
        if (layout_piece(&L, &f->layout[i]) < 0)
            return -1;
    if (f->nlayout > 0 && f->layout[f->nlayout - 1].is_pad)
        return ERR(s, f->layout[f->nlayout - 1].loc, "'pad' at the end of a layout does nothing (a block ends "
                   "with its last piece)"), -1;
    if (check_all_placed(&L) < 0)
        return -1;
    char err[256];
    if (qk_format_finish(&f->f, err, sizeof err) != 0)
        return ERR(s, f->key_loc[FA_LAYOUT], "%s", err), -1;
    return 0;
}

/* ---- the format ---- */

/* code and block are required; every attribute is checked on its own,
 * then their combinations. Returns 0 when the fields are consistent. */
static int check_attrs(fsema *s, ast_format *f)
{
    int bad = 0;
    if (!f->has[FA_CODE])
        bad = -1, ERR(s, f->loc, "format '%s' has no 'code' attribute", f->name);
    else if (check_code(s, f) < 0)
        bad = -1;
    if (!f->has[FA_BLOCK])
        bad = -1, ERR(s, f->loc, "format '%s' has no 'block' attribute", f->name);
    else if (f->block.v < 1 || f->block.v > QK_MAX_BLOCK)
        bad = -1, ERR(s, f->block.loc, "block size %lld out of range 1..%d", (long long)f->block.v, QK_MAX_BLOCK);
    f->f.block = bad ? 1 : (int)f->block.v;
    if (check_scale(s, f) < 0 || check_min(s, f) < 0)
        bad = -1;
    if (check_zero(s, f) < 0 || check_extras(s, f) < 0)
        bad = -1;
    return bad ? -1 : check_combinations(s, f);
}

void sema_format(qk_arena *a, qk_diags *d, ast_format *f)
{
    fsema sv = {a, d}, *s = &sv;
    f->f.name = f->name;
    f->f.loc = f->loc;
    f->f.min_sign = 1;
    f->f.vq_dtype = QK_DT_NONE;
    if (check_attrs(s, f) < 0)
        return;
    qk_format canon = f->f;
    char err[256];
    if (qk_format_finish(&canon, err, sizeof err) != 0) {
        ERR(s, f->loc, "%s", err);
        return;
    }
    if (f->has[FA_LAYOUT] && check_layout(s, f, &canon) < 0)
        return;
    if (!f->has[FA_LAYOUT])
        f->f = canon;
    f->ok = 1;
}
