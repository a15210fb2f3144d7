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
 *      r at bit (i R + r) w: one load gives one item of the R rows;
 *      except a field of several items of 1, 2, 4 or 8 bits whose count n
 *      is a multiple of C = 32 / w (sub-block scales and mins: q2_K's 16
 *      4-bit ones), whose items go C to a row's 32-bit word: item i of
 *      row r at bit ((i / C) R + r) 32 + (i % C) w. One load then gives C
 *      items of the R rows in 32-bit lanes (a shift and an AND each), and
 *      their bytes are the operand of a 4-byte dot product (the sum over a
 *      block of sub-block mins times the int8 operand's group sums)]
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
 * its own size. Two kinds of format are the exception, stored so that the
 * kernel reads them like a plain one, at the price of more bytes:
 *   - base-3 codes (five ternary digits a byte): each digit is moved as a
 *     2-bit code (its value 0..2, as qk_format_item reads it): tq1_0 grows
 *     from 1.6875 to 2.0625 bits a weight;
 *   - N:M codes: stored densely, B codes a block, the kept items at the
 *     positions their index names and the format's code of value 0
 *     (`pruned`) at the others; the index field is dropped: int4_2of4
 *     grows from 3.5 to 4.5 bits a weight, int8_2of4 from 5.5 to 8.5.
 * Which formats have the layout: qk_rowpack_check. The conversions are
 * exact in both directions (codes and scale bits are moved, never
 * re-quantized); for those two kinds the values are, and the bytes back
 * are the canonical ones (a base-3 byte as qk_format_pack writes it; an
 * N:M group's kept items in ascending position, non-zero codes first),
 * equal to the source bytes whenever those were canonical.
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
    int num_chunk[QK_FIELD_CODES];  /* C: items of one row per 32-bit word (32 / w), else 1 */
    int64_t codes;       /* first byte of the codes in a group-block */
    int nparts;
    qk_rowpack_part parts[QK_ROWPACK_MAX_PARTS];
    int seg_steps;       /* steps of 4 items per segment: 8 / (narrowest part's w) */
    int64_t seg_bytes;   /* bytes of one segment (every part's runs of it) */
    int row_header;      /* h: bytes of one row's header */
    int64_t group_block; /* bytes of one group-block */
    int pruned;          /* N:M: the code (of value 0) at pruned elements, whose codes are stored densely; -1 */
    int base3;           /* 1: some codes are base-3 digits (0..2), in 2-bit parts */
} qk_rowpack;

/* 1 and *rp when format f has the layout with R rows, else 0 with the
 * reason in why: scalar codes (no codebook; base-3 digits become 2-bit
 * codes and N:M codes dense ones, above; N:M with a code of value 0 and
 * no zero point or min), block fields (scale, zero, min, sub-block scales and mins)
 * of 8, 16 or 32 bits per item or narrower ones whose R items fill whole
 * bytes, row headers of 1, 2 or 4 bytes, and blocks of a multiple
 * of 32 / w elements for each part width w. */
int qk_rowpack_check(const qk_format *f, int R, qk_rowpack *rp, char *why, size_t whysz);
/* The layout's f32 form: whether kernels that multiply f32 work (not
 * int8 bytes) by weights of format f can read them in this layout with R
 * rows: 1 and *rp when f's codes are one part of 1, 2 or 4 bits whose
 * values are finite, with a block scale, zero point and min (and row and
 * tensor scales): no sub-block scale or min, N:M index or codebook. A
 * 32-bit lane of a run then holds 8 / w steps of a row's codes, and a
 * shift and a lookup of 2^w f32 values decode one item of the R rows.
 * Else 0 with the reason in why. */
int qk_rowpack_f32(const qk_format *f, int R, qk_rowpack *rp, char *why, size_t whysz);
/* 1 when f's values in the f32 form need the sum of x over each block (a
 * zero field or a min: value = mul c + add, and sum(value x) = mul
 * sum(c x) + add sum(x)). */
int qk_rowpack_f32_sums(const qk_format *f);
/* The value of a code in the f32 form, before the block's factors: its
 * value, less a constant zero point where the block has no sum term. */
double qk_rowpack_f32_value(const qk_format *f, uint32_t code);
/* Bytes of a rows x k tensor in the layout (f must pass the check). */
int64_t qk_rowpack_size(const qk_format *f, int R, int64_t rows, int64_t k);
/* Format layout (qk_format_size(f, rows, k) bytes at src) -> row-
 * interleaved layout (qk_rowpack_size bytes at dst), and back. */
void qk_rowpack_pack(const qk_format *f, int R, const uint8_t *src, int64_t rows, int64_t k, uint8_t *dst);
/* The inverse returns 0, or -1 with the reason in why when src holds a
 * state the format's own layout cannot (a base-3 digit 3, an N:M group
 * with more than N codes that are not the pruned one: bytes
 * qk_rowpack_pack never writes); dst is then partly written. */
int qk_rowpack_unpack(const qk_format *f, int R, const uint8_t *src, int64_t rows, int64_t k, uint8_t *dst,
                      char *why, size_t whysz);

#endif
