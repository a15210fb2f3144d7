/* rowpack.h — the row-interleaved layout of a quantized tensor: a
 * kernel-private weight layout for matrix-vector products on CPUs.
 *
 * In a format's own layout (format.h) the blocks of one row follow each
 * other, so a kernel that holds R rows in the R lanes of a vector would
 * gather. The row-interleaved layout of R rows stores, for each block
 * position, the R rows' scales side by side and their codes so that one
 * vector load holds four consecutive codes of each of the R rows: the
 * shape of a 4-byte integer dot product (vpdpbusd, sdot) whose 32-bit
 * lanes are rows. Decoding the scales of R rows is then one vector load
 * and one conversion, where the row-major layout needs R scalar ones.
 *
 * The layout "rows R" of format f (R = 4, 8 or 16), for a tensor of
 * `rows` rows of K elements, B = f->block, nb = ceil(K / B):
 *
 *   [f's tensor header]
 *   ceil(rows / R) groups of R rows (rows past the last are zero bytes);
 *   a group is the R rows' headers (per-row scales, h bytes each, row r at
 *   r h) and then nb group-blocks, group-block kb holding block kb of its
 *   rows:
 *     [numbers: for each field of the block other than the codes (scale,
 *      zero, min, subscale, submin: the order of qk_field), its n items of
 *      w bits for every row as one little-endian bit string, item i of row
 *      r at bit (i R + r) w: one load gives one item of the R rows]
 *     [codes: the code's bits in parts (widths 8, 4, 2, 1, widest first,
 *      lo = the part's lowest code bit), in segments of G = 8 / w_min
 *      steps of 4 items (w_min: the narrowest part); a part of width w
 *      holds a segment's steps in runs of S = 8/w steps, G/S runs of 4R
 *      bytes each, the parts' runs one after the other: run q of a part
 *      in segment g is at g * (sum of the parts' G/S runs) + (the runs
 *      of the parts before it) + q runs, and its byte 4r + t holds at
 *      bits [w s, w s + w) bits [lo, lo + w) of the code of row r, item
 *      4 (g G + q S + s) + t. One segment's bytes are read together, so a
 *      kernel reads one sequential stream per group (with one part,
 *      segments are simply consecutive runs)]
 *
 * Group-blocks are R (numbers + B bits / 8) bytes: a tensor whose row
 * count is a multiple of R and whose fields fill their bytes takes exactly
 * its own size. Base-3 codes (five ternary digits per byte) are the
 * exception: each digit is moved as a 2-bit code (its value 0..2, as
 * qk_format_item reads it), so the codes grow from 8/5 to 2 bits (tq1_0:
 * 1.6875 -> 2.0625 bits a weight), the price of reading them like tq2_0's.
 * Which formats have the layout: qk_rowpack_check. The conversions are
 * exact in both directions (codes and scale bits are moved, never
 * re-quantized); back from base-3 digits, a byte is the canonical encoding
 * of its digits (as qk_format_pack writes it), which is the source byte
 * whenever that was canonical, and decodes to the same digits always.
 *
 * Prefix: qk_rowpack_. */
#ifndef QK_ROWPACK_H
#define QK_ROWPACK_H

#include "compiler/format.h"

#define QK_ROWPACK_MAX_PARTS 4

typedef struct qk_rowpack_part {
    int lo, w;   /* code bits [lo, lo + w) */
    int offset;  /* bytes from the start of a segment of the codes */
} qk_rowpack_part;

typedef struct qk_rowpack {
    int rows;            /* R */
    int num_bits[QK_FIELD_CODES];   /* bits of one item of each number field, 0 = absent */
    int64_t num_offset[QK_FIELD_CODES]; /* its first byte in a group-block */
    int64_t codes;       /* first byte of the codes in a group-block */
    int nparts;
    qk_rowpack_part parts[QK_ROWPACK_MAX_PARTS];
    int seg_steps;       /* steps of 4 items per segment: 8 / (narrowest part's w) */
    int64_t seg_bytes;   /* bytes of one segment (every part's runs of it) */
    int row_header;      /* h: bytes of one row's header */
    int64_t group_block; /* bytes of one group-block */
} qk_rowpack;

/* 1 and *rp when format f has the layout with R rows, else 0 with the
 * reason in why: dense scalar codes (no codebook, no N:M; base-3 digits
 * become 2-bit codes, above), block fields (scale, zero, min, sub-block scales and mins)
 * of 8, 16 or 32 bits per item or narrower ones whose R items fill whole
 * bytes, row headers of 1, 2 or 4 bytes, and blocks of a multiple
 * of 32 / w elements for each part width w. */
int qk_rowpack_check(const qk_format *f, int R, qk_rowpack *rp, char *why, size_t whysz);
/* Bytes of a rows x k tensor in the layout (f must pass the check). */
int64_t qk_rowpack_size(const qk_format *f, int R, int64_t rows, int64_t k);
/* Format layout (qk_format_size(f, rows, k) bytes at src) -> row-
 * interleaved layout (qk_rowpack_size bytes at dst), and back. */
void qk_rowpack_pack(const qk_format *f, int R, const uint8_t *src, int64_t rows, int64_t k, uint8_t *dst);
void qk_rowpack_unpack(const qk_format *f, int R, const uint8_t *src, int64_t rows, int64_t k, uint8_t *dst);

#endif
