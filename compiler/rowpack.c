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
    int h = f->row_header_bytes;
    if (h != 0 && h != 1 && h != 2 && h != 4)
        return why_not(why, whysz, "the per-row scale is not 1, 2 or 4 bytes");
    for (int fl = QK_FIELD_CODES + 1; fl < QK_FIELD_COUNT; fl++)
        if (f->items[fl])
            return why_not(why, whysz, "blocks hold index or sign fields");
    qk_rowpack r = {.rows = R, .row_header = h};
    int64_t nums = 0;
    for (int fl = 0; fl < QK_FIELD_CODES; fl++) {
        int w = f->items[fl] ? f->width[fl] : 0;
        if (w > 8 && w != 16 && w != 32)
            return why_not(why, whysz, "a scale, zero, min or sub-block item is wider than a byte but not 16 or 32 bits");
        r.num_bits[fl] = w;
        r.num_offset[fl] = nums;
        nums += (int64_t)f->items[fl] * R * w / 8; /* R is a multiple of 4: whole bytes for w >= 2 */
        if ((int64_t)R * w % 8)
            return why_not(why, whysz, "R items of a field do not fill whole bytes");
    }
    r.codes = nums;
    int lo = 0;
    int64_t off = 0;
    for (int w = 8; w >= 1; w /= 2)
        if (f->bits - lo >= w) {
            if (f->block % (32 / w))
                return why_not(why, whysz, "the block is not a multiple of 4 steps per byte of codes");
            r.parts[r.nparts++] = (qk_rowpack_part){lo, w, off};
            off += f->block * R * w / 8;
            lo += w;
        }
    r.group_block = nums + off;
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
    int R = rp->rows;
    for (int64_t kb = 0; kb < nb; kb++) {
        uint8_t *blk = std_row + kb * f->block_bytes;
        uint8_t *gb = group + kb * rp->group_block;
        uint8_t *codes = gb + rp->codes;
        for (int fl = 0; fl < QK_FIELD_CODES; fl++)
            for (int it = 0, w = rp->num_bits[fl]; w && it < f->items[fl]; it++) {
                int64_t bit = ((int64_t)it * R + r) * w;
                uint8_t *s = gb + rp->num_offset[fl] + bit / 8;
                int sh = (int)(bit % 8), nb = (sh + w + 7) / 8;
                if (to_rp) {
                    uint64_t v = (uint64_t)qk_format_item(f, blk, fl, it) << sh;
                    for (int i = 0; i < nb; i++)
                        s[i] |= (uint8_t)(v >> (8 * i));
                } else {
                    uint64_t v = 0;
                    for (int i = 0; i < nb; i++)
                        v |= (uint64_t)s[i] << (8 * i);
                    qk_format_put_item(f, blk, fl, it, (uint32_t)((v >> sh) & ((1ull << w) - 1)));
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
    int64_t gbytes = R * rp.row_header + nb * rp.group_block;
    for (int64_t row = 0; row < rows; row++) {
        uint8_t *sr = std + h + row * rb, *grp = rpk + h + row / R * gbytes;
        int r = (int)(row % R), rh = rp.row_header;
        memcpy(to_rp ? grp + r * rh : sr, to_rp ? sr : grp + r * rh, (size_t)rh);
        move_row(f, &rp, nb, sr + rh, grp + R * rh, r, to_rp);
    }
}

void qk_rowpack_pack(const qk_format *f, int R, const uint8_t *src, int64_t rows, int64_t k, uint8_t *dst)
{
    convert(f, R, (uint8_t *)src, rows, k, dst, 1);
}

void qk_rowpack_unpack(const qk_format *f, int R, const uint8_t *src, int64_t rows, int64_t k, uint8_t *dst)
{
    convert(f, R, dst, rows, k, (uint8_t *)src, 0);
}
