/* rowpack.c — the row-interleaved layout (rowpack.h): which formats have
 * it, its size, and the exact conversions to and from a format's layout. */
#include "compiler/rowpack.h"

#include <stdio.h>
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
    if (f->sp_n)
        return why_not(why, whysz, "N:M formats are not interleaved");
    if (f->bits < 1 || f->bits > 8)
        return why_not(why, whysz, "codes wider than 8 bits");
    for (int i = 0; i < f->npieces; i++)
        if (f->pieces[i].place == QK_PLACE_BASE3)
            return why_not(why, whysz, "base-3 codes would not keep their size");
    if (f->zero != QK_ZERO_NONE || f->min_num != QK_NUM_NONE || f->sub_block || f->row_header_bytes)
        return why_not(why, whysz, "zero points, mins, sub-block and per-row scales are not interleaved");
    for (int fl = 0; fl < QK_FIELD_COUNT; fl++)
        if (f->items[fl] && fl != QK_FIELD_CODES && fl != QK_FIELD_SCALE)
            return why_not(why, whysz, "blocks hold fields other than a scale and codes");
    int sw = f->items[QK_FIELD_SCALE] ? f->width[QK_FIELD_SCALE] : 0;
    if (sw % 8 || sw > 32 || f->items[QK_FIELD_SCALE] > 1)
        return why_not(why, whysz, "the block scale is not one item of 1, 2 or 4 bytes");
    qk_rowpack r = {.rows = R, .scale_bytes = sw / 8};
    int lo = 0, off = 0;
    for (int w = 8; w >= 1; w /= 2)
        if (f->bits - lo >= w) {
            if (f->block % (32 / w))
                return why_not(why, whysz, "the block is not a multiple of 4 steps per byte of codes");
            r.parts[r.nparts++] = (qk_rowpack_part){lo, w, off};
            off += f->block * R * w / 8;
            lo += w;
        }
    r.group_block = (int64_t)R * r.scale_bytes + off;
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
    return f->tensor_header_bytes + (rows + R - 1) / R * nb * rp.group_block;
}

/* Byte and bit of part p of item i of row r in a group-block's codes. */
static void code_pos(const qk_rowpack *rp, const qk_rowpack_part *p, int r, int i, int64_t *byte, int *bit)
{
    int S = 8 / p->w, j = i / 4, t = i % 4;
    *byte = p->offset + (int64_t)(j / S) * 4 * rp->rows + 4 * r + t;
    *bit = p->w * (j % S);
}

/* Moves one row's blocks: to_rp = 1 format -> row-interleaved, else back. */
static void move_row(const qk_format *f, const qk_rowpack *rp, int64_t nb, uint8_t *std_row, uint8_t *group, int r,
                     int to_rp)
{
    int R = rp->rows, sb = rp->scale_bytes;
    for (int64_t kb = 0; kb < nb; kb++) {
        uint8_t *blk = std_row + kb * f->block_bytes;
        uint8_t *gb = group + kb * rp->group_block;
        uint8_t *codes = gb + (int64_t)R * sb;
        if (sb) {
            uint8_t *s = gb + (int64_t)r * sb;
            if (to_rp) {
                uint32_t v = qk_format_item(f, blk, QK_FIELD_SCALE, 0);
                for (int i = 0; i < sb; i++)
                    s[i] = (uint8_t)(v >> (8 * i));
            } else {
                uint32_t v = 0;
                for (int i = 0; i < sb; i++)
                    v |= (uint32_t)s[i] << (8 * i);
                qk_format_put_item(f, blk, QK_FIELD_SCALE, 0, v);
            }
        }
        for (int i = 0; i < f->block; i++) {
            uint32_t code = to_rp ? qk_format_item(f, blk, QK_FIELD_CODES, i) : 0;
            for (int p = 0; p < rp->nparts; p++) {
                const qk_rowpack_part *pt = &rp->parts[p];
                int64_t byte;
                int bit;
                code_pos(rp, pt, r, i, &byte, &bit);
                unsigned m = (1u << pt->w) - 1;
                if (to_rp)
                    codes[byte] |= (uint8_t)(((code >> pt->lo) & m) << bit);
                else
                    code |= ((codes[byte] >> bit) & m) << pt->lo;
            }
            if (!to_rp)
                qk_format_put_item(f, blk, QK_FIELD_CODES, i, code);
        }
    }
}

static void convert(const qk_format *f, int R, uint8_t *std, int64_t rows, int64_t k, uint8_t *rpk, int to_rp)
{
    qk_rowpack rp;
    if (!qk_rowpack_check(f, R, &rp, NULL, 0))
        return;
    int64_t nb = (k + f->block - 1) / f->block, rb = qk_format_row_bytes(f, k);
    if (to_rp)
        memset(rpk, 0, (size_t)qk_rowpack_size(f, R, rows, k));
    else
        memset(std, 0, (size_t)qk_format_size(f, rows, k));
    int h = f->tensor_header_bytes;
    memcpy(to_rp ? rpk : std, to_rp ? std : rpk, (size_t)h);
    for (int64_t row = 0; row < rows; row++)
        move_row(f, &rp, nb, std + h + row * rb, rpk + h + row / R * nb * rp.group_block, (int)(row % R), to_rp);
}

void qk_rowpack_pack(const qk_format *f, int R, const uint8_t *src, int64_t rows, int64_t k, uint8_t *dst)
{
    convert(f, R, (uint8_t *)src, rows, k, dst, 1);
}

void qk_rowpack_unpack(const qk_format *f, int R, const uint8_t *src, int64_t rows, int64_t k, uint8_t *dst)
{
    convert(f, R, dst, rows, k, (uint8_t *)src, 0);
}
