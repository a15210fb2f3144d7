/* rowpack.c — the row-interleaved layout (rowpack.h): which formats have
 * it, its size, and the exact conversions to and from a format's layout. */
#include "compiler/rowpack.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int why_not(char *why, size_t n, const char *msg)
{
    if (why && n)
        snprintf(why, n, "%s", msg);
    return 0;
}

int qk_rowpack_check(const qk_format *f, int R, qk_rowpack *rp, char *why, size_t whysz)
{
    if (R != 4 && R != 8 && R != 16)
        return why_not(why, whysz, "rows per group must be 4, 8 or 16");
    if (f->code == QK_CODE_VQ)
        return why_not(why, whysz, "codebook indices are not interleaved");
    int pruned = -1;
    if (f->sp_n) { /* read densely: a pruned element is a code of value 0 */
        if (f->zero != QK_ZERO_NONE || f->min_num != QK_NUM_NONE || f->submin_num != QK_NUM_NONE)
            return why_not(why, whysz, "N:M codes with a zero point or min have no code for a pruned element");
        for (uint32_t c = 0; pruned < 0 && f->bits <= 8 && c < 1u << f->bits; c++)
            if (qk_format_codeval(f, c) == 0)
                pruned = (int)c;
        if (pruned < 0)
            return why_not(why, whysz, "N:M codes have no code of value 0 for a pruned element");
    }
    if (f->bits < 1 || f->bits > 8)
        return why_not(why, whysz, "codes wider than 8 bits");
    int h = f->row_header_bytes;
    if (h != 0 && h != 1 && h != 2 && h != 4)
        return why_not(why, whysz, "the per-row scale is not 1, 2 or 4 bytes");
    for (int fl = QK_FIELD_CODES + 1; fl < QK_FIELD_COUNT; fl++)
        if (f->items[fl] && !(fl == QK_FIELD_INDEX && f->sp_n))
            return why_not(why, whysz, "blocks hold sign fields");
    qk_rowpack r = {.rows = R, .row_header = h, .pruned = pruned};
    for (int i = 0; i < f->npieces; i++)
        r.base3 |= f->pieces[i].place == QK_PLACE_BASE3;
    int64_t nums = 0;
    for (int fl = 0; fl < QK_FIELD_CODES; fl++) {
        int w = f->items[fl] ? f->width[fl] : 0;
        if (w > 8 && w != 16 && w != 32)
            return why_not(why, whysz, "a scale, zero, min or sub-block item is wider than a byte but not 16 or 32 bits");
        r.num_bits[fl] = w;
        r.num_offset[fl] = nums;
        r.num_chunk[fl] = 1;
        if (w && w <= 8 && 8 % w == 0 && f->items[fl] > 1 && f->items[fl] % (32 / w) == 0)
            r.num_chunk[fl] = 32 / w;
        nums += (int64_t)f->items[fl] * R * w / 8; /* R is a multiple of 4: whole bytes for w >= 2 */
        if ((int64_t)R * w % 8)
            return why_not(why, whysz, "R items of a field do not fill whole bytes");
    }
    r.codes = nums;
    int lo = 0;
    for (int w = 8; w >= 1; w /= 2)
        if (f->bits - lo >= w) {
            if (f->block % (32 / w))
                return why_not(why, whysz, "the block is not a multiple of 4 steps per byte of codes");
            r.parts[r.nparts++] = (qk_rowpack_part){lo, w, 0};
            lo += w;
        }
    r.seg_steps = 8 / r.parts[r.nparts - 1].w; /* the block holds whole segments: checked above */
    int64_t off = 0;
    for (int p = 0; p < r.nparts; p++) {
        r.parts[p].offset = (int)off;
        off += (int64_t)r.seg_steps * r.parts[p].w / 8 * 4 * R;
    }
    r.seg_bytes = off;
    r.group_block = nums + (int64_t)f->block / (4 * r.seg_steps) * off;
    if (rp)
        *rp = r;
    return 1;
}

int qk_rowpack_f32_sums(const qk_format *f)
{
    return f->zero == QK_ZERO_BLOCK || f->min_num != QK_NUM_NONE;
}

double qk_rowpack_f32_value(const qk_format *f, uint32_t code)
{
    int fold = f->zero == QK_ZERO_CONST && !qk_rowpack_f32_sums(f);
    return qk_format_codeval(f, code) - (fold ? f->zero_const : 0);
}

int qk_rowpack_f32(const qk_format *f, int R, qk_rowpack *rp, char *why, size_t whysz)
{
    qk_rowpack r;
    if (f->code == QK_CODE_VQ || f->sp_n)
        return why_not(why, whysz, "codebook and N:M codes have no f32 form");
    if (f->submin_num != QK_NUM_NONE || f->sub_block)
        return why_not(why, whysz, "sub-block scales and mins have no f32 form");
    if (!qk_rowpack_check(f, R, &r, why, whysz))
        return 0;
    if (r.nparts != 1 || r.parts[0].w > 4)
        return why_not(why, whysz, "only codes of 1, 2 or 4 bits in one part have an f32 form");
    for (uint32_t c = 0; c < 1u << r.parts[0].w; c++)
        if (!isfinite(qk_rowpack_f32_value(f, c)))
            return why_not(why, whysz, "codes of infinite or NaN value have no f32 form");
    if (rp)
        *rp = r;
    return 1;
}

int64_t qk_rowpack_size(const qk_format *f, int R, int64_t rows, int64_t k)
{
    qk_rowpack rp;
    if (!qk_rowpack_check(f, R, &rp, NULL, 0))
        return -1;
    int64_t nb = (k + f->block - 1) / f->block;
    return f->tensor_header_bytes + (rows + R - 1) / R * (R * rp.row_header + nb * rp.group_block);
}

/* Bits [bit, bit + w) of p, little-endian (w <= 32). */
static uint32_t get_bits(const uint8_t *p, int64_t bit, int w)
{
    const uint8_t *q = p + bit / 8;
    int sh = (int)(bit % 8), n = (sh + w + 7) / 8;
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)q[i] << (8 * i);
    return (uint32_t)((v >> sh) & ((1ull << w) - 1));
}

/* ORs v (w bits) into bits [bit, bit + w) of p, which are zero. */
static void put_bits(uint8_t *p, int64_t bit, int w, uint32_t v)
{
    uint8_t *q = p + bit / 8;
    int sh = (int)(bit % 8), n = (sh + w + 7) / 8;
    uint64_t x = (uint64_t)v << sh;
    for (int i = 0; i < n; i++)
        q[i] |= (uint8_t)(x >> (8 * i));
}

/* Bit offset, in a group-block, of item it of number field fl of row r. */
static int64_t num_bit(const qk_rowpack *rp, int fl, int it, int r)
{
    int C = rp->num_chunk[fl];
    if (C > 1)
        return rp->num_offset[fl] * 8 + ((int64_t)(it / C) * rp->rows + r) * 32 + (int64_t)(it % C) * rp->num_bits[fl];
    return rp->num_offset[fl] * 8 + ((int64_t)it * rp->rows + r) * rp->num_bits[fl];
}

/* Bit offset, in a group-block, of part p of code i of row r. */
static int64_t code_bit(const qk_rowpack *rp, const qk_rowpack_part *p, int r, int i)
{
    int S = 8 / p->w, j = i / 4, t = i % 4, G = rp->seg_steps;
    int64_t byte = rp->codes + (int64_t)(j / G) * rp->seg_bytes + p->offset + (int64_t)(j % G / S) * 4 * rp->rows +
                   4 * r + t;
    return byte * 8 + p->w * (j % S);
}

/* Code of dense element i of a block: an N:M format's kept item whose
 * index is i's position in its group (the first, as qk_format_get reads
 * it), or the pruned code; any other format's item i. */
static uint32_t dense_code(const qk_format *f, const qk_rowpack *rp, const uint8_t *blk, int i)
{
    if (!f->sp_n)
        return qk_format_item(f, blk, QK_FIELD_CODES, i);
    int g = i / f->sp_m, pos = i % f->sp_m;
    for (int j = g * f->sp_n; j < (g + 1) * f->sp_n; j++)
        if ((int)qk_format_item(f, blk, QK_FIELD_INDEX, j) == pos)
            return qk_format_item(f, blk, QK_FIELD_CODES, j);
    return (uint32_t)rp->pruned;
}

/* Writes the dense codes of a block (code[0 .. block)) into an N:M
 * block: per group of M, the positions whose code is not the pruned code,
 * then the lowest others up to N, ascending (qk_format_pack's order). 0,
 * or 1 when a group has more than N codes that are not the pruned one. */
static int put_sparse(const qk_format *f, const qk_rowpack *rp, const uint32_t *code, uint8_t *blk, int *bad)
{
    for (int g = 0; g < f->block / f->sp_m; g++) {
        int keep[16] = {0}, n = 0; /* sp_m <= 16 (format.c) */
        for (int p = 0; p < f->sp_m; p++)
            if (code[g * f->sp_m + p] != (uint32_t)rp->pruned)
                keep[p] = 1, n++;
        if (n > f->sp_n) {
            *bad = g * f->sp_m;
            return 1;
        }
        for (int p = 0; p < f->sp_m && n < f->sp_n; p++)
            if (!keep[p])
                keep[p] = 1, n++;
        for (int p = 0, j = g * f->sp_n; p < f->sp_m; p++)
            if (keep[p]) {
                qk_format_put_item(f, blk, QK_FIELD_INDEX, j, (uint32_t)p);
                qk_format_put_item(f, blk, QK_FIELD_CODES, j++, code[g * f->sp_m + p]);
            }
    }
    return 0;
}

/* Where each code of a block comes from and goes to, worked out once per
 * conversion: the places qk_format_item and code_bit compute per item
 * (with divisions) looked up instead. Dense codes only (not N:M). */
typedef struct code_map {
    int *first;             /* block + 1: item i's pieces are src[first[i] .. first[i + 1]) */
    qk_item_bits *src;
    int64_t *dst;           /* [p * block + i]: byte of part p of code i of row 0 in a group-block */
    uint8_t *dst_bit;       /* [p * block + i]: its first bit */
} code_map;

static void code_map_free(code_map *m)
{
    free(m->first);
    free(m->src);
    free(m->dst);
    free(m->dst_bit);
}

/* 0, or -1 when memory is short (the caller then takes the slow path). */
static int code_map_make(const qk_format *f, const qk_rowpack *rp, code_map *m)
{
    int B = f->block, n = 0;
    memset(m, 0, sizeof *m);
    if (f->sp_n)
        return -1;
    for (int i = 0; i < B; i++)
        n += qk_format_item_bits(f, QK_FIELD_CODES, i, NULL, 0);
    m->first = malloc((size_t)(B + 1) * sizeof *m->first);
    m->src = malloc((size_t)(n ? n : 1) * sizeof *m->src);
    m->dst = malloc((size_t)rp->nparts * (size_t)B * sizeof *m->dst);
    m->dst_bit = malloc((size_t)rp->nparts * (size_t)B);
    if (!m->first || !m->src || !m->dst || !m->dst_bit) {
        code_map_free(m);
        return -1;
    }
    for (int i = 0, at = 0; i < B; i++) {
        m->first[i] = at;
        at += qk_format_item_bits(f, QK_FIELD_CODES, i, m->src + at, n - at);
        m->first[i + 1] = at;
        for (int p = 0; p < rp->nparts; p++) {
            int64_t bit = code_bit(rp, &rp->parts[p], 0, i);
            m->dst[p * B + i] = bit / 8;
            m->dst_bit[p * B + i] = (uint8_t)(bit % 8);
        }
    }
    return 0;
}

/* Code i of a block through the map: qk_format_item's value. */
static uint32_t map_code(const code_map *m, const uint8_t *blk, int i)
{
    uint32_t v = 0;
    for (int e = m->first[i]; e < m->first[i + 1]; e++) {
        const qk_item_bits *b = &m->src[e];
        uint32_t x;
        if (b->base3)
            x = qk_format_base3_digit(blk[b->byte], b->bit);
        else {
            x = blk[b->byte];
            if (b->bit + b->width > 8) /* codes are at most 8 bits: two bytes at most */
                x |= (uint32_t)blk[b->byte + 1] << 8;
            x = (x >> b->bit) & ((1u << b->width) - 1);
        }
        v |= x << b->lo;
    }
    return v;
}

/* ORs code v into item i of a block through the map: qk_format_put_item's
 * bytes (a base-3 digit through it). */
static void map_put_code(const code_map *m, const qk_format *f, uint8_t *blk, int i, uint32_t v)
{
    for (int e = m->first[i]; e < m->first[i + 1]; e++) {
        const qk_item_bits *b = &m->src[e];
        if (b->base3) {
            qk_format_put_item(f, blk, QK_FIELD_CODES, i, v);
            return;
        }
    }
    for (int e = m->first[i]; e < m->first[i + 1]; e++) {
        const qk_item_bits *b = &m->src[e];
        uint32_t x = ((v >> b->lo) & ((1u << b->width) - 1)) << b->bit;
        blk[b->byte] |= (uint8_t)x;
        if (b->bit + b->width > 8)
            blk[b->byte + 1] |= (uint8_t)(x >> 8);
    }
}

/* One row's blocks (format layout, at std) into its lanes of the group;
 * m: the codes' places (NULL: computed per item). */
static void row_to_group(const qk_format *f, const qk_rowpack *rp, const code_map *m, int64_t nb, const uint8_t *std,
                         uint8_t *group, int r)
{
    int B = f->block;
    for (int64_t kb = 0; kb < nb; kb++) {
        const uint8_t *blk = std + kb * f->block_bytes;
        uint8_t *gb = group + kb * rp->group_block;
        for (int fl = 0; fl < QK_FIELD_CODES; fl++)
            for (int it = 0; rp->num_bits[fl] && it < f->items[fl]; it++)
                put_bits(gb, num_bit(rp, fl, it, r), rp->num_bits[fl], qk_format_item(f, blk, fl, it));
        if (m) { /* a part's bits never cross a byte (8 / w steps a byte) */
            for (int i = 0; i < B; i++) {
                uint32_t code = map_code(m, blk, i);
                for (int p = 0; p < rp->nparts; p++) {
                    const qk_rowpack_part *pt = &rp->parts[p];
                    gb[m->dst[p * B + i] + 4 * r] |= (uint8_t)(((code >> pt->lo) & ((1u << pt->w) - 1))
                                                                << m->dst_bit[p * B + i]);
                }
            }
            continue;
        }
        for (int i = 0; i < B; i++) {
            uint32_t code = dense_code(f, rp, blk, i);
            for (int p = 0; p < rp->nparts; p++) {
                const qk_rowpack_part *pt = &rp->parts[p];
                put_bits(gb, code_bit(rp, pt, r, i), pt->w, (code >> pt->lo) & ((1u << pt->w) - 1));
            }
        }
    }
}

/* 1 if code item i of a block is a base-3 digit (0..2). */
static int base3_item(const qk_format *f, int i)
{
    for (int k = 0; k < f->npieces; k++) {
        const qk_piece *p = &f->pieces[k];
        if (p->field == QK_FIELD_CODES && p->place == QK_PLACE_BASE3 && i >= p->first && i < p->first + p->count)
            return 1;
    }
    return 0;
}

/* The inverse: a row's lanes of the group back into its blocks at std.
 * 0, or with the block and element of a state the format's own layout
 * cannot hold (bytes qk_rowpack_pack did not write): 1 for a base-3 digit
 * above 2, 2 for more than N codes of an N:M group that are not the
 * pruned code. */
static int group_to_row(const qk_format *f, const qk_rowpack *rp, const code_map *m, int64_t nb,
                        const uint8_t *group, uint8_t *std, int r, int64_t *bad_kb, int *bad_i)
{
    uint32_t code[QK_MAX_BLOCK];
    int B = f->block;
    for (int64_t kb = 0; kb < nb; kb++) {
        uint8_t *blk = std + kb * f->block_bytes;
        const uint8_t *gb = group + kb * rp->group_block;
        *bad_kb = kb;
        for (int fl = 0; fl < QK_FIELD_CODES; fl++)
            for (int it = 0; rp->num_bits[fl] && it < f->items[fl]; it++)
                qk_format_put_item(f, blk, fl, it, get_bits(gb, num_bit(rp, fl, it, r), rp->num_bits[fl]));
        for (int i = 0; i < B; i++) {
            code[i] = 0;
            for (int p = 0; p < rp->nparts; p++)
                if (m)
                    code[i] |= (uint32_t)(gb[m->dst[p * B + i] + 4 * r] >> m->dst_bit[p * B + i] &
                                          ((1u << rp->parts[p].w) - 1))
                               << rp->parts[p].lo;
                else
                    code[i] |= get_bits(gb, code_bit(rp, &rp->parts[p], r, i), rp->parts[p].w) << rp->parts[p].lo;
            if (rp->base3 && code[i] > 2 && base3_item(f, i)) {
                *bad_i = i;
                return 1;
            }
            if (m)
                map_put_code(m, f, blk, i, code[i]);
            else if (!f->sp_n)
                qk_format_put_item(f, blk, QK_FIELD_CODES, i, code[i]);
        }
        if (f->sp_n && put_sparse(f, rp, code, blk, bad_i))
            return 2;
    }
    return 0;
}

void qk_rowpack_pack(const qk_format *f, int R, const uint8_t *src, int64_t rows, int64_t k, uint8_t *dst)
{
    qk_rowpack rp;
    if (!qk_rowpack_check(f, R, &rp, NULL, 0))
        return;
    int64_t nb = (k + f->block - 1) / f->block, rb = qk_format_row_bytes(f, k), h = f->tensor_header_bytes;
    int64_t rh = rp.row_header, gbytes = R * rh + nb * rp.group_block;
    memset(dst, 0, (size_t)qk_rowpack_size(f, R, rows, k));
    memcpy(dst, src, (size_t)h);
    code_map m;
    int fast = code_map_make(f, &rp, &m) == 0;
    for (int64_t row = 0; row < rows; row++) {
        const uint8_t *sr = src + h + row * rb;
        uint8_t *grp = dst + h + row / R * gbytes;
        memcpy(grp + row % R * rh, sr, (size_t)rh); /* the per-row scale */
        row_to_group(f, &rp, fast ? &m : NULL, nb, sr + rh, grp + R * rh, (int)(row % R));
    }
    if (fast)
        code_map_free(&m);
}

int qk_rowpack_unpack(const qk_format *f, int R, const uint8_t *src, int64_t rows, int64_t k, uint8_t *dst,
                      char *why, size_t whysz)
{
    qk_rowpack rp;
    if (!qk_rowpack_check(f, R, &rp, why, whysz))
        return -1;
    int64_t nb = (k + f->block - 1) / f->block, rb = qk_format_row_bytes(f, k), h = f->tensor_header_bytes;
    int64_t rh = rp.row_header, gbytes = R * rh + nb * rp.group_block;
    memset(dst, 0, (size_t)qk_format_size(f, rows, k));
    memcpy(dst, src, (size_t)h);
    code_map m;
    int fast = code_map_make(f, &rp, &m) == 0;
    for (int64_t row = 0; row < rows; row++) {
        const uint8_t *grp = src + h + row / R * gbytes;
        uint8_t *dr = dst + h + row * rb;
        memcpy(dr, grp + row % R * rh, (size_t)rh);
        int64_t kb;
        int i, bad = group_to_row(f, &rp, fast ? &m : NULL, nb, grp + R * rh, dr + rh, (int)(row % R), &kb, &i);
        if (bad) {
            if (fast)
                code_map_free(&m);
            if (why && whysz)
                snprintf(why, whysz,
                         "row %lld, element %lld: %s, which the format's own layout cannot hold (bytes "
                         "qkc_kernel_repack did not write)",
                         (long long)row, (long long)(kb * f->block + i),
                         bad == 1 ? "a 2-bit code 3 where base-3 digits are 0..2"
                                  : "more non-zero codes in a group than the format's N:M keeps");
            return -1;
        }
    }
    if (fast)
        code_map_free(&m);
    return 0;
}
